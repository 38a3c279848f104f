"""The VGG content loss of SRGAN (Ledig et al., CVPR 2017, section 2.2.2)."""
from __future__ import annotations

import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn
from torch.nn import functional as F

from srgan_plugin.losses.vgg import VGG19Features

_CRITERIA = {'mse': F.mse_loss, 'l1': F.l1_loss}


@LOSS_REGISTRY.register()
class VGGContentLoss(nn.Module):
    """SRGAN's VGG content loss: the distance between VGG19 feature maps of the output and the ground truth.

    The features are taken AFTER the ReLU (the paper's phi_{i,j}), unlike BasicSR's ``PerceptualLoss`` with
    ``conv5_4`` (before the ReLU). Both feature maps are multiplied by ``feature_scale`` before the criterion, so with
    'mse' the loss scales with ``feature_scale ** 2``.

    The scale. The paper rescales by 1/12.75 "to obtain VGG losses of a scale comparable to the MSE loss", for
    Caffe's VGG19 on 0-255 inputs. This loss uses torchvision's VGG19 on ImageNet-normalised [0, 1] inputs, whose
    features are on another scale, so that number does not carry over. The default, 1.0 (no rescaling), is the
    setting of the PyTorch reproduction that comes closest to the paper's SRGAN (torchvision VGG19 after ReLU 5_4,
    ImageNet-normalised input, MSE, weight 1.0, adversarial weight 1e-3: Set5 PSNR-Y 29.08 dB against the paper's
    29.40). ``feature_scale: 0.0784313725`` (1/12.75) keeps the paper's literal number; it makes the VGG term 162.6
    times weaker. ``SRGANPluginModel`` logs the content-to-adversarial ratio at the start of training.

    ``forward`` returns ``(loss, None)``, BasicSR's ``PerceptualLoss`` convention ``(percep_loss, style_loss)``, so the
    loss is a drop-in for ``perceptual_opt`` in BasicSR's own ``SRModel`` / ``SRGANModel`` as well.

    Args:
        layer (str): VGG19 layer: 'vgg22' (= relu2_2), 'vgg54' (= relu5_4) or any BasicSR VGG19 layer name
            ('relu1_1', ..., 'conv5_4', 'pool5'). Default: 'vgg54'.
        loss_weight (float): Weight of the loss. Default: 1.0.
        feature_scale (float): Factor applied to both feature maps before the criterion (see above). Default: 1.0.
        criterion (str): 'mse' (the paper's) or 'l1'. Default: 'mse'.
        vgg_weights (str | None): Path to torchvision's ImageNet VGG19 file ``vgg19-dcbb9e9d.pth``; None uses
            torchvision's cache ``<torch hub dir>/checkpoints/vgg19-dcbb9e9d.pth`` and downloads it if it is missing;
            'random' uses random weights (tests and demos only). Default: None.
        use_input_norm (bool): Normalise the [0, 1] RGB input with ImageNet's mean and std. Default: True.
        range_norm (bool): Map images from [-1, 1] to [0, 1] first. Default: False.
    """

    def __init__(self,
                 layer: str = 'vgg54',
                 loss_weight: float = 1.0,
                 feature_scale: float = 1.0,
                 criterion: str = 'mse',
                 vgg_weights: str | None = None,
                 use_input_norm: bool = True,
                 range_norm: bool = False) -> None:
        super().__init__()
        if criterion not in _CRITERIA:
            raise ValueError(f'Unsupported criterion {criterion!r} for VGGContentLoss: use one of {sorted(_CRITERIA)}')
        self.loss_weight = loss_weight
        self.feature_scale = feature_scale
        self.criterion = criterion
        self.vgg = VGG19Features(layer=layer, weights=vgg_weights, use_input_norm=use_input_norm, range_norm=range_norm)

    def forward(self, x: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Content loss between ``x`` and ``gt``, both (n, 3, h, w) images.

        Args:
            x (Tensor): Output of the generator; gradients flow back to it.
            gt (Tensor): Ground truth; its features are computed without gradients.

        Returns:
            tuple[Tensor, None]: The scalar loss and None (no style loss).
        """
        x_features = self.vgg(x) * self.feature_scale
        with torch.no_grad():
            gt_features = self.vgg(gt.detach()) * self.feature_scale
        loss = _CRITERIA[self.criterion](x_features, gt_features) * self.loss_weight
        return loss, None
