"""``python -m srgan_plugin.bench``: training-step, inference and data-loading speed, the plugin vs BasicSR's own
SRGAN, in one process on one device. See ``srgan_plugin/bench/__init__.py`` for what is measured and how. Exit
statuses: :mod:`srgan_plugin.base.errors`."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional, Sequence

import torch

from srgan_plugin.base.errors import ArgumentParser, SRGANPluginError, command_errors
from srgan_plugin.base.files import atomic_output
from srgan_plugin.bench import data as data_bench
from srgan_plugin.bench import inference as infer_bench
from srgan_plugin.bench import training as train_bench
from srgan_plugin.bench.measure import machine

PROG = 'python -m srgan_plugin.bench'
SECTIONS = ('train', 'infer', 'data')


def comma_list(text: str) -> list[str]:
    return [item for item in text.split(',') if item]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = ArgumentParser(prog=PROG, description=__doc__)
    parser.add_argument('--device', default='auto', help='auto (cuda when available), cpu, cuda or cuda:N')
    parser.add_argument(
        '--sections', type=comma_list, default=list(SECTIONS), help='comma list of ' + ', '.join(SECTIONS))
    parser.add_argument('--batch', type=int, default=16, help='training batch (the paper and BasicSR: 16)')
    parser.add_argument(
        '--crops',
        type=lambda s: [int(c) for c in comma_list(s)],
        default=[96, 128],
        help='HR crops, comma list (the paper: 96, BasicSR: 128)')
    parser.add_argument(
        '--variants',
        type=comma_list,
        default=None,
        help='plugin speed options to time, comma list of ' + ', '.join(train_bench.VARIANTS) +
        ' (default: fp32,cl,bf16,bf16+cl, and bf16+cl+compile on CUDA)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed calls per case first')
    parser.add_argument('--repeats', type=int, default=5, help='timed calls per case (the median is reported)')
    parser.add_argument('--infer-size', type=int, default=128, help='LR side of the inference input')
    parser.add_argument(
        '--workers',
        type=lambda s: [int(c) for c in comma_list(s)],
        default=None,
        help='data-loader worker counts to time (default: 0,1,2,4,... up to the usable cores)')
    parser.add_argument('--json', help='also write every number to this JSON file')
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f'unknown section {unknown[0]!r}: use {", ".join(SECTIONS)}')
    bad_crops = [c for c in args.crops if c <= 0 or c % 16]
    if bad_crops:
        parser.error(f'--crops: {bad_crops[0]} is not a positive multiple of 16 (the discriminators need that)')
    if min(args.batch, args.repeats, args.infer_size) < 1 or args.warmup < 0:
        parser.error('--batch, --repeats and --infer-size must be >= 1 and --warmup >= 0')
    bad = [v for v in args.variants or () if v not in train_bench.VARIANTS]
    if bad:
        parser.error(f'unknown variant {bad[0]!r}: use {", ".join(train_bench.VARIANTS)}')
    return args


def resolve_device(name: str) -> torch.device:
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SRGANPluginError('--device cuda but torch sees no GPU; use --device cpu')
    return device


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command (``argv`` defaults to ``sys.argv[1:]``); exit statuses of :mod:`srgan_plugin.base.errors`."""
    args = parse_args(argv)
    with command_errors(PROG, 'no JSON report was written'):
        return measure(args)


def measure(args: argparse.Namespace) -> int:
    """Run the requested sections and print their tables; write the JSON report when asked."""
    device = resolve_device(args.device)
    variants = args.variants or train_bench.default_variants(device)
    torch.backends.cudnn.benchmark = True  # the training loop's default (option cudnn_benchmark)
    report: dict[str, Any] = {'machine': machine(device), 'device': str(device), 'argv': sys.argv[1:]}
    print(f'# srgan_plugin.bench on {report["machine"]}\n', flush=True)
    if 'train' in args.sections:
        report['train'] = train_bench.run(device, args.batch, args.crops, variants, args.warmup, args.repeats)
    if 'infer' in args.sections:
        report['infer'] = infer_bench.run(device, args.infer_size, args.warmup, args.repeats)
    if 'data' in args.sections:
        step_rate = train_bench.fastest_step_rate(report.get('train'))
        report['data'] = data_bench.run(args.batch, max(args.crops), args.workers, step_rate)
    if args.json:
        with atomic_output(args.json) as temp, open(temp, 'w', encoding='utf-8') as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
