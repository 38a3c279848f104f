"""``python -m srgan_plugin.prepare benchmark``: mod-cropped HR + MATLAB-bicubic LR, the layout test options read."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.metrics import calculate_psnr

from conftest import shared_dataset, synthetic_image
from srgan_plugin.prepare.cli import main
from srgan_plugin.prepare.imgops import bicubic_downscale
from srgan_plugin.prepare.staging import MANIFEST, read_manifest
from srgan_plugin.visualize import bicubic_upscale
from test_prepare_subimages import snapshot


def check_pairs(out: Path, names: list[str], scale: int = 4) -> None:
    """HR sizes are multiples of the scale and every LR is exactly imresize(HR, 1 / scale)."""
    assert sorted(os.listdir(out / 'HR')) == sorted(os.listdir(out / 'LR_bicubic' / f'X{scale}')) == sorted(
        f'{name}.png' for name in names)
    for name in names:
        hr = cv2.imread(str(out / 'HR' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        lr = cv2.imread(str(out / 'LR_bicubic' / f'X{scale}' / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert hr.shape[0] % scale == 0 and hr.shape[1] % scale == 0 and hr.shape[2] == 3
        np.testing.assert_array_equal(lr, bicubic_downscale(hr, scale))


def test_generated_set_with_odd_names(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    hr = tmp_path / 'in'
    hr.mkdir()
    names = ['baby', 'my photo.v2', 'café']
    for i, name in enumerate(names):
        cv2.imwrite(str(hr / f'{name}.png'), synthetic_image(61 + i, 83 - i, i))
    out = tmp_path / 'Set'
    assert main(['benchmark', '--hr', str(hr), '--out', str(out), '--workers', '1']) == 0
    assert sorted(os.listdir(out)) == ['HR', 'LR_bicubic', MANIFEST]
    check_pairs(out, names)
    assert cv2.imread(str(out / 'HR' / 'baby.png')).shape == (60, 80, 3)  # mod-cropped, top-left kept
    val = PairedImageDataset(
        dict(
            dataroot_gt=str(out / 'HR'),
            dataroot_lq=str(out / 'LR_bicubic' / 'X4'),
            io_backend=dict(type='disk'),
            phase='val',
            scale=4))
    assert len(val) == 3 and all(val[i]['lq'].shape[1] * 4 == val[i]['gt'].shape[1] for i in range(3))
    before = snapshot(out)
    assert main(['benchmark', '--hr', str(hr), '--out', str(out)]) == 0
    assert 'already complete' in capsys.readouterr().out and snapshot(out) == before
    with pytest.raises(SystemExit) as refused:
        main(['benchmark', '--hr', str(hr), '--out', str(out), '--scale', '2'])
    assert 'made differently (scale: 4 there, 2 asked' in str(refused.value.code)


def test_set5_matches_the_published_bicubic_baseline(tmp_path: Path) -> None:
    set5 = shared_dataset('Set5')
    before = snapshot(set5)
    out = tmp_path / 'Set5'
    assert main(['benchmark', '--hr', str(set5 / 'HR'), '--out', str(out), '--workers', '1']) == 0
    names = sorted(p.stem for p in (set5 / 'HR').glob('*.png'))
    check_pairs(out, names)
    psnrs = []
    for name in names:
        hr = cv2.imread(str(out / 'HR' / f'{name}.png'))
        lr = cv2.imread(str(out / 'LR_bicubic' / 'X4' / f'{name}.png'))
        # the shared LR files are bicubic but not MATLAB's (README there: up to 7 grey levels apart on a few pixels)
        diff = np.abs(lr.astype(int) - cv2.imread(str(set5 / 'LR_bicubic' / 'X4' / f'{name}.png')))
        assert diff.max() <= 7 and diff.mean() < 0.2 and (diff > 2).mean() < 0.01, name
        psnrs.append(calculate_psnr(bicubic_upscale(lr, 4), hr, crop_border=4, test_y_channel=True))
    assert np.mean(psnrs) == pytest.approx(28.43, abs=0.01)
    assert snapshot(set5) == before


def test_set14_grayscale_image_becomes_three_channels(tmp_path: Path) -> None:
    set14 = shared_dataset('Set14')
    out = tmp_path / 'Set14'
    assert main(['benchmark', '--hr', str(set14 / 'HR'), '--out', str(out), '--workers', '1']) == 0
    assert [os.path.basename(f) for f in read_manifest(str(out))['converted']['grayscale']] == ['bridge.png']
    bridge = cv2.imread(str(out / 'HR' / 'bridge.png'), cv2.IMREAD_UNCHANGED)
    assert bridge.shape[2] == 3 and (bridge[..., 0] == bridge[..., 2]).all()
