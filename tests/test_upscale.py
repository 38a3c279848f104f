"""``python -m srgan_plugin.upscale`` and the inference package: checkpoints, tiling, image formats, bad input."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, run, synthetic_image

from srgan_plugin import upscale
from srgan_plugin.archs.srresnet_arch import SRResNet
from srgan_plugin.base.errors import InferenceError
from srgan_plugin.inference import imageio, weights
from srgan_plugin.inference.tiling import Upscaler, receptive_radius
from srgan_plugin.inference.weights import ArchSpec, infer_arch, random_generator

TINY = ArchSpec(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, upscale=4, prelu_per_channel=False)


class NotAStateDict:
    """Pickled by reference: loading it needs arbitrary unpickling."""


def save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A tiny x4 checkpoint whose params_ema (seed 1) differs from its params (seed 2)."""
    states = dict(params=random_generator(TINY, seed=2).state_dict(), params_ema=random_generator(TINY, 1).state_dict())
    return save(states, tmp_path / 'tiny.pth')


def reference_sr(rgb: np.ndarray, seed: int = 1) -> np.ndarray:
    """The tiny network (seed) applied untiled to an HxWx3 float RGB image, float HxWx3 RGB output."""
    net = random_generator(TINY, seed)
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float())
    return out[0].permute(1, 2, 0).numpy()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_main(*argv: str) -> None:
    upscale.main([str(a) for a in argv])


def expect_error(match: str, *argv: str) -> str:
    """Run the CLI in-process, expecting a one-line ``error:`` exit matching ``match``."""
    with pytest.raises(SystemExit) as info:
        run_main(*argv)
    message = str(info.value.code)
    assert message.startswith('error: ') and '\n' not in message and match in message, message
    return message


def expect_usage_error(capsys: pytest.CaptureFixture, match: str, *argv: str) -> str:
    """Run the CLI in-process, expecting a usage error: exit status 2 and one ``prog: error:`` line on stderr."""
    with pytest.raises(SystemExit) as info:
        run_main(*argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count('\n') == 1 and match in err, (info.value.code, err)
    assert err.startswith('python -m srgan_plugin.upscale: error: ')
    return err


# --- checkpoints ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('spec', [
    TINY,
    ArchSpec(3, 3, 8, 1, 2, False),
    ArchSpec(3, 3, 8, 3, 3, True),
    ArchSpec(1, 1, 4, 1, 8, False),
    ArchSpec(3, 3, 64, 16, 4, False),
])
def test_architecture_is_inferred_from_the_state_dict(spec: ArchSpec) -> None:
    assert infer_arch(SRResNet(**dataclasses.asdict(spec)).state_dict()) == spec


def test_params_ema_is_preferred_then_params(tiny_model: Path, tmp_path: Path) -> None:
    net, spec = weights.load_generator(str(tiny_model))
    assert spec == TINY and not net.training
    expected = random_generator(TINY, seed=1).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in net.state_dict().items())
    only_params = save({'params': random_generator(TINY, seed=2).state_dict()}, tmp_path / 'p.pth')
    assert torch.equal(
        weights.read_state_dict(str(only_params))['conv_first.weight'],
        random_generator(TINY, seed=2).conv_first.weight)
    bare = save({f'module.{k}': v for k, v in expected.items()}, tmp_path / 'bare.pth')  # DataParallel names
    assert infer_arch(weights.read_state_dict(str(bare))) == TINY


BAD_CHECKPOINTS = {  # name: (what torch.save writes, expected message)
    'pickled object': (dict(params=NotAStateDict()), 'holds pickled Python objects'),
    'numpy array': (dict(params=dict(w=np.zeros(3))), 'holds pickled Python objects'),
    'list': ([1, 2, 3], 'holds a list, not a state dict'),
    'training state': (dict(optimizers=[dict(lr=1.0)], iter=5), 'has no params_ema / params'),
    'partial state dict': (dict(params={'conv_first.weight': torch.zeros(8, 3, 9, 9)}), 'not an SRResNet checkpoint'),
}


