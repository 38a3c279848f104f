"""Phase 2: SRGAN, adversarial training of the generator against the discriminator."""
from __future__ import annotations

from collections import OrderedDict

from basicsr.losses import build_loss
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch import Tensor

from srgan_plugin.models.base import LossLog, PluginModelMixin
from srgan_plugin.models.nonfinite import BufferSnapshot

BALANCE_ITERS = (1, 10, 100)  # iterations at which the balance of the generator's loss terms is logged


def loss_balance(log: LossLog) -> str:
    """The generator's weighted loss terms of one step as a log line: content (its parts) against adversarial."""
    terms = {key: float(value.detach()) for key, value in log.items() if key.startswith('l_g_')}
    adversarial = terms.pop('l_g_gan')
    content = sum(terms.values())
    parts = ', '.join(f'{key} {value:.3e}' for key, value in terms.items())
    ratio = f'{content / adversarial:.3g}' if adversarial else 'inf'
    return f'content {content:.3e} ({parts}) vs adversarial {adversarial:.3e}: ratio {ratio}'


@MODEL_REGISTRY.register()
class SRGANPluginModel(PluginModelMixin, SRGANModel):
    """SRGAN training step as in the paper, on BasicSR's ``SRGANModel``.

    Differences from BasicSR's ``SRGANModel``: the plugin's training guarantees (``PluginModelMixin``: atomic
    checkpoints, exact resume, non-finite steps skipped, DDP on CPU and GPU); the generator's EMA follows BatchNorm
    statistics; the losses are computed in ``generator_loss`` / ``discriminator_loss`` (override those, not the
    step); one discriminator pass over the fakes serves both steps (see ``optimize_parameters``); the speed options
    of ``PerformanceMixin`` (``amp``, ``channels_last``, ``compile``); an optional gradient penalty
    (``train.gp_opt``, e.g. ``GradientPenaltyLoss`` with ``gan_opt.gan_type: wgan`` for WGAN-GP; it needs a critic
    without BatchNorm: ``network_d.norm: spectral`` or ``none``); an optional total-variation term on the generator's
    output (``train.tv_opt``, e.g. ``TVLoss``); an optional checkerboard penalty (``train.grid_opt``, ``GridLoss``).

    Options (``train``): ``pixel_opt`` (SRGAN-MSE: ``MSELoss``), ``perceptual_opt`` (SRGAN-VGG22/54:
    ``VGGContentLoss``), ``gan_opt`` (the paper: ``GANLoss``, ``gan_type: vanilla``, ``loss_weight: !!float 1e-3``),
    ``gp_opt``, ``tv_opt``, ``grid_opt``, ``optim_g``, ``optim_d``, ``scheduler``, ``net_d_iters`` (1),
    ``net_d_init_iters`` (0), ``ema_decay``, ``ema_warmup`` (~: only when ``path.pretrain_network_g`` is ~),
    ``bn_freeze_iter`` (~: the iteration from which the generator's BatchNorm layers use their running statistics,
    see ``PluginModelMixin.freeze_generator_bn``), ``max_nonfinite_steps`` (10); top level: ``sync_bn`` (false). Log
    keys: ``l_g_pix``, ``l_g_percep``, ``l_g_gan``, ``l_d_real``, ``l_d_fake``, ``out_d_real``, ``out_d_fake`` (and
    ``l_d_gp``, ``l_g_tv``, ``l_g_grid``), as BasicSR's. At iterations 1, 10 and 100 one log line gives the weighted
    content terms against the adversarial term and their ratio, so that the balance of the losses is visible before a
    long run.
    """

    def init_training_settings(self) -> None:
        super().init_training_settings()
        gp_opt = self.opt['train'].get('gp_opt')
        self.cri_gp = build_loss(gp_opt).to(self.device) if gp_opt else None

    def generator_loss(self, output: Tensor, gt: Tensor, fake_pred: Tensor, log: LossLog) -> Tensor:
        """Content (pixel and/or VGG, and TV) + adversarial loss of the generator; ``fake_pred`` is D's logit for
        ``output``."""
        content = self.content_loss(output, gt, log, prefix='l_g_')
        log['l_g_gan'] = self.cri_gan(fake_pred, True, is_disc=False)
        return content + log['l_g_gan']

    def discriminator_loss(self, real_pred: Tensor, fake_pred: Tensor, real: Tensor, fake: Tensor,
                           log: LossLog) -> Tensor:
        """Adversarial loss of the discriminator on its logits for real HR and generated images, plus the penalty
        (on ``real`` and the detached ``fake``)."""
        log['l_d_real'] = self.cri_gan(real_pred, True, is_disc=True)
        log['l_d_fake'] = self.cri_gan(fake_pred, False, is_disc=True)
        log['out_d_real'] = real_pred.detach().mean()
        log['out_d_fake'] = fake_pred.detach().mean()
        total = log['l_d_real'] + log['l_d_fake']
        if self.cri_gp:
            log['l_d_gp'] = self.cri_gp(self.get_bare_model(self.net_d), real, fake.detach())
            total = total + log['l_d_gp']
        return total

    def optimize_parameters(self, current_iter: int) -> None:
        """One pass of D over the fakes serves both steps: the generator's loss backpropagates through it into G's
        parameters only, the discriminator's into D's only (``guarded_step``'s ``inputs=``). BasicSR runs that pass
        twice with the same D weights and the same batch, so the gradients are the same; only D's running BatchNorm
        statistics, which training never uses (D is always in train mode), get one update fewer per step. With
        ``network_d.norm: spectral`` the power iteration, which every pass advances, also gets one step fewer, so the
        spectral-norm estimates (and the gradients) differ slightly from BasicSR's order. With ``train.compile`` the
        pass runs twice, as in BasicSR: a compiled backward cannot keep its graph for a second backward (donated
        buffers)."""
        self.freeze_generator_bn(current_iter)
        snapshot_g, snapshot_d = BufferSnapshot(self.net_g), BufferSnapshot(self.net_d)
        g_turn = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        shared = g_turn and not self.compiled
        log: LossLog = OrderedDict()
        with self.autocast():
            self.output = self.net_g(self.lq)
            if g_turn:  # a D forward through DDP must get its gradients in this step: only when shared
                fake_pred = (self.net_d if shared else self.get_bare_model(self.net_d))(self.output)
                l_g_total = self.generator_loss(self.output, self.gt, fake_pred, log)
        g_stepped = g_turn and self.guarded_step(
            self.optimizer_g, l_g_total, 'generator', current_iter, snapshot_g, retain_graph=shared)
        if g_turn and current_iter in BALANCE_ITERS:
            get_root_logger().info(f'Generator loss balance at iter {current_iter}: {loss_balance(log)}')
        with self.autocast():
            real_pred = self.net_d(self.gt)
            if not shared:
                fake_pred = self.net_d(self.output.detach())
            l_d_total = self.discriminator_loss(real_pred, fake_pred, self.gt, self.output, log)
        self.guarded_step(self.optimizer_d, l_d_total, 'discriminator', current_iter, snapshot_d)
        self.log_dict = self.reduce_loss_dict(log)
        if g_stepped and self.ema_decay > 0:
            self.update_ema(current_iter)
