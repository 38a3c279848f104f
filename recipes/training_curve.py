"""Score every saved generator of a training run on a benchmark set, live (``params``) and EMA (``params_ema``), and
draw the curve.

``python recipes/training_curve.py experiments/NAME --data-root datasets/reference --set Set5 --out curve.png``
scores each ``models/net_g_<iteration>.pth`` with the paper's protocol (PSNR on Y, ``scale`` px shaved, the LR of
``<set>/LR_bicubic/X<scale>``), writes ``curve.json`` beside the PNG, and prints a table. The PNG plots both curves
and the bicubic baseline against the iteration. Exit status 1 with one ``error:`` line on bad input.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from os import path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # `python recipes/training_curve.py` from a checkout without `pip install`

from basicsr.metrics import calculate_psnr  # noqa: E402

from srgan_plugin.inference import weights as checkpoint  # noqa: E402
from srgan_plugin.visualize import bicubic_upscale  # noqa: E402

KEYS = ('params', 'params_ema')
COLOURS = {'params': (200, 120, 30), 'params_ema': (40, 40, 210), 'bicubic': (140, 140, 140)}  # BGR


class CurveError(Exception):
    """A bad input: reported as one ``error:`` line."""


def checkpoints(experiment: str) -> list[tuple[int, str]]:
    """``(iteration, path)`` of every ``models/net_g_<iteration>.pth`` of ``experiment``, oldest first."""
    folder = osp.join(experiment, 'models')
    if not osp.isdir(folder):
        raise CurveError(f'{folder} not found; pass the experiment folder of a training run')
    found = [(int(m.group(1)), osp.join(folder, m.group(0)))
             for m in map(re.compile(r'net_g_(\d+)\.pth').fullmatch, os.listdir(folder)) if m]
    if not found:
        raise CurveError(f'{folder} has no net_g_<iteration>.pth files yet')
    return sorted(found)


def read_set(root: str, name: str, scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR, HR) uint8 BGR pairs of ``root/name``."""
    hr_dir, lr_dir = osp.join(root, name, 'HR'), osp.join(root, name, 'LR_bicubic', f'X{scale}')
    if not osp.isdir(hr_dir) or not osp.isdir(lr_dir):
        raise CurveError(f'{hr_dir} or {lr_dir} not found (python -m srgan_plugin.prepare benchmark makes them)')
    pairs = []
    for file in sorted(os.listdir(hr_dir)):
        hr, lr = (cv2.imread(osp.join(d, file), cv2.IMREAD_COLOR) for d in (hr_dir, lr_dir))
        if hr is None or lr is None:
            raise CurveError(f'{file} is missing or unreadable in {hr_dir} or {lr_dir}')
        pairs.append((lr, hr))
    return pairs