@pytest.mark.parametrize('name', BAD_CHECKPOINTS)
def test_bad_checkpoints_are_refused_with_one_line(tmp_path: Path, name: str) -> None:
    content, match = BAD_CHECKPOINTS[name]
    path = save(content, tmp_path / 'bad.pth')
    with pytest.raises(InferenceError, match=match):
        weights.load_generator(str(path))


def test_empty_truncated_and_missing_checkpoints(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / 'empty.pth').write_bytes(b'')
    (tmp_path / 'cut.pth').write_bytes(tiny_model.read_bytes()[:1000])
    for name in ('empty.pth', 'cut.pth'):
        with pytest.raises(InferenceError, match='not a readable PyTorch checkpoint'):
            weights.read_state_dict(str(tmp_path / name))
    with pytest.raises(InferenceError, match='not found'):
        weights.read_state_dict(str(tmp_path / 'none.pth'))


def test_other_architectures_are_named(tmp_path: Path) -> None:
    from basicsr.archs.rrdbnet_arch import RRDBNet
    from basicsr.archs.srresnet_arch import MSRResNet

    rrdb = save({'params_ema': RRDBNet(3, 3, num_feat=8, num_block=1, num_grow_ch=4).state_dict()}, tmp_path / 'r.pth')
    msr = save({'params': MSRResNet(num_feat=8, num_block=1).state_dict()}, tmp_path / 'm.pth')
    with pytest.raises(InferenceError, match=r'looks like RRDBNet \(ESRGAN\)'):
        weights.load_generator(str(rrdb))
    with pytest.raises(InferenceError, match='looks like MSRResNet'):
        weights.load_generator(str(msr))


def test_inconsistent_shapes_name_the_tensor(tmp_path: Path) -> None:
    state = random_generator(TINY).state_dict()
    state['body.1.bn2.weight'] = torch.ones(5)
    path = save({'params': state}, tmp_path / 'odd.pth')
    with pytest.raises(InferenceError, match='body.1.bn2.weight'):
        weights.load_generator(str(path))


