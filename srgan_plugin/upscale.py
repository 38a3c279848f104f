"""``python -m srgan_plugin.upscale``: upscale an image or a folder of images with a trained SRResNet / SRGAN.

Usage::

    python -m srgan_plugin.upscale -i IN -o OUT [--model PATH] [-s OUTSCALE] [--tile N] [--tile-pad P]
                                   [--half | --bf16] [--device auto|cpu|cuda] [--ext auto|png|jpg] [--suffix S]

``IN`` is a file or a folder (its image files, not its sub-folders); ``OUT`` is a folder (``<stem>_<suffix>.<ext>``
in it), or, for a single input file, an output file when it ends in an image extension. The architecture is read
from the checkpoint. 8/16-bit, grey and alpha are kept (:mod:`srgan_plugin.inference.imageio`); tiles are seamless
with the default pad (:mod:`srgan_plugin.inference.tiling`). Files that cannot be read are listed at the end and
make the exit status 1; the others are still written. No input file is ever overwritten. Exit statuses:
:mod:`srgan_plugin.base.errors`.
"""
from __future__ import annotations

import argparse
import os
import sys
from os import path as osp
from typing import Optional, Sequence

import cv2

from srgan_plugin.base.errors import ArgumentParser, InferenceError, command_errors, number_argument
from srgan_plugin.inference import imageio, weights
from srgan_plugin.inference.runtime import INTERRUPTED, log, resolve_device, resolve_dtype
from srgan_plugin.inference.tiling import Upscaler, receptive_radius

PROG = 'python -m srgan_plugin.upscale'
SourceTarget = tuple[str, str]  # (input image, output image)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = ArgumentParser(prog=PROG, description='Upscale images with an SRResNet/SRGAN checkpoint.')
    parser.add_argument('-i', '--input', required=True, help='image file or folder of images')
    parser.add_argument('-o', '--output', required=True, help='output folder (or output file for one input file)')
    parser.add_argument(
        '--model',
        help='BasicSR checkpoint (params_ema, else params) or a shipped model name '
        '(srresnet, srgan); default: the shipped default model')
    parser.add_argument(
        '-s',
        '--outscale',
        type=number_argument(float, positive=True),
        help="final scale (default: the model's); Lanczos resize")
    parser.add_argument(
        '--tile',
        type=number_argument(int, minimum=0),
        help='LR tile side; 0 = whole image; default: auto (tiles large images '
        'on CPU, retries with tiles after a GPU out-of-memory error)')
    parser.add_argument(
        '--tile-pad',
        type=number_argument(int, minimum=0),
        help="LR context pixels per tile; default: the network's receptive "
        'radius (seamless)')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--half', action='store_true', help='float16 inference')
    precision.add_argument('--bf16', action='store_true', help='bfloat16 inference')
    parser.add_argument('--device', default='auto', help='auto (default), cpu or cuda')
    parser.add_argument(
        '--ext',
        choices=('auto', 'png', 'jpg'),
        default='auto',
        help="output format; auto keeps PNG/JPEG inputs' format, else PNG (default: auto)")
    parser.add_argument(
        '--suffix', default='out', help="appended to output names: <stem>_<suffix> (default: out; "
        "'' for none)")
    return parser


def _output_ext(source: str, ext: str) -> str:
    """``.png`` / ``.jpg`` for ``--ext``; ``auto`` keeps a PNG or JPEG input's extension, else ``.png``."""
    if ext != 'auto':
        return f'.{ext}'
    source_ext = osp.splitext(source)[1].lower()
    return source_ext if source_ext in ('.png', '.jpg', '.jpeg') else '.png'


def _output_path(source: str, folder: str, ext: str, suffix: str) -> str:
    """``<folder>/<stem>_<suffix><ext>`` (no ``_`` when the suffix is empty)."""
    stem = osp.splitext(osp.basename(source))[0]
    return osp.join(folder, f'{stem}_{suffix}' if suffix else stem) + _output_ext(source, ext)


def _list_folder(folder: str) -> tuple[list[str], list[str]]:
    """Image files (by extension) and other files directly in ``folder``, sorted; hidden files are ignored."""
    images, others = [], []
    for name in sorted(os.listdir(folder)):
        full = osp.join(folder, name)
        if name.startswith('.') or not osp.isfile(full):
            continue
        (images if osp.splitext(name)[1].lower() in imageio.IMAGE_EXTENSIONS else others).append(full)
    return images, others


def _check_no_overwrite(jobs: list[SourceTarget]) -> None:
    """Refuse a plan where an output is an input file or two inputs share an output."""
    inputs = {osp.realpath(src): src for src, _ in jobs}
    seen: dict[str, str] = {}
    for src, dst in jobs:
        real = osp.realpath(dst)
        if real in inputs or (osp.exists(dst) and any(osp.samefile(dst, s) for s in inputs.values())):
            raise InferenceError(f'{dst} would overwrite the input {inputs.get(real, dst)}; choose another -o or '
                                 '--suffix')
        if real in seen:
            raise InferenceError(f'{seen[real]} and {src} would both be written to {dst}; use --ext auto or '
                                 'another --suffix')
        seen[real] = src


