"""The SRGAN discriminator (Ledig et al., CVPR 2017, section 2.2 and Figure 4, bottom)."""
from __future__ import annotations

from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn


def _conv_block(in_ch: int, out_ch: int, stride: int, bn: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


@ARCH_REGISTRY.register()
class SRGANDiscriminator(nn.Module):
    """VGG-style discriminator: 8 conv3x3 (k, k/s2, 2k, 2k/s2, 4k, 4k/s2, 8k, 8k/s2), BN after all but the first,
    LeakyReLU(0.2), Dense(1024), LeakyReLU(0.2), Dense(1).

    It returns a logit: the sigmoid lives in the loss (BasicSR's ``GANLoss`` with ``gan_type: vanilla`` gives the
    paper's -log D(G(x)) and is numerically stable). Four stride-2 convolutions divide the input by 16, so the
    dense layer depends on the crop: ``input_size`` must equal the training ``gt_size`` (the paper: 96; BasicSR's
    options: 128) and be a multiple of 16. YAML (``network_d``)::

        type: SRGANDiscriminator
        num_in_ch: 3
        num_feat: 64
        input_size: 96

    Args:
        num_in_ch: Channels of the input image. Default: 3.
        num_feat: Channels of the first convolution (the paper's k = 64). Default: 64.
        input_size: Height and width of the HR crops it judges (``datasets.train.gt_size``). Default: 96.
        num_dense: Width of the hidden dense layer. Default: 1024.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 96, num_dense: int = 1024) -> None:
        super().__init__()
        if input_size <= 0 or input_size % 16 != 0:
            raise ValueError(f'SRGANDiscriminator: input_size must be a positive multiple of 16 (it must equal '
                             f'datasets.train.gt_size), got {input_size!r}.')
        self.input_size = input_size
        widths = [
            num_feat, num_feat, num_feat * 2, num_feat * 2, num_feat * 4, num_feat * 4, num_feat * 8, num_feat * 8
        ]
        layers: list[nn.Module] = []
        in_ch = num_in_ch
        for i, out_ch in enumerate(widths):
            layers += _conv_block(in_ch, out_ch, stride=1 + i % 2, bn=i > 0)
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        spatial = input_size // 16
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(in_ch * spatial * spatial, num_dense),
                                        nn.LeakyReLU(0.2, inplace=True), nn.Linear(num_dense, 1))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f'SRGANDiscriminator was built for {self.input_size}x{self.input_size} crops but got '
                             f'{x.shape[-2]}x{x.shape[-1]}: set network_d.input_size to datasets.train.gt_size.')
        return self.classifier(self.features(x))
