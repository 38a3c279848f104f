"""setup.py puts the autoload .pth into the wheel root for ``pip install .`` and ``pip install -e .`` alike, and
states the torch / torchvision floors that the code needs."""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any, NamedTuple, Optional

import pytest
import torch
import torchvision

from conftest import REPO, run

pytestmark = pytest.mark.slow  # builds wheels in fresh interpreters

PTH = 'srgan_plugin_autoload.pth'
PTH_LINE = 'import _srgan_plugin_autoload; _srgan_plugin_autoload.install()'


@pytest.fixture(scope='module')
def source_copy(tmp_path_factory) -> Path:
    """A copy of what the build reads, so the build never writes into the checkout."""
    pytest.importorskip('setuptools', minversion='64')  # PEP 660 editable wheels
    dest = tmp_path_factory.mktemp('src')
    for name in ('setup.py', 'README.md', '_srgan_plugin_autoload.py'):
        shutil.copy(REPO / name, dest / name)
    shutil.copytree(REPO / 'srgan_plugin', dest / 'srgan_plugin', ignore=shutil.ignore_patterns('__pycache__'))
    return dest


def build(source: Path, hook: str, out: Path) -> Path:
    code = f'import setuptools.build_meta as b; print(b.{hook}({str(out)!r}))'
    result = run(['-c', code], cwd=source, fresh=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return out / result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize('hook', ['build_wheel', 'build_editable'])
def test_wheel_root_has_the_pth(source_copy, tmp_path, hook):
    wheel = build(source_copy, hook, tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert PTH in names, names
        assert zf.read(PTH).decode().strip() == PTH_LINE
        record = next(n for n in names if n.endswith('.dist-info/RECORD'))
        assert PTH in zf.read(record).decode()  # so that pip uninstall removes it
        if hook == 'build_wheel':
            assert '_srgan_plugin_autoload.py' in names and 'srgan_plugin/__init__.py' in names
            shipped = json.loads((REPO / 'srgan_plugin' / 'weights' / 'manifest.json').read_text())
            for entry in shipped['models'].values():  # the trained weights install with the package
                assert zf.read(f'srgan_plugin/weights/{entry["file"]}') == (REPO / 'srgan_plugin' / 'weights' /
                                                                             entry['file']).read_bytes()
            assert 'srgan_plugin/weights/manifest.json' in names


# --- version floors ---------------------------------------------------------------------------------------------


class TorchFeature(NamedTuple):
    """A torch API the plugin relies on, the file that uses it (and the text that shows it there), and the first torch
    release that has it, as read from the sources of the released wheels 2.1.0, 2.2.0, 2.3.1, 2.4.0 and 2.5.0 ((2, 1)
    means 2.1 or older). ``keyword``: the API is needed with that keyword argument."""
    api: str
    used_in: str
    used_as: str
    since: tuple[int, int]
    keyword: Optional[str] = None


TORCH_FEATURES = {  # 'core': what install_requires must cover; an extra's name: what that extra must cover
    'core': (
        TorchFeature('torch.serialization.add_safe_globals', 'srgan_plugin/compat.py', 'add_safe_globals', (2, 4)),
        TorchFeature('torch.OutOfMemoryError', 'srgan_plugin/inference/runtime.py', 'torch.OutOfMemoryError', (2, 4)),
        TorchFeature('torch.amp.GradScaler', 'srgan_plugin/models/performance.py', 'torch.amp.GradScaler(', (2, 3)),
        TorchFeature('torch.nn.Module.compile', 'srgan_plugin/models/performance.py', 'net.compile(', (2, 1)),
        TorchFeature('torch._foreach_copy_', 'srgan_plugin/models/nonfinite.py', 'torch._foreach_copy_', (2, 1)),
        TorchFeature('torch._foreach_norm', 'srgan_plugin/models/nonfinite.py', 'torch._foreach_norm', (2, 1)),
        TorchFeature('torch.utils.flop_counter.FlopCounterMode', 'srgan_plugin/bench/measure.py', 'FlopCounterMode',
                     (2, 1)),
        TorchFeature('torch.hub.load_state_dict_from_url', 'srgan_plugin/losses/vgg.py', 'get_state_dict(', (2, 1),
                     'weights_only'),
        TorchFeature('torch.load', 'srgan_plugin/inference/weights.py', 'weights_only=True', (2, 1), 'weights_only'),
    ),
    'export': (
        TorchFeature('torch.onnx.export', 'srgan_plugin/export.py', 'dynamic_shapes=', (2, 5), 'dynamic_shapes'),
        TorchFeature('torch.onnx.export', 'srgan_plugin/export.py', 'external_data=', (2, 5), 'external_data'),
        TorchFeature('torch.export.Dim', 'srgan_plugin/export.py', 'torch.export.Dim', (2, 2)),
    ),
}
TORCHVISION_MINOR_OFFSET = 15  # torchvision 0.(N + 15) is the release built for torch 2.N


def setup_keywords() -> dict[str, Any]:
    """The literal keyword arguments of the ``setup(...)`` call in setup.py."""
    tree = ast.parse((REPO / 'setup.py').read_text())
    call = next(
        node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'setup')
    keywords = {}
    for keyword in call.keywords:
        try:
            keywords[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            continue  # computed values (version(), read(...), cmdclass)
    return keywords


def floor(requirements: list[str], package: str) -> Optional[tuple[int, int]]:
    """The ``>=X.Y`` floor of ``package`` in ``requirements``, or None."""
    for requirement in requirements:
        match = re.fullmatch(rf'{package}\s*>=\s*(\d+)\.(\d+)', requirement)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def resolve(api: str) -> Any:
    """The object named by a dotted path such as ``torch.utils.flop_counter.FlopCounterMode`` (importing as needed)."""
    module_name, _, rest = api.partition('.')
    obj = importlib.import_module(module_name)
    for part in rest.split('.'):
        obj = getattr(obj, part, None) or importlib.import_module(f'{obj.__name__}.{part}')
    return obj


def test_torch_floors_are_the_newest_feature_used():
    keywords = setup_keywords()
    core = floor(keywords['install_requires'], 'torch')
    assert core == max(feature.since for feature in TORCH_FEATURES['core']), core
    for extra, features in TORCH_FEATURES.items():
        if extra != 'core':  # an extra states a floor only when it needs a newer torch than the core
            needed = max(core, *(feature.since for feature in features))
            assert (floor(keywords['extras_require'][extra], 'torch') or core) == needed, extra


def test_torchvision_floor_is_the_release_for_the_torch_floor():
    requirements = setup_keywords()['install_requires']
    major, minor = floor(requirements, 'torch')
    assert major == 2 and floor(requirements, 'torchvision') == (0, minor + TORCHVISION_MINOR_OFFSET)
    installed = [
        tuple(int(x) for x in module.__version__.split('+')[0].split('.')[:2]) for module in (torch, torchvision)
    ]
    assert installed[1] == (0, installed[0][1] + TORCHVISION_MINOR_OFFSET), installed  # the rule holds for this pair


@pytest.mark.parametrize(
    'feature', [f for features in TORCH_FEATURES.values() for f in features],
    ids=lambda f: f'{f.api}({f.keyword or ""})')
def test_each_listed_feature_is_used_and_installed(feature: TorchFeature):
    """A use that is gone fails here (remove its entry, maybe lower the floor); the installed torch has the API."""
    assert feature.used_as in (REPO / feature.used_in).read_text(), feature
    obj = resolve(feature.api)
    if feature.keyword:
        assert feature.keyword in inspect.signature(obj).parameters, feature
