"""Train, score and package the shipped SRResNet-MSE / SRGAN-MSE x4 generators (``srgan_plugin/weights/``).

``python recipes/reference_weights.py COMMAND`` from the repository root; recipes/README.md gives the whole sequence
and the time each step took. Subcommands:

* ``prepare``  the 291 LMDBs and the Set5/Set14 benchmark folders from a folder holding BSD200/HR, T91/HR, Set5/HR and
  Set14/HR, with ``python -m srgan_plugin.prepare``.
* ``train``    ``python -m srgan_plugin.train -opt FILE --auto_resume``, stopped by SIGTERM after ``--budget-minutes``
  (the loop saves a state and exits 143: run the same command again to continue); ``--finish`` ends a run at the
  iteration it reached, writing ``net_g_latest.pth``.
* ``package``  ``params_ema`` -> float16 ``{'params': ...}`` files + ``manifest.json`` (architecture inferred by
  :mod:`srgan_plugin.inference.weights`, data, iterations, sha256, scores from ``evaluate``'s results.json).

Every bad input ends with one line ``error: ...`` and exit status 1 (2 for usage errors).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from os import path as osp
from typing import Any, Iterable, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # `python recipes/reference_weights.py` from a checkout without `pip install`

TRAIN_SETS = ('BSD200', 'T91')
BENCHMARK_SETS = ('Set5', 'Set14')
PHASES = {
    1: {
        'options': 'options/reference/train_srresnet_x4.yml',
        'name': 'srresnet_mse_x4',
        'model': 'SRResNet-MSE (phase 1: MSE loss)'
    },
    2: {
        'options': 'options/reference/train_srgan_mse_x4.yml',
        'name': 'srgan_mse_x4',
        'model': 'SRGAN-MSE (phase 2: MSE content loss + 1e-3 adversarial loss + checkerboard penalty, from phase 1)'
    },
}
# upscale's default: the faithful one. SRResNet-MSE scores higher on PSNR/SSIM and invents no texture, which documents,
# faces and measurements need; SRGAN-MSE's gain is in naturalness (NIQE), with texture it invents (--model srgan).
DEFAULT_MODEL = 'srresnet_mse_x4'
REFERENCE_ARCH = {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 64, 'num_block': 16, 'upscale': 4}
TRAINING_DATA = ('"291": BSD200 + T91 HR images, prepared with python -m srgan_plugin.prepare '
                 'folder --min-size 96 (240 px sub-images, step 120, MATLAB-bicubic x4 LR)')
FP16_MAX = 65504.0


class RecipeError(Exception):
    """A bad input or a failed step: reported as one ``error:`` line."""


# ------------------------------------------------------------------------------------------------------- prepare
def prepare_commands(src: str, out: str, workers: int) -> list[list[str]]:
    """The ``python -m srgan_plugin.prepare`` commands that build ``out`` from ``src`` (see :func:`cmd_prepare`)."""
    base = [sys.executable, '-m', 'srgan_plugin.prepare']
    hr = [osp.join(src, name, 'HR') for name in TRAIN_SETS]
    train = [
        'folder', '--hr', *hr, '--out',
        osp.join(out, '291'), '--min-size', '96', '--compress-level', '0', '--workers',
        str(workers)
    ]
    cmds = [base + train]
    for name in BENCHMARK_SETS:
        cmds.append(base + ['benchmark', '--hr', osp.join(src, name, 'HR'), '--out', osp.join(out, name)])
    return cmds


def cmd_prepare(args: argparse.Namespace) -> None:
    """``prepare``: ``OUT/291`` (train LMDBs), ``OUT/Set5`` and ``OUT/Set14`` (HR + LR_bicubic/X4) from ``--src``."""
    for cmd in prepare_commands(args.src, args.out, args.workers):
        print('+', ' '.join(cmd[1:]), flush=True)
        if subprocess.run(cmd, cwd=os.getcwd()).returncode != 0:
            raise RecipeError(f'{" ".join(cmd[1:4])} failed (its message is above)')
    size = sum(osp.getsize(osp.join(root, name)) for root, _, names in os.walk(args.out) for name in names)
    print(f'{args.out}: {size / 2**20:.1f} MiB')


# --------------------------------------------------------------------------------------------------------- train
@dataclasses.dataclass
class TrainResult:
    """How a ``train`` command ended: ``finished`` (total_iter reached), ``stopped`` (budget) and the iteration."""
    returncode: int
    iteration: int
    total_iter: int
    finished: bool


def read_options(path: str) -> dict[str, Any]:
    """The YAML option file ``path`` (``error:`` when missing or not a mapping)."""
    import yaml

    if not osp.isfile(path):
        raise RecipeError(f'option file {path} not found')
    with open(path, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    if not isinstance(opt, dict) or 'name' not in opt:
        raise RecipeError(f'{path} is not a BasicSR option file (no name:)')
    return opt


def latest_state(experiment: str) -> int:
    """Highest iteration with a training state under ``experiment/training_states`` (0 when none)."""
    folder = osp.join(experiment, 'training_states')
    found = [int(m.group(1)) for m in map(re.compile(r'(\d+)\.state').fullmatch, _listdir(folder)) if m]
    return max(found, default=0)


def _listdir(folder: str) -> list[str]:
    return os.listdir(folder) if osp.isdir(folder) else []


def train_command(options: str, finish_at: Optional[int]) -> list[str]:
    """``python -m srgan_plugin.train -opt OPTIONS --auto_resume`` (with ``total_iter`` forced for ``--finish``)."""
    cmd = [sys.executable, '-m', 'srgan_plugin.train', '-opt', options, '--auto_resume']
    return cmd + (['--force_yml', f'train:total_iter={finish_at}'] if finish_at is not None else [])


def run_with_budget(cmd: list[str], budget_s: Optional[float]) -> int:
    """Run ``cmd`` in its own process group; SIGTERM it once ``budget_s`` seconds have passed. Returns its status."""
    process = subprocess.Popen(cmd, start_new_session=True)
    try:
        process.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        print(f'budget of {budget_s:g} s reached: SIGTERM (the loop saves a training state and exits 143)', flush=True)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    return process.returncode


def train(options: str, budget_minutes: Optional[float], finish: bool = False) -> TrainResult:
    """Train (or resume) with ``options`` for at most ``budget_minutes``; see the module docstring."""
    opt = read_options(options)
    if not opt.get('logger', {}).get('save_on_signal', True):
        raise RecipeError(f'{options}: logger.save_on_signal is false; the budget stop needs it true')
    experiment = osp.join('experiments', opt['name'])
    total = int(opt['train']['total_iter'])
    finish_at = latest_state(experiment) if finish else None
    if finish and not finish_at:
        raise RecipeError(f'--finish: {experiment} has no training state to finish from; train first')
    start = time.monotonic()
    code = run_with_budget(train_command(options, finish_at), None if finish else budget_minutes * 60)
    latest = osp.isfile(osp.join(experiment, 'models', 'net_g_latest.pth'))
    iteration = finish_at if finish else latest_state(experiment)
    result = TrainResult(code, iteration, total, latest and code == 0)
    print(
        f'train {opt["name"]}: exit {code} after {time.monotonic() - start:.0f} s, iteration {iteration} of '
        f'{finish_at or total}',
        flush=True)
    return result


def cmd_train(args: argparse.Namespace) -> int:
    """``train``: exit 0 when finished, 143 when stopped by the budget (continue next command), else an error."""
    if args.budget_minutes is None and not args.finish:
        raise RecipeError('give --budget-minutes M (or --finish)')
    if args.budget_minutes is not None and args.budget_minutes <= 0:
        raise RecipeError('--budget-minutes must be positive')
    result = train(args.options or osp.join(REPO, PHASES[args.phase]['options']), args.budget_minutes, args.finish)
    if result.finished:
        print('finished: experiments/.../models/net_g_latest.pth written')
        return 0
    if result.returncode == 128 + signal.SIGTERM:
        print(f'stopped by the budget at iteration {result.iteration}: run the same command again to continue '
              '(--auto_resume), or add --finish to end the run there')
        return 143
    if result.returncode == -signal.SIGTERM:
        raise RecipeError('training was stopped before its loop started (no state saved); give a larger budget')
    raise RecipeError(f'training failed with exit status {result.returncode} (its log is above)')


# ------------------------------------------------------------------------------------------------------- package
def half_state(state: dict[str, Any], path: str) -> dict[str, Any]:
    """Floating-point tensors as float16 (others, e.g. ``num_batches_tracked``, unchanged); refuses overflow."""
    import torch

    half = {}
    for key, value in state.items():
        if value.is_floating_point():
            if not torch.isfinite(value).all() or value.abs().max() > FP16_MAX:
                raise RecipeError(f'{path}: {key} is non-finite or beyond float16 range; cannot store it as fp16')
            value = value.half()
        half[key] = value.contiguous()
    return half


def checkpoint_iteration(path: str) -> Optional[int]:
    """Iteration of a checkpoint: ``net_g_N.pth`` -> N; ``net_g_latest.pth`` -> the newest training state beside it."""
    found = re.fullmatch(r'net_g_(\d+)\.pth', osp.basename(path))
    if found:
        return int(found.group(1))
    state = latest_state(osp.dirname(osp.dirname(osp.abspath(path))))
    return state or None


def experiment_options(path: str) -> dict[str, Any]:
    """The option file BasicSR copied into the checkpoint's experiment folder, or {} when there is none."""
    import yaml

    folder = osp.dirname(osp.dirname(osp.abspath(path)))
    for name in sorted(_listdir(folder)):
        if name.endswith('.yml'):
            with open(osp.join(folder, name), encoding='utf-8') as f:
                return yaml.safe_load(f) or {}
    return {}


