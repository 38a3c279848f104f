"""``python -m srgan_plugin.evaluate`` (protocols, outputs, test-only mode, bad input) and the LPIPS metric."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision
from conftest import SHARED_DATASETS, make_paired_folder, shared_dataset

from srgan_plugin import evaluate, metrics
from srgan_plugin.inference import imageio
from srgan_plugin.inference.tiling import Upscaler
from srgan_plugin.inference.weights import ArchSpec, random_generator
from srgan_plugin.visualize import PanelStyle, bicubic_upscale, label_band_height

TINY = ArchSpec(3, 3, 8, 2, 4, False)


@pytest.fixture(autouse=True)
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub folder (no LPIPS backbone) and a registry / LPIPS cache restored after each test."""
    from basicsr.utils.registry import METRIC_REGISTRY

    hub = tmp_path / 'torch_home'
    monkeypatch.setenv('TORCH_HOME', str(hub))
    monkeypatch.setattr(METRIC_REGISTRY, '_obj_map', dict(METRIC_REGISTRY._obj_map))
    METRIC_REGISTRY._obj_map.pop('calculate_lpips', None)
    yield hub / 'hub'
    metrics._lpips_network.cache_clear()


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """``Syn/HR`` + ``Syn/LR_bicubic/X4``: two 200 px synthetic images (big enough for NIQE's two 96 px blocks)."""
    make_paired_folder(tmp_path / 'data' / 'Syn', count=2, size=200)
    return tmp_path / 'data'


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    path = tmp_path / 'tiny.pth'
    torch.save({'params_ema': random_generator(TINY, seed=3).state_dict()}, path)
    return path


def run_evaluate(*argv: object) -> dict:
    evaluate.main([str(a) for a in argv])
    out = Path(str(argv[list(argv).index('--out') + 1]))
    return json.loads((out / 'results.json').read_text())


def psnr_y(img: np.ndarray, ref: np.ndarray, shave: int) -> float:
    """PSNR on BT.601 Y (MATLAB's rgb2ycbcr) of BGR uint8 images, written out here independently of basicsr."""

    def luma(bgr: np.ndarray) -> np.ndarray:
        bgr = bgr.astype(np.float64)
        return (24.966 * bgr[..., 0] + 128.553 * bgr[..., 1] + 65.481 * bgr[..., 2]) / 255. + 16.

    diff = (luma(img) - luma(ref))[shave:-shave, shave:-shave]
    return float(10 * np.log10(255.**2 / np.mean(diff**2)))


