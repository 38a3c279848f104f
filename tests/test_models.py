"""GAN model and phase-1 model: one optimisation step, log keys, EMA with BatchNorm buffers, options of the step."""
from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from basicsr.models import build_model

from conftest import load_options

G_KEYS = {'l_g_pix', 'l_g_gan'}
D_KEYS = {'l_d_real', 'l_d_fake', 'out_d_real', 'out_d_fake'}


def model_options(phase: int, **train: Any) -> dict[str, Any]:
    opt = load_options('train_srresnet_x4.yml' if phase == 1 else 'train_srgan_x4.yml')
    opt.update(num_gpu=0, dist=False, rank=0, world_size=1, is_train=True, auto_resume=False)
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['path'] = {'pretrain_network_g': None}
    if phase == 2:
        opt['network_d'].update(num_feat=8, input_size=32, num_dense=16)
        opt['train'].pop('perceptual_opt')
        opt['train']['pixel_opt'] = {'type': 'MSELoss', 'loss_weight': 1.0}
    opt['train'].update(train)
    return opt


def feed(model, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    model.feed_data({
        'lq': torch.rand(2, 3, 8, 8, generator=generator),
        'gt': torch.rand(2, 3, 32, 32, generator=generator)
    })


def snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def changed(before: dict[str, torch.Tensor], net: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in net.state_dict().items() if v.is_floating_point())


def test_gan_step_updates_both_networks_and_logs_basicsr_keys():
    model = build_model(model_options(2))
    g0, d0 = snapshot(model.net_g), snapshot(model.net_d)
    feed(model)
    model.optimize_parameters(1)
    assert changed(g0, model.net_g) and changed(d0, model.net_d)
    assert set(model.get_current_log()) == G_KEYS | D_KEYS
    assert all(isinstance(v, float) for v in model.get_current_log().values())


def test_gan_step_with_perceptual_loss_logs_percep():
    opt = model_options(2)
    opt['train']['perceptual_opt'] = {'type': 'VGGContentLoss', 'layer': 'vgg22', 'vgg_weights': 'random'}
    model = build_model(opt)
    feed(model)
    model.optimize_parameters(1)
    assert 'l_g_percep' in model.get_current_log()


def two_pass_step(model, current_iter: int) -> None:
    """BasicSR's SRGANModel order, without the plugin's shared pass: D runs on the fakes once for G's step (frozen)
    and once more, on the detached fakes, for its own step."""
    output = model.net_g(model.lq)
    for p in model.net_d.parameters():
        p.requires_grad_(False)
    model.optimizer_g.zero_grad()
    (model.cri_pix(output, model.gt) + model.cri_gan(model.net_d(output), True, is_disc=False)).backward()
    model.optimizer_g.step()
    for p in model.net_d.parameters():
        p.requires_grad_(True)
    model.optimizer_d.zero_grad()
    real, fake = model.net_d(model.gt), model.net_d(output.detach())
    (model.cri_gan(real, True, is_disc=True) + model.cri_gan(fake, False, is_disc=True)).backward()
    model.optimizer_d.step()


def test_shared_discriminator_pass_gives_the_two_pass_step():
    """One D pass over the fakes serves both steps and gives bit-identical weights to running it twice (BasicSR's
    way): the same kernels see the same inputs. Only D's running statistics, unused in training, differ."""
    shared, reference = build_model(model_options(2)), build_model(model_options(2))
    reference.net_g.load_state_dict(shared.net_g.state_dict())
    reference.net_d.load_state_dict(shared.net_d.state_dict())
    for it in range(1, 4):
        feed(shared, seed=it)
        feed(reference, seed=it)
        shared.optimize_parameters(it)
        two_pass_step(reference, it)
    for net in ('net_g', 'net_d'):
        ours, theirs = dict(getattr(shared, net).named_parameters()), dict(getattr(reference, net).named_parameters())
        differing = [k for k in ours if not torch.equal(ours[k], theirs[k])]
        assert not differing, f'{net}: {differing}'
    g_buffers = dict(reference.net_g.named_buffers())
    assert all(torch.equal(v, g_buffers[k]) for k, v in shared.net_g.named_buffers())


def test_generator_step_gives_no_discriminator_gradient():
    model = build_model(model_options(2))
    feed(model)
    log: dict[str, torch.Tensor] = {}
    output = model.net_g(model.lq)
    loss = model.generator_loss(output, model.gt, model.net_d(output), log)
    assert model.guarded_step(model.optimizer_g, loss, 'generator', 1)
    assert all(p.grad is None for p in model.net_d.parameters())
    assert all(p.grad is not None for p in model.net_g.parameters())


def test_net_d_init_iters_skips_generator_update():
    model = build_model(model_options(2, net_d_init_iters=5))
    g0, d0 = snapshot(model.net_g), snapshot(model.net_d)
    feed(model)
    model.optimize_parameters(1)
    params_g = {k for k, _ in model.net_g.named_parameters()}
    assert all(torch.equal(g0[k], v) for k, v in model.net_g.state_dict().items() if k in params_g)
    assert changed(d0, model.net_d)
    assert set(model.get_current_log()) == D_KEYS


def wgan_gp_options(norm: str, **train: Any) -> dict[str, Any]:
    """WGAN-GP with a critic without BatchNorm (``network_d.norm``), as the options check requires."""
    opt = model_options(
        2,
        gan_opt={
            'type': 'GANLoss',
            'gan_type': 'wgan',
            'loss_weight': 1e-3
        },
        gp_opt={
            'type': 'GradientPenaltyLoss',
            'loss_weight': 10.0
        },
        **train)
    opt['network_d']['norm'] = norm
    return opt


def spectral_vectors(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_buffers() if k.endswith(('._u', '._v'))}


@pytest.mark.parametrize('norm', ['none', 'spectral'])
def test_wgan_gp_step_with_a_critic_without_batchnorm(norm: str):
    model = build_model(wgan_gp_options(norm))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.net_d.modules())
    g0, d0, vectors = snapshot(model.net_g), snapshot(model.net_d), spectral_vectors(model.net_d)
    assert bool(vectors) == (norm == 'spectral')
    for it in (1, 2):
        feed(model, seed=it)
        model.optimize_parameters(it)
        log = model.get_current_log()
        assert set(log) == G_KEYS | D_KEYS | {'l_d_gp'}
        assert log['l_d_gp'] >= 0 and all(math.isfinite(v) for v in log.values())
    assert changed(g0, model.net_g) and changed(d0, model.net_d)
    moved = [k for k, v in spectral_vectors(model.net_d).items() if not torch.equal(v, vectors[k])]
    assert ('features.0.parametrizations.weight.0._u' in moved) == (norm == 'spectral')  # power iterations