def test_shipped_weights_manifest(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(InferenceError, match='no weights are shipped in .*; pass --model PATH'):
        weights.resolve_model(None, str(tmp_path / 'none'))  # a weights folder without a manifest
    (tmp_path / 'w').mkdir()
    (tmp_path / 'w' / 'x4.pth').write_bytes(tiny_model.read_bytes())
    manifest = {'default': 'x4', 'models': {'x4': {'file': 'x4.pth', 'sha256': sha(tiny_model)}}}
    (tmp_path / 'w' / 'manifest.json').write_text(json.dumps(manifest))
    assert weights.resolve_model(None, str(tmp_path / 'w')) == str(tmp_path / 'w' / 'x4.pth')
    manifest['models']['x4']['sha256'] = '0' * 64
    (tmp_path / 'w' / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.raises(InferenceError, match='damaged'):
        weights.resolve_model(None, str(tmp_path / 'w'))


def test_shipped_models_by_name(tmp_path: Path, tiny_model: Path) -> None:
    shipped = tmp_path / 'w'
    shipped.mkdir()
    models = {}
    for name in ('srresnet_mse_x4', 'srgan_mse_x4'):
        (shipped / f'{name}.pth').write_bytes(tiny_model.read_bytes())
        models[name] = {'file': f'{name}.pth', 'sha256': sha(tiny_model)}
    (shipped / 'manifest.json').write_text(json.dumps({'default': 'srgan_mse_x4', 'models': models}))
    for given, name in (('srresnet', 'srresnet_mse_x4'), ('SRGAN', 'srgan_mse_x4'), ('srgan_mse_x4', 'srgan_mse_x4'),
                        (None, 'srgan_mse_x4')):
        assert weights.resolve_model(given, str(shipped)) == str(shipped / f'{name}.pth')
    assert weights.resolve_model(str(tiny_model), str(shipped)) == str(tiny_model)  # a path stays a path
    with pytest.raises(InferenceError, match=r'no such shipped model; shipped: srgan_mse_x4, srresnet_mse_x4'):
        weights.resolve_model('esrgan', str(shipped))
    with pytest.raises(InferenceError, match='no weights are shipped'):
        weights.resolve_model('srgan', str(tmp_path / 'none'))
    (shipped / 'srresnet_mse_x4.pth').write_bytes(b'damaged')
    with pytest.raises(InferenceError, match='damaged'):
        weights.resolve_model('srresnet', str(shipped))


# --- tiling ----------------------------------------------------------------------------------------------------------


def test_receptive_radius() -> None:
    # conv_first 4 + 2 per block + conv_body 1 + upsampling convs 1 + 1/2 + conv_last 4/4, rounded up
    assert receptive_radius(random_generator(TINY)) == 12
    assert receptive_radius(SRResNet()) == 40
    assert receptive_radius(SRResNet(upscale=3)) == 40  # 4 + 32 + 1 + 1 + 4/3


def test_tiled_output_is_seamless_and_the_check_can_fail() -> None:
    net = random_generator(TINY, seed=3)
    img = synthetic_image(37, 53, seed=0)[..., ::-1].astype(np.float32) / 255.
    quantize = lambda tile: imageio.quantize(tile, 255)  # noqa: E731
    whole = Upscaler.for_network(net, 4, tile=0).upscale(img, quantize).astype(int)
    tiled = Upscaler.for_network(net, 4, tile=16).upscale(img, quantize).astype(int)
    unpadded = Upscaler.for_network(net, 4, tile=16, tile_pad=0).upscale(img, quantize).astype(int)
    assert whole.shape == (148, 212, 3) and whole.std() > 10  # a lively output, not a flat one
    assert np.abs(tiled - whole).max() <= 1
    assert np.abs(unpadded - whole).max() > 1  # without the pad there are seams


def test_auto_tiling_on_cpu_bounds_memory() -> None:
    default = Upscaler.for_network(SRResNet(), 4)
    assert default.tile_pad == 40 and default.plan_tile(64, 64) == 0
    tile = default.plan_tile(1024, 1024)  # 4096x4096 output: tiled, padded tile within the budget
    assert tile > 0 and (tile + 80)**2 * default.bytes_per_pixel <= default.memory_budget
    net = random_generator(TINY, seed=4)
    img = synthetic_image(48, 48, seed=1).astype(np.float32) / 255.
    small_budget = Upscaler.for_network(net, 4, memory_budget=int(40 * 40 * activation(net)))  # 16 + 2 x 12 pad
    assert small_budget.plan_tile(48, 48) == 16 and small_budget.plan_tile(40, 40) == 0
    out = small_budget.upscale(img)
    assert small_budget.last_tile == 16
    np.testing.assert_allclose(out, reference_sr(img, seed=4), atol=1e-5)


def activation(net: torch.nn.Module) -> float:
    from srgan_plugin.inference.tiling import activation_bytes

    return activation_bytes(net)


class OutOfMemoryAbove(torch.nn.Module):
    """Wraps a network; raises an out-of-memory error for inputs with more than ``limit`` pixels."""

    def __init__(self, net: torch.nn.Module, limit: int) -> None:
        super().__init__()
        self.net, self.limit, self.calls = net, limit, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape[2:]))
        if x.shape[2] * x.shape[3] > self.limit:
            raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 2.00 GiB')
        return self.net(x)


def test_out_of_memory_retries_with_tiles(capsys: pytest.CaptureFixture) -> None:
    net = random_generator(TINY, seed=5)
    img = synthetic_image(48, 48, seed=2).astype(np.float32) / 255.
    flaky = OutOfMemoryAbove(net, limit=40 * 40)
    out = Upscaler(flaky, 4, tile=None, tile_pad=12).upscale(img)
    assert flaky.calls[0] == (48, 48) and max(h * w for h, w in flaky.calls[1:]) <= 40 * 40
    np.testing.assert_allclose(out, reference_sr(img, seed=5), atol=1e-5)
    assert 'retrying with --tile 24' in capsys.readouterr().err
    with pytest.raises(InferenceError, match='out of memory on cpu even with --tile'):
        Upscaler(OutOfMemoryAbove(net, limit=0), 4, tile_pad=12).upscale(img)


