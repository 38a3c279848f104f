"""Section ``data``: how many training samples per second BasicSR's ``PairedImageDataset`` delivers from LMDB per
worker count, with the PNG compression level ``srgan_plugin.prepare`` (and BasicSR) writes by default (1) and with
``--compress-level 0`` (stored, no inflate), and how many workers keep up with the fastest measured step.

The images are 480x480 HR sub-images (DIV2K's sub-image size) with 120x120 LR, cut from the photos scikit-image
ships, so decoding costs what photos cost; random crops, flips and rotations as in the option files."""
from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any, Optional

import cv2
import numpy as np
from basicsr.data.paired_image_dataset import PairedImageDataset
from torch.utils.data import DataLoader, RandomSampler

from srgan_plugin.prepare.lmdb_io import LmdbWriter
from srgan_plugin.prepare.pipeline import usable_cores

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry', 'hubble_deep_field', 'retina')
SUB_SIZE = 480
SCALE = 4
HEADROOM = 1.5  # recommend workers that deliver 1.5x what the step consumes


def photos() -> list[np.ndarray]:
    """scikit-image's colour photos as 480x480 BGR sub-images (resized to cover, centre-cropped)."""
    from skimage import data
    out = []
    for name in PHOTOS:
        rgb = getattr(data, name)()
        height, width = rgb.shape[:2]
        factor = SUB_SIZE / min(height, width)
        rgb = cv2.resize(rgb, (math.ceil(width * factor), math.ceil(height * factor)), interpolation=cv2.INTER_CUBIC)
        top, left = (rgb.shape[0] - SUB_SIZE) // 2, (rgb.shape[1] - SUB_SIZE) // 2
        out.append(np.ascontiguousarray(rgb[top:top + SUB_SIZE, left:left + SUB_SIZE, ::-1]))
    return out


LEVELS = (1, 0)  # PNG compression levels compared: the default, and stored


def write_pair(root: str, level: int) -> tuple[str, str]:
    hr_path, lr_path = os.path.join(root, f'hr{level}.lmdb'), os.path.join(root, f'lr{level}.lmdb')
    with LmdbWriter(hr_path, compress_level=level) as hr, LmdbWriter(lr_path, compress_level=level) as lr:
        for index, img in enumerate(photos()):
            hr.put(f'{index:04d}', img)
            lr.put(f'{index:04d}',
                   cv2.resize(img, (SUB_SIZE // SCALE, SUB_SIZE // SCALE), interpolation=cv2.INTER_AREA))
    return hr_path, lr_path


def samples_per_second(dataset: PairedImageDataset, batch: int, workers: int, batches: int) -> float:
    """Batches after the first (worker start-up excluded), as a consuming training loop would draw them."""
    sampler = RandomSampler(dataset, replacement=True, num_samples=batch * (batches + 1))
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        num_workers=workers,
        drop_last=True,
        pin_memory=False,
        persistent_workers=False)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    count = sum(len(item['gt']) for item in iterator)
    return count / (time.perf_counter() - start)


def default_workers() -> list[int]:
    counts = [0, 1] + [2**k for k in range(1, 6) if 2**k <= usable_cores()]
    return sorted(set(counts))


def recommendation(rates: dict[int, float], need: Optional[float]) -> Optional[str]:
    if need is None:
        return None
    enough = [w for w, rate in sorted(rates.items()) if rate >= HEADROOM * need]
    if enough:
        who = 'the main process alone (num_worker_per_gpu: 0) delivers' if enough[0] == 0 else (
            f'{enough[0]} worker(s) deliver')
        return f'{who} >= {HEADROOM}x the {need:.1f} samples/s the fastest step consumes'
    per_worker = max((rate / w for w, rate in rates.items() if w > 0), default=rates.get(0, 0.0))
    return (f'none measured is enough for {need:.1f} samples/s; at {per_worker:.1f} samples/s per worker, about '
            f'{math.ceil(HEADROOM * need / per_worker)} workers (num_worker_per_gpu) are needed')


def dataset(hr_path: str, lr_path: str, crop: int, backend: str = 'lmdb') -> PairedImageDataset:
    """BasicSR's training dataset as the option files configure it: random ``crop`` px HR crops, flips, rotations."""
    return PairedImageDataset({
        'phase': 'train',
        'scale': SCALE,
        'gt_size': crop,
        'use_hflip': True,
        'use_rot': True,
        'dataroot_gt': hr_path,
        'dataroot_lq': lr_path,
        'filename_tmpl': '{}',
        'io_backend': {
            'type': backend
        }
    })


def run(batch: int,
        crop: int,
        workers: Optional[list[int]],
        step_rate: Optional[float],
        batches: int = 20) -> dict[str, Any]:
    counts = workers or default_workers()
    rates: dict[int, dict[int, float]] = {}
    with tempfile.TemporaryDirectory(prefix='srgan_bench_data_') as root:
        for level in LEVELS:
            data = dataset(*write_pair(root, level), crop)
            rates[level] = {w: samples_per_second(data, batch, w, batches) for w in counts}
    need = batch * step_rate if step_rate else None
    advice = recommendation(rates[LEVELS[0]], need)
    print(f'## Data loading, LMDB of 480 px PNG sub-images, batch {batch}, {crop} px crops (samples/s)\n')
    print('| workers | ' + ' | '.join(f'PNG level {level}' for level in LEVELS) + ' |\n|---|---|---|')
    for w in counts:
        print(f'| {w} | ' + ' | '.join(f'{rates[level][w]:.0f}' for level in LEVELS) + ' |')
    print(f'\n{advice} (PNG level {LEVELS[0]})\n' if advice else '', flush=True)
    return {
        'samples_per_s': {
            f'level{level}': per
            for level, per in rates.items()
        },
        'needed_samples_per_s': need,
        'advice': advice
    }
