"""BatchNorm folding and ``python -m srgan_plugin.export`` (ONNX parity with onnxruntime, TorchScript)."""
from __future__ import annotations

import copy
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from srgan_plugin import export
from srgan_plugin.inference.bn_fold import count_batchnorm, fold_batchnorm
from srgan_plugin.inference.weights import ArchSpec, random_generator

TINY = ArchSpec(3, 3, 8, 2, 4, False)
MISSING = [name for name in ('onnx', 'onnxscript', 'onnxruntime') if importlib.util.find_spec(name) is None]
needs_onnx = pytest.mark.skipif(
    bool(MISSING), reason=f'{", ".join(MISSING)} not installed (optional extra: pip install -e ".[export]")')


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    path = tmp_path / 'tiny.pth'
    torch.save({'params_ema': random_generator(TINY, seed=7).state_dict()}, path)
    return path


def outputs(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize('spec', [TINY, ArchSpec(3, 3, 8, 1, 3, True)])
def test_folding_removes_batchnorm_and_keeps_outputs(spec: ArchSpec) -> None:
    net = random_generator(spec, seed=1)
    folded = fold_batchnorm(net)
    x = torch.rand(1, 3, 13, 17)
    assert count_batchnorm(folded) == 0 and count_batchnorm(net) == 2 * spec.num_block + 1
    torch.testing.assert_close(outputs(folded, x), outputs(net, x), atol=1e-5, rtol=0)
    dropped = copy.deepcopy(net)  # BatchNorm removed without folding it into the convolutions: outputs change
    for module in dropped.modules():
        for name in ('bn1', 'bn2', 'bn_body'):
            if hasattr(module, name):
                setattr(module, name, torch.nn.Identity())
    assert (outputs(dropped, x) - outputs(net, x)).abs().max() > 1e-2


@pytest.mark.slow
@needs_onnx
def test_onnx_parity_dynamic_size_and_torchscript(tmp_path: Path, tiny_model: Path) -> None:
    import onnx
    import onnxruntime

    onnx_path, ts_path = tmp_path / 'out' / 'tiny.onnx', tmp_path / 'out' / 'tiny.pt'
    export.main(['--model', str(tiny_model), '--onnx', str(onnx_path), '--torchscript', str(ts_path)])
    graph = onnx.load(str(onnx_path)).graph
    assert 'BatchNormalization' not in {node.op_type for node in graph.node}
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]  # batch, 3, height, width
    net = random_generator(TINY, seed=7)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    for shape in [(1, 3, 1, 1), (1, 3, 19, 7), (2, 3, 40, 33)]:
        x = torch.rand(shape)
        got = session.run(None, {'lr': x.numpy()})[0]
        expected = outputs(net, x).numpy()
        assert got.shape == expected.shape == (shape[0], 3, shape[2] * 4, shape[3] * 4)
        assert np.abs(got - expected).max() <= 1e-4
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        scripted = torch.jit.load(str(ts_path))
    x = torch.rand(1, 3, 11, 9)
    torch.testing.assert_close(outputs(scripted, x), outputs(net, x), atol=1e-4, rtol=0)


def test_export_refuses_to_overwrite_its_input(tmp_path: Path, tiny_model: Path) -> None:
    before = tiny_model.read_bytes()
    clashes = [(tiny_model, None), (tmp_path / 'a.onnx', tiny_model), (tmp_path / 'x', tmp_path / 'x')]
    for onnx_path, script_path in clashes:
        script = ['--torchscript', str(script_path)] if script_path else []
        with pytest.raises(SystemExit) as info:
            export.main(['--model', str(tiny_model), '--onnx', str(onnx_path), *script])
        assert str(info.value.code).startswith('error: ')
    assert tiny_model.read_bytes() == before


def test_export_refuses_a_pickle_that_is_not_a_state_dict(tmp_path: Path) -> None:
    torch.save({'params': {'weights': [1.0, 2.0]}}, tmp_path / 'list.pth')
    with pytest.raises(SystemExit, match='error: .* is not a state dict'):
        export.main(['--model', str(tmp_path / 'list.pth'), '--onnx', str(tmp_path / 'a.onnx')])
    assert not (tmp_path / 'a.onnx').exists()
