"""Networks: parametrized over every arch the plugin registers in BasicSR's ARCH_REGISTRY."""
from __future__ import annotations

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from torch.nn.utils import parametrize

from srgan_plugin.archs import SRGANDiscriminator, SRResNet
from srgan_plugin.archs.discriminator_arch import NORMS
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


BATCHNORM_KEYS = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')


def paper_discriminator_keys() -> list[str]:
    """The state-dict keys of the paper's discriminator (``norm: batch``), which checkpoints are written with."""
    keys = ['features.0.weight', 'features.0.bias']
    for conv in range(2, 21, 3):
        bn = f'features.{conv + 1}'
        keys += [f'features.{conv}.weight'] + [f'{bn}.{k}' for k in BATCHNORM_KEYS]
    return keys + ['classifier.1.weight', 'classifier.1.bias', 'classifier.3.weight', 'classifier.3.bias']


def tiny_discriminator(norm: str, seed: int = 0) -> SRGANDiscriminator:
    torch.manual_seed(seed)
    return SRGANDiscriminator(num_feat=8, input_size=32, num_dense=16, norm=norm)


def weighted_layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


def spectral_norm_of(weight: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2).item()


def test_discriminator_default_keeps_the_papers_state_dict_keys():
    assert list(SRGANDiscriminator(num_feat=8, input_size=32, num_dense=16).state_dict()) == paper_discriminator_keys()


@pytest.mark.parametrize('norm', NORMS)
def test_discriminator_norms_shape_gradients_and_layers(norm: str):
    net = tiny_discriminator(norm)
    out = net(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == (7 if norm == 'batch' else 0)
    layers = weighted_layers(net)
    assert sum(parametrize.is_parametrized(m, 'weight') for m in layers) == (10 if norm == 'spectral' else 0)
    assert all(m.bias is not None for m in layers[1:]) == (norm != 'batch')  # a bias where no BatchNorm follows


@pytest.mark.parametrize('norm, count', [('batch', 23_563_649), ('spectral', 23_561_793), ('none', 23_561_793)])
def test_discriminator_parameter_counts(norm: str, count: int):
    """Without BatchNorm each convolution after the first has a bias (c) instead of BatchNorm's weight and bias (2c):
    1,856 parameters fewer at num_feat 64. Spectral normalisation adds buffers only."""
    assert count_parameters(SRGANDiscriminator(norm=norm)) == count


@pytest.mark.parametrize('norm', NORMS)
def test_discriminator_state_dict_round_trip(norm: str):
    trained, fresh = tiny_discriminator(norm, seed=0), tiny_discriminator(norm, seed=1)
    trained(torch.rand(2, 3, 32, 32))  # moves the running statistics / power-iteration vectors
    state = trained.state_dict()
    if norm == 'spectral':
        assert {'features.0.parametrizations.weight.0._u', 'classifier.3.parametrizations.weight.0._v'} <= set(state)
    fresh.load_state_dict(state, strict=True)
    assert list(fresh.state_dict()) == list(state)
    assert all(torch.equal(value, fresh.state_dict()[key]) for key, value in state.items())
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(trained.eval()(x), fresh.eval()(x))


@pytest.mark.slow
def test_discriminator_spectral_norm_constrains_every_layer():
    """Each layer's weight (as a matrix) has spectral norm 1 however large the learned weight grows."""
    net = tiny_discriminator('spectral')
    with torch.no_grad():
        for name, param in net.named_parameters():
            if name.endswith('.original'):
                param.mul_(100)
        for _ in range(50):  # power iterations, one per training-mode forward
            net(torch.rand(2, 3, 32, 32))
    layers = weighted_layers(net)
    originals = [spectral_norm_of(m.parametrizations.weight.original) for m in layers]
    assert min(originals) > 10
    assert [spectral_norm_of(m.weight) for m in layers] == pytest.approx([1.0] * 10, abs=0.02)


def test_discriminator_unknown_norm_names_the_valid_ones():
    with pytest.raises(ValueError, match="norm must be one of batch, spectral, none, got 'instance'"):
        SRGANDiscriminator(norm='instance')


def test_discriminator_antialias_keeps_parameters_and_moves_strided_keys():
    paper, antialiased = SRGANDiscriminator(), SRGANDiscriminator(antialias=True)
    assert count_parameters(antialiased) == count_parameters(paper)
    assert len(antialiased.state_dict()) == len(paper.state_dict())  # the filter is not saved
    assert 'features.2.1.weight' in antialiased.state_dict() and 'features.0.weight' in antialiased.state_dict()
    out = antialiased(torch.rand(2, 3, 96, 96))
    assert out.shape == (2, 1) and torch.isfinite(out).all()


@pytest.mark.parametrize('antialias', [False, True])
def test_strided_convolution_gradient_has_a_period_2_component_unless_antialiased(antialias: bool):
    """What the generator learns as a checkerboard: a 3x3 stride-2 convolution's gradient to its input differs between
    even and odd pixels (a pixel sits under the centre tap of one window or the edge taps of two). The [1, 2, 1]
    filter before it cancels that, whatever the weights."""
    from srgan_plugin.archs.discriminator_arch import _conv_block

    torch.manual_seed(0)
    block = torch.nn.Sequential(*_conv_block(4, 8, stride=2, bn=False, spectral=False, antialias=antialias)[:-1])
    x = torch.rand(1, 4, 32, 32, requires_grad=True)
    block(x).sum().backward()
    grad = x.grad[..., 4:-4, 4:-4].sum(1)[0]  # away from the borders
    phases = torch.stack([grad[i::2, j::2].mean() for i in range(2) for j in range(2)])
    spread = (phases.max() - phases.min()) / grad.abs().mean()
    assert (spread < 1e-5) if antialias else (spread > 0.05)
