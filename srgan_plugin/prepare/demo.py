"""``python -m srgan_plugin.prepare demo``: a tiny, fully offline SR dataset from the photos bundled with scikit-image.

Nothing is downloaded: the photos ship inside the installed ``skimage/data`` folder. Grayscale images, RGBA cut-outs
and synthetic pictures are left out; the colour photos are split into

* training: ``astronaut``, ``immunohistochemistry``, ``rocket`` and ``motorcycle`` (left view of
  ``skimage.data.stereo_motorcycle``), mod-cropped to the scale and cut into 120x120 HR sub-images with step 60
  (BasicSR's ``extract_subimages.py`` rule, threshold 0): 294 sub-images. Each LR sub-image is the MATLAB-bicubic
  downscale of its HR sub-image. Both are stored as BasicSR LMDBs with the same keys (``astronaut_s001``, ...).
* validation: ``chelsea`` and ``coffee``, centre-cropped to at most 256 px per side and mod-cropped, written as PNGs
  with the same file name in ``val/HR`` and ``val/LR_bicubic/X{scale}``, so that ``PairedImageDataset`` with
  ``io_backend: disk`` and the default ``filename_tmpl: '{}'`` pairs them.

Layout under ``--out`` (default ``datasets/demo``, relative to the working directory), for scale 4::

    train_HR_sub.lmdb/               data.mdb, lock.mdb, meta_info.txt
    train_LR_bicubic_X4_sub.lmdb/    data.mdb, lock.mdb, meta_info.txt
    val/HR/{chelsea,coffee}.png
    val/LR_bicubic/X4/{chelsea,coffee}.png
    prepare_info.json                what was built (kind, scale, counts); its presence marks a finished build

All images are stored BGR (cv2's order), as BasicSR reads them.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from os import path as osp
from typing import Any, Iterator, Optional

import cv2
import numpy as np
from basicsr.utils import imwrite
from tqdm import tqdm

from srgan_plugin.base.errors import PrepareError, VerifyError
from srgan_plugin.prepare.imgops import (bicubic_downscale, center_crop, extract_subimages, mod_crop,
                                         subimage_positions, torch_threads)
from srgan_plugin.prepare.lmdb_io import LmdbWriter, check_lmdb_pair
from srgan_plugin.prepare.staging import is_empty_dir, read_manifest, staged_output, write_manifest
from srgan_plugin.version import __version__

KIND = 'demo'
DEFAULT_OUT = osp.join('datasets', 'demo')
SCALES = (2, 3, 4, 8)  # divisors of CROP_SIZE
CROP_SIZE = 120
STEP = 60
THRESH_SIZE = 0
VAL_MAX_SIZE = 256
COMPRESS_LEVEL = 1
# image name -> function of skimage.data returning it (RGB uint8; a tuple's first element for stereo pairs)
TRAIN_PHOTOS = {
    'astronaut': 'astronaut',
    'immunohistochemistry': 'immunohistochemistry',
    'rocket': 'rocket',
    'motorcycle': 'stereo_motorcycle',
}
VAL_PHOTOS = {'chelsea': 'chelsea', 'coffee': 'coffee'}


def demo_layout(scale: int) -> dict[str, str]:
    """Paths of the demo dataset's parts, relative to its root (``/``-separated)."""
    return {
        'train_hr': 'train_HR_sub.lmdb',
        'train_lr': f'train_LR_bicubic_X{scale}_sub.lmdb',
        'val_hr': 'val/HR',
        'val_lr': f'val/LR_bicubic/X{scale}',
    }


