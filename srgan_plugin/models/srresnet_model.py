"""Phase 1: SRResNet trained with a pixel (MSE) loss."""
from __future__ import annotations

from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY

from srgan_plugin.models.ema import BufferEMAMixin


@MODEL_REGISTRY.register()
class SRResNetModel(BufferEMAMixin, SRModel):
    """BasicSR's ``SRModel`` whose EMA generator also tracks BatchNorm statistics.

    Options are SRModel's: ``network_g``, ``train.pixel_opt`` (the paper: ``MSELoss``) and/or
    ``train.perceptual_opt`` (e.g. ``VGGContentLoss``), ``train.optim_g``, ``train.scheduler``, ``train.ema_decay``.
    Log keys: ``l_pix`` (and ``l_percep``).
    """
