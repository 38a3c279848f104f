"""``python -m srgan_plugin.prepare demo`` and the reusable preparation pieces (LMDB format, sub-images, staging)."""
from __future__ import annotations

import os
import re
import shutil
from os import path as osp

import cv2
import numpy as np
import pytest

import srgan_plugin  # noqa: F401  (makes basicsr importable with current torch)
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.matlab_functions import imresize

from launcher import python
from srgan_plugin.prepare import demo, pipeline
from srgan_plugin.prepare.cli import main
from srgan_plugin.prepare.imgops import extract_subimages, subimage_starts
from srgan_plugin.prepare.lmdb_io import LmdbWriter, check_lmdb, lmdb_keys, read_lmdb_image, read_meta_info
from srgan_plugin.prepare.staging import MANIFEST, PARTIAL_MARKER, read_manifest, staging_folders, staging_path

SCALE = 4
HR_DB = 'train_HR_sub.lmdb'
LR_DB = 'train_LR_bicubic_X4_sub.lmdb'
# BasicSR's own meta_info line format (basicsr.utils.lmdb_util.LmdbMaker), checked independently of our parser
META_LINE = re.compile(r'^([A-Za-z0-9_]+)\.png \((\d+),(\d+),(\d+)\) 1$')


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = str(tmp_path_factory.mktemp('prep') / 'demo')
    assert main(['demo', '--out', out]) == 0
    return out


