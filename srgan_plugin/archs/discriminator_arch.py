"""The SRGAN discriminator (Ledig et al., CVPR 2017, section 2.2 and Figure 4, bottom)."""
from __future__ import annotations

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

NORMS = ('batch', 'spectral', 'none')


class Blur(nn.Module):
    """Depthwise [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, reflect-padded, size-preserving; no parameters.

    Placed before a stride-2 convolution it gives the pair a zero response at the Nyquist frequency, so the gradient
    the convolution sends back to its input has no period-2 component (the uneven overlap of a 3x3 kernel at stride 2
    otherwise puts one there, and the generator learns it as a checkerboard texture).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1., 2., 1.])
        kernel = (taps[:, None] * taps[None, :]) / 16
        self.register_buffer('kernel', kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode='reflect'), self.kernel.to(x.dtype), groups=x.shape[1])


def _conv_block(in_ch: int, out_ch: int, stride: int, bn: bool, spectral: bool, antialias: bool) -> list[nn.Module]:
    conv: nn.Module = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=not bn)
    if spectral:
        conv = spectral_norm(conv)
    if antialias and stride == 2:
        conv = nn.Sequential(Blur(in_ch), conv)
    layers: list[nn.Module] = [conv]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


@ARCH_REGISTRY.register()
class SRGANDiscriminator(nn.Module):
    """VGG-style discriminator: 8 conv3x3 (k, k/s2, 2k, 2k/s2, 4k, 4k/s2, 8k, 8k/s2), BN after all but the first
    (``norm: batch``), LeakyReLU(0.2), Dense(1024), LeakyReLU(0.2), Dense(1).

    It returns a logit: the sigmoid lives in the loss (BasicSR's ``GANLoss`` with ``gan_type: vanilla`` gives the
    paper's -log D(G(x)) and is numerically stable). Four stride-2 convolutions divide the input by 16, so the
    dense layer depends on the crop: ``input_size`` must equal the training ``gt_size`` (the paper: 96; BasicSR's
    options: 128) and be a multiple of 16. YAML (``network_d``)::

        type: SRGANDiscriminator
        num_in_ch: 3
        num_feat: 64
        input_size: 96
        norm: batch        # batch: the paper's BatchNorm. spectral: spectral normalisation of every convolution and
                           #   dense layer (Miyato et al. 2018), no BatchNorm. none: no normalisation. A gradient
                           #   penalty (train.gp_opt, WGAN-GP) needs spectral or none: it is computed per sample, and
                           #   BatchNorm mixes the samples of a batch.
        antialias: false   # true: a [1, 2, 1] low-pass filter before each stride-2 convolution (as StyleGAN2's
                           #   discriminator; Zhang 2019). The paper's 3x3 stride-2 convolutions send the generator a
                           #   gradient with a period-2 component, which it learns as a checkerboard texture.

    Without BatchNorm every convolution has a bias. The default's state-dict keys are those of the paper's network;
    ``spectral`` stores each weight as ``<layer>.parametrizations.weight.original`` plus the power-iteration vectors
    ``_u`` / ``_v`` (buffers, saved in checkpoints). ``antialias`` moves each stride-2 convolution's keys to
``features.<i>.1.*`` (the filter at ``features.<i>.0`` has no saved state).

    Args:
        num_in_ch: Channels of the input image. Default: 3.
        num_feat: Channels of the first convolution (the paper's k = 64). Default: 64.
        input_size: Height and width of the HR crops it judges (``datasets.train.gt_size``). Default: 96.
        num_dense: Width of the hidden dense layer. Default: 1024.
        norm: Normalisation: ``'batch'``, ``'spectral'`` or ``'none'``. Default: ``'batch'``.
        antialias: Low-pass filter before each stride-2 convolution. Default: False (the paper's network).
    """

    def __init__(self,
                 num_in_ch: int = 3,
                 num_feat: int = 64,
                 input_size: int = 96,
                 num_dense: int = 1024,
                 norm: str = 'batch',
                 antialias: bool = False) -> None:
        super().__init__()
        if input_size <= 0 or input_size % 16 != 0:
            raise ValueError(f'SRGANDiscriminator: input_size must be a positive multiple of 16 (it must equal '
                             f'datasets.train.gt_size), got {input_size!r}.')
        if norm not in NORMS:
            raise ValueError(f'SRGANDiscriminator: norm must be one of {", ".join(NORMS)}, got {norm!r}.')
        self.input_size = input_size
        self.norm = norm
        spectral = norm == 'spectral'
        widths = [
            num_feat, num_feat, num_feat * 2, num_feat * 2, num_feat * 4, num_feat * 4, num_feat * 8, num_feat * 8
        ]
        layers: list[nn.Module] = []
        in_ch = num_in_ch
        for i, out_ch in enumerate(widths):
            layers += _conv_block(
                in_ch, out_ch, stride=1 + i % 2, bn=norm == 'batch' and i > 0, spectral=spectral, antialias=antialias)
            in_ch = out_ch
        self.features = nn.Sequential(*layers)
        spatial = input_size // 16
        dense = [nn.Linear(in_ch * spatial * spatial, num_dense), nn.Linear(num_dense, 1)]
        if spectral:
            dense = [spectral_norm(layer) for layer in dense]
        self.classifier = nn.Sequential(nn.Flatten(), dense[0], nn.LeakyReLU(0.2, inplace=True), dense[1])

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f'SRGANDiscriminator was built for {self.input_size}x{self.input_size} crops but got '
                             f'{x.shape[-2]}x{x.shape[-1]}: set network_d.input_size to datasets.train.gt_size.')
        return self.classifier(self.features(x))
