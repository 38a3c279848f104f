"""Every mistake in an option file ends in one line, ``error: FILE: key: what is wrong; what to do``, before anything
is built or created: each case runs the real entry point (``srgan_plugin.train.main`` / ``srgan_plugin.test.main``,
which ``python -m basicsr.train`` / ``basicsr.test`` run) in this process on a small generated option file, and two
cases run ``python -m basicsr.train`` itself."""
from __future__ import annotations

import copy
import dataclasses
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import torch
import yaml

from conftest import load_options, make_paired_folder, run, tiny_training_options, write_options
from srgan_plugin import test as test_entry
from srgan_plugin import train as train_entry
from srgan_plugin.archs import SRResNet

NAME = 'option_errors'
RUN_FOLDERS = ('experiments', 'results', 'tb_logger')


@dataclasses.dataclass(frozen=True)
class World:
    """The data and checkpoints every case points at (made once for the module)."""
    hr: Path
    lr: Path
    lr_x2: Path
    lr_short: Path
    hr_lmdb: Path
    lr_lmdb: Path
    lr_lmdb_other_keys: Path
    lr_lmdb_x2: Path
    net_x4: Path
    net_x2: Path
    a_file: Path


def make_lmdb(folder: Path, path: Path) -> Path:
    """A BasicSR LMDB (with its ``meta_info.txt``) of the PNG images in ``folder``, keyed by their stems."""
    from basicsr.utils.lmdb_util import make_lmdb_from_imgs

    names = sorted(p.name for p in folder.glob('*.png'))
    make_lmdb_from_imgs(str(folder), str(path), names, [Path(n).stem for n in names], map_size=1 << 24)
    return path


def generator_checkpoint(path: Path, upscale: int) -> Path:
    """A BasicSR generator checkpoint of the tiny SRResNet the cases train (8 features, 1 block)."""
    state = SRResNet(num_feat=8, num_block=1, upscale=upscale).state_dict()
    torch.save({'params': state, 'params_ema': state}, path)
    return path


@pytest.fixture(scope='module')
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp('option_errors')
    hr, lr = make_paired_folder(root / 'x4', count=3, size=32, scale=4)
    _, lr_x2 = make_paired_folder(root / 'x2', count=3, size=32, scale=2)
    lr_short = root / 'lr_short'
    shutil.copytree(lr, lr_short)
    (lr_short / 'img02.png').unlink()
    (root / 'a_file.png').write_bytes(b'not a folder')
    return World(
        hr=hr,
        lr=lr,
        lr_x2=lr_x2,
        lr_short=lr_short,
        hr_lmdb=make_lmdb(hr, root / 'hr.lmdb'),
        lr_lmdb=make_lmdb(lr, root / 'lr.lmdb'),
        lr_lmdb_other_keys=make_lmdb(lr_short, root / 'lr_short.lmdb'),
        lr_lmdb_x2=make_lmdb(lr_x2, root / 'lr_x2.lmdb'),
        net_x4=generator_checkpoint(root / 'net_x4.pth', 4),
        net_x2=generator_checkpoint(root / 'net_x2.pth', 2),
        a_file=root / 'a_file.png')


def base_options(kind: str, world: World) -> dict[str, Any]:
    """A valid option file: ``phase1`` (SRResNetModel), ``phase2`` (SRGANPluginModel) or ``test``."""
    if kind == 'test':
        opt = load_options('test_srgan_x4.yml')
        opt.update(name=NAME, num_gpu=0)
        opt['datasets'] = {
            'test_1': {
                **opt['datasets']['test_1'], 'dataroot_gt': str(world.hr),
                'dataroot_lq': str(world.lr)
            }
        }
        opt['network_g'].update(num_feat=8, num_block=1)
        opt['path']['pretrain_network_g'] = str(world.net_x4)
        return opt
    opt = tiny_training_options(1 if kind == 'phase1' else 2, (world.hr, world.lr), NAME)
    opt['logger']['use_tb_logger'] = False
    if kind == 'phase2':
        opt['path']['pretrain_network_g'] = str(world.net_x4)
    return opt


