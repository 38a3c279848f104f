"""Phase 2: SRGAN, adversarial training of the generator against the discriminator."""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from typing import Iterator

from basicsr.losses import build_loss
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils.registry import MODEL_REGISTRY
from torch import Tensor, nn, optim

from srgan_plugin.models.ema import BufferEMAMixin

LossLog = dict[str, Tensor]


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


def optimizer_step(optimizer: optim.Optimizer, loss: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


@MODEL_REGISTRY.register()
class SRGANPluginModel(BufferEMAMixin, SRGANModel):
    """SRGAN training step as in the paper, on BasicSR's ``SRGANModel``.

    Differences from BasicSR's ``SRGANModel``: the generator's EMA follows BatchNorm statistics; the losses are
    computed in ``generator_loss`` / ``discriminator_loss`` (override those, not the step); an optional gradient
    penalty (``train.gp_opt``, e.g. ``GradientPenaltyLoss`` with ``gan_opt.gan_type: wgan`` for WGAN-GP).

    Options (``train``): ``pixel_opt`` (SRGAN-MSE: ``MSELoss``), ``perceptual_opt`` (SRGAN-VGG22/54:
    ``VGGContentLoss``), ``gan_opt`` (the paper: ``GANLoss``, ``gan_type: vanilla``, ``loss_weight: !!float 1e-3``),
    ``gp_opt``, ``optim_g``, ``optim_d``, ``scheduler``, ``net_d_iters`` (1), ``net_d_init_iters`` (0),
    ``ema_decay``. Log keys: ``l_g_pix``, ``l_g_percep``, ``l_g_gan``, ``l_d_real``, ``l_d_fake``, ``out_d_real``,
    ``out_d_fake`` (and ``l_d_gp``), as BasicSR's.
    """

    def init_training_settings(self) -> None:
        super().init_training_settings()
        gp_opt = self.opt['train'].get('gp_opt')
        self.cri_gp = build_loss(gp_opt).to(self.device) if gp_opt else None

    def generator_loss(self, output: Tensor, gt: Tensor, log: LossLog) -> Tensor:
        """Content (pixel and/or VGG) + adversarial loss of the generator; the discriminator must be frozen."""
        terms = []
        if self.cri_pix:
            log['l_g_pix'] = self.cri_pix(output, gt)
            terms.append(log['l_g_pix'])
        if self.cri_perceptual:
            l_percep, l_style = self.cri_perceptual(output, gt)
            for key, value in (('l_g_percep', l_percep), ('l_g_style', l_style)):
                if value is not None:
                    log[key] = value
                    terms.append(value)
        log['l_g_gan'] = self.cri_gan(self.net_d(output), True, is_disc=False)
        terms.append(log['l_g_gan'])
        return sum(terms)

    def discriminator_loss(self, fake: Tensor, real: Tensor, log: LossLog) -> Tensor:
        """Adversarial loss of the discriminator on real HR and (detached) generated images, plus the penalty."""
        real_pred, fake_pred = self.net_d(real), self.net_d(fake)
        log['l_d_real'] = self.cri_gan(real_pred, True, is_disc=True)
        log['l_d_fake'] = self.cri_gan(fake_pred, False, is_disc=True)
        log['out_d_real'] = real_pred.detach().mean()
        log['out_d_fake'] = fake_pred.detach().mean()
        total = log['l_d_real'] + log['l_d_fake']
        if self.cri_gp:
            log['l_d_gp'] = self.cri_gp(self.net_d, real, fake)
            total = total + log['l_d_gp']
        return total

    def optimize_parameters(self, current_iter: int) -> None:
        self.output = self.net_g(self.lq)
        log: LossLog = OrderedDict()
        if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
            with frozen(self.net_d):
                l_g_total = self.generator_loss(self.output, self.gt, log)
            optimizer_step(self.optimizer_g, l_g_total)
        optimizer_step(self.optimizer_d, self.discriminator_loss(self.output.detach(), self.gt, log))
        self.log_dict = self.reduce_loss_dict(log)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
