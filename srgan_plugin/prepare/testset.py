"""``python -m srgan_plugin.prepare benchmark --hr DIR --out DIR [--scale 4]``: a test set in the layout the test
options read, with LR made by MATLAB-style bicubic.

For Set5 / Set14 / BSD100 / Urban100-style folders: every HR image is mod-cropped to the scale (top-left kept) and
its LR regenerated with ``basicsr.utils.matlab_functions.imresize`` -- the LR of published x4 tables (the LR files
that ship with some benchmark releases differ from MATLAB's by several grey levels). Layout under ``--out``, for
scale 4::

    HR/{name}.png
    LR_bicubic/X4/{name}.png    same names, so PairedImageDataset (io_backend: disk) pairs them
    prepare_info.json

File names keep the input's stem (dots, spaces and non-ASCII characters work with the disk backend); only stems that
occur twice (``a.png`` and ``a.jpg``) are renamed to unique ones. Policies, re-runs and bad files are as for the other
commands (:mod:`srgan_plugin.prepare.build`).
"""
from __future__ import annotations

import argparse

from srgan_plugin.prepare.build import add_common_arguments, command_parser, dataset_plan, list_images, run_plan

COMPRESS_LEVEL = 3  # cv2's default for PNG files
HELP = 'test set: mod-crop HR, regenerate LR with MATLAB-style bicubic, write HR/ + LR_bicubic/X{scale}/'
DESCRIPTION = ('Mod-crop the HR images of a benchmark set (Set5, Set14, BSD100, Urban100, ...) to the scale, '
               'regenerate their LR with MATLAB-style bicubic and write HR/ and LR_bicubic/X{scale}/ under --out, the '
               'layout the test options read. Re-running over a finished output checks it and does nothing.')
OUT_HELP = 'output folder (e.g. datasets/Set5; may exist)'


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``benchmark`` subcommand."""
    parser = command_parser(subparsers, 'benchmark', HELP, DESCRIPTION, run)
    return add_common_arguments(parser, COMPRESS_LEVEL, 'folder of HR images (e.g. Set5/HR)', OUT_HELP)


def run(args: argparse.Namespace) -> None:
    """Entry point of the ``benchmark`` subcommand."""
    layout = {'hr': 'HR', 'lr': f'LR_bicubic/X{args.scale}'}
    run_plan(dataset_plan('benchmark', args, list_images(args.hr), layout), args)
