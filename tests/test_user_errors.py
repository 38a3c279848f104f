"""Every mistake a user can make with data, checkpoints, images and interrupts, through the real commands: one
``error:`` line naming the cause, the documented exit status, no traceback, and no input or finished output changed.

The commands run in this process (their ``main(argv)``; ``srgan_plugin.train`` / ``.test`` for ``basicsr.train`` /
``basicsr.test``), sharing one module-scoped set of small generated inputs; the SIGBUS cases run in a forked copy of
this process (a crash must not end the test run), and only the cases about signals start subprocesses.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import cv2
import lmdb
import pytest
import torch
from launcher import Popen, popen, python
from conftest import load_options, make_paired_folder, synthetic_image, tiny_training_options, write_options

from srgan_plugin import evaluate, export, interpolate, upscale
from srgan_plugin import test as plugin_test
from srgan_plugin import train as train_cli
from srgan_plugin.archs import SRGANDiscriminator
from srgan_plugin.data_check import check_data
from srgan_plugin.inference.weights import ArchSpec, random_generator
from srgan_plugin.prepare import cli as prepare_cli
from srgan_plugin.training.signals import quiet_workers, workers_start_deaf

TINY = ArchSpec(3, 3, 8, 2, 4, False)
HR_DB, LR_DB = 'train_HR_sub.lmdb', 'train_LR_bicubic_X4_sub.lmdb'
RUN_FOLDERS = ('experiments', 'results', 'tb_logger')


class Evil:
    """Unpickling it would run a shell command: a checkpoint holding it must be refused, never loaded."""

    def __reduce__(self):
        return (os.system, ('echo this-must-never-run', ))


def seed_worker(worker_id: int) -> None:
    """A loader's own worker_init_fn (BasicSR seeds the workers with one)."""
    torch.manual_seed(worker_id)


@dataclasses.dataclass
class World:
    """The shared inputs: good data and checkpoints, and damaged checkpoints (damaged data is made per case)."""
    root: Path
    photos: Path  # HR photos for prepare
    lmdbs: Path  # a finished `prepare folder` output: the HR/LR LMDB pair
    testset: Path  # <testset>/HR + <testset>/LR_bicubic/X4
    images: Path  # a folder of two small images for upscale
    models: dict[str, Path]

    @property
    def hr(self) -> Path:
        return self.testset / 'HR'

    @property
    def lr(self) -> Path:
        return self.testset / 'LR_bicubic' / 'X4'


def save(obj: object, path: Path) -> Path:
    torch.save(obj, path)
    return path


def make_models(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    state = random_generator(TINY, seed=1).state_dict()
    nan = {k: v.clone() for k, v in state.items()}
    nan['body.1.conv2.weight'][0, 0, 0, 0] = float('nan')
    inf = {k: v.clone() for k, v in state.items()}
    inf['conv_last.bias'][1] = float('inf')
    good = save({'params': state, 'params_ema': state}, folder / 'good.pth')
    data = good.read_bytes()
    (folder / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (folder / 'empty.pth').write_bytes(b'')
    x2 = random_generator(dataclasses.replace(TINY, upscale=2), seed=2).state_dict()
    nan_d = SRGANDiscriminator(num_feat=8, input_size=32).state_dict()
    nan_d['classifier.3.bias'].fill_(float('nan'))
    return {
        'good': good,
        'nan': save({
            'params': nan,
            'params_ema': nan
        }, folder / 'nan.pth'),
        'inf': save({'params_ema': inf}, folder / 'inf.pth'),
        'evil': save({
            'params': state,
            'extra': Evil()
        }, folder / 'evil.pth'),
        'truncated': folder / 'truncated.pth',
        'empty': folder / 'empty.pth',
        'x2': save({'params': x2}, folder / 'x2.pth'),
        'discriminator': save({'params': SRGANDiscriminator(num_feat=8, input_size=32).state_dict()},
                              folder / 'net_d.pth'),
        'no_params': save({'weights': state}, folder / 'odd_keys.pth'),
        'nan_d': save({'params': nan_d}, folder / 'nan_d.pth'),
    }


@pytest.fixture(scope='module')
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp('user_errors')
    photos = root / 'photos'
    photos.mkdir()
    for i in range(3):
        cv2.imwrite(str(photos / f'p{i}.png'), synthetic_image(64, 80, seed=i))
    assert prepare_cli.main([
        'folder', '--hr',
        str(photos), '--out',
        str(root / 'lmdbs'), '--crop-size', '64', '--step', '32', '--workers', '1'
    ]) == 0
    testset = root / 'data' / 'Syn'
    make_paired_folder(testset, count=3, size=32)
    images = root / 'images'
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / f'im{i}.png'), synthetic_image(12, 12, seed=10 + i))
    return World(root, photos, root / 'lmdbs', testset, images, make_models(root / 'models'))


