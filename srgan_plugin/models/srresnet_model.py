"""Phase 1: SRResNet trained with a pixel (MSE) loss."""
from __future__ import annotations

from collections import OrderedDict

from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY

from srgan_plugin.models.base import LossLog, PluginModelMixin
from srgan_plugin.models.nonfinite import BufferSnapshot


@MODEL_REGISTRY.register()
class SRResNetModel(PluginModelMixin, SRModel):
    """BasicSR's ``SRModel`` with the plugin's training guarantees (see ``PluginModelMixin``).

    Options are SRModel's: ``network_g``, ``train.pixel_opt`` (the paper: ``MSELoss``) and/or
    ``train.perceptual_opt`` (e.g. ``VGGContentLoss``), ``train.optim_g``, ``train.scheduler``, ``train.ema_decay``,
    plus ``train.ema_warmup`` (~: warm the EMA up only from random weights, see ``resolve_ema_warmup``),
    ``train.tv_opt`` (optional, e.g. ``TVLoss``: a total-variation term on the output, no ground truth),
    ``train.grid_opt`` (optional, ``GridLoss``: the error on the sub-pixel grid's frequencies),
    ``train.bn_freeze_iter`` (~: the iteration from which the generator's BatchNorm layers use their running
    statistics while training, see ``PluginModelMixin.freeze_generator_bn``), ``train.max_nonfinite_steps`` (10),
    the speed options ``train.amp`` / ``channels_last`` / ``compile`` (see ``PerformanceMixin``) and the top-level
    ``sync_bn`` (false). Log keys: ``l_pix`` (and ``l_percep``, ``l_tv``, ``l_grid``).
    The EMA generator also tracks BatchNorm statistics.
    """

    def optimize_parameters(self, current_iter: int) -> None:
        self.freeze_generator_bn(current_iter)
        snapshot = BufferSnapshot(self.net_g)
        log: LossLog = OrderedDict()
        with self.autocast():
            self.output = self.net_g(self.lq)
            loss = self.content_loss(self.output, self.gt, log, prefix='l_')
        stepped = self.guarded_step(self.optimizer_g, loss, 'generator', current_iter, snapshot)
        self.log_dict = self.reduce_loss_dict(log)
        if stepped and self.ema_decay > 0:
            self.update_ema(current_iter)
