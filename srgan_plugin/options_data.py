"""Checks of what an option file points at, done cheaply before anything is built: the datasets against the
options (folders, pairs of HR and LR images, the scale of the first pair, LMDB key sets and sizes from their
``meta_info.txt``), the generator checkpoint against ``network_g``, and the resumed iteration against
``train.total_iter``.

Used by :mod:`srgan_plugin.options_check`. Every problem is an :class:`~srgan_plugin.options_schema.OptionsError`
with a one-line message. Damaged files (an image that does not decode, a broken LMDB) are not looked for here: only
whether the data and the checkpoints fit the options.
"""
from __future__ import annotations

import dataclasses
import inspect
import os
from os import path as osp
from typing import Any, Mapping, Optional, Sequence

import torch
from basicsr.utils.registry import ARCH_REGISTRY

from srgan_plugin.base.errors import CheckpointError, InferenceError, OptionsError
from srgan_plugin.options_schema import registered_class
from srgan_plugin.prepare.lmdb_io import key_differences, read_meta_info

Opt = Mapping[str, Any]
SHOWN = 3  # names listed in a message before "..."


def _where(path: str) -> str:
    return path if osp.isabs(path) else f'{path} (relative to {os.getcwd()})'


def _some(names: Sequence[str]) -> str:
    shown = ', '.join(names[:SHOWN])
    return f'{shown}, ...' if len(names) > SHOWN else shown


# --- datasets ------------------------------------------------------------------------------------------------------


def folder_files(folder: str) -> list[str]:
    """The file names BasicSR's ``scandir`` lists in ``folder`` (not recursive, hidden files skipped), sorted."""
    with os.scandir(folder) as entries:
        return sorted(entry.name for entry in entries if not entry.name.startswith('.') and entry.is_file())


def lr_name(hr_name: str, filename_tmpl: str) -> str:
    """The LR file name BasicSR pairs with ``hr_name`` (``paired_paths_from_folder``)."""
    stem, ext = osp.splitext(hr_name)
    return f'{filename_tmpl.format(stem)}{ext}'


