"""What an option file of the plugin's models may contain: YAML syntax, the sections and their keys, the arguments of
the classes that ``type:`` names, and the types and ranges of the values.

Used by :mod:`srgan_plugin.options_check`: ``check_option_file`` reads the file before BasicSR's parser does (which
would fail with a traceback on a YAML error or a missing section); ``check_schema`` checks the parsed options before
anything is built. Every problem is an :class:`OptionsError` whose message is one line, ``key: what is wrong; what to
do``. Only the plugin's own models (``SRResNetModel``, ``SRGANPluginModel``) get the checks of the sections their
code reads (top level, ``train``, ``val``, ``logger``, ``path``); a subclass may read keys of its own, so for it those
sections are left alone. Datasets, networks, losses, optimizers, schedulers and metrics are checked against the
class or function their ``type`` names, whichever model reads them.
"""
from __future__ import annotations

import difflib
import inspect
import math
import re
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import torch
import yaml
from basicsr.models import lr_scheduler
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from srgan_plugin.archs.srresnet_arch import SUPPORTED_SCALES
from srgan_plugin.base.errors import OptionsError

Opt = Mapping[str, Any]


def registered_class(registry: Any, name: Any) -> Any:
    """What ``registry.get(name)`` returns (including its ``NAME_basicsr`` fallback), or None; never prints."""
    if isinstance(name, str):
        for candidate in (name, f'{name}_basicsr'):
            if candidate in registry:
                return dict(iter(registry))[candidate]
    return None


def closest(name: Any, valid: Iterable[str]) -> Optional[str]:
    """The valid name closest to ``name`` (difflib), or None when none is close."""
    found = difflib.get_close_matches(str(name), sorted(valid), n=1)
    return found[0] if found else None


def did_you_mean(name: Any, valid: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest valid name, else ``''``."""
    found = closest(name, valid)
    return f"; did you mean '{found}'?" if found else ''


# --- the file itself -----------------------------------------------------------------------------------------------

SYNTAX_HINT = 'fix the YAML there (indentation, a missing colon, an unclosed quote or bracket, a tab)'


def _mark(error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    return f'line {mark.line + 1}, column {mark.column + 1}' if mark else 'YAML'


def load_option_file(path: str) -> Any:
    """The option file parsed by BasicSR's own YAML loader, or an :class:`OptionsError` saying where it is broken.

    Args:
        path: The ``-opt`` file.

    Returns:
        What BasicSR's ``parse_options`` would load (an ``OrderedDict`` for a well-formed file).
    """
    from basicsr.utils.options import ordered_yaml

    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except UnicodeDecodeError:
        raise OptionsError('not a text file (UTF-8): pass the YAML option file') from None
    try:
        opt = yaml.load(text, Loader=ordered_yaml()[0])
        duplicate = first_duplicate_key(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as error:
        problem = (error.problem or error.context or 'not valid YAML').strip()
        raise OptionsError(f'{_mark(error)}: {problem}; {SYNTAX_HINT}.') from None
    except yaml.YAMLError as error:
        raise OptionsError(f'not valid YAML ({str(error).splitlines()[0]}); {SYNTAX_HINT}.') from None
    if duplicate:
        raise OptionsError(duplicate)
    return opt


def first_duplicate_key(node: Any, where: str = '') -> Optional[str]:
    """A message for the first key that appears twice in one mapping of a composed YAML document (YAML keeps the
    last one silently), or None."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                return (f'{where}{name}: appears twice in the same block (lines {seen[name] + 1} and '
                        f'{key.start_mark.line + 1}) and YAML keeps only the last one; merge them into one.')
            seen[name] = key.start_mark.line
            found = first_duplicate_key(value, f'{where}{name}.')
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = first_duplicate_key(item, where)
            if found:
                return found
    return None


