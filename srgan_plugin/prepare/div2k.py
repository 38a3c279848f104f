"""``python -m srgan_plugin.prepare div2k --hr DIR [--lr DIR] --out datasets/DIV2K``: the LMDBs the x4 options read.

As BasicSR's ``scripts/data_preparation/extract_subimages.py`` + ``create_lmdb.py`` do for DIV2K: HR sub-images of
480 px with step 240 and threshold 0 (DIV2K's 800 training images give 32,592), keys ``0001_s001`` ...; the LR
sub-images are

* with ``--lr``: cut from the official ``DIV2K_train_LR_bicubic/X4/0001x4.png`` files (made by MATLAB) at the
  matching coordinates, HR box ``(y, x, 480, 480)`` <-> LR box ``(y / 4, x / 4, 120, 120)`` -- what BasicSR's scripts
  give when run on the LR folder with crop 120 / step 60;
* without: the MATLAB-style bicubic downscale (``basicsr.utils.matlab_functions.imresize``) of each HR sub-image.

Layout under ``--out`` (default ``datasets/DIV2K``, which may already hold ``DIV2K_train_HR`` etc.; they are left
alone)::

    DIV2K_train_HR_sub.lmdb/              data.mdb, lock.mdb, meta_info.txt
    DIV2K_train_LR_bicubic_X4_sub.lmdb/   the same keys
    keys.tsv, prepare_info.json

Everything else (crop options, policies, re-runs, bad files) is as for ``folder`` (:mod:`srgan_plugin.prepare.folder`).
"""
from __future__ import annotations

import argparse
from os import path as osp
from typing import Sequence

from srgan_plugin.base.errors import PrepareError
from srgan_plugin.prepare.build import (add_common_arguments, command_parser, crop_spec, dataset_plan, list_images,
                                        lmdb_layout, run_plan)
from srgan_plugin.prepare.folder import COMPRESS_LEVEL
from srgan_plugin.prepare.pipeline import CropSpec

DEFAULT_OUT = osp.join('datasets', 'DIV2K')
CROP = CropSpec(crop_size=480, step=240, thresh_size=0)  # BasicSR's extract_subimages.py for DIV2K HR
DIV2K_TRAIN_SUBIMAGES = 32592  # what those settings give for DIV2K_train_HR (800 images)
HELP = 'DIV2K -> 480 px sub-images -> the BasicSR LMDBs the x4 option files read'
DESCRIPTION = ('Cut DIV2K_train_HR into sub-images as BasicSR does (480 px, step 240: 32,592 for the 800 training '
               'images), take the LR from the official LR files (--lr) or make it with MATLAB-style bicubic, and write '
               'DIV2K_train_HR_sub.lmdb / DIV2K_train_LR_bicubic_X{scale}_sub.lmdb under --out. Re-running over a '
               'finished output checks it and does nothing.')
LR_HELP = ('official LR images (DIV2K_train_LR_bicubic or its X{scale} folder; files 0001x4.png or 0001.png) to cut '
           'at the matching coordinates (default: make the LR with MATLAB-style bicubic)')


def lr_folder(lr: str, scale: int) -> str:
    """``lr`` itself, or its ``X{scale}`` sub-folder when it has one (``DIV2K_train_LR_bicubic`` -> ``.../X4``)."""
    sub = osp.join(lr, f'X{scale}')
    return sub if osp.isdir(sub) else lr


def match_lr_files(hr_files: Sequence[str], lr_dir: str, scale: int) -> list[str]:
    """The LR file of each HR file: ``{stem}x{scale}{ext}`` (DIV2K's naming) or ``{stem}{ext}`` in ``lr_dir``.

    Args:
        hr_files (Sequence[str]): The HR files.
        lr_dir (str): The LR folder.
        scale (int): SR scale.

    Returns:
        list[str]: One LR path per HR file.

    Raises:
        PrepareError: When some HR file has none (how many, and one example).
    """
    available = {osp.basename(path): path for path in list_images(lr_dir)}
    matched, missing = [], []
    for path in hr_files:
        stem, ext = osp.splitext(osp.basename(path))
        found = [available[name] for name in (f'{stem}x{scale}{ext}', f'{stem}{ext}') if name in available]
        matched.append(found[0] if found else '')
        if not found:
            missing.append(f'{stem}x{scale}{ext}')
    if missing:
        raise PrepareError(f'{len(missing)} of the {len(hr_files)} HR images have no LR file in {lr_dir} (e.g. '
                           f'{missing[0]}); pass the LR folder of the same images and --scale, or leave out --lr')
    return matched


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``div2k`` subcommand."""
    parser = command_parser(subparsers, 'div2k', HELP, DESCRIPTION, run)
    parser.add_argument('--lr', metavar='DIR', help=LR_HELP)
    return add_common_arguments(
        parser,
        COMPRESS_LEVEL,
        'DIV2K_train_HR (or any HR folder)',
        'output folder (default: %(default)s; may exist)',
        out_default=DEFAULT_OUT,
        crop=CROP)


def run(args: argparse.Namespace) -> None:
    """Entry point of the ``div2k`` subcommand."""
    crop = crop_spec(args)
    hr_files = list_images(args.hr)
    lr_files = None
    if args.lr:
        args.lr = lr_folder(args.lr, args.scale)
        lr_files = match_lr_files(hr_files, args.lr, args.scale)
    run_plan(dataset_plan('div2k', args, hr_files, lmdb_layout('DIV2K_train', args.scale), crop, lr_files), args)
