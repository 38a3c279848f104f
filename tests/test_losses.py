"""Tests of srgan_plugin.losses: VGG19 weight policy, VGG content loss, TV loss and WGAN-GP gradient penalty."""
from __future__ import annotations

import logging
import os
import urllib.error

import pytest
import torch
import torchvision
from torch import nn

import srgan_plugin  # noqa: F401  (registers the losses)
from basicsr.losses import build_loss
from basicsr.utils.registry import LOSS_REGISTRY
from srgan_plugin.losses import vgg as vgg_module
from srgan_plugin.losses.vgg import (VGG19_FILENAME, VGG19Features, VGGWeightsError, VGGWeightsMismatchError,
                                     check_vgg19_weights, vgg19_cache_path, vgg19_weights_available)

SHAPE = (2, 3, 32, 32)


@pytest.fixture(scope='module')
def content_loss_22() -> nn.Module:
    torch.manual_seed(0)
    return build_loss({'type': 'VGGContentLoss', 'layer': 'vgg22', 'vgg_weights': 'random'})


@pytest.fixture(scope='module')
def torchvision_state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return torchvision.models.vgg19(weights=None).state_dict()


@pytest.fixture(scope='module')
def full_weights_file(tmp_path_factory, torchvision_state_dict) -> str:
    """torchvision's full vgg19 state dict (features.* and classifier.*), as in its cache file; saved once."""
    path = tmp_path_factory.mktemp('weights') / VGG19_FILENAME
    torch.save(torchvision_state_dict, path)
    return str(path)


def _features_only(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len('features.'):]: v for k, v in state_dict.items() if k.startswith('features.')}


@pytest.fixture
def offline_empty_hub(monkeypatch: pytest.MonkeyPatch, tmp_path) -> list[str]:
    """torch.hub's dir is an empty tmp_path and any download raises; returns the URLs a download was tried for."""
    tried: list[str] = []

    def no_download(url: str, *args, **kwargs) -> None:
        tried.append(url)
        raise urllib.error.URLError('offline (test)')

    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_download)
    return tried