def read_scores(results: Optional[str], checkpoint: str, packaged: str) -> dict[str, Any]:
    """Mean metrics per set of the shipped file and of the checkpoint it was made from, from ``evaluate``'s results.

    ``model`` holds the scores of the ``evaluate`` method whose file is named like ``packaged`` (the float16 file as
    shipped), ``fp32_checkpoint`` those of ``checkpoint`` (None where it was not evaluated), ``bicubic`` the baseline.
    Where only the checkpoint was evaluated, ``model`` holds its scores. Returns {} without ``results``.
    """
    if not results:
        return {}
    if not osp.isfile(results):
        raise RecipeError(f'--scores {results} not found (python -m srgan_plugin.evaluate writes results.json)')
    with open(results, encoding='utf-8') as f:
        data = json.load(f)
    methods = {label: model for label, model in data.get('methods', {}).items() if isinstance(model, str)}
    shipped = next((label for label, model in methods.items() if osp.basename(model) == osp.basename(packaged)), None)
    fp32 = next((label for label, model in methods.items() if osp.abspath(model) == osp.abspath(checkpoint)), None)
    if not shipped and not fp32:
        raise RecipeError(f'{results} has no scores of {checkpoint} or of a file named {osp.basename(packaged)}; '
                          'evaluate that file (--model) first')
    scores = {}
    for set_name, entry in data.get('sets', {}).items():
        means = entry.get('mean', {})
        scores[set_name] = {
            'model': means.get(shipped or fp32),
            'fp32_checkpoint': means.get(fp32) if fp32 else None,
            'bicubic': means.get('bicubic')
        }
    scores['protocol'] = data.get('protocol')
    return scores


