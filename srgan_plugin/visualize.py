"""Labelled side-by-side panels and grids of images, for comparing SR results (LR / bicubic / SRResNet / SRGAN / HR).

Images are HxWx3 (or HxW grayscale) uint8 numpy arrays in **BGR** order by default -- the order of ``cv2.imread`` and
of ``basicsr.utils.tensor2img`` -- so the written PNG shows true colours; pass ``rgb=True`` for RGB inputs (e.g. from
``skimage`` or PIL). Panels of different heights are brought to a common height with nearest-neighbour resizing, so
that the pixels of a small LR input stay visible. Each panel gets its title drawn (``cv2.putText``) in a band above
it.

Geometry of a row of ``n`` panels of widths ``w_i`` (after resizing to the common height ``H``)::

    width  = sum(w_i) + (n - 1) * style.gap
    height = label_band_height(style) + H

A grid stacks such rows with ``style.gap`` between them, each row padded on the right to the widest one.
"""
from __future__ import annotations

import dataclasses
import os
from os import path as osp
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from srgan_plugin.base.errors import ArgumentParser, SRGANPluginError, command_errors
from srgan_plugin.inference.imageio import write_image
from srgan_plugin.prepare.imgops import imresize_uint8

__all__ = [
    'PanelStyle', 'label_band_height', 'resize_to_height', 'side_by_side', 'grid', 'bicubic_upscale', 'compare_folders'
]

PROG = 'python -m srgan_plugin.visualize'
Color = Union[int, tuple[int, int, int]]
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclasses.dataclass(frozen=True)
class PanelStyle:
    """How panels are laid out and labelled.

    Args:
        gap (int): Pixels between panels and between grid rows. Default: 4.
        font_scale (float): ``cv2.putText`` font scale; shrunk per label when the label is wider than its panel.
            Default: 0.5.
        thickness (int): Text stroke thickness. Default: 1.
        padding (int): Pixels above and below the text inside the label band. Default: 4.
        background (Color): Fill of the label bands, gaps and padding (gray level or BGR triple). Default: 255.
        text_color (Color): Text colour (gray level or BGR triple). Default: 0.
    """
    gap: int = 4
    font_scale: float = 0.5
    thickness: int = 1
    padding: int = 4
    background: Color = 255
    text_color: Color = 0


def _bgr(color: Color) -> tuple[int, int, int]:
    return (color, ) * 3 if isinstance(color, int) else tuple(color)


def label_band_height(style: Optional[PanelStyle] = None) -> int:
    """Height in pixels of the label band drawn above each row of panels.

    Args:
        style (PanelStyle | None): Layout; None for ``PanelStyle()``. Default: None.

    Returns:
        int: Text height (with descenders) plus ``2 * style.padding``.
    """
    style = style or PanelStyle()
    (_, text_h), baseline = cv2.getTextSize('Ag', FONT, style.font_scale, style.thickness)
    return text_h + baseline + 2 * style.padding


def _to_bgr(img: np.ndarray, rgb: bool) -> np.ndarray:
    """HxW or HxWx3 uint8 -> HxWx3 uint8 BGR."""
    if img.dtype != np.uint8:
        raise TypeError(f'Expected uint8 images, got {img.dtype}.')
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'Expected HxW or HxWx3 images, got shape {img.shape}.')
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if rgb else img


def resize_to_height(img: np.ndarray, height: int) -> np.ndarray:
    """Resize with nearest-neighbour interpolation to ``height``, keeping the aspect ratio (width rounded).

    Args:
        img (np.ndarray): HxW or HxWxC image.
        height (int): Target height.

    Returns:
        np.ndarray: The resized image (``img`` itself when it already has that height).
    """
    h, w = img.shape[:2]
    if h == height:
        return img
    width = max(1, round(w * height / h))
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_NEAREST)