def image_size(path: str) -> Optional[tuple[int, int]]:
    """(height, width) read from the image's header, or None when it cannot be read (left to the data checks)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # a damaged or foreign file: not this check's business
        return None
    return height, width


def meta_info_sizes(lmdb_root: str) -> dict[str, Optional[tuple[int, int]]]:
    """``{key: (height, width) or None}`` from an LMDB's ``meta_info.txt``, keyed as BasicSR keys it (the name up
    to the first dot)."""
    return {entry.key: entry.shape[:2] if entry.shape else None for entry in read_meta_info(lmdb_root, strict=False)}


def _ratio_problem(hr: tuple[int, int], lr: tuple[int, int], scale: int, training: bool) -> bool:
    """Whether an HR/LR pair does not fit ``scale``: training crops need HR = scale x LR exactly; validation crops
    the HR image to scale x LR, so it may be up to scale - 1 pixels larger."""
    if training:
        return hr != (lr[0] * scale, lr[1] * scale)
    return any(not lr_side * scale <= hr_side < (lr_side + 1) * scale for hr_side, lr_side in zip(hr, lr))


def _scale_error(where: str, name: str, hr: tuple[int, int], lr: tuple[int, int], scale: int) -> OptionsError:
    ratio = hr[0] / lr[0] if lr[0] else 0
    found = f'x{ratio:g}' if ratio.is_integer() and hr[1] == lr[1] * ratio else 'not a whole factor'
    return OptionsError(f'{where}.dataroot_lq: {name} is {lr[1]}x{lr[0]} against {hr[1]}x{hr[0]} in dataroot_gt '
                        f'({found}), but scale is {scale}; point dataroot_lq at the x{scale} images of dataroot_gt '
                        'or set scale to the factor of your data.')


def check_dataset_files(phase: str, dataset: Opt, scale: int, training: bool) -> None:
    """A ``PairedImageDataset`` on local disk or LMDB against the options (its roots already exist).

    Args:
        phase: The dataset's key under ``datasets``.
        dataset: Its options.
        scale: The option file's ``scale``.
        training: Whether this set is trained on (random crops of ``gt_size``).
    """
    where = f'datasets.{phase}'
    backend = dataset['io_backend']['type']
    roots = {key: dataset[key] for key in ('dataroot_gt', 'dataroot_lq')}
    for key, root in roots.items():
        if not osp.isdir(root):
            kind = 'an LMDB folder (name.lmdb)' if backend == 'lmdb' else 'a folder of images'
            raise OptionsError(f'{where}.{key}: {_where(root)} is a file, not {kind}; point it at the folder.')
    if backend == 'lmdb':
        check_lmdb_pair(where, roots['dataroot_gt'], roots['dataroot_lq'], scale, training, dataset.get('gt_size'))
    elif dataset.get('meta_info_file') is not None:
        if not osp.isfile(dataset['meta_info_file']):
            raise OptionsError(f"{where}.meta_info_file: {_where(dataset['meta_info_file'])} not found; fix the path "
                               'or remove the key to pair the folders by name.')
    else:
        check_folder_pair(where, roots['dataroot_gt'], roots['dataroot_lq'], dataset.get('filename_tmpl', '{}'), scale,
                          training, dataset.get('gt_size'))


def check_folder_pair(where: str, hr_root: str, lr_root: str, filename_tmpl: str, scale: int, training: bool,
                      gt_size: Any) -> None:
    """Every HR image has its LR image and nothing else is in the LR folder; the first pair fits ``scale``."""
    hr_names, lr_names = folder_files(hr_root), folder_files(lr_root)
    if not hr_names:
        raise OptionsError(f'{where}.dataroot_gt: {_where(hr_root)} holds no images; fix the path or prepare the '
                           'data (python -m srgan_plugin.prepare).')
    wanted = {hr: lr_name(hr, filename_tmpl) for hr in hr_names}
    missing, extra = key_differences(wanted.values(), lr_names)
    if missing:
        raise OptionsError(f'{where}.dataroot_lq: {len(missing)} of the {len(hr_names)} images of dataroot_gt have no '
                           f'LR image in {_where(lr_root)} (missing: {_some(missing)}); add them or remove those HR '
                           'images, so that both folders hold the same names.')
    if extra:
        raise OptionsError(f'{where}.dataroot_lq: {len(extra)} files of {_where(lr_root)} match no image of '
                           f'dataroot_gt ({_some(extra)}); remove them, so that both folders hold the same names.')
    first = hr_names[0]
    hr, lr = image_size(osp.join(hr_root, first)), image_size(osp.join(lr_root, wanted[first]))
    if hr is None or lr is None:
        return
    if _ratio_problem(hr, lr, scale, training):
        raise _scale_error(where, wanted[first], hr, lr, scale)
    if training and isinstance(gt_size, int) and min(hr) < gt_size:
        raise OptionsError(f'{where}.gt_size: {gt_size} is larger than {first} ({hr[1]}x{hr[0]}) in dataroot_gt; '
                           'lower gt_size or use larger images.')


def check_lmdb_pair(where: str, hr_root: str, lr_root: str, scale: int, training: bool, gt_size: Any) -> None:
    """The two ``meta_info.txt`` files list the same keys, with sizes that fit ``scale`` (and ``gt_size``)."""
    hr_meta, lr_meta = meta_info_sizes(hr_root), meta_info_sizes(lr_root)
    only_hr, only_lr = key_differences(sorted(hr_meta), sorted(lr_meta))
    if only_hr or only_lr:
        parts = [f'{len(only_hr)} only in dataroot_gt ({_some(only_hr)})'] if only_hr else []
        parts += [f'{len(only_lr)} only in dataroot_lq ({_some(only_lr)})'] if only_lr else []
        raise OptionsError(f'{where}.dataroot_lq: its meta_info.txt and that of dataroot_gt list different keys '
                           f'({"; ".join(parts)}); make both LMDBs from the same images (python -m '
                           'srgan_plugin.prepare).')
    if not hr_meta:
        raise OptionsError(f'{where}.dataroot_gt: the meta_info.txt of {_where(hr_root)} lists no images; rebuild the '
                           'LMDB (python -m srgan_plugin.prepare).')
    sized = [(key, hr_meta[key], lr_meta[key]) for key in sorted(hr_meta) if hr_meta[key] and lr_meta[key]]
    for key, hr, lr in sized:
        if _ratio_problem(hr, lr, scale, training):
            raise _scale_error(where, key, hr, lr, scale)
    if training and isinstance(gt_size, int) and sized:
        key, hr, _ = min(sized, key=lambda item: min(item[1]))
        if min(hr) < gt_size:
            raise OptionsError(f'{where}.gt_size: {gt_size} is larger than {key} ({hr[1]}x{hr[0]}, the smallest image '
                               'in the meta_info.txt of dataroot_gt); lower gt_size or rebuild the LMDB with '
                               f'--min-size {gt_size}.')


# --- checkpoints ---------------------------------------------------------------------------------------------------


def checkpoint_state(path: str, param_key: Any) -> dict[str, torch.Tensor]:
    """The state dict BasicSR's ``load_network`` would take from ``path`` with ``param_key`` (it falls back to
    ``params`` when ``param_key`` is missing), read with ``weights_only=True``."""
    from srgan_plugin.inference.weights import load_checkpoint, read_state_dict, select_params

    try:
        obj = read_state_dict(path) if param_key is None else load_checkpoint(path)
    except InferenceError as error:
        raise OptionsError(f'path.pretrain_network_g: {error}.') from None
    if param_key is None:
        return obj
    if not isinstance(obj, dict):
        raise OptionsError(f'path.pretrain_network_g: {path} holds a {type(obj).__name__}, not a BasicSR checkpoint.')
    key = param_key if param_key in obj else 'params' if 'params' in obj else None
    if key is None:
        keys = ', '.join(map(str, list(obj)[:5]))
        raise OptionsError(f"path.param_key_g: {path} has no {param_key!r} (nor 'params'), it has {keys}; set "
                           'param_key_g to one of them (~ for a bare state dict).')
    try:
        return select_params(obj[key], f'{path}[{key!r}]')
    except InferenceError as error:
        raise OptionsError(f'path.pretrain_network_g: {error}.') from None


def check_pretrained_generator(opt: Opt) -> None:
    """``path.pretrain_network_g`` holds an SRResNet of ``network_g``'s architecture (when ``strict_load_g``)."""
    from srgan_plugin.archs import SRResNet
    from srgan_plugin.inference.weights import ArchSpec, infer_arch

    paths, net_g = opt.get('path') or {}, opt.get('network_g') or {}
    checkpoint = paths.get('pretrain_network_g')
    if not opt.get('is_train') and checkpoint is None:
        raise OptionsError('path.pretrain_network_g: not set, so the test would run an untrained generator; point it '
                           'at the trained weights, e.g. experiments/NAME/models/net_g_latest.pth.')
    if checkpoint is None or not osp.isfile(checkpoint) or paths.get('strict_load_g', True) is False:
        return  # a missing file is reported by check_paths; strict_load_g: false loads the layers that fit
    if resuming(opt):
        return  # resuming: BasicSR's check_resume loads the run's own checkpoints instead
    if registered_class(ARCH_REGISTRY, net_g.get('type')) is not SRResNet:
        return
    state = checkpoint_state(checkpoint, paths.get('param_key_g', 'params'))
    try:
        found = infer_arch(state, checkpoint)
    except InferenceError as error:
        raise OptionsError(f'path.pretrain_network_g: {error}; network_g is an SRResNet.') from None
    defaults = {name: p.default for name, p in inspect.signature(SRResNet).parameters.items()}
    names = [field.name for field in dataclasses.fields(ArchSpec)]
    wanted = ArchSpec(**{name: net_g.get(name, defaults[name]) for name in names})
    differences = [name for name in names if getattr(found, name) != getattr(wanted, name)]
    if not differences:
        return
    first, *others = differences
    what = f'a generator with {first} {getattr(found, first)}'
    if first == 'upscale':
        what = f'an x{found.upscale} generator'
    also = ''.join(f', {name} {getattr(found, name)} vs {getattr(wanted, name)}' for name in others)
    raise OptionsError(f'path.pretrain_network_g: {checkpoint} holds {what} ({found.describe()}), but '
                       f'network_g.{first} is {getattr(wanted, first)}{also and " (and" + also[1:] + ")"}; point it '
                       "at a checkpoint of network_g's architecture, make network_g match the checkpoint, or set "
                       'path.strict_load_g: false to load only the layers that fit.')


