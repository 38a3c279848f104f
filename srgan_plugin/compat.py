"""Every workaround for an upstream problem lives here, each naming the problem it works around.

basicsr 1.4.2 (the newest release) predates current torch/torchvision. ``apply()`` makes it usable without touching
any installed file; it is idempotent and runs when ``srgan_plugin`` is imported, *before* ``basicsr`` is (the
torchvision alias must exist before ``basicsr/__init__.py`` runs). Each patch is tested in ``tests/test_compat.py``.

Patches:
    1. ``torchvision.transforms.functional_tensor`` was removed in torchvision 0.17; basicsr imports it
       (BasicSR #663, #650: fixed only on unreleased master). We alias it to its successor.
    2. ``python -m basicsr.train`` / ``basicsr.test`` derive their root from basicsr's own ``__file__`` (master has
       ``path.experiments_root`` since BasicSR #595, unreleased): with a pip
       install, ``experiments/``, ``tb_logger/`` and ``results/`` land in site-packages and ``--auto_resume`` (which
       looks in ``./experiments``) never finds them. We put them under the current working directory, as BasicSR's
       docs show. Running from a BasicSR source checkout is left alone.
    3. ``PerceptualLoss(criterion='l2')`` crashes: it calls ``torch.nn.L2loss``, which does not exist (BasicSR #515).
    4. torch >= 2.6 loads with ``weights_only=True`` by default; BasicSR's training states hold the scheduler's
       ``collections.Counter`` of milestones, which that unpickler refuses, so resuming fails. We allow-list it.
    5. ``--launcher pytorch|slurm``: ``init_dist`` hard-codes NCCL and ``set_device(rank % device_count())``
       (ZeroDivisionError without CUDA, wrong device on every node but the first); ``torch.distributed.launch``
       passes ``--local-rank=N``, which BasicSR's parser rejects (BasicSR #626). We use
       ``srgan_plugin.base.distributed.init_dist`` (NCCL or gloo, device from LOCAL_RANK) and accept both
       spellings.
    6. A missing ``-opt FILE`` ends with one line instead of BasicSR's ``FileNotFoundError`` traceback.
    7. ``--force_yml KEY=VALUE`` reads signed numbers and numbers with an exponent (``-1``, ``1e-4``) as text:
       ``basicsr/utils/options.py``'s ``_postprocess_yml_value`` tests ``str.isdigit`` (not reported upstream; master
       has the same code). We read them as YAML reads ``-1`` and ``1.0e-4``.

These apply to every option file. The patched ``parse_options`` also runs the plugin's option checks, which
``srgan_plugin/__init__.py`` installs with :func:`install_option_checks` (this module, the lowest layer, imports
nothing of the plugin but ``srgan_plugin.base``): before BasicSR's parser reads the file
(``options_check.check_option_file``), and after it for the option files of the plugin's models
(``options_check.check_parsed_options``: the files behind the options, then the options).
The training loop itself (resume on CPU, atomic checkpoints, distributed validation) cannot be patched: it lives in
``basicsr/train.py``'s ``__main__`` code. ``python -m basicsr.train`` therefore runs the plugin's loop
(``srgan_plugin.training.loop``) for the plugin's models, and BasicSR's own ``train_pipeline`` for any other
``model_type`` (``srgan_plugin.train.main``, routed there by the autoload hook).
"""
from __future__ import annotations

import collections
import functools
import importlib
import importlib.util
import inspect
import os
import re
import sys
from os import path as osp
from typing import Any, Callable, Optional, Sequence

_APPLIED: set[str] = set()
CheckFile = Callable[[Sequence[str], bool], None]  # (argv, is_train): before BasicSR's parser reads -opt FILE
CheckParsed = Callable[[dict[str, Any], str], None]  # (opt, option file): after it
_option_checks: Optional[tuple[CheckFile, CheckParsed]] = None
RUN_FOLDERS = ('experiments', 'results', 'tb_logger')
SITE_FOLDERS = ('site-packages', 'dist-packages')


def _once(func: Callable[[], None]) -> Callable[[], None]:

    @functools.wraps(func)
    def wrapper() -> None:
        if func.__name__ not in _APPLIED:
            func()
            _APPLIED.add(func.__name__)

    return wrapper


@_once
def alias_functional_tensor() -> None:
    """Patch 1 (BasicSR #663): alias ``torchvision.transforms.functional_tensor`` to ``_functional_tensor``."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return  # an old torchvision that still has it
    sys.modules[name] = importlib.import_module('torchvision.transforms._functional_tensor')


def basicsr_install_root() -> str:
    """The folder that ``python -m basicsr.train`` takes as its root: the parent of the ``basicsr`` package."""
    spec = importlib.util.find_spec('basicsr')
    if spec is None or spec.origin is None:
        raise ImportError('basicsr is not installed: pip install basicsr==1.4.2')
    return osp.dirname(osp.dirname(osp.abspath(spec.origin)))


def _redirected_root() -> str | None:
    """basicsr's install root when it is a site-packages folder (run folders are redirected), else None."""
    root = basicsr_install_root()
    return root if osp.basename(root) in SITE_FOLDERS else None


def working_root(root_path: str) -> str:
    """Patch 2: map basicsr's install root, when it is a site-packages folder, to the current working directory.

    Any other root is kept, including an editable BasicSR checkout's own root (``pip install -e`` / ``setup.py
    develop``), where BasicSR's behaviour (run folders in the checkout) is what its users expect.
    """
    if osp.abspath(root_path) == _redirected_root():
        return os.getcwd()
    return root_path


