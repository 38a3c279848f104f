"""Checks of a parsed BasicSR option dict, run at the boundary (right after ``parse_options``), before any folder is
made or any network is built, so that a mistake costs one clear line instead of a traceback minutes later.

``check_options`` is called by the patched ``basicsr.utils.options.parse_options`` (see ``srgan_plugin.compat``;
``srgan_plugin/__init__.py`` installs ``check_option_file`` and ``check_parsed_options`` there) for the option files
that ``handled_by_plugin`` accepts, so it guards ``python -m basicsr.train`` / ``basicsr.test`` and
the plugin's own doors alike for the plugin's models, and leaves option files of BasicSR's own models (or another
project's) to BasicSR; ``check_option_file`` runs before BasicSR's parser reads the file (YAML syntax, the sections
the parser indexes). The checks of keys, arguments and values live in ``srgan_plugin.options_schema``, those of what
the options point at (data, checkpoints, the resumed iteration) in ``srgan_plugin.options_data``. Only problems that
would certainly fail later, or silently train something else than asked, are reported; everything else is left to
BasicSR.
"""
from __future__ import annotations

import difflib
import inspect
import json
import os
from os import path as osp
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import torch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from srgan_plugin.archs import SRGANDiscriminator
from srgan_plugin.archs.discriminator_arch import NORMS
from srgan_plugin.base.distributed import rank_zero_first
from srgan_plugin.base.errors import OptionsError, VGGWeightsError, VGGWeightsMismatchError
from srgan_plugin.data_check import check_data
from srgan_plugin.losses import GridLoss
from srgan_plugin.options_data import check_dataset_files, check_pretrained_generator, check_resume_iteration
from srgan_plugin.options_schema import check_schema, check_structure, load_option_file, registered_class
from srgan_plugin.version import __version__

Opt = Mapping[str, Any]
LOCAL_BACKENDS = ('disk', 'lmdb')
OPT_FLAG = '-opt'
FORCE_FLAG = '--force_yml'


def is_plugin_model(cls: Any) -> bool:
    """A plugin model class: ``SRResNetModel``, ``SRGANPluginModel`` or a subclass (``PluginModelMixin``)."""
    from srgan_plugin.models.base import PluginModelMixin

    return isinstance(cls, type) and issubclass(cls, PluginModelMixin)


def plugin_model_types() -> frozenset[str]:
    """The ``model_type`` names in BasicSR's MODEL_REGISTRY whose classes are plugin models."""
    return frozenset(name for name, cls in MODEL_REGISTRY if is_plugin_model(cls))


def handled_by_plugin(model_type: Any) -> bool:
    """Whether an option file with this ``model_type`` gets the plugin's option checks and training loop.

    Args:
        model_type: The option file's ``model_type`` (None when it has none).

    Returns:
        True for the plugin's models (``plugin_model_types``), and for a missing or unknown ``model_type`` (the checks
        then stop the run with one line naming the closest registered model). False for any other registered model,
        e.g. BasicSR's ``SRModel``: such a file runs as BasicSR runs it (the plugin's networks and losses stay
        registered, so ``network_g: {type: SRResNet}`` still resolves).
    """
    cls = registered_class(MODEL_REGISTRY, model_type)
    return cls is None or is_plugin_model(cls)


def _type_entries(opt: Opt) -> Iterator[tuple[str, str, Any]]:
    """(option key, type name, registry) for every ``type:`` / ``model_type:`` that BasicSR will look up."""
    if 'model_type' in opt:
        yield 'model_type', opt['model_type'], MODEL_REGISTRY
    for key, block in opt.items():
        if key.startswith('network_') and isinstance(block, Mapping) and 'type' in block:
            yield f'{key}.type', block['type'], ARCH_REGISTRY
    for phase, block in (opt.get('datasets') or {}).items():
        yield f'datasets.{phase}.type', block.get('type') if isinstance(block, Mapping) else None, DATASET_REGISTRY
    for key, block in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(block, Mapping) and 'type' in block:
            yield f'train.{key}.type', block['type'], LOSS_REGISTRY
    for name, block in ((opt.get('val') or {}).get('metrics') or {}).items():
        yield f'val.metrics.{name}.type', block.get('type') if isinstance(block, Mapping) else None, METRIC_REGISTRY