Edit = Callable[[dict, World], Any]


@dataclasses.dataclass(frozen=True)
class Case:
    """One mistake: the option file it starts from, the edit that makes the mistake, and the error it must give."""
    name: str
    kind: str
    edit: Optional[Edit]
    key: str  # what the message names first, after the file
    says: tuple[str, ...]  # what else it must say
    text: Optional[Callable[[str], str]] = None  # an edit of the YAML text instead of the options
    args: tuple[str, ...] = ()
    states: tuple[int, ...] = ()  # iterations of the training states that exist before the run


def setitem(path: str, value: Any) -> Edit:
    """An edit that sets ``a.b.c`` to ``value`` (a callable value gets the world)."""

    def edit(opt: dict, world: World) -> None:
        *parents, last = path.split('.')
        block = opt
        for key in parents:
            block = block[key]
        block[last] = value(world) if callable(value) else value

    return edit


def rename(path: str, new: str) -> Edit:
    """An edit that renames the key ``a.b.c`` to ``new`` (keeping its value)."""

    def edit(opt: dict, world: World) -> None:
        *parents, last = path.split('.')
        block = opt
        for key in parents:
            block = block[key]
        block[new] = block.pop(last)

    return edit


def delete(path: str) -> Edit:

    def edit(opt: dict, world: World) -> None:
        *parents, last = path.split('.')
        block = opt
        for key in parents:
            block = block[key]
        del block[last]

    return edit


def both(*edits: Edit) -> Edit:

    def edit(opt: dict, world: World) -> None:
        for one in edits:
            one(opt, world)

    return edit


def bad_indent(text: str) -> str:
    return text.replace('\n    type: PairedImageDataset', '\n   type: PairedImageDataset', 1)


def twice(text: str) -> str:
    return text + 'scale: 4\n'


