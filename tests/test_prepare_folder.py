"""``python -m srgan_plugin.prepare folder``: HR folders -> sub-image LMDB pair; re-runs, bad input, training on it."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import time
from os import path as osp
from pathlib import Path

import cv2
import numpy as np
import pytest
from basicsr.data.paired_image_dataset import PairedImageDataset

from launcher import popen
from conftest import OPTIONS, load_options, run, synthetic_image
from srgan_plugin.prepare import pipeline
from srgan_plugin.prepare.cli import main
from srgan_plugin.prepare.imgops import bicubic_downscale, count_subimages
from srgan_plugin.prepare.keys import KEYS_FILE, read_keys_tsv
from srgan_plugin.prepare.lmdb_io import iter_lmdb_items, read_lmdb_image, read_meta_info
from srgan_plugin.prepare.staging import MANIFEST, PARTIAL_MARKER, read_manifest, staging_folders, staging_path
from test_prepare_subimages import make_hr_folder, snapshot

HR_DB, LR_DB = 'train_HR_sub.lmdb', 'train_LR_bicubic_X4_sub.lmdb'
CROP = ['--crop-size', '64', '--step', '32']
SIZES = [(130, 203), (70, 90), (64, 64)]  # -> 18, 2 (kept whole in height), 1 sub-images


def refused(capsys: pytest.CaptureFixture, *args: str, status: int = 1) -> str:
    """Run the CLI expecting a refusal: one error line without traceback, exit status 1 (an error; the line is the
    ``SystemExit`` message, printed on stderr) or 2 (usage; the line is written to stderr)."""
    with pytest.raises(SystemExit) as exc_info:
        main(list(args))
    code, err = exc_info.value.code, capsys.readouterr().err
    if status == 1:
        assert isinstance(code, str) and not err, (code, err)
        err = f'{code}\n'
    else:
        assert code == status, (code, err)
    assert err.count('\n') == 1 and 'error:' in err and 'Traceback' not in err, err
    return err


@pytest.fixture(scope='module')
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two HR folders with every kind of file the policies cover."""
    root = tmp_path_factory.mktemp('inputs')
    hr1 = make_hr_folder(root / 'hr1', SIZES)
    img = synthetic_image(80, 100, 7)
    cv2.imwrite(str(hr1 / 'my photo.v2.png'), img)  # dots and a space
    cv2.imwrite(str(hr1 / 'café.png'), img[:, ::-1])  # non-ASCII
    cv2.imwrite(str(hr1 / 'gray.png'), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(hr1 / 'rgba.png'), cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(hr1 / 'deep.png'), img.astype(np.uint16) * 257)  # 16-bit
    cv2.imwrite(str(hr1 / 'tiny.png'), img[:7])  # under 2 x scale px
    (hr1 / 'notes.txt').write_text('not an image')
    (hr1 / '.DS_Store').write_bytes(b'\0')  # hidden: ignored
    make_hr_folder(root / 'hr2', [(100, 64)])  # img0.png again: same name as in hr1
    return root


@pytest.fixture(scope='module')
def built(inputs: Path) -> Path:
    out = inputs.parent / 'out'
    assert main(
        ['folder', '--hr',
         str(inputs / 'hr1'),
         str(inputs / 'hr2'), '--out',
         str(out), *CROP, '--workers', '1']) == 0
    return out


