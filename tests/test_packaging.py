"""setup.py puts the autoload .pth into the wheel root for ``pip install .`` and ``pip install -e .`` alike."""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from conftest import REPO, run

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
    result = run(['-c', code], cwd=source)
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
