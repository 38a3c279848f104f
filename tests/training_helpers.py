"""Helpers for the training tests: tiny runs in subprocesses, exactly as a user would start them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch

from conftest import tiny_training_options, write_options
from launcher import Forked, popen, python, user_env

ITERS, SAVE_FREQ = 40, 10


def fault_options(phase: int, data: tuple[Path, Path], name: str, **logger: Any) -> dict[str, Any]:
    """Tiny options that save every 10 of 40 iterations; an epoch is 8 batches, so saves fall mid-epoch."""
    opt = tiny_training_options(phase, data, name, iters=ITERS)
    opt['logger'].update(print_freq=ITERS, save_checkpoint_freq=SAVE_FREQ, use_tb_logger=False, **logger)
    opt['val']['val_freq'] = 15  # validation between saves must not change the training stream
    if phase == 2:
        opt['path']['pretrain_network_g'] = None
    return opt


def write_run(opt: dict[str, Any], cwd: Path) -> Path:
    cwd.mkdir(parents=True, exist_ok=True)
    return write_options(opt, cwd / 'options.yml')


def train(cwd: Path,
          *extra: str,
          launcher: Optional[list[str]] = None,
          env: Optional[dict[str, str]] = None,
          timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m basicsr.train -opt options.yml EXTRA`` in ``cwd`` (forked, see launcher.py), or under ``launcher``
    (e.g. torchrun) in fresh interpreters."""
    args = ['-m', 'basicsr.train', '-opt', 'options.yml', *extra]
    if launcher is None:
        return python(args, cwd, env, timeout)
    return subprocess.run([*launcher, *args],
                          cwd=cwd,
                          env=user_env(env),
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def start(cwd: Path, *extra: str, launcher: Optional[list[str]] = None) -> subprocess.Popen | Forked:
    """Start that command in its own session, stdout and stderr merged."""
    args = ['-m', 'basicsr.train', '-opt', 'options.yml', *extra]
    if launcher is None:
        return popen(args, cwd, merge_stderr=True)
    return subprocess.Popen([*launcher, *args],
                            cwd=cwd,
                            env=user_env(),
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                            start_new_session=True)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f'training ended (rc {process.returncode}) before {path} appeared:\n'
                                 f'{process.stdout.read()[-3000:]}')
        if time.monotonic() > deadline:
            raise AssertionError(f'{path} did not appear in {timeout} s')
        time.sleep(0.005)


def wait_for_log(run: Path, text: str, process: subprocess.Popen, timeout: float = 240) -> None:
    """Until the run's log file contains ``text``."""
    deadline = time.monotonic() + timeout
    while not any(text in log.read_text() for log in run.glob('train_*.log')):
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f'{text!r} not logged (rc {process.poll()})')
        time.sleep(0.01)


def kill_group(process: subprocess.Popen, signum: int = signal.SIGKILL) -> None:
    os.killpg(process.pid, signum)
    process.wait(timeout=60)


def experiment(cwd: Path, name: str) -> Path:
    return cwd / 'experiments' / name


def weights(folder: Path, name: str) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(folder / 'models' / name, map_location='cpu', weights_only=True)


def differing_tensors(a: Path, b: Path, name: str) -> list[str]:
    """Keys (``params/conv_first.weight``...) whose tensors differ in any bit between two checkpoints."""
    wa, wb = weights(a, name), weights(b, name)
    assert wa.keys() == wb.keys()
    return [f'{key}/{n}' for key in wa for n in wa[key] if not torch.equal(wa[key][n], wb[key][n])]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def torchrun(nproc: int = 2) -> list[str]:
    return [
        sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', '--master_addr=127.0.0.1',
        f'--master_port={free_port()}'
    ]