CASES = (
    # the file itself
    Case(
        'yaml_syntax',
        'phase1',
        None,
        'line ', ('column', 'did not find expected key', 'fix the YAML'),
        text=bad_indent),
    Case('duplicate_key', 'phase1', None, 'scale', ('appears twice', 'YAML keeps only the last one'), text=twice),
    Case('missing_num_gpu', 'phase1', delete('num_gpu'), 'num_gpu', ('missing', 'num_gpu: auto')),
    Case('negative_num_gpu', 'phase1', setitem('num_gpu', -1), 'num_gpu', ("-1 is not valid", )),
    # misspelt keys, with the closest valid name
    Case('dataset_key', 'phase1', rename('datasets.train.gt_size', 'gt_sise'), 'datasets.train.gt_sise',
         ('unknown key of PairedImageDataset', "did you mean 'gt_size'?")),
    Case('train_key', 'phase1', rename('train.total_iter', 'total_iters'), 'train.total_iters',
         ("did you mean 'total_iter'?", )),
    Case('logger_key', 'phase1', rename('logger.print_freq', 'print_frq'), 'logger.print_frq',
         ("did you mean 'print_freq'?", )),
    Case('val_key', 'phase2', rename('val.save_img', 'save_imgs'), 'val.save_imgs', ("did you mean 'save_img'?", )),
    Case('path_key', 'phase2', rename('path.pretrain_network_g', 'pretrain_netwrok_g'), 'path.pretrain_netwrok_g',
         ("did you mean 'pretrain_network_g'?", )),
    Case('top_level_key', 'phase2', rename('network_d', 'netwrok_d'), 'netwrok_d', ("did you mean 'network_d'?", )),
    Case('network_argument', 'phase1', rename('network_g.num_block', 'num_blocks'), 'network_g.num_blocks',
         ("SRResNet takes no argument 'num_blocks'", "did you mean 'num_block'?")),
    Case('discriminator_argument', 'phase2', setitem('network_d.dense', 64), 'network_d.dense',
         ("SRGANDiscriminator takes no argument 'dense'", "did you mean 'num_dense'?")),
    Case('loss_argument', 'phase1', rename('train.pixel_opt.loss_weight', 'loss_weigth'), 'train.pixel_opt.loss_weigth',
         ("MSELoss takes no argument 'loss_weigth'", "did you mean 'loss_weight'?")),
    Case('loss_required_argument', 'phase2', delete('train.gan_opt.gan_type'), 'train.gan_opt.gan_type',
         ('missing', 'GANLoss needs it')),
    Case('optimizer_argument', 'phase1', setitem('train.optim_g.beta', [0.9, 0.99]), 'train.optim_g.beta',
         ("Adam takes no argument 'beta'", "did you mean 'betas'?")),
    Case('optimizer_type', 'phase1', setitem('train.optim_g.type', 'AdamW'), 'train.optim_g.type',
         ('only Adam', 'write type: Adam')),
    Case('scheduler_argument', 'phase1', setitem('train.scheduler', {
        'type': 'MultiStepLR',
        'milestone': [2]
    }), 'train.scheduler.milestone', ("did you mean 'milestones'?", )),
    Case('metric_argument', 'phase1', rename('val.metrics.psnr.test_y_channel', 'test_y_chanel'),
         'val.metrics.psnr.test_y_chanel', ("did you mean 'test_y_channel'?", )),
    Case('io_backend', 'phase1', setitem('datasets.train.io_backend', {'type': 'disc'}),
         'datasets.train.io_backend.type', ("'disc' is not a BasicSR backend", "did you mean 'disk'?")),
    Case('dataset_phase', 'phase1', rename('datasets.val', 'validation'), 'datasets.validation',
         ('not a dataset name BasicSR understands', )),
    # numbers out of range
    Case('batch_size_zero', 'phase1', setitem('datasets.train.batch_size_per_gpu', 0),
         'datasets.train.batch_size_per_gpu', ('0 is not valid', 'a positive whole number')),
    Case('workers_negative', 'phase1', setitem('datasets.train.num_worker_per_gpu', -2),
         'datasets.train.num_worker_per_gpu', ('-2 is not valid', )),
    Case('gt_size_negative', 'phase1', setitem('datasets.train.gt_size', -32), 'datasets.train.gt_size',
         ('-32 is not valid', 'positive whole number of pixels')),
    Case('gt_size_not_multiple', 'phase1', setitem('datasets.train.gt_size', 30), 'datasets.train.gt_size',
         ('not a multiple of scale (4)', 'write e.g. 28')),
    Case('total_iter_zero', 'phase1', setitem('train.total_iter', 0), 'train.total_iter', ('0 is not valid', )),
    Case('lr_negative', 'phase2', setitem('train.optim_d.lr', -1e-4), 'train.optim_d.lr', ('is negative', )),
    Case('lr_as_text', 'phase1', setitem('train.optim_g.lr', '1e-4'), 'train.optim_g.lr',
         ("'1e-4' is text, not a number", 'write 1.0e-4 or !!float 1e-4')),
    Case('val_freq_zero', 'phase1', setitem('val.val_freq', 0), 'val.val_freq', ('0 is not valid', )),
    Case('bn_freeze_iter_zero', 'phase2', setitem('train.bn_freeze_iter', 0), 'train.bn_freeze_iter',
         ('0 is not valid', 'or ~ for never')),
    Case('print_freq_negative', 'phase1', setitem('logger.print_freq', -1), 'logger.print_freq', ('-1 is not valid', )),
    Case('checkpoint_freq_zero', 'phase1', setitem('logger.save_checkpoint_freq', 0), 'logger.save_checkpoint_freq',
         ('0 is not valid', )),
    Case('ema_decay_one', 'phase2', setitem('train.ema_decay', 1.0), 'train.ema_decay', ('outside [0, 1)', )),
    Case('loss_weight_negative', 'phase2', setitem('train.gan_opt.loss_weight', -1e-3), 'train.gan_opt.loss_weight',
         ('is negative', )),
    Case('cosine_periods_short', 'phase1',
         setitem('train.scheduler', {
             'type': 'CosineAnnealingRestartLR',
             'periods': [2],
             'restart_weights': [1]
         }), 'train.scheduler.periods', ('add up to 2 iterations but total_iter is 4', )),
    # scale
    Case('scale_unsupported', 'phase1', both(setitem('scale', 5), setitem('network_g.upscale', 5)), 'scale',
         ('5 is not supported', '2, 3, 4, 8')),
    Case('scale_vs_upscale', 'phase1', setitem('network_g.upscale', 2), 'network_g.upscale',
         ('(2) differs from scale (4)', )),
    # where training starts
    Case(
        'auto_resume_done',
        'phase1',
        None,
        'train.total_iter', ('--auto_resume resumes from iteration 6', 'nothing would be trained'),
        args=('--auto_resume', ),
        states=(2, 6)),
    Case(
        'resume_state_done',
        'phase1',
        setitem('path.resume_state', f'experiments/{NAME}/training_states/6.state'),
        'train.total_iter', ('path.resume_state resumes from iteration 6', ),
        states=(6, )),
    # checkpoints
    Case('pretrain_other_scale', 'phase2', setitem('path.pretrain_network_g', lambda w: str(w.net_x2)),
         'path.pretrain_network_g', ('holds an x2 generator', 'but network_g.upscale is 4')),
    Case('pretrain_other_width', 'phase2', setitem('network_g.num_feat', 16), 'path.pretrain_network_g',
         ('num_feat 8', 'network_g.num_feat is 16')),
    Case('pretrain_missing', 'phase2', setitem('path.pretrain_network_g', 'experiments/nowhere/net_g_latest.pth'),
         'path.pretrain_network_g', ('not found', )),
    Case('test_pretrain_other_scale', 'test', setitem('path.pretrain_network_g', lambda w: str(w.net_x2)),
         'path.pretrain_network_g', ('holds an x2 generator', )),
    Case('test_pretrain_unset', 'test', delete('path.pretrain_network_g'), 'path.pretrain_network_g',
         ('untrained generator', )),
    # data against the options
    Case('data_scale', 'phase1', setitem('datasets.train.dataroot_lq', lambda w: str(w.lr_x2)),
         'datasets.train.dataroot_lq', ('(x2), but scale is 4', )),
    Case('val_lr_missing_images', 'phase1', setitem('datasets.val.dataroot_lq', lambda w: str(w.lr_short)),
         'datasets.val.dataroot_lq', ('1 of the 3 images', 'img02.png')),
    Case('test_lr_missing_images', 'test', setitem('datasets.test_1.dataroot_lq', lambda w: str(w.lr_short)),
         'datasets.test_1.dataroot_lq', ('1 of the 3 images', 'img02.png')),
    Case(
        'lmdb_keys_differ', 'phase1',
        setitem(
            'datasets.train', lambda w: {
                **base_options('phase1', w)['datasets']['train'], 'io_backend': {
                    'type': 'lmdb'
                },
                'dataroot_gt': str(w.hr_lmdb),
                'dataroot_lq': str(w.lr_lmdb_other_keys)
            }), 'datasets.train.dataroot_lq', ('different keys', '1 only in dataroot_gt (img02)')),
    Case(
        'lmdb_scale', 'phase1',
        setitem(
            'datasets.train', lambda w: {
                **base_options('phase1', w)['datasets']['train'], 'io_backend': {
                    'type': 'lmdb'
                },
                'dataroot_gt': str(w.hr_lmdb),
                'dataroot_lq': str(w.lr_lmdb_x2)
            }), 'datasets.train.dataroot_lq', ('(x2), but scale is 4', )),
    Case('dataroot_missing', 'phase1', setitem('datasets.train.dataroot_gt', 'datasets/nowhere/HR'),
         'datasets.train.dataroot_gt', ('does not exist', )),
    Case('dataroot_is_a_file', 'phase1', setitem('datasets.train.dataroot_gt', lambda w: str(w.a_file)),
         'datasets.train.dataroot_gt', ('is a file, not a folder of images', )),
    Case('unknown_network_type', 'phase1', setitem('network_g.type', 'SRResnet'), 'network_g.type',
         ("did you mean 'SRResNet'?", )),
)
CASE = {case.name: case for case in CASES}