def check_registered(opt: Opt) -> None:
    for key, name, registry in _type_entries(opt):
        if registered_class(registry, name) is not None:
            continue
        close = difflib.get_close_matches(str(name), list(registry.keys()), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else '.'
        raise OptionsError(f"{key}: '{name}' is not in BasicSR's {registry._name} registry (searched with "
                           f'srgan_plugin {__version__} loaded, which registers its classes there){hint}')


def _missing(path: str | None) -> bool:
    return path is None or not osp.exists(path)


def _where(path: str) -> str:
    return path if osp.isabs(path) else f'{path} (relative to {os.getcwd()})'


def check_dataset(phase: str, dataset: Opt, scale: Any, training: bool) -> None:
    """A dataset's roots exist and are what its backend reads; a ``PairedImageDataset``'s data fits the options
    (``options_data.check_dataset_files``)."""
    backend = (dataset.get('io_backend') or {}).get('type', 'disk')
    if backend not in LOCAL_BACKENDS:
        return  # e.g. memcached: the dataroots are keys on another machine
    for key in ('dataroot_gt', 'dataroot_lq'):
        root = dataset.get(key)
        if root is None:
            continue
        where = f'datasets.{phase}.{key}'
        if _missing(root):
            raise OptionsError(f'{where}: {_where(root)} does not exist; create it with python -m srgan_plugin.prepare '
                               '(README, "Data preparation") or fix the path.')
        if not osp.isdir(root):
            kind = 'an LMDB folder (name.lmdb)' if backend == 'lmdb' else 'a folder of images'
            raise OptionsError(f'{where}: {_where(root)} is a file, not {kind}; point it at the folder.')
        if backend == 'lmdb' and not osp.isfile(osp.join(root, 'meta_info.txt')):
            raise OptionsError(f'{where}: {root} has no meta_info.txt, so it is not a BasicSR LMDB; rebuild it with '
                               'python -m srgan_plugin.prepare (README, "Data preparation").')
        if backend == 'lmdb' and not root.endswith('.lmdb'):
            raise OptionsError(f"{where}: io_backend is lmdb but {root} does not end with '.lmdb'.")
    paired = registered_class(DATASET_REGISTRY,
                              dataset.get('type')) is registered_class(DATASET_REGISTRY, 'PairedImageDataset')
    if paired and isinstance(scale, int):
        check_dataset_files(phase, dataset, scale, training)


def smallest_prepared_size(dataroot_gt: str) -> tuple[int, int] | None:
    """The smallest HR sub-image recorded by ``srgan_plugin.prepare`` next to an LMDB (None when unknown)."""
    manifest = osp.join(osp.dirname(osp.abspath(dataroot_gt)), 'prepare_info.json')
    try:
        with open(manifest, encoding='utf-8') as f:
            height, width = json.load(f)['smallest']['hr_size']
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return height, width


def _default_of(cls: type, arg: str) -> Any:
    return inspect.signature(cls).parameters[arg].default


def check_crop(opt: Opt) -> None:
    train = (opt.get('datasets') or {}).get('train')
    if not train or 'gt_size' not in train:
        return
    gt_size, scale = train['gt_size'], opt.get('scale', 1)
    if not isinstance(gt_size, int) or gt_size <= 0:
        raise OptionsError(f'datasets.train.gt_size: {gt_size!r} is not valid; write a positive whole number of pixels '
                           '(the HR crop size).')
    if gt_size % scale:
        raise OptionsError(f'datasets.train.gt_size: {gt_size} is not a multiple of scale ({scale}); write e.g. '
                           f'{max(scale, gt_size - gt_size % scale)}.')
    smallest = smallest_prepared_size(train['dataroot_gt']) if train.get('dataroot_gt') else None
    if smallest and min(smallest) < gt_size:
        raise OptionsError(f"datasets.train.gt_size: {gt_size} is larger than the smallest HR sub-image of "
                           f"{train['dataroot_gt']} ({smallest[0]}x{smallest[1]}, see its prepare_info.json): "
                           f'rebuild it with --min-size {gt_size} or lower gt_size.')
    grid = (opt.get('train') or {}).get('grid_opt') or {}
    period = grid.get('period', _default_of(GridLoss, 'period'))
    if grid.get('type') == 'GridLoss' and gt_size % period:
        raise OptionsError(f'train.grid_opt.period: {period} does not divide datasets.train.gt_size ({gt_size}); set '
                           f'period to scale ({scale}).')
    net_d = opt.get('network_d') or {}
    if net_d.get('type') == 'SRGANDiscriminator':
        input_size = net_d.get('input_size', _default_of(SRGANDiscriminator, 'input_size'))
        if input_size != gt_size:
            raise OptionsError(f'network_d.input_size: {input_size} differs from datasets.train.gt_size ({gt_size}); '
                               'set both to the HR crop size.')
    if net_d.get('type') == 'VGGStyleDiscriminator' and gt_size not in (128, 256):
        raise OptionsError(f'network_d.type: VGGStyleDiscriminator takes only 128 or 256 px crops but '
                           f'datasets.train.gt_size is {gt_size}; use type: SRGANDiscriminator with input_size: '
                           f'{gt_size}.')


def check_critic(opt: Opt) -> None:
    """``network_d.norm`` is valid, and a gradient penalty (``train.gp_opt``) does not meet a BatchNorm critic: the
    penalty is per sample, BatchNorm mixes the samples of a batch (Gulrajani et al. 2017, section 4). Only
    discriminators known to have BatchNorm are refused."""
    net_d = opt.get('network_d') or {}
    kind = net_d.get('type')
    norm = net_d.get('norm', _default_of(SRGANDiscriminator, 'norm')) if kind == 'SRGANDiscriminator' else None
    if kind == 'SRGANDiscriminator' and norm not in NORMS:
        raise OptionsError(f'network_d.norm: {norm!r} is not valid; write {", ".join(NORMS[:-1])} or {NORMS[-1]}.')
    if not (opt.get('train') or {}).get('gp_opt'):
        return
    if kind == 'SRGANDiscriminator' and norm == 'batch':
        raise OptionsError('train.gp_opt: the gradient penalty is per sample but the discriminator has BatchNorm, '
                           'which mixes the samples of a batch; set network_d.norm: spectral or none.')
    if kind == 'VGGStyleDiscriminator':
        raise OptionsError('train.gp_opt: the gradient penalty is per sample but VGGStyleDiscriminator has BatchNorm, '
                           'which mixes the samples of a batch; use network_d.type: SRGANDiscriminator with '
                           'network_d.norm: spectral or none.')


def check_paths(opt: Opt) -> None:
    paths = opt.get('path') or {}
    resuming = bool(opt.get('auto_resume') or paths.get('resume_state'))
    for key, value in paths.items():
        if not (key.startswith('pretrain_network') or key == 'resume_state') or value is None:
            continue
        if resuming and key.startswith('pretrain_network'):
            continue  # BasicSR's check_resume replaces them with the run's own checkpoints
        if _missing(value):
            hint = ('train the phase that writes it first (phase 1: python -m basicsr.train -opt '
                    'options/train_srresnet_x4.yml) or point it at a checkpoint'
                    ) if key.startswith('pretrain_network') else 'fix the path or remove the key'
            raise OptionsError(f'path.{key}: {_where(value)} not found; {hint}.')


def check_losses(opt: Opt) -> None:
    """VGG19 weights must be at hand (a path, torchvision's cache, or a download now when online)."""
    from srgan_plugin.losses.vgg import resolve_vgg19_weights, vgg19_weights_available

    for key, block in (opt.get('train') or {}).items():
        if not (isinstance(block, Mapping) and block.get('type') == 'VGGContentLoss'):
            continue
        weights = block.get('vgg_weights')
        if vgg19_weights_available(weights):
            continue  # a file is there; it is loaded (and checked) once, when the loss is built
        try:
            resolve_vgg19_weights(weights)  # downloads into torchvision's cache when online
        except (VGGWeightsError, VGGWeightsMismatchError) as error:
            raise OptionsError(f'train.{key}: {error}') from None


TYPED_OPTIONS = (  # the plugin's typed options: (section or None for the top level, key, kind, what to write)
    ('logger', 'keep_last_states', 'count', 'a positive number of training states to keep, or null to keep all'),
    ('logger', 'save_on_signal', 'bool', 'true or false'),
    ('train', 'max_nonfinite_steps', 'count', 'a positive number of consecutive skipped steps'),
    (None, 'sync_bn', 'bool', 'true or false'),
    ('train', 'channels_last', 'bool', 'true or false'),
    ('train', 'ema_warmup', 'bool', 'true, false, or ~ (warm up only when training from random weights)'),
    ('train', 'bn_freeze_iter', 'count', 'the iteration (1 or more) from which the BatchNorm layers of the '
     'generator train with frozen running statistics, or ~ for never'),
    (None, 'cudnn_benchmark', 'bool', 'true or false'),
)


def check_prefetch(opt: Opt) -> None:
    """``datasets.train.prefetch_mode``: BasicSR's values, and the CUDA prefetcher only with pinned memory on CUDA."""
    train = (opt.get('datasets') or {}).get('train') or {}
    mode = train.get('prefetch_mode')
    if mode not in (None, 'cpu', 'cuda'):
        raise OptionsError(f'datasets.train.prefetch_mode: {mode!r} is not valid; write ~, cpu or cuda.')
    if mode == 'cuda' and not train.get('pin_memory'):
        raise OptionsError('datasets.train.prefetch_mode: cuda needs pin_memory: true in datasets.train.')
    if mode == 'cuda' and opt.get('num_gpu') == 0:
        raise OptionsError('datasets.train.prefetch_mode: cuda needs a GPU (num_gpu is 0); write ~ or cpu.')


def check_typed_options(opt: Opt) -> None:
    """The plugin's typed options (fault tolerance: ``srgan_plugin.training.loop``; speed:
    ``srgan_plugin.models.performance``) have the right types."""
    for section, key, kind, expected in TYPED_OPTIONS:
        block = opt if section is None else (opt.get(section) or {})
        if block.get(key) is None:
            continue
        value = block[key]
        good = isinstance(value, bool) if kind == 'bool' else (isinstance(value, int) and not isinstance(value, bool)
                                                               and value >= 1)
        if not good:
            name = key if section is None else f'{section}.{key}'
            raise OptionsError(f'{name}: {value!r} is not valid; write {expected}.')


def check_speed(opt: Opt) -> None:
    """The speed options with values beyond a type (``train.amp``, ``train.compile``; see
    ``srgan_plugin.models.performance``; the booleans are in ``TYPED_OPTIONS``)."""
    train = opt.get('train') or {}
    amp = train.get('amp')
    if amp not in (None, False, 'bf16', 'fp16'):
        raise OptionsError(f'train.amp: {amp!r} is not valid; write ~ (fp32), bf16 or fp16.')
    if amp == 'bf16' and opt.get('num_gpu') != 0 and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise OptionsError(f'train.amp: bf16 is not supported by {torch.cuda.get_device_name()}; write fp16.')
    compile_opt = train.get('compile')
    if compile_opt is None or isinstance(compile_opt, bool):
        return
    allowed = set(inspect.signature(torch.compile).parameters) - {'model'}
    unknown = sorted(set(compile_opt) - allowed) if isinstance(compile_opt, dict) else None
    if unknown is None or unknown:
        what = f'unknown key {unknown[0]!r}' if unknown else f'{compile_opt!r} is not valid'
        raise OptionsError(f'train.compile: {what}; write true, false, or torch.compile arguments such as '
                           '{mode: max-autotune}.')


Check = Callable[[Opt], None]
CHECKS: tuple[Check, ...] = (check_registered, check_schema, check_crop, check_critic, check_paths, check_prefetch,
                             check_typed_options, check_speed)


def check_options(opt: Opt, opt_path: str = '<options>') -> None:
    """Raise ``SystemExit`` with a one-line ``error: FILE: ...`` message when ``opt`` cannot work.

    Args:
        opt: The options as BasicSR's ``parse_options`` returns them.
        opt_path: The option file, for the message.
    """
    try:
        for check in CHECKS:
            check(opt)
        for phase, dataset in (opt.get('datasets') or {}).items():
            check_dataset(phase, dataset, opt.get('scale'), phase == 'train' and bool(opt.get('is_train')))
        check_pretrained_generator(opt)
        if opt.get('is_train'):
            check_resume_iteration(opt)
            with rank_zero_first():  # only rank 0 may download the VGG weights
                check_losses(opt)
    except OptionsError as error:
        raise SystemExit(f'error: {opt_path}: {error}') from None


def check_parsed_options(opt: Opt, opt_path: str) -> None:
    """After BasicSR's parser, for the option files of the plugin's models (``handled_by_plugin``): the files behind
    the options (``srgan_plugin.data_check``: damaged or unsafe files first, the option checks read some of them),
    then the options (:func:`check_options`). Raises ``SystemExit`` with one line to refuse.

    Args:
        opt: The options as BasicSR's ``parse_options`` returns them.
        opt_path: The option file, for the message.
    """
    if handled_by_plugin(opt.get('model_type')):
        check_data(opt, opt_path)
        check_options(opt, opt_path)


def option_file_path(argv: Sequence[str]) -> Optional[str]:
    """The ``FILE`` of ``-opt FILE`` (or ``-opt=FILE``) in ``argv``, or None."""
    for i, arg in enumerate(argv):
        if arg == OPT_FLAG and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(OPT_FLAG + '='):
            return arg[len(OPT_FLAG) + 1:]
    return None


def forced_model_type(argv: Sequence[str]) -> Optional[str]:
    """The value of a ``--force_yml model_type=NAME`` entry in ``argv``, or None."""
    forced, in_force = None, False
    for arg in argv:
        if arg.startswith('-'):
            in_force = arg == FORCE_FLAG
        elif in_force and arg.partition('=')[0].strip() == 'model_type':
            forced = arg.partition('=')[2].strip()
    return forced


def check_option_file(argv: Sequence[str], is_train: bool) -> None:
    """Before BasicSR's parser reads ``-opt FILE``: raise ``SystemExit`` with one ``error: FILE: ...`` line when the
    file is not valid YAML (line and column), or, for the plugin's models, lacks what the parser itself needs.

    Args:
        argv: The command-line arguments (``sys.argv[1:]``).
        is_train: True for ``basicsr.train``, False for ``basicsr.test``.
    """
    path = option_file_path(argv)
    if path is None or not osp.isfile(path):
        return  # argparse (no -opt) or compat patch 6 (missing file) answers
    try:
        opt = load_option_file(path)
        model_type = forced_model_type(argv) or (opt.get('model_type') if isinstance(opt, Mapping) else None)
        if handled_by_plugin(model_type):
            check_structure(opt, is_train)
    except OptionsError as error:
        raise SystemExit(f'error: {path}: {error}') from None
