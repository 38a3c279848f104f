"""``python -m srgan_plugin.prepare verify``: exit 0 for a good LMDB pair, 1 with the problem for a broken one."""
from __future__ import annotations

import shutil
from pathlib import Path

import lmdb
import pytest

from launcher import python
from srgan_plugin.prepare.cli import main
from srgan_plugin.prepare.lmdb_io import MetaInfo, key_differences, read_meta_info
from test_prepare_subimages import make_hr_folder, snapshot

HR_DB, LR_DB = 'train_HR_sub.lmdb', 'train_LR_bicubic_X4_sub.lmdb'


@pytest.fixture(scope='module')
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp('verify')
    make_hr_folder(root / 'hr', [(100, 120), (64, 64)])
    assert main([
        'folder', '--hr',
        str(root / 'hr'), '--out',
        str(root / 'out'), '--crop-size', '64', '--step', '32', '--workers', '1'
    ]) == 0
    return root / 'out'


@pytest.fixture
def copy(good: Path, tmp_path: Path) -> Path:
    shutil.copytree(good, tmp_path / 'out')
    return tmp_path / 'out'


def verify(capsys: pytest.CaptureFixture, *paths: Path, scale: int = 0) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``verify`` run in-process, as the shell would see them."""
    args = ['verify', *map(str, paths)] + (['--scale', str(scale)] if scale else [])
    extra = ''
    try:
        status = main(args)
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else 1
        extra = f'{exit_.code}\n' if isinstance(exit_.code, str) else ''  # what Python prints for SystemExit(str)
    out, err = capsys.readouterr()
    return status, out, err + extra


def put_raw(db: Path, key: str, value: bytes) -> None:
    env = lmdb.open(str(db))
    with env.begin(write=True) as txn:
        txn.put(key.encode('ascii'), value)
    env.close()


def test_good_pair_either_order_and_single(good: Path, capsys: pytest.CaptureFixture) -> None:
    before = snapshot(good)
    for paths in ((good / HR_DB, good / LR_DB), (good / LR_DB, good / HR_DB)):
        status, out, _ = verify(capsys, *paths)
        assert status == 0 and out.startswith('OK: 10 pairs') and f'HR ({good / HR_DB}) = 4 x LR' in out
    status, out, _ = verify(capsys, good / LR_DB)
    assert status == 0 and 'OK:' in out and '10 images' in out
    assert snapshot(good) == before  # read-only, lock.mdb included


def test_corrupted_entry(copy: Path, capsys: pytest.CaptureFixture) -> None:
    put_raw(copy / HR_DB, 'img0_s002', b'\x89PNG not really')
    status, out, err = verify(capsys, copy / HR_DB, copy / LR_DB)
    assert status == 1 and 'entry img0_s002 does not decode as an image' in out
    assert err.count('\n') == 1 and 'does not verify: 1 problem(s)' in err


def test_shape_differs_from_meta_info(copy: Path, capsys: pytest.CaptureFixture) -> None:
    meta = copy / LR_DB / 'meta_info.txt'
    meta.write_text(meta.read_text().replace('img1_s001.png (16,16,3)', 'img1_s001.png (16,17,3)'))
    status, out, _ = verify(capsys, copy / HR_DB, copy / LR_DB)
    assert status == 1 and 'entry img1_s001 is (16, 16, 3), meta_info.txt says (16, 17, 3)' in out


def test_key_sets_differ(copy: Path, capsys: pytest.CaptureFixture) -> None:
    put_raw(copy / LR_DB, 'extra', b'x')
    status, out, _ = verify(capsys, copy / HR_DB, copy / LR_DB)
    assert status == 1 and '11 keys stored but 10 listed in meta_info.txt' in out
    env = lmdb.open(str(copy / LR_DB))
    with env.begin(write=True) as txn:  # now a consistent database, one key short of the HR one
        txn.delete(b'extra')
        txn.delete(b'img1_s001')
    env.close()
    meta = copy / LR_DB / 'meta_info.txt'
    meta.write_text(''.join(line for line in meta.read_text().splitlines(True) if not line.startswith('img1_s001')))
    status, out, _ = verify(capsys, copy / HR_DB, copy / LR_DB)
    assert status == 1 and 'the key sets differ: 1 key(s) only in HR, 0 only in LR (e.g. img1_s001)' in out


def test_wrong_scale_and_incomplete(copy: Path, capsys: pytest.CaptureFixture) -> None:
    status, out, _ = verify(capsys, copy / HR_DB, copy / LR_DB, scale=2)
    assert status == 1 and 'img0_s001: HR 64x64x3 is not 2 x LR 16x16x3' in out
    (copy / HR_DB / 'meta_info.txt').unlink()
    status, out, _ = verify(capsys, copy / HR_DB, copy / LR_DB)
    assert status == 1 and 'meta_info.txt is missing' in out


def test_read_meta_info_strict_and_as_basicsr_reads_it(tmp_path: Path) -> None:
    """Strict: BasicSR's exact format or ValueError. Lenient (what the option and data checks read): every line, keyed
    as ``paired_paths_from_lmdb`` keys it, with the shape and level where the line gives them."""
    db = tmp_path / 'x.lmdb'
    db.mkdir()
    meta = db / 'meta_info.txt'
    meta.write_text('a.png (8,6,3) 1\n\nb.png (4, 2)\nc.jpg\n')
    lenient = read_meta_info(str(db), strict=False)
    assert lenient == [MetaInfo('a', (8, 6, 3), 1), MetaInfo('b', (4, 2), None), MetaInfo('c', None, None)]
    with pytest.raises(ValueError, match="not a BasicSR meta_info line: 'b.png \\(4, 2\\)'"):
        read_meta_info(str(db))
    meta.write_text('a.png (8,6,3) 1\n  b.png (4,2,1) 0\n')
    assert read_meta_info(str(db)) == [MetaInfo('a', (8, 6, 3), 1), MetaInfo('b', (4, 2, 1), 0)]
    assert [entry.key for entry in read_meta_info(str(db), strict=False)] == ['a', '  b']
    meta.write_bytes(b'\xe9.png (8,6,3) 1\n')
    assert read_meta_info(str(db), strict=False)[0].key == '\ufffd'
    with pytest.raises(ValueError):  # UnicodeDecodeError: strict files are ASCII
        read_meta_info(str(db))


def test_key_differences() -> None:
    assert key_differences(['a', 'b', 'c'], ['c', 'a']) == (['b'], [])
    assert key_differences(['z', 'b', 'b'], ['d', 'y']) == (['z', 'b', 'b'], ['d', 'y'])  # order and repeats kept
    assert key_differences(iter(['a']), {'a'}) == ([], [])


@pytest.mark.slow
def test_cli_exit_status(good: Path, tmp_path: Path) -> None:
    proc = python(['-m', 'srgan_plugin.prepare', 'verify', str(good / HR_DB), str(tmp_path / 'x.lmdb')], tmp_path,
                  timeout=120, fresh=True)  # one prepare command as a user starts it
    assert proc.returncode == 1 and 'x.lmdb: data.mdb is missing' in proc.stdout
    assert proc.stderr.startswith('python -m srgan_plugin.prepare verify: error:') and proc.stderr.count('\n') == 1