@torch.no_grad()
def psnr_y(net: torch.nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]], scale: int) -> float:
    """Mean PSNR on Y with ``scale`` px shaved (the paper's protocol) of ``net`` (None: bicubic) over ``pairs``."""
    scores = []
    for lr, hr in pairs:
        if net is None:
            sr = bicubic_upscale(lr, scale)
        else:
            x = torch.from_numpy(lr[..., ::-1].astype(np.float32) / 255.).permute(2, 0, 1)[None]
            out = net(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()[..., ::-1]
            sr = np.round(out * 255.).astype(np.uint8)
        scores.append(calculate_psnr(sr, hr, crop_border=scale, test_y_channel=True))
    return float(np.mean(scores))


def score(path: str, pairs: list[tuple[np.ndarray, np.ndarray]], scale: int) -> dict[str, float]:
    """PSNR-Y of the live and the EMA generator of one checkpoint (a key that is absent is left out)."""
    saved = torch.load(path, map_location='cpu', weights_only=True)
    result = {}
    for key in KEYS:
        if key in saved:
            state = checkpoint.select_params({key: saved[key]}, path)
            net = checkpoint.build_generator(checkpoint.infer_arch(state, path))
            net.load_state_dict(state)
            result[key] = psnr_y(net.eval(), pairs, scale)
    return result


def draw(rows: list[dict], bicubic: float, title: str, out: str, size: tuple[int, int] = (900, 520)) -> None:
    """A line chart of PSNR-Y against the iteration, one line per key, drawn with OpenCV."""
    width, height = size
    left, right, top, bottom = 70, 20, 40, 50
    canvas = np.full((height, width, 3), 255, np.uint8)
    iters = [row['iteration'] for row in rows]
    values = [row[k] for row in rows for k in KEYS if k in row] + [bicubic]
    x_max, y_min, y_max = max(iters), np.floor(min(values) - 0.5), np.ceil(max(values) + 0.5)

    def point(it: float, value: float) -> tuple[int, int]:
        x = left + (width - left - right) * it / x_max
        y = top + (height - top - bottom) * (y_max - value) / (y_max - y_min)
        return int(round(x)), int(round(y))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for value in np.arange(y_min, y_max + 1e-6, 1.0):
        cv2.line(canvas, point(0, value), point(x_max, value), (230, 230, 230), 1)
        cv2.putText(canvas, f'{value:.0f}', (10, point(0, value)[1] + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for it in np.linspace(0, x_max, 6):
        cv2.putText(canvas, f'{it:.0f}', (point(it, y_min)[0] - 15, height - 25), font, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.line(canvas, point(0, bicubic), point(x_max, bicubic), COLOURS['bicubic'], 1, cv2.LINE_AA)
    for key in KEYS:
        points = [point(row['iteration'], row[key]) for row in rows if key in row]
        for a, b in zip(points, points[1:]):
            cv2.line(canvas, a, b, COLOURS[key], 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(canvas, p, 3, COLOURS[key], -1, cv2.LINE_AA)
    legend = [('EMA generator (params_ema)', 'params_ema'), ('live generator (params)', 'params'),
              (f'bicubic ({bicubic:.2f} dB)', 'bicubic')]
    for i, (text, key) in enumerate(legend):
        y = top + 20 + 20 * i
        cv2.line(canvas, (width - 260, y - 4), (width - 235, y - 4), COLOURS[key], 2)
        cv2.putText(canvas, text, (width - 228, y), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, title, (left, 25), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, 'iteration', (width // 2 - 30, height - 6), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(out, canvas):
        raise CurveError(f'cannot write {out}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog='python recipes/training_curve.py', description=__doc__.split('\n')[0])
    parser.add_argument('experiment', help='experiment folder (experiments/NAME)')
    parser.add_argument('--data-root', required=True, help='folder holding <set>/HR and <set>/LR_bicubic/X<scale>')
    parser.add_argument('--set', default='Set5', help='benchmark set (default: %(default)s)')
    parser.add_argument('--scale', type=int, default=4, help='scale (default: %(default)s)')
    parser.add_argument('--out', required=True, help='PNG to write; the scores go to the same name with .json')
    args = parser.parse_args(argv)
    try:
        pairs = read_set(args.data_root, args.set, args.scale)
        rows = []
        for iteration, path in checkpoints(args.experiment):
            rows.append({'iteration': iteration, **score(path, pairs, args.scale)})
            print(' '.join(f'{k} {v:.2f}' if k != 'iteration' else f'{k} {v:6d}' for k, v in rows[-1].items()),
                  flush=True)
        bicubic = psnr_y(None, pairs, args.scale)
        title = f'{osp.basename(osp.normpath(args.experiment))}: {args.set} PSNR-Y (dB, {args.scale} px shaved)'
        draw(rows, bicubic, title, args.out)
        with open(osp.splitext(args.out)[0] + '.json', 'w', encoding='utf-8') as f:
            json.dump({'set': args.set, 'bicubic': bicubic, 'checkpoints': rows}, f, indent=1)
    except (CurveError, OSError, checkpoint.InferenceError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