def _fitting_font_scale(text: str, max_width: int, style: PanelStyle) -> float:
    """``style.font_scale``, shrunk so that ``text`` fits in ``max_width`` pixels (not below a legible 0.3)."""
    text_w = cv2.getTextSize(text, FONT, style.font_scale, style.thickness)[0][0]
    if text_w <= max_width:
        return style.font_scale
    return max(0.3, style.font_scale * max_width / text_w)


def _draw_label(band: np.ndarray, text: str, style: PanelStyle) -> None:
    """Draw ``text`` centred horizontally in ``band`` (in place), its baseline ``padding + baseline`` above the end."""
    scale = _fitting_font_scale(text, band.shape[1] - 2, style)
    (text_w, _), baseline = cv2.getTextSize(text, FONT, scale, style.thickness)
    origin = (max(0, (band.shape[1] - text_w) // 2), band.shape[0] - style.padding - baseline)
    cv2.putText(band, text, origin, FONT, scale, _bgr(style.text_color), style.thickness, cv2.LINE_AA)


def _compose_row(images: Sequence[np.ndarray], labels: Sequence[str], height: Optional[int], rgb: bool,
                 style: PanelStyle) -> np.ndarray:
    """One row of labelled panels, BGR."""
    if not images:
        raise ValueError('Expected at least one image.')
    if len(images) != len(labels):
        raise ValueError(f'Got {len(images)} images but {len(labels)} labels.')
    panels = [_to_bgr(img, rgb) for img in images]
    height = height or max(panel.shape[0] for panel in panels)
    panels = [resize_to_height(panel, height) for panel in panels]
    band_h = label_band_height(style)
    width = sum(panel.shape[1] for panel in panels) + style.gap * (len(panels) - 1)
    canvas = np.empty((band_h + height, width, 3), np.uint8)
    canvas[:] = _bgr(style.background)
    x = 0
    for panel, label in zip(panels, labels):
        panel_w = panel.shape[1]
        _draw_label(canvas[:band_h, x:x + panel_w], str(label), style)
        canvas[band_h:, x:x + panel_w] = panel
        x += panel_w + style.gap
    return canvas


def _finish(canvas: np.ndarray, out_path: Optional[str], rgb: bool) -> np.ndarray:
    """Write the BGR canvas (when ``out_path`` is given; whole or not at all, its folder created) and return it in the
    caller's channel order."""
    if out_path is not None:
        os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
        write_image(str(out_path), canvas)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB) if rgb else canvas


def side_by_side(images: Sequence[np.ndarray],
                 labels: Sequence[str],
                 out_path: Optional[str] = None,
                 height: Optional[int] = None,
                 rgb: bool = False,
                 style: Optional[PanelStyle] = None) -> np.ndarray:
    """Put images side by side, each with its label above it, and optionally write the result as a PNG.

    Args:
        images (Sequence[np.ndarray]): HxWx3 uint8 images, BGR unless ``rgb`` (HxW grayscale is accepted too).
        labels (Sequence[str]): One title per image.
        out_path (str | None): Where to write the PNG (parent folders are created); None to only return it.
            Default: None.
        height (int | None): Common panel height; None for the tallest image's height. Default: None.
        rgb (bool): Whether the inputs are RGB; the returned canvas then is RGB too, the written file is right either
            way. Default: False.
        style (PanelStyle | None): Layout and text; None for ``PanelStyle()``. Default: None.

    Returns:
        np.ndarray: The canvas, ``label_band_height(style) + H`` high and ``sum(panel widths) + (n - 1) * gap`` wide.
    """
    canvas = _compose_row(images, labels, height, rgb, style or PanelStyle())
    return _finish(canvas, out_path, rgb)


def grid(rows: Sequence[Sequence[np.ndarray]],
         labels: Sequence[Sequence[str]],
         out_path: Optional[str] = None,
         height: Optional[int] = None,
         rgb: bool = False,
         style: Optional[PanelStyle] = None) -> np.ndarray:
    """Stack rows of labelled panels (each row as :func:`side_by_side`), e.g. one row per test image.

    Args:
        rows (Sequence[Sequence[np.ndarray]]): Images of each row, BGR unless ``rgb``.
        labels (Sequence[Sequence[str]]): Titles, one per image, same nesting as ``rows``.
        out_path (str | None): Where to write the PNG; None to only return it. Default: None.
        height (int | None): Panel height of every row; None for each row's tallest image. Default: None.
        rgb (bool): Whether the inputs are RGB (see :func:`side_by_side`). Default: False.
        style (PanelStyle | None): Layout and text; None for ``PanelStyle()``. Default: None.

    Returns:
        np.ndarray: The canvas: rows separated by ``style.gap``, each padded on the right to the widest row.
    """
    style = style or PanelStyle()
    if len(rows) != len(labels):
        raise ValueError(f'Got {len(rows)} rows of images but {len(labels)} rows of labels.')
    if not rows:
        raise ValueError('Expected at least one row.')
    row_canvases = [_compose_row(images, row_labels, height, rgb, style) for images, row_labels in zip(rows, labels)]
    width = max(row.shape[1] for row in row_canvases)
    total_h = sum(row.shape[0] for row in row_canvases) + style.gap * (len(row_canvases) - 1)
    canvas = np.empty((total_h, width, 3), np.uint8)
    canvas[:] = _bgr(style.background)
    y = 0
    for row in row_canvases:
        canvas[y:y + row.shape[0], :row.shape[1]] = row
        y += row.shape[0] + style.gap
    return _finish(canvas, out_path, rgb)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """Upscale a uint8 image by ``scale`` with MATLAB-style bicubic (``basicsr.utils.matlab_functions.imresize``).

    This is the "Bicubic" baseline of SR papers, the inverse direction of the degradation used to make the LR
    data (:func:`srgan_plugin.prepare.imgops.bicubic_downscale`). Channel order does not matter.

    Args:
        lr (np.ndarray): HxWxC or HxW uint8 image.
        scale (int): Upscale factor.

    Returns:
        np.ndarray: The ``(h * scale) x (w * scale)`` uint8 image, rounded and clipped.
    """
    return imresize_uint8(lr, scale)


def _find_result(folder: str, stem: str, stems: Sequence[str]) -> str:
    """``<stem>.<ext>``, else BasicSR's ``<stem>_<suffix>.png`` in ``folder``: a file whose longest matching image stem
    (among ``stems``) is ``stem``, so that ``a_test.png`` is not taken for ``a_b_test.png``."""
    files = sorted(os.listdir(folder))
    exact = [f for f in files if osp.splitext(f)[0] == stem]
    if exact:
        return osp.join(folder, exact[0])

    def owner(name: str) -> str:
        return max((s for s in stems if name.startswith(f'{s}_')), key=len, default='')

    candidates = [f for f in files if owner(osp.splitext(f)[0]) == stem]
    if len(candidates) != 1:
        found = 'no result' if not candidates else f'{len(candidates)} results ({", ".join(candidates)})'
        raise FileNotFoundError(f'{found} for {stem!r} in {folder}; expected {stem}.png or {stem}_<suffix>.png')
    return osp.join(folder, candidates[0])


def compare_folders(lr_dir: str,
                    hr_dir: str,
                    results: Sequence[tuple[str, str]],
                    out_path: str,
                    scale: int = 4) -> tuple[np.ndarray, dict[str, float]]:
    """One row per HR image: bicubic | each labelled result folder | HR (BasicSR's test output naming).

    Each panel is labelled with its PSNR against HR in the paper's protocol (Y channel, ``scale`` px shaved).

    Args:
        lr_dir: Folder of LR images, named as in ``hr_dir``.
        hr_dir: Folder of HR images; one row per image, sorted by name.
        results: ``(label, folder)`` pairs, e.g. ``[('SRResNet', 'results/test_x/visualization/Set5')]``.
        out_path: PNG to write.
        scale: Upscaling factor of the bicubic panel and border shaved for PSNR. Default: 4.

    Returns:
        The canvas (BGR) and the mean PSNR (dB) per label, bicubic first.
    """
    from basicsr.metrics import calculate_psnr

    rows, labels = [], []
    names = ['bicubic', *(label for label, _ in results)]
    psnr: dict[str, list[float]] = {name: [] for name in names}
    file_names = sorted(os.listdir(hr_dir))
    stems = [osp.splitext(name)[0] for name in file_names]
    for file_name, stem in zip(file_names, stems):
        lr = cv2.imread(_find_result(lr_dir, stem, stems), cv2.IMREAD_COLOR)
        hr = cv2.imread(osp.join(hr_dir, file_name), cv2.IMREAD_COLOR)[:lr.shape[0] * scale, :lr.shape[1] * scale]
        sr = [cv2.imread(_find_result(folder, stem, stems), cv2.IMREAD_COLOR) for _, folder in results]
        panels = [bicubic_upscale(lr, scale), *sr]
        row_labels = []
        for name, panel in zip(names, panels):
            if panel.shape != hr.shape:
                raise ValueError(
                    f'{stem}: {name} is {panel.shape[1]}x{panel.shape[0]} but HR cropped to LR x {scale} is '
                    f'{hr.shape[1]}x{hr.shape[0]}')
            psnr[name].append(calculate_psnr(panel, hr, crop_border=scale, test_y_channel=True))
            row_labels.append(f'{name} {psnr[name][-1]:.2f} dB')
        rows.append([*panels, hr])
        labels.append([f'{stem}: {row_labels[0]}', *row_labels[1:], 'HR'])
    return grid(rows, labels, out_path), {name: float(np.mean(values)) for name, values in psnr.items()}


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the command (``argv`` defaults to ``sys.argv[1:]``); exit statuses of :mod:`srgan_plugin.base.errors`."""
    parser = ArgumentParser(
        prog=PROG, description='Side-by-side comparison: bicubic | results | HR, one row per image.')
    parser.add_argument('--lr', required=True, help='folder of LR images')
    parser.add_argument('--hr', required=True, help='folder of HR images (same names)')
    parser.add_argument(
        '--sr',
        action='append',
        required=True,
        metavar='LABEL=FOLDER',
        help='a labelled result folder (BasicSR test output); repeat for several')
    parser.add_argument('-o', '--out', required=True, help='PNG file to write')
    parser.add_argument('-s', '--scale', type=int, default=4)
    args = parser.parse_args(argv)
    results = []
    for item in args.sr:
        label, sep, folder = item.partition('=')
        if not sep or not osp.isdir(folder):
            parser.error(f'--sr {item}: expected LABEL=FOLDER with an existing folder')
        results.append((label, folder))
    for folder in (args.lr, args.hr):
        if not osp.isdir(folder):
            parser.error(f'{folder} is not a folder')
    if osp.abspath(args.out) in {osp.abspath(osp.join(d, n)) for d in (args.lr, args.hr) for n in os.listdir(d)}:
        parser.error(f'{args.out} is one of the input images; choose another output path')
    with command_errors(PROG, 'the grid is written whole or not at all: nothing was written'):
        try:
            canvas, psnr = compare_folders(args.lr, args.hr, results, args.out, args.scale)
        except (FileNotFoundError, ValueError) as error:  # missing or mismatched result images
            raise SRGANPluginError(f'{error}; check the --sr folders against --lr and --hr') from None
    print(f'wrote {args.out} ({canvas.shape[1]}x{canvas.shape[0]})')
    print(f'mean PSNR (Y, {args.scale} px shaved): ' + ', '.join(f'{k} {v:.2f} dB' for k, v in psnr.items()))


if __name__ == '__main__':
    main()