def rebase_run_path(path: str) -> str:
    """Patch 2: ``<site-packages>/{experiments,results,tb_logger}/...`` -> ``<cwd>/...``; others unchanged."""
    root = _redirected_root()
    if root is None:
        return path
    rel = osp.relpath(osp.abspath(path), root)
    if rel.split(os.sep)[0] in RUN_FOLDERS:
        return osp.join(os.getcwd(), rel)
    return path


def _replace_everywhere(name: str, new: Any, modules: tuple[str, ...]) -> None:
    """Set ``name`` to ``new`` in each of ``modules`` that is already imported (they bound it at import time)."""
    for module_name in modules:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, name):
            setattr(module, name, new)


@_once
def run_folders_in_cwd() -> None:
    """Patch 2: experiments/, results/ and tb_logger/ under the current working directory."""
    options = importlib.import_module('basicsr.utils.options')
    utils = importlib.import_module('basicsr.utils')
    original_parse = options.parse_options

    @functools.wraps(original_parse)
    def parse_options(root_path: str, is_train: bool = True):
        from srgan_plugin.base.distributed import normalize_local_rank  # late: it imports torch

        sys.argv[1:] = normalize_local_rank(sys.argv[1:])  # patch 5
        _require_option_file(sys.argv[1:])  # patch 6
        if _option_checks:  # not a compat patch: YAML syntax, what the parser itself indexes
            _option_checks[0](sys.argv[1:], is_train)
        opt, args = original_parse(working_root(root_path), is_train)
        if _option_checks:  # not a compat patch: the plugin's checks
            _option_checks[1](opt, args.opt)
        return opt, args

    _replace_everywhere('parse_options', parse_options, ('basicsr.utils.options', 'basicsr.train', 'basicsr.test'))
    for helper in ('init_tb_logger', 'mkdir_and_rename'):  # train.py joins opt['root_path'] + 'tb_logger' itself
        _replace_everywhere(helper, _rebasing(getattr(utils, helper)), ('basicsr.utils', 'basicsr', 'basicsr.train'))


def install_option_checks(check_file: CheckFile, check_parsed: CheckParsed) -> None:
    """Have the patched ``parse_options`` run ``check_file(argv, is_train)`` before BasicSR's parser reads the option
    file and ``check_parsed(opt, option_file)`` after it (each raises ``SystemExit`` with one line to refuse)."""
    global _option_checks
    _option_checks = (check_file, check_parsed)


def _require_option_file(argv: list[str]) -> None:
    """Patch 6: one line instead of BasicSR's FileNotFoundError traceback when ``-opt FILE`` does not exist."""
    for flag, value in zip(argv, argv[1:]):
        if flag == '-opt' and not osp.isfile(value):
            raise SystemExit(f'error: -opt {value}: no such option file')


def _rebasing(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``func(path, ...)`` so that its first argument goes through ``rebase_run_path``."""
    first = next(iter(inspect.signature(func).parameters))

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if args:
            args = (rebase_run_path(args[0]), *args[1:])
        elif first in kwargs:
            kwargs[first] = rebase_run_path(kwargs[first])
        return func(*args, **kwargs)

    return wrapper


@_once
def perceptual_loss_l2() -> None:
    """Patch 3 (BasicSR #515): ``PerceptualLoss(criterion='l2')`` uses ``torch.nn.MSELoss``."""
    import torch
    basic_loss = importlib.import_module('basicsr.losses.basic_loss')
    original_init = basic_loss.PerceptualLoss.__init__

    @functools.wraps(original_init)
    def __init__(self, *args, criterion: str = 'l1', **kwargs):
        original_init(self, *args, criterion='l1' if criterion == 'l2' else criterion, **kwargs)
        if criterion == 'l2':
            self.criterion_type = 'l2'
            self.criterion = torch.nn.MSELoss()

    basic_loss.PerceptualLoss.__init__ = __init__


INT_TEXT = re.compile(r'[+-]?\d+')
FLOAT_TEXT = re.compile(r'[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?')


@_once
def force_yml_numbers() -> None:
    """Patch 7: ``--force_yml`` values such as ``-1``, ``+2``, ``1e-4`` and ``-0.5`` become numbers, not text."""
    options = importlib.import_module('basicsr.utils.options')
    original = options._postprocess_yml_value

    @functools.wraps(original)
    def _postprocess_yml_value(value: str) -> Any:
        if INT_TEXT.fullmatch(value):
            return int(value)
        if FLOAT_TEXT.fullmatch(value):
            return float(value)
        return original(value)

    options._postprocess_yml_value = _postprocess_yml_value


@_once
def allow_resume_state_unpickling() -> None:
    """Patch 4: training states contain ``collections.Counter`` (MultiStepRestartLR); allow it under weights_only."""
    import torch
    torch.serialization.add_safe_globals([collections.Counter])


@_once
def distributed_init() -> None:
    """Patch 5: BasicSR's ``init_dist`` -> ``srgan_plugin.base.distributed.init_dist`` (NCCL or gloo)."""
    from srgan_plugin.base.distributed import init_dist
    importlib.import_module('basicsr.utils.options')
    _replace_everywhere('init_dist', init_dist, ('basicsr.utils.dist_util', 'basicsr.utils.options', 'basicsr.utils'))


def apply() -> None:
    """Apply every patch (idempotent). Patch 1 must precede the first import of ``basicsr``."""
    alias_functional_tensor()
    run_folders_in_cwd()
    perceptual_loss_l2()
    allow_resume_state_unpickling()
    force_yml_numbers()
    distributed_init()