# --- image formats ---------------------------------------------------------------------------------------------------


def write(path: Path, img: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), img)
    return path


def test_colour_grey_alpha_16bit_and_jpeg(tmp_path: Path, tiny_model: Path) -> None:
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    colour = synthetic_image(20, 24, seed=3)
    write(src / 'colour.png', colour)
    write(src / 'grey.png', colour[..., 1])
    alpha = np.tile(np.linspace(0, 255, 24, dtype=np.uint8), (20, 1))
    write(src / 'rgba.png', np.dstack([colour, alpha]))
    write(src / 'deep.png', colour.astype(np.uint16) * 256 + 100)
    write(src / 'photo.jpg', colour)
    run_main('-i', src, '-o', out, '--model', tiny_model, '--tile', '8')
    read = {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in out.iterdir()}
    assert sorted(read) == ['colour_out.png', 'deep_out.png', 'grey_out.png', 'photo_out.jpg', 'rgba_out.png']
    expected = imageio.quantize(reference_sr(colour[..., ::-1] / np.float32(255)), 255)[..., ::-1]
    assert np.abs(read['colour_out.png'].astype(int) - expected).max() <= 1  # BGR file, RGB network
    grey_rgb = np.repeat(colour[..., 1:2], 3, axis=2) / np.float32(255)
    assert read['grey_out.png'].shape == (80, 96)
    assert np.abs(read['grey_out.png'].astype(int) - imageio.quantize(reference_sr(grey_rgb).mean(2), 255)).max() <= 1
    assert read['rgba_out.png'].shape == (80, 96, 4)
    bicubic_alpha = imageio.upscale_alpha(alpha / np.float32(255), (96, 80), 255)
    assert np.abs(read['rgba_out.png'][..., 3].astype(int) - bicubic_alpha).max() <= 1
    deep = read['deep_out.png']
    assert deep.dtype == np.uint16 and deep.shape == (80, 96, 3) and (deep % 257 != 0).mean() > 0.9  # 16-bit values
    assert read['photo_out.jpg'].shape == (80, 96, 3)


def test_outscale_half_precision_and_single_file(tmp_path: Path, tiny_model: Path) -> None:
    img = write(tmp_path / 'a.png', synthetic_image(16, 12, seed=4))
    run_main('-i', img, '-o', tmp_path / 'two.png', '--model', tiny_model, '-s', '2')
    assert cv2.imread(str(tmp_path / 'two.png')).shape == (32, 24, 3)
    run_main('-i', img, '-o', tmp_path / 'f32.png', '--model', tiny_model)
    run_main('-i', img, '-o', tmp_path / 'bf16.png', '--model', tiny_model, '--bf16')
    f32, bf16 = (cv2.imread(str(tmp_path / n)).astype(int) for n in ('f32.png', 'bf16.png'))
    assert 0 < np.abs(f32 - bf16).mean() < 4


# --- bad input -------------------------------------------------------------------------------------------------------


def test_bad_files_are_reported_and_the_rest_is_written(tmp_path: Path, tiny_model: Path) -> None:
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    good = write(src / 'good.png', synthetic_image(12, 12, seed=5))
    write(src / 'dot.png', synthetic_image(1, 1, seed=6))
    (src / 'empty.png').write_bytes(b'')
    (src / 'cut.png').write_bytes(good.read_bytes()[:60])
    (src / 'text.jpg').write_text('not an image')
    (src / 'notes.txt').write_text('a folder may hold other files')
    before = {p.name: sha(p) for p in src.iterdir()}
    message = expect_error('3 of 5 images could not be upscaled', '-i', src, '-o', out, '--model', tiny_model)
    assert 'the other 2 were written' in message
    assert sorted(p.name for p in out.iterdir()) == ['dot_out.png', 'good_out.png']
    assert cv2.imread(str(out / 'dot_out.png')).shape == (4, 4, 3)  # a 1x1 image works
    assert {p.name: sha(p) for p in src.iterdir()} == before


