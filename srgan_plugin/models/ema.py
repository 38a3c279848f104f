"""Exponential moving average of the generator that also follows its buffers (BatchNorm running statistics)."""
from __future__ import annotations

import torch


class BufferEMAMixin:
    """Mixin for BasicSR models: ``model_ema`` averages parameters *and* copies buffers into ``net_g_ema``.

    BasicSR's ``BaseModel.model_ema`` averages ``named_parameters()`` only, so with a BatchNorm generator such as
    SRResNet the EMA network, which validation and saving use, keeps the running mean/var it was built with. The
    average is BasicSR's arithmetic (``ema * decay + param * (1 - decay)``) in two multi-tensor (``_foreach``) ops
    instead of two small ops per parameter, which matters on a GPU. Put this mixin before the BasicSR model class.
    """

    @torch.no_grad()
    def model_ema(self, decay: float = 0.999) -> None:
        net_g = self.get_bare_model(self.net_g)  # type: ignore[attr-defined]
        live = dict(net_g.named_parameters())
        ema_params = list(self.net_g_ema.named_parameters())  # type: ignore[attr-defined]
        averaged = [param for _, param in ema_params]
        torch._foreach_mul_(averaged, decay)
        torch._foreach_add_(averaged, [live[name].detach() for name, _ in ema_params], alpha=1 - decay)
        ema_buffers = dict(self.net_g_ema.named_buffers())  # type: ignore[attr-defined]
        for name, buffer in net_g.named_buffers():
            ema_buffers[name].copy_(buffer)