def training_state(run: Path, iteration: int, labels: str) -> None:
    """A complete training state of ``iteration`` with its network files, as a run of BasicSR writes them."""
    (run / 'training_states').mkdir(parents=True, exist_ok=True)
    (run / 'models').mkdir(parents=True, exist_ok=True)
    for label in labels:
        torch.save({'params': {}}, run / 'models' / f'net_{label}_{iteration}.pth')
    state = {'epoch': 0, 'iter': iteration, 'optimizers': [], 'schedulers': []}
    torch.save(state, run / 'training_states' / f'{iteration}.state')


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob('*')}


def run_in_process(case: Case, world: World, cwd: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture) -> tuple[str, str]:
    """Write the case's option file into ``cwd``, run its entry point's ``main`` and return (the line it exits with,
    everything printed). Asserts that it exits with a message and creates nothing."""
    import basicsr.utils.options
    monkeypatch.setattr(basicsr.utils.options, 'set_random_seed', lambda seed: None)  # keep this process's RNGs
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, 'argv', ['basicsr'])
    opt = base_options(case.kind, world)
    if case.edit:
        case.edit(opt, world)
    text = yaml.safe_dump(opt, sort_keys=False)
    (cwd / 'case.yml').write_text(case.text(text) if case.text else text)
    for iteration in case.states:
        training_state(cwd / 'experiments' / NAME, iteration, 'gd' if 'network_d' in opt else 'g')
    before = tree(cwd)
    entry = test_entry if case.kind == 'test' else train_entry
    with pytest.raises(SystemExit) as info:
        entry.main(['-opt', 'case.yml', *case.args])
    printed = capsys.readouterr()
    assert tree(cwd) == before, 'the run created files'
    assert isinstance(info.value.code, str), f'exit status {info.value.code!r} without a message'
    return info.value.code, printed.out + printed.err


