"""Option files and the boundary checks: names resolve, no collisions, one clear line for each bad input."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

from conftest import OPTIONS, load_options, tiny_training_options
from srgan_plugin.options_check import _type_entries, check_options

REGISTRIES = (ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY)
OPTION_FILES = sorted(str(p.relative_to(OPTIONS)) for p in OPTIONS.rglob('*.yml'))


@pytest.mark.parametrize('registry', REGISTRIES, ids=lambda r: r._name)
def test_plugin_names_are_class_names_and_do_not_shadow_basicsr(registry):
    ours = {name: obj for name, obj in registry if obj.__module__.startswith('srgan_plugin.')}
    basicsr = {name for name, obj in registry if obj.__module__.startswith('basicsr.')}
    assert all(name == obj.__name__ for name, obj in ours.items())  # the YAML key is the class name
    assert not set(ours) & basicsr


def test_plugin_registers_what_the_docs_promise():
    assert {'SRResNet', 'SRGANDiscriminator'} <= set(ARCH_REGISTRY.keys())
    assert {'VGGContentLoss', 'TVLoss', 'GradientPenaltyLoss'} <= set(LOSS_REGISTRY.keys())
    assert {'SRResNetModel', 'SRGANPluginModel'} <= set(MODEL_REGISTRY.keys())


@pytest.mark.parametrize('name', OPTION_FILES)
def test_every_type_in_options_resolves(name: str):
    entries = list(_type_entries(load_options(name)))
    assert entries and all(type_name in registry for _, type_name, registry in entries), entries


@pytest.mark.parametrize('name', [n for n in OPTION_FILES if 'train_srgan' in n])
def test_discriminator_input_size_matches_gt_size(name: str):
    opt = load_options(name)
    assert opt['network_d']['input_size'] == opt['datasets']['train']['gt_size']


def test_phase2_starts_from_the_checkpoint_phase1_writes():
    for phase1, phase2 in (('train_srresnet_x4.yml', 'train_srgan_x4.yml'), ('demo/train_srresnet_demo.yml',
                                                                             'demo/train_srgan_demo.yml')):
        name = load_options(phase1)['name']
        assert load_options(phase2)['path']['pretrain_network_g'] == f'experiments/{name}/models/net_g_latest.pth'


def test_paper_settings_in_the_x4_options():
    p1, p2 = load_options('train_srresnet_x4.yml'), load_options('train_srgan_x4.yml')
    for opt in (p1, p2):
        assert opt['datasets']['train']['gt_size'] == 96 and opt['datasets']['train']['batch_size_per_gpu'] == 16
        assert opt['train']['optim_g']['lr'] == 1e-4 and opt['train']['optim_g']['betas'][0] == 0.9
    assert p1['train']['total_iter'] == 1_000_000 and p1['train']['pixel_opt']['type'] == 'MSELoss'
    assert p2['train']['total_iter'] == 200_000
    assert p2['train']['scheduler'] == {'type': 'MultiStepLR', 'milestones': [100000], 'gamma': 0.1}
    assert p2['train']['perceptual_opt']['layer'] == 'vgg54' and p2['train']['gan_opt']['loss_weight'] == 1e-3


# --- bad input: one clear line ------------------------------------------------------------------------------------


@pytest.fixture
def good(paired_folder, tmp_path, monkeypatch) -> dict:
    monkeypatch.chdir(tmp_path)
    opt = tiny_training_options(2, paired_folder, 'check')
    opt['path']['pretrain_network_g'] = None
    opt['is_train'] = True
    return opt


def error_of(opt: dict) -> str:
    with pytest.raises(SystemExit) as info:
        check_options(opt, 'x.yml')
    message = str(info.value.code)
    assert message.startswith('error: x.yml: ') and '\n' not in message
    return message


def test_good_options_pass(good):
    check_options(good, 'x.yml')


def test_missing_dataroot(good):
    good['datasets']['train']['dataroot_gt'] = 'datasets/nowhere'
    assert 'datasets.train.dataroot_gt: datasets/nowhere (relative to' in error_of(good)


def test_lmdb_without_meta_info(good, tmp_path):
    lmdb = tmp_path / 'hr.lmdb'
    lmdb.mkdir()
    good['datasets']['train'].update(dataroot_gt=str(lmdb), io_backend={'type': 'lmdb'})
    assert 'has no meta_info.txt' in error_of(good)


def test_gt_size_not_multiple_of_scale(good):
    good['datasets']['train']['gt_size'] = 30
    assert 'datasets.train.gt_size: 30 is not a multiple of scale (4); write e.g. 28.' in error_of(good)


def test_discriminator_crop_mismatch(good):
    good['network_d']['input_size'] = 96
    assert 'network_d.input_size: 96 differs from datasets.train.gt_size (32)' in error_of(good)


def test_basicsr_discriminator_with_paper_crop(good):
    good['network_d'] = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 8}
    assert 'use type: SRGANDiscriminator with input_size: 32' in error_of(good)


def test_missing_phase1_checkpoint(good):
    good['path']['pretrain_network_g'] = 'experiments/train_SRResNet_x4_DIV2K/models/net_g_latest.pth'
    message = error_of(good)
    assert 'path.pretrain_network_g' in message and 'train the phase that writes it first' in message


def test_vgg_weights_missing_offline(good, tmp_path, monkeypatch):
    import torch.hub
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))

    def offline(*args, **kwargs):
        raise OSError('offline')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    good['train']['perceptual_opt']['vgg_weights'] = None
    message = error_of(good)
    assert 'vgg19-dcbb9e9d.pth' in message and 'vgg_weights' in message and str(tmp_path / 'hub') in message


def test_unknown_type_names_registry_and_plugin(good):
    good['network_g']['type'] = 'SRResNett'
    message = error_of(good)
    assert "network_g.type: 'SRResNett' is not in BasicSR's arch registry" in message
    assert 'srgan_plugin' in message and "did you mean 'SRResNet'?" in message


def test_unknown_model_type(good):
    good['model_type'] = 'NoSuchModel'
    assert "model_type: 'NoSuchModel' is not in BasicSR's model registry" in error_of(good)


def test_option_files_are_valid_yaml_with_basicsr_sections():
    for name in OPTION_FILES:
        opt = yaml.safe_load(Path(OPTIONS, name).read_text())
        assert list(opt)[:3] == ['name', 'model_type', 'scale'], name
        assert {'datasets', 'network_g', 'path'} <= set(opt), name


def test_gt_size_larger_than_smallest_prepared_subimage(good, tmp_path):
    """``srgan_plugin.prepare`` records the smallest HR sub-image; BasicSR's random crop would fail on it later."""
    import json
    root = tmp_path / 'prepared'
    root.mkdir()
    (root / 'prepare_info.json').write_text(json.dumps({'smallest': {'key': 't20_s001', 'hr_size': [76, 76]}}))
    (root / 'hr.lmdb').mkdir()
    good['datasets']['train']['dataroot_gt'] = str(root / 'hr.lmdb')
    good['datasets']['train']['gt_size'] = 96
    good['network_d']['input_size'] = 96
    assert 'rebuild it with --min-size 96 or lower gt_size' in error_of(good)


