"""``python -m srgan_plugin.interpolate``: ESRGAN-style network interpolation between two generators."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srgan_plugin import interpolate
from srgan_plugin.inference import weights
from srgan_plugin.inference.weights import ArchSpec, random_generator

TINY = ArchSpec(3, 3, 8, 2, 4, False)


def save_model(path: Path, spec: ArchSpec = TINY, seed: int = 0, key: str = 'params_ema') -> Path:
    torch.save({key: random_generator(spec, seed).state_dict()}, path)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    # A as BasicSR's phase 1 saves it (params_ema), B with params only: each file's own preferred key is read
    return save_model(tmp_path / 'srresnet.pth', seed=1), save_model(tmp_path / 'srgan.pth', seed=2, key='params')


def expect_error(match: str, *argv: object) -> None:
    with pytest.raises(SystemExit) as info:
        interpolate.main([str(a) for a in argv])
    message = str(info.value.code)
    assert message.startswith('error: ') and match in message, message


@pytest.mark.parametrize('alpha', [0.0, 0.8, 1.0])
def test_interpolation_is_the_weighted_sum(tmp_path: Path, pair: tuple[Path, Path], alpha: float) -> None:
    out = tmp_path / 'mix' / 'c.pth'
    interpolate.main([str(pair[0]), str(pair[1]), '--alpha', str(alpha), '-o', str(out)])
    a, b = random_generator(TINY, 1).state_dict(), random_generator(TINY, 2).state_dict()
    saved = torch.load(out, weights_only=True)
    assert saved['interpolation']['alpha'] == alpha
    net, spec = weights.load_generator(str(out))
    assert spec == TINY
    for key, value in net.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (1 - alpha) * a[key] + alpha * b[key], atol=1e-6, rtol=1e-6)
    assert not torch.equal(a['conv_first.weight'], b['conv_first.weight'])  # the two ends differ


def test_different_architectures_are_named(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    deeper = save_model(tmp_path / 'deeper.pth', ArchSpec(3, 3, 8, 3, 4, False))
    x2 = save_model(tmp_path / 'x2.pth', ArchSpec(3, 3, 8, 2, 2, False))
    expect_error('num_block 2 vs 3', pair[0], deeper, '--alpha', 0.5, '-o', tmp_path / 'c.pth')
    expect_error('upscale 4 vs 2', pair[0], x2, '--alpha', 0.5, '-o', tmp_path / 'c.pth')
    assert not (tmp_path / 'c.pth').exists()


def test_bad_arguments_and_inputs(tmp_path: Path, pair: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    before = pair[0].read_bytes()
    expect_error('is an input checkpoint', pair[0], pair[1], '--alpha', 0.8, '-o', pair[0])
    with pytest.raises(SystemExit) as usage:  # a bad argument: exit status 2, one line on stderr
        interpolate.main([str(pair[0]), str(pair[1]), '--alpha', '1.5', '-o', str(tmp_path / 'c.pth')])
    err = capsys.readouterr().err
    assert usage.value.code == 2 and err.count('\n') == 1 and 'must be in [0, 1], got 1.5' in err, err
    torch.save(['not', 'a', 'state dict'], tmp_path / 'list.pth')
    expect_error('holds a list', pair[0], tmp_path / 'list.pth', '--alpha', 0.5, '-o', tmp_path / 'c.pth')
    (tmp_path / 'empty.pth').write_bytes(b'')
    expect_error('not a readable PyTorch checkpoint', tmp_path / 'empty.pth', pair[1], '--alpha', 0.5, '-o',
                 tmp_path / 'c.pth')
    assert pair[0].read_bytes() == before and not (tmp_path / 'c.pth').exists()
