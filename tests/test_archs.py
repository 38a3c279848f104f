"""Networks: parametrized over every arch the plugin registers in BasicSR's ARCH_REGISTRY."""
from __future__ import annotations

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from srgan_plugin.archs import SRGANDiscriminator, SRResNet
from srgan_plugin.archs.srresnet_arch import count_parameters

PLUGIN_ARCHS = sorted(name for name, obj in ARCH_REGISTRY if obj.__module__.startswith('srgan_plugin.'))
TINY = {
    'SRResNet': ({
        'num_feat': 8,
        'num_block': 2,
        'upscale': 4
    }, (2, 3, 8, 8), (2, 3, 32, 32)),
    'SRGANDiscriminator': ({
        'num_feat': 8,
        'input_size': 32,
        'num_dense': 16
    }, (2, 3, 32, 32), (2, 1)),
}


def test_every_plugin_arch_has_a_tiny_config():
    assert PLUGIN_ARCHS == sorted(TINY)


@pytest.mark.parametrize('name', PLUGIN_ARCHS)
def test_shape_gradients_and_finiteness(name: str):
    torch.manual_seed(0)
    kwargs, in_shape, out_shape = TINY[name]
    net = build_network({'type': name, **kwargs})
    out = net(torch.rand(in_shape))
    assert out.shape == out_shape
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    no_grad = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f'parameters without a finite gradient: {no_grad}'


def test_srresnet_default_parameter_count_is_the_papers():
    assert count_parameters(SRResNet()) == 1_549_462


@pytest.mark.parametrize('scale', [2, 3, 4, 8])
def test_srresnet_scales(scale: int):
    net = SRResNet(num_feat=8, num_block=1, upscale=scale)
    assert net(torch.rand(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)


def test_srresnet_rejects_unsupported_scale():
    with pytest.raises(ValueError, match='upscale must be one of'):
        SRResNet(upscale=5)


def test_srresnet_prelu_per_channel_option():
    single, per_channel = SRResNet(num_feat=8, num_block=1), SRResNet(num_feat=8, num_block=1, prelu_per_channel=True)
    assert single.prelu_first.weight.numel() == 1 and per_channel.prelu_first.weight.numel() == 8


def test_srresnet_starts_near_zero_output():
    """Small initialisation: the first MSE is about E[gt^2], not blown up by the 9x9 convolutions."""
    torch.manual_seed(0)
    with torch.no_grad():
        assert SRResNet(num_feat=16, num_block=2)(torch.rand(2, 3, 16, 16)).abs().mean() < 0.05


@pytest.mark.parametrize('size', [96, 128])
def test_discriminator_paper_and_basicsr_crops(size: int):
    net = SRGANDiscriminator(num_feat=8, input_size=size, num_dense=16)
    assert net(torch.rand(2, 3, size, size)).shape == (2, 1)


def test_discriminator_structure_is_the_papers():
    net = SRGANDiscriminator()
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in net.features if isinstance(m, torch.nn.BatchNorm2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2] * 4
    assert len(bns) == 7
    linears = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    assert [lin.out_features for lin in linears] == [1024, 1] and linears[0].in_features == 512 * 6 * 6


def test_discriminator_wrong_crop_names_gt_size():
    net = SRGANDiscriminator(num_feat=8, input_size=32, num_dense=16)
    with pytest.raises(ValueError, match='gt_size'):
        net(torch.rand(1, 3, 48, 48))
    with pytest.raises(ValueError, match='gt_size'):
        SRGANDiscriminator(input_size=100)