@pytest.mark.parametrize('norm', ['batch', 'spectral'])
def test_skipped_steps_restore_the_discriminators_buffers(norm: str):
    """A non-finite batch skips both steps and leaves D exactly as it was: BatchNorm statistics, and the spectral
    norm's power-iteration vectors (which every forward pass moves, whatever the data)."""
    opt = wgan_gp_options(norm) if norm == 'spectral' else model_options(2)
    model = build_model(opt)
    g0, d0 = snapshot(model.net_g), snapshot(model.net_d)
    feed(model)
    model.gt[0, 0, 0, 0] = float('nan')
    model.optimize_parameters(1)
    assert not changed(g0, model.net_g) and not changed(d0, model.net_d)
    assert model._nonfinite_counts == {'generator': 1, 'discriminator': 1}


def test_spectral_discriminator_checkpoint_loads_into_a_new_model(tmp_path):
    opt = wgan_gp_options('spectral')
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path))
    model = build_model(copy.deepcopy(opt))
    feed(model)
    model.optimize_parameters(1)
    model.save(epoch=0, current_iter=1)
    saved = torch.load(tmp_path / 'net_d_1.pth', weights_only=True)['params']
    assert 'features.0.parametrizations.weight.0._u' in saved
    opt['path']['pretrain_network_d'] = str(tmp_path / 'net_d_1.pth')
    loaded = build_model(opt).net_d.state_dict()
    assert list(loaded) == list(saved) and all(torch.equal(loaded[k], v) for k, v in saved.items())


