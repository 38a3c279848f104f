"""Checks for damaged or unsafe files behind an option file -- LMDBs, image folders, pretrained networks -- run by
the patched ``parse_options`` (``srgan_plugin.compat``) before the option checks (``srgan_plugin.options_check``,
whose ``options_data`` checks that the data and checkpoints *fit* the options), before anything is built.

Without them, such files fail far from their cause: a truncated ``data.mdb`` kills training with SIGBUS (exit 135,
no message) at its first read of a missing page, and a key listed in ``meta_info.txt`` but not stored fails inside a
data worker; a file in an image folder that is not an image fails in a worker minutes later; a ``pretrain_network_*``
checkpoint that holds pickled objects makes torch suggest ``weights_only=False``, and one with NaN weights trains or
tests on garbage. Each becomes one line, ``error: FILE: <option>: what is wrong; what to do``.

The checks are cheap: LMDBs are checked from their header pages and key lists (no value is read), folders from the
first bytes of each file (nothing is decoded), checkpoints by loading them once with ``weights_only=True``.
"""
from __future__ import annotations

from os import path as osp
from typing import Any, Mapping, Optional

import cv2
import lmdb
import torch

from srgan_plugin.base.errors import DataError, InferenceError
from srgan_plugin.options_data import folder_files
from srgan_plugin.prepare.lmdb_io import META_INFO, check_lmdb_structure, key_differences, lmdb_keys, read_meta_info

Opt = Mapping[str, Any]
PREPARE = 'python -m srgan_plugin.prepare'
SHOWN = 3  # file names quoted in a message


def _examples(names: list[str]) -> str:
    more = f' and {len(names) - SHOWN} more' if len(names) > SHOWN else ''
    return ', '.join(names[:SHOWN]) + more


def check_training_lmdb(lmdb_path: str) -> list[str]:
    """Check an LMDB as BasicSR's ``LmdbBackend`` will read it and return its ``meta_info.txt`` keys.

    ``data.mdb`` must hold every page its header counts (a truncated file kills the reader with SIGBUS) and every key
    listed in ``meta_info.txt`` must be stored (a missing one fails in a data worker).

    Args:
        lmdb_path (str): The ``.lmdb`` folder.

    Returns:
        list[str]: The keys, in meta_info.txt order.

    Raises:
        DataError: With the reason and what to do.
    """
    rebuild = f'rebuild it with {PREPARE} (README, "Data preparation")'
    try:
        check_lmdb_structure(lmdb_path)
        listed = [entry.key for entry in read_meta_info(lmdb_path, strict=False)]
        stored = lmdb_keys(lmdb_path)
    except (ValueError, OSError, lmdb.Error) as error:
        text = str(error)
        raise DataError(f'{text if lmdb_path in text else f"{lmdb_path}: {text}"}; {rebuild}') from None
    missing = key_differences(listed, stored)[0]
    if missing:
        raise DataError(f'{lmdb_path}: {len(missing)} of the {len(listed)} keys in {META_INFO} are not stored in '
                        f'data.mdb (e.g. {_examples(missing)}); {rebuild}')
    return listed


def _not_images(folder: str, names: list[str]) -> list[str]:
    """The files OpenCV (what BasicSR decodes with) has no reader for: not images, or empty."""
    return [name for name in names if not cv2.haveImageReader(osp.join(folder, name))]


def check_image_folders(phase: str, dataset: Opt) -> None:
    """Every file in the folders of a ``PairedImageDataset`` on disk is an image OpenCV (BasicSR's decoder) reads.

    Args:
        phase (str): The dataset's key under ``datasets`` (``train``, ``val``, ``test_1``, ...).
        dataset (Opt): Its options; roots that are not folders are left to the option checks.

    Raises:
        DataError: Naming the files.
    """
    for key in ('dataroot_gt', 'dataroot_lq'):
        folder = dataset.get(key)
        if not (isinstance(folder, str) and osp.isdir(folder)):
            continue
        bad = _not_images(folder, folder_files(folder))
        if bad:
            raise DataError(f'datasets.{phase}.{key}: {len(bad)} file(s) in {folder} are not images OpenCV can read '
                            f'({_examples(bad)}); remove or replace them')


