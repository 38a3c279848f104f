"""``python -m srgan_plugin.evaluate``: bicubic and trained checkpoints on benchmark sets (Set5, Set14, ...).

Usage::

    python -m srgan_plugin.evaluate [--model A.pth|srresnet|srgan ...] --data-root DIR --sets Set5 Set14 --out DIR
                                    [--device auto|cpu|cuda] [--scale 4] [--test-only] [--save-images]

Each set is ``DIR/<set>/HR/`` + ``DIR/<set>/LR_bicubic/X<scale>/`` (same file names), the layout of
``../shared/datasets`` and of ``python -m srgan_plugin.prepare benchmark``. HR is mod-cropped to the scale and must
then be exactly ``scale x`` the LR. Per set, for bicubic and each model:

* PSNR / SSIM on Y (ITU-R BT.601 as MATLAB's ``rgb2ycbcr``, via basicsr's ``bgr2ycbcr(y_only=True)`` inside
  ``calculate_psnr(test_y_channel=True)``), ``scale`` px shaved from each border: the SRGAN paper's protocol.
* PSNR / SSIM on RGB, ``scale`` px shaved: BasicSR's model-zoo protocol.
* NIQE (basicsr's, on Y, no reference; needs two 96 px blocks) and LPIPS where :mod:`srgan_plugin.metrics` can
  compute it offline; otherwise a note, never an error.

Bicubic is MATLAB-style bicubic (``basicsr.utils.matlab_functions.imresize``) of the set's LR image. Writes
``results.json``, ``results.md`` and ``<set>_comparison.png`` (centre crops: bicubic | models | HR, labelled with
PSNR-Y). A set without ``HR/`` (or ``--test-only``) is run in test-only mode: its SR images are written to
``<out>/<set>/<method>/`` and nothing is measured.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import warnings
from os import path as osp
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from srgan_plugin.base.errors import ArgumentParser, InferenceError, command_errors, number_argument
from srgan_plugin.base.files import atomic_output
from srgan_plugin.inference import imageio, weights
from srgan_plugin.inference.runtime import INTERRUPTED, log, resolve_device
from srgan_plugin.inference.tiling import Upscaler
from srgan_plugin.prepare.imgops import BadImage, center_crop, mod_crop, read_image
from srgan_plugin.visualize import bicubic_upscale, grid

PROG = 'python -m srgan_plugin.evaluate'
METRICS = {
    'psnr_y': 'PSNR-Y (dB)',
    'ssim_y': 'SSIM-Y',
    'psnr_rgb': 'PSNR-RGB (dB)',
    'ssim_rgb': 'SSIM-RGB',
    'niqe': 'NIQE (lower better)',
    'lpips': 'LPIPS (lower better)',
    'grid': 'Grid (lower better)'
}
NIQE_BLOCK = 96
GRID_PROTOCOL = 'checkerboard: RMS (8-bit levels) of the Y texture repeating (srgan_plugin.metrics.grid_amplitude)'


@dataclasses.dataclass
class Method:
    """Bicubic (``upscaler`` None) or a checkpoint, with its label in tables and grids."""
    label: str
    upscaler: Optional[Upscaler] = None
    path: Optional[str] = None
    arch: str = 'MATLAB-style bicubic of the LR image'

    def run(self, lr: np.ndarray, scale: int) -> np.ndarray:
        """Upscale a uint8 BGR LR image to a uint8 BGR SR image (the network sees RGB, as BasicSR trains it)."""
        if self.upscaler is None:
            return bicubic_upscale(lr, scale)
        rgb = lr[..., ::-1].astype(np.float32) / 255.
        return self.upscaler.upscale(rgb, _to_bgr_uint8)


@dataclasses.dataclass
class Sample:
    """One image of a set: its name and LR file, and its HR file (None in test-only mode)."""
    name: str
    lr_path: str
    hr_path: Optional[str]


def _to_bgr_uint8(tile: np.ndarray) -> np.ndarray:
    """Network output tile (float RGB) -> uint8 BGR, rounded as BasicSR's ``tensor2img``."""
    return imageio.quantize(tile[..., ::-1], 255)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = ArgumentParser(prog=PROG, description='PSNR/SSIM (Y and RGB), NIQE, LPIPS on benchmark sets.')
    parser.add_argument(
        '--model',
        action='append',
        default=[],
        help='BasicSR checkpoint or shipped model name (srresnet, srgan); repeat for several')
    parser.add_argument('--data-root', required=True, help='folder holding <set>/HR and <set>/LR_bicubic/X<scale>')
    parser.add_argument('--sets', nargs='+', required=True, help='set folder names, e.g. Set5 Set14')
    parser.add_argument('--out', required=True, help='folder for results.json, results.md and the grids')
    parser.add_argument('--device', default='auto', help='auto (default), cpu or cuda')
    parser.add_argument(
        '--scale',
        type=number_argument(int, minimum=1),
        default=4,
        help='upscaling factor = LR folder X<scale> (default: 4)')
    parser.add_argument('--test-only', action='store_true', help='no HR: write SR images only')
    parser.add_argument('--save-images', action='store_true', help='also write SR images when measuring')
    parser.add_argument(
        '--crop',
        type=number_argument(int, minimum=1),
        default=128,
        help='side of the HR centre crops in grids (default: 128)')
    parser.add_argument(
        '--grid-images',
        nargs='+',
        metavar='NAME',
        help='only these images (names without extension) in the grids of the sets that hold them (default: all)')
    return parser


