"""Speed options of the training step (``srgan_plugin.models.performance``): they match fp32 eager within stated
tolerances, fp16 keeps one loss scaler per optimizer, and the scalers survive a resume."""
from __future__ import annotations

import copy
import shutil
from typing import Any

import pytest
import torch
from basicsr.models import build_model

from test_models import model_options

# Stated tolerances of one step against fp32 eager, as (generator side, discriminator side) pairs. bf16 keeps 8
# significant bits, fp16 11. The generator's loss and gradient are dominated by the pixel loss and agree closely. The
# discriminator's logit (and so l_d_*, l_g_gan and D's gradient) passes 8 convolution + BatchNorm layers in reduced
# precision; at this batch of 4 with 4x4 final maps, over 16 random initialisations, bf16 moved those losses by up to
# 1.8 % and D's gradient by up to 12 % in norm, cosine down to 0.90 (fp16: 0.3 %, 2 %, 0.992). Limits below leave
# margin over those measurements; the test itself uses one fixed initialisation.
Tolerance = dict[str, tuple[float, float]]
TOLERANCE: dict[str, Tolerance] = {
    'bf16': {
        'loss': (1e-2, 5e-2),
        'cosine': (0.999, 0.85),
        'norm': (1e-2, 0.2)
    },
    'fp16': {
        'loss': (2e-3, 1e-2),
        'cosine': (0.9995, 0.98),
        'norm': (5e-3, 0.05)
    },
    'fp32': {
        'loss': (1e-5, 1e-5),
        'cosine': (0.99999, 0.9999),
        'norm': (1e-4, 5e-4)
    },  # other memory format; D's gradient norm moved by 1.6e-4 on an AVX2-only CPU (other NHWC kernels)
}
D_SIDE_LOSSES = ('l_d_', 'l_g_gan')
BATCH, CROP = 4, 64


