"""The package's layers point one way: every import of every module (function-level imports included) goes to its own
layer or a lower one, never up; in the layers marked independent, packages do not import each other.

The layer table below is the one place it is stated (``srgan_plugin/__init__.py`` summarises it). A new module must
be placed in it: the test fails for a module it does not know.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, NamedTuple, Optional

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / 'srgan_plugin'
ROOT = 'srgan_plugin'


class Layer(NamedTuple):
    name: str
    units: tuple[str, ...]  # modules or packages (a package stands for every module in it)
    independent: bool  # units of this layer do not import each other


LAYERS = (  # highest first
    Layer(
        'entry points',
        (
            'srgan_plugin',  # the package itself (its __init__): the registration trigger, `import srgan_plugin`
            'srgan_plugin.train',
            'srgan_plugin.test',
            'srgan_plugin.upscale',
            'srgan_plugin.evaluate',
            'srgan_plugin.export',
            'srgan_plugin.interpolate',
            'srgan_plugin.visualize',
            'srgan_plugin.bench',
            'srgan_plugin.prepare.cli',
            'srgan_plugin.prepare.__main__',
        ),
        False),
    Layer('option-file checks', (
        'srgan_plugin.options_check',
        'srgan_plugin.options_schema',
        'srgan_plugin.options_data',
        'srgan_plugin.data_check',
    ), False),
    Layer('training, inference, preparation', (
        'srgan_plugin.training',
        'srgan_plugin.inference',
        'srgan_plugin.prepare',
    ), True),
    Layer('models, networks, losses, metrics', (
        'srgan_plugin.models',
        'srgan_plugin.archs',
        'srgan_plugin.losses',
        'srgan_plugin.metrics',
    ), True),
    Layer('shared base', (
        'srgan_plugin.base',
        'srgan_plugin.compat',
        'srgan_plugin.version',
    ), False),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace('.', '/') / '__init__.py').is_file()


def exists(name: str) -> bool:
    return is_package(name) or (PACKAGE.parent / f'{name.replace(".", "/")}.py').is_file()


def place(name: str) -> tuple[int, str]:
    """``(rank, unit)`` of a module: rank 0 is the highest layer; the unit is the longest entry of the table that
    holds it (the package itself only by its exact name)."""
    found = [(len(unit), rank, unit) for rank, layer in enumerate(LAYERS) for unit in layer.units
             if name == unit or (unit != ROOT and name.startswith(f'{unit}.'))]
    if not found:
        raise KeyError(name)
    _, rank, unit = max(found)
    return rank, unit


def imports(path: Path, source: Optional[str] = None) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import of a plugin module in ``path`` (or in ``source``, read as that module), at
    any depth: function-level imports included."""
    here = module_name(path)
    package = here if path.name == '__init__.py' else here.rpartition('.')[0]
    source = path.read_text(encoding='utf-8') if source is None else source
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT or alias.name.startswith(f'{ROOT}.'):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:  # relative: from the package of this module, up level - 1
                anchor = package.split('.')[:len(package.split('.')) - (node.level - 1)]
                base = '.'.join(anchor + ([base] if base else []))
            if base != ROOT and not base.startswith(f'{ROOT}.'):
                continue
            for alias in node.names:  # `from package import module` imports the module
                target = f'{base}.{alias.name}'
                yield node.lineno, target if exists(target) else base


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob('*.py'))


def violations(path: Path, source: Optional[str] = None) -> list[str]:
    """One line per import of ``path`` (or of ``source`` read as that module) that breaks the layering."""
    here = module_name(path)
    rank, unit = place(here)
    found = []
    for line, target in imports(path, source):
        target_rank, target_unit = place(target)
        where = f'{path.relative_to(PACKAGE.parent)}:{line}: {here} ({LAYERS[rank].name}) imports {target}'
        if target_rank < rank:
            found.append(f'{where} ({LAYERS[target_rank].name}): a layer above')
        elif target_rank == rank and LAYERS[rank].independent and target_unit != unit:
            found.append(f'{where}: another package of the same layer')
    return found


def test_every_module_is_in_the_layer_table() -> None:
    unknown = []
    for path in modules():
        try:
            place(module_name(path))
        except KeyError:
            unknown.append(module_name(path))
    assert not unknown, f'modules missing from LAYERS in tests/test_layers.py: {unknown}'


@pytest.mark.parametrize('path', modules(), ids=lambda path: module_name(path))
def test_imports_point_down(path: Path) -> None:
    assert not violations(path), '\n'.join(violations(path))


def test_the_checker_sees_upward_and_sideways_imports() -> None:
    """The check itself, on real modules with one bad import added: a function-level import of a higher layer, and
    an import of another package of the same layer."""
    base_files = PACKAGE / 'base' / 'files.py'
    up = base_files.read_text(encoding='utf-8') + '\n\ndef _up():\n    from srgan_plugin.training import loop\n'
    assert [line for line in violations(base_files, up) if 'a layer above' in line]
    weights = PACKAGE / 'inference' / 'weights.py'
    sideways = weights.read_text(encoding='utf-8') + '\nfrom srgan_plugin.prepare import imgops\n'
    assert [line for line in violations(weights, sideways) if 'another package of the same layer' in line]
    relative = 'from ..training.loop import Trainer\n'  # relative, from srgan_plugin/base/files.py
    assert [line for line in violations(base_files, relative) if 'srgan_plugin.training.loop' in line]
    assert not violations(base_files) and not violations(weights)
