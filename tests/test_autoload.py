"""The installed autoload hook: ``import basicsr`` loads the plugin; nothing heavy at start-up; it can be turned off;
``python -m basicsr.train`` runs the plugin's loop and checks for the plugin's models only."""
from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

import pytest
import torch

from conftest import REPO, make_paired_folder, run, tiny_training_options, write_options

pytestmark = pytest.mark.slow  # fresh interpreters (start-up and import order)

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
    code = 'import sys; print("torch" in sys.modules, "srgan_plugin" in sys.modules)'
    result = run(['-c', code], cwd=tmp_path, fresh=True)
    assert result.stdout.split() == ['False', 'False'], result.stderr


def test_import_basicsr_registers_the_plugin(tmp_path):
    installed_pth()
    code = ('import basicsr, sys; from basicsr.utils.registry import ARCH_REGISTRY, MODEL_REGISTRY; '
            'print("srgan_plugin" in sys.modules, "SRResNet" in ARCH_REGISTRY, "SRGANPluginModel" in MODEL_REGISTRY)')
    result = run(['-c', code], cwd=tmp_path, fresh=True)
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
    result = run(['-c', code], cwd=tmp_path, env={'SRGAN_PLUGIN_AUTOLOAD': '0'}, fresh=True)
    assert result.stdout.strip().splitlines()[-1] == 'False', result.stderr


def test_hook_module_uses_only_the_standard_library():
    source = (REPO / '_srgan_plugin_autoload.py').read_text()
    imports = {line.split()[1].split('.')[0] for line in source.splitlines() if line.startswith(('import ', 'from '))}
    assert imports <= {'importlib', 'os', 'sys'}


def test_plugin_first_then_basicsr_order_also_works(tmp_path):
    """``import srgan_plugin`` before basicsr (hook off): the patches reach modules that bound names already."""
    code = ('import srgan_plugin, basicsr.train, basicsr.utils.options as o; '
            'print(basicsr.train.parse_options is o.parse_options, "compat" in o.parse_options.__code__.co_filename)')
    result = run(['-c', code], cwd=tmp_path, env={'SRGAN_PLUGIN_AUTOLOAD': '0'}, fresh=True)
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
    result = run(['-c', code], cwd=tmp_path, fresh=True)
    assert result.stdout.split() == ['True', 'True'], result.stderr


def test_python_m_basicsr_train_runs_the_plugins_loop_but_import_is_unchanged(tmp_path):
    """runpy asks the loader for ``get_code``: the plugin's ``main``; ``import basicsr.train`` gets BasicSR's module."""
    installed_pth()
    code = ('import importlib.util, basicsr.train as t; spec = importlib.util.find_spec("basicsr.train"); '
            'print(hasattr(t, "train_pipeline"), t.__file__.endswith("basicsr/train.py"), '
            '"srgan_plugin.train" in spec.loader.get_code("basicsr.train").co_names)')
    result = run(['-c', code], cwd=tmp_path, fresh=True)
    assert result.stdout.split() == ['True', 'True', 'True'], result.stderr
    missing = run(['-m', 'basicsr.train', '-opt', 'missing.yml'], cwd=tmp_path, fresh=True)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines()[-1] == (
        'error: -opt missing.yml: no such option file')


# --- which option files get the plugin's loop and option checks --------------------------------------------------


@pytest.fixture(scope='module')
def tiny_pairs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_paired_folder(tmp_path_factory.mktemp('tiny'), count=2, size=16)


def two_iterations(data: tuple[Path, Path], name: str, model_type: str, **logger: object) -> dict:
    """Phase 1's option file at its smallest: 2 iterations of a 1-block SRResNet on 16 px crops, no validation."""
    opt = tiny_training_options(1, data, name, iters=2)
    opt['model_type'] = model_type
    opt['datasets'] = {'train': {**opt['datasets']['train'], 'gt_size': 16}}
    opt.pop('val')
    opt['logger'].update(use_tb_logger=False, **logger)
    return opt


def test_plugin_model_types_come_from_the_registry():
    from basicsr.utils.registry import MODEL_REGISTRY

    from srgan_plugin.models import __all__ as plugin_models
    from srgan_plugin.options_check import handled_by_plugin, plugin_model_types
    assert plugin_model_types() == set(plugin_models) == {'SRResNetModel', 'SRGANPluginModel'}
    assert all(handled_by_plugin(name) for name in plugin_models)
    basicsr_models = {name.removesuffix('_basicsr') for name in MODEL_REGISTRY.keys()} - set(plugin_models)
    assert {'SRModel', 'SRGANModel', 'RealESRGANModel'} <= basicsr_models  # the last one only as *_basicsr
    assert not any(handled_by_plugin(name) for name in basicsr_models)
    assert all(handled_by_plugin(name) for name in (None, 'SRResNetModle', ['SRModel']))  # the checks explain