def digest(*paths: Path) -> dict[str, str]:
    """SHA-256 of every file under ``paths`` (files or folders), by path: what must not change."""
    files = {}
    for path in paths:
        found = [path] if path.is_file() else sorted(p for p in path.rglob('*') if p.is_file())
        for file in found:
            files[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return files


def copy_lmdbs(world: World, tmp: Path) -> Path:
    return Path(shutil.copytree(world.lmdbs, tmp / 'lmdbs'))


def copy_testset(world: World, tmp: Path) -> Path:
    return Path(shutil.copytree(world.testset, tmp / 'data' / 'Syn'))


def delete(db: Path, key: str) -> None:
    env = lmdb.open(str(db))
    with env.begin(write=True) as txn:
        txn.delete(key.encode('ascii'))
    env.close()


def train_options(world: World, tmp: Path, gt: Path, lq: Path, lmdb_backend: bool = True, **path: object) -> Path:
    """A tiny phase-1 option file training on ``gt`` / ``lq`` (LMDBs or folders), validating on the test set."""
    opt = tiny_training_options(1, (world.hr, world.lr), 'user_errors', iters=4)
    train = opt['datasets']['train']
    train.update(dataroot_gt=str(gt), dataroot_lq=str(lq))
    if lmdb_backend:
        train['io_backend'] = {'type': 'lmdb'}
    opt['logger']['use_tb_logger'] = False
    opt['path'].update(path)
    return write_options(opt, tmp / 'options.yml')


def basicsr_test_options(world: World, tmp: Path, data: Optional[Path] = None, model: Optional[Path] = None) -> Path:
    """The real x4 test option file on ``data`` (default: the shared test set) with ``model`` (default: good)."""
    opt = load_options('test_srresnet_x4.yml')
    data = data or world.testset
    opt['num_gpu'] = 0
    opt['datasets'] = {
        'test_1': {
            **opt['datasets']['test_1'], 'dataroot_gt': str(data / 'HR'),
            'dataroot_lq': str(data / 'LR_bicubic' / 'X4')
        }
    }
    opt['network_g'].update(num_feat=8, num_block=2)
    opt['path']['pretrain_network_g'] = str(model or world.models['good'])
    return write_options(opt, tmp / 'options.yml')


# --- the cases: each returns (argv, paths that must not change) -------------------------------------------------------


def case_verify_empty_data_mdb(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    dbs = copy_lmdbs(world, tmp)
    (dbs / HR_DB / 'data.mdb').write_bytes(b'')
    return ['verify', str(dbs / HR_DB), str(dbs / LR_DB)], [dbs]


def case_verify_garbage_data_mdb(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    dbs = copy_lmdbs(world, tmp)
    (dbs / LR_DB / 'data.mdb').write_bytes(b'not an LMDB file' * 1500)
    return ['verify', str(dbs / LR_DB)], [dbs]


def case_verify_other_keys(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    dbs = copy_lmdbs(world, tmp)
    delete(dbs / LR_DB, 'p1_s001')
    meta = dbs / LR_DB / 'meta_info.txt'
    meta.write_text(''.join(line for line in meta.read_text().splitlines(True) if not line.startswith('p1_s001')))
    return ['verify', str(dbs / HR_DB), str(dbs / LR_DB)], [dbs]


def case_verify_not_an_lmdb(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    return ['verify', str(world.hr)], [world.hr]


def case_prepare_empty_folder(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    (tmp / 'empty').mkdir()
    return ['folder', '--hr', str(tmp / 'empty'), '--out', str(tmp / 'out'), '--workers', '1'], [tmp / 'empty']


def case_prepare_no_images(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    folder = tmp / 'notes'
    folder.mkdir()
    (folder / 'readme.png').write_text('not an image')
    (folder / 'list.txt').write_text('a\nb\n')
    return ['folder', '--hr', str(folder), '--out', str(tmp / 'out'), '--workers', '1'], [folder]


def case_prepare_stop_on_bad_file(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    photos = Path(shutil.copytree(world.photos, tmp / 'photos'))
    (photos / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
    return ['folder', '--hr',
            str(photos), '--out',
            str(tmp / 'out'), '--workers', '1', '--on-bad-file', 'stop'], [photos]


def case_prepare_out_is_a_file(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    (tmp / 'out').write_text('my notes')
    return ['folder', '--hr', str(world.photos), '--out',
            str(tmp / 'out'), '--workers', '1'], [tmp / 'out', world.photos]


def case_prepare_over_other_settings(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    out = copy_lmdbs(world, tmp)
    return ['folder', '--hr', str(world.photos), '--out', str(out), '--crop-size', '48', '--workers', '1'], [out]


def case_train_lmdb_keys_differ(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    dbs = copy_lmdbs(world, tmp)
    delete(dbs / LR_DB, 'p2_s001')
    meta = dbs / LR_DB / 'meta_info.txt'
    meta.write_text(''.join(line for line in meta.read_text().splitlines(True) if not line.startswith('p2_s001')))
    return ['-opt', str(train_options(world, tmp, dbs / HR_DB, dbs / LR_DB))], [dbs]


def case_train_lmdb_key_not_stored(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    dbs = copy_lmdbs(world, tmp)
    delete(dbs / HR_DB, 'p0_s002')
    return ['-opt', str(train_options(world, tmp, dbs / HR_DB, dbs / LR_DB))], [dbs]


def case_train_lmdb_not_an_lmdb(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    dbs = copy_lmdbs(world, tmp)
    (dbs / HR_DB / 'data.mdb').write_bytes(b'\0' * 9000)
    return ['-opt', str(train_options(world, tmp, dbs / HR_DB, dbs / LR_DB))], [dbs]


def case_train_folder_scale_mismatch(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    data = copy_testset(world, tmp)
    cv2.imwrite(str(data / 'LR_bicubic' / 'X4' / 'img00.png'), synthetic_image(16, 16, seed=1))  # x2, not x4
    opt = train_options(world, tmp, data / 'HR', data / 'LR_bicubic' / 'X4', lmdb_backend=False)
    return ['-opt', str(opt)], [data]


def case_train_pretrained_truncated(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    opt = train_options(
        world, tmp, world.lmdbs / HR_DB, world.lmdbs / LR_DB, pretrain_network_g=str(world.models['truncated']))
    return ['-opt', str(opt)], [world.models['truncated'], world.lmdbs]


def case_train_pretrained_without_the_key(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    opt = train_options(
        world, tmp, world.lmdbs / HR_DB, world.lmdbs / LR_DB, pretrain_network_g=str(world.models['no_params']))
    return ['-opt', str(opt)], [world.models['no_params']]


def case_test_lr_image_missing(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    data = copy_testset(world, tmp)
    (data / 'LR_bicubic' / 'X4' / 'img01.png').unlink()
    return ['-opt', str(basicsr_test_options(world, tmp, data))], [data]


def case_test_extra_lr_file(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    data = copy_testset(world, tmp)
    (data / 'LR_bicubic' / 'X4' / 'notes.txt').write_text('x')
    return ['-opt', str(basicsr_test_options(world, tmp, data))], [data]


def case_test_hr_not_an_image(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    data = copy_testset(world, tmp)
    (data / 'HR' / 'img02.png').write_text('not a png')
    return ['-opt', str(basicsr_test_options(world, tmp, data))], [data]


def case_test_empty_hr_folder(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    data = copy_testset(world, tmp)
    for image in (data / 'HR').iterdir():
        image.unlink()
    return ['-opt', str(basicsr_test_options(world, tmp, data))], [data]


def case_test_lr_of_another_scale(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    data = copy_testset(world, tmp)
    cv2.imwrite(str(data / 'LR_bicubic' / 'X4' / 'img00.png'), synthetic_image(16, 16, seed=0))
    return ['-opt', str(basicsr_test_options(world, tmp, data))], [data]


def case_test_pretrained_nan(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    return ['-opt', str(basicsr_test_options(world, tmp,
                                             model=world.models['nan']))], [world.models['nan'], world.testset]


def case_test_pretrained_pickle(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    return ['-opt', str(basicsr_test_options(world, tmp, model=world.models['evil']))], [world.models['evil']]


def upscale_with(model: str) -> Callable[[World, Path], tuple[list[str], list[Path]]]:

    def case(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
        return ['-i', str(world.images), '-o',
                str(tmp / 'out'), '--model',
                str(world.models[model])], [world.images, world.models[model]]

    return case


def case_upscale_not_an_image(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    fake = tmp / 'photo.png'
    fake.write_text('this is text')
    return ['-i', str(fake), '-o', str(tmp / 'out'), '--model', str(world.models['good'])], [fake]


def case_upscale_empty_folder(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    (tmp / 'in').mkdir()
    return ['-i', str(tmp / 'in'), '-o', str(tmp / 'out'), '--model', str(world.models['good'])], [tmp / 'in']


def case_upscale_output_is_a_file(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    (tmp / 'out').write_text('keep me')
    return ['-i', str(world.images), '-o',
            str(tmp / 'out'), '--model',
            str(world.models['good'])], [tmp / 'out', world.images]


def case_evaluate_other_scale(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    return [
        '--model',
        str(world.models['x2']), '--data-root',
        str(world.testset.parent), '--sets', 'Syn', '--out',
        str(tmp / 'eval')
    ], [world.testset, world.models['x2']]


def case_evaluate_hr_missing(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    data = copy_testset(world, tmp)
    (data / 'HR' / 'img02.png').unlink()
    return [
        '--model',
        str(world.models['good']), '--data-root',
        str(data.parent), '--sets', 'Syn', '--out',
        str(tmp / 'eval')
    ], [data]


def case_train_nan_discriminator(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    opt = tiny_training_options(2, (world.hr, world.lr), 'user_errors', iters=4)
    opt['path']['pretrain_network_g'] = str(world.models['good'])
    opt['path']['pretrain_network_d'] = str(world.models['nan_d'])
    return ['-opt', str(write_options(opt, tmp / 'options.yml'))], [world.models['nan_d']]


def case_evaluate_pickle(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    return [
        '--model',
        str(world.models['evil']), '--data-root',
        str(world.testset.parent), '--sets', 'Syn', '--out',
        str(tmp / 'eval')
    ], [world.models['evil']]


def case_export_nan(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    return ['--model', str(world.models['inf']), '--onnx', str(tmp / 'net.onnx')], [world.models['inf']]


def case_interpolate_other_scale(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    return [str(world.models['good']),
            str(world.models['x2']), '--alpha', '0.5', '-o',
            str(tmp / 'mix.pth')], [world.models['good'], world.models['x2']]


def case_interpolate_nan(world: World, tmp: Path) -> tuple[list[str], list[Path]]:
    return [str(world.models['good']),
            str(world.models['nan']), '--alpha', '0.5', '-o',
            str(tmp / 'mix.pth')], [world.models['nan']]


COMMANDS = {
    'prepare': lambda argv: prepare_cli.main(argv),
    'upscale': upscale.main,
    'export': export.main,
    'evaluate': evaluate.main,
    'interpolate': interpolate.main,
    'train': train_cli.main,
    'test': plugin_test.main,
}


@dataclasses.dataclass(frozen=True)
class Case:
    command: str
    setup: Callable[[World, Path], tuple[list[str], list[Path]]]
    status: int
    cause: str  # in the error line
    detail: str = ''  # anywhere in the output (e.g. the problem verify lists above its error line)
    absent: str = ''  # must not appear anywhere


CASES = {
    'verify: empty data.mdb':
    Case('prepare', case_verify_empty_data_mdb, 1, 'does not verify', 'data.mdb is empty'),
    'verify: data.mdb not an LMDB':
    Case('prepare', case_verify_garbage_data_mdb, 1, 'does not verify', 'data.mdb is not a readable LMDB'),
    'verify: HR and LR keys differ':
    Case('prepare', case_verify_other_keys, 1, 'does not verify', 'the key sets differ'),
    'verify: a folder of PNGs':
    Case('prepare', case_verify_not_an_lmdb, 1, 'does not verify', 'data.mdb is missing'),
    'prepare: empty input folder':
    Case('prepare', case_prepare_empty_folder, 1, 'holds no image files'),
    'prepare: no file is an image':
    Case('prepare', case_prepare_no_images, 1, 'none of the 2 input files is a usable'),
    'prepare: a broken image, --on-bad-file stop':
    Case('prepare', case_prepare_stop_on_bad_file, 1, 'broken.png'),
    'prepare: --out is a file':
    Case('prepare', case_prepare_out_is_a_file, 1, 'exists and is not a folder'),
    'prepare: finished output, other settings':
    Case('prepare', case_prepare_over_other_settings, 1, 'made differently (crop_size: 64 there, 48 asked'),
    'train: LMDB keys differ':
    Case('train', case_train_lmdb_keys_differ, 1, 'list different keys'),
    'train: meta_info key not stored':
    Case('train', case_train_lmdb_key_not_stored, 1, 'not stored in data.mdb'),
    'train: data.mdb not an LMDB':
    Case('train', case_train_lmdb_not_an_lmdb, 1, 'data.mdb is not a readable LMDB'),
    'train: HR not scale x LR':
    Case('train', case_train_folder_scale_mismatch, 1, 'img00.png', 'scale is 4'),
    'train: truncated pretrain_network_g':
    Case('train', case_train_pretrained_truncated, 1, 'path.pretrain_network_g: ', 'truncated'),
    'train: pretrain_network_g without params':
    Case('train', case_train_pretrained_without_the_key, 1, "has no 'params'", 'odd_keys.pth'),
    'test: LR image missing':
    Case('test', case_test_lr_image_missing, 1, 'img01.png', 'no LR image'),
    'test: extra file in LR folder':
    Case('test', case_test_extra_lr_file, 1, 'notes.txt'),
    'test: HR file not an image':
    Case('test', case_test_hr_not_an_image, 1, 'not images OpenCV can read (img02.png)'),
    'test: empty HR folder':
    Case('test', case_test_empty_hr_folder, 1, 'holds no images'),
    'test: LR of another scale':
    Case('test', case_test_lr_of_another_scale, 1, 'img00.png', 'scale is 4'),
    'test: NaN pretrain_network_g':
    Case('test', case_test_pretrained_nan, 1, 'body.1.conv2.weight holds NaN or Inf'),
    'test: pickled pretrain_network_g':
    Case('test', case_test_pretrained_pickle, 1, 'torch.save(net.state_dict()', absent='weights_only=False'),
    'upscale: NaN weights':
    Case('upscale', upscale_with('nan'), 1, 'body.1.conv2.weight holds NaN or Inf'),
    'upscale: Inf weights':
    Case('upscale', upscale_with('inf'), 1, 'conv_last.bias holds NaN or Inf'),
    'upscale: code-running pickle':
    Case('upscale', upscale_with('evil'), 1, 'torch.save(net.state_dict()', absent='weights_only=False'),
    'upscale: truncated .pth':
    Case('upscale', upscale_with('truncated'), 1, 'not a readable PyTorch checkpoint'),
    'upscale: empty .pth':
    Case('upscale', upscale_with('empty'), 1, 'not a readable PyTorch checkpoint'),
    'upscale: a discriminator':
    Case('upscale', upscale_with('discriminator'), 1, 'looks like SRGANDiscriminator'),
    'upscale: text file named .png':
    Case('upscale', case_upscale_not_an_image, 1, '1 of 1 images could not be upscaled',
         'cannot be decoded as an image'),
    'upscale: empty input folder':
    Case('upscale', case_upscale_empty_folder, 1, 'no images in'),
    'upscale: -o is a file':
    Case('upscale', case_upscale_output_is_a_file, 1, 'is an existing file'),
    'evaluate: x2 model on x4 data':
    Case('evaluate', case_evaluate_other_scale, 1, 'is an x2 model'),
    'evaluate: LR image without HR':
    Case('evaluate', case_evaluate_hr_missing, 1, 'have no HR of the same name'),
    'train: NaN pretrain_network_d':
    Case('train', case_train_nan_discriminator, 1, "path.pretrain_network_d: ", 'holds NaN or Inf'),
    'evaluate: code-running pickle':
    Case('evaluate', case_evaluate_pickle, 1, 'torch.save(net.state_dict()', absent='weights_only=False'),
    'export: Inf weights':
    Case('export', case_export_nan, 1, 'conv_last.bias holds NaN or Inf'),
    'interpolate: models of other scales':
    Case('interpolate', case_interpolate_other_scale, 1, 'have different architectures (upscale 4 vs 2)'),
    'interpolate: NaN weights':
    Case('interpolate', case_interpolate_nan, 1, 'holds NaN or Inf'),
}


def run_in_process(command: str, argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``main(argv)``, as the shell would see them."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, 'argv', [command, *argv])
    extra = ''
    try:
        status = COMMANDS[command](argv) or 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
        extra = f'{exit_.code}\n' if isinstance(exit_.code, str) else ''  # what Python prints for SystemExit(str)
    out, err = capsys.readouterr()
    return status, out, err + extra


def assert_one_error_line(status: int, out: str, err: str, expected_status: int, cause: str) -> str:
    assert status == expected_status, (status, out[-2000:], err[-2000:])
    assert 'Traceback' not in err and 'Traceback' not in out, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and 'error: ' in lines[-1], err[-2000:]
    assert sum('error:' in line for line in lines) == 1, err[-2000:]
    assert cause in lines[-1], lines[-1]
    return lines[-1]


@pytest.mark.parametrize('name', CASES)
def test_one_line_and_nothing_changed(name: str, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    case = CASES[name]
    argv, watched = case.setup(world, tmp_path)
    before = digest(*watched)
    capsys.readouterr()
    status, out, err = run_in_process(case.command, argv, tmp_path, monkeypatch, capsys)
    assert_one_error_line(status, out, err, case.status, case.cause)
    assert case.detail in out + err, (out + err)[-2000:]
    assert not case.absent or case.absent not in out + err
    assert digest(*watched) == before
    assert not [name for name in RUN_FOLDERS if (tmp_path / name).exists()]  # stopped before any folder was made
    assert not list(tmp_path.rglob('.*.tmp-*'))  # no temporary file or staging folder left


def test_good_options_pass_the_data_checks(world: World, tmp_path: Path) -> None:
    import yaml

    for path in (train_options(world, tmp_path, world.lmdbs / HR_DB,
                               world.lmdbs / LR_DB), basicsr_test_options(world, tmp_path)):
        opt = yaml.safe_load(path.read_text())
        opt['is_train'] = 'train' in opt['datasets']
        check_data(opt, str(path))


# --- interrupts in process: the worst moment is injected --------------------------------------------------------------


def test_upscale_ctrl_c_while_writing(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture) -> None:
    """Ctrl-C while the second image is being written: the first is complete, the second absent, nothing partial."""
    replaced = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        if replaced:
            raise KeyboardInterrupt
        replaced.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', replace)
    before = digest(world.images)
    argv = ['-i', str(world.images), '-o', str(tmp_path / 'out'), '--model', str(world.models['good'])]
    status, out, err = run_in_process('upscale', argv, tmp_path, monkeypatch, capsys)
    assert_one_error_line(status, out, err, 130, 'interrupted')
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['im0_out.png']
    assert cv2.imread(str(tmp_path / 'out' / 'im0_out.png')).shape == (48, 48, 3)
    assert digest(world.images) == before


def test_evaluate_ctrl_c_keeps_the_previous_results(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture) -> None:
    """A finished evaluation's results.json survives a rerun interrupted while writing its own."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))  # no LPIPS weights: nothing to download
    argv = [
        '--model',
        str(world.models['good']), '--data-root',
        str(world.testset.parent), '--sets', 'Syn', '--out',
        str(tmp_path / 'eval')
    ]
    status, _, err = run_in_process('evaluate', argv, tmp_path, monkeypatch, capsys)
    assert status == 0, err
    finished = digest(tmp_path / 'eval' / 'results.json', tmp_path / 'eval' / 'results.md')

    def dump(obj: object, f, **kwargs: object) -> None:
        f.write('{"half": ')
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluate.json, 'dump', dump)
    status, out, err = run_in_process('evaluate', argv, tmp_path, monkeypatch, capsys)
    assert_one_error_line(status, out, err, 130, 'interrupted')
    assert digest(tmp_path / 'eval' / 'results.json', tmp_path / 'eval' / 'results.md') == finished
    assert not list((tmp_path / 'eval').glob('.*.tmp-*'))


# --- signals and SIGBUS: subprocesses ---------------------------------------------------------------------------------


def run_forked(command: str, argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``python -m srgan_plugin.COMMAND ARGV`` in a forked process (launcher.py): a crash such as SIGBUS kills that
    process, not the test run. Returns the status as the shell reports it (128 + signal for a crash), stdout and
    stderr."""
    result = python(['-m', f'srgan_plugin.{command}', *argv], cwd)
    code = result.returncode
    return (128 - code if code < 0 else code), result.stdout, result.stderr


@pytest.mark.parametrize('command', ['prepare', 'train'])
@pytest.mark.slow
def test_truncated_lmdb_is_one_line_not_sigbus(command: str, world: World, tmp_path: Path) -> None:
    """LMDB maps data.mdb into memory: reading past the end of a truncated file was SIGBUS (exit 135, no message), in
    ``prepare verify`` and in training. Run in a forked process, so that a crash would not end the test run."""
    dbs = copy_lmdbs(world, tmp_path)
    data = dbs / HR_DB / 'data.mdb'
    os.truncate(data, data.stat().st_size // 2)
    before = digest(dbs)
    if command == 'prepare':
        argv = ['verify', str(dbs / HR_DB), str(dbs / LR_DB)]
        cause = 'rebuild it with python -m srgan_plugin.prepare'
    else:
        argv = ['-opt', str(train_options(world, tmp_path, dbs / HR_DB, dbs / LR_DB))]
        cause = f'{dbs / HR_DB}: data.mdb is truncated'
    status, out, err = run_forked(command, argv, tmp_path)
    assert_one_error_line(status, out, err, 1, cause)
    assert 'data.mdb is truncated' in out + err
    assert digest(dbs) == before
    assert not (tmp_path / 'experiments').exists()


def test_data_workers_ignore_ctrl_c_and_sigterm() -> None:
    """The training loop's data workers survive SIGINT and SIGTERM (a signal to the process group reaches them too)
    and still run the loader's own worker_init_fn."""
    loader = quiet_workers(torch.utils.data.DataLoader(list(range(40)), num_workers=1, worker_init_fn=seed_worker))
    assert loader.worker_init_fn.inner is seed_worker
    with workers_start_deaf():
        batches = iter(loader)
    assert int(next(batches)) == 0
    worker = batches._workers[0]
    for signum in (signal.SIGINT, signal.SIGTERM):
        os.kill(worker.pid, signum)
    time.sleep(0.3)
    assert worker.is_alive()
    assert [int(batch) for batch in batches] == list(range(1, 40))


def wait_until(condition: Callable[[], bool], process: Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f'ended early (rc {process.returncode}): {process.communicate()[1][-3000:]}'
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.02)


@pytest.mark.slow
def test_prepare_ctrl_c_with_two_workers(world: World, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group) while 2 workers prepare: one line, no worker traceback, nothing at
    the destination."""
    photos = tmp_path / 'photos'
    photos.mkdir()
    for i in range(64):  # enough work that the run is still going after the staging folder appears, on a busy CPU
        cv2.imwrite(str(photos / f'p{i:02d}.png'), synthetic_image(192, 192, seed=i))
    before = digest(photos)
    args = ['-m', 'srgan_plugin.prepare', 'folder', '--hr', f'{photos}', '--out', f'{tmp_path}/out', '--workers', '2']
    process = popen(args, tmp_path, fresh=True)  # a new interpreter, as a user's: nothing inherited from the tests
    wait_until(lambda: bool(list(tmp_path.glob('.out.tmp-*'))), process)  # the pool is starting
    time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert_one_error_line(process.returncode, out, err, 130, 'interrupted; nothing was left at the destination')
    assert not [p.name for p in tmp_path.iterdir() if p.name not in ('photos', )]
    assert digest(photos) == before


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT], ids=['SIGTERM', 'SIGINT'])
@pytest.mark.slow
def test_training_signal_to_the_process_group(signum: int, world: World, tmp_path: Path) -> None:
    """A scheduler's ``kill -- -PGID`` (SIGTERM) or Ctrl-C (SIGINT) reaches the data workers too: the loop still saves
    and exits with its one line, instead of ``DataLoader worker (pid N) is killed by signal``."""
    opt = tiny_training_options(1, (world.hr, world.lr), 'signalled', iters=100000)
    opt['datasets']['train'].update(num_worker_per_gpu=1, dataset_enlarge_ratio=200)
    opt['logger'].update(use_tb_logger=False, save_checkpoint_freq=10**6, print_freq=1)
    opt.pop('val')
    write_options(opt, tmp_path / 'options.yml')
    before = digest(world.testset)
    process = popen(['-m', 'basicsr.train', '-opt', 'options.yml'], tmp_path)
    run = tmp_path / 'experiments' / 'signalled'
    wait_until(lambda: any('iter:      3' in log.read_text() for log in run.glob('train_*.log')), process)
    os.killpg(process.pid, signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err[-3000:]
    assert 'Traceback' not in err and 'killed by signal' not in err, err[-3000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert f'{signal.Signals(signum).name} received: training state of iter' in lines[-1], lines[-1]
    assert list((run / 'training_states').glob('*.state'))
    assert digest(world.testset) == before
