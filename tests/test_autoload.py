"""The installed autoload hook: ``import basicsr`` loads the plugin; nothing heavy at start-up; it can be turned off."""
from __future__ import annotations

import site
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO, run

PTH = 'srgan_plugin_autoload.pth'


def installed_pth() -> Path:
    for folder in {sysconfig.get_paths()['purelib'], *site.getsitepackages()}:
        if (Path(folder) / PTH).is_file():
            return Path(folder) / PTH
    pytest.skip(f'{PTH} is not installed in this environment: run `pip install -e .` (or `pip install .`) first')


def test_pth_is_installed_and_tiny():
    line = installed_pth().read_text().strip()
    assert line == 'import _srgan_plugin_autoload; _srgan_plugin_autoload.install()'


def test_interpreter_start_imports_no_torch(tmp_path):
    installed_pth()
    result = run(['-c', 'import sys; print("torch" in sys.modules, "srgan_plugin" in sys.modules)'], cwd=tmp_path)
    assert result.stdout.split() == ['False', 'False'], result.stderr


def test_import_basicsr_registers_the_plugin(tmp_path):
    installed_pth()
    code = ('import basicsr, sys; from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY; '
            'print("srgan_plugin" in sys.modules, "SRResNet" in ARCH_REGISTRY, "SRGANPluginModel" in MODEL_REGISTRY)')
    result = run(['-c', code], cwd=tmp_path)
    assert result.stdout.split() == ['True', 'True', 'True'], result.stderr


def test_environment_variable_turns_it_off(tmp_path):
    installed_pth()
    code = '\n'.join([
        'import sys',
        'try:',
        '    import basicsr',
        'except ImportError:',
        '    pass  # without the plugin, basicsr 1.4.2 cannot import under torchvision >= 0.17 (BasicSR #663)',
        'print("srgan_plugin" in sys.modules)',
    ])
    result = run(['-c', code], cwd=tmp_path, env={'SRGAN_PLUGIN_AUTOLOAD': '0'})
    assert result.stdout.strip().splitlines()[-1] == 'False', result.stderr


def test_hook_module_uses_only_the_standard_library():
    source = (REPO / '_srgan_plugin_autoload.py').read_text()
    imports = {line.split()[1].split('.')[0] for line in source.splitlines() if line.startswith(('import ', 'from '))}
    assert imports <= {'importlib', 'os', 'sys'}


def test_plugin_first_then_basicsr_order_also_works(tmp_path):
    """``import srgan_plugin`` before basicsr (hook off): the patches reach modules that bound names already."""
    code = ('import srgan_plugin, basicsr.train, basicsr.utils.options as o; '
            'print(basicsr.train.parse_options is o.parse_options, "compat" in o.parse_options.__code__.co_filename)')
    result = run(['-c', code], cwd=tmp_path, env={'SRGAN_PLUGIN_AUTOLOAD': '0'})
    assert result.stdout.split() == ['True', 'True'], result.stderr


def test_basicsr_found_by_another_finder_still_loads_the_plugin(tmp_path):
    """An editable basicsr (``pip install -e`` of a BasicSR checkout) is served by a finder of its own."""
    installed_pth()
    code = '\n'.join([
        'import importlib.machinery, sys',
        'class EditableFinder:',
        '    used = False',
        '    def find_spec(self, name, path=None, target=None):',
        '        if name != "basicsr":',
        '            return None',
        '        EditableFinder.used = True',
        '        return importlib.machinery.PathFinder.find_spec(name, path)',
        'sys.meta_path.insert(1, EditableFinder())',
        'import basicsr',
        'print(EditableFinder.used, "srgan_plugin" in sys.modules)',
    ])
    result = run(['-c', code], cwd=tmp_path)
    assert result.stdout.split() == ['True', 'True'], result.stderr


def test_python_m_basicsr_train_runs_the_plugins_loop_but_import_is_unchanged(tmp_path):
    """runpy asks the loader for ``get_code``: the plugin's ``main``; ``import basicsr.train`` gets BasicSR's module."""
    installed_pth()
    code = ('import importlib.util, basicsr.train as t; spec = importlib.util.find_spec("basicsr.train"); '
            'print(hasattr(t, "train_pipeline"), t.__file__.endswith("basicsr/train.py"), '
            '"srgan_plugin.train" in spec.loader.get_code("basicsr.train").co_names)')
    result = run(['-c', code], cwd=tmp_path)
    assert result.stdout.split() == ['True', 'True', 'True'], result.stderr
    missing = run(['-m', 'basicsr.train', '-opt', 'missing.yml'], cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1] == (
        'error: -opt missing.yml: no such option file')
