"""The pieces behind the div2k / folder / benchmark commands: sub-image arithmetic, keys, the image policy, the worker.

Also holds the small helpers the other ``test_prepare_*`` files import (generated HR folders, file snapshots).
"""
from __future__ import annotations

import os
from os import path as osp
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pytest

from conftest import synthetic_image
from srgan_plugin.base.errors import PrepareError
from srgan_plugin.prepare.imgops import (BadImage, bicubic_downscale, count_subimages, read_image, subimage_boxes,
                                         to_bgr_uint8)
from srgan_plugin.prepare.keys import assign_keys, safe_key
from srgan_plugin.prepare.lmdb_io import check_key, decode_png
from srgan_plugin.prepare.pipeline import CropSpec, Job, process_image


def make_hr_folder(folder: Path, sizes: Sequence[tuple[int, int]], prefix: str = 'img', seed: int = 0) -> Path:
    """``folder/{prefix}{i}.png``: synthetic BGR images of the given (h, w)."""
    folder.mkdir(parents=True)
    for i, (h, w) in enumerate(sizes):
        cv2.imwrite(str(folder / f'{prefix}{i}.png'), synthetic_image(h, w, seed + i))
    return folder


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """{relative path: (mtime_ns, size, first bytes)} of every file under ``root``."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = osp.join(folder, name)
            with open(path, 'rb') as f:
                files[osp.relpath(path, root)] = (os.stat(path).st_mtime_ns, os.path.getsize(path), f.read(64))
    return files


def basicsr_count(h: int, w: int, crop_size: int, step: int, thresh_size: int) -> int:
    """Sub-images per image, transcribed from BasicSR's scripts/data_preparation/extract_subimages.py (worker())."""

    def space(length: int) -> np.ndarray:
        starts = np.arange(0, length - crop_size + 1, step)
        if length - (starts[-1] + crop_size) > thresh_size:
            starts = np.append(starts, length - crop_size)
        return starts

    return len(space(h)) * len(space(w))


# --- sub-image arithmetic -------------------------------------------------------------------------------------------


@pytest.mark.parametrize('crop_size, step, thresh_size', [(480, 240, 0), (240, 120, 0), (120, 60, 0), (96, 40, 20)])
def test_counts_follow_basicsrs_arithmetic(crop_size: int, step: int, thresh_size: int) -> None:
    sizes = range(crop_size, 2100, 37)
    for h in sizes:
        for w in (crop_size, 2040, h + 5):
            assert count_subimages(h, w, crop_size, step,
                                   thresh_size) == basicsr_count(h, w, crop_size, step, thresh_size), (h, w)


def test_div2k_defaults() -> None:
    # DIV2K images are 2040 px on their long side: 8 crops of 480 with step 240 (0, 240, ..., 1440, then 1560 flush).
    # 0001.png is 2040x1356: 8 x 5 = 40 sub-images, the 40 BasicSR's meta_info_DIV2K800sub_GT.txt lists for 0001.
    assert count_subimages(1356, 2040, 480, 240, 0) == 40
    assert count_subimages(2040, 1356, 480, 240, 0) == 40
    assert count_subimages(1200, 2040, 480, 240, 0) == 32  # exact fit: no extra crop with thresh_size 0


def test_small_images_are_kept_whole() -> None:
    assert subimage_boxes(76, 76, 240, 120) == [(0, 0, 76, 76)]
    # narrower than the crop: full-width strips; BSD-size 320x480 (mod-cropped 321x481): 2 x 3 crops of 240
    assert subimage_boxes(300, 100, 240, 120) == [(0, 0, 240, 100), (60, 0, 240, 100)]
    assert count_subimages(320, 480, 240, 120) == 6 and count_subimages(480, 320, 240, 120) == 6
    assert subimage_boxes(0, 50, 240, 120) == []


# --- keys -----------------------------------------------------------------------------------------------------------


def test_safe_names_are_kept_and_others_mapped_deterministically() -> None:
    assert safe_key('0001') == '0001' and safe_key('t20') == 't20' and safe_key('a-b_C') == 'a-b_C'
    mapped = [safe_key(name) for name in ('my.photo', 'with space', 'café', '日本', '..')]
    for key in mapped:
        check_key(key)
        check_key(f'{key}_s001')
    assert mapped[0].startswith('my_photo-') and mapped[2].startswith('cafe-') and mapped[3].startswith('img-')
    assert mapped == [safe_key(name) for name in ('my.photo', 'with space', 'café', '日本', '..')]
    assert safe_key('a.b') != safe_key('a b')  # same slug, different hash


