"""SRResNet, the SRGAN generator (Ledig et al., CVPR 2017, section 2.2 and Figure 4, top)."""
from __future__ import annotations

import math

import torch
from basicsr.archs.arch_util import default_init_weights
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn

SUPPORTED_SCALES = (2, 3, 4, 8)


class ResidualBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus identity skip (paper: B such blocks)."""

    def __init__(self, num_feat: int, prelu_params: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(num_feat)
        self.prelu = nn.PReLU(prelu_params)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(num_feat)
        default_init_weights([self.conv1, self.conv2], scale=0.1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


@torch.no_grad()
def icnr_(conv: nn.Conv2d, factor: int, scale: float = 0.1) -> None:
    """ICNR initialisation of a sub-pixel convolution (Aitken et al., "Checkerboard artifact free sub-pixel
    convolution", 2017): the ``factor**2`` kernels that PixelShuffle interleaves into one output channel start equal,
    so that at initialisation the conv + shuffle is a conv followed by nearest-neighbour upsampling, free of the
    checkerboard pattern. The shared kernels are Kaiming-normal times ``scale`` (BasicSR's ``default_init_weights``);
    the bias is zero."""
    shared = torch.empty(conv.out_channels // factor**2, conv.in_channels, *conv.kernel_size)
    nn.init.kaiming_normal_(shared)
    conv.weight.copy_(shared.repeat_interleave(factor**2, dim=0) * scale)
    conv.bias.zero_()


class UpsampleBlock(nn.Sequential):
    """conv3x3 (num_feat -> num_feat * factor^2) - PixelShuffle(factor) - PReLU: one sub-pixel step, ICNR-initialised
    (:func:`icnr_`)."""

    def __init__(self, num_feat: int, factor: int, prelu_params: int = 1) -> None:
        super().__init__(
            nn.Conv2d(num_feat, num_feat * factor * factor, 3, 1, 1), nn.PixelShuffle(factor), nn.PReLU(prelu_params))
        icnr_(self[0], factor)


@ARCH_REGISTRY.register()
class SRResNet(nn.Module):
    """SRResNet generator of SRGAN, as in the paper (with BatchNorm), for BasicSR's [0, 1] images.

    conv9x9 + PReLU -> ``num_block`` residual blocks -> conv3x3 + BN + long skip -> log2(upscale) x
    [conv3x3, PixelShuffle(2), PReLU] (one PixelShuffle(3) for x3) -> conv9x9. With the defaults it has exactly
    1,549,462 parameters. The sub-pixel convolutions start with ICNR (:func:`icnr_`), the others as BasicSR's
    networks (Kaiming normal x 0.1). YAML (``network_g``)::

        type: SRResNet
        num_in_ch: 3
        num_out_ch: 3
        num_feat: 64
        num_block: 16
        upscale: 4

    Args:
        num_in_ch: Channels of the input (LR) image. Default: 3.
        num_out_ch: Channels of the output (SR) image. Default: 3.
        num_feat: Feature channels (the paper's n64). Default: 64.
        num_block: Number of residual blocks (the paper's B). Default: 16.
        upscale: Upsampling factor: 2, 3, 4 or 8. Default: 4.
        prelu_per_channel: One PReLU slope per channel instead of one per layer (the paper does not say; Keras'
            and most reimplementations' default is per layer). Default: False.
    """

    def __init__(self,
                 num_in_ch: int = 3,
                 num_out_ch: int = 3,
                 num_feat: int = 64,
                 num_block: int = 16,
                 upscale: int = 4,
                 prelu_per_channel: bool = False) -> None:
        super().__init__()
        if upscale not in SUPPORTED_SCALES:
            raise ValueError(f'SRResNet: upscale must be one of {SUPPORTED_SCALES}, got {upscale!r}.')
        self.upscale = upscale
        prelu = num_feat if prelu_per_channel else 1
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 9, 1, 4)
        self.prelu_first = nn.PReLU(prelu)
        self.body = nn.Sequential(*[ResidualBlock(num_feat, prelu) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn_body = nn.BatchNorm2d(num_feat)
        factors = [3] if upscale == 3 else [2] * int(math.log2(upscale))
        self.upsample = nn.Sequential(*[UpsampleBlock(num_feat, f, prelu) for f in factors])
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 9, 1, 4)
        default_init_weights([self.conv_first, self.conv_body, self.conv_last], scale=0.1)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.prelu_first(self.conv_first(x))
        feat = feat + self.bn_body(self.conv_body(self.body(feat)))
        return self.conv_last(self.upsample(feat))


def count_parameters(net: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``net``."""
    return sum(p.numel() for p in net.parameters())
