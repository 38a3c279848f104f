"""The EMA generator on real images: with a BatchNorm generator it must score at least what the live one does.

Trains a small SRResNet on crops of the T91 images for a few hundred steps and scores the live and the EMA generator
on Set5 (PSNR on Y, 4 px shaved). BasicSR's EMA (decay 0.999 from the first step, running statistics left at their
initial values) scores far below the live network here, as it did on the full-size generator.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_psnr
from basicsr.models import build_model
from basicsr.utils.matlab_functions import imresize

from conftest import shared_dataset
from test_models import model_options

SCALE, CROP, BATCH, STEPS = 4, 48, 8, 120


def read_rgb(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.


def downscale(hr: np.ndarray, matlab: bool = True) -> np.ndarray:
    """MATLAB-style bicubic (the benchmark protocol), or OpenCV's (fast, for the training crops)."""
    if matlab:
        return np.clip(imresize(hr, 1 / SCALE), 0, 1).astype(np.float32)
    return np.clip(cv2.resize(hr, None, fx=1 / SCALE, fy=1 / SCALE, interpolation=cv2.INTER_CUBIC), 0, 1)


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def crops(images: list[np.ndarray], rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random HR crops (multiples of the scale) and their MATLAB-bicubic LR."""
    hrs = []
    for index in rng.integers(len(images), size=BATCH):
        img = images[index]
        top, left = (rng.integers(0, n - CROP + 1) for n in img.shape[:2])
        hrs.append(img[top:top + CROP, left:left + CROP])
    return to_tensor([downscale(hr, matlab=False) for hr in hrs]), to_tensor(hrs)


@torch.no_grad()
def set5_psnr(net: torch.nn.Module, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    net.eval()
    scores = []
    for lq, hr in pairs:
        sr = net(to_tensor([lq])).clamp(0, 1)[0].permute(1, 2, 0).numpy()[..., ::-1]
        scores.append(calculate_psnr(sr * 255, hr[..., ::-1] * 255, crop_border=4, test_y_channel=True))
    net.train()
    return float(np.mean(scores))


@pytest.mark.slow
def test_ema_generator_scores_at_least_the_live_one_on_real_images():
    train = [read_rgb(p) for p in sorted(shared_dataset('T91').joinpath('HR').glob('*.png'))[:40]]
    train = [img for img in train if min(img.shape[:2]) >= CROP]
    val = []
    for path in sorted(shared_dataset('Set5').joinpath('HR').glob('*.png')):
        hr = read_rgb(path)
        hr = hr[:hr.shape[0] // SCALE * SCALE, :hr.shape[1] // SCALE * SCALE]
        val.append((downscale(hr), hr))
    torch.manual_seed(0)
    opt = model_options(1, ema_decay=0.999)
    opt['network_g'].update(num_feat=32, num_block=4)
    opt['train']['optim_g']['lr'] = 1e-3
    model = build_model(opt)
    untrained = set5_psnr(model.net_g, val)
    rng = np.random.default_rng(0)
    for step in range(1, STEPS + 1):
        lq, gt = crops(train, rng)
        model.feed_data({'lq': lq, 'gt': gt})
        model.optimize_parameters(step)
    live, ema = set5_psnr(model.net_g, val), set5_psnr(model.net_g_ema, val)
    assert live > untrained + 3, f'the live generator did not learn (Set5 {untrained:.2f} -> {live:.2f} dB)'
    assert ema >= live - 0.05, f'EMA generator {ema:.2f} dB vs live {live:.2f} dB on Set5'


def test_ema_warmup_follows_where_the_generator_starts_and_survives_resume():
    from srgan_plugin.models.ema import resolve_ema_warmup

    scratch = {'path': {'pretrain_network_g': None}, 'train': {}}
    assert resolve_ema_warmup(scratch) is True
    scratch['path']['pretrain_network_g'] = 'experiments/run/models/net_g_1000.pth'  # what check_resume does
    assert resolve_ema_warmup(scratch) is True
    fine_tune = {'path': {'pretrain_network_g': 'phase1.pth'}, 'train': {'ema_warmup': None}}
    assert resolve_ema_warmup(fine_tune) is False
    forced = {'path': {'pretrain_network_g': 'phase1.pth'}, 'train': {'ema_warmup': True}}
    assert resolve_ema_warmup(forced) is True


@pytest.mark.parametrize('warmup', [True, False])
def test_ema_update_of_the_first_step(warmup: bool):
    """From random weights the first update keeps 2/11 of the average (the warm-up); fine-tuning keeps 0.999."""
    torch.manual_seed(0)
    opt = model_options(1, ema_decay=0.999)
    opt['train']['ema_warmup'] = warmup
    model = build_model(opt)
    before = {k: v.clone() for k, v in model.net_g_ema.state_dict().items() if v.is_floating_point()}
    model.feed_data({'lq': torch.rand(2, 3, 8, 8), 'gt': torch.rand(2, 3, 32, 32)})
    model.optimize_parameters(1)
    live = model.net_g.state_dict()
    decay = 2 / 11 if warmup else 0.999
    for key, old in before.items():
        expected = old * decay + live[key] * (1 - decay)
        torch.testing.assert_close(model.net_g_ema.state_dict()[key], expected, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(old, live[key]) for key, old in before.items())  # the step moved the live network
