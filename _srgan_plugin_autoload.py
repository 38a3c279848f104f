"""Import ``srgan_plugin`` whenever ``basicsr`` is imported.

Installed next to ``srgan_plugin_autoload.pth``, which Python's ``site`` module executes at interpreter start. The
hook only puts a finder on ``sys.meta_path`` (standard library only: nothing heavy is imported at start-up). When
``basicsr`` is imported later (for example by ``python -m basicsr.train``), the finder loads ``srgan_plugin`` first,
which applies the compatibility patches that ``basicsr`` 1.4.2 needs to import at all and registers the plugin's
archs, losses and models, and then runs ``basicsr/__init__.py`` as usual.

``python -m basicsr.train`` runs ``srgan_plugin.train.main``: basicsr 1.4.2 keeps its training loop in the
``__main__`` code of ``basicsr/train.py``, where its CPU-only resume crash, non-atomic checkpoints and distributed-
validation hang cannot be patched. ``main`` reads the ``model_type`` of the ``-opt`` file: the plugin's models train
with the plugin's loop (same options, folders and logs), any other registered model with BasicSR's own
``train_pipeline``, as without the plugin. Importing ``basicsr.train`` as a module is unchanged.

Set ``SRGAN_PLUGIN_AUTOLOAD=0`` to turn the hook off.
"""
import importlib
import importlib.abc
import os
import sys

ENV_VAR = 'SRGAN_PLUGIN_AUTOLOAD'
_OFF_VALUES = ('0', 'false', 'no', 'off')


class _PluginFirstLoader(importlib.abc.Loader):
    """Wraps basicsr's own loader: import ``srgan_plugin`` first, then execute ``basicsr/__init__.py``."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        try:
            importlib.import_module('srgan_plugin')
        except Exception as error:
            if hasattr(error, 'add_note'):  # Python >= 3.11
                error.add_note(f'srgan_plugin was imported because basicsr was; set {ENV_VAR}=0 to import basicsr '
                               'alone.')
            raise
        self._loader.exec_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _PluginMainLoader(importlib.abc.Loader):
    """Wraps a basicsr module's loader: imports are unchanged, but run as ``__main__`` it runs ``target.main()``."""

    def __init__(self, loader, target):
        self._loader = loader
        self._target = target

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)  # an import: basicsr's own code

    def get_code(self, fullname):  # what runpy executes for ``python -m fullname``
        return compile(f'import {self._target}\n{self._target}.main()\n', f'<{fullname}: {self._target}.main>', 'exec')

    def __getattr__(self, name):
        return getattr(self._loader, name)


MAIN_REDIRECTS = {'basicsr.train': 'srgan_plugin.train'}


class BasicsrFinder(importlib.abc.MetaPathFinder):
    """Answers for the top-level ``basicsr`` package while ``srgan_plugin`` is not loaded, and for the modules in
    ``MAIN_REDIRECTS``; every other import is left to the rest of ``sys.meta_path``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == 'basicsr' and 'srgan_plugin' not in sys.modules:
            wrap = _PluginFirstLoader
        elif fullname in MAIN_REDIRECTS:
            wrap = lambda loader: _PluginMainLoader(loader, MAIN_REDIRECTS[fullname])  # noqa: E731
        else:
            return None
        spec = self._spec_from_other_finders(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = wrap(spec.loader)
        return spec

    def _spec_from_other_finders(self, fullname, path, target):
        """The spec the rest of ``sys.meta_path`` would give (an editable basicsr has a finder of its own)."""
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, BasicsrFinder) or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None


def enabled() -> bool:
    return os.environ.get(ENV_VAR, '1').strip().lower() not in _OFF_VALUES


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent; a no-op when turned off)."""
    if enabled() and not any(isinstance(finder, BasicsrFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, BasicsrFinder())