def test_duplicate_stems_get_distinct_keys() -> None:
    files = ['x/a.png', 'x/a.jpg', 'y/a.png', 'y/b.png']
    keys = assign_keys(files)
    assert len(set(keys)) == 4 and keys[3] == 'b'
    for key in keys:
        check_key(key)
    disk = assign_keys(['x/my photo.png', 'x/a.b.png'], lmdb_safe=False)
    assert disk == ['my photo', 'a.b']  # kept for the disk backend


def test_key_collision_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import srgan_plugin.prepare.keys as keys_module
    monkeypatch.setattr(keys_module, 'safe_key', lambda name: 'same')
    with pytest.raises(PrepareError, match="map to the same key 'same'"):
        assign_keys(['a.png', 'b.png'])


# --- image policy ---------------------------------------------------------------------------------------------------


def test_policy_converts_to_8bit_bgr() -> None:
    rgb16 = (np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3) * 1000)
    out, notes = to_bgr_uint8(rgb16)
    assert notes == ['16-bit'] and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.round(rgb16 / 257.).astype(np.uint8))
    gray = np.full((4, 5), 7, np.uint8)
    out, notes = to_bgr_uint8(gray)
    assert notes == ['grayscale'] and out.shape == (4, 5, 3) and (out == 7).all()
    bgra = np.dstack([np.full((4, 5, 3), 9, np.uint8), np.zeros((4, 5), np.uint8)])
    out, notes = to_bgr_uint8(bgra)
    assert notes == ['alpha'] and out.shape == (4, 5, 3) and (out == 9).all()
    with pytest.raises(BadImage, match='float32'):
        to_bgr_uint8(np.zeros((4, 5, 3), np.float32))


def test_read_image_refuses_non_images(tmp_path: Path) -> None:
    (tmp_path / 'notes.png').write_text('not a PNG')
    (tmp_path / 'empty.png').write_bytes(b'')
    for name in ('notes.png', 'empty.png'):
        with pytest.raises(BadImage, match='not an image'):
            read_image(str(tmp_path / name))


# --- the worker -----------------------------------------------------------------------------------------------------


def test_generated_lr_is_imresize_of_each_hr_subimage(tmp_path: Path) -> None:
    folder = make_hr_folder(tmp_path / 'hr', [(130, 203)])
    result = process_image(Job(str(folder / 'img0.png'), 'img0', 4, 1, 0, CropSpec(64, 32, 0)))
    hr = synthetic_image(130, 203, 0)[:128, :200]  # mod-cropped
    boxes = subimage_boxes(128, 200, 64, 32)
    assert len(boxes) == 3 * 6 and result.error is None
    assert [p.key for p in result.pairs] == [f'img0_s{i:03d}' for i in range(1, 19)]
    for pair, (y, x, h, w) in zip(result.pairs, boxes):
        crop = hr[y:y + h, x:x + w]
        np.testing.assert_array_equal(decode_png(pair.hr), crop)
        np.testing.assert_array_equal(decode_png(pair.lr), bicubic_downscale(crop, 4))


def test_lr_file_is_cut_at_matching_coordinates(tmp_path: Path) -> None:
    folder = make_hr_folder(tmp_path / 'hr', [(130, 203)])
    lr_full = synthetic_image(33, 51, 5)  # MATLAB's ceil(130 / 4) x ceil(203 / 4); any content: only cut
    cv2.imwrite(str(tmp_path / 'img0x4.png'), lr_full)
    job = Job(str(folder / 'img0.png'), 'img0', 4, 1, 0, CropSpec(64, 32, 0), str(tmp_path / 'img0x4.png'))
    result = process_image(job)
    for pair, (y, x, h, w) in zip(result.pairs, subimage_boxes(128, 200, 64, 32)):
        np.testing.assert_array_equal(decode_png(pair.lr), lr_full[y // 4:(y + h) // 4, x // 4:(x + w) // 4])
    cv2.imwrite(str(tmp_path / 'img0x4.png'), lr_full[:20])
    assert 'is 20x51, not 32x50' in process_image(job).error


def test_too_small_images_are_refused(tmp_path: Path) -> None:
    folder = make_hr_folder(tmp_path / 'hr', [(7, 40), (40, 40)])
    result = process_image(Job(str(folder / 'img0.png'), 'img0', 4, 1, 0, CropSpec(64, 32, 0)))
    assert result.pairs == [] and 'too small (under 8 px' in result.error
    result = process_image(Job(str(folder / 'img1.png'), 'img1', 4, 1, 48, CropSpec(64, 32, 0)))
    assert 'under 48 px' in result.error
    result = process_image(Job(str(folder / 'img1.png'), 'img1', 4, 1, 0))  # whole image
    assert [p.key for p in result.pairs] == ['img1'] and result.pairs[0].lr_shape == (10, 10, 3)