@pytest.mark.parametrize('phase', [1, 2])
def test_ema_averages_batchnorm_buffers(phase: int):
    """BasicSR's model_ema averages parameters only; ours also averages running statistics into net_g_ema (and
    copies the integer num_batches_tracked)."""
    model = build_model(model_options(phase, ema_decay=0.9))
    ema_before = snapshot(model.net_g_ema)
    for it in range(1, 4):
        feed(model, seed=it)
        model.optimize_parameters(it)
    live, ema = model.net_g.state_dict(), model.net_g_ema.state_dict()
    buffers = [k for k, _ in model.net_g.named_buffers()]
    floating = [k for k in buffers if live[k].is_floating_point()]
    assert floating and all(not torch.equal(ema[k], ema_before[k]) for k in floating)  # averaged ...
    assert all(not torch.equal(ema[k], live[k]) for k in floating)  # ... not copied
    assert all(torch.equal(live[k], ema[k]) for k in buffers if k not in floating)
    weight = 'conv_first.weight'
    assert not torch.equal(ema[weight], ema_before[weight]) and not torch.equal(ema[weight], live[weight])


@pytest.mark.parametrize('phase', [1, 2])
def test_bn_freeze_iter_trains_the_generator_with_frozen_running_statistics(phase: int):
    """Before train.bn_freeze_iter the running statistics move with every step; from it on they stay, the generator's
    BatchNorm layers use them in training (eval mode) even after validation's net_g.train(), and the weights still
    learn. The discriminator's BatchNorm is not affected."""
    model = build_model(model_options(phase, bn_freeze_iter=3))
    stats = 'bn_body.running_mean'
    for it in (1, 2, 3, 4):
        before = snapshot(model.net_g)
        model.net_g.train()  # what validation leaves behind
        feed(model, seed=it)
        model.optimize_parameters(it)
        frozen = it >= 3
        assert torch.equal(model.net_g.state_dict()[stats], before[stats]) == frozen, it
        assert not torch.equal(model.net_g.state_dict()['bn_body.weight'], before['bn_body.weight'])
        assert all(not m.training for m in model.net_g.modules() if isinstance(m, torch.nn.BatchNorm2d)) == frozen
    if phase == 2:
        assert all(m.training for m in model.net_d.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('step, expected', [(None, 0.999), (0, 0.1), (1, 2 / 11), (90, 0.91), (8990, 0.999),
                                            (10**6, 0.999)])
def test_ema_decay_warms_up_to_the_option(step, expected):
    from srgan_plugin.models.ema import ema_decay_at
    assert ema_decay_at(0.999, step) == pytest.approx(expected)


def test_ema_step_uses_the_warmed_up_decay():
    """At iteration 1 the EMA moves 9/11 of the way to the live network (decay 2/11), not 1/1000."""
    model = build_model(model_options(1, ema_decay=0.999))
    ema_before = snapshot(model.net_g_ema)
    feed(model)
    model.optimize_parameters(1)
    live, ema = model.net_g.state_dict()['conv_first.weight'], model.net_g_ema.state_dict()['conv_first.weight']
    expected = ema_before['conv_first.weight'] * (2 / 11) + live * (9 / 11)
    assert torch.allclose(ema, expected, atol=1e-7)


@pytest.mark.parametrize('phase, keys', [(1, {'l_pix', 'l_tv'}), (2, G_KEYS | D_KEYS | {'l_g_tv'})])
def test_tv_opt_adds_a_logged_term_on_the_output(phase: int, keys: set[str]):
    model = build_model(model_options(phase, tv_opt={'type': 'TVLoss', 'loss_weight': 2.0, 'p': 1}))
    feed(model)
    model.optimize_parameters(1)
    log = model.get_current_log()
    assert set(log) == keys
    tv = log['l_tv' if phase == 1 else 'l_g_tv']
    with torch.no_grad():
        output = model.output
        expected = 2.0 * (output.diff(dim=-2).abs().mean() + output.diff(dim=-1).abs().mean())
    assert tv == pytest.approx(expected.item())


def test_tv_term_is_added_to_the_generator_loss():
    model = build_model(model_options(1, tv_opt={'type': 'TVLoss'}))
    feed(model)
    log: dict[str, torch.Tensor] = {}
    output = model.net_g(model.lq)
    total = model.content_loss(output, model.gt, log, prefix='l_')
    assert set(log) == {'l_pix', 'l_tv'} and torch.equal(total, log['l_pix'] + log['l_tv'])


def test_phase1_step_logs_l_pix():
    model = build_model(model_options(1))
    g0 = snapshot(model.net_g)
    feed(model)
    model.optimize_parameters(1)
    assert changed(g0, model.net_g)
    assert set(model.get_current_log()) == {'l_pix'}


def test_model_runs_on_cpu_when_num_gpu_is_zero():
    model = build_model(model_options(2))
    assert model.device.type == 'cpu'
    assert all(p.device.type == 'cpu' for p in model.net_d.parameters())


def test_save_writes_g_ema_d_and_state(tmp_path):
    opt = model_options(2, ema_decay=0.5)
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path))
    model = build_model(copy.deepcopy(opt))
    feed(model)
    model.optimize_parameters(1)
    model.save(epoch=0, current_iter=1)
    saved = torch.load(tmp_path / 'net_g_1.pth', weights_only=True)
    assert set(saved) == {'params', 'params_ema'}
    assert (tmp_path / 'net_d_1.pth').is_file() and (tmp_path / '1.state').is_file()