def check_structure(opt: Any, is_train: bool) -> None:
    """What BasicSR's ``parse_options`` itself needs (it indexes these before any check could run).

    Args:
        opt: The loaded option file.
        is_train: True for ``basicsr.train``, False for ``basicsr.test``.
    """
    if not isinstance(opt, Mapping):
        what = 'empty' if opt is None else f'a {type(opt).__name__}, not a mapping of options'
        raise OptionsError(f'the file is {what}; write key: value lines (see options/ for examples).')
    needed = ['name', 'model_type', 'num_gpu', 'datasets', 'network_g', 'path'
              ] + (['train', 'logger'] if is_train else ['val'])
    for key in needed:
        if key not in opt:
            raise OptionsError(f'{key}: missing{did_you_mean(key, [k for k in opt if isinstance(k, str)])}; '
                               f'{REQUIRED_HINTS[key]}.')
    if not isinstance(opt['name'], str) or not opt['name'].strip() or '/' in opt['name']:
        raise OptionsError(f"name: {opt['name']!r} is not valid; write the run's name (a folder name, no '/').")
    num_gpu = opt['num_gpu']
    if num_gpu != 'auto' and not (_is_int(num_gpu) and num_gpu >= 0):
        raise OptionsError(f'num_gpu: {num_gpu!r} is not valid; write auto (every visible GPU), 0 (CPU) or a count.')
    seed = opt.get('manual_seed')
    if seed is not None and not _is_int(seed):
        raise OptionsError(f'manual_seed: {seed!r} is not valid; write a whole number, or ~ for a random seed.')
    for key in ('datasets', 'path') + (('train', 'logger') if is_train else ('val', )):
        if not isinstance(opt[key], Mapping):
            raise OptionsError(f'{key}: {opt[key]!r} is not a block of options; write its keys indented below it.')
    if not opt['datasets']:
        raise OptionsError('datasets: empty; add the datasets (see options/ for examples).')
    for phase, dataset in opt['datasets'].items():
        if not isinstance(dataset, Mapping):
            raise OptionsError(f'datasets.{phase}: {dataset!r} is not a block of options; write its keys (name, type, '
                               'dataroot_gt, ...) indented below it.')
        for key in ('dataroot_gt', 'dataroot_lq', 'meta_info_file'):
            if dataset.get(key) is not None and not isinstance(dataset[key], str):
                raise OptionsError(f'datasets.{phase}.{key}: {dataset[key]!r} is not a path; write a path.')
    for key, value in opt['path'].items():
        if ('resume_state' in str(key) or 'pretrain_network' in str(key)) and value is not None \
                and not isinstance(value, str):
            raise OptionsError(f'path.{key}: {value!r} is not a path; write a path or ~.')


REQUIRED_HINTS = {
    'name': 'add name: RUN_NAME (experiments/RUN_NAME/ and results/RUN_NAME/ are named after it)',
    'model_type': 'add model_type: SRResNetModel (phase 1) or SRGANPluginModel (phase 2)',
    'num_gpu': 'add num_gpu: auto (every visible GPU; 0 on a CPU-only machine)',
    'datasets': 'add the datasets block (see options/ for examples)',
    'network_g': 'add the generator, e.g. network_g: {type: SRResNet, upscale: 4}',
    'path': 'add a path block (it may be empty: path: {})',
    'train': 'add the train block (losses, optimizers, scheduler, total_iter)',
    'logger': 'add a logger block with print_freq and save_checkpoint_freq',
    'val': 'add a val block with save_img (and metrics)',
}

# --- sections and their keys ---------------------------------------------------------------------------------------

