"""``python -m srgan_plugin.interpolate``: network interpolation between two generators (ESRGAN, Wang et al. 2018).

Usage::

    python -m srgan_plugin.interpolate A.pth B.pth --alpha 0.8 -o C.pth

Writes ``C = (1 - alpha) * A + alpha * B`` for every tensor of the two state dicts (``params_ema``, else ``params``),
so ``--alpha`` slides from A (0) to B (1): with A the SRResNet-MSE (PSNR-oriented) and B the SRGAN generator it is
ESRGAN's PSNR-perception slider. Both must be the same architecture (same :class:`ArchSpec`; the error names each
difference). BatchNorm parameters and running statistics are interpolated like the weights; integer buffers
(``num_batches_tracked``) are rounded. ``C.pth`` is a BasicSR checkpoint (``{'params': ...}``, plus the recipe under
``interpolation``) that BasicSR, ``upscale``, ``evaluate`` and ``export`` load. Inputs are never overwritten.
"""
from __future__ import annotations

import argparse
import os
from os import path as osp
from typing import Optional, Sequence

import torch
from torch import Tensor

from srgan_plugin.base.errors import ArgumentParser, InferenceError, command_errors, number_argument
from srgan_plugin.base.files import atomic_output
from srgan_plugin.inference import weights
from srgan_plugin.inference.runtime import INTERRUPTED, log

PROG = 'python -m srgan_plugin.interpolate'


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = ArgumentParser(prog=PROG, description='Interpolate two generators: (1 - alpha) A + alpha B.')
    parser.add_argument('a', metavar='A.pth', help='first checkpoint (alpha 0), e.g. SRResNet-MSE')
    parser.add_argument('b', metavar='B.pth', help='second checkpoint (alpha 1), e.g. SRGAN')
    parser.add_argument(
        '--alpha', type=number_argument(float, minimum=0, maximum=1), required=True, help='weight of B, in [0, 1]')
    parser.add_argument('-o', '--output', required=True, help='checkpoint to write')
    return parser


def interpolate_state(a: dict[str, Tensor], b: dict[str, Tensor], alpha: float) -> dict[str, Tensor]:
    """``(1 - alpha) * a + alpha * b`` per tensor, in float64, cast back to each tensor's dtype (integers rounded).

    Args:
        a (dict[str, Tensor]): State dict at ``alpha`` 0.
        b (dict[str, Tensor]): State dict at ``alpha`` 1, same keys and shapes.
        alpha (float): Weight of ``b``.

    Returns:
        dict[str, Tensor]: The interpolated state dict.
    """
    if a.keys() != b.keys():
        raise InferenceError(f'the state dicts have different keys, e.g. {sorted(a.keys() ^ b.keys())[0]}')
    mixed = {}
    for key, va in a.items():
        vb = b[key]
        if va.shape != vb.shape:
            raise InferenceError(f'{key} has shape {tuple(va.shape)} vs {tuple(vb.shape)}')
        value = (1 - alpha) * va.double() + alpha * vb.double()
        mixed[key] = (value if va.is_floating_point() else value.round()).to(va.dtype)
    return mixed


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse an output that is one of the inputs."""
    for source in (args.a, args.b):
        if osp.realpath(args.output) == osp.realpath(source):
            raise InferenceError(f'-o {args.output} is an input checkpoint; choose another output file')


def interpolate(args: argparse.Namespace) -> weights.ArchSpec:
    """Load both checkpoints, check they match, write the interpolation atomically; return the architecture."""
    state_a, state_b = weights.read_state_dict(args.a), weights.read_state_dict(args.b)
    spec = weights.infer_arch(state_a, args.a)
    weights.require_same_arch(spec, weights.infer_arch(state_b, args.b), args.a, args.b)
    mixed = interpolate_state(state_a, state_b, args.alpha)
    weights.build_generator(spec).load_state_dict(mixed, strict=True)  # the result must load
    recipe = {'a': osp.abspath(args.a), 'b': osp.abspath(args.b), 'alpha': args.alpha}
    os.makedirs(osp.dirname(osp.abspath(args.output)), exist_ok=True)
    with atomic_output(args.output) as partial:
        torch.save({'params': mixed, 'interpolation': recipe}, partial)
    return spec


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command (``argv`` defaults to ``sys.argv[1:]``); exit statuses of :mod:`srgan_plugin.base.errors`."""
    args = build_parser().parse_args(argv)
    with command_errors(PROG, INTERRUPTED):
        _check_paths(args)
        spec = interpolate(args)
    log(f'wrote {args.output}: {1 - args.alpha:g} x {args.a} + {args.alpha:g} x {args.b} ({spec.describe()})')


if __name__ == '__main__':
    main()