def test_ema_average_is_basicsrs_arithmetic_bit_for_bit():
    from basicsr.models.base_model import BaseModel
    ours, theirs = build_model(model_options(1, ema_decay=0.9)), build_model(model_options(1, ema_decay=0.9))
    live, ema = snapshot(ours.net_g), snapshot(ours.net_g_ema)
    for model in (ours, theirs):
        model.net_g.load_state_dict(live)
        model.net_g_ema.load_state_dict(ema)
        with torch.no_grad():
            for p in model.net_g.parameters():
                p.add_(0.01)
    ours.model_ema(0.9)
    BaseModel.model_ema(theirs, 0.9)
    theirs_params = dict(theirs.net_g_ema.named_parameters())
    assert all(torch.equal(p, theirs_params[k]) for k, p in ours.net_g_ema.named_parameters())
    assert not torch.equal(ours.net_g_ema.conv_first.weight, ours.net_g.conv_first.weight)


@pytest.mark.slow
def test_gan_step_logs_the_content_to_adversarial_balance_at_the_first_iterations(monkeypatch):
    from srgan_plugin.models import srgan_model
    lines: list[str] = []

    class Logger:

        def info(self, message: str) -> None:
            lines.append(message)

    monkeypatch.setattr(srgan_model, 'get_root_logger', Logger)
    model = build_model(model_options(2))
    for it in (1, 2, 10):
        feed(model, seed=it)
        model.optimize_parameters(it)
    assert [line.split(':')[0] for line in lines] == [f'Generator loss balance at iter {it}' for it in (1, 10)]
    log = model.get_current_log()
    expected = f'content {log["l_g_pix"]:.3e} (l_g_pix {log["l_g_pix"]:.3e}) vs adversarial {log["l_g_gan"]:.3e}'
    assert expected in lines[-1] and f'ratio {log["l_g_pix"] / log["l_g_gan"]:.3g}' in lines[-1]


@pytest.mark.parametrize('phase, key', [(1, 'l_grid'), (2, 'l_g_grid')])
def test_grid_opt_adds_a_logged_term(phase: int, key: str):
    model = build_model(model_options(phase, grid_opt={'type': 'GridLoss', 'loss_weight': 1000.0, 'period': 4}))
    feed(model)
    model.optimize_parameters(1)
    assert key in model.get_current_log() and model.get_current_log()[key] > 0