def load_photo(name: str) -> np.ndarray:
    """One of the demo photos (a key of ``TRAIN_PHOTOS`` or ``VAL_PHOTOS``) as an HxWx3 uint8 BGR array."""
    import skimage.data

    func_name = {**TRAIN_PHOTOS, **VAL_PHOTOS}[name]
    img = getattr(skimage.data, func_name)()
    if isinstance(img, tuple):
        img = img[0]
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise PrepareError(f'skimage.data.{func_name}() is not an RGB uint8 photo in this scikit-image version')
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def _train_pairs(scale: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(key, HR sub-image, LR sub-image)`` for all training photos, with a progress bar."""
    photos = {name: mod_crop(load_photo(name), scale) for name in TRAIN_PHOTOS}
    total = sum(len(subimage_positions(*img.shape[:2], CROP_SIZE, STEP, THRESH_SIZE)) for img in photos.values())
    with tqdm(total=total, unit='img', desc='train sub-images', disable=None) as pbar:
        for name, img in photos.items():
            for key, hr in extract_subimages(img, name, CROP_SIZE, STEP, THRESH_SIZE):
                yield key, hr, bicubic_downscale(hr, scale)
                pbar.update(1)


def _write_train(root: str, layout: dict[str, str], scale: int) -> int:
    """Write the training LMDB pair; returns the number of sub-images."""
    with LmdbWriter(osp.join(root, layout['train_hr']), COMPRESS_LEVEL) as hr_db, \
            LmdbWriter(osp.join(root, layout['train_lr']), COMPRESS_LEVEL) as lr_db:
        for key, hr, lr in _train_pairs(scale):
            hr_db.put(key, hr)
            lr_db.put(key, lr)
    return len(hr_db)


def _write_val(root: str, layout: dict[str, str], scale: int) -> dict[str, list[int]]:
    """Write the validation PNG pairs; returns ``{name: [hr_h, hr_w]}``."""
    sizes = {}
    for name in VAL_PHOTOS:
        hr = mod_crop(center_crop(load_photo(name), VAL_MAX_SIZE), scale)
        params = [cv2.IMWRITE_PNG_COMPRESSION, COMPRESS_LEVEL]
        imwrite(hr, osp.join(root, layout['val_hr'], f'{name}.png'), params)
        imwrite(bicubic_downscale(hr, scale), osp.join(root, layout['val_lr'], f'{name}.png'), params)
        sizes[name] = list(hr.shape[:2])
    return sizes


def build_demo(root: str, scale: int = 4) -> dict[str, Any]:
    """Write the whole demo dataset and its manifest into the existing, empty folder ``root``.

    Args:
        root (str): Folder to fill (the staging folder when called by :func:`prepare_demo`).
        scale (int): SR scale; must divide ``CROP_SIZE``. Default: 4.

    Returns:
        dict[str, Any]: The manifest written to ``root``.
    """
    if CROP_SIZE % scale:
        raise PrepareError(f'scale {scale} does not divide the demo crop size {CROP_SIZE}; use one of {SCALES}')
    layout = demo_layout(scale)
    with torch_threads(1):
        count = _write_train(root, layout, scale)
        val_sizes = _write_val(root, layout, scale)
    manifest = {
        'kind': KIND,
        'scale': scale,
        'layout': layout,
        'train': {
            'count': count,
            'hr_size': CROP_SIZE,
            'step': STEP,
            'thresh_size': THRESH_SIZE,
            'photos': list(TRAIN_PHOTOS),
        },
        'val': val_sizes,
        'degradation': 'MATLAB bicubic (basicsr.utils.matlab_functions.imresize), rounded to uint8',
        'srgan_plugin': __version__,
    }
    write_manifest(root, manifest)
    return manifest


def _check_finished(root: str, scale: int) -> dict[str, Any]:
    """The manifest of a finished demo for ``scale``; ``ValueError`` with the reason when ``root`` is not one."""
    manifest = read_manifest(root)
    if manifest is None or manifest.get('kind') != KIND:
        raise ValueError('no demo manifest in it')
    if manifest.get('scale') != scale:
        raise ValueError(f"it holds the demo for scale {manifest.get('scale')}")
    layout = demo_layout(scale)
    try:
        pair = check_lmdb_pair(
            osp.join(root, layout['train_hr']), osp.join(root, layout['train_lr']), scale, decode=False)
    except VerifyError as error:
        raise ValueError(error.problems[0]) from None
    if pair.count != manifest['train']['count']:
        raise ValueError('its training LMDBs do not hold the expected keys')
    for name in manifest['val']:
        for part in ('val_hr', 'val_lr'):
            if not osp.isfile(osp.join(root, layout[part], f'{name}.png')):
                raise ValueError(f'{layout[part]}/{name}.png is missing')
    return manifest


def check_demo(root: str, scale: int = 4) -> Optional[str]:
    """Why ``root`` is not a finished demo dataset for ``scale``, or None when it is one.

    Finished means: the manifest says demo / ``scale``, the two LMDBs pass :func:`check_lmdb_pair` (equal key sets,
    HR = scale x LR) with the manifest's count, and the validation PNGs are there.

    Args:
        root (str): Folder to check.
        scale (int): Expected scale. Default: 4.

    Returns:
        Optional[str]: A short reason, or None.
    """
    if not osp.isdir(root):
        return 'not a folder'
    try:
        _check_finished(root, scale)
    except (ValueError, KeyError, TypeError, OSError) as error:
        return str(error)
    return None


@dataclasses.dataclass
class DemoSummary:
    """What :func:`prepare_demo` built or found."""
    out: str
    manifest: dict[str, Any]
    seconds: float
    skipped: bool

    def __str__(self) -> str:
        scale, train, val = self.manifest['scale'], self.manifest['train'], self.manifest['val']
        layout = self.manifest['layout']
        lr_size = train['hr_size'] // scale
        val_sizes = ', '.join(f'{name} {h}x{w} -> {h // scale}x{w // scale}' for name, (h, w) in val.items())
        verb = 'is already complete; nothing to do' if self.skipped else f'built in {self.seconds:.1f} s'
        return '\n'.join([
            f'Demo dataset (X{scale}) in {self.out} {verb}.',
            f"  train: {train['count']} sub-images, HR {train['hr_size']}x{train['hr_size']} -> LR "
            f"{lr_size}x{lr_size}, in {layout['train_hr']} and {layout['train_lr']}",
            f"  val:   {len(val)} images ({val_sizes}), in {layout['val_hr']} and {layout['val_lr']}",
        ])


def prepare_demo(out: str = DEFAULT_OUT, scale: int = 4) -> DemoSummary:
    """Build the demo dataset at ``out``, or do nothing when a finished one for ``scale`` is already there.

    The dataset is built in a staging folder next to ``out`` and renamed into place at the end
    (:func:`srgan_plugin.prepare.staging.staged_output`). An empty folder at ``out`` is replaced; anything else
    that is not a finished demo dataset for ``scale`` is left alone and reported.

    Args:
        out (str): Destination folder. Default: ``datasets/demo``.
        scale (int): SR scale, one of ``SCALES``. Default: 4.

    Returns:
        DemoSummary: The manifest, the time taken and whether the build was skipped.

    Raises:
        PrepareError: When ``out`` holds something else, or the build cannot be done.
    """
    start = time.perf_counter()
    if osp.lexists(out) and not is_empty_dir(out):
        reason = check_demo(out, scale)
        if reason is not None:
            raise PrepareError(f'{out} exists but is not a finished demo dataset for scale {scale} ({reason}); '
                               'remove it or pass --out elsewhere')
        return DemoSummary(out, read_manifest(out), time.perf_counter() - start, skipped=True)
    with staged_output(out) as tmp:
        manifest = build_demo(tmp, scale)
    return DemoSummary(out, manifest, time.perf_counter() - start, skipped=False)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        'demo',
        help='build a tiny offline SR dataset from the photos bundled with scikit-image',
        description='Build a tiny offline SR dataset (BasicSR LMDB training pair + PNG validation pair) from the '
        'colour photos bundled with scikit-image. Skips when a finished one is already at --out.')
    parser.add_argument('--out', default=DEFAULT_OUT, help='output folder (default: %(default)s)')
    parser.add_argument('--scale', type=int, default=4, choices=SCALES, help='SR scale (default: %(default)s)')
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    """Entry point of the ``demo`` subcommand."""
    print(prepare_demo(args.out, args.scale))
