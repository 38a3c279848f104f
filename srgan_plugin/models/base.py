"""What both plugin models share: the speed options, fault-tolerant checkpoints, distributed training, guarded steps,
the BatchNorm-aware EMA, BatchNorm freezing, and the content loss (with the optional total-variation term)."""
from __future__ import annotations

from typing import Optional, cast

from basicsr.losses import build_loss
from torch import Tensor, nn

from srgan_plugin.models.ddp import DistributedMixin
from srgan_plugin.models.ema import BufferEMAMixin
from srgan_plugin.models.nonfinite import NonFiniteGuardMixin
from srgan_plugin.models.performance import PerformanceMixin
from srgan_plugin.models.saving import AtomicCheckpointMixin

LossLog = dict[str, Tensor]


class PluginModelMixin(PerformanceMixin, NonFiniteGuardMixin, DistributedMixin, AtomicCheckpointMixin, BufferEMAMixin):
    """Put first in the bases of a BasicSR ``SRModel`` subclass.

    Adds the options ``train.tv_opt`` (e.g. ``TVLoss``): a total-variation term on the generator's output (no ground
    truth), and ``train.grid_opt`` (``GridLoss``): the error on the sub-pixel grid's frequencies, built as ``cri_tv``
    and ``cri_grid`` next to BasicSR's ``cri_pix`` and added by ``content_loss``; and the option
    ``train.bn_freeze_iter`` (see :meth:`freeze_generator_bn`).
    """

    cri_tv: Optional[nn.Module]
    cri_grid: Optional[nn.Module]

    def init_training_settings(self) -> None:
        super().init_training_settings()
        tv_opt, grid_opt = self.opt['train'].get('tv_opt'), self.opt['train'].get('grid_opt')
        self.cri_tv = build_loss(tv_opt).to(self.device) if tv_opt else None
        self.cri_grid = build_loss(grid_opt).to(self.device) if grid_opt else None

    def freeze_generator_bn(self, current_iter: int) -> None:
        """``train.bn_freeze_iter`` (default ~, never): from that iteration on, the generator's BatchNorm layers train
        with their running statistics, frozen, instead of the batch's (Wu and Johnson, "Rethinking 'Batch' in
        BatchNorm", 2021: "FrozenBN" for the last part of training). The generator is then trained as it is
        evaluated, with no train/test inconsistency. Called at the start of every training step, because validation
        puts the whole network back into train mode."""
        start = self.opt['train'].get('bn_freeze_iter')
        if start is not None and current_iter >= start:
            for module in self.net_g.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def content_loss(self, output: Tensor, gt: Tensor, log: LossLog, prefix: str) -> Tensor:
        """Pixel (``train.pixel_opt``) + VGG (``train.perceptual_opt``) + total-variation (``train.tv_opt``, on
        ``output`` only) + grid (``train.grid_opt``) terms, logged as ``{prefix}pix``, ``{prefix}percep``,
        ``{prefix}style``, ``{prefix}tv``, ``{prefix}grid``."""
        terms = []
        if self.cri_pix:
            log[f'{prefix}pix'] = self.cri_pix(output, gt)
            terms.append(log[f'{prefix}pix'])
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(output, gt)
            for key, value in ((f'{prefix}percep', l_percep), (f'{prefix}style', l_style)):
                if value is not None:
                    log[key] = value
                    terms.append(value)
        if self.cri_tv:
            log[f'{prefix}tv'] = self.cri_tv(output)
            terms.append(log[f'{prefix}tv'])
        if self.cri_grid:
            log[f'{prefix}grid'] = self.cri_grid(output, gt)
            terms.append(log[f'{prefix}grid'])
        return cast(Tensor, sum(terms))  # the int 0 it starts from keeps the terms' dtype (autocast)