def feed(model, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    model.feed_data({
        'lq': torch.rand(BATCH, 3, CROP // 4, CROP // 4, generator=generator),
        'gt': torch.rand(BATCH, 3, CROP, CROP, generator=generator)
    })


def small_options(phase: int, **train: Any) -> dict[str, Any]:
    opt = model_options(phase, **train)
    opt['network_g'].update(num_feat=16, num_block=2)
    if phase == 2:
        opt['network_d'].update(num_feat=16, input_size=CROP)
        opt['train']['perceptual_opt'] = {'type': 'VGGContentLoss', 'layer': 'vgg22', 'vgg_weights': 'random'}
    return opt


SAFE_SCALE = 2.0**10  # an fp16 loss scale that does not overflow on these batches (overflows: tested below)


def fp16_model(opt: dict[str, Any]):
    model = build_model(opt)
    for name in ('generator', 'discriminator'):
        model.loss_scaler(name)._init_scale = SAFE_SCALE
    return model


def pair(phase: int, **speed: Any):
    """An fp32 eager NCHW model and one with ``speed`` options (NCHW unless given), with the same (fixed) weights."""
    torch.manual_seed(0)
    reference = build_model(small_options(phase, channels_last=False))
    speed = {'channels_last': False, **speed}
    fast = (fp16_model if speed.get('amp') == 'fp16' else build_model)(small_options(phase, **speed))
    for name in ('net_g', 'net_d', 'net_g_ema'):
        if hasattr(reference, name):
            getattr(fast, name).load_state_dict(getattr(reference, name).state_dict())
    vgg = getattr(reference, 'cri_perceptual', None)
    if vgg is not None:
        fast.cri_perceptual.load_state_dict(vgg.state_dict())
    return reference, fast


def grads(net: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten().float() for p in net.parameters() if p.grad is not None])


def assert_close_step(reference, fast, precision: str) -> None:
    tolerance = TOLERANCE[precision]
    feed(reference)
    feed(fast)
    reference.optimize_parameters(1)
    fast.optimize_parameters(1)
    ref_log, fast_log = reference.get_current_log(), fast.get_current_log()
    assert set(ref_log) == set(fast_log)
    for key in ref_log:
        if key.startswith('l_'):
            rel = tolerance['loss'][key.startswith(D_SIDE_LOSSES)]
            assert fast_log[key] == pytest.approx(ref_log[key], rel=rel, abs=1e-6), key
    for side, name in enumerate(('net_g', 'net_d')):
        if hasattr(reference, name):
            a, b = grads(getattr(reference, name)), grads(getattr(fast, name))
            assert torch.nn.functional.cosine_similarity(a, b, dim=0).item() >= tolerance['cosine'][side], name
            assert b.norm().item() == pytest.approx(a.norm().item(), rel=tolerance['norm'][side]), name


@pytest.mark.parametrize('phase', [1, 2])
@pytest.mark.parametrize('amp', ['bf16', 'fp16'])
@pytest.mark.slow
def test_mixed_precision_step_matches_fp32(phase: int, amp: str):
    reference, fast = pair(phase, amp=amp)
    assert_close_step(reference, fast, amp)
    assert all(p.dtype == torch.float32 for p in fast.net_g.parameters())  # autocast: fp32 master weights


@pytest.mark.parametrize('phase', [1, 2])
@pytest.mark.slow
def test_channels_last_step_matches_fp32_and_checkpoints_load_anywhere(phase: int, tmp_path):
    reference, fast = pair(phase, channels_last=True)
    assert fast.net_g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    assert_close_step(reference, fast, 'fp32')
    fast.opt['path'].update(models=str(tmp_path), training_states=str(tmp_path))
    fast.save(epoch=0, current_iter=1)
    plain = build_model(small_options(phase))
    plain.load_network(plain.net_g, str(tmp_path / 'net_g_1.pth'), strict=True)


@pytest.mark.slow
def test_fp16_keeps_one_scaler_per_optimizer_updated_once_per_step():
    """The bug this guards against: one GradScaler shared by G and D, update() called twice per step."""
    opt = small_options(2, amp='fp16')
    opt['train'].pop('perceptual_opt')  # fp16 convolutions are slow on CPUs; the scalers do not need the VGG
    model = fp16_model(opt)
    for it in range(1, 4):
        feed(model, seed=it)
        model.optimize_parameters(it)
    scalers = model.loss_scalers
    assert set(scalers) == {'generator', 'discriminator'}
    assert scalers['generator'] is not scalers['discriminator']
    assert [scaler._growth_tracker.item() for scaler in scalers.values()] == [3, 3]


@pytest.mark.slow
def test_fp16_overflow_skips_the_step_lowers_the_scale_and_is_not_a_nonfinite_step():
    model = build_model(small_options(1, amp='fp16', max_nonfinite_steps=2))
    model.loss_scaler('generator')._init_scale = 2.0**100  # every scaled gradient overflows fp32
    before = copy.deepcopy(model.net_g.state_dict())
    for it in range(1, 4):  # three overflows in a row, more than max_nonfinite_steps: no NonFiniteLossError
        feed(model, seed=it)
        model.optimize_parameters(it)
    assert all(torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())  # buffers restored too
    assert model.loss_scaler('generator').get_scale() == 2.0**97


@pytest.mark.slow
def test_fp16_scales_are_saved_and_resumed(tmp_path):
    opt = small_options(2, amp='fp16')
    opt['path'].update(models=str(tmp_path), training_states=str(tmp_path))
    model = build_model(copy.deepcopy(opt))
    model.loss_scaler('generator')._init_scale = 2.0**100
    feed(model)
    model.optimize_parameters(1)
    model.save(epoch=0, current_iter=1)
    state = torch.load(tmp_path / '1.state', weights_only=True)
    assert set(state['loss_scalers']) == {'generator', 'discriminator'}
    resumed = build_model(copy.deepcopy(opt))
    resumed.resume_training(state)
    assert resumed.loss_scaler('generator').get_scale() == 2.0**99
    assert resumed.loss_scaler('discriminator').get_scale() == model.loss_scaler('discriminator').get_scale()


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which('g++') is None and shutil.which('c++') is None,
    reason='torch.compile on CPU (inductor) needs a C++ compiler (g++), not found')
