"""Distributed training on CPU with gloo, as CI can run it: torchrun, torch.distributed.launch and SLURM-style
launches of ``python -m basicsr.train``, sharded validation equal to single-process validation, and SIGTERM-and-resume
of a 2-process run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from conftest import load_options, make_paired_folder, write_options
from launcher import popen, python, user_env
from training_helpers import (SAVE_FREQ, differing_tensors, experiment, fault_options, free_port, start, torchrun,
                              train, wait_for, write_run)

from srgan_plugin.archs import SRResNet
from srgan_plugin.base import distributed

pytestmark = pytest.mark.slow  # multi-process trainings (torchrun, torch.distributed.launch, SLURM)


def distributed_launch(nproc: int = 2) -> list[str]:
    """torch.distributed.launch (deprecated, still used): it passes ``--local-rank=N`` to the script (BasicSR #626)."""
    return [
        sys.executable, '-m', 'torch.distributed.launch', f'--nproc_per_node={nproc}', '--master_addr=127.0.0.1',
        f'--master_port={free_port()}'
    ]


@pytest.mark.parametrize('phase, launcher', [(1, distributed_launch), (2, torchrun)],
                         ids=['phase1-torch.distributed.launch', 'phase2-torchrun'])
def test_two_cpu_processes_gloo(tmp_path, paired_folder, phase, launcher):
    opt = fault_options(phase, paired_folder, f'ddp{phase}')
    opt['train']['total_iter'] = 8
    opt['logger'].update(save_checkpoint_freq=4, print_freq=4)
    opt['val']['val_freq'] = 4
    write_run(opt, tmp_path)
    result = train(tmp_path, '--launcher', 'pytorch', launcher=launcher(2))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    log = result.stdout + result.stderr
    assert 'World size (gpu number): 2' in log
    assert log.count('Validation Set5') == 3  # iters 4 and 8 and the final one, logged by rank 0 only
    run = experiment(tmp_path, f'ddp{phase}')
    assert sorted(p.name for p in (run / 'training_states').iterdir()) == ['4.state', '8.state']
    state = torch.load(run / 'training_states' / '8.state', weights_only=True)
    assert state['loop']['world_size'] == 2 and len(state['loop']['rng']) == 2


def test_slurm_launcher_two_tasks(tmp_path, paired_folder):
    """What srun sets for two tasks on one node (MASTER_ADDR preset, so no scontrol is needed)."""
    opt = fault_options(1, paired_folder, 'slurm')
    opt['train']['total_iter'] = 2
    write_run(opt, tmp_path)
    port = str(free_port())
    procs = []
    for proc_id in range(2):
        env = {
            'SLURM_PROCID': str(proc_id),
            'SLURM_LOCALID': str(proc_id),
            'SLURM_NTASKS': '2',
            'SLURM_NODELIST': 'localhost',
            'MASTER_ADDR': '127.0.0.1',
            'MASTER_PORT': port
        }
        procs.append(popen(['-m', 'basicsr.train', '-opt', 'options.yml', '--launcher', 'slurm'], tmp_path, env,
                           merge_stderr=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert 'World size (gpu number): 2' in outputs[0]


VALIDATE = '''
import json, os, sys
import srgan_plugin
from basicsr.data import build_dataloader, build_dataset
from basicsr.models import build_model
from basicsr.utils.options import parse_options
opt, _ = parse_options(os.getcwd(), is_train=False)
model = build_model(opt)
dataset_opt = opt['datasets']['test_1']
loader = build_dataloader(build_dataset(dataset_opt), dataset_opt, num_gpu=0, dist=opt['dist'])
model.validation(loader, 0, None, save_img=True)
if opt['rank'] == 0:
    json.dump({k: float(v).hex() for k, v in model.metric_results.items()}, open(os.environ['METRICS_OUT'], 'w'))
'''


def test_distributed_validation_equals_single_process_exactly(tmp_path):
    """5 images on 2 ranks (3 + 2: unequal shares must not hang); metrics equal to the last bit."""
    hr, lr = make_paired_folder(tmp_path / 'data', count=5, size=48)
    torch.manual_seed(0)
    net = SRResNet(num_feat=8, num_block=2)
    torch.save({'params': net.state_dict()}, tmp_path / 'net.pth')
    opt = load_options('test_srresnet_x4.yml')
    opt.update(name='val', num_gpu=0)
    opt['network_g'].update(num_feat=8, num_block=2)
    opt['path'] = {'pretrain_network_g': str(tmp_path / 'net.pth'), 'param_key_g': 'params', 'strict_load_g': True}
    opt['datasets'] = {
        'test_1': {
            'name': 'five',
            'type': 'PairedImageDataset',
            'dataroot_gt': str(hr),
            'dataroot_lq': str(lr),
            'io_backend': {
                'type': 'disk'
            }
        }
    }
    (tmp_path / 'probe.py').write_text(VALIDATE)
    results = {}
    for mode in ('single', 'ddp'):
        cwd = tmp_path / mode
        cwd.mkdir()
        write_options(opt, cwd / 'options.yml')
        out = cwd / 'metrics.json'
        args = [str(tmp_path / 'probe.py'), '-opt', 'options.yml']
        if mode == 'single':
            result = python(args, cwd, {'METRICS_OUT': str(out)}, timeout=300)
        else:
            result = subprocess.run([*torchrun(2), *args, '--launcher', 'pytorch'],
                                    cwd=cwd,
                                    env=user_env({'METRICS_OUT': str(out)}),
                                    capture_output=True,
                                    text=True,
                                    timeout=300)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[:3000] + '\n...\n' + output[-3000:]
        results[mode] = json.loads(out.read_text())
        images = sorted(p.name for p in (cwd / 'results' / 'val' / 'visualization' / 'five').iterdir())
        assert images == [f'img{i:02d}_val.png' for i in range(5)]
    assert set(results['single']) == {'psnr', 'ssim'}
    assert results['ddp'] == results['single']


def test_sigterm_to_torchrun_saves_one_state_for_both_ranks_and_resumes_bit_identically(tmp_path, paired_folder):
    """SIGTERM to torchrun only, as a scheduler sends it: it forwards the signal to both workers, which agree on one
    iteration, save one training state and exit; --auto_resume then ends where an uninterrupted run does."""
    opt = fault_options(2, paired_folder, 'ddpterm')
    opt['train']['total_iter'] = 30
    for name in ('reference', 'stopped'):
        write_run(opt, tmp_path / name)
    reference = train(tmp_path / 'reference', '--launcher', 'pytorch', launcher=torchrun(2))
    assert reference.returncode == 0, (reference.stdout + reference.stderr)[-4000:]
    process = start(tmp_path / 'stopped', '--launcher', 'pytorch', launcher=torchrun(2))
    states = experiment(tmp_path / 'stopped', 'ddpterm') / 'training_states'
    wait_for(states / f'{SAVE_FREQ}.state', process)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode != 0 and 'SIGTERM received: training state of iter' in output, output[-3000:]
    newest = max(states.glob('*.state'), key=lambda path: int(path.stem))
    loop = torch.load(newest, weights_only=True)['loop']
    assert loop['world_size'] == 2 and len(loop['rng']) == 2
    resumed = train(tmp_path / 'stopped', '--launcher', 'pytorch', '--auto_resume', launcher=torchrun(2))
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-4000:]
    assert f'iter: {newest.stem}.' in resumed.stderr + resumed.stdout
    runs = [experiment(tmp_path / name, 'ddpterm') for name in ('reference', 'stopped')]
    for net in ('net_g_latest.pth', 'net_d_latest.pth'):
        assert differing_tensors(*runs, net) == []


def test_local_rank_spelling_is_normalised():
    argv = ['-opt', 'x.yml', '--local-rank=1', '--launcher', 'pytorch', '--local-rank', '0']
    assert distributed.normalize_local_rank(argv) == [
        '-opt', 'x.yml', '--local_rank=1', '--launcher', 'pytorch', '--local_rank', '0'
    ]


def test_init_dist_without_a_launcher_environment_says_what_to_run(monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match='start the job with torchrun --nproc_per_node=N'):
        distributed.init_dist('pytorch')


def test_slurm_variables_are_translated(monkeypatch):
    for name, value in {'SLURM_PROCID': '5', 'SLURM_NTASKS': '8', 'SLURM_LOCALID': '1', 'MASTER_ADDR': 'node7'}.items():
        monkeypatch.setenv(name, value)
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    distributed._environment_from_slurm(port=None)
    assert [os.environ[k] for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')
            ] == ['5', '8', '1', 'node7', '29500']


def test_backend_follows_the_hardware():
    assert distributed.default_backend() == ('nccl' if torch.cuda.is_available() else 'gloo')
