"""The user's literal commands in subprocesses: ``python -m basicsr.train`` (phase 1, then phase 2 from phase 1's
weights), ``python -m basicsr.test``, the plugin's own doors, and bad input on the command line."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import load_options, run, shared_dataset, tiny_training_options, write_options
from srgan_plugin.compat import basicsr_install_root

pytestmark = pytest.mark.slow  # the user's commands, trainings included


@pytest.fixture(scope='module')
def two_phases(paired_folder, tmp_path_factory) -> Path:
    """Phase 1 then phase 2 through ``python -m basicsr.train`` in a fresh working directory."""
    cwd = tmp_path_factory.mktemp('work')
    write_options(tiny_training_options(1, paired_folder, 'cli_p1'), cwd / 'p1.yml')
    p2 = tiny_training_options(2, paired_folder, 'cli_p2')
    p2['path']['pretrain_network_g'] = 'experiments/cli_p1/models/net_g_latest.pth'
    write_options(p2, cwd / 'p2.yml')
    for name in ('p1.yml', 'p2.yml'):
        result = run(['-m', 'basicsr.train', '-opt', name], cwd=cwd)
        assert result.returncode == 0, result.stderr[-3000:]
    return cwd


def test_phase1_writes_checkpoints_and_logs_in_cwd(two_phases):
    models = two_phases / 'experiments' / 'cli_p1' / 'models'
    assert (models / 'net_g_latest.pth').is_file() and (models / 'net_g_4.pth').is_file()
    assert (two_phases / 'experiments' / 'cli_p1' / 'training_states' / '4.state').is_file()
    assert (two_phases / 'tb_logger' / 'cli_p1').is_dir()
    log = next((two_phases / 'experiments' / 'cli_p1').glob('train_cli_p1_*.log')).read_text()
    assert 'Model [SRResNetModel] is created' in log and 'l_pix:' in log and '# psnr:' in log


def test_phase2_loads_phase1_weights_and_logs_gan_keys(two_phases):
    log = next((two_phases / 'experiments' / 'cli_p2').glob('train_cli_p2_*.log')).read_text()
    assert 'Loading SRResNet model from experiments/cli_p1/models/net_g_latest.pth' in log
    assert 'Model [SRGANPluginModel] is created' in log
    for key in ('l_g_percep', 'l_g_gan', 'l_d_real', 'l_d_fake', 'out_d_real', 'out_d_fake'):
        assert f'{key}:' in log, key
    saved = torch.load(two_phases / 'experiments' / 'cli_p2' / 'models' / 'net_d_latest.pth', weights_only=True)
    assert 'features.0.weight' in saved['params']


def test_nothing_lands_in_site_packages(two_phases):
    root = Path(basicsr_install_root())
    assert not any((root / folder / name).exists() for folder in ('experiments', 'tb_logger', 'results')
                   for name in ('cli_p1', 'cli_p2'))


def test_basicsr_test_on_set5(two_phases):
    set5 = shared_dataset('Set5')
    opt = load_options('test_srgan_x4.yml')
    opt.update(name='cli_test', num_gpu=0)
    opt['datasets'] = {
        'test_1': {
            **opt['datasets']['test_1'], 'dataroot_gt': str(set5 / 'HR'),
            'dataroot_lq': str(set5 / 'LR_bicubic' / 'X4')
        }
    }
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['path']['pretrain_network_g'] = 'experiments/cli_p2/models/net_g_latest.pth'
    write_options(opt, two_phases / 'test.yml')
    result = run(['-m', 'basicsr.test', '-opt', 'test.yml'], cwd=two_phases, fresh=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = two_phases / 'results' / 'cli_test'
    assert sorted(p.stem for p in (out / 'visualization' / 'Set5').glob('*.png')) == sorted(
        f'{p.stem}_cli_test' for p in (set5 / 'HR').glob('*.png'))
    log = next(out.glob('test_cli_test_*.log')).read_text()
    assert '# psnr:' in log and '# ssim:' in log


def test_plugin_train_door(two_phases):
    """``python -m srgan_plugin.train`` is the same CLI; a re-run archives the old experiment folder, loses nothing."""
    result = run(['-m', 'srgan_plugin.train', '-opt', 'p1.yml'], cwd=two_phases)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (two_phases / 'experiments' / 'cli_p1' / 'models' / 'net_g_latest.pth').is_file()
    archived = list((two_phases / 'experiments').glob('cli_p1_archived_*'))
    assert len(archived) == 1 and (archived[0] / 'models' / 'net_g_latest.pth').is_file()


def test_bad_option_file_is_one_line_and_creates_nothing(paired_folder, tmp_path):
    opt = tiny_training_options(1, paired_folder, 'bad')
    opt['datasets']['train']['dataroot_gt'] = 'datasets/missing.lmdb'
    write_options(opt, tmp_path / 'bad.yml')
    result = run(['-m', 'basicsr.train', '-opt', 'bad.yml'], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith('error: bad.yml: datasets.train.dataroot_gt:')
    assert 'Traceback' not in result.stderr
    assert not (tmp_path / 'experiments').exists()


def test_plugin_test_door_writes_results_in_cwd(two_phases, paired_folder):
    """``python -m srgan_plugin.test`` is BasicSR's test CLI; results/ lands in the working directory."""
    opt = load_options('test_srresnet_x4.yml')
    opt.update(name='door_test', num_gpu=0)
    hr_dir, lr_dir = (str(p) for p in paired_folder)
    opt['datasets'] = {
        'test_1': {
            **opt['datasets']['test_1'], 'name': 'synthetic',
            'dataroot_gt': hr_dir,
            'dataroot_lq': lr_dir
        }
    }
    opt['network_g'].update(num_feat=8, num_block=1)
    opt['path']['pretrain_network_g'] = 'experiments/cli_p1/models/net_g_latest.pth'
    write_options(opt, two_phases / 'door_test.yml')
    result = run(['-m', 'srgan_plugin.test', '-opt', 'door_test.yml'], cwd=two_phases)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((two_phases / 'results' / 'door_test' / 'visualization' / 'synthetic').glob('*.png'))) == 4


