"""Checkpoint files that are never half-written, and resume from the newest one that is complete.

basicsr 1.4.2 writes ``models/net_*_{iter}.pth`` and ``training_states/{iter}.state`` in place with ``torch.save``:
a kill during a save leaves a truncated file, which ``--auto_resume`` then picks because it has the highest number,
and the run cannot restart. The plugin's models write every file whole or not at all
(:func:`srgan_plugin.base.files.atomic_save`). The training state is written last and records the SHA-256 of the
network files of its iteration; resume walks the states from the newest, verifies each (it loads, its networks exist
and match their hashes) and warns about and skips any that do not.
"""
from __future__ import annotations

import os
import re
from os import path as osp
from typing import Any, Callable, Iterable, Mapping, Optional

import torch

from srgan_plugin.base.errors import CheckpointError
from srgan_plugin.base.files import sha256_of

STATE_SUFFIX = '.state'
_STATE_NAME = re.compile(r'^(\d+)\.state$')
_NET_NAME = re.compile(r'^net_(?P<label>\w+?)_(?P<iter>\d+)\.pth$')
Report = Callable[[str], None]
Opt = Mapping[str, Any]


def load(path: str) -> Any:
    """``torch.load`` to CPU with ``weights_only=True``; any failure becomes a ``CheckpointError``."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # truncated zip, bad pickle, I/O error: all mean "not usable"
        raise CheckpointError(f'{path}: cannot be loaded ({type(error).__name__}: {str(error).splitlines()[0]})')


def network_labels(opt: Opt) -> list[str]:
    """``g``, ``d``, ...: the networks BasicSR resumes (``network_*`` keys not in ``path.ignore_resume_networks``)."""
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [key[len('network_'):] for key in opt if key.startswith('network_') and key not in ignored]


def state_iterations(states_dir: str) -> list[int]:
    """Iterations that have a ``{iter}.state`` file in ``states_dir``, newest first."""
    if not osp.isdir(states_dir):
        return []
    found = (_STATE_NAME.match(name) for name in os.listdir(states_dir))
    return sorted((int(match.group(1)) for match in found if match), reverse=True)


def network_files(models_dir: str, iteration: int, labels: Iterable[str]) -> dict[str, str]:
    """``{file name: path}`` of the networks BasicSR resumes for ``iteration`` (``net_{label}_{iter}.pth``)."""
    return {f'net_{label}_{iteration}.pth': osp.join(models_dir, f'net_{label}_{iteration}.pth') for label in labels}


def verify_state(state_path: str, models_dir: str, labels: Iterable[str]) -> dict[str, Any]:
    """Load and check one training state and the network files it needs; raise ``CheckpointError`` if unusable.

    States written by the plugin list their network files with hashes (``files``); for states written by BasicSR
    itself, the ``net_{label}_{iter}.pth`` files of the option file's networks must exist and load.
    """
    state = load(state_path)
    if not isinstance(state, Mapping) or 'iter' not in state or 'optimizers' not in state:
        raise CheckpointError(f'{state_path}: not a BasicSR training state')
    recorded: Optional[Mapping[str, str]] = state.get('files')
    expected = network_files(models_dir, state['iter'], labels)
    for name, path in expected.items():
        if not osp.isfile(path):
            raise CheckpointError(f'{state_path}: its network file {path} is missing')
        if recorded is not None and name in recorded:
            if sha256_of(path) != recorded[name]:
                raise CheckpointError(f'{path}: its SHA-256 differs from the one recorded in {state_path}')
        else:
            load(path)
    return dict(state)


def find_resume_state(states_dir: str,
                      models_dir: str,
                      labels: Iterable[str],
                      report: Report,
                      newest: Optional[int] = None) -> Optional[tuple[str, dict[str, Any]]]:
    """The newest complete training state in ``states_dir`` as ``(path, state)``, or None if there is none.

    Args:
        states_dir: ``experiments/NAME/training_states``.
        models_dir: ``experiments/NAME/models``.
        labels: Network labels to resume (``g``, ``d``: from the ``network_*`` keys of the options).
        report: Receives a warning for each state that is skipped, saying why.
        newest: Consider only states at or below this iteration (an explicit ``resume_state``). Default: None.
    """
    labels = list(labels)
    for iteration in state_iterations(states_dir):
        if newest is not None and iteration > newest:
            continue
        path = osp.join(states_dir, f'{iteration}{STATE_SUFFIX}')
        try:
            return path, verify_state(path, models_dir, labels)
        except CheckpointError as error:
            report(f'Skipping training state {iteration}: {error}. Trying the previous one.')
    return None


def prune(states_dir: str, models_dir: str, keep: int, report: Report) -> None:
    """Keep the ``keep`` newest training states and their network files; delete older ones (never ``*_latest``)."""
    old = state_iterations(states_dir)[keep:]
    if not old:
        return
    doomed = set(old)
    for name in os.listdir(models_dir) if osp.isdir(models_dir) else []:
        match = _NET_NAME.match(name)
        if match and int(match.group('iter')) in doomed:
            os.remove(osp.join(models_dir, name))
    for iteration in old:
        os.remove(osp.join(states_dir, f'{iteration}{STATE_SUFFIX}'))
    report(f'Removed training states and networks of iterations {sorted(old)} (logger.keep_last_states).')