def _images(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(SHAPE, generator=generator), torch.rand(SHAPE, generator=generator)


# ---------------------------------------------------------------- registration


@pytest.mark.parametrize('name', ['VGGContentLoss', 'TVLoss', 'GradientPenaltyLoss'])
def test_registered(name: str) -> None:
    assert name in LOSS_REGISTRY


def test_build_tv_and_gp_through_build_loss() -> None:
    tv = build_loss({'type': 'TVLoss', 'loss_weight': 0.5, 'p': 1})
    gp = build_loss({'type': 'GradientPenaltyLoss', 'loss_weight': 5.0})
    assert (tv.loss_weight, tv.p, gp.loss_weight) == (0.5, 1, 5.0)


# ---------------------------------------------------------------- VGG content loss


def test_content_loss_gradient_reaches_input_not_vgg(content_loss_22: nn.Module) -> None:
    x, gt = _images()
    x.requires_grad_(True)
    loss, style = content_loss_22(x, gt)
    assert style is None and loss.dim() == 0
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(param.requires_grad for param in content_loss_22.parameters())
    assert all(param.grad is None for param in content_loss_22.parameters())


def test_content_loss_zero_iff_equal(content_loss_22: nn.Module) -> None:
    x, gt = _images()
    assert content_loss_22(x, x.clone())[0].item() == 0
    assert content_loss_22(x, gt)[0].item() > 0


def test_feature_scale_scales_loss_by_its_square(content_loss_22: nn.Module) -> None:
    x, gt = _images()
    old_scale = content_loss_22.feature_scale
    try:
        content_loss_22.feature_scale = 1.0
        unscaled = content_loss_22(x, gt)[0]
        content_loss_22.feature_scale = 1 / 12.75
        scaled = content_loss_22(x, gt)[0]
    finally:
        content_loss_22.feature_scale = old_scale
    torch.testing.assert_close(scaled, unscaled / 12.75**2)


def test_loss_weight_and_defaults() -> None:
    loss = build_loss({'type': 'VGGContentLoss', 'layer': 'relu1_1', 'vgg_weights': 'random', 'loss_weight': 3.0})
    assert loss.feature_scale == 1.0 and loss.criterion == 'mse'
    x, gt = _images()
    base = loss(x, gt)[0]
    loss.loss_weight = 1.0
    torch.testing.assert_close(base, loss(x, gt)[0] * 3.0)


def test_vgg22_truncates_after_relu2_2(content_loss_22: nn.Module) -> None:
    features = content_loss_22.vgg.features
    assert list(dict(features.named_children()))[-1] == 'relu2_2'
    assert len(features) == 9 and isinstance(features[-1], nn.ReLU)
    assert content_loss_22.vgg.out_channels == 128
    assert content_loss_22.vgg(_images()[0]).shape == (2, 128, 16, 16)


def test_vgg54_is_default_and_ends_at_relu5_4() -> None:
    features = VGG19Features(layer='vgg54', weights='random').features
    assert list(dict(features.named_children()))[-1] == 'relu5_4' and len(features) == 36


def test_unknown_layer_and_criterion_rejected() -> None:
    with pytest.raises(ValueError, match='vgg22'):
        VGG19Features(layer='relu9_9', weights='random')
    with pytest.raises(ValueError, match='criterion'):
        build_loss({'type': 'VGGContentLoss', 'vgg_weights': 'random', 'criterion': 'fro'})


def test_l1_criterion(content_loss_22: nn.Module) -> None:
    l1 = build_loss({'type': 'VGGContentLoss', 'layer': 'vgg22', 'vgg_weights': 'random', 'criterion': 'l1'})
    l1.vgg.load_state_dict(content_loss_22.vgg.state_dict())
    x, gt = _images()
    scale = l1.feature_scale
    expected = (l1.vgg(x) * scale - l1.vgg(gt) * scale).abs().mean()
    torch.testing.assert_close(l1(x, gt)[0], expected)


def test_vgg_stays_in_eval_mode(content_loss_22: nn.Module) -> None:
    content_loss_22.train()
    assert not content_loss_22.vgg.training
    assert not any(module.training for module in content_loss_22.vgg.modules())


def test_range_norm_maps_minus_one_one_to_zero_one(content_loss_22: nn.Module) -> None:
    vgg = content_loss_22.vgg
    ranged = VGG19Features(layer='vgg22', weights='random', range_norm=True)
    ranged.load_state_dict(vgg.state_dict())
    x = _images()[0]
    torch.testing.assert_close(ranged(x * 2 - 1), vgg(x))


# ---------------------------------------------------------------- weight policy


@pytest.mark.slow
def test_full_and_features_only_state_dicts_load_identically(tmp_path, torchvision_state_dict,
                                                             full_weights_file) -> None:
    features_path = tmp_path / 'features.pth'
    torch.save(_features_only(torchvision_state_dict), features_path)
    full = VGG19Features(layer='vgg22', weights=full_weights_file)
    only = VGG19Features(layer='vgg22', weights=str(features_path))
    torch.testing.assert_close(full.features.conv1_1.weight, torchvision_state_dict['features.0.weight'])
    x = _images()[0]
    assert torch.equal(full(x), only(x))


def test_mismatched_state_dict_raises(tmp_path, torchvision_state_dict) -> None:
    path = tmp_path / 'incomplete.pth'
    torch.save({k: v for k, v in _features_only(torchvision_state_dict).items() if k != '34.weight'}, path)
    with pytest.raises(VGGWeightsMismatchError, match='34.weight'):
        VGG19Features(weights=str(path))


def test_non_state_dict_file_raises(tmp_path) -> None:
    path = tmp_path / 'garbage.pth'
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(VGGWeightsMismatchError, match='garbage.pth'):
        VGG19Features(weights=str(path))


def _assert_helpful(error: VGGWeightsError) -> None:
    message = str(error)
    assert VGG19_FILENAME in message and 'vgg_weights' in message
    assert vgg19_cache_path() in message
    assert '\n' not in message


def test_missing_file_raises_one_line_error(tmp_path) -> None:
    missing = str(tmp_path / 'nowhere' / VGG19_FILENAME)
    with pytest.raises(VGGWeightsError) as info:
        build_loss({'type': 'VGGContentLoss', 'vgg_weights': missing})
    assert isinstance(info.value, FileNotFoundError) and missing in str(info.value)
    _assert_helpful(info.value)
    assert not vgg19_weights_available(missing)
    with pytest.raises(VGGWeightsError):
        check_vgg19_weights(missing)


def test_unset_weights_offline_raises_without_network(offline_empty_hub: list[str]) -> None:
    assert not vgg19_weights_available(None)
    with pytest.raises(VGGWeightsError) as info:
        build_loss({'type': 'VGGContentLoss'})
    _assert_helpful(info.value)
    assert 'offline (test)' in str(info.value)
    assert offline_empty_hub == [vgg_module.VGG19_URL]


def test_unset_weights_uses_torchvision_cache(offline_empty_hub, torchvision_state_dict, full_weights_file) -> None:
    cache = vgg19_cache_path()  # under the patched, empty hub dir
    os.makedirs(os.path.dirname(cache))
    os.symlink(full_weights_file, cache)
    assert vgg19_weights_available(None)
    check_vgg19_weights(None)
    vgg = VGG19Features(layer='conv1_1')
    torch.testing.assert_close(vgg.features.conv1_1.weight, torchvision_state_dict['features.0.weight'])
    assert offline_empty_hub == []


def test_random_weights_log_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger('basicsr')  # BasicSR's root logger does not propagate; listen on it directly
    logger.addHandler(caplog.handler)
    try:
        VGG19Features(layer='relu1_1', weights='random')
    finally:
        logger.removeHandler(caplog.handler)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert any('RANDOM' in record.getMessage() for record in warnings)
    assert vgg19_weights_available('random')


# ---------------------------------------------------------------- TV loss


def test_tv_zero_on_constant_image() -> None:
    tv = build_loss({'type': 'TVLoss'})
    assert tv(torch.full(SHAPE, 0.3)).item() == 0


@pytest.mark.parametrize('p', [1, 2])
def test_tv_matches_hand_computation(p: int) -> None:
    x = torch.tensor([[[[0., 1., 3.], [2., 2., 0.]]]])  # 1x1x2x3
    vertical = [2., 1., -3.]  # row 1 - row 0
    horizontal = [1., 2., 0., -2.]  # within rows
    expected = sum(abs(d)**p for d in vertical) / 3 + sum(abs(d)**p for d in horizontal) / 4
    tv = build_loss({'type': 'TVLoss', 'p': p, 'loss_weight': 2.0})
    assert tv(x).item() == pytest.approx(2.0 * expected)


def test_tv_rejects_bad_p_and_handles_single_row() -> None:
    with pytest.raises(ValueError):
        build_loss({'type': 'TVLoss', 'p': 3})
    x = torch.tensor([[[[0., 1., 3.]]]])
    assert build_loss({'type': 'TVLoss', 'p': 1})(x).item() == pytest.approx(1.5)


# ---------------------------------------------------------------- grid loss


def test_grid_loss_reads_the_checkerboard_of_an_error_and_ignores_the_rest() -> None:
    """A texture repeating every 4 px, of RMS a, gives a**2 (Parseval); smooth or random error hardly counts."""
    grid = build_loss({'type': 'GridLoss', 'period': 4, 'spread': 0})
    torch.manual_seed(0)
    cell = torch.randn(4, 4)
    cell = (cell - cell.mean()) / (cell - cell.mean()).square().mean().sqrt()
    gt = torch.rand(2, 3, 96, 96)
    checkerboard = 0.01 * cell.repeat(24, 24)
    assert grid(gt + checkerboard, gt).item() == pytest.approx(0.01**2, rel=1e-4)
    noise = 0.01 * torch.randn(2, 3, 96, 96)
    assert grid(gt + noise, gt).item() < 0.01 * noise.square().mean().item()  # 15 of 9,216 frequencies
    ramp = torch.linspace(0, 0.1, 96).expand(2, 3, 96, 96)
    assert grid(gt + ramp, gt).item() < 1e-3 * ramp.square().mean().item()


def test_grid_loss_spread_counts_the_neighbouring_bins_and_bad_values_are_refused() -> None:
    from srgan_plugin.losses.grid_loss import grid_frequency_mask

    assert int(grid_frequency_mask(96, 96, 4, 0).sum()) == 15 and int(grid_frequency_mask(96, 96, 4, 1).sum()) == 135
    out, gt = torch.rand(1, 3, 32, 32, requires_grad=True), torch.rand(1, 3, 32, 32)
    loss = build_loss({'type': 'GridLoss', 'loss_weight': 2.0})(out, gt)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(out.grad).all()
    for bad, message in (({'period': 1}, 'period must be at least 2'), ({'spread': -1}, 'spread must be 0 or more')):
        with pytest.raises(ValueError, match=message):
            build_loss({'type': 'GridLoss', **bad})
    with pytest.raises(ValueError, match='must be multiples of period 4'):
        build_loss({'type': 'GridLoss'})(torch.rand(1, 3, 30, 32), torch.rand(1, 3, 30, 32))


# ---------------------------------------------------------------- gradient penalty


class _LinearCritic(nn.Module):
    """D(x) = sum(w * x) per sample: its input gradient is w everywhere."""

    def __init__(self, norm: float) -> None:
        super().__init__()
        weight = torch.randn(SHAPE[1:], generator=torch.Generator().manual_seed(1))
        self.weight = nn.Parameter(weight / weight.norm() * norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weight).flatten(1).sum(1, keepdim=True)


def test_gradient_penalty_zero_for_unit_gradient_critic() -> None:
    gp = build_loss({'type': 'GradientPenaltyLoss'})
    real, fake = _images()
    assert gp(_LinearCritic(1.0), real, fake).item() == pytest.approx(0, abs=1e-8)


def test_gradient_penalty_value_and_gradient_for_other_critics() -> None:
    gp = build_loss({'type': 'GradientPenaltyLoss', 'loss_weight': 10.0})
    real, fake = _images()
    critic = _LinearCritic(3.0)
    penalty = gp(critic, real, fake.requires_grad_(True))
    assert penalty.item() == pytest.approx(10.0 * (3.0 - 1)**2, rel=1e-5)
    penalty.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0  # create_graph=True
    assert fake.grad is None  # no gradient to the generator


def test_gradient_penalty_positive_for_nonlinear_critic() -> None:
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Flatten(), nn.LazyLinear(1))
    real, fake = _images()
    critic(real)  # materialise the lazy layer
    assert build_loss({'type': 'GradientPenaltyLoss'})(critic, real, fake).item() > 0


