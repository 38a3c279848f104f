"""What both plugin models share: the speed options, fault-tolerant checkpoints, distributed training, guarded steps,
the BatchNorm-aware EMA, and the content loss."""
from __future__ import annotations

from torch import Tensor

from srgan_plugin.models.checkpointing import AtomicCheckpointMixin
from srgan_plugin.models.ddp import DistributedMixin
from srgan_plugin.models.ema import BufferEMAMixin
from srgan_plugin.models.nonfinite import NonFiniteGuardMixin
from srgan_plugin.models.performance import PerformanceMixin

LossLog = dict[str, Tensor]


class PluginModelMixin(PerformanceMixin, NonFiniteGuardMixin, DistributedMixin, AtomicCheckpointMixin, BufferEMAMixin):
    """Put first in the bases of a BasicSR ``SRModel`` subclass."""

    def content_loss(self, output: Tensor, gt: Tensor, log: LossLog, prefix: str) -> Tensor:
        """Pixel (``train.pixel_opt``) + VGG (``train.perceptual_opt``) terms, logged as ``{prefix}pix`` etc."""
        terms = []
        if self.cri_pix:  # type: ignore[attr-defined]
            log[f'{prefix}pix'] = self.cri_pix(output, gt)  # type: ignore[attr-defined]
            terms.append(log[f'{prefix}pix'])
        if self.cri_perceptual:  # type: ignore[attr-defined]
            l_percep, l_style = self.cri_perceptual(output, gt)  # type: ignore[attr-defined]
            for key, value in ((f'{prefix}percep', l_percep), (f'{prefix}style', l_style)):
                if value is not None:
                    log[key] = value
                    terms.append(value)
        return sum(terms)
