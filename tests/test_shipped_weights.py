"""The generators shipped in srgan_plugin/weights: the manifest, the files it names, what it records, and the commands
that use them without a --model."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import run, shared_dataset, synthetic_image
from srgan_plugin.archs.srresnet_arch import count_parameters
from srgan_plugin.base.files import sha256_of
from srgan_plugin.inference.weights import WEIGHTS_DIR, ArchSpec, load_generator, resolve_model

MANIFEST = Path(WEIGHTS_DIR) / 'manifest.json'
REFERENCE = ArchSpec(3, 3, 64, 16, 4, False)  # the paper's generator: 16 blocks, 64 features, x4
SHORT_NAMES = {'srresnet_mse_x4': 'srresnet', 'srgan_mse_x4': 'srgan'}
SHIPPED = sorted(json.loads(MANIFEST.read_text(encoding='utf-8'))['models'])
FP16_TOLERANCE_DB = 0.05  # float16 storage against the float32 checkpoint it was made from


@pytest.fixture(scope='module')
def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding='utf-8'))


def test_manifest_ships_srresnet_and_a_default(manifest):
    assert 'srresnet_mse_x4' in manifest['models'] and set(manifest['models']) <= set(SHORT_NAMES)
    assert manifest['default'] in manifest['models']
    assert 'label' not in manifest  # trained weights, not a labelled stand-in
    assert Path(resolve_model(None)).name == manifest['models'][manifest['default']]['file']


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_file_is_the_papers_generator_in_float16(manifest, name):
    entry = manifest['models'][name]
    path = resolve_model(SHORT_NAMES[name])  # checks the sha256 too
    assert Path(path).name == entry['file'] and sha256_of(path) == entry['sha256']
    stored = torch.load(path, weights_only=True)
    assert list(stored) == ['params'] and stored['params']['conv_first.weight'].dtype == torch.float16
    net, spec = load_generator(path)
    assert spec == REFERENCE and count_parameters(net) == 1_549_462
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in net.parameters())
    training = entry['training']
    assert training['iterations'] > 0 and training['wall_time_s'] > 0 and training['machine']


@pytest.mark.parametrize('name', SHIPPED)
def test_recorded_scores_beat_bicubic_and_float16_keeps_the_checkpoints(manifest, name):
    for set_name in ('Set5', 'Set14'):
        scores = manifest['models'][name]['scores'][set_name]
        shipped, fp32, bicubic = scores['model'], scores['fp32_checkpoint'], scores['bicubic']
        assert abs(shipped['psnr_y'] - fp32['psnr_y']) <= FP16_TOLERANCE_DB, (set_name, shipped, fp32)
        assert shipped['psnr_y'] > bicubic['psnr_y'] + 1.0, (set_name, shipped, bicubic)


@pytest.mark.skipif('srgan_mse_x4' not in SHIPPED, reason='this version ships no SRGAN-MSE x4 generator')
def test_srgan_has_lower_niqe_than_srresnet_and_no_checkerboard(manifest):
    """The recorded scores: more natural to NIQE than the SRResNet it starts from, and no more texture on the 4 px grid
    than the real images have (Grid, RMS in 8-bit levels; a visible checkerboard measures about 0.3 and more)."""
    for set_name in ('Set5', 'Set14'):
        scores = {name: manifest['models'][name]['scores'][set_name]['model'] for name in SHORT_NAMES}
        assert scores['srgan_mse_x4']['niqe'] < scores['srresnet_mse_x4']['niqe'], (set_name, scores)
        assert scores['srgan_mse_x4']['grid'] < 0.1, (set_name, scores)


@pytest.mark.slow
def test_recorded_set5_scores_reproduce(tmp_path: Path, manifest):
    """The manifest's Set5 numbers are what evaluate measures on the shipped files (MATLAB-bicubic LR)."""
    data = tmp_path / 'data'
    result = run([
        '-m', 'srgan_plugin.prepare', 'benchmark', '--hr',
        str(shared_dataset('Set5') / 'HR'), '--out',
        str(data / 'Set5')
    ],
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    models = [arg for name in SHIPPED for arg in ('--model', SHORT_NAMES[name])]
    result = run([
        '-m', 'srgan_plugin.evaluate', *models, '--data-root',
        str(data), '--sets', 'Set5', '--out',
        str(tmp_path / 'eval')
    ],
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads((tmp_path / 'eval' / 'results.json').read_text())['sets']['Set5']['mean']
    for name in SHIPPED:
        recorded = manifest['models'][name]['scores']['Set5']
        assert measured[name]['psnr_y'] == pytest.approx(recorded['model']['psnr_y'], abs=1e-3)
        assert measured[name]['ssim_y'] == pytest.approx(recorded['model']['ssim_y'], abs=1e-5)
        assert measured[name]['niqe'] == pytest.approx(recorded['model']['niqe'], abs=1e-3)
        assert measured[name]['grid'] == pytest.approx(recorded['model']['grid'], abs=1e-3)
    assert measured['bicubic']['psnr_y'] == pytest.approx(28.43, abs=0.01)  # the published bicubic baseline


@pytest.mark.parametrize('model', [None, 'srresnet', 'srgan'])
def test_upscale_runs_a_shipped_model_offline(tmp_path: Path, manifest, model):
    image = tmp_path / 'in.png'
    cv2.imwrite(str(image), synthetic_image(24, 32, seed=3))
    args = ['-m', 'srgan_plugin.upscale', '-i', str(image), '-o', str(tmp_path / 'out.png')]
    result = run(args + (['--model', model] if model else []), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    name = manifest['default'] if model is None else {v: k for k, v in SHORT_NAMES.items()}[model]
    assert manifest['models'][name]['file'] in result.stdout
    out = cv2.imread(str(tmp_path / 'out.png'))
    assert out.shape == (96, 128, 3) and np.ptp(out) > 100  # 4x, an image rather than a flat field


def test_unknown_shipped_name_lists_the_shipped_ones(tmp_path: Path):
    cv2.imwrite(str(tmp_path / 'x.png'), synthetic_image(24, 32, seed=3))
    result = run(['-m', 'srgan_plugin.upscale', '-i', 'x.png', '-o', 'y.png', '--model', 'esrgan'], cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert 'no such shipped model' in lines[0] and all(name in lines[0] for name in SHIPPED)
    assert not (tmp_path / 'y.png').exists()