def test_measures_bicubic_and_a_model(data_root: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / 'eval'
    results = run_evaluate('--model', tiny_model, '--data-root', data_root, '--sets', 'Syn', '--out', out,
                           '--save-images', '--crop', 96)
    entry = results['sets']['Syn']
    assert entry['images'] == ['img00', 'img01'] and list(entry['mean']) == ['bicubic', 'tiny']
    hr = {n: cv2.imread(str(data_root / 'Syn' / 'HR' / f'{n}.png')) for n in entry['images']}
    lr = {n: cv2.imread(str(data_root / 'Syn' / 'LR_bicubic' / 'X4' / f'{n}.png')) for n in entry['images']}
    bicubic = np.mean([psnr_y(bicubic_upscale(lr[n], 4), hr[n], 4) for n in hr])
    assert entry['mean']['bicubic']['psnr_y'] == pytest.approx(bicubic, abs=1e-3)
    upscaler = Upscaler.for_network(random_generator(TINY, seed=3), 4)
    for name in hr:
        sr = upscaler.upscale(lr[name][..., ::-1] / np.float32(255), lambda t: imageio.quantize(t[..., ::-1], 255))
        np.testing.assert_array_equal(cv2.imread(str(out / 'Syn' / 'tiny' / f'{name}.png')), sr)
        assert entry['per_image']['tiny'][name]['psnr_y'] == pytest.approx(psnr_y(sr, hr[name], 4), abs=1e-3)
    bicubic_metrics = entry['mean']['bicubic']
    assert bicubic_metrics['psnr_y'] > bicubic_metrics['psnr_rgb'] > entry['mean']['tiny']['psnr_rgb']
    assert 0 < bicubic_metrics['ssim_y'] <= 1 and bicubic_metrics['niqe'] > 0 and bicubic_metrics['lpips'] is None
    assert any('LPIPS not computed' in note for note in results['notes'])
    canvas = cv2.imread(str(out / 'Syn_comparison.png'))
    gap, band = PanelStyle().gap, label_band_height()
    assert canvas.shape == (2 * (band + 96) + gap, 3 * 96 + 2 * gap, 3)  # bicubic | tiny | HR, one row per image
    report = (out / 'results.md').read_text()
    assert '| Syn | bicubic | ' in report and '| Syn | tiny | ' in report and 'LPIPS not computed' in report


def test_grid_images_selects_the_rows_and_unknown_names_are_refused(data_root: Path, tmp_path: Path) -> None:
    make_paired_folder(data_root / 'Other', count=2, size=120)
    for image in (data_root / 'Other').rglob('img*.png'):
        image.rename(image.with_name(image.name.replace('img', 'other')))
    out = tmp_path / 'eval'
    run_evaluate('--data-root', data_root, '--sets', 'Syn', 'Other', '--out', out, '--crop', 96, '--grid-images',
                 'img01')
    gap, band = PanelStyle().gap, label_band_height()
    assert cv2.imread(str(out / 'Syn_comparison.png')).shape == (band + 96, 2 * 96 + gap, 3)  # img01 only
    assert cv2.imread(str(out / 'Other_comparison.png')).shape[0] == 2 * (band + 96) + gap  # holds no img01: all
    expect_error('--grid-images: nope in none of the sets Syn; their images are img00, img01', '--data-root', data_root,
                 '--sets', 'Syn', '--out', tmp_path / 'eval2', '--grid-images', 'img00', 'nope')
    assert not (tmp_path / 'eval2' / 'results.json').exists()


def test_test_only_mode_writes_outputs_only(data_root: Path, tiny_model: Path, tmp_path: Path) -> None:
    shutil.rmtree(data_root / 'Syn' / 'HR')
    out = tmp_path / 'eval'
    results = run_evaluate('--model', tiny_model, '--data-root', data_root, '--sets', 'Syn', '--out', out)
    assert results['sets']['Syn']['mode'].startswith('test-only') and 'mean' not in results['sets']['Syn']
    for method in ('bicubic', 'tiny'):
        assert [cv2.imread(str(p)).shape for p in sorted((out / 'Syn' / method).iterdir())] == [(200, 200, 3)] * 2
    assert not (out / 'Syn_comparison.png').exists()


def expect_error(match: str, *argv: object) -> None:
    with pytest.raises(SystemExit) as info:
        evaluate.main([str(a) for a in argv])
    message = str(info.value.code)
    assert message.startswith('error: ') and '\n' not in message and match in message, message


def test_bad_input_is_refused_with_one_line(data_root: Path, tiny_model: Path, tmp_path: Path) -> None:
    x2 = tmp_path / 'x2.pth'
    torch.save({'params': random_generator(ArchSpec(3, 3, 8, 1, 2, False)).state_dict()}, x2)
    common = ('--data-root', data_root, '--out', tmp_path / 'eval')
    expect_error('is an x2 model', '--model', x2, '--sets', 'Syn', *common)
    expect_error('Set5/LR_bicubic/X4 not found', '--sets', 'Set5', *common)
    expect_error('is inside the data set', '--sets', 'Syn', '--data-root', data_root, '--out', data_root / 'Syn' / 'r')
    torch.save({'params': [1, 2]}, tmp_path / 'odd.pth')
    expect_error('is not a state dict', '--model', tmp_path / 'odd.pth', '--sets', 'Syn', *common)
    cv2.imwrite(str(data_root / 'Syn' / 'HR' / 'img01.png'), np.zeros((150, 150, 3), np.uint8))
    expect_error('HR mod-cropped to 148x148 is not 4x its LR (50x50)', '--sets', 'Syn', *common)
    (data_root / 'Syn' / 'LR_bicubic' / 'X4' / 'img00.png').write_bytes(b'')
    expect_error('img00.png: not an image', '--sets', 'Syn', *common)


def install_fake_lpips_backbone(hub: Path) -> None:
    """Random AlexNet weights where torchvision keeps the real ones: exercises the code, not LPIPS' values."""
    (hub / 'checkpoints').mkdir(parents=True)
    torch.save(torchvision.models.alexnet().state_dict(), hub / 'checkpoints' / metrics.LPIPS_BACKBONE_FILE)


@pytest.mark.slow
def test_lpips_is_registered_only_when_available(offline_hub: Path, capsys: pytest.CaptureFixture) -> None:
    from basicsr.metrics import calculate_metric
    from basicsr.utils.registry import METRIC_REGISTRY

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert metrics.register() is False
    assert not caught and not capsys.readouterr().err and 'calculate_lpips' not in METRIC_REGISTRY
    assert 'backbone weights are not at' in metrics.lpips_unavailable_reason()
    pytest.importorskip('lpips', reason='the lpips package is not installed (optional extra)')
    install_fake_lpips_backbone(offline_hub)
    assert metrics.register() is True and 'calculate_lpips' in METRIC_REGISTRY
    a, b = (np.random.default_rng(i).integers(0, 256, (48, 40, 3), dtype=np.uint8) for i in (0, 1))
    opt = {'type': 'calculate_lpips', 'crop_border': 4}  # as in an option file's val.metrics
    assert calculate_metric({'img': a, 'img2': a}, opt) == pytest.approx(0, abs=1e-6)
    assert calculate_metric({'img': a, 'img2': b}, opt) > 0


@pytest.mark.slow
def test_evaluate_reports_lpips_when_available(offline_hub: Path, data_root: Path, tmp_path: Path) -> None:
    pytest.importorskip('lpips', reason='the lpips package is not installed (optional extra)')
    install_fake_lpips_backbone(offline_hub)
    results = run_evaluate('--data-root', data_root, '--sets', 'Syn', '--out', tmp_path / 'eval')
    assert results['sets']['Syn']['mean']['bicubic']['lpips'] > 0
    assert not any('LPIPS' in note for note in results['notes'])


def test_set5_bicubic_reproduces_the_published_28_43_db(tmp_path: Path) -> None:
    shared_dataset('Set5')
    results = run_evaluate('--data-root', SHARED_DATASETS, '--sets', 'Set5', '--out', tmp_path / 'eval')
    assert results['sets']['Set5']['mean']['bicubic']['psnr_y'] == pytest.approx(28.43, abs=0.01)


def checkerboard(height: int, width: int, period: int) -> np.ndarray:
    """A texture repeating every ``period`` px with RMS 1: a sub-pixel upsampler's checkerboard."""
    cell = np.random.default_rng(0).standard_normal((period, period))
    cell = (cell - cell.mean()) / (cell - cell.mean()).std()
    return np.tile(cell, (height // period, width // period))


@pytest.mark.parametrize('amplitude', [0.5, 2.0])
def test_grid_metric_measures_a_checkerboard_added_to_a_photo(amplitude: float) -> None:
    """``grid`` reads the RMS amplitude, in 8-bit levels, of a checkerboard added to a real photo, and 0 without."""
    from skimage import data

    from srgan_plugin.metrics import calculate_grid_artifacts

    hr = data.astronaut()[:256, :384, ::-1].astype(np.float64)  # BGR
    y_weights = np.array([24.966, 128.553, 65.481]) / 255.  # Y = weights . BGR + 16: the same texture on Y needs
    sr = np.clip(hr + (checkerboard(256, 384, 4) * amplitude / y_weights.sum())[..., None], 0, 255).round()
    assert calculate_grid_artifacts(hr.astype(np.uint8), hr.astype(np.uint8), 4) == 0
    assert calculate_grid_artifacts(sr.astype(np.uint8), hr.astype(np.uint8), 4) == pytest.approx(amplitude, rel=0.15)


def test_grid_metric_is_none_on_images_too_small_to_measure() -> None:
    from srgan_plugin.evaluate import image_metrics

    tiny = np.full((24, 24, 3), 128, np.uint8)
    assert image_metrics(tiny, tiny, 4, with_lpips=False)['grid'] is None


def test_grid_metric_works_in_basicsr_validation() -> None:
    from basicsr.metrics import calculate_metric

    hr = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    sr = np.clip(hr + 8 * checkerboard(64, 64, 2)[..., None], 0, 255).astype(np.uint8)
    opt = {'type': 'calculate_grid_artifacts', 'crop_border': 4, 'period': 4, 'better': 'lower'}  # val.metrics
    assert calculate_metric({'img': hr, 'img2': hr}, opt) == 0 and calculate_metric({'img': sr, 'img2': hr}, opt) > 4


def test_model_labels_differ_for_checkpoints_of_the_same_name() -> None:
    from srgan_plugin.evaluate import model_labels

    paths = ['exp/train_A/models/net_g_latest.pth', 'exp/train_B/models/net_g_latest.pth', 'w/srgan_mse_x4.pth']
    assert model_labels(paths) == ['train_A/net_g_latest', 'train_B/net_g_latest', 'srgan_mse_x4']
    assert model_labels(['a/x/m.pth', 'b/x/m.pth']) == ['a/x/m', 'b/x/m']
