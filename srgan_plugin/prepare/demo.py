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

It is built like every other dataset (:mod:`srgan_plugin.prepare.build`), except that ``--out`` must be missing,
empty or hold this very demo. Layout under ``--out`` (default ``datasets/demo``, relative to the working directory),
for scale 4::

    train_HR_sub.lmdb/               data.mdb, lock.mdb, meta_info.txt
    train_LR_bicubic_X4_sub.lmdb/    data.mdb, lock.mdb, meta_info.txt
    val/HR/{chelsea,coffee}.png
    val/LR_bicubic/X4/{chelsea,coffee}.png
    prepare_info.json                what was built (kind, scale, counts); its presence marks a finished build

All images are stored BGR (cv2's order), as BasicSR reads them.
"""
from __future__ import annotations

import argparse
from os import path as osp
from typing import Any, Optional

import cv2
import numpy as np

from srgan_plugin.base.errors import PrepareError
from srgan_plugin.prepare.build import Plan, Summary, add_scale_argument, command_parser, prepare, reuse_problem
from srgan_plugin.prepare.imgops import center_crop
from srgan_plugin.prepare.pipeline import CropSpec, Job
from srgan_plugin.prepare.staging import read_manifest

KIND = 'demo'
DEFAULT_OUT = osp.join('datasets', 'demo')
CROP = CropSpec(crop_size=120, step=60, thresh_size=0)  # every supported scale divides 120
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
HELP = 'build a tiny offline SR dataset from the photos bundled with scikit-image'
DESCRIPTION = ('Build a tiny offline SR dataset (BasicSR LMDB training pair + PNG validation pair) from the colour '
               'photos bundled with scikit-image. Skips when a finished one is already at --out.')


def load_photo(name: str) -> tuple[np.ndarray, list[str]]:
    """One of the demo photos (a key of ``TRAIN_PHOTOS`` or ``VAL_PHOTOS``) as an HxWx3 uint8 BGR array, validation
    photos centre-cropped to ``VAL_MAX_SIZE``; and no conversions (the reader of the demo's jobs)."""
    import skimage.data

    func_name = {**TRAIN_PHOTOS, **VAL_PHOTOS}[name]
    img = getattr(skimage.data, func_name)()
    if isinstance(img, tuple):
        img = img[0]
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise PrepareError(f'skimage.data.{func_name}() is not an RGB uint8 photo in this scikit-image version')
    img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    return (center_crop(img, VAL_MAX_SIZE) if name in VAL_PHOTOS else img), []


def demo_plan(out: str, scale: int = 4) -> Plan:
    """The plan of the demo dataset at ``out``: a training part (LMDB sub-images) and a validation part (PNGs).

    Args:
        out (str): Destination folder.
        scale (int): SR scale; must divide the crop size. Default: 4.

    Returns:
        Plan: Ready for :func:`srgan_plugin.prepare.build.prepare`.
    """
    if CROP.crop_size % scale:
        raise PrepareError(f'scale {scale} does not divide the demo crop size {CROP.crop_size}')
    layout = {
        'train_hr': 'train_HR_sub.lmdb',
        'train_lr': f'train_LR_bicubic_X{scale}_sub.lmdb',
        'val_hr': 'val/HR',
        'val_lr': f'val/LR_bicubic/X{scale}',
    }
    jobs = [Job(name, name, scale, COMPRESS_LEVEL, 0, CROP, part='train', read=load_photo) for name in TRAIN_PHOTOS]
    jobs += [Job(name, name, scale, COMPRESS_LEVEL, 0, part='val', read=load_photo) for name in VAL_PHOTOS]
    settings = {
        'scale': scale,
        'compress_level': COMPRESS_LEVEL,
        **CROP._asdict(),
        'val_max_size': VAL_MAX_SIZE,
        'photos': [*TRAIN_PHOTOS, *VAL_PHOTOS],
        'lr': 'bicubic',
    }

    def info(pairs: dict[str, int]) -> dict[str, Any]:
        return {'train': {'count': pairs.get('train', 0), 'photos': list(TRAIN_PHOTOS)}, 'val': list(VAL_PHOTOS)}

    return Plan(KIND, out, layout, settings, jobs, [], exclusive=True, info=info)


def check_demo(root: str, scale: int = 4) -> Optional[str]:
    """Why ``root`` is not a finished demo dataset for ``scale``, or None when it is one
    (:func:`srgan_plugin.prepare.build.reuse_problem`: the manifest, the LMDB pair and the validation PNGs).

    Args:
        root (str): Folder to check.
        scale (int): Expected scale. Default: 4.

    Returns:
        Optional[str]: A short reason, or None.
    """
    return reuse_problem(demo_plan(root, scale), read_manifest(root))


def prepare_demo(out: str = DEFAULT_OUT, scale: int = 4) -> Summary:
    """Build the demo dataset at ``out``, or do nothing when a finished one for ``scale`` is already there.

    Args:
        out (str): Destination folder; must be missing, empty or hold this demo. Default: ``datasets/demo``.
        scale (int): SR scale, one of ``srgan_plugin.archs.srresnet_arch.SUPPORTED_SCALES``. Default: 4.

    Returns:
        Summary: The manifest and whether a finished build was reused.

    Raises:
        PrepareError: When ``out`` holds something else, or the build cannot be done.
    """
    return prepare(demo_plan(out, scale))


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``demo`` subcommand."""
    parser = command_parser(subparsers, 'demo', HELP, DESCRIPTION, run)
    parser.add_argument('--out', default=DEFAULT_OUT, help='output folder (default: %(default)s)')
    add_scale_argument(parser)
    return parser


def run(args: argparse.Namespace) -> None:
    """Entry point of the ``demo`` subcommand."""
    print(prepare_demo(args.out, args.scale))