def test_resume_ignores_a_missing_pretrain_file(good):
    """BasicSR's check_resume replaces pretrain_network_* with the run's own checkpoints when resuming."""
    good['path']['pretrain_network_g'] = 'experiments/moved_away/net_g_latest.pth'
    good['auto_resume'] = True
    check_options(good, 'x.yml')


def test_remote_backend_dataroots_are_not_checked_locally(good):
    good['datasets']['train'].update(
        io_backend={
            'type': 'memcached',
            'server_list_cfg': 'x',
            'client_cfg': 'y'
        },
        dataroot_gt='/mnt/remote/HR',
        meta_info_file='meta.txt')
    check_options(good, 'x.yml')


@pytest.mark.parametrize('where', ['metric', 'gt_size'])
def test_odd_shapes_are_one_line_errors(good, where):
    if where == 'metric':
        good['val']['metrics']['psnr'] = None
        assert "val.metrics.psnr.type: 'None' is not in BasicSR's metric registry" in error_of(good)
    else:
        good['datasets']['train']['gt_size'] = None
        assert 'datasets.train.gt_size: None is not valid; write a positive whole number of pixels' in error_of(good)


@pytest.mark.parametrize('key,value,message', [
    ('amp', 'float16', "train.amp: 'float16' is not valid; write ~ (fp32), bf16 or fp16."),
    ('channels_last', 'yes', "train.channels_last: 'yes' is not valid; write true or false."),
    ('compile', {
        'mode': 'max-autotune',
        'fast': True
    }, "train.compile: unknown key 'fast'"),
    ('compile', 'max-autotune', "train.compile: 'max-autotune' is not valid"),
])
def test_bad_speed_options(good, key, value, message):
    good['train'][key] = value
    assert message in error_of(good)


