"""Resume after SIGKILL (at any moment, during a save), truncated and corrupt checkpoints, SIGTERM, retention and
non-finite losses: all through ``python -m basicsr.train`` in subprocesses, on CPU with 0 data workers."""
from __future__ import annotations

import shutil
import signal
import textwrap
from pathlib import Path

import pytest
import torch

from launcher import python
from training_helpers import (ITERS, SAVE_FREQ, differing_tensors, experiment, fault_options, kill_group, start, train,
                              wait_for, wait_for_log, write_run)

pytestmark = pytest.mark.slow  # every test trains through python -m basicsr.train

NETS = {1: ['net_g'], 2: ['net_g', 'net_d']}


@pytest.fixture(scope='module', params=[1, 2], ids=['phase1', 'phase2'])
def reference(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, paired_folder):
    """An uninterrupted run: (phase, its cwd, its experiment folder)."""
    phase = request.param
    cwd = tmp_path_factory.mktemp(f'reference{phase}')
    write_run(fault_options(phase, paired_folder, f'ft{phase}'), cwd)
    result = train(cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return phase, cwd, experiment(cwd, f'ft{phase}')


def final_differences(phase: int, a: Path, b: Path) -> list[str]:
    return [key for net in NETS[phase] for key in differing_tensors(a, b, f'{net}_latest.pth')]


def test_sigkill_at_any_moment_then_auto_resume_is_bit_identical(reference, tmp_path, paired_folder):
    phase, _, ref = reference
    write_run(fault_options(phase, paired_folder, ref.name), tmp_path)
    process = start(tmp_path)
    wait_for(experiment(tmp_path, ref.name) / 'training_states' / f'{2 * SAVE_FREQ}.state', process)
    kill_group(process)  # somewhere after the save at 20: mid-iteration, mid-validation or mid-save of 30
    resumed = train(tmp_path, '--auto_resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'Resuming training from epoch' in resumed.stderr
    assert final_differences(phase, ref, experiment(tmp_path, ref.name)) == []


def test_resume_without_loop_state_is_not_identical(reference, tmp_path):
    """The check above can fail: BasicSR's resume (epoch restarted, fresh RNG) gives different weights."""
    phase, ref_cwd, ref = reference
    shutil.copytree(ref_cwd / 'experiments', tmp_path / 'experiments')
    shutil.copy(ref_cwd / 'options.yml', tmp_path / 'options.yml')
    states = experiment(tmp_path, ref.name) / 'training_states'
    for path in states.glob('*.state'):
        if int(path.stem) > 2 * SAVE_FREQ:
            path.unlink()
    state = torch.load(states / f'{2 * SAVE_FREQ}.state', weights_only=True)
    del state['loop'], state['files']
    torch.save(state, states / f'{2 * SAVE_FREQ}.state')
    resumed = train(tmp_path, '--auto_resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resuming at the start of its epoch' in resumed.stderr
    assert final_differences(phase, ref, experiment(tmp_path, ref.name)) != []


KILL_DURING_STATE_SAVE = '''
import os, signal, sys
real_fsync = os.fsync
def fsync(fd):  # SIGKILL after the data of 20.state was written, before the rename: a save cut short
    if os.readlink(f'/proc/self/fd/{fd}').endswith('20.state' + '.tmp-' + str(os.getpid())):
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)
os.fsync = fsync
sys.argv = ['basicsr.train', '-opt', 'options.yml']
from srgan_plugin.train import main
main()
'''


@pytest.mark.skipif(not Path('/proc/self/fd').is_dir(), reason='needs /proc to recognise the file being saved')
def test_sigkill_during_a_save_resumes_from_the_previous_complete_state(reference, tmp_path, paired_folder):
    phase, _, ref = reference
    write_run(fault_options(phase, paired_folder, ref.name), tmp_path)
    killed = python(['-c', KILL_DURING_STATE_SAVE], tmp_path, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    run = experiment(tmp_path, ref.name)
    states = run / 'training_states'
    assert sorted(p.name for p in states.glob('*.state')) == ['10.state']
    assert [p.name for p in states.iterdir() if '.tmp-' in p.name]  # the cut-short write never replaced anything
    assert (run / 'models' / 'net_g_20.pth').exists()  # networks of 20 were complete, the state was not
    resumed = train(tmp_path, '--auto_resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'left in' in resumed.stderr and 'interrupted save' in resumed.stderr
    assert 'iter: 10.' in resumed.stderr
    assert not [p.name for p in states.iterdir() if '.tmp-' in p.name]
    assert final_differences(phase, ref, run) == []


def test_truncated_and_corrupt_checkpoints_are_skipped_with_a_warning(reference, tmp_path):
    phase, ref_cwd, ref = reference
    shutil.copytree(ref_cwd / 'experiments', tmp_path / 'experiments')
    shutil.copy(ref_cwd / 'options.yml', tmp_path / 'options.yml')
    run = experiment(tmp_path, ref.name)
    newest = run / 'training_states' / f'{ITERS}.state'
    newest.write_bytes(newest.read_bytes()[:200])  # truncated state
    net = run / 'models' / f'net_g_{ITERS - SAVE_FREQ}.pth'
    data = bytearray(net.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit in the weights: still loads, hash differs
    net.write_bytes(bytes(data))
    resumed = train(tmp_path, '--auto_resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'Skipping training state {ITERS}: ' in resumed.stderr and 'cannot be loaded' in resumed.stderr
    assert f'Skipping training state {ITERS - SAVE_FREQ}: ' in resumed.stderr and 'SHA-256' in resumed.stderr
    assert f'iter: {ITERS - 2 * SAVE_FREQ}.' in resumed.stderr
    assert final_differences(phase, ref, run) == []


def test_sigterm_saves_a_training_state_and_exits(tmp_path, paired_folder):
    opt = fault_options(1, paired_folder, 'term')
    opt['train']['total_iter'] = 100000
    opt['logger'].update(save_checkpoint_freq=100000, print_freq=5)
    write_run(opt, tmp_path)
    process = start(tmp_path)
    log_dir = experiment(tmp_path, 'term')
    wait_for_log(log_dir, 'iter:      20,', process)  # training (and the validation at 15) under way
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 128 + signal.SIGTERM, output[-3000:]
    assert 'SIGTERM received: training state of iter' in output
    states = list((log_dir / 'training_states').glob('*.state'))
    assert len(states) == 1 and int(states[0].stem) >= 20
    state = torch.load(states[0], weights_only=True)
    assert state['iter'] == int(states[0].stem) and 'loop' in state


def test_keep_last_states_removes_older_states_and_their_networks(tmp_path, paired_folder):
    write_run(fault_options(2, paired_folder, 'keep', keep_last_states=2), tmp_path)
    result = train(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = experiment(tmp_path, 'keep')
    assert sorted(int(p.stem) for p in (run / 'training_states').glob('*.state')) == [30, 40]
    assert sorted(p.name for p in (run / 'models').iterdir()) == sorted(f'net_{n}_{i}.pth' for n in 'gd'
                                                                        for i in ('30', '40', 'latest'))


def test_diverging_training_stops_with_one_line_and_writes_no_nonfinite_checkpoint(tmp_path, paired_folder):
    opt = fault_options(1, paired_folder, 'nan')
    opt['train']['optim_g']['lr'] = 1e30  # the first step blows the weights up; every later loss is inf/NaN
    opt['train']['max_nonfinite_steps'] = 3
    opt['logger']['save_checkpoint_freq'] = 1
    write_run(opt, tmp_path)
    result = train(tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error: 3 consecutive generator steps had non-finite losses or gradients'), last
    assert 'step skipped (1 in a row' in result.stderr
    for path in (experiment(tmp_path, 'nan') / 'models').iterdir():
        for params in torch.load(path, weights_only=True).values():
            assert all(torch.isfinite(t).all() for t in params.values() if t.is_floating_point()), path


@pytest.mark.parametrize('key, value, message', [
    ('keep_last_states', 0, 'logger.keep_last_states: 0 is not valid'),
    ('save_on_signal', 'yes', "logger.save_on_signal: 'yes' is not valid"),
    ('prefetch_mode', 'cuda', 'datasets.train.prefetch_mode: cuda needs pin_memory: true'),
])
def test_bad_fault_tolerance_options_are_one_line_errors(tmp_path, paired_folder, key, value, message):
    opt = fault_options(1, paired_folder, 'bad')
    if key == 'prefetch_mode':
        opt['datasets']['train'][key] = value
    else:
        opt['logger'][key] = value
    write_run(opt, tmp_path)
    result = train(tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith('error: ') and message in result.stderr
    assert not (tmp_path / 'experiments').exists()


def test_unit_atomic_save_leaves_old_file_when_killed(tmp_path):
    script = textwrap.dedent(f'''
        import os, signal, torch
        from srgan_plugin.base.files import atomic_save
        atomic_save({{'v': torch.ones(3)}}, {str(tmp_path / 'f.pth')!r})
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
        atomic_save({{'v': torch.zeros(1000)}}, {str(tmp_path / 'f.pth')!r})
    ''')
    result = python(['-c', script], tmp_path, timeout=120)
    assert result.returncode == -signal.SIGKILL
    assert torch.equal(torch.load(tmp_path / 'f.pth', weights_only=True)['v'], torch.ones(3))
    assert len(list(tmp_path.glob('.f.pth.tmp-*'))) == 1
