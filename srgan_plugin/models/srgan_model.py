"""Phase 2: SRGAN, adversarial training of the generator against the discriminator."""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Iterator

from basicsr.losses import build_loss
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils.registry import MODEL_REGISTRY
from torch import Tensor, nn

from srgan_plugin.models.base import LossLog, PluginModelMixin
from srgan_plugin.models.nonfinite import BufferSnapshot


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """Parameters of ``net`` do not require grad inside the block (the D pass of the generator step)."""
    params = list(net.parameters())
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@MODEL_REGISTRY.register()
class SRGANPluginModel(PluginModelMixin, SRGANModel):
    """SRGAN training step as in the paper, on BasicSR's ``SRGANModel``.

    Differences from BasicSR's ``SRGANModel``: the plugin's training guarantees (``PluginModelMixin``: atomic
    checkpoints, exact resume, non-finite steps skipped, DDP on CPU and GPU); the generator's EMA follows BatchNorm
    statistics; the losses are computed in ``generator_loss`` / ``discriminator_loss`` (override those, not the
    step); the discriminator pass of the generator step and the penalty use the unwrapped discriminator (a DDP
    forward whose parameters receive no gradient breaks the next reduction); an optional gradient penalty
    (``train.gp_opt``, e.g. ``GradientPenaltyLoss`` with ``gan_opt.gan_type: wgan`` for WGAN-GP).

    Options (``train``): ``pixel_opt`` (SRGAN-MSE: ``MSELoss``), ``perceptual_opt`` (SRGAN-VGG22/54:
    ``VGGContentLoss``), ``gan_opt`` (the paper: ``GANLoss``, ``gan_type: vanilla``, ``loss_weight: !!float 1e-3``),
    ``gp_opt``, ``optim_g``, ``optim_d``, ``scheduler``, ``net_d_iters`` (1), ``net_d_init_iters`` (0),
    ``ema_decay``, ``max_nonfinite_steps`` (10); top level: ``sync_bn`` (false). Log keys: ``l_g_pix``,
    ``l_g_percep``, ``l_g_gan``, ``l_d_real``, ``l_d_fake``, ``out_d_real``, ``out_d_fake`` (and ``l_d_gp``), as
    BasicSR's.
    """

    def init_training_settings(self) -> None:
        super().init_training_settings()
        gp_opt = self.opt['train'].get('gp_opt')
        self.cri_gp = build_loss(gp_opt).to(self.device) if gp_opt else None

    def generator_loss(self, output: Tensor, gt: Tensor, log: LossLog) -> Tensor:
        """Content (pixel and/or VGG) + adversarial loss of the generator; the discriminator must be frozen."""
        content = self.content_loss(output, gt, log, prefix='l_g_')
        log['l_g_gan'] = self.cri_gan(self.get_bare_model(self.net_d)(output), True, is_disc=False)
        return content + log['l_g_gan']

    def discriminator_loss(self, fake: Tensor, real: Tensor, log: LossLog) -> Tensor:
        """Adversarial loss of the discriminator on real HR and (detached) generated images, plus the penalty."""
        real_pred, fake_pred = self.net_d(real), self.net_d(fake)
        log['l_d_real'] = self.cri_gan(real_pred, True, is_disc=True)
        log['l_d_fake'] = self.cri_gan(fake_pred, False, is_disc=True)
        log['out_d_real'] = real_pred.detach().mean()
        log['out_d_fake'] = fake_pred.detach().mean()
        total = log['l_d_real'] + log['l_d_fake']
        if self.cri_gp:
            log['l_d_gp'] = self.cri_gp(self.get_bare_model(self.net_d), real, fake)
            total = total + log['l_d_gp']
        return total

    def optimize_parameters(self, current_iter: int) -> None:
        snapshot_g, snapshot_d = BufferSnapshot(self.net_g), BufferSnapshot(self.net_d)
        self.output = self.net_g(self.lq)
        log: LossLog = OrderedDict()
        g_stepped = False
        if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
            with frozen(self.net_d):
                l_g_total = self.generator_loss(self.output, self.gt, log)
            g_stepped = self.guarded_step(self.optimizer_g, l_g_total, 'generator', current_iter, snapshot_g)
        l_d_total = self.discriminator_loss(self.output.detach(), self.gt, log)
        self.guarded_step(self.optimizer_d, l_d_total, 'discriminator', current_iter, snapshot_d)
        self.log_dict = self.reduce_loss_dict(log)
        if g_stepped and self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