def test_option_file_model_type_is_read_from_argv(tmp_path):
    from srgan_plugin.train import option_file_model_type
    (tmp_path / 'a.yml').write_text('name: a\nmodel_type: SRModel\nscale: 4\n')
    (tmp_path / 'bad.yml').write_text('model_type: [unclosed\n')
    assert option_file_model_type(['-opt', str(tmp_path / 'a.yml'), '--auto_resume']) == 'SRModel'
    assert option_file_model_type([f'-opt={tmp_path / "a.yml"}']) == 'SRModel'
    forced = ['-opt', str(tmp_path / 'a.yml'), '--force_yml', 'name=b', 'model_type=SRResNetModel', '--debug']
    assert option_file_model_type(forced) == 'SRResNetModel'
    for argv in ([], ['-opt', str(tmp_path / 'missing.yml')], ['-opt', str(tmp_path / 'bad.yml')], ['-opt']):
        assert option_file_model_type(argv) is None, argv


@pytest.mark.parametrize('is_train', [True, False], ids=['train', 'test'])
def test_option_checks_run_for_plugin_models_only(tiny_pairs, tmp_path, monkeypatch, is_train):
    """The patched ``parse_options`` (``basicsr.train`` and ``basicsr.test``) checks only the plugin's option files:
    ``logger.keep_last_states`` means nothing to BasicSR's loop, and a wrong value stops only a plugin model."""
    import basicsr.utils.options
    monkeypatch.setattr(basicsr.utils.options, 'set_random_seed', lambda seed: None)  # keep this process's RNGs
    for model_type in ('SRModel', 'SRResNetModel'):
        opt = two_iterations(tiny_pairs, 'gate', model_type, keep_last_states='all')
        if not is_train:  # what basicsr.test reads: test_* sets, val.save_img
            opt.update(datasets={'test_1': opt['datasets']['train']}, val={'save_img': False})
        path = write_options(opt, tmp_path / 'o.yml')
        monkeypatch.setattr(sys, 'argv', ['basicsr.train', '-opt', str(path)])
        if model_type == 'SRModel':
            opt, _ = basicsr.utils.options.parse_options(str(tmp_path), is_train=is_train)
            assert opt['logger']['keep_last_states'] == 'all'
        else:
            with pytest.raises(SystemExit, match="logger.keep_last_states: 'all' is not valid"):
                basicsr.utils.options.parse_options(str(tmp_path), is_train=is_train)


def test_basicsr_train_runs_the_plugins_loop_for_a_plugin_model(tiny_pairs, tmp_path):
    installed_pth()
    write_options(two_iterations(tiny_pairs, 'ours', 'SRResNetModel'), tmp_path / 'ours.yml')
    result = run(['-m', 'basicsr.train', '-opt', 'ours.yml'], cwd=tmp_path, fresh=True)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next((tmp_path / 'experiments' / 'ours').glob('train_ours_*.log')).read_text()
    assert 'Model [SRResNetModel] is created' in log and 'Total iters: 2.' in log and 'Total epochs' not in log
    state = torch.load(tmp_path / 'experiments' / 'ours' / 'training_states' / '2.state', weights_only=True)
    assert 'loop' in state  # the sampler position and RNG states that only the plugin's loop saves


def test_basicsr_train_runs_basicsrs_loop_for_a_basicsr_model(tiny_pairs, tmp_path):
    """BasicSR's ``SRModel`` with the plugin's ``SRResNet`` (still registered): BasicSR's loop, no plugin checks."""
    installed_pth()
    opt = two_iterations(tiny_pairs, 'theirs', 'SRModel', keep_last_states='all')  # the plugin's checks refuse 'all'
    write_options(opt, tmp_path / 'theirs.yml')
    result = run(['-m', 'basicsr.train', '-opt', 'theirs.yml'], cwd=tmp_path, fresh=True)
    assert result.returncode == 0, result.stderr[-3000:]
    log = next((tmp_path / 'experiments' / 'theirs').glob('train_theirs_*.log')).read_text()
    assert 'Model [SRModel] is created' in log and 'Network [SRResNet] is created' in log
    assert 'Total epochs: 1; iters: 2.' in log and 'not a srgan_plugin model' not in log  # BasicSR's own log lines
    assert (tmp_path / 'experiments' / 'theirs' / 'models' / 'net_g_latest.pth').is_file()
    state = torch.load(tmp_path / 'experiments' / 'theirs' / 'training_states' / '2.state', weights_only=True)
    assert 'loop' not in state and state['iter'] == 2
