"""Labelled side-by-side panels and grids (``srgan_plugin.visualize``)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import srgan_plugin  # noqa: F401  (makes basicsr importable with current torch)
from basicsr.utils.matlab_functions import imresize

from srgan_plugin.visualize import PanelStyle, bicubic_upscale, grid, label_band_height, resize_to_height, side_by_side


def solid(h: int, w: int, bgr: tuple[int, int, int]) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = bgr
    return img


def test_side_by_side_size_and_file(tmp_path) -> None:
    images = [solid(40, 30, (255, 0, 0)), solid(20, 50, (0, 255, 0)), np.full((40, 40), 128, np.uint8)]
    out = tmp_path / 'sub' / 'row.png'
    canvas = side_by_side(images, ['blue', 'green', 'gray'], str(out))
    style = PanelStyle()
    band = label_band_height()
    assert canvas.shape == (band + 40, 30 + 100 + 40 + 2 * style.gap, 3)  # the 20x50 panel is scaled to 40x100
    np.testing.assert_array_equal(cv2.imread(str(out)), canvas)
    np.testing.assert_array_equal(canvas[band:, :30], images[0])
    np.testing.assert_array_equal(canvas[band:, 30 + style.gap:130 + style.gap], solid(40, 100, (0, 255, 0)))
    assert (canvas[band:, 30:30 + style.gap] == 255).all()  # the gap has the background colour


def test_labels_are_drawn_in_the_band() -> None:
    images = [solid(32, 64, (10, 20, 30))] * 2
    band = label_band_height()
    labelled = side_by_side(images, ['Bicubic', 'SRGAN'])
    blank = side_by_side(images, ['', ''])
    assert (blank[:band] == 255).all()
    assert (labelled[:band, :64] != 255).any() and (labelled[:band, 64 + PanelStyle().gap:] != 255).any()
    np.testing.assert_array_equal(labelled[band:], blank[band:])


def test_nearest_neighbour_keeps_pixels() -> None:
    lr = np.array([[[0, 0, 0], [255, 255, 255]], [[10, 20, 30], [40, 50, 60]]], np.uint8)
    big = resize_to_height(lr, 8)
    assert big.shape == (8, 8, 3)
    np.testing.assert_array_equal(big, lr.repeat(4, axis=0).repeat(4, axis=1))
    canvas = side_by_side([lr, solid(8, 8, (1, 2, 3))], ['LR', 'HR'], style=PanelStyle(gap=0, padding=2))
    np.testing.assert_array_equal(canvas[label_band_height(PanelStyle(padding=2)):, :8], big)


def test_rgb_inputs_are_written_with_true_colours(tmp_path) -> None:
    red_rgb = solid(16, 16, (255, 0, 0))
    out = tmp_path / 'rgb.png'
    canvas = side_by_side([red_rgb], ['red'], str(out), rgb=True)
    band = label_band_height()
    assert (canvas[band:] == (255, 0, 0)).all()  # returned in the caller's (RGB) order
    assert (cv2.imread(str(out))[band:] == (0, 0, 255)).all()  # file is right: red in BGR


def test_grid_stacks_and_pads_rows() -> None:
    style = PanelStyle(gap=2)
    rows = [[solid(20, 20, (0, 0, 255)), solid(10, 10, (0, 255, 0))], [solid(30, 15, (255, 0, 0))]]
    canvas = grid(rows, [['a', 'b'], ['c']], style=style)
    band = label_band_height(style)
    assert canvas.shape == ((band + 20) + style.gap + (band + 30), 20 + 20 + style.gap, 3)
    row2_top = band + 20 + style.gap
    np.testing.assert_array_equal(canvas[row2_top + band:, :15], rows[1][0])
    assert (canvas[row2_top:, 15:] == 255).all()  # the shorter row is padded with the background


def test_height_argument_and_errors() -> None:
    canvas = side_by_side([solid(10, 10, (0, 0, 0))], ['x'], height=30)
    assert canvas.shape == (label_band_height() + 30, 30, 3)
    with pytest.raises(ValueError, match='labels'):
        side_by_side([solid(10, 10, (0, 0, 0))], ['a', 'b'])
    with pytest.raises(TypeError, match='uint8'):
        side_by_side([np.zeros((4, 4, 3), np.float32)], ['f'])


def test_bicubic_upscale_is_matlab_imresize() -> None:
    lr = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    up = bicubic_upscale(lr, 4)
    expected = np.clip(np.round(imresize(lr / 255., 4) * 255.), 0, 255).astype(np.uint8)
    assert up.shape == (48, 40, 3) and up.dtype == np.uint8
    np.testing.assert_array_equal(up, expected)


def test_compare_folders_crops_hr_and_matches_longest_stem(tmp_path):
    """HR not a multiple of the scale is cropped as BasicSR does; ``a_test.png`` is never taken for ``a_b``."""
    import cv2

    from srgan_plugin.visualize import bicubic_upscale, compare_folders
    rng = np.random.default_rng(0)
    dirs = {name: tmp_path / name for name in ('hr', 'lr', 'sr')}
    for folder in dirs.values():
        folder.mkdir()
    for stem, (h, w) in {'a': (34, 41), 'a_b': (32, 32)}.items():
        hr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        lr = hr[::4, ::4][:h // 4, :w // 4].copy()
        cv2.imwrite(str(dirs['hr'] / f'{stem}.png'), hr)
        cv2.imwrite(str(dirs['lr'] / f'{stem}.png'), lr)
        cv2.imwrite(str(dirs['sr'] / f'{stem}_test.png'), bicubic_upscale(lr, 4))
    _, psnr = compare_folders(str(dirs['lr']), str(dirs['hr']), [('SR', str(dirs['sr']))], str(tmp_path / 'o.png'))
    assert psnr['SR'] == pytest.approx(psnr['bicubic'])  # the SR folder holds the bicubic panels of the same images
