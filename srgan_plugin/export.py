"""``python -m srgan_plugin.export``: a checkpoint to ONNX (and TorchScript), BatchNorm folded, any image size.

Usage::

    python -m srgan_plugin.export --model PATH|srresnet --onnx OUT.onnx [--torchscript OUT.pt] [--opset N]

The exported graph takes ``lr``: float32 N x C x H x W, RGB in [0, 1] (BasicSR's convention), with dynamic batch,
height and width, and returns ``sr``: N x C x (scale H) x (scale W), not clamped. BatchNorm layers are folded into
the convolutions first (:mod:`srgan_plugin.inference.bn_fold`). ONNX export uses torch's ``torch.export``-based
exporter (needs ``onnx`` and ``onnxscript``); when ``onnxruntime`` is installed the file is run on an input of
another size than the one traced and compared with PyTorch (max abs difference printed, must be <= 1e-4).
TorchScript is traced (``torch.jit.trace``; deprecated by PyTorch in favour of ``torch.export``, still loadable).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import os
import warnings
from os import path as osp
from typing import Optional, Sequence

import torch
from torch import nn

from srgan_plugin.base.errors import ArgumentParser, InferenceError, command_errors
from srgan_plugin.base.files import atomic_output
from srgan_plugin.inference import weights
from srgan_plugin.inference.bn_fold import fold_batchnorm
from srgan_plugin.inference.runtime import INTERRUPTED, log

PROG = 'python -m srgan_plugin.export'
ONNX_TOLERANCE = 1e-4
TRACE_SHAPE = (1, 3, 32, 32)
CHECK_SHAPE = (2, 3, 23, 41)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    parser = ArgumentParser(prog=PROG, description='Export a generator checkpoint to ONNX / TorchScript.')
    parser.add_argument(
        '--model', required=True, help='BasicSR checkpoint (params_ema, else params) or shipped model name (srresnet)')
    parser.add_argument('--onnx', required=True, help='ONNX file to write')
    parser.add_argument('--torchscript', help='TorchScript file to write as well')
    parser.add_argument('--opset', type=int, help="ONNX opset (default: the exporter's)")
    return parser


def max_difference(a: nn.Module, b: nn.Module, shape: tuple[int, ...] = CHECK_SHAPE) -> float:
    """Max abs difference of two networks' outputs on one random input of ``shape`` (seeded)."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        return float((a(x) - b(x)).abs().max())


def export_onnx(net: nn.Module, path: str, opset: Optional[int] = None) -> None:
    """Write ``net`` as ONNX with dynamic batch, height and width (input ``lr``, output ``sr``), one file."""
    if importlib.util.find_spec('onnx') is None or importlib.util.find_spec('onnxscript') is None:
        raise InferenceError("ONNX export needs onnx and onnxscript: pip install 'srgan-plugin[export]' (from a "
                             "checkout: pip install -e '.[export]')")
    batch, height, width = (torch.export.Dim(name, min=1) for name in ('batch', 'height', 'width'))
    sample = torch.rand(TRACE_SHAPE)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('ignore')
        torch.onnx.export(
            net, (sample, ),
            path,
            input_names=['lr'],
            output_names=['sr'],
            dynamic_shapes=({
                0: batch,
                2: height,
                3: width
            }, ),
            opset_version=opset,
            external_data=False,
            dynamo=True)


def onnx_difference(net: nn.Module, path: str, shape: tuple[int, ...] = CHECK_SHAPE) -> Optional[float]:
    """Max abs difference between onnxruntime on ``path`` and ``net`` on a random input, None without onnxruntime."""
    if importlib.util.find_spec('onnxruntime') is None:
        return None
    import onnxruntime

    x = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    out = session.run(None, {'lr': x.numpy()})[0]
    with torch.inference_mode():
        return float((torch.from_numpy(out) - net(x)).abs().max())


def export_torchscript(net: nn.Module, path: str) -> float:
    """Trace ``net`` to TorchScript, save it, reload it and return its max abs difference on another input size."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(net, torch.rand(TRACE_SHAPE))
        traced.save(path)
        loaded = torch.jit.load(path)
    return max_difference(loaded, net)


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse outputs that are the checkpoint or each other."""
    outputs = [p for p in (args.onnx, args.torchscript) if p]
    model = osp.realpath(args.model)
    for out in outputs:
        if osp.realpath(out) == model:
            raise InferenceError(f'{out} is the input checkpoint; choose another output file')
    if len({osp.realpath(p) for p in outputs}) < len(outputs):
        raise InferenceError('--onnx and --torchscript must be different files')
    for out in outputs:
        os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)


def export(args: argparse.Namespace) -> None:
    """Load, fold, export and check; print one line per step."""
    net, spec = weights.load_generator(args.model)
    folded = fold_batchnorm(net)
    log(f'{args.model}: {spec.describe()}; BatchNorm folded (max abs difference {max_difference(net, folded):.2e})')
    with atomic_output(args.onnx) as partial:  # a file that fails the check (or Ctrl-C) is not left behind
        export_onnx(folded, partial, args.opset)
        difference = onnx_difference(net, partial)
        if difference is not None and difference > ONNX_TOLERANCE:
            raise InferenceError(f'{args.onnx} differs from PyTorch by {difference:.2e} > {ONNX_TOLERANCE:g}')
    if difference is None:
        log(f'wrote {args.onnx} (not checked: onnxruntime is not installed)')
    else:
        log(f'wrote {args.onnx}; onnxruntime vs PyTorch on {CHECK_SHAPE}: max abs difference {difference:.2e}')
    if args.torchscript:
        with atomic_output(args.torchscript) as partial:
            difference = export_torchscript(folded, partial)
        log(f'wrote {args.torchscript}; reloaded vs PyTorch: max abs difference {difference:.2e}')


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command (``argv`` defaults to ``sys.argv[1:]``); exit statuses of :mod:`srgan_plugin.base.errors`."""
    args = build_parser().parse_args(argv)
    with command_errors(PROG, INTERRUPTED):
        args.model = weights.resolve_model(args.model)
        _check_paths(args)
        export(args)


if __name__ == '__main__':
    main()