LOG_TIME = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ ')
LOG_ITER = re.compile(r'\biter:\s*([\d,]+)')


def _stamps_until(lines: Iterable[str], until_iter: Optional[int]) -> list[str]:
    """Time stamps of the log lines before the first that reports an iteration past ``until_iter`` (None: all)."""
    stamps = []
    for line in lines:
        reported = LOG_ITER.search(line)
        if until_iter is not None and reported and int(reported.group(1).replace(',', '')) > until_iter:
            break
        match = LOG_TIME.match(line)
        if match:
            stamps.append(match.group(1))
    return stamps


def training_wall_time(experiment: str, until_iter: Optional[int] = None) -> Optional[float]:
    """Seconds of training in ``experiment``: per sitting (one ``*.log`` each), its last log line minus its first;
    with ``until_iter``, only up to that iteration (a checkpoint taken before the run's end)."""
    from datetime import datetime

    total, found = 0.0, False
    for name in sorted(_listdir(experiment)):
        if not name.endswith('.log'):
            continue
        with open(osp.join(experiment, name), encoding='utf-8', errors='replace') as f:
            stamps = _stamps_until(f, until_iter)
        if len(stamps) >= 2:
            first, last = (datetime.strptime(stamp, '%Y-%m-%d %H:%M:%S') for stamp in (stamps[0], stamps[-1]))
            total, found = total + (last - first).total_seconds(), True
    return total if found else None


