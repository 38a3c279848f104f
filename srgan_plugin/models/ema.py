"""Exponential moving average of the generator that also follows its buffers (BatchNorm running statistics)."""
from __future__ import annotations

import torch


class BufferEMAMixin:
    """Mixin for BasicSR models: ``model_ema`` averages parameters *and* copies buffers into ``net_g_ema``.

    BasicSR's ``BaseModel.model_ema`` averages ``named_parameters()`` only, so with a BatchNorm generator such as
    SRResNet the EMA network, which validation and saving use, keeps the running mean/var it was built with. Put
    this mixin before the BasicSR model class in the bases.
    """

    @torch.no_grad()
    def model_ema(self, decay: float = 0.999) -> None:
        super().model_ema(decay)  # type: ignore[misc]
        net_g = self.get_bare_model(self.net_g)  # type: ignore[attr-defined]
        ema_buffers = dict(self.net_g_ema.named_buffers())  # type: ignore[attr-defined]
        for name, buffer in net_g.named_buffers():
            ema_buffers[name].copy_(buffer)