def test_gradient_penalty_through_ddp(tmp_path) -> None:
    """A DistributedDataParallel critic (gloo, one CPU process) gives the same penalty and gets parameter grads."""
    dist = torch.distributed
    if not dist.is_available() or dist.is_initialized():
        pytest.skip('torch.distributed unavailable or already initialised')
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        critic = nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 30 * 30, 1))
        wrapped = nn.parallel.DistributedDataParallel(critic)
        gp, (real, fake) = build_loss({'type': 'GradientPenaltyLoss'}), _images()
        torch.manual_seed(1)
        expected = gp(critic, real, fake).item()
        torch.manual_seed(1)
        penalty = gp(wrapped, real, fake)
        (wrapped(fake).mean() - wrapped(real).mean() + penalty).backward()
    finally:
        dist.destroy_process_group()
    assert penalty.item() == pytest.approx(expected, rel=1e-6) and penalty.item() > 0
    assert critic[0].weight.grad is not None and critic[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize('norm', ['spectral', 'none'])
def test_gradient_penalty_through_a_compiled_discriminator(norm: str) -> None:
    """``train.compile`` compiles the discriminator in place; a compiled graph cannot be differentiated twice, so the
    penalty runs it eagerly and gives the eager value."""
    from srgan_plugin.archs import SRGANDiscriminator

    torch.manual_seed(0)
    critic = SRGANDiscriminator(num_feat=8, input_size=32, num_dense=16, norm=norm)
    critic.compile(backend='aot_eager')
    gp, real, fake = build_loss({'type': 'GradientPenaltyLoss'}), torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    torch.manual_seed(1)
    penalty = gp(critic, real, fake)
    penalty.backward()
    first_weight = next(p for name, p in critic.named_parameters()
                        if name.startswith('features.0.') and 'weight' in name)
    assert penalty.item() > 0 and first_weight.grad.abs().sum() > 0
    critic.eval()  # same power-iteration vectors for the eager reference
    torch.manual_seed(1)
    with torch.compiler.set_stance('force_eager'):
        assert gp(critic, real, fake).item() == pytest.approx(penalty.item(), rel=1e-5)
