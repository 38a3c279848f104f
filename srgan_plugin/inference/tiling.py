"""Seamless tiled inference with bounded memory, and retrying with tiles after an out-of-memory error.

The LR image is cut into ``tile x tile`` tiles; each is run with ``tile_pad`` extra LR pixels on every side (fewer
at the image border) and the padded part is cropped from its output. SRResNet in eval mode has no dependence between
pixels other than its convolutions (BatchNorm uses running statistics), so a pad at least the network's receptive
radius (:func:`receptive_radius`, 40 LR pixels for the default 16-block x4 SRResNet) gives exactly the untiled
result up to float rounding: tiles are seamless. That radius is the default pad.

Memory: the largest activations are those of the last upsampling step, about ``ACTIVATION_COPIES x num_feat x
scale^2`` values per LR pixel of a (padded) tile (:func:`activation_bytes`). On CPU, when the whole image would
need more than ``memory_budget`` (512 MiB by default) it is tiled automatically with the largest tile that fits
(128 for the default network: see ``benchmarks/bench_upscale.py`` and docs/inference.md for measured peaks).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn

from srgan_plugin.base.errors import InferenceError
from srgan_plugin.inference.runtime import is_out_of_memory, log

__all__ = ['CPU_MEMORY_BUDGET', 'MIN_TILE', 'receptive_radius', 'activation_bytes', 'tile_boxes', 'Upscaler', 'Box']

CPU_MEMORY_BUDGET = 512 << 20  # -> 128 px tiles for the default net: 1.3 GB peak RSS vs 1.7-1.9 GB with 208 px
ACTIVATION_COPIES = 3
MIN_TILE = 16
Box = tuple[int, int, int, int]  # y0, y1, x0, x1 in LR pixels


def _resolution_walk(net: nn.Module) -> list[tuple[nn.Conv2d, int]]:
    """Each convolution of ``net`` with the upsampling factor of its input, in registration (= forward) order."""
    convs, resolution = [], 1
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            convs.append((module, resolution))
        elif isinstance(module, nn.PixelShuffle):
            resolution *= module.upscale_factor
    return convs


def receptive_radius(net: nn.Module) -> int:
    """Receptive radius in LR pixels of a feed-forward conv net whose modules are registered in forward order.

    The sum over convolutions of ``dilation * (kernel // 2)`` divided by the upsampling factor at that layer,
    rounded up: an upper bound (skips only shorten paths). For SRResNet: ``4 + 2 * num_block + 1`` at LR, ``1``,
    ``1/2`` in the x2 upsampling steps and ``4 / scale`` for the last 9x9 convolution.

    Args:
        net (nn.Module): The network.

    Returns:
        int: The radius; a tile pad of at least this makes tiling seamless.
    """
    radius = sum(conv.dilation[0] * (conv.kernel_size[0] // 2) / res for conv, res in _resolution_walk(net))
    return math.ceil(radius - 1e-9)


def activation_bytes(net: nn.Module, dtype: torch.dtype = torch.float32) -> float:
    """Estimated peak activation memory per LR pixel: ``ACTIVATION_COPIES x`` the largest convolution output
    (for SRResNet the last upsampling step's, ``num_feat x scale^2`` values per LR pixel).

    Args:
        net (nn.Module): The network.
        dtype (torch.dtype): Compute dtype. Default: torch.float32.

    Returns:
        float: Bytes per LR pixel of a tile (padding included).
    """
    largest = max(conv.out_channels * res * res for conv, res in _resolution_walk(net))
    return ACTIVATION_COPIES * largest * torch.empty(0, dtype=dtype).element_size()


def tile_boxes(height: int, width: int, tile: int) -> list[Box]:
    """The ``tile x tile`` LR boxes covering an image, row-major (the last row and column may be smaller).

    Args:
        height (int): Image height.
        width (int): Image width.
        tile (int): Tile side; 0 for one box covering the whole image.

    Returns:
        list[Box]: ``(y0, y1, x0, x1)`` boxes.
    """
    if tile <= 0:
        return [(0, height, 0, width)]
    return [(y, min(y + tile, height), x, min(x + tile, width)) for y in range(0, height, tile)
            for x in range(0, width, tile)]


def _identity(tile: np.ndarray) -> np.ndarray:
    return tile


@dataclasses.dataclass
class Upscaler:
    """Runs a network on an image, whole or in tiles, writing each tile's converted output into the result.

    Args:
        net (Callable[[Tensor], Tensor]): The network (eval mode), on ``device`` in ``dtype``.
        scale (int): Its upscaling factor.
        device (torch.device): Where it runs. Default: CPU.
        dtype (torch.dtype): Its compute dtype. Default: torch.float32.
        tile (int | None): LR tile side; 0 for the whole image, None for automatic (tiles on CPU when the
            image needs more than ``memory_budget``). Default: None.
        tile_pad (int): LR pixels of context around each tile. Default: 0 (use :meth:`for_network`, which
            defaults it to the receptive radius).
        bytes_per_pixel (float): Activation memory per LR pixel (:func:`activation_bytes`); 0 never auto-tiles.
            Default: 0.
        memory_budget (int): Activation bytes allowed on CPU before tiling automatically. Default: 512 MiB.
        progress (bool): Show a progress bar over tiles. Default: False.
    """
    net: Callable[[Tensor], Tensor]
    scale: int
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device('cpu'))
    dtype: torch.dtype = torch.float32
    tile: Optional[int] = None
    tile_pad: int = 0
    bytes_per_pixel: float = 0
    memory_budget: int = CPU_MEMORY_BUDGET
    progress: bool = False
    last_tile: int = dataclasses.field(default=0, init=False)  # the tile side the last image was done with

    @classmethod
    def for_network(cls, net: nn.Module, scale: int, tile_pad: Optional[int] = None, **kwargs) -> Upscaler:
        """An upscaler for ``net`` with the pad defaulting to its receptive radius and the memory estimate set.

        Args:
            net (nn.Module): The network, already on its device and dtype.
            scale (int): Its upscaling factor.
            tile_pad (int | None): LR pixels of context; None for :func:`receptive_radius`. Default: None.
            **kwargs: Other fields of :class:`Upscaler`.
        """
        dtype = kwargs.get('dtype', torch.float32)
        pad = receptive_radius(net) if tile_pad is None else tile_pad
        return cls(net, scale, tile_pad=pad, bytes_per_pixel=activation_bytes(net, dtype), **kwargs)

    def plan_tile(self, height: int, width: int) -> int:
        """The tile side used for an image: ``tile`` when set, else 0 unless a CPU run would exceed the budget."""
        if self.tile is not None:
            return self.tile
        if self.device.type != 'cpu' or height * width * self.bytes_per_pixel <= self.memory_budget:
            return 0
        side = math.isqrt(int(self.memory_budget / self.bytes_per_pixel)) - 2 * self.tile_pad
        return max(MIN_TILE, side // 8 * 8)

    def upscale(self, img: np.ndarray, convert: Callable[[np.ndarray], np.ndarray] = _identity) -> np.ndarray:
        """Upscale an HxWxC float32 image in [0, 1] (the network's channel order), retrying with tiles on OOM.

        Args:
            img (np.ndarray): The LR image.
            convert (Callable[[np.ndarray], np.ndarray]): Applied to each output tile (float32 HxWxC) before it is
                stored, e.g. quantization; the result has the dtype and trailing shape it returns. Default: identity.

        Returns:
            np.ndarray: The ``(H * scale) x (W * scale)`` output.
        """
        height, width = img.shape[:2]
        lr = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))[None]
        tile = self.plan_tile(height, width)
        while True:
            try:
                out = self._run(lr, tile, convert)
                self.last_tile = tile
                return out
            except RuntimeError as error:  # torch.OutOfMemoryError is a RuntimeError
                if not is_out_of_memory(error):
                    raise
            tile = self._smaller_tile(tile, height, width)

    def _smaller_tile(self, tile: int, height: int, width: int) -> int:
        """Half the failed tile (or the image), logging which ``--tile`` to pass; error below :data:`MIN_TILE`."""
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()
        smaller = (tile or max(height, width)) // 2
        if smaller < MIN_TILE:
            raise InferenceError(f'out of memory on {self.device} even with --tile {tile} --tile-pad {self.tile_pad}; '
                                 'use --half/--bf16, --device cpu, or free memory')
        failed = 'the whole image' if tile == 0 else f'--tile {tile}'
        log(f'out of memory on {self.device} with {failed}; retrying with --tile {smaller} '
            f'(pass --tile {smaller} or smaller to skip this)')
        return smaller

    def _run(self, lr: Tensor, tile: int, convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """One pass over the tiles of ``tile`` (0: whole image); allocates the output on the first tile."""
        from tqdm import tqdm

        height, width = lr.shape[2:]
        boxes = tile_boxes(height, width, tile)
        out: Optional[np.ndarray] = None
        bar = tqdm(boxes, desc='tiles', unit='tile', leave=False, disable=not self.progress or len(boxes) == 1)
        for box in bar:
            result = convert(self._run_box(lr, box))
            if out is None:
                out = np.empty((height * self.scale, width * self.scale, *result.shape[2:]), result.dtype)
            y0, y1, x0, x1 = (v * self.scale for v in box)
            out[y0:y1, x0:x1] = result
        return out

    def _run_box(self, lr: Tensor, box: Box) -> np.ndarray:
        """The float32 HxWxC output of one LR box, computed with ``tile_pad`` context and cropped."""
        height, width = lr.shape[2:]
        y0, y1, x0, x1 = box
        py0, px0 = max(y0 - self.tile_pad, 0), max(x0 - self.tile_pad, 0)
        py1, px1 = min(y1 + self.tile_pad, height), min(x1 + self.tile_pad, width)
        patch = lr[:, :, py0:py1, px0:px1].to(self.device, self.dtype)
        with torch.inference_mode():
            sr = self.net(patch)
        s = self.scale
        sr = sr[0, :, (y0 - py0) * s:(y1 - py0) * s, (x0 - px0) * s:(x1 - px0) * s]
        return sr.float().cpu().permute(1, 2, 0).numpy()