@pytest.mark.parametrize('case', CASES, ids=lambda case: case.name)
def test_one_line_error(case, world, tmp_path, monkeypatch, capsys):
    message, printed = run_in_process(case, world, tmp_path, monkeypatch, capsys)
    # Python prints a SystemExit's string to stderr and exits with status 1: that is the last line the user sees
    assert '\n' not in message and 'Traceback' not in printed, (message, printed)
    assert message.startswith(f'error: case.yml: {case.key}'), message
    assert all(part in message for part in case.says), message
    assert not any(Path(tmp_path, folder).exists() for folder in RUN_FOLDERS if not case.states)


@pytest.mark.parametrize('kind', ['phase1', 'phase2', 'test'])
def test_the_base_options_pass(kind, world, tmp_path, monkeypatch):
    """The starting points of the cases are valid (so each case fails for its own mistake only)."""
    import basicsr.utils.options
    monkeypatch.setattr(basicsr.utils.options, 'set_random_seed', lambda seed: None)
    monkeypatch.chdir(tmp_path)
    write_options(base_options(kind, world), tmp_path / 'ok.yml')
    monkeypatch.setattr(sys, 'argv', ['basicsr', '-opt', 'ok.yml'])
    opt, _ = basicsr.utils.options.parse_options(str(tmp_path), is_train=kind != 'test')
    assert opt['name'] == NAME and not any(Path(tmp_path, folder).exists() for folder in RUN_FOLDERS)


LMDB_TRAIN = setitem(
    'datasets.train', lambda w: {
        **base_options('phase1', w)['datasets']['train'], 'io_backend': {
            'type': 'lmdb'
        },
        'dataroot_gt': str(w.hr_lmdb),
        'dataroot_lq': str(w.lr_lmdb)
    })