# Keys that BasicSR's parse_options (and the training loop) add to the parsed options.
PARSER_KEYS = frozenset({'dist', 'rank', 'world_size', 'auto_resume', 'is_train', 'root_path'})
TOP_LEVEL = frozenset({
    'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'path', 'train', 'val', 'logger',
    'dist_params', 'find_unused_parameters', 'sync_bn', 'cudnn_benchmark'
}) | PARSER_KEYS
GAN_TOP_LEVEL = frozenset({'network_d'})
# BasicSR's SRModel + the plugin's mixins (tv_opt, grid_opt, bn_freeze_iter, max_nonfinite_steps, speed options);
# SRGANModel
# adds the rest.
TRAIN_KEYS = frozenset({
    'optim_g', 'scheduler', 'total_iter', 'warmup_iter', 'pixel_opt', 'perceptual_opt', 'ema_decay', 'ema_warmup',
    'tv_opt', 'grid_opt', 'bn_freeze_iter', 'max_nonfinite_steps', 'amp', 'channels_last', 'compile'
})
GAN_TRAIN_KEYS = frozenset({'optim_d', 'gan_opt', 'gp_opt', 'net_d_iters', 'net_d_init_iters'})
VAL_KEYS = frozenset({'val_freq', 'save_img', 'suffix', 'metrics', 'pbar'})
LOGGER_KEYS = frozenset(
    {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb', 'keep_last_states', 'save_on_signal'})
WANDB_KEYS = frozenset({'project', 'resume_id'})
PATH_KEYS = frozenset({
    'resume_state', 'ignore_resume_networks', 'experiments_root', 'models', 'training_states', 'log', 'visualization',
    'results_root'
})
PATH_PREFIXES = ('pretrain_network_', 'param_key_', 'strict_load_')
# PairedImageDataset (basicsr/data/paired_image_dataset.py) and the data loader (basicsr/data/__init__.py).
PAIRED_DATASET_KEYS = frozenset({
    'name', 'type', 'phase', 'scale', 'dataroot_gt', 'dataroot_lq', 'meta_info_file', 'io_backend', 'filename_tmpl',
    'gt_size', 'use_hflip', 'use_rot', 'color', 'mean', 'std', 'num_worker_per_gpu', 'batch_size_per_gpu',
    'dataset_enlarge_ratio', 'prefetch_mode', 'num_prefetch_queue', 'pin_memory', 'persistent_workers'
})
PAIRED_TRAIN_REQUIRED = ('gt_size', 'use_hflip', 'use_rot', 'batch_size_per_gpu', 'num_worker_per_gpu')
IO_BACKENDS = {
    'disk': frozenset({'type'}),
    'lmdb': None,
    'memcached': frozenset({'type', 'server_list_cfg', 'client_cfg', 'sys_path'})
}
# basicsr 1.4.2's BaseModel.get_optimizer builds Adam only; setup_schedulers knows these three names.
OPTIMIZERS = {'Adam': torch.optim.Adam}
SCHEDULERS = {
    'MultiStepLR': lr_scheduler.MultiStepRestartLR,
    'MultiStepRestartLR': lr_scheduler.MultiStepRestartLR,
    'CosineAnnealingRestartLR': lr_scheduler.CosineAnnealingRestartLR
}
GAN_TYPES = ('vanilla', 'lsgan', 'wgan', 'wgan_softplus', 'hinge')  # basicsr/losses/gan_loss.py


def _strict_model(opt: Opt) -> Optional[str]:
    """``SRResNetModel`` or ``SRGANPluginModel`` when ``model_type`` is exactly one of them, else None."""
    from srgan_plugin.models import SRGANPluginModel, SRResNetModel

    cls = registered_class(MODEL_REGISTRY, opt.get('model_type'))
    return cls.__name__ if cls in (SRResNetModel, SRGANPluginModel) else None


def _unknown(where: str, key: Any, valid: Iterable[str], owner: str) -> OptionsError:
    hint = did_you_mean(key, valid)
    return OptionsError(f'{where}{key}: unknown key{" of " + owner if owner else ""}'
                        f'{hint or "; remove it (the keys are listed in the README, Option reference)"}')


def check_section_keys(opt: Opt) -> None:
    """Unknown keys at the top level and in ``train``, ``val``, ``logger`` and ``path`` (the plugin's own models)."""
    model = _strict_model(opt)
    if model is None:
        return
    gan = model == 'SRGANPluginModel'
    top = TOP_LEVEL | (GAN_TOP_LEVEL if gan else frozenset())
    for key in opt:
        if key == 'network_d' and not gan:
            if opt.get('is_train'):
                raise OptionsError('network_d: SRResNetModel trains no discriminator; remove network_d (and optim_d, '
                                   'gan_opt) or use model_type: SRGANPluginModel.')
        elif key not in top:
            raise _unknown('', key, top - PARSER_KEYS, model)
    sections: list[tuple[str, frozenset[str]]] = [('val', VAL_KEYS)]
    if opt.get('is_train'):
        sections += [('train', TRAIN_KEYS | GAN_TRAIN_KEYS), ('logger', LOGGER_KEYS)]
    for section, valid in sections:
        block = opt.get(section)
        if not isinstance(block, Mapping):
            continue
        for key in block:
            if section == 'train' and not gan and key in GAN_TRAIN_KEYS:
                raise OptionsError(f'train.{key}: SRResNetModel trains no discriminator and would ignore it; remove it '
                                   'or use model_type: SRGANPluginModel.')
            if key not in valid:
                raise _unknown(f'{section}.', key, valid, model)
    wandb = (opt.get('logger') or {}).get('wandb') if opt.get('is_train') else None
    for key in wandb if isinstance(wandb, Mapping) else ():
        if key not in WANDB_KEYS:
            raise _unknown('logger.wandb.', key, WANDB_KEYS, '')
    check_path_keys(opt)


def check_path_keys(opt: Opt) -> None:
    """``path``: BasicSR's keys, and ``pretrain_network_X`` / ``param_key_X`` / ``strict_load_X`` only for a
    ``network_X`` of the file."""
    labels = [key[len('network_'):] for key in opt if isinstance(key, str) and key.startswith('network_')]
    valid = set(PATH_KEYS) | {prefix + label for prefix in PATH_PREFIXES for label in labels}
    for key in opt.get('path') or {}:
        if key in valid:
            continue
        prefix = next((p for p in PATH_PREFIXES if str(key).startswith(p)), None)
        if prefix and closest(key, valid) is None:
            label = str(key)[len(prefix):]
            raise OptionsError(f'path.{key}: there is no network_{label} in this file (it has '
                               f'{", ".join("network_" + lab for lab in labels)}); remove the key or fix its name.')
        raise _unknown('path.', key, valid, '')


def check_dataset_keys(phase: str, dataset: Opt, is_train: bool) -> None:
    """``datasets.PHASE`` of a ``PairedImageDataset``: known keys, the keys it reads without a default, a known
    ``io_backend``. Other dataset types are left to their own code."""
    where = f'datasets.{phase}'
    if 'type' not in dataset:
        raise OptionsError(f'{where}.type: missing; add type: PairedImageDataset.')
    if 'name' not in dataset:
        raise OptionsError(f'{where}.name: missing; add the name of the set (logs and result folders use it).')
    backend = dataset.get('io_backend')
    if not isinstance(backend, Mapping) or 'type' not in backend:
        raise OptionsError(f'{where}.io_backend: missing or without a type; add io_backend: {{type: disk}} '
                           '(folders of images) or {type: lmdb}.')
    if backend['type'] not in IO_BACKENDS:
        raise OptionsError(f"{where}.io_backend.type: {backend['type']!r} is not a BasicSR backend; write "
                           f'{", ".join(IO_BACKENDS)}{did_you_mean(backend["type"], IO_BACKENDS)}')
    allowed = IO_BACKENDS[backend['type']]
    for key in backend if allowed is not None else ():
        if key not in allowed:
            raise OptionsError(f"{where}.io_backend.{key}: the {backend['type']} backend takes no such option "
                               f'({", ".join(sorted(allowed))} only); remove it.')
    if registered_class(DATASET_REGISTRY, dataset['type']) is not registered_class(DATASET_REGISTRY,
                                                                                   'PairedImageDataset'):
        return
    for key in dataset:
        if key not in PAIRED_DATASET_KEYS:
            raise _unknown(f'{where}.', key, PAIRED_DATASET_KEYS - {'phase', 'scale'}, 'PairedImageDataset')
    for key in ('dataroot_gt', 'dataroot_lq'):
        if dataset.get(key) is None:
            raise OptionsError(f'{where}.{key}: missing; add the folder (or .lmdb) of the '
                               f'{"HR" if key.endswith("gt") else "LR"} images.')
    tmpl = dataset.get('filename_tmpl', '{}')
    if not isinstance(tmpl, str) or tmpl.count('{}') != 1:
        raise OptionsError(f"{where}.filename_tmpl: {tmpl!r} is not valid; write a name pattern with one {{}}, e.g. "
                           "'{}' (the LR image has the HR image's name) or '{}x4'.")
    if phase == 'train' and is_train:
        for key in PAIRED_TRAIN_REQUIRED:
            if key not in dataset:
                raise OptionsError(f'{where}.{key}: missing; PairedImageDataset needs it for training (e.g. '
                                   f'{TRAIN_EXAMPLES[key]}).')


TRAIN_EXAMPLES = {
    'gt_size': 'gt_size: 96',
    'use_hflip': 'use_hflip: true',
    'use_rot': 'use_rot: true',
    'batch_size_per_gpu': 'batch_size_per_gpu: 16',
    'num_worker_per_gpu': 'num_worker_per_gpu: 4'
}


def check_phases(opt: Opt) -> None:
    """Dataset names that BasicSR's loops understand: ``train`` and ``val*`` for training, ``test*`` / ``val*`` for
    testing (the part before the first ``_``)."""
    datasets = opt.get('datasets') or {}
    valid = ('train', 'val') if opt.get('is_train') else ('test', 'val')
    for phase in datasets:
        if str(phase).split('_')[0] not in valid:
            example = 'train, val, val_2' if opt.get('is_train') else 'test_1, test_2'
            raise OptionsError(f'datasets.{phase}: not a dataset name BasicSR understands; name it {example}, ... '
                               '(the part before the first _ says what the set is for)')
    if opt.get('is_train') and 'train' not in datasets:
        raise OptionsError('datasets.train: missing; add the training set.')


# --- arguments of the classes that type: names ---------------------------------------------------------------------


def _named_parameters(target: Callable[..., Any], supplied: Iterable[str]) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword parameters of ``target`` less ``supplied``, and whether it takes ``**kwargs``."""
    params = inspect.signature(target).parameters
    named = {
        name: p
        for name, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in supplied
    }
    return named, any(p.kind == p.VAR_KEYWORD for p in params.values())


def check_arguments(where: str,
                    block: Opt,
                    target: Callable[..., Any],
                    owner: str,
                    supplied: Iterable[str] = (),
                    extra: Iterable[str] = (),
                    closed: Optional[bool] = None,
                    required: Iterable[str] = ()) -> None:
    """The keys of ``block`` (less ``type`` and ``extra``) against the keyword arguments of ``target``.

    Args:
        where: The block's key, e.g. ``network_g``.
        block: Its options.
        target: The class or function the options are passed to.
        owner: Its name, for messages.
        supplied: Arguments the caller passes itself (e.g. ``params`` of an optimizer).
        extra: Keys that are read elsewhere and not passed to ``target``.
        closed: Whether unknown keys are errors; None: unless ``target`` takes ``**kwargs``.
        required: Arguments the caller requires although ``target`` has a default for them.
    """
    params, var_keyword = _named_parameters(target, supplied)
    closed = not var_keyword if closed is None else closed
    ignored = {'type', *extra}
    for key in block:
        if key in ignored or key in params or not closed:
            continue
        hint = did_you_mean(key, params)
        names = ', '.join(params) or 'no options'
        raise OptionsError(f'{where}.{key}: {owner} takes no argument {key!r}'
                           f'{hint or f"; its arguments are {names}"}')
    for name, param in params.items():
        if name not in block and (param.default is param.empty or name in required):
            raise OptionsError(f'{where}.{name}: missing; {owner} needs it (it has no default here).')
    for name, value in block.items():
        default = params[name].default if name in params else None
        if _is_number(default) and not isinstance(default, bool) and isinstance(value, str):
            raise text_number(f'{where}.{name}', value) if _parses_as_float(value) else OptionsError(
                f'{where}.{name}: {value!r} is not a number; write a number like {default!r}.')


def _typed_blocks(opt: Opt) -> Iterator[tuple[str, Opt, Any, Any]]:
    """(key, block, registry, class) of every ``network_*`` and ``train.*_opt`` block."""
    for key, block in opt.items():
        if isinstance(key, str) and key.startswith('network_') and isinstance(block, Mapping):
            yield key, block, ARCH_REGISTRY, registered_class(ARCH_REGISTRY, block.get('type'))
    if opt.get('is_train'):
        for key, block in (opt.get('train') or {}).items():
            if str(key).endswith('_opt') and isinstance(block, Mapping):
                yield f'train.{key}', block, LOSS_REGISTRY, registered_class(LOSS_REGISTRY, block.get('type'))


def check_constructors(opt: Opt) -> None:
    """Networks, losses, optimizers, the scheduler and the metrics: each key an argument of what ``type`` names, no
    argument without a default missing."""
    for key, block, registry, cls in _typed_blocks(opt):
        if 'type' not in block:
            raise OptionsError(f'{key}.type: missing; add the {registry._name} class to build'
                               f'{" (e.g. SRResNet)" if key == "network_g" else ""}.')
        if cls is not None:
            check_arguments(key, block, cls, block['type'])
    train = opt.get('train') or {} if opt.get('is_train') else {}
    for key, block in train.items():
        if str(key).startswith('optim_') and isinstance(block, Mapping):
            kind = block.get('type')
            if kind not in OPTIMIZERS:
                raise OptionsError(f'train.{key}.type: {kind!r} is not supported: basicsr 1.4.2 builds only Adam '
                                   f'optimizers; write type: Adam.')
            check_arguments(f'train.{key}', block, OPTIMIZERS[kind], kind, supplied=('params', ), required=('lr', ))
    scheduler = train.get('scheduler')
    if isinstance(scheduler, Mapping):
        kind = scheduler.get('type')
        if kind not in SCHEDULERS:
            raise OptionsError(f'train.scheduler.type: {kind!r} is not a scheduler of basicsr 1.4.2; write '
                               f'{", ".join(SCHEDULERS)}{did_you_mean(kind, SCHEDULERS)}')
        check_arguments('train.scheduler', scheduler, SCHEDULERS[kind], kind, supplied=('optimizer', ))
    for name, block in ((opt.get('val') or {}).get('metrics') or {}).items():
        metric = registered_class(METRIC_REGISTRY, block.get('type')) if isinstance(block, Mapping) else None
        if metric is None:
            continue
        ours = metric.__module__.split('.')[0] in ('basicsr', 'srgan_plugin')  # their **kwargs only swallow 'better'
        check_arguments(
            f'val.metrics.{name}',
            block,
            metric,
            block['type'],
            supplied=('img', 'img2'),
            extra=('better', ),
            closed=True if ours else None)


# --- values --------------------------------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def text_number(where: str, text: str) -> OptionsError:
    """The error for a number that YAML read as text (``1e-4``: YAML 1.1 needs a decimal point in ``1.0e-4``)."""
    fixed = re.sub(r'^([+-]?\d+)([eE])', r'\1.0\2', text.strip())
    return OptionsError(f'{where}: {text!r} is text, not a number (YAML reads a number with an exponent as text '
                        f'unless it has a decimal point); write {fixed} or !!float {text.strip()}.')


def number(value: Any, where: str, what: str) -> float:
    """``value`` when it is a finite number, else an :class:`OptionsError` saying to write ``what``."""
    if _is_number(value) and math.isfinite(value):
        return value
    if isinstance(value, str) and _parses_as_float(value):
        raise text_number(where, value)
    raise OptionsError(f'{where}: {value!r} is not valid; write {what}.')


def whole(value: Any, where: str, minimum: int, what: str, exact: bool = False) -> int:
    """``value`` as an int when it is a whole number >= ``minimum``, else an :class:`OptionsError`.

    Args:
        value: The option's value.
        where: Its key, for the message.
        minimum: The smallest valid value.
        what: What to write instead, for the message.
        exact: Refuse floats such as ``!!float 5e3`` (for values that must be ints, e.g. a batch size).
    """
    value = number(value, where, what)
    if float(value).is_integer() and value >= minimum and (_is_int(value) or not exact):
        return int(value)
    raise OptionsError(f'{where}: {value!r} is not valid; write {what}.')


def check_scale(opt: Opt) -> None:
    """``scale``: a whole number the generator supports, equal to ``network_g.upscale``."""
    from srgan_plugin.archs import SRResNet

    if 'scale' not in opt:
        raise OptionsError('scale: missing; add scale: 4 (the upscaling factor; the data and network_g.upscale must '
                           'match it).')
    net_g = opt.get('network_g') or {}
    cls = registered_class(ARCH_REGISTRY, net_g.get('type'))
    scales = SUPPORTED_SCALES if cls is SRResNet else None
    what = f'one of {", ".join(map(str, scales))} (what SRResNet supports)' if scales else 'a whole number >= 1'
    scale = whole(opt['scale'], 'scale', 1, what)
    if not _is_int(opt['scale']) or (scales and scale not in scales):
        raise OptionsError(f"scale: {opt['scale']!r} is not supported; write {what}.")
    if cls is None or 'upscale' not in inspect.signature(cls).parameters:
        return
    upscale = net_g.get('upscale', inspect.signature(cls).parameters['upscale'].default)
    if upscale != scale:
        raise OptionsError(f"network_g.upscale ({upscale}) differs from scale ({scale}); set both to the factor of "
                           'your data.')


def check_values(opt: Opt) -> None:
    """Types and ranges of the numbers BasicSR and the plugin read (one line each)."""
    num_gpu = opt.get('num_gpu')
    if not (_is_int(num_gpu) and num_gpu >= 0):
        raise OptionsError(f'num_gpu: {num_gpu!r} is not valid; write auto, 0 (CPU) or a count of GPUs.')
    if num_gpu > 0 and not torch.cuda.is_available():
        raise OptionsError(f'num_gpu: {num_gpu}, but torch sees no GPU on this machine; write auto or 0 (CPU).')
    for phase, dataset in (opt.get('datasets') or {}).items():
        check_dataset_values(f'datasets.{phase}', dataset, phase == 'train' and bool(opt.get('is_train')))
    if opt.get('is_train'):
        check_train_values(opt)
        logger = opt.get('logger') or {}
        for key in ('print_freq', 'save_checkpoint_freq'):
            if key not in logger:
                raise OptionsError(f'logger.{key}: missing; add it (iterations, e.g. {key}: 100).')
            whole(logger[key], f'logger.{key}', 1, 'a positive whole number of iterations')
        wandb = logger.get('wandb') or {}
        if isinstance(wandb, Mapping) and wandb.get('project') is not None and not logger.get('use_tb_logger'):
            raise OptionsError('logger.wandb.project: wandb needs use_tb_logger: true in logger; set it, or '
                               'project: ~.')
    val = opt.get('val')
    if isinstance(val, Mapping):
        if 'save_img' not in val:
            raise OptionsError('val.save_img: missing; add save_img: false (or true to write the SR images).')
        if opt.get('is_train'):
            if 'val_freq' not in val:
                raise OptionsError('val.val_freq: missing; add val_freq: 5000 (iterations between validations), or '
                                   'remove the val block.')
            whole(val['val_freq'], 'val.val_freq', 1, 'a positive whole number of iterations')
    for name, block in ((val or {}).get('metrics') or {}).items() if isinstance(val, Mapping) else ():
        if isinstance(block, Mapping) and 'crop_border' in block:
            whole(block['crop_border'], f'val.metrics.{name}.crop_border', 0, 'a whole number of pixels >= 0')


def check_dataset_values(where: str, dataset: Opt, training: bool) -> None:
    """The loader's numbers; the training set's crop size is checked with the scale by ``check_crop``."""
    if training:
        whole(dataset.get('batch_size_per_gpu'), f'{where}.batch_size_per_gpu', 1, 'a positive whole number', True)
        whole(
            dataset.get('num_worker_per_gpu'), f'{where}.num_worker_per_gpu', 0,
            'a whole number >= 0 (0 loads in the main process)', True)
        ratio = dataset.get('dataset_enlarge_ratio', 1)
        whole(ratio, f'{where}.dataset_enlarge_ratio', 1, 'a positive whole number (1: each image once per epoch)',
              True)
        for key in ('use_hflip', 'use_rot'):
            if key in dataset and not isinstance(dataset[key], bool):
                raise OptionsError(f'{where}.{key}: {dataset[key]!r} is not valid; write true or false.')


def check_train_values(opt: Opt) -> None:
    """``train``: iterations, learning rates, EMA decay, loss weights and the scheduler's numbers."""
    train = opt['train']
    if 'total_iter' not in train:
        raise OptionsError('train.total_iter: missing; add total_iter: the number of iterations to train.')
    total = whole(train['total_iter'], 'train.total_iter', 1, 'a positive whole number of iterations')
    whole(train.get('warmup_iter', -1), 'train.warmup_iter', -1, 'a whole number of iterations (-1: no warm-up)')
    model = _strict_model(opt)
    needed = [('optim_g', 'type: Adam, lr: !!float 1e-4'), ('scheduler', 'type: MultiStepLR, milestones: [...]')]
    if model == 'SRGANPluginModel':
        needed += [('optim_d', 'type: Adam, lr: !!float 1e-4'), ('gan_opt', 'type: GANLoss, gan_type: vanilla')]
    for key, example in needed:
        if not isinstance(train.get(key), Mapping):
            raise OptionsError(f'train.{key}: missing; add it (e.g. {{{example}}}).')
    if model == 'SRResNetModel' and not (train.get('pixel_opt') or train.get('perceptual_opt')):
        raise OptionsError('train: neither pixel_opt nor perceptual_opt is set, so SRResNetModel has no loss; add '
                           'pixel_opt: {type: MSELoss, loss_weight: 1.0} (the paper\'s SRResNet-MSE).')
    if train.get('ema_decay') is not None:
        decay = number(train['ema_decay'], 'train.ema_decay', 'a number in [0, 1) (0: no EMA; e.g. 0.999)')
        if not 0 <= decay < 1:
            raise OptionsError(f'train.ema_decay: {decay!r} is outside [0, 1); write e.g. 0.999, or 0 for no EMA.')
    for key in ('net_d_iters', 'net_d_init_iters'):
        if key in train:
            whole(train[key], f'train.{key}', 1 if key == 'net_d_iters' else 0,
                  'a whole number of iterations' + (' >= 1' if key == 'net_d_iters' else ' >= 0'))
    for key, block in train.items():
        if str(key).startswith('optim_') and isinstance(block, Mapping):
            lr = number(block.get('lr'), f'train.{key}.lr', 'a positive learning rate, e.g. !!float 1e-4')
            if lr < 0:  # 0 is allowed: it freezes a network
                raise OptionsError(f'train.{key}.lr: {lr!r} is negative; write a positive learning rate, e.g. '
                                   '!!float 1e-4.')
            decay = number(block.get('weight_decay', 0), f'train.{key}.weight_decay', 'a number >= 0')
            if decay < 0:
                raise OptionsError(f'train.{key}.weight_decay: {decay!r} is negative; write 0 or more.')
            betas = block.get('betas', (0.9, 0.999))
            if not (isinstance(betas,
                               (list, tuple)) and len(betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in betas)):
                raise OptionsError(f'train.{key}.betas: {betas!r} is not valid; write two numbers in [0, 1), e.g. '
                                   '[0.9, 0.999].')
        if str(key).endswith('_opt') and isinstance(block, Mapping):
            check_loss_values(f'train.{key}', block)
    check_scheduler_values(train.get('scheduler') or {}, total)


def check_loss_values(where: str, block: Opt) -> None:
    """Weights of a loss (``loss_weight``, ``perceptual_weight``, ...) are numbers >= 0; ``gan_type`` is known."""
    for key, value in block.items():
        if str(key).endswith('weight') and not isinstance(value, Mapping):
            weight = number(value, f'{where}.{key}', 'a number >= 0')
            if weight < 0:
                raise OptionsError(f'{where}.{key}: {weight!r} is negative; write a weight >= 0 (0 turns the term '
                                   'off).')
    if 'gan_type' in block and block['gan_type'] not in GAN_TYPES:
        raise OptionsError(f"{where}.gan_type: {block['gan_type']!r} is not a BasicSR GAN loss; write "
                           f'{", ".join(GAN_TYPES)}{did_you_mean(block["gan_type"], GAN_TYPES)}')


def check_scheduler_values(scheduler: Opt, total: int) -> None:
    """Milestones, periods and restart weights of BasicSR's two schedulers."""
    kind = scheduler.get('type')
    if 'gamma' in scheduler and number(scheduler['gamma'], 'train.scheduler.gamma', 'a number > 0') <= 0:
        raise OptionsError(f"train.scheduler.gamma: {scheduler['gamma']!r} is not positive; write e.g. 0.5.")
    for key in ('milestones', 'periods', 'restarts', 'restart_weights'):
        if key not in scheduler:
            continue
        values = scheduler[key]
        minimum = 1 if key == 'periods' else 0
        if not isinstance(values, (list, tuple)) or not values:
            raise OptionsError(f'train.scheduler.{key}: {values!r} is not a list of one value or more; write a list, '
                               'e.g. [100000].')
        for value in values:
            if key == 'restart_weights':
                number(value, f'train.scheduler.{key}', 'numbers')
            else:
                whole(value, f'train.scheduler.{key}', minimum, f'whole numbers of iterations >= {minimum}')
    if kind == 'CosineAnnealingRestartLR':
        periods = scheduler.get('periods') or []
        weights = scheduler.get('restart_weights', [1])
        if len(weights) != len(periods):
            raise OptionsError(f'train.scheduler.restart_weights: {len(weights)} weights for {len(periods)} periods; '
                               'give one weight per period.')
        if sum(periods) < total:
            raise OptionsError(f'train.scheduler.periods: they add up to {sum(periods)} iterations but total_iter is '
                               f'{total}; the scheduler has no learning rate after its last period, so make the '
                               'periods add up to total_iter.')
    elif 'restarts' in scheduler or 'restart_weights' in scheduler:
        restarts, weights = scheduler.get('restarts', [0]), scheduler.get('restart_weights', [1])
        if len(restarts) != len(weights):
            raise OptionsError(f'train.scheduler.restart_weights: {len(weights)} weights for {len(restarts)} '
                               'restarts; give one weight per restart.')


def check_schema(opt: Opt) -> None:
    """Everything in this module that reads only the parsed options."""
    check_phases(opt)
    check_section_keys(opt)
    for phase, dataset in (opt.get('datasets') or {}).items():
        check_dataset_keys(phase, dataset, bool(opt.get('is_train')))
    check_constructors(opt)
    check_scale(opt)
    check_values(opt)