# --- resume --------------------------------------------------------------------------------------------------------


def resume_candidates(opt: Opt) -> tuple[Optional[str], list[int]]:
    """The folder of the training states the loop may resume from and their iterations, newest first (what
    ``srgan_plugin.training.loop.find_resume`` walks); ``(None, [])`` for a fresh start.

    ``--auto_resume``: every ``N.state`` of the run's ``training_states``; ``path.resume_state``: those of its folder
    up to its own ``N``.
    """
    from srgan_plugin.training.state_files import state_iterations

    paths = opt.get('path') or {}
    explicit = paths.get('resume_state')
    if opt.get('auto_resume'):
        states = paths.get('training_states')
    elif explicit and osp.isfile(explicit):  # a missing resume_state is reported by check_paths
        states = osp.dirname(explicit)
    else:
        return None, []
    found = state_iterations(states) if states else []
    stem = osp.basename(explicit or '').split('.')[0]
    if not opt.get('auto_resume') and stem.isdigit():
        found = [iteration for iteration in found if iteration <= int(stem)]
    return states, found


def resuming(opt: Opt) -> bool:
    """Whether training states are there to resume from (then BasicSR loads the run's own networks)."""
    return bool(opt.get('is_train') and resume_candidates(opt)[1])


def check_resume_iteration(opt: Opt) -> None:
    """``train.total_iter`` must not be below the iteration training resumes from: the loop cannot go back, so it
    would train nothing and save the resumed weights as the latest. Equal is allowed: it ends the run at that state
    (``net_g_latest.pth`` from it), as ``--force_yml train:total_iter=N`` does to finish a run early. Only states above
    ``total_iter`` are loaded and verified, as the loop would (a damaged one is skipped and the previous one used)."""
    from srgan_plugin.training.state_files import network_labels, verify_state

    total = opt['train'].get('total_iter')
    states, found = resume_candidates(opt)
    if not found or not isinstance(total, (int, float)):
        return
    for iteration in found:
        if iteration <= total:
            return
        state = osp.join(states, f'{iteration}.state')
        try:
            verify_state(state, opt['path']['models'], network_labels(opt))
        except CheckpointError:
            continue  # the loop skips it too
        how = '--auto_resume' if opt.get('auto_resume') else 'path.resume_state'
        raise OptionsError(f'train.total_iter: {int(total)}, but {how} resumes from iteration {iteration} ({state}), '
                           f'so nothing would be trained; raise total_iter above {iteration} to train further (or '
                           f'set it to {iteration} to end the run there), or start a new run under another name.')