@pytest.mark.parametrize('edit,args', [
    pytest.param(
        both(setitem('path.pretrain_network_g', lambda w: str(w.net_x2)), setitem('path.strict_load_g', False)), (),
        id='other_scale_loaded_non_strictly'),
    pytest.param(setitem('train.total_iter', 8), ('--auto_resume', ), id='resumes_below_total_iter'),
    pytest.param(setitem('train.total_iter', 4), ('--auto_resume', ), id='ends_at_the_resumed_state'),
    pytest.param(
        setitem('path.pretrain_network_g', lambda w: str(w.net_x2)),
        ('--auto_resume', ), id='resume_replaces_pretrain'),
    pytest.param(LMDB_TRAIN, (), id='matching_lmdbs'),
    pytest.param(setitem('val.metrics.psnr.better', 'higher'), (), id='metric_better'),
    pytest.param(
        both(setitem('datasets.train.pin_memory', True), setitem('datasets.train.persistent_workers', False)), (),
        id='loader_keys'),
])
def test_valid_variants_pass(edit, args, world, tmp_path, monkeypatch):
    """What the checks must not refuse."""
    import basicsr.utils.options
    monkeypatch.setattr(basicsr.utils.options, 'set_random_seed', lambda seed: None)
    monkeypatch.chdir(tmp_path)
    opt = base_options('phase2', world)
    opt['train']['total_iter'] = 8
    edit(opt, world)
    states = tmp_path / 'experiments' / NAME / 'training_states'
    states.mkdir(parents=True)
    (states / '4.state').write_bytes(b'')
    write_options(opt, tmp_path / 'ok.yml')
    monkeypatch.setattr(sys, 'argv', ['basicsr', '-opt', 'ok.yml', *args])
    basicsr.utils.options.parse_options(str(tmp_path), is_train=True)


def test_a_damaged_final_state_does_not_count(world, tmp_path, monkeypatch):
    """The loop skips a damaged state and resumes from the previous one, which is below total_iter: no error."""
    import basicsr.utils.options
    monkeypatch.setattr(basicsr.utils.options, 'set_random_seed', lambda seed: None)
    monkeypatch.chdir(tmp_path)
    training_state(tmp_path / 'experiments' / NAME, 2, 'g')
    (tmp_path / 'experiments' / NAME / 'training_states' / '6.state').write_bytes(b'truncated')
    write_options(base_options('phase1', world), tmp_path / 'ok.yml')  # total_iter: 4
    monkeypatch.setattr(sys, 'argv', ['basicsr', '-opt', 'ok.yml', '--auto_resume'])
    basicsr.utils.options.parse_options(str(tmp_path), is_train=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without a GPU')
def test_gpus_asked_for_on_a_machine_without_one(world, tmp_path, monkeypatch, capsys):
    case = Case('num_gpu', 'phase1', setitem('num_gpu', 1), 'num_gpu', ('torch sees no GPU', 'write auto or 0'))
    message, printed = run_in_process(case, world, tmp_path, monkeypatch, capsys)
    assert message.startswith('error: case.yml: num_gpu: 1, but') and 'Traceback' not in printed


def test_shipped_option_files_pass_the_key_checks(world, tmp_path, monkeypatch):
    """Every option file in options/ has only keys the checks know (its data and weights are not here)."""
    from conftest import OPTIONS
    from srgan_plugin.options_check import check_registered
    from srgan_plugin.options_schema import check_schema, check_structure

    for path in sorted(OPTIONS.rglob('*.yml')):
        opt = copy.deepcopy(load_options(str(path.relative_to(OPTIONS))))
        is_train = not path.name.startswith('test_')
        check_structure(opt, is_train)
        opt.update(num_gpu=0, is_train=is_train, dist=False, rank=0, world_size=1, auto_resume=False)
        check_registered(opt)
        check_schema(opt)


@pytest.mark.parametrize('mistake', ['yaml_syntax', 'dataset_key'])
@pytest.mark.slow
def test_basicsr_train_prints_one_line(mistake, world, tmp_path):
    """End to end: ``python -m basicsr.train`` (through the autoload hook) exits 1 with the line, no traceback."""
    case = CASE[mistake]
    opt = base_options(case.kind, world)
    if case.edit:
        case.edit(opt, world)
    text = yaml.safe_dump(opt, sort_keys=False)
    (tmp_path / 'case.yml').write_text(case.text(text) if case.text else text)
    result = run(['-m', 'basicsr.train', '-opt', 'case.yml'], cwd=tmp_path)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-3000:]
    assert last.startswith(f'error: case.yml: {case.key}') and all(part in last for part in case.says), last
    assert not any(Path(tmp_path, folder).exists() for folder in RUN_FOLDERS)