def test_inductor_compiled_step_matches_eager():
    """``compile: true`` (inductor: generated C++ kernels) gives fp32 eager's step; a second step reuses the graphs."""
    reference, fast = pair(1, compile=True)
    assert_close_step(reference, fast, 'fp32')
    fast.optimize_parameters(2)
    assert set(fast.net_g.state_dict()) == set(reference.net_g.state_dict())  # no _orig_mod. prefix


@pytest.mark.slow
def test_compiled_gan_step_falls_back_to_two_passes():
    """The GAN step with G, D and the VGG compiled (``compile: {backend: aot_eager}``: TorchDynamo's graph capture and
    AOTAutograd's compiled backward, as with inductor, without generating C++) takes the two-pass form it uses for
    compiled networks, and matches eager."""
    reference, fast = pair(2, compile={'backend': 'aot_eager'})
    assert_close_step(reference, fast, 'fp32')
    fast.optimize_parameters(2)
    assert set(fast.net_d.state_dict()) == set(reference.net_d.state_dict())


def test_fused_adam_passes_through_basicsrs_optimizer_options():
    model = build_model(small_options(2, optim_g={'type': 'Adam', 'lr': 1e-4, 'fused': True}))
    assert model.optimizer_g.defaults['fused'] is True
    feed(model)
    model.optimize_parameters(1)
    assert model.get_current_log()['l_g_pix'] > 0


@pytest.mark.slow
def test_training_with_fp16_and_channels_last_resumes_bit_identically(tmp_path, paired_folder):
    """Through ``python -m basicsr.train``: a run stopped at iteration 10 and resumed with --auto_resume ends where an
    uninterrupted one does, to the bit (the fp16 loss scales are part of the training state)."""
    from training_helpers import differing_tensors, experiment, fault_options, train, write_run

    def options(total: int) -> dict[str, Any]:
        opt = fault_options(2, paired_folder, 'amp')
        opt['train'].update(amp='fp16', channels_last=True, total_iter=total)
        opt['val']['val_freq'] = 100
        return opt

    whole, parts = tmp_path / 'whole', tmp_path / 'parts'
    for cwd, totals in ((whole, [20]), (parts, [10, 20])):
        for total in totals:
            write_run(options(total), cwd)
            result = train(cwd, '--auto_resume')
            assert result.returncode == 0, result.stderr[-3000:]
    assert 'Resuming training from epoch' in result.stderr
    state = torch.load(experiment(parts, 'amp') / 'training_states' / '10.state', weights_only=True)
    assert set(state['loss_scalers']) == {'generator', 'discriminator'}
    for net in ('net_g', 'net_d'):
        assert differing_tensors(experiment(whole, 'amp'), experiment(parts, 'amp'), f'{net}_20.pth') == []


@pytest.mark.parametrize('native, warned', [(True, False), (False, True)])
def test_amp_on_a_cpu_without_native_support_warns(monkeypatch, native: bool, warned: bool):
    from srgan_plugin.models import performance
    messages: list[str] = []

    class Logger:

        def warning(self, message: str) -> None:
            messages.append(message)

    monkeypatch.setattr(performance, 'cpu_has_fast', lambda dtype: native)
    monkeypatch.setattr(performance, 'get_root_logger', Logger)
    build_model(model_options(1, amp='bf16'))
    assert bool(messages) == warned
    assert not messages or 'train.amp: bf16' in messages[0] and 'Remove train.amp' in messages[0]


def test_cpu_probe_answers_for_both_half_types():
    from srgan_plugin.models.performance import cpu_has_fast
    assert isinstance(cpu_has_fast(torch.bfloat16), bool) and isinstance(cpu_has_fast(torch.float16), bool)