def model_labels(paths: Sequence[str]) -> list[str]:
    """File stems as labels; where stems repeat, prefixed with as many parent folders as make them differ, BasicSR's
    ``models`` folders skipped (``train_A/net_g_latest``, ``train_B/net_g_latest``)."""
    stems = [osp.splitext(osp.basename(p))[0] for p in paths]
    parents = [[part for part in reversed(Path(osp.abspath(p)).parent.parts) if part not in ('models', '/')]
               for p in paths]
    labels = list(stems)
    for depth in range(1, max((len(chain) for chain in parents), default=0) + 1):
        repeated = {label for label in labels if labels.count(label) > 1}
        if not repeated:
            break
        labels = [
            '/'.join([*reversed(chain[:depth]), stem]) if label in repeated else label
            for label, chain, stem in zip(labels, parents, stems)
        ]
    return labels


def load_methods(paths: Sequence[str], device_name: str, scale: int) -> list[Method]:
    """Bicubic plus one method per checkpoint or shipped model name; each must be an x``scale`` model."""
    device = resolve_device(device_name)
    methods = [Method('bicubic')]
    paths = [weights.resolve_model(path) for path in paths]
    for path, label in zip(paths, model_labels(paths)):
        net, spec = weights.load_generator(path, device)
        if spec.upscale != scale:
            raise InferenceError(f'{path} is an x{spec.upscale} model ({spec.describe()}) but the data is '
                                 f'x{scale} (LR_bicubic/X{scale}); pass --scale {spec.upscale} with matching data')
        methods.append(Method(label, Upscaler.for_network(net, scale, device=device), path, spec.describe()))
    return methods


def find_samples(root: str, set_name: str, scale: int, test_only: bool) -> list[Sample]:
    """The images of ``root/set_name``: LR from ``LR_bicubic/X<scale>``, HR of the same name from ``HR/``."""
    set_dir = osp.join(root, set_name)
    lr_dir, hr_dir = osp.join(set_dir, 'LR_bicubic', f'X{scale}'), osp.join(set_dir, 'HR')
    if not osp.isdir(lr_dir):
        raise InferenceError(f'{lr_dir} not found: expected {set_name}/HR/ + {set_name}/LR_bicubic/X{scale}/ '
                             f'under --data-root {root}')
    names = sorted(n for n in os.listdir(lr_dir) if osp.splitext(n)[1].lower() in imageio.IMAGE_EXTENSIONS)
    if not names:
        raise InferenceError(f'no images in {lr_dir}')
    with_hr = not test_only and osp.isdir(hr_dir)
    samples = [Sample(osp.splitext(n)[0], osp.join(lr_dir, n), osp.join(hr_dir, n) if with_hr else None) for n in names]
    missing = [s.hr_path for s in samples if s.hr_path and not osp.isfile(s.hr_path)]
    if missing:
        raise InferenceError(f'{len(missing)} LR images have no HR of the same name, e.g. {missing[0]}')
    return samples


def _read_bgr(path: str) -> np.ndarray:
    """uint8 BGR (grey -> 3 channels, 16-bit -> 8-bit, alpha dropped), or an error naming the file."""
    try:
        return read_image(path)[0]
    except BadImage as error:
        raise InferenceError(f'{path}: {error}') from None