def snapshot(root: str) -> dict[str, tuple[int, int]]:
    """{relative path: (mtime_ns, size)} of every file under root."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            files[osp.relpath(path, root)] = (os.stat(path).st_mtime_ns, os.path.getsize(path))
    return files


def matlab_lr(hr: np.ndarray) -> np.ndarray:
    return np.clip(np.round(imresize(hr / 255., 1 / SCALE) * 255.), 0, 255).astype(np.uint8)


def run_refused(out: str, capsys: pytest.CaptureFixture, *args: str) -> str:
    """Run ``demo`` expecting an error: exit status 1 with one line (the ``SystemExit`` message) and no traceback."""
    with pytest.raises(SystemExit) as exc_info:
        main(['demo', '--out', out, *args])
    message = exc_info.value.code
    assert isinstance(message, str) and '\n' not in message and 'error:' in message, message
    assert 'Traceback' not in capsys.readouterr().err
    return message


def test_layout(demo_root: str) -> None:
    expected = {HR_DB, LR_DB, 'val', MANIFEST}
    assert set(os.listdir(demo_root)) == expected
    for name in ('chelsea', 'coffee'):
        assert osp.isfile(osp.join(demo_root, 'val', 'HR', f'{name}.png'))
        assert osp.isfile(osp.join(demo_root, 'val', 'LR_bicubic', 'X4', f'{name}.png'))
    assert not staging_folders(demo_root)
    manifest = read_manifest(demo_root)
    assert manifest['kind'] == 'demo' and manifest['scale'] == SCALE
    assert 200 <= manifest['train']['count'] <= 600
    assert demo.check_demo(demo_root, SCALE) is None


def test_lmdb_keys_and_meta_info(demo_root: str) -> None:
    hr_db, lr_db = osp.join(demo_root, HR_DB), osp.join(demo_root, LR_DB)
    parsed = {}
    for db in (hr_db, lr_db):
        with open(osp.join(db, 'meta_info.txt')) as f:
            lines = f.read().splitlines()
        matches = [META_LINE.match(line) for line in lines]
        assert all(matches), 'every meta_info line is in BasicSR format'
        parsed[db] = {m[1]: tuple(int(v) for v in m.groups()[1:]) for m in matches}
        assert len(parsed[db]) == len(lines) == read_manifest(demo_root)['train']['count']
        assert set(lmdb_keys(db)) == set(parsed[db])
        assert [line.split('.')[0] for line in lines] == [e.key for e in read_meta_info(db)]  # BasicSR's key parsing
    assert parsed[hr_db].keys() == parsed[lr_db].keys()
    for key, shape in parsed[hr_db].items():
        hr, lr = read_lmdb_image(hr_db, key), read_lmdb_image(lr_db, key)
        assert hr.shape == shape and lr.shape == parsed[lr_db][key]
        assert hr.shape[0] % SCALE == 0 and hr.shape[:2] == (lr.shape[0] * SCALE, lr.shape[1] * SCALE)


def test_lr_is_matlab_bicubic_of_hr(demo_root: str) -> None:
    key = 'rocket_s010'
    hr = read_lmdb_image(osp.join(demo_root, HR_DB), key)
    np.testing.assert_array_equal(read_lmdb_image(osp.join(demo_root, LR_DB), key), matlab_lr(hr))
    hr = cv2.imread(osp.join(demo_root, 'val', 'HR', 'coffee.png'))
    lr = cv2.imread(osp.join(demo_root, 'val', 'LR_bicubic', 'X4', 'coffee.png'))
    np.testing.assert_array_equal(lr, matlab_lr(hr))


def test_paired_image_dataset_reads_lmdb_and_val(demo_root: str) -> None:
    train = PairedImageDataset(
        dict(
            dataroot_gt=osp.join(demo_root, HR_DB),
            dataroot_lq=osp.join(demo_root, LR_DB),
            io_backend=dict(type='lmdb'),
            gt_size=96,
            use_hflip=True,
            use_rot=True,
            phase='train',
            scale=SCALE))
    assert len(train) == read_manifest(demo_root)['train']['count']
    for index in (0, len(train) - 1):
        item = train[index]
        assert tuple(item['gt'].shape) == (3, 96, 96) and tuple(item['lq'].shape) == (3, 24, 24)
    val = PairedImageDataset(
        dict(
            dataroot_gt=osp.join(demo_root, 'val', 'HR'),
            dataroot_lq=osp.join(demo_root, 'val', 'LR_bicubic', 'X4'),
            io_backend=dict(type='disk'),
            phase='val',
            scale=SCALE))
    assert len(val) == 2
    for index in range(len(val)):
        item = val[index]
        _, h, w = item['gt'].shape
        assert max(h, w) <= 256 and tuple(item['lq'].shape) == (3, h // SCALE, w // SCALE)


def test_val_images_not_in_training(demo_root: str) -> None:
    val_names = set(read_manifest(demo_root)['val'])
    assert val_names == {'chelsea', 'coffee'}
    train_sources = {key.rsplit('_s', 1)[0] for key in lmdb_keys(osp.join(demo_root, HR_DB))}
    assert train_sources == set(demo.TRAIN_PHOTOS) and not train_sources & val_names


def test_second_run_skips_and_touches_nothing(demo_root: str, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(demo_root)
    assert main(['demo', '--out', demo_root]) == 0
    assert 'already complete' in capsys.readouterr().out
    assert snapshot(demo_root) == before


def test_other_scale_at_out_is_refused(demo_root: str, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(demo_root)
    err = run_refused(demo_root, capsys, '--scale', '2')
    assert 'scale 4' in err and 'pass --out elsewhere' in err
    assert snapshot(demo_root) == before


def test_non_demo_folder_is_refused_and_left_intact(tmp_path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / 'mine'
    out.mkdir()
    (out / 'notes.txt').write_text('keep me')
    err = run_refused(str(out), capsys)
    assert 'remove it or pass --out elsewhere' in err
    assert os.listdir(out) == ['notes.txt'] and (out / 'notes.txt').read_text() == 'keep me'
    assert not staging_folders(str(out))


def test_incomplete_copies_are_not_finished(demo_root: str, tmp_path) -> None:
    broken = str(tmp_path / 'broken')
    shutil.copytree(demo_root, broken)
    os.remove(osp.join(broken, LR_DB, 'meta_info.txt'))
    assert 'meta_info.txt is missing' in demo.check_demo(broken, SCALE)
    with pytest.raises(demo.PrepareError, match='not a finished demo dataset'):
        demo.prepare_demo(broken, SCALE)
    no_manifest = str(tmp_path / 'no_manifest')
    shutil.copytree(demo_root, no_manifest)
    os.remove(osp.join(no_manifest, MANIFEST))
    assert demo.check_demo(no_manifest, SCALE) is not None


def test_stale_staging_folder_does_not_count(demo_root: str, tmp_path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, 'TRAIN_PHOTOS', {'rocket': 'rocket'})  # a smaller rebuild, to keep the test fast
    out = str(tmp_path / 'demo')
    os.mkdir(out)  # an empty destination folder is filled
    stale = staging_path(out)
    shutil.copytree(demo_root, stale)  # a complete-looking build that was never renamed into place
    os.remove(osp.join(stale, LR_DB, 'meta_info.txt'))
    open(osp.join(stale, PARTIAL_MARKER), 'w').close()
    assert demo.check_demo(out, SCALE) is not None
    summary = demo.prepare_demo(out, SCALE)
    assert not summary.reused and demo.check_demo(out, SCALE) is None
    assert not osp.exists(stale) and not osp.exists(osp.join(out, PARTIAL_MARKER))
    assert 'left over by an interrupted run' in capsys.readouterr().out


def test_foreign_folder_at_staging_name_is_refused(tmp_path) -> None:
    out = str(tmp_path / 'demo')
    os.mkdir(staging_path(out))
    with open(osp.join(staging_path(out), 'data.txt'), 'w') as f:
        f.write('not ours')
    with pytest.raises(demo.PrepareError, match='not made by this tool'):
        demo.prepare_demo(out, SCALE)
    assert os.listdir(staging_path(out)) == ['data.txt'] and not osp.exists(out)


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def downscale_then_fail(hr: np.ndarray, scale: int) -> np.ndarray:
        calls.append(1)
        if len(calls) == 5:  # in the middle of writing the training LMDBs
            raise RuntimeError('interrupted')
        return hr[::scale, ::scale]

    monkeypatch.setattr(pipeline, 'bicubic_downscale', downscale_then_fail)
    with pytest.raises(RuntimeError, match='interrupted'):
        demo.prepare_demo(str(tmp_path / 'demo'), SCALE)
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_cli_error_is_one_line_without_traceback(tmp_path) -> None:
    out = tmp_path / 'taken'
    out.mkdir()
    (out / 'x').write_text('x')
    proc = python(['-m', 'srgan_plugin.prepare', 'demo', '--out', str(out)], tmp_path, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count('\n') == 1 and proc.stderr.startswith('python -m srgan_plugin.prepare demo: error:')
    assert 'Traceback' not in proc.stderr and os.listdir(out) == ['x']


STARTS_CASES = [
    (512, [0, 60, 120, 180, 240, 300, 360, 392]),  # last crop flush with the border
    (480, [0, 60, 120, 180, 240, 300, 360]),  # fits exactly
    (100, []),  # smaller than a crop
]


@pytest.mark.parametrize('length, expected', STARTS_CASES)
def test_subimage_starts_match_basicsr(length: int, expected: list[int]) -> None:
    assert subimage_starts(length, 120, 60, 0) == expected


def test_extract_subimages_keys_and_crops() -> None:
    img = np.arange(200 * 130 * 3, dtype=np.uint32).reshape(200, 130, 3)
    subs = list(extract_subimages(img, 'img', 120, 60))
    # rows start at 0, 60 and 80 (flush with the bottom), columns at 0 and 10 (flush with the right border)
    assert [key for key, _ in subs] == [f'img_s{i:03d}' for i in range(1, 7)]
    np.testing.assert_array_equal(subs[1][1], img[0:120, 10:130])
    np.testing.assert_array_equal(subs[5][1], img[80:200, 10:130])


def test_lmdb_writer_grows_map_and_rejects_bad_keys(tmp_path) -> None:
    db = str(tmp_path / 'x.lmdb')
    rng = np.random.default_rng(0)
    imgs = {f'k{i}': rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for i in range(8)}  # ~100 KB of noise
    with LmdbWriter(db, map_size=32 * 1024, batch=3) as writer:
        for key, img in imgs.items():
            writer.put(key, img)
        with pytest.raises(ValueError, match='Invalid LMDB key'):
            writer.put('a.b', imgs['k0'])
        with pytest.raises(ValueError, match='Duplicate'):
            writer.put('k0', imgs['k0'])
    assert [entry.key for entry in check_lmdb(db)] == list(imgs)
    np.testing.assert_array_equal(read_lmdb_image(db, 'k5'), imgs['k5'])
