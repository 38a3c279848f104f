"""The models the benchmark times, built exactly as training builds them (BasicSR's ``build_model`` on an options
dict), with random VGG19 weights: speed does not depend on the weights' values.

Plugin: phase 1 ``SRResNetModel`` (SRResNet, MSE) and phase 2 ``SRGANPluginModel`` (SRResNet + SRGANDiscriminator,
VGG54 content loss + 1e-3 adversarial), the settings of ``options/train_srresnet_x4.yml`` / ``train_srgan_x4.yml``.
BasicSR: its own ``SRModel`` with ``MSRResNet`` (L1) and ``SRGANModel`` with ``MSRResNet`` + ``VGGStyleDiscriminator``
+ ``PerceptualLoss`` on VGG19 ``conv5_4``, the settings of BasicSR's ``train_MSRResNet_x4.yml`` and
``train_SRGAN_x4.yml``. Both sides keep their EMA generator (decay 0.999), as those option files do.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import torch
from torch import nn

import srgan_plugin  # noqa: F401  (registers the plugin; makes basicsr importable)

ADAM = {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 0, 'betas': [0.9, 0.99]}
SCHEDULER = {'type': 'MultiStepLR', 'milestones': [10**9], 'gamma': 0.5}
BASICSR_D_SIZES = (128, 256)  # VGGStyleDiscriminator asserts one of these


@dataclass(frozen=True)
class Case:
    """One training step to time: whose model, which phase, batch and HR crop, and the plugin's speed options."""
    impl: str  # 'plugin' or 'basicsr'
    phase: int  # 1: MSE-trained generator, 2: GAN
    batch: int
    crop: int
    speed: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # train.amp / channels_last / ...
    label: str = 'fp32 eager'

    @property
    def unsupported(self) -> Optional[str]:
        """Why this case cannot run, or None."""
        if self.impl == 'basicsr' and self.phase == 2 and self.crop not in BASICSR_D_SIZES:
            return f'BasicSR\'s VGGStyleDiscriminator accepts only {"/".join(map(str, BASICSR_D_SIZES))} px crops'
        return None


def _common(case: Case, device: torch.device) -> dict[str, Any]:
    return {
        'name': f'bench_{case.impl}_{case.phase}',
        'model_type': '',
        'scale': 4,
        'num_gpu': 1 if device.type == 'cuda' else 0,
        'dist': False,
        'rank': 0,
        'world_size': 1,
        'is_train': True,
        'auto_resume': False,
        'path': {
            'pretrain_network_g': None,
            'pretrain_network_d': None,
            'resume_state': None
        },
        'train': {
            'ema_decay': 0.999,
            'optim_g': dict(ADAM),
            'scheduler': dict(SCHEDULER),
            'total_iter': 10**9,
            'warmup_iter': -1
        },
    }


def plugin_options(case: Case, device: torch.device) -> dict[str, Any]:
    """``options/train_srresnet_x4.yml`` (phase 1) or ``train_srgan_x4.yml`` (phase 2), as a dict."""
    opt = _common(case, device)
    opt['network_g'] = {'type': 'SRResNet', 'num_feat': 64, 'num_block': 16, 'upscale': 4}
    train = opt['train']
    train.update(copy.deepcopy(case.speed))
    if case.phase == 1:
        opt['model_type'] = 'SRResNetModel'
        train['pixel_opt'] = {'type': 'MSELoss', 'loss_weight': 1.0, 'reduction': 'mean'}
        return opt
    opt['model_type'] = 'SRGANPluginModel'
    opt['network_d'] = {'type': 'SRGANDiscriminator', 'num_feat': 64, 'input_size': case.crop}
    train.update(optim_d=dict(ADAM), net_d_iters=1, net_d_init_iters=0)
    train['perceptual_opt'] = {'type': 'VGGContentLoss', 'layer': 'vgg54', 'vgg_weights': 'random'}
    train['gan_opt'] = {'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 1e-3}
    return opt


def basicsr_options(case: Case, device: torch.device) -> dict[str, Any]:
    """BasicSR's ``train_MSRResNet_x4.yml`` (phase 1) or ``train_SRGAN_x4.yml`` (phase 2), as a dict."""
    opt = _common(case, device)
    opt['network_g'] = {
        'type': 'MSRResNet',
        'num_in_ch': 3,
        'num_out_ch': 3,
        'num_feat': 64,
        'num_block': 16,
        'upscale': 4
    }
    train = opt['train']
    if case.phase == 1:
        opt['model_type'] = 'SRModel'
        train['pixel_opt'] = {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'}
        return opt
    opt['model_type'] = 'SRGANModel'
    opt['network_d'] = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 64, 'input_size': case.crop}
    train.update(optim_d=dict(ADAM), net_d_iters=1, net_d_init_iters=0)
    train['pixel_opt'] = {'type': 'L1Loss', 'loss_weight': 1e-2, 'reduction': 'mean'}
    train['perceptual_opt'] = {
        'type': 'PerceptualLoss',
        'layer_weights': {
            'conv5_4': 1
        },
        'vgg_type': 'vgg19',
        'use_input_norm': True,
        'range_norm': False,
        'perceptual_weight': 1.0,
        'style_weight': 0,
        'criterion': 'l1'
    }
    train['gan_opt'] = {
        'type': 'GANLoss',
        'gan_type': 'vanilla',
        'real_label_val': 1.0,
        'fake_label_val': 0.0,
        'loss_weight': 5e-3
    }
    return opt


@contextlib.contextmanager
def random_torchvision_vgg() -> Iterator[None]:
    """BasicSR's ``VGGFeatureExtractor`` calls ``torchvision.models.vgg19(pretrained=True)``, which downloads; inside
    this block it gets a randomly initialised VGG19 instead (the same layers, so the same cost)."""
    from torchvision.models import vgg
    original = vgg.vgg19

    def random_vgg19(*args: Any, **kwargs: Any) -> nn.Module:
        kwargs.pop('pretrained', None)
        kwargs.pop('weights', None)
        return original(weights=None)

    vgg.vgg19 = random_vgg19
    try:
        yield
    finally:
        vgg.vgg19 = original


def build(case: Case, device: torch.device) -> Any:
    """The BasicSR model object of ``case`` on ``device``, fed a fixed random batch (LR crop = HR crop / 4)."""
    from basicsr.models import build_model
    options = plugin_options if case.impl == 'plugin' else basicsr_options
    with random_torchvision_vgg():
        model = build_model(options(case, device))
    generator = torch.Generator().manual_seed(0)
    lq = torch.rand(case.batch, 3, case.crop // 4, case.crop // 4, generator=generator)
    gt = torch.rand(case.batch, 3, case.crop, case.crop, generator=generator)
    model.feed_data({'lq': lq, 'gt': gt})
    return model
