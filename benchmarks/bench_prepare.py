"""Measure dataset preparation and data loading: ``python benchmarks/bench_prepare.py --hr DIR [DIR ...]``.

1. Preparation speed: ``python -m srgan_plugin.prepare folder`` on the given HR folders (optionally only the first
   ``--limit`` images of each) with each ``--workers`` count, reporting images/s and sub-images/s of the pipeline
   (the worker pool is started once before, so its start-up is reported separately, not in the rates).
2. Reading speed: random-crop training samples per second through BasicSR's ``PairedImageDataset`` (gt_size 96,
   flips and rotations, one process, as one data loader worker sees it) from the LMDB pair just built and from PNG
   folders holding the very same sub-images (the LMDB values written out as files), ``--seconds`` each.

Prints a Markdown table with the machine (CPU model, cores, load average before and after). Example (the "291" set)::

    python benchmarks/bench_prepare.py --hr ../shared/datasets/BSD200/HR ../shared/datasets/T91/HR --workers 1 2

Nothing is written outside a temporary folder (``--keep DIR`` keeps the outputs there instead).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from os import path as osp
from typing import Any, Optional, Sequence

import numpy as np

import srgan_plugin  # noqa: F401  (makes basicsr importable with current torch)

from srgan_plugin.bench.data import dataset as training_dataset
from srgan_plugin.bench.measure import host as machine
from srgan_plugin.prepare.build import list_images
from srgan_plugin.prepare.cli import main as prepare_main
from srgan_plugin.prepare.lmdb_io import iter_lmdb_items
from srgan_plugin.prepare.pipeline import Job, default_workers, imap_bounded, process_image
from srgan_plugin.prepare.staging import read_manifest

GT_SIZE = 96


def subset(folders: Sequence[str], limit: Optional[int], root: str) -> list[str]:
    """The input folders, or folders of links to the first ``limit`` files of each (same names)."""
    if not limit:
        return list(folders)
    linked = []
    for index, folder in enumerate(folders):
        target = osp.join(root, f'in{index}', osp.basename(osp.normpath(folder)))
        os.makedirs(target)
        for path in list_images(folder)[:limit]:
            os.symlink(osp.abspath(path), osp.join(target, osp.basename(path)))
        linked.append(target)
    return linked


def warm_pool(folder: str, workers: int) -> float:
    """Start the worker pool on one image (the forkserver imports torch once); returns the seconds it took."""
    start = time.perf_counter()
    job = Job(list_images(folder)[0], 'warm', 4, 1, 0)
    for _ in imap_bounded(process_image, [job] * workers, workers):
        pass
    return time.perf_counter() - start


def prepare(folders: Sequence[str], out: str, workers: int, extra: Sequence[str]) -> dict[str, Any]:
    """Run the ``folder`` command; returns its manifest."""
    prepare_main(['folder', '--hr', *folders, '--out', out, '--workers', str(workers), *extra])
    return read_manifest(out)


def export_png(out: str, manifest: dict[str, Any]) -> tuple[str, str]:
    """Write the LMDB pair's values as PNG files (the same bytes) into ``out/png_HR`` and ``out/png_LR``."""
    dirs = []
    for part in ('hr', 'lr'):
        target = osp.join(out, f'png_{part.upper()}')
        os.makedirs(target)
        for key, value in iter_lmdb_items(osp.join(out, manifest['layout'][part])):
            with open(osp.join(target, f'{key}.png'), 'wb') as f:
                f.write(value)
        dirs.append(target)
    return dirs[0], dirs[1]


def samples_per_second(gt: str, lq: str, backend: str, seconds: float, seed: int = 0) -> float:
    """Random training samples per second read through ``PairedImageDataset`` (one process)."""
    dataset = training_dataset(gt, lq, GT_SIZE, backend)
    rng = np.random.default_rng(seed)
    dataset[0]  # opens the backend
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        dataset[int(rng.integers(len(dataset)))]
        count += 1
    return count / (time.perf_counter() - start)


def run(args: argparse.Namespace, root: str) -> list[str]:
    """All measurements; returns the Markdown lines."""
    lines = [f'machine: {machine()}', '', '| measurement | value |', '|---|---|']
    folders = subset(args.hr, args.limit, root)
    extra = ['--crop-size', str(args.crop_size), '--step', str(args.step), '--min-size', str(GT_SIZE)]
    manifest, out = None, ''
    for workers in args.workers:
        if workers > 1:
            lines.append(f'| pool start-up, {workers} workers | {warm_pool(folders[0], workers):.1f} s |')
        out = osp.join(root, f'prepared_w{workers}')
        manifest = prepare(folders, out, workers, extra)
        images, subs, secs = manifest['images'], manifest['count'], manifest['seconds']
        lines.append(f'| prepare, {workers} worker(s): {images} images -> {subs} sub-images | {secs:.1f} s = '
                     f'{images / secs:.1f} images/s, {subs / secs:.0f} sub-images/s |')
    hr_png, lr_png = export_png(out, manifest)
    rates = {
        'LMDB': samples_per_second(*(osp.join(out, manifest['layout'][p]) for p in ('hr', 'lr')), 'lmdb', args.seconds),
        'PNG folders': samples_per_second(hr_png, lr_png, 'disk', args.seconds),
    }
    for name, rate in rates.items():
        lines.append(f'| PairedImageDataset random {GT_SIZE} px crops from {name} ({manifest["count"]} '
                     f'{manifest["settings"]["crop_size"]} px sub-images), 1 process | {rate:.0f} samples/s |')
    lines += ['', f'after: load average {os.getloadavg()[0]:.2f}']
    return lines


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Parse the arguments, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--hr', nargs='+', required=True, help='HR folder(s), e.g. BSD200/HR T91/HR')
    parser.add_argument('--workers', nargs='+', type=int, default=[1, default_workers()], help='worker counts')
    parser.add_argument('--limit', type=int, default=0, help='only the first N images of each folder (0: all)')
    parser.add_argument('--crop-size', type=int, default=240, help='sub-image size (default: %(default)s)')
    parser.add_argument('--step', type=int, default=120, help='sub-image step (default: %(default)s)')
    parser.add_argument('--seconds', type=float, default=5., help='sampling time per backend (default: %(default)s)')
    parser.add_argument('--keep', help='write the outputs here (must not exist) instead of a temporary folder')
    args = parser.parse_args(argv)
    if args.keep:
        os.makedirs(args.keep)  # a new folder: nothing of the user's is overwritten
    root = args.keep or tempfile.mkdtemp(prefix='bench_prepare_')
    try:
        print('\n'.join(run(args, root)))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