def plan_jobs(source: str, output: str, ext: str = 'auto', suffix: str = 'out') -> tuple[list[SourceTarget], list[str]]:
    """Pair each input image with its output file, refusing anything that would overwrite an input.

    Args:
        source (str): ``-i``: a file or a folder.
        output (str): ``-o``: a folder, or an output file when ``source`` is a file and this ends in an image
            extension.
        ext (str): ``--ext``: auto, png or jpg. Default: 'auto'.
        suffix (str): ``--suffix``. Default: 'out'.

    Returns:
        tuple[list[SourceTarget], list[str]]: ``(input, output)`` pairs and the skipped non-image files.
    """
    if not osp.exists(source):
        raise InferenceError(f'-i {source}: no such file or folder')
    if osp.realpath(source) == osp.realpath(output):
        raise InferenceError(f'-o {output} is the input itself; choose another output folder')
    if osp.isfile(source) and osp.splitext(output)[1].lower() in imageio.IMAGE_EXTENSIONS:
        jobs, skipped = [(source, output)], []
    else:
        if osp.isfile(output):
            raise InferenceError(f'-o {output} is an existing file; give a folder (or a new image file for one input)')
        sources, skipped = ([source], []) if osp.isfile(source) else _list_folder(source)
        if not sources:
            raise InferenceError(f'no images in {source} (looked for {", ".join(imageio.IMAGE_EXTENSIONS)}; '
                                 f'{len(skipped)} other files)')
        jobs = [(src, _output_path(src, output, ext, suffix)) for src in sources]
    _check_no_overwrite(jobs)
    return jobs, skipped


def upscale_file(upscaler: Upscaler, source: str, target: str, outscale: float) -> str:
    """Upscale one file to ``target`` (see the module docstring for what is kept) and describe what was done.

    Args:
        upscaler (Upscaler): The network runner.
        source (str): Input image.
        target (str): Output image (its extension picks the format).
        outscale (float): Final scale; differs from ``upscaler.scale`` -> Lanczos resize of the network output.

    Returns:
        str: A one-line summary.
    """
    picture = imageio.read_picture(source)
    height, width = picture.rgb.shape[:2]
    pixels = upscaler.upscale(picture.rgb, imageio.output_converter(picture))
    size = (max(1, round(width * outscale)), max(1, round(height * outscale)))
    if size != (pixels.shape[1], pixels.shape[0]):
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_LANCZOS4)
    if picture.alpha is not None:
        pixels = imageio.attach_alpha(pixels, imageio.upscale_alpha(picture.alpha, size, picture.max_value))
    pixels, notes = imageio.fit_format(pixels, osp.splitext(target)[1].lower())
    imageio.write_image(target, pixels)
    tiles = f'tile {upscaler.last_tile}' if upscaler.last_tile else 'whole image'
    details = ', '.join([f'{width}x{height} -> {size[0]}x{size[1]}', picture.describe(), tiles, *notes])
    return f'{source} -> {target} ({details})'


def make_upscaler(args: argparse.Namespace) -> tuple[Upscaler, str]:
    """Load ``--model`` (or the shipped weights) onto the device and wrap it with the tiling options; also return the
    file loaded."""
    device, dtype = resolve_device(args.device), resolve_dtype(args.half, args.bf16)
    path = weights.resolve_model(args.model)
    net, spec = weights.load_generator(path, device, dtype, fold_bn=True)
    radius = receptive_radius(net)
    if args.tile_pad is not None and args.tile_pad < radius:
        log(f'warning: --tile-pad {args.tile_pad} is below the receptive radius {radius}: tiles may show seams')
    return Upscaler.for_network(
        net, spec.upscale, args.tile_pad, device=device, dtype=dtype, tile=args.tile,
        progress=sys.stderr.isatty()), path


def run_jobs(upscaler: Upscaler, jobs: list[SourceTarget], outscale: float) -> list[str]:
    """Process every job, printing one line each; return ``'input: reason'`` for those that failed."""
    from tqdm import tqdm

    failures = []
    for source, target in tqdm(jobs, desc='images', unit='image', disable=not sys.stderr.isatty()):
        try:
            log(upscale_file(upscaler, source, target, outscale))
        except (InferenceError, OSError) as error:
            failures.append(f'{source}: {error}')
    return failures


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command (``argv`` defaults to ``sys.argv[1:]``); exit statuses of :mod:`srgan_plugin.base.errors`."""
    args = build_parser().parse_args(argv)
    with command_errors(PROG, INTERRUPTED):
        jobs, skipped = plan_jobs(args.input, args.output, args.ext, args.suffix)
        upscaler, model = make_upscaler(args)
        for folder in {osp.dirname(target) or '.' for _, target in jobs}:
            os.makedirs(folder, exist_ok=True)
        failures = run_jobs(upscaler, jobs, args.outscale or upscaler.scale)
        for name in skipped:
            log(f'skipped (not an image file): {name}')
        for failure in failures:
            log(f'failed: {failure}')
        if failures:
            raise InferenceError(f'{len(failures)} of {len(jobs)} images could not be upscaled (listed above); '
                                 f'the other {len(jobs) - len(failures)} were written')
        print(f'wrote {len(jobs)} image(s) with the {upscaler.scale}x model {model}')


if __name__ == '__main__':
    main()
