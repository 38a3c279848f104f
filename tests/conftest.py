"""Shared helpers: paths, option files, tiny generated datasets, subprocess runs of the user's commands."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

if os.environ.get('PYTEST_XDIST_WORKER'):  # parallel workers share the cores: one OpenMP thread each (before torch)
    os.environ.setdefault('OMP_NUM_THREADS', '1')

import srgan_plugin  # noqa: F401,E402  (registration; makes basicsr importable)
from launcher import python

REPO = Path(__file__).resolve().parents[1]
OPTIONS = REPO / 'options'
SHARED_DATASETS = Path(os.environ.get('SRGAN_SHARED_DATASETS', REPO.parent / 'shared' / 'datasets'))


def shared_dataset(name: str) -> Path:
    """``../shared/datasets/<name>``, or skip: that folder sits beside the repository, not in a clone."""
    path = SHARED_DATASETS / name
    if not (path / 'HR').is_dir():
        pytest.skip(f'{path} not found: the benchmark datasets (Set5, Set14, T91) sit in ../shared/datasets beside the '
                    'repository, not in a clone (set SRGAN_SHARED_DATASETS to point elsewhere)')
    return path


def load_options(name: str) -> dict[str, Any]:
    with open(OPTIONS / name, encoding='utf-8') as f:
        return yaml.safe_load(f)


def write_options(opt: dict[str, Any], path: Path) -> Path:
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def synthetic_image(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, textured uint8 BGR image (sums of random sinusoids): learnable, unlike noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for _ in range(6):
        fy, fx = rng.uniform(0.01, 0.2, 2)
        phase = rng.uniform(0, 2 * np.pi)
        img += rng.uniform(0.2, 1.0, 3) * np.sin(fy * yy + fx * xx + phase)[..., None]
    img = (img - img.min()) / (img.max() - img.min() + 1e-8)
    return np.round(img * 255).astype(np.uint8)


def make_paired_folder(root: Path, count: int = 4, size: int = 64, scale: int = 4) -> tuple[Path, Path]:
    """HR/ and LR_bicubic/X{scale}/ PNG folders of synthetic images (LR by MATLAB-style bicubic)."""
    import cv2
    from basicsr.utils.matlab_functions import imresize

    hr_dir, lr_dir = root / 'HR', root / 'LR_bicubic' / f'X{scale}'
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    for i in range(count):
        hr = synthetic_image(size, size, seed=i)
        lr = np.clip(np.round(imresize(hr.astype(np.float32) / 255., 1 / scale) * 255), 0, 255).astype(np.uint8)
        cv2.imwrite(str(hr_dir / f'img{i:02d}.png'), hr)
        cv2.imwrite(str(lr_dir / f'img{i:02d}.png'), lr)
    return hr_dir, lr_dir


def tiny_training_options(phase: int, data: tuple[Path, Path], name: str, iters: int = 4) -> dict[str, Any]:
    """The real x4 option files with a tiny network, tiny crops, disk data and a few iterations."""
    opt = load_options('train_srresnet_x4.yml' if phase == 1 else 'train_srgan_x4.yml')
    hr_dir, lr_dir = (str(p) for p in data)
    opt['name'] = name
    opt['num_gpu'] = 0
    train = opt['datasets']['train']
    train.update(
        dataroot_gt=hr_dir,
        dataroot_lq=lr_dir,
        io_backend={'type': 'disk'},
        gt_size=32,
        num_worker_per_gpu=0,
        batch_size_per_gpu=2,
        dataset_enlarge_ratio=4)
    opt['datasets'] = {'train': train, 'val': {**opt['datasets']['val'], 'dataroot_gt': hr_dir, 'dataroot_lq': lr_dir}}
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['train']['total_iter'] = iters
    opt['val']['val_freq'] = iters
    opt['logger'].update(print_freq=1, save_checkpoint_freq=iters, use_tb_logger=True)
    if phase == 2:
        opt['network_d'].update(num_feat=8, input_size=32)
        opt['train']['perceptual_opt'].update(vgg_weights='random', layer='vgg22')
    return opt


def run(args: list[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        timeout: int = 600,
        fresh: bool = False) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` the way a user would (no PYTHONPATH), forked from a pre-imported interpreter unless
    ``fresh`` (see launcher.py for what each shows)."""
    return python(args, cwd, env, timeout, fresh)


@pytest.fixture(scope='session')
def paired_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_paired_folder(tmp_path_factory.mktemp('paired'))
