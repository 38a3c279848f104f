"""recipes/reference_weights.py on CPU, tiny scale: budget stop + resume, packaging a labelled stand-in, loading it."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, run, tiny_training_options, write_options
from srgan_plugin.base.files import sha256_of
from srgan_plugin.inference.weights import WEIGHTS_DIR, ArchSpec, load_generator, random_generator, resolve_model

SCRIPT = REPO / 'recipes' / 'reference_weights.py'
LABEL = 'TINY STAND-IN, NOT A TRAINED MODEL'
TINY = ArchSpec(3, 3, 8, 1, 4, False)


def recipe():
    """The recipe script as a module (registered in sys.modules once, as its dataclasses need)."""
    if 'reference_weights' not in sys.modules:
        spec = importlib.util.spec_from_file_location('reference_weights', SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules['reference_weights'] = module
        spec.loader.exec_module(module)
    return sys.modules['reference_weights']


def stand_in(folder: Path, name: str, seed: int) -> tuple[Path, torch.nn.Module]:
    """A BasicSR-style checkpoint of a tiny random SRResNet (params_ema differs from params, as after EMA)."""
    net = random_generator(TINY, seed=seed)
    models = folder / name / 'models'
    models.mkdir(parents=True)
    ema = net.state_dict()
    raw = {k: v + 1 if v.is_floating_point() else v for k, v in ema.items()}
    torch.save({'params': raw, 'params_ema': ema}, models / 'net_g_1234.pth')
    return models / 'net_g_1234.pth', net


@pytest.fixture
def packaged(tmp_path: Path) -> tuple[Path, dict, dict[str, torch.nn.Module]]:
    ckpt1, net1 = stand_in(tmp_path, 'p1', 1)
    ckpt2, net2 = stand_in(tmp_path, 'p2', 2)
    out = tmp_path / 'weights'
    manifest = recipe().package({1: str(ckpt1), 2: str(ckpt2)}, str(out), label=LABEL)
    return out, manifest, {'srresnet_mse_x4': net1, 'srgan_mse_x4': net2}


def test_package_writes_fp16_params_and_manifest(packaged):
    out, manifest, nets = packaged
    on_disk = json.loads((out / 'manifest.json').read_text())
    assert on_disk == manifest and on_disk['label'] == LABEL and on_disk['default'] == 'srresnet_mse_x4'
    for name, net in nets.items():
        entry = on_disk['models'][name]
        assert entry['label'] == LABEL
        assert entry['arch'] == {
            'type': 'SRResNet',
            'num_in_ch': 3,
            'num_out_ch': 3,
            'num_feat': 8,
            'num_block': 1,
            'upscale': 4,
            'prelu_per_channel': False
        }
        assert entry['training']['iterations'] == 1234 and 'BSD200 + T91' in entry['training']['data']
        assert entry['sha256'] == sha256_of(str(out / entry['file']))
        saved = torch.load(out / entry['file'], weights_only=True)
        assert list(saved) == ['params']
        assert saved['params']['conv_first.weight'].dtype == torch.float16
        assert saved['params']['bn_body.num_batches_tracked'].dtype == torch.int64
        expected = net.state_dict()['conv_first.weight'].half()  # params_ema, not params (+1)
        assert torch.equal(saved['params']['conv_first.weight'], expected)


def test_manifest_records_wall_time_of_every_sitting_and_the_machine(tmp_path: Path):
    ckpt, _ = stand_in(tmp_path, 'p1', 1)
    experiment = ckpt.parent.parent
    (experiment / 'train_p1_20261202_100000.log').write_text(
        '2026-12-02 10:00:00,120 INFO: Start training from epoch: 0, iter: 0\n'
        '  a continuation line without a time stamp\n'
        '2026-12-02 10:30:00,900 INFO: [train..][epoch:  0, iter:   100] l_pix: 1.0e-02\n')
    (experiment / 'train_p1_20261202_120000.log').write_text(
        '2026-12-02 12:00:00,000 INFO: Resuming training from epoch: 0, iter: 100\n'
        '2026-12-02 12:10:05,000 INFO: Saving models and training states.\n')
    (experiment / 'notes.txt').write_text('2026-12-02 00:00:00,000 not a log\n')
    manifest = recipe().package({1: str(ckpt)}, str(tmp_path / 'weights'), label=LABEL, machine='test CPU, 2 cores')
    training = manifest['models']['srresnet_mse_x4']['training']
    assert training['wall_time_s'] == 30 * 60 + 10 * 60 + 5
    assert training['machine'] == 'test CPU, 2 cores'
    assert manifest['default'] == 'srresnet_mse_x4'  # the only one packaged


def test_manifest_without_logs_has_no_wall_time_and_names_this_machine(packaged):
    _, manifest, _ = packaged
    training = manifest['models']['srresnet_mse_x4']['training']
    assert training['wall_time_s'] is None
    assert 'torch ' + torch.__version__ in training['machine']


def test_scores_of_the_shipped_file_and_of_its_fp32_checkpoint(tmp_path: Path, packaged):
    out, _, _ = packaged
    checkpoint = tmp_path / 'p1' / 'models' / 'net_g_1234.pth'
    means = {
        label: {
            'psnr_y': value
        }
        for label, value in (('bicubic', 28.4), ('net_g_1234', 30.2), ('srresnet_mse_x4', 30.19))
    }
    results = {
        'protocol': {
            'scale': 4
        },
        'methods': {
            'bicubic': 'MATLAB-style bicubic',
            'net_g_1234': str(checkpoint),
            'srresnet_mse_x4': str(out / 'srresnet_mse_x4.pth')
        },
        'sets': {
            'Set5': {
                'mean': means
            }
        },
    }
    (tmp_path / 'results.json').write_text(json.dumps(results))
    scores = recipe().read_scores(str(tmp_path / 'results.json'), str(checkpoint), str(out / 'srresnet_mse_x4.pth'))
    assert scores['Set5'] == {
        'model': {
            'psnr_y': 30.19
        },
        'fp32_checkpoint': {
            'psnr_y': 30.2
        },
        'bicubic': {
            'psnr_y': 28.4
        }
    }
    only_checkpoint = recipe().read_scores(str(tmp_path / 'results.json'), str(checkpoint), 'other.pth')
    assert only_checkpoint['Set5']['model'] == {'psnr_y': 30.2}


def test_resolve_and_load_restore_fp32_same_output(packaged):
    out, _, nets = packaged
    assert Path(resolve_model(None, weights_dir=str(out))).name == 'srresnet_mse_x4.pth'  # the default
    path = resolve_model('srgan', weights_dir=str(out))
    assert Path(path).name == 'srgan_mse_x4.pth'
    net, spec = load_generator(path)
    assert spec == TINY and all(p.dtype == torch.float32 for p in net.parameters())
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected, got = nets['srgan_mse_x4'](x), net(x)
    assert (expected - got).abs().max() < 2e-2 and not torch.equal(expected, got)  # fp16 rounding, nothing more


def test_damaged_packaged_file_is_refused(packaged):
    out, _, _ = packaged
    with open(out / 'srgan_mse_x4.pth', 'ab') as f:
        f.write(b'x')
    with pytest.raises(Exception, match='sha256'):
        resolve_model('srgan', weights_dir=str(out))


@pytest.mark.slow
def test_package_refusals(tmp_path: Path, packaged, capsys):
    out, _, _ = packaged
    ckpt, _ = stand_in(tmp_path, 'again', 3)
    shipped = Path(WEIGHTS_DIR) / 'manifest.json'
    before = shipped.read_bytes() if shipped.exists() else None
    cases = [
        (['--phase2', str(ckpt), '--out', str(out), '--label', LABEL], 'exists; pass --force'),
        (['--phase2', str(ckpt), '--out', WEIGHTS_DIR, '--label', LABEL], 'never goes into'),
        (['--phase2', str(ckpt), '--out', str(tmp_path / 'new')], 'not the reference SRResNet x4'),
        (['--phase2', str(tmp_path / 'missing.pth'), '--out',
          str(tmp_path / 'new'), '--label', LABEL], 'not found'),
    ]
    for args, message in cases:
        assert recipe().main(['package', *args]) == 1
        stderr = capsys.readouterr().err
        assert message in stderr and len(stderr.strip().splitlines()) == 1 and stderr.startswith('error: '), stderr
    assert (shipped.read_bytes() if shipped.exists() else None) == before  # the shipped weights are untouched
    forced = run([str(SCRIPT), 'package', *cases[0][0], '--force'], cwd=tmp_path)  # as a user runs it
    assert forced.returncode == 0, forced.stderr
    assert set(json.loads((out / 'manifest.json').read_text())['models']) == {'srgan_mse_x4'}


@pytest.mark.slow
def test_packaged_file_is_a_pretrain_network_g(tmp_path: Path, packaged, paired_folder):
    out, _, _ = packaged
    opt = tiny_training_options(1, paired_folder, 'from_shipped', iters=1)
    opt['path'].update(pretrain_network_g=str(out / 'srresnet_mse_x4.pth'), param_key_g='params', strict_load_g=True)
    opt['train']['optim_g']['lr'] = 0.0  # one step that changes no weight: the saved generator is what was loaded
    opt['logger']['use_tb_logger'] = False
    write_options(opt, tmp_path / 'options.yml')
    result = run(['-m', 'basicsr.train', '-opt', 'options.yml'], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = torch.load(tmp_path / 'experiments' / 'from_shipped' / 'models' / 'net_g_latest.pth', weights_only=True)
    shipped = torch.load(out / 'srresnet_mse_x4.pth', weights_only=True)['params']
    assert torch.equal(saved['params']['conv_first.weight'], shipped['conv_first.weight'].float())


@pytest.mark.slow
def test_train_stops_at_budget_resumes_and_finishes(tmp_path: Path, paired_folder):
    opt = tiny_training_options(1, paired_folder, 'budget', iters=10**7)
    opt['logger'].update(print_freq=10**6, save_checkpoint_freq=10**6, use_tb_logger=False, save_on_signal=True)
    opt['val']['val_freq'] = 10**6
    write_options(opt, tmp_path / 'tiny.yml')
    train = [str(SCRIPT), 'train', '--phase', '1', '--options', 'tiny.yml']
    first = run([*train, '--budget-minutes', '0.4'], cwd=tmp_path)
    assert first.returncode == 143, first.stdout[-2000:] + first.stderr[-2000:]
    assert 'continue' in first.stdout
    recipe_module = recipe()
    experiment = tmp_path / 'experiments' / 'budget'
    reached = recipe_module.latest_state(str(experiment))
    assert reached > 0 and f'iteration {reached} of' in first.stdout
    assert not (experiment / 'models' / 'net_g_latest.pth').exists()
    done = run([*train, '--finish'], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    logs = ''.join(log.read_text() for log in experiment.glob('train_*.log'))
    assert f'iter: {reached}' in logs  # the second run started where the first stopped
    assert (experiment / 'models' / 'net_g_latest.pth').exists()


@pytest.mark.slow
def test_train_bad_input_is_one_line(tmp_path: Path):
    result = run([str(SCRIPT), 'train', '--phase', '1', '--options', 'missing.yml', '--budget-minutes', '1'],
                 cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.strip() == 'error: option file missing.yml not found'


def test_prepare_commands_build_the_reference_options_data_layout(tmp_path: Path):
    module = recipe()
    cmds = module.prepare_commands('src', 'datasets/reference', 2)
    folder = cmds[0][cmds[0].index('--out') + 1]
    for phase in (1, 2):
        opt = module.read_options(str(REPO / module.PHASES[phase]['options']))
        assert opt['datasets']['train']['dataroot_gt'] == f'{folder}/train_HR_sub.lmdb'
        assert opt['datasets']['val']['dataroot_gt'] == 'datasets/reference/Set5/HR'
        assert opt['logger']['save_on_signal'] is True
    assert [c[c.index('--out') + 1] for c in cmds[1:]] == ['datasets/reference/Set5', 'datasets/reference/Set14']


def test_wall_time_of_a_checkpoint_taken_before_the_end_stops_at_its_iteration(tmp_path: Path):
    (tmp_path / 'train_x.log').write_text('2026-12-02 10:00:00,000 INFO: Start training from epoch: 0, iter: 0\n'
                                          '2026-12-02 10:10:00,000 INFO: [train..][epoch:  0, iter:   500] l: 1\n'
                                          '2026-12-02 10:10:30,000 INFO: Saving models and training states.\n'
                                          '2026-12-02 10:11:00,000 INFO: [train..][epoch:  0, iter:   550] l: 1\n'
                                          '2026-12-02 10:30:00,000 INFO: [train..][epoch:  0, iter: 1,500] l: 1\n')
    assert recipe().training_wall_time(str(tmp_path), 500) == 10 * 60 + 30
    assert recipe().training_wall_time(str(tmp_path)) == 30 * 60
