"""Skip optimizer steps whose loss or gradients are not finite, and stop after too many in a row."""
from __future__ import annotations

from typing import Iterable, Optional

import torch
from basicsr.utils import get_root_logger
from torch import Tensor, nn, optim

from srgan_plugin.base.distributed import all_ranks_agree
from srgan_plugin.base.errors import NonFiniteLossError
from srgan_plugin.models.basicsr_api import BasicSRModelAPI

DEFAULT_MAX_NONFINITE_STEPS = 10


def all_finite(loss: Tensor, grads: Iterable[Tensor]) -> bool:
    """One device sync: are ``loss`` and every gradient free of NaN and Inf?"""
    grads = list(grads)
    norms = torch._foreach_norm(grads) if grads else []
    return bool(torch.isfinite(torch.stack([loss.detach().float().reshape(()), *[n.float() for n in norms]])).all())


class BufferSnapshot:
    """Copies of a network's buffers (BatchNorm running statistics), taken before a forward pass, so that a skipped
    step leaves no trace: a forward pass with exploding activations would otherwise poison the running stats."""

    def __init__(self, net: nn.Module) -> None:
        self.buffers = list(net.buffers())  # running mean/var and num_batches_tracked
        self.copies = [b.detach().clone() for b in self.buffers]

    @torch.no_grad()
    def restore(self) -> None:
        if self.buffers:
            torch._foreach_copy_(self.buffers, self.copies)


class NonFiniteGuardMixin(BasicSRModelAPI):
    """``guarded_step``: backward, then step only if the loss and all gradients are finite on every rank; a skipped
    step also restores the buffers the forward pass changed (pass a ``BufferSnapshot`` taken before it).

    Option ``train.max_nonfinite_steps`` (default 10): after that many consecutive skipped steps of one optimizer
    training stops with ``NonFiniteLossError``; checkpoints written before are intact (non-finite weights are never
    written, see ``AtomicCheckpointMixin``). The loss scaler of each optimizer is ``loss_scaler(name)``
    (``PerformanceMixin``; None unless ``train.amp: fp16``): with one, a step whose loss is finite but whose scaled
    gradients overflowed is the scaler's business: it is skipped, the scale is lowered, and it does not count.
    """

    def guarded_step(self,
                     optimizer: optim.Optimizer,
                     loss: Tensor,
                     name: str,
                     current_iter: int,
                     snapshot: Optional[BufferSnapshot] = None,
                     retain_graph: bool = False) -> bool:
        """Backward ``loss`` into ``optimizer``'s parameters only (``inputs=``: no gradient is computed for other
        networks the loss passes through), then step unless non-finite. Returns whether the optimizer stepped."""
        params = [p for group in optimizer.param_groups for p in group['params'] if p.requires_grad]
        optimizer.zero_grad(set_to_none=True)
        scaler = self.loss_scaler(name)
        (scaler.scale(loss) if scaler else loss).backward(inputs=params, retain_graph=retain_graph)
        if scaler:
            scaler.unscale_(optimizer)
        finite = all_ranks_agree(all_finite(loss, [p.grad for p in params if p.grad is not None]), self.device)
        counts: dict[str, int] = self.__dict__.setdefault('_nonfinite_counts', {})
        if finite:
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            counts[name] = 0
            return True
        if snapshot is not None:
            snapshot.restore()
        if scaler:
            scaler.update()  # lowers the scale (DDP averaged the gradients, so every rank saw the overflow)
            if all_ranks_agree(bool(torch.isfinite(loss.detach()).all()), self.device):
                get_root_logger().info(f'iter {current_iter}: fp16 {name} gradients overflowed; step skipped, loss '
                                       f'scale lowered to {scaler.get_scale():g}.')
                optimizer.zero_grad(set_to_none=True)
                return False
        counts[name] = counts.get(name, 0) + 1
        limit = int(self.opt['train'].get('max_nonfinite_steps', DEFAULT_MAX_NONFINITE_STEPS))
        get_root_logger().warning(f'iter {current_iter}: non-finite {name} loss or gradient; step skipped '
                                  f'({counts[name]} in a row, stopping at {limit}).')
        if counts[name] >= limit:
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f'{counts[name]} consecutive {name} steps had non-finite losses or gradients '
                                     f'(last at iter {current_iter}); lower the learning rate or check the data, then '
                                     'resume with --auto_resume from the last checkpoint')
        return False