def test_good_speed_options_pass(good):
    good['train'].update(amp='bf16', channels_last=True, compile={'mode': 'reduce-overhead', 'dynamic': False})
    good['cudnn_benchmark'] = False
    check_options(good, 'x.yml')


GP = {'type': 'GradientPenaltyLoss', 'loss_weight': 10.0}


@pytest.mark.parametrize('norm', [None, 'batch'])
def test_gradient_penalty_with_a_batchnorm_critic(good, norm):
    """WGAN-GP's penalty is per sample; BatchNorm mixes the samples (and the default critic has it)."""
    good['train'].update(gan_opt={'type': 'GANLoss', 'gan_type': 'wgan', 'loss_weight': 1e-3}, gp_opt=GP)
    if norm:
        good['network_d']['norm'] = norm
    message = error_of(good)
    assert 'train.gp_opt:' in message and 'BatchNorm' in message
    assert message.endswith('set network_d.norm: spectral or none.')


def test_gradient_penalty_with_basicsrs_vgg_style_critic(good):
    good['datasets']['train']['gt_size'] = 128  # VGGStyleDiscriminator's crop
    good['network_d'] = {'type': 'VGGStyleDiscriminator', 'num_in_ch': 3, 'num_feat': 8}
    good['train']['gp_opt'] = GP
    message = error_of(good)
    assert 'VGGStyleDiscriminator has BatchNorm' in message
    assert 'network_d.type: SRGANDiscriminator with network_d.norm: spectral or none' in message


@pytest.mark.parametrize('network_d', [{'norm': 'spectral'}, {'norm': 'none'}, {'type': 'UNetDiscriminatorSN'}])
def test_gradient_penalty_with_a_critic_without_batchnorm_passes(good, network_d):
    if 'type' in network_d:  # another class: its own arguments
        good['network_d'] = {'num_in_ch': 3, 'num_feat': 8, **network_d}
    else:
        good['network_d'].update(network_d)
    good['train']['gp_opt'] = GP
    check_options(good, 'x.yml')


def test_batchnorm_critic_without_gradient_penalty_passes(good):
    good['network_d']['norm'] = 'batch'
    check_options(good, 'x.yml')


def test_unknown_discriminator_norm(good):
    good['network_d']['norm'] = 'instance'
    assert "network_d.norm: 'instance' is not valid; write batch, spectral or none." in error_of(good)


def test_tv_opt_is_checked_like_the_other_losses(good):
    good['train']['tv_opt'] = {'type': 'TVLoss', 'loss_weight': 1.0}
    check_options(good, 'x.yml')
    good['train']['tv_opt']['type'] = 'TVLos'
    assert "train.tv_opt.type: 'TVLos' is not in BasicSR's loss registry" in error_of(good)


def test_grid_opt_period_must_divide_the_crop(good):
    good['train']['grid_opt'] = {'type': 'GridLoss', 'loss_weight': 1000.0, 'period': 4}
    check_options(good, 'x.yml')
    good['train']['grid_opt']['period'] = 5
    assert 'train.grid_opt.period: 5 does not divide datasets.train.gt_size' in error_of(good)
