"""``python -m srgan_plugin.prepare verify A.lmdb [B.lmdb]``: check BasicSR LMDBs the way training will read them.

For each database: it is complete (``data.mdb`` and ``meta_info.txt``, meta_info keys unique and equal to the stored
keys: :func:`srgan_plugin.prepare.lmdb_io.check_lmdb`), every entry decodes as an image and has the shape
meta_info.txt gives. For two databases (HR and LR, in either order): the key sets are equal and every HR image is
``scale`` times its LR image in height and width, with the same channels (``--scale``, or the ratio of the first
pair). The exit status says it: 0 when everything checks out, 1 when a problem was found (listed, then one
``error:`` line), 2 for usage errors (:mod:`srgan_plugin.base.errors`). The checks themselves are
:func:`srgan_plugin.prepare.lmdb_io.check_lmdb_pair` and :func:`~srgan_plugin.prepare.lmdb_io.check_images`.
"""
from __future__ import annotations

import argparse
from typing import Optional

import lmdb

from srgan_plugin.base.errors import UsageError, VerifyError
from srgan_plugin.prepare.build import command_parser
from srgan_plugin.prepare.lmdb_io import check_images, check_lmdb, check_lmdb_pair

MAX_LISTED = 20


def _hr_first(first: str, second: str) -> tuple[str, str]:
    """Order two databases HR first, by the height of their first meta_info entries."""
    try:
        heights = [check_lmdb(path)[0].shape[0] for path in (first, second)]
    except (ValueError, OSError, IndexError, lmdb.Error):
        return first, second  # check_lmdb_pair reports what is wrong
    return (second, first) if heights[1] > heights[0] else (first, second)


def verify(paths: list[str], scale: Optional[int] = None) -> str:
    """Verify one database, or an HR / LR pair in either order; returns the one-line report.

    Args:
        paths (list[str]): One or two ``.lmdb`` folders.
        scale (int | None): Expected scale of a pair. Default: None (the ratio of the first pair).

    Returns:
        str: ``OK: ...``.

    Raises:
        VerifyError: Listing the problems.
    """
    if len(paths) == 1:
        entries = check_images(paths[0])
        return f'OK: {paths[0]}: {len(entries)} images, every one decodes to its meta_info.txt shape'
    hr, lr = _hr_first(*paths)
    info = check_lmdb_pair(hr, lr, scale)
    return (f'OK: {info.count} pairs, every image decodes to its meta_info.txt shape, same keys, HR ({hr}) = '
            f'{info.scale} x LR ({lr})')


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``verify`` subcommand."""
    parser = command_parser(
        subparsers, 'verify', 'check one BasicSR LMDB, or an HR/LR pair (exit status 0: fine, 1: problems found)',
        'Check BasicSR LMDBs: complete, every entry decodes to its meta_info.txt shape, and for two (HR and LR, either '
        'order) equal key sets and HR = scale x LR. Exit status 0 when fine, 1 when not.', run)
    parser.add_argument('lmdb', nargs='+', metavar='PATH.lmdb', help='one database, or an HR and an LR database')
    parser.add_argument('--scale', type=int, default=None, help='expected scale of a pair (default: from the data)')
    return parser


def run(args: argparse.Namespace) -> None:
    """Entry point of the ``verify`` subcommand."""
    if len(args.lmdb) > 2:
        raise UsageError(f'verify takes one or two .lmdb folders, got {len(args.lmdb)}')
    try:
        print(verify(args.lmdb, args.scale))
    except VerifyError as error:
        for problem in error.problems[:MAX_LISTED]:
            print(f'  {problem}')
        if len(error.problems) > MAX_LISTED:
            print(f'  ... and {len(error.problems) - MAX_LISTED} more')
        raise VerifyError([
            f'{" ".join(args.lmdb)} does not verify: {len(error.problems)} problem(s), listed above; '
            'rebuild it with python -m srgan_plugin.prepare'
        ]) from None
