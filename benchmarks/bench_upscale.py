"""Measure ``python -m srgan_plugin.upscale`` on CPU: time and peak memory, tiled vs untiled agreement.

``python benchmarks/bench_upscale.py [--size 1024] [--tiles auto 128] [--compare-size 128]``

1. Time and peak resident memory of the whole command (a fresh ``python -m srgan_plugin.upscale`` process per
   setting, measured from outside: wall clock, and the child's ``ru_maxrss`` from ``os.wait4``, i.e. the process
   peak RSS, Python, torch and the image buffers included) for a ``--size``-square LR image -> a ``4 x --size``
   output, with each ``--tiles`` setting (``auto`` = the command's default). The network is the **default SRResNet
   (x4, 64 features, 16 blocks) with random weights** (:func:`srgan_plugin.inference.weights.random_generator`):
   speed and memory do not depend on the weights' values, but the output is not a meaningful image. A baseline row
   gives the peak RSS of a process that only imports the command and loads the checkpoint.
2. Agreement: the same network in-process on a ``--compare-size`` image, whole vs tiled (``--compare-tile``, the
   default pad, and pad 0 for contrast): max abs difference of the float outputs and of the 8-bit outputs.

Prints a Markdown table with the machine line. Nothing is written outside a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from os import path as osp
from typing import Sequence

import cv2
import numpy as np
import torch

from srgan_plugin.inference.imageio import quantize
from srgan_plugin.inference.tiling import Upscaler
from srgan_plugin.inference.weights import random_generator

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
from bench_prepare import machine  # noqa: E402

REPO = osp.dirname(HERE)
LOAD_ONLY = ('import sys; from srgan_plugin.inference.weights import load_generator; '
             'load_generator(sys.argv[1])')


def smooth_image(size: int, seed: int = 0) -> np.ndarray:
    """A size x size uint8 BGR image: random low-resolution noise upscaled bicubically (smooth, textured)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (max(2, size // 16), max(2, size // 16), 3), np.uint8)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def measure(args: Sequence[str]) -> tuple[float, float]:
    """Run ``python ARGS`` in a fresh process; return (wall seconds, peak RSS in MiB). Fails on a non-zero exit."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            stderr.seek(0)
            raise SystemExit(f'error: {" ".join(args)} failed: {stderr.read().decode()[-500:]}')
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def command_rows(size: int, tiles: Sequence[str], root: str) -> list[str]:
    """Markdown rows: baseline (load only) and one per tile setting for a size x size LR image."""
    model, image = osp.join(root, 'random_srresnet_x4.pth'), osp.join(root, 'lr.png')
    torch.save({'params': random_generator().state_dict()}, model)
    cv2.imwrite(image, smooth_image(size))
    seconds, rss = measure(['-c', LOAD_ONLY, model])
    rows = [f'| import + load checkpoint only | {seconds:.1f} s | {rss:,.0f} MiB |']
    for tile in tiles:
        out = osp.join(root, f'out_{tile}')
        extra = [] if tile == 'auto' else ['--tile', tile]
        seconds, rss = measure(
            ['-m', 'srgan_plugin.upscale', '-i', image, '-o', out, '--model', model, '--device', 'cpu', *extra])
        written = cv2.imread(osp.join(out, 'lr_out.png'), cv2.IMREAD_UNCHANGED).shape
        rows.append(f'| {size}x{size} -> {written[1]}x{written[0]}, --tile {tile} | {seconds:.1f} s | {rss:,.0f} MiB |')
    return rows


def agreement_rows(size: int, tile: int) -> list[str]:
    """Markdown rows: max abs difference whole vs tiled, with the default pad and with pad 0."""
    net = random_generator()
    img = smooth_image(size, seed=1)[..., ::-1].astype(np.float32) / 255.
    whole = Upscaler.for_network(net, 4, tile=0).upscale(img)
    rows = []
    for pad in (None, 0):
        tiled_upscaler = Upscaler.for_network(net, 4, tile_pad=pad, tile=tile)
        tiled = tiled_upscaler.upscale(img)
        float_diff = np.abs(tiled - whole).max()
        byte_diff = np.abs(quantize(tiled, 255).astype(int) - quantize(whole, 255)).max()
        rows.append(f'| {size}x{size}, --tile {tile} --tile-pad {tiled_upscaler.tile_pad} vs whole | '
                    f'float {float_diff:.2e} | 8-bit {byte_diff} grey levels |')
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=1024, help='LR side for time and memory (default: 1024)')
    parser.add_argument('--tiles', nargs='+', default=['auto', '128'], help="tile settings (default: auto 128)")
    parser.add_argument('--compare-size', type=int, default=128, help='LR side for the agreement (default: 128)')
    parser.add_argument('--compare-tile', type=int, default=48, help='tile for the agreement (default: 48)')
    args = parser.parse_args(argv)
    print(f'machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads')
    print('network: default SRResNet x4 (64 features, 16 blocks) with RANDOM weights (not a trained model)\n')
    with tempfile.TemporaryDirectory() as root:
        rows = command_rows(args.size, args.tiles, root)
    print('| run (CPU) | wall time | peak RSS |\n|---|---:|---:|\n' + '\n'.join(rows))
    print('\n| agreement | max abs difference | |\n|---|---:|---:|')
    print('\n'.join(agreement_rows(args.compare_size, args.compare_tile)))


if __name__ == '__main__':
    main()
