"""``python -m srgan_plugin.prepare div2k`` on a small generated DIV2K-like tree (DIV2K itself is 7 GB)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import load_options, synthetic_image
from srgan_plugin.prepare import div2k
from srgan_plugin.prepare.cli import build_parser, main
from srgan_plugin.prepare.imgops import bicubic_downscale, count_subimages, subimage_boxes
from srgan_plugin.prepare.keys import KEYS_FILE
from srgan_plugin.prepare.lmdb_io import read_lmdb_image, read_meta_info
from srgan_plugin.prepare.staging import MANIFEST, read_manifest
from test_prepare_folder import refused
from test_prepare_subimages import snapshot

HR_DB, LR_DB = 'DIV2K_train_HR_sub.lmdb', 'DIV2K_train_LR_bicubic_X4_sub.lmdb'
SIZES = {'0001': (200, 264), '0002': (96, 300), '0003': (150, 100)}
CROP = ['--crop-size', '96', '--step', '48']


@pytest.fixture(scope='module')
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``DIV2K/DIV2K_train_HR/000N.png`` and the official-style ``DIV2K_train_LR_bicubic/X{2,4}/000Nx{s}.png``."""
    root = tmp_path_factory.mktemp('div2k') / 'DIV2K'
    for scale in (2, 4):
        (root / 'DIV2K_train_LR_bicubic' / f'X{scale}').mkdir(parents=True)
    (root / 'DIV2K_train_HR').mkdir()
    for i, (name, (h, w)) in enumerate(SIZES.items()):
        hr = synthetic_image(h, w, i)
        cv2.imwrite(str(root / 'DIV2K_train_HR' / f'{name}.png'), hr)
        for scale in (2, 4):
            lr = synthetic_image(h // scale, w // scale, 10 + i)  # distinct content: the crops must come from here
            cv2.imwrite(str(root / 'DIV2K_train_LR_bicubic' / f'X{scale}' / f'{name}x{scale}.png'), lr)
    return root


@pytest.fixture(scope='module')
def built(tree: Path) -> Path:
    """The sub-image LMDBs next to the raw folders, LR cut from the official-style files."""
    args = [
        'div2k', '--hr',
        str(tree / 'DIV2K_train_HR'), '--lr',
        str(tree / 'DIV2K_train_LR_bicubic'), '--out',
        str(tree), *CROP, '--workers', '1'
    ]
    before = snapshot(tree)
    assert main(args) == 0
    assert {path: stat for path, stat in snapshot(tree).items() if path in before} == before  # raw data untouched
    return tree


def test_defaults_are_basicsrs_and_names_match_the_options() -> None:
    args = build_parser().parse_args(['div2k', '--hr', 'x'])
    assert (args.crop_size, args.step, args.thresh_size, args.scale, args.compress_level) == (480, 240, 0, 4, 1)
    assert args.out == os.path.join('datasets', 'DIV2K')
    train = load_options('train_srresnet_x4.yml')['datasets']['train']
    assert train['dataroot_gt'] == f'datasets/DIV2K/{HR_DB}' and train['dataroot_lq'] == f'datasets/DIV2K/{LR_DB}'
    assert div2k.DIV2K_TRAIN_SUBIMAGES == 32592


def test_layout_next_to_the_raw_folders(built: Path) -> None:
    assert sorted(os.listdir(built)) == sorted(
        ['DIV2K_train_HR', 'DIV2K_train_LR_bicubic', HR_DB, LR_DB, KEYS_FILE, MANIFEST])
    manifest = read_manifest(str(built))
    assert manifest['kind'] == 'div2k' and manifest['settings']['lr'] == 'files'
    assert manifest['count'] == sum(count_subimages(h // 4 * 4, w // 4 * 4, 96, 48, 0) for h, w in SIZES.values())
    keys = [entry.key for entry in read_meta_info(str(built / HR_DB))]
    assert keys[:2] == ['0001_s001', '0001_s002'
                        ] and keys == [entry.key for entry in read_meta_info(str(built / LR_DB))]


def test_lr_crops_come_from_the_lr_files_at_matching_coordinates(built: Path) -> None:
    for name, (h, w) in SIZES.items():
        hr_full = cv2.imread(str(built / 'DIV2K_train_HR' / f'{name}.png'))
        lr_full = cv2.imread(str(built / 'DIV2K_train_LR_bicubic' / 'X4' / f'{name}x4.png'))
        for index, (y, x, bh, bw) in enumerate(subimage_boxes(h // 4 * 4, w // 4 * 4, 96, 48), 1):
            key = f'{name}_s{index:03d}'
            np.testing.assert_array_equal(read_lmdb_image(str(built / HR_DB), key), hr_full[y:y + bh, x:x + bw])
            lr = read_lmdb_image(str(built / LR_DB), key)
            np.testing.assert_array_equal(lr, lr_full[y // 4:(y + bh) // 4, x // 4:(x + bw) // 4])


def test_without_lr_files_lr_is_imresize_of_each_subimage(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / 'DIV2K'
    assert main(['div2k', '--hr', str(tree / 'DIV2K_train_HR'), '--out', str(out), *CROP, '--workers', '1']) == 0
    assert read_manifest(str(out))['settings']['lr'] == 'bicubic'
    for key in ('0001_s001', '0002_s004', '0003_s002'):
        hr = read_lmdb_image(str(out / HR_DB), key)
        np.testing.assert_array_equal(read_lmdb_image(str(out / LR_DB), key), bicubic_downscale(hr, 4))


def test_scale_2_takes_the_x2_files(tree: Path, tmp_path: Path) -> None:
    args = [
        'div2k', '--hr',
        str(tree / 'DIV2K_train_HR'), '--lr',
        str(tree / 'DIV2K_train_LR_bicubic'), '--out',
        str(tmp_path), *CROP, '--scale', '2', '--workers', '1'
    ]
    assert main(args) == 0
    lr = read_lmdb_image(str(tmp_path / 'DIV2K_train_LR_bicubic_X2_sub.lmdb'), '0001_s001')
    assert lr.shape == (48, 48, 3)


def test_missing_lr_files_are_refused_before_anything_is_written(tree: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    lr = tmp_path / 'LR'
    lr.mkdir()
    cv2.imwrite(str(lr / '0001x4.png'), synthetic_image(50, 66, 0))
    err = refused(capsys, 'div2k', '--hr', str(tree / 'DIV2K_train_HR'), '--lr', str(lr), '--out',
                  str(tmp_path / 'out'))
    assert '2 of the 3 HR images have no LR file' in err and '0002x4.png' in err
    assert os.listdir(tmp_path) == ['LR']