def test_layout_counts_and_manifest(built: Path) -> None:
    assert sorted(os.listdir(built)) == sorted([HR_DB, LR_DB, KEYS_FILE, MANIFEST])
    assert not staging_folders(str(built))
    manifest = read_manifest(str(built))
    usable = SIZES + [(80, 100)] * 5 + [(100, 64)]
    expected = sum(count_subimages(h // 4 * 4, w // 4 * 4, 64, 32, 0) for h, w in usable)
    assert manifest['count'] == expected == len(read_meta_info(str(built / HR_DB)))
    assert manifest['images'] == len(usable) and manifest['settings']['crop_size'] == 64
    assert sorted(osp.basename(item['file']) for item in manifest['skipped']) == ['notes.txt', 'tiny.png']
    assert {
        note: [osp.basename(f) for f in files]
        for note, files in manifest['converted'].items()
    } == {
        'grayscale': ['gray.png'],
        'alpha': ['rgba.png'],
        '16-bit': ['deep.png']
    }
    assert manifest['smallest']['hr_size'] == [64, 64]


def test_odd_names_map_to_keys_basicsr_reads_and_keys_tsv_traces(built: Path) -> None:
    keys = read_keys_tsv(str(built / KEYS_FILE))
    stems = {key.rsplit('_s', 1)[0] for key in (entry.key for entry in read_meta_info(str(built / HR_DB)))}
    assert stems <= set(keys) and all(osp.isfile(source) for source in keys.values())
    sources = {osp.basename(source): key for key, source in keys.items()}
    assert sources['img1.png'] == 'img1' and sources['my photo.v2.png'].startswith('my_photo_v2-')
    assert sources['café.png'].startswith('cafe-')
    img0_keys = [key for key, source in keys.items() if osp.basename(source) == 'img0.png']
    assert len(img0_keys) == 2 and 'img0' not in img0_keys  # same name in two folders: both mapped
    dataset = PairedImageDataset(
        dict(
            dataroot_gt=str(built / HR_DB),
            dataroot_lq=str(built / LR_DB),
            io_backend=dict(type='lmdb'),
            gt_size=32,
            use_hflip=True,
            use_rot=True,
            phase='train',
            scale=4))
    assert len(dataset) == read_manifest(str(built))['count']
    for index in range(len(dataset)):
        item = dataset[index]
        assert tuple(item['gt'].shape) == (3, 32, 32) and tuple(item['lq'].shape) == (3, 8, 8)


def test_lr_is_imresize_of_hr(built: Path) -> None:
    for key in ('hr1_img0_png-', 'img1_s001', 'gray_s001'):
        key = next(e.key for e in read_meta_info(str(built / HR_DB)) if e.key.startswith(key))
        hr = read_lmdb_image(str(built / HR_DB), key)
        np.testing.assert_array_equal(read_lmdb_image(str(built / LR_DB), key), bicubic_downscale(hr, 4))


def test_rerun_skips_and_nothing_changes(inputs: Path, built: Path, capsys: pytest.CaptureFixture) -> None:
    before_out, before_in = snapshot(built), snapshot(inputs)
    assert main(['folder', '--hr', str(inputs / 'hr1'), str(inputs / 'hr2'), '--out', str(built), *CROP]) == 0
    assert 'already complete; nothing to do' in capsys.readouterr().out
    assert snapshot(built) == before_out and snapshot(inputs) == before_in


@pytest.mark.slow
def test_more_workers_same_bytes(inputs: Path, built: Path, tmp_path: Path) -> None:
    out = tmp_path / 'w2'
    assert main(
        ['folder', '--hr',
         str(inputs / 'hr1'),
         str(inputs / 'hr2'), '--out',
         str(out), *CROP, '--workers', '2']) == 0
    assert read_manifest(str(out))['workers'] == 2
    for db in (HR_DB, LR_DB):
        assert list(iter_lmdb_items(str(out / db))) == list(iter_lmdb_items(str(built / db)))
        assert (out / db / 'meta_info.txt').read_text() == (built / db / 'meta_info.txt').read_text()


# --- bad input: one line, exit 1 (2 for usage), nothing lost ----------------------------------------------------------


def test_stop_on_bad_file(inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'out'
    err = refused(capsys, 'folder', '--hr', str(inputs / 'hr1'), '--out', str(out), *CROP, '--on-bad-file', 'stop',
                  '--workers', '1')
    assert 'notes.txt: not an image' in err
    assert os.listdir(tmp_path) == []


def test_output_inside_input_is_refused(inputs: Path, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(inputs)
    err = refused(capsys, 'folder', '--hr', str(inputs / 'hr1'), '--out', str(inputs / 'hr1' / 'sub'))
    assert 'is inside the input folder' in err
    assert 'is inside the input folder' in refused(capsys, 'folder', '--hr', str(inputs / 'hr2'), '--out',
                                                   str(inputs / 'hr2'))
    assert snapshot(inputs) == before


def test_input_where_an_output_goes_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_hr_folder(tmp_path / HR_DB, [(64, 64)])
    err = refused(capsys, 'folder', '--hr', str(tmp_path / HR_DB), '--out', str(tmp_path))
    assert 'is where the output train_HR_sub.lmdb would be written' in err


def test_existing_output_that_does_not_verify(inputs: Path, built: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    broken = tmp_path / 'broken'
    shutil.copytree(built, broken)
    lines = (broken / LR_DB / 'meta_info.txt').read_text().splitlines()
    (broken / LR_DB / 'meta_info.txt').write_text('\n'.join(lines[:-1]) + '\n')
    before = snapshot(broken)
    args = ['folder', '--hr', str(inputs / 'hr1'), str(inputs / 'hr2'), '--out', str(broken), *CROP]
    err = refused(capsys, *args)
    assert 'does not verify' in err and 'remove train_HR_sub.lmdb' in err
    err = refused(capsys, *args[:-4], '--crop-size', '96', '--step', '48')
    assert 'made differently (crop_size: 64 there, 96 asked; step: 32 there, 48 asked)' in err
    assert snapshot(broken) == before


def test_foreign_entry_at_the_destination(inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / HR_DB).mkdir()
    (tmp_path / HR_DB / 'mine.txt').write_text('keep')
    (tmp_path / 'other.txt').write_text('keep')
    err = refused(capsys, 'folder', '--hr', str(inputs / 'hr2'), '--out', str(tmp_path))
    assert 'train_HR_sub.lmdb already exists' in err
    assert sorted(os.listdir(tmp_path)) == ['other.txt', HR_DB] and os.listdir(tmp_path / HR_DB) == ['mine.txt']


def test_full_disk_removes_partial_output(inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real_put = pipeline.LmdbWriter.put_bytes
    calls = []

    def put_until_full(self, *args):
        calls.append(1)
        if len(calls) > 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_put(self, *args)

    monkeypatch.setattr(pipeline.LmdbWriter, 'put_bytes', put_until_full)
    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'other.txt').write_text('keep')
    err = refused(capsys, 'folder', '--hr', str(inputs / 'hr1'), '--out', str(tmp_path / 'out'), *CROP, '--workers',
                  '1')
    assert 'no space left' in err and 'partial output was removed' in err
    assert os.listdir(tmp_path) == ['out'] and os.listdir(tmp_path / 'out') == ['other.txt']


def test_other_bad_arguments(inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / 'junk').mkdir()
    (tmp_path / 'junk' / 'a.txt').write_text('x')
    (tmp_path / 'empty' / 'X4').mkdir(parents=True)
    cases = {  # message: (arguments, exit status)
        'none of the 1 input files is a usable image': (['--hr', str(tmp_path / 'junk')], 1),
        'holds no image files (it has the folders X4': (['--hr', str(tmp_path / 'empty')], 1),
        'is not a folder': (['--hr', str(tmp_path / 'nowhere')], 1),
        'must be multiples of --scale 4': (['--hr', str(inputs / 'hr2'), '--crop-size', '66'], 2),
        'the same folder is given twice': (['--hr', str(inputs / 'hr2'), str(inputs / 'hr2')], 2),
    }
    for message, (args, status) in cases.items():
        err = refused(capsys, 'folder', *args, '--out', str(tmp_path / 'out'), '--workers', '1', status=status)
        assert message in err and (status == 1 or err.endswith('(see python -m srgan_plugin.prepare folder --help)\n'))
    assert sorted(os.listdir(tmp_path)) == ['empty', 'junk']


def test_killed_while_moving_into_place_is_recovered(inputs: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'out'
    args = ['folder', '--hr', str(inputs / 'hr2'), '--out', str(out), *CROP, '--workers', '1']
    assert main(args) == 0
    # what a kill between the moves leaves: two entries in place, the rest (manifest) still in staging
    staging = Path(staging_path(str(out)))
    staging.mkdir()
    (staging / PARTIAL_MARKER).write_text(json.dumps([HR_DB, LR_DB, KEYS_FILE, MANIFEST]))
    os.rename(out / MANIFEST, staging / MANIFEST)
    os.remove(out / KEYS_FILE)
    assert main(args) == 0
    assert 'left over by an interrupted run' in capsys.readouterr().out
    assert not staging.exists() and sorted(os.listdir(out)) == sorted([HR_DB, LR_DB, KEYS_FILE, MANIFEST])


@pytest.mark.slow
def test_sigterm_leaves_nothing(tmp_path: Path) -> None:
    hr = make_hr_folder(tmp_path / 'hr', [(256, 256)] * 40)
    out = tmp_path / 'out'
    proc = popen(['-m', 'srgan_plugin.prepare', 'folder', '--hr', str(hr), '--out', str(out), *CROP, '--workers', '1'],
                 tmp_path)
    deadline = time.monotonic() + 120
    while not staging_folders(str(out)) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err  # 143: stopped by SIGTERM, cleaned up
    assert 'interrupted; nothing was left at the destination' in err
    assert sorted(os.listdir(tmp_path)) == ['hr']


# --- the "291" options train on what the command builds --------------------------------------------------------------


def test_291_options_differ_from_div2k_only_in_data() -> None:
    for phase1, phase2 in (('train_srresnet_x4.yml', 'train_srresnet_x4_291.yml'), ('train_srgan_x4.yml',
                                                                                    'train_srgan_x4_291.yml')):
        div2k, set291 = load_options(phase1), load_options(phase2)
        assert set291['datasets']['train']['dataroot_gt'] == f'datasets/291/{HR_DB}'
        assert set291['datasets']['train']['dataroot_lq'] == f'datasets/291/{LR_DB}'
        for opt in (div2k, set291):
            del opt['name'], opt['datasets']['train']['name'], opt['datasets']['train']['dataset_enlarge_ratio']
            del opt['datasets']['train']['dataroot_gt'], opt['datasets']['train']['dataroot_lq']
            opt['path'].pop('pretrain_network_g')
        assert div2k == set291
    name = load_options('train_srresnet_x4_291.yml')['name']
    pretrain = load_options('train_srgan_x4_291.yml')['path']['pretrain_network_g']
    assert pretrain == f'experiments/{name}/models/net_g_latest.pth'


@pytest.mark.slow
def test_lmdb_trains_with_the_291_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_hr_folder(tmp_path / 'in' / 'BSD', [(250, 300), (130, 180)])
    make_hr_folder(tmp_path / 'in' / 'T91', [(100, 140), (78, 78)], prefix='t')
    make_hr_folder(tmp_path / 'in' / 'val', [(64, 64), (48, 60)], prefix='v')
    data, inp = tmp_path / 'datasets', tmp_path / 'in'
    folder = ['folder', '--hr', str(inp / 'BSD'), str(inp / 'T91'), '--out', str(data / '291'), '--min-size', '96']
    assert main([*folder, '--workers', '1']) == 0
    assert 'skipped 1 file' in capsys.readouterr().out  # the 78 px image, under --min-size 96
    for name in ('Set5', 'Set14'):
        assert main(['benchmark', '--hr', str(inp / 'val'), '--out', str(data / name), '--workers', '1']) == 0
    train = [
        '-m', 'basicsr.train', '-opt',
        str(OPTIONS / 'train_srresnet_x4_291.yml'), '--force_yml', 'num_gpu=0', 'network_g:num_feat=8',
        'network_g:num_block=1', 'datasets:train:batch_size_per_gpu=2', 'datasets:train:num_worker_per_gpu=0',
        'train:total_iter=3', 'val:val_freq=3', 'logger:print_freq=1', 'logger:save_checkpoint_freq=3',
        'logger:use_tb_logger=false'
    ]
    result = run(train, cwd=tmp_path)
    assert result.returncode == 0, f'{result.stdout[-2000:]}\n{result.stderr[-3000:]}'
    name = load_options('train_srresnet_x4_291.yml')['name']
    assert (tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth').is_file()