def this_machine() -> str:
    """CPU model, cores, the CPU capability torch uses (or the GPU) and torch's version, in one line."""
    import torch

    from srgan_plugin.bench.measure import cpu_model

    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    where = f'{cpu_model()}, {cores} cores, {torch.backends.cpu.get_cpu_capability()}'
    if torch.cuda.is_available():
        where = f'{torch.cuda.get_device_name()} (host: {where})'
    return f'{where}; torch {torch.__version__}'


def model_entry(phase: int,
                checkpoint: str,
                file: str,
                label: Optional[str],
                scores: dict[str, Any],
                machine: Optional[str] = None) -> dict:
    """The manifest entry of one packaged generator (``file`` already written).

    ``machine`` names what trained it; None for the machine running ``package``.
    """
    from srgan_plugin.inference.weights import infer_arch, read_state_dict
    from srgan_plugin.base.files import sha256_of

    opt = experiment_options(checkpoint)
    iterations = checkpoint_iteration(checkpoint)
    entry = {
        'file': osp.basename(file),
        'sha256': sha256_of(file),
        'model': PHASES[phase]['model'],
        'arch': {
            'type': 'SRResNet',
            **dataclasses.asdict(infer_arch(read_state_dict(file), file))
        },
        'dtype': 'float16 on disk; srgan_plugin.inference.weights.load_generator restores float32',
        'training': {
            'data': TRAINING_DATA,
            'options': PHASES[phase]['options'],
            'experiment': opt.get('name'),
            'iterations': iterations,
            'total_iter_planned': opt.get('train', {}).get('total_iter'),
            'batch_size': opt.get('datasets', {}).get('train', {}).get('batch_size_per_gpu'),
            'source_checkpoint': osp.basename(checkpoint),
            'params_key': 'params_ema',
            'wall_time_s': training_wall_time(osp.dirname(osp.dirname(osp.abspath(checkpoint))), iterations),
            'machine': machine or this_machine(),
        },
        'scores': scores,
    }
    if label:
        entry['label'] = label
    return entry


def load_params(path: str) -> dict[str, Any]:
    """``params_ema`` (else ``params``) of a BasicSR checkpoint, checked to be an SRResNet."""
    from srgan_plugin.inference.weights import infer_arch, read_state_dict
    from srgan_plugin.inference.runtime import InferenceError

    try:
        state = read_state_dict(path)
        infer_arch(state, path)
    except InferenceError as error:
        raise RecipeError(str(error)) from None
    return state


def check_reference(state: dict[str, Any], path: str, label: Optional[str]) -> None:
    """Without ``--label`` only the reference architecture (x4, 64 features, 16 blocks) may be packaged."""
    from srgan_plugin.inference.weights import infer_arch

    spec = dataclasses.asdict(infer_arch(state, path))
    differs = [f'{k} {spec[k]} (reference {v})' for k, v in REFERENCE_ARCH.items() if spec[k] != v]
    if differs and not label:
        raise RecipeError(f'{path} is not the reference SRResNet x4 ({", ".join(differs)}); a stand-in must be '
                          'packaged with --label "TINY STAND-IN, NOT A TRAINED MODEL"')


def check_destination(out: str, label: Optional[str], force: bool) -> None:
    """Refuse a labelled stand-in in the real weights folder, and an existing manifest without ``force``."""
    from srgan_plugin.inference.weights import WEIGHTS_DIR

    if label and osp.realpath(out) == osp.realpath(WEIGHTS_DIR):
        raise RecipeError(f'--label "{label}" marks a stand-in, which never goes into {WEIGHTS_DIR}; '
                          'package it into another folder')
    if osp.exists(osp.join(out, 'manifest.json')) and not force:
        raise RecipeError(f'{osp.join(out, "manifest.json")} exists; pass --force to replace it')


def write_atomic(out: str, name: str, write: Any) -> str:
    """Call ``write(tmp_path)``; the file becomes ``out/name`` whole or not at all (``atomic_output``). Returns it."""
    from srgan_plugin.base.files import atomic_output

    final = osp.join(out, name)
    with atomic_output(final) as tmp:
        write(tmp)
    return final