def test_tv_opt_and_wgan_gp_with_a_spectral_critic_through_basicsr_train(paired_folder, tmp_path):
    """``train.tv_opt`` is trained and logged in both phases (``l_tv``, ``l_g_tv``); phase 2 runs WGAN-GP with a
    spectrally normalised critic, saves it, and resumes from that checkpoint."""
    p1 = tiny_training_options(1, paired_folder, 'tv_p1', iters=2)
    p2 = tiny_training_options(2, paired_folder, 'tv_p2', iters=2)
    p2['path']['pretrain_network_g'] = None
    p2['network_d']['norm'] = 'spectral'
    wgan, gp = {'type': 'GANLoss', 'gan_type': 'wgan', 'loss_weight': 1e-3}, {'type': 'GradientPenaltyLoss'}
    p2['train'].update(gan_opt=wgan, gp_opt=gp)
    for opt, name, key in ((p1, 'p1.yml', 'l_tv'), (p2, 'p2.yml', 'l_g_tv')):
        opt['train']['tv_opt'] = {'type': 'TVLoss', 'loss_weight': 1.0}
        opt['logger']['use_tb_logger'] = False
        write_options(opt, tmp_path / name)
        result = run(['-m', 'basicsr.train', '-opt', name], cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        log = next((tmp_path / 'experiments' / opt['name']).glob('train_*.log')).read_text()
        assert f' {key}: ' in log, key
    assert 'l_d_gp: ' in log
    saved = torch.load(tmp_path / 'experiments' / 'tv_p2' / 'models' / 'net_d_2.pth', weights_only=True)['params']
    assert 'features.0.parametrizations.weight.0._u' in saved
    p2['train']['total_iter'] = 4
    write_options(p2, tmp_path / 'p2.yml')
    result = run(['-m', 'basicsr.train', '-opt', 'p2.yml', '--auto_resume'], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = ''.join(p.read_text() for p in (tmp_path / 'experiments' / 'tv_p2').glob('train_*.log'))
    assert 'Loading SRGANDiscriminator model from' in logs and 'net_d_2.pth' in logs
    assert (tmp_path / 'experiments' / 'tv_p2' / 'models' / 'net_d_4.pth').is_file()