def check_dataset_files(phase: str, dataset: Opt) -> None:
    """Check the files of one ``datasets`` entry (a ``PairedImageDataset``; other types are left alone).

    Args:
        phase (str): The entry's key under ``datasets``.
        dataset (Opt): The entry.

    Raises:
        DataError: With what is wrong and what to do.
    """
    if not isinstance(dataset, Mapping) or dataset.get('type') != 'PairedImageDataset':
        return
    io_backend = dataset.get('io_backend')
    backend = io_backend.get('type', 'disk') if isinstance(io_backend, Mapping) else None  # else: the option checks'
    if backend == 'lmdb':
        for key in ('dataroot_gt', 'dataroot_lq'):
            root = dataset.get(key)
            if isinstance(root, str) and osp.isfile(osp.join(root, META_INFO)):  # else the option checks report
                try:
                    check_training_lmdb(root)
                except DataError as error:
                    raise DataError(f'datasets.{phase}.{key}: {error}') from None
    elif backend == 'disk' and not dataset.get('meta_info_file'):
        check_image_folders(phase, dataset)


def _params_used(opt: Opt, label: str) -> list[Optional[str]]:
    """The param keys BasicSR loads ``pretrain_network_<label>`` with (``path.param_key_<label>``, and
    ``params_ema`` for the EMA copy of the generator in training)."""
    keys = [opt['path'].get(f'param_key_{label}', 'params')]
    train = opt.get('train')
    ema_decay = train.get('ema_decay', 0) if isinstance(train, Mapping) else 0
    if label == 'g' and opt.get('is_train') and isinstance(ema_decay, (int, float)) and ema_decay > 0:
        keys.append('params_ema')
    return keys


def check_pretrained(opt: Opt) -> None:
    """Each ``path.pretrain_network_*`` file loads safely (``weights_only``: a file that would run code is refused
    with what to do instead) and holds finite weights under the param keys BasicSR will read (falling back to
    ``params`` as BasicSR does; a file without them is left to the option checks).

    Args:
        opt (Opt): The parsed options.

    Raises:
        DataError: Naming the file, and the tensor or what is wrong with the file.
    """
    from srgan_plugin.inference.weights import load_checkpoint, require_finite

    paths = opt.get('path')
    if not isinstance(paths, Mapping) or opt.get('auto_resume') or paths.get('resume_state'):
        return  # when resuming, BasicSR's check_resume replaces them with the run's own checkpoints
    for key, path in paths.items():
        if not (str(key).startswith('pretrain_network_') and isinstance(path, str) and osp.isfile(path)):
            continue
        label = key[len('pretrain_network_'):]
        try:
            saved = load_checkpoint(path)
            for param_key in _params_used(opt, label):
                state, where = saved, path
                if isinstance(saved, dict) and param_key is not None:
                    param_key = param_key if param_key in saved else 'params'
                    state, where = saved.get(param_key), f"{path}['{param_key}']"
                if isinstance(state, dict):
                    require_finite({k: v for k, v in state.items() if isinstance(v, torch.Tensor)}, where)
        except InferenceError as error:
            raise DataError(f'path.{key}: {error}') from None


def check_data(opt: Opt, opt_path: str = '<options>') -> None:
    """Raise ``SystemExit`` with a one-line ``error: FILE: ...`` message when a file ``opt`` points at is damaged or
    unsafe (see the module docstring).

    Args:
        opt (Opt): Options parsed by BasicSR (not yet checked: anything unexpected is left to the option checks).
        opt_path (str): The option file, for the message. Default: '<options>'.
    """
    try:
        datasets = opt.get('datasets')
        for phase, dataset in (datasets.items() if isinstance(datasets, Mapping) else ()):
            check_dataset_files(phase, dataset)
        check_pretrained(opt)
    except DataError as error:
        raise SystemExit(f'error: {opt_path}: {error}') from None