def package(checkpoints: dict[int, str],
            out: str,
            scores: Optional[str] = None,
            label: Optional[str] = None,
            force: bool = False,
            machine: Optional[str] = None) -> dict[str, Any]:
    """Write ``out/<name>.pth`` (fp16 ``{'params': ...}``) per phase and ``out/manifest.json`` last.

    Args:
        checkpoints (dict[int, str]): Phase (1, 2) -> BasicSR generator checkpoint (``net_g_*.pth``).
        out (str): Destination folder (created).
        scores (str | None): ``results.json`` of ``python -m srgan_plugin.evaluate``. Default: None.
        label (str | None): Stand-in label (required for non-reference architectures). Default: None.
        force (bool): Replace an existing manifest. Default: False.
        machine (str | None): What trained the checkpoints; None for the machine running this. Default: None.

    Returns:
        dict[str, Any]: The manifest written.
    """
    import torch

    check_destination(out, label, force)
    states = {phase: load_params(path) for phase, path in checkpoints.items()}
    for phase, state in states.items():
        check_reference(state, checkpoints[phase], label)
    os.makedirs(out, exist_ok=True)
    models = {}
    for phase, state in sorted(states.items()):
        name, half = PHASES[phase]['name'], half_state(state, checkpoints[phase])
        file = write_atomic(out, f'{name}.pth', lambda tmp, half=half: torch.save({'params': half}, tmp))
        models[name] = model_entry(phase, checkpoints[phase], file, label,
                                   read_scores(scores, checkpoints[phase], file), machine)
    default = DEFAULT_MODEL if DEFAULT_MODEL in models else next(iter(models))
    manifest = {'default': default, 'models': models}
    if label:
        manifest['label'] = label

    def dump(tmp: str) -> None:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(manifest, f, indent=2)
            f.write('\n')

    write_atomic(out, 'manifest.json', dump)
    print(f'{out}: {", ".join(models)} (default {default}){f" -- {label}" if label else ""}')
    return manifest


def cmd_package(args: argparse.Namespace) -> None:
    """``package``: see :func:`package`."""
    checkpoints = {phase: path for phase, path in ((1, args.phase1), (2, args.phase2)) if path}
    if not checkpoints:
        raise RecipeError('give --phase1 CKPT and/or --phase2 CKPT')
    package(checkpoints, args.out, args.scores, args.label, args.force, args.machine)


# ----------------------------------------------------------------------------------------------------------- cli
class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line."""

    def error(self, message: str) -> None:
        self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring)."""
    parser = OneLineParser(prog='python recipes/reference_weights.py', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    p = sub.add_parser('prepare', help='291 LMDBs + Set5/Set14 benchmark folders')
    p.add_argument('--src', required=True, help='folder with BSD200/HR T91/HR Set5/HR Set14/HR')
    p.add_argument('--out', default='datasets/reference')
    p.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1))
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser('train', help='train/resume one phase within a time budget')
    p.add_argument('--phase', type=int, choices=(1, 2), required=True)
    p.add_argument('--budget-minutes', type=float)
    p.add_argument('--options', help='option file (default: options/reference/ file of the phase)')
    p.add_argument('--finish', action='store_true', help='end the run at the iteration reached (net_g_latest.pth)')
    p.set_defaults(func=cmd_train)
    p = sub.add_parser('package', help='fp16 generators + manifest.json')
    p.add_argument('--phase1', help='phase-1 checkpoint (net_g_*.pth)')
    p.add_argument('--phase2', help='phase-2 checkpoint (net_g_*.pth)')
    p.add_argument('--out', required=True, help='destination folder, e.g. srgan_plugin/weights')
    p.add_argument('--scores', help="results.json of python -m srgan_plugin.evaluate")
    p.add_argument('--label', help='required for stand-ins, e.g. "TINY STAND-IN, NOT A TRAINED MODEL"')
    p.add_argument('--force', action='store_true', help='replace an existing manifest.json')
    p.add_argument('--machine', help='what trained the checkpoints (default: the machine running package)')
    p.set_defaults(func=cmd_package)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one subcommand; ``error: ...`` and status 1 on a :class:`RecipeError` or an OS error."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except (RecipeError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