def test_reports_name_the_failure(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / 'in'
    src.mkdir()
    (src / 'empty.png').write_bytes(b'')
    write(src / 'cut.png', synthetic_image(8, 8, seed=7))
    (src / 'cut.png').write_bytes((src / 'cut.png').read_bytes()[:50])
    expect_error('2 of 2', '-i', src, '-o', tmp_path / 'out', '--model', tiny_model)
    err = capsys.readouterr().err
    assert 'empty.png: empty file (0 bytes)' in err and 'cut.png: cannot be decoded as an image (truncated' in err


def test_never_overwrites_an_input(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / 'in'
    src.mkdir()
    a = write(src / 'a.png', synthetic_image(8, 8, seed=8))
    write(src / 'a.jpg', synthetic_image(8, 8, seed=9))
    before = sha(a)
    expect_error('is the input itself', '-i', src, '-o', src, '--model', tiny_model)
    expect_error('is the input itself', '-i', a, '-o', a, '--model', tiny_model)
    expect_error('would overwrite the input', '-i', a, '-o', src, '--suffix', '', '--model', tiny_model)
    expect_error('would both be written to', '-i', src, '-o', tmp_path / 'o', '--ext', 'png', '--model', tiny_model)
    assert sha(a) == before and not (tmp_path / 'o').exists()


def test_argument_errors(tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture) -> None:
    img = write(tmp_path / 'a.png', synthetic_image(8, 8, seed=10))
    expect_error('no such file or folder', '-i', tmp_path / 'nope', '-o', tmp_path / 'o', '--model', tiny_model)
    (tmp_path / 'txt').mkdir()
    (tmp_path / 'txt' / 'a.txt').write_text('x')
    expect_error('no images in', '-i', tmp_path / 'txt', '-o', tmp_path / 'o', '--model', tiny_model)
    expect_usage_error(capsys, 'must be positive', '-i', img, '-o', tmp_path / 'o', '--model', tiny_model, '-s', '0')
    expect_usage_error(capsys, 'must be >= 0', '-i', img, '-o', tmp_path / 'o', '--model', tiny_model, '--tile', '-1')
    x2 = save({'params': random_generator(ArchSpec(3, 3, 8, 1, 2, False)).state_dict()}, tmp_path / 'x2.pth')
    run_main('-i', img, '-o', tmp_path / 'x2.png', '--model', x2)  # the scale comes from the checkpoint
    assert cv2.imread(str(tmp_path / 'x2.png')).shape == (16, 16, 3)
    if not torch.cuda.is_available():
        expect_error('CUDA is not available', '-i', img, '-o', tmp_path / 'o', '--model', tiny_model, '--device',
                     'cuda')


@pytest.mark.slow
def test_command_line_as_a_user_runs_it(tmp_path: Path, tiny_model: Path) -> None:
    img = write(tmp_path / 'a.png', synthetic_image(10, 10, seed=11))
    command = ['-m', 'srgan_plugin.upscale', '-i', str(img), '--model']
    ok = run([*command, str(tiny_model), '-o', str(tmp_path / 'out')], cwd=REPO, fresh=True)
    assert ok.returncode == 0, ok.stderr
    assert cv2.imread(str(tmp_path / 'out' / 'a_out.png')).shape == (40, 40, 3)
    bad = save({'params': NotAStateDict()}, tmp_path / 'evil.pth')
    refused = run([*command, str(bad), '-o', str(tmp_path / 'o2')], cwd=REPO)
    assert refused.returncode == 1 and 'Traceback' not in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'holds pickled Python objects' in last and 'weights_only=False' not in last