def read_pair(sample: Sample, scale: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """The LR image and the HR image mod-cropped to ``scale``, checked to be ``scale x`` the LR."""
    lr = _read_bgr(sample.lr_path)
    if sample.hr_path is None:
        return lr, None
    hr = mod_crop(_read_bgr(sample.hr_path), scale)
    if hr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
        raise InferenceError(f'{sample.hr_path}: HR mod-cropped to {hr.shape[1]}x{hr.shape[0]} is not {scale}x its LR '
                             f'({lr.shape[1]}x{lr.shape[0]})')
    return lr, hr


def _niqe(img: np.ndarray, crop: int) -> Optional[float]:
    """basicsr's NIQE on Y, or None when fewer than two 96 px blocks fit (its covariance needs two) or the image is
    degenerate (e.g. flat: the fit does not converge)."""
    from basicsr.metrics import calculate_niqe

    h, w = img.shape[0] - 2 * crop, img.shape[1] - 2 * crop
    if (h // NIQE_BLOCK) * (w // NIQE_BLOCK) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        try:
            value = float(calculate_niqe(img, crop))
        except (np.linalg.LinAlgError, ValueError):
            return None
    return value if math.isfinite(value) else None


def _grid(sr: np.ndarray, hr: np.ndarray, crop: int) -> Optional[float]:
    """Grid artefacts of the upscaling factor ``crop``'s grid, or None on an image too small to measure it."""
    from srgan_plugin import metrics

    try:
        return metrics.calculate_grid_artifacts(sr, hr, crop, period=crop)
    except ValueError:
        return None


def image_metrics(sr: np.ndarray, hr: np.ndarray, crop: int, with_lpips: bool) -> dict[str, Optional[float]]:
    """All metrics of one uint8 BGR SR image against its HR, ``crop`` px shaved (the upscaling factor, which is also
    the grid of ``grid``); None where not computable."""
    from basicsr.metrics import calculate_psnr, calculate_ssim

    from srgan_plugin import metrics

    small = min(sr.shape[:2]) - 2 * crop < metrics.LPIPS_MIN_SIZE
    return {
        'psnr_y': float(calculate_psnr(sr, hr, crop, test_y_channel=True)),
        'ssim_y': float(calculate_ssim(sr, hr, crop, test_y_channel=True)),
        'psnr_rgb': float(calculate_psnr(sr, hr, crop)),
        'ssim_rgb': float(calculate_ssim(sr, hr, crop)),
        'niqe': _niqe(sr, crop),
        'lpips': metrics.calculate_lpips(sr, hr, crop) if with_lpips and not small else None,
        'grid': _grid(sr, hr, crop),
    }


def mean_metrics(per_image: dict[str, dict[str, Optional[float]]]) -> dict[str, Optional[float]]:
    """Mean of each metric over the images that have it (None when none has)."""
    means = {}
    for key in METRICS:
        values = [m[key] for m in per_image.values() if m[key] is not None]
        means[key] = float(np.mean(values)) if values else None
    return means


def in_grid(name: str, samples: list[Sample], wanted: Optional[Sequence[str]]) -> bool:
    """Whether image ``name`` gets a grid row: every image of a set that holds none of ``wanted`` (or without it)."""
    return not wanted or name in wanted or not any(sample.name in wanted for sample in samples)


def check_grid_images(wanted: Optional[Sequence[str]], samples: dict[str, list[Sample]]) -> None:
    """Refuse ``--grid-images`` names that are in none of the sets, before anything is measured."""
    names = {sample.name for set_samples in samples.values() for sample in set_samples}
    missing = sorted(set(wanted or ()) - names)
    if missing:
        raise InferenceError(f'--grid-images: {", ".join(missing)} in none of the sets {", ".join(samples)}; '
                             f'their images are {", ".join(sorted(names))}')


def evaluate_set(set_name: str, samples: list[Sample], methods: list[Method], args: argparse.Namespace,
                 with_lpips: bool) -> dict:
    """Measure every method on a set with HR; write its comparison grid (and SR images with --save-images)."""
    per_image: dict[str, dict] = {m.label: {} for m in methods}
    rows, labels = [], []
    for sample in _progress(samples, set_name):
        lr, hr = read_pair(sample, args.scale)
        outputs = [m.run(lr, args.scale) for m in methods]
        for method, sr in zip(methods, outputs):
            per_image[method.label][sample.name] = image_metrics(sr, hr, args.scale, with_lpips)
            _maybe_save(args, set_name, method, sample, sr)
        if in_grid(sample.name, samples, args.grid_images):
            rows.append([center_crop(img, args.crop) for img in (*outputs, hr)])
            psnr = [f'{m.label} {per_image[m.label][sample.name]["psnr_y"]:.2f} dB' for m in methods]
            labels.append([f'{sample.name}: {psnr[0]}', *psnr[1:], 'HR'])
    grid(rows, labels, osp.join(args.out, f'{set_name}_comparison.png'))
    return {
        'mode': 'measured',
        'images': [s.name for s in samples],
        'mean': {
            label: mean_metrics(values)
            for label, values in per_image.items()
        },
        'per_image': per_image,
    }


def _maybe_save(args: argparse.Namespace, set_name: str, method: Method, sample: Sample, sr: np.ndarray) -> None:
    if args.save_images or args.test_only or sample.hr_path is None:
        folder = osp.join(args.out, set_name, method.label.replace('/', '_'))
        os.makedirs(folder, exist_ok=True)
        imageio.write_image(osp.join(folder, f'{sample.name}.png'), sr)


def run_test_only(set_name: str, samples: list[Sample], methods: list[Method], args: argparse.Namespace) -> dict:
    """Write each method's SR images of a set without HR; measure nothing."""
    for sample in _progress(samples, set_name):
        lr, _ = read_pair(sample, args.scale)
        for method in methods:
            _maybe_save(args, set_name, method, sample, method.run(lr, args.scale))
    return {'mode': 'test-only (no HR): SR images written, nothing measured', 'images': [s.name for s in samples]}


def _progress(samples: list[Sample], set_name: str):
    from tqdm import tqdm

    return tqdm(samples, desc=set_name, unit='image', disable=not sys.stderr.isatty())


def _cell(value: Optional[float], key: str) -> str:
    if value is None:
        return '-'
    return f'{value:.2f}' if key.startswith('psnr') or key in ('niqe', 'grid') else f'{value:.4f}'


def markdown(results: dict) -> str:
    """The Markdown report: protocol, one table row per set and method, notes."""
    lines = [f'# Evaluation (x{results["protocol"]["scale"]})', '']
    lines += [f'- {key}: {text}' for key, text in results['protocol'].items() if key != 'scale']
    lines += ['', '| set | method | ' + ' | '.join(METRICS.values()) + ' |', '|---|---|' + '---:|' * len(METRICS)]
    for set_name, entry in results['sets'].items():
        for label, means in entry.get('mean', {}).items():
            lines.append(f'| {set_name} | {label} | ' + ' | '.join(_cell(means[k], k) for k in METRICS) + ' |')
    lines += [''] + [f'- {note}' for note in results['notes']]
    return '\n'.join(lines) + '\n'


def protocol(scale: int) -> dict:
    """The protocol description stored with the results."""
    return {
        'scale': scale,
        'y': f'PSNR/SSIM on Y (BT.601, basicsr bgr2ycbcr y_only), {scale} px shaved (SRGAN paper)',
        'rgb': f'PSNR/SSIM on RGB, {scale} px shaved (BasicSR model zoo)',
        'bicubic': 'MATLAB-style bicubic (basicsr.utils.matlab_functions.imresize) of the dataset LR',
        'hr': f'mod-cropped to a multiple of {scale}',
        'niqe': 'basicsr calculate_niqe on Y, same shave; no reference',
        'lpips': 'AlexNet LPIPS v0.1 on RGB, same shave',
        'grid': f'{GRID_PROTOCOL} on the {scale} px grid, minus the HR image\'s; same shave',
    }


def evaluate(args: argparse.Namespace) -> dict:
    """Run every set; return the results dict (also written as JSON and Markdown)."""
    from srgan_plugin import metrics

    methods = load_methods(args.model, args.device, args.scale)
    samples = {name: find_samples(args.data_root, name, args.scale, args.test_only) for name in args.sets}
    check_grid_images(args.grid_images, samples)
    lpips_reason = metrics.lpips_unavailable_reason()
    notes = [lpips_reason] if lpips_reason else []
    notes.append('NIQE is "-" where it cannot be computed: fewer than two 96 px blocks after the shave, or a '
                 'degenerate (e.g. flat) image')
    os.makedirs(args.out, exist_ok=True)
    results = {
        'protocol': protocol(args.scale),
        'methods': {
            m.label: m.path or m.arch
            for m in methods
        },
        'notes': notes,
        'sets': {}
    }
    for set_name, set_samples in samples.items():
        if set_samples[0].hr_path is None:
            results['sets'][set_name] = run_test_only(set_name, set_samples, methods, args)
        else:
            results['sets'][set_name] = evaluate_set(set_name, set_samples, methods, args, lpips_reason is None)
    with atomic_output(osp.join(args.out, 'results.json')) as partial, open(partial, 'w', encoding='utf-8') as f:
        json.dump(results, f, indent=2)
    with atomic_output(osp.join(args.out, 'results.md')) as partial, open(partial, 'w', encoding='utf-8') as f:
        f.write(markdown(results))
    return results


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an --out that is (or is inside) a set folder: the data is only read."""
    out = osp.realpath(args.out)
    for name in args.sets:
        set_dir = osp.realpath(osp.join(args.data_root, name))
        if out == set_dir or out.startswith(set_dir + os.sep):
            raise InferenceError(f'--out {args.out} is inside the data set {set_dir}; choose a folder outside it')


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command (``argv`` defaults to ``sys.argv[1:]``); exit statuses of :mod:`srgan_plugin.base.errors`."""
    args = build_parser().parse_args(argv)
    with command_errors(PROG, INTERRUPTED):
        _check_out(args)
        results = evaluate(args)
    print(markdown(results), end='')
    log(f'wrote {osp.join(args.out, "results.json")}, results.md and the comparison grids')


if __name__ == '__main__':
    main()
