"""Skip optimizer steps whose loss or gradients are not finite, and stop after too many in a row."""
from __future__ import annotations

from typing import Iterable, Optional

import torch
from basicsr.utils import get_root_logger
from torch import Tensor, nn, optim

from srgan_plugin.training.distributed import all_ranks_agree

DEFAULT_MAX_NONFINITE_STEPS = 10


class NonFiniteLossError(RuntimeError):
    """Training produced non-finite losses or gradients ``train.max_nonfinite_steps`` times in a row."""


def all_finite(loss: Tensor, grads: Iterable[Tensor]) -> bool:
    """One device sync: are ``loss`` and every gradient free of NaN and Inf?"""
    grads = list(grads)
    norms = torch._foreach_norm(grads) if grads else []
    return bool(torch.isfinite(torch.stack([loss.detach().float().reshape(()), *[n.float() for n in norms]])).all())


class BufferSnapshot:
    """Copies of a network's buffers (BatchNorm running statistics), taken before a forward pass, so that a skipped
    step leaves no trace: a forward pass with exploding activations would otherwise poison the running stats."""

    def __init__(self, net: nn.Module) -> None:
        self.buffers = [b for b in net.buffers() if b.is_floating_point()]
        self.copies = [b.detach().clone() for b in self.buffers]

    @torch.no_grad()
    def restore(self) -> None:
        if self.buffers:
            torch._foreach_copy_(self.buffers, self.copies)


class NonFiniteGuardMixin:
    """``guarded_step``: backward, then step only if the loss and all gradients are finite on every rank; a skipped
    step also restores the buffers the forward pass changed (pass a ``BufferSnapshot`` taken before it).

    Option ``train.max_nonfinite_steps`` (default 10): after that many consecutive skipped steps of one optimizer
    training stops with ``NonFiniteLossError``; checkpoints written before are intact (non-finite weights are never
    written, see ``AtomicCheckpointMixin``).
    """

    def guarded_step(self,
                     optimizer: optim.Optimizer,
                     loss: Tensor,
                     name: str,
                     current_iter: int,
                     snapshot: Optional[BufferSnapshot] = None) -> bool:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
        finite = all_ranks_agree(all_finite(loss, grads), self.device)  # type: ignore[attr-defined]
        counts: dict[str, int] = self.__dict__.setdefault('_nonfinite_counts', {})
        if finite:
            optimizer.step()
            counts[name] = 0
            return True
        counts[name] = counts.get(name, 0) + 1
        if snapshot is not None:
            snapshot.restore()
        limit = int(self.opt['train'].get('max_nonfinite_steps', DEFAULT_MAX_NONFINITE_STEPS))  # type: ignore
        get_root_logger().warning(f'iter {current_iter}: non-finite {name} loss or gradient; step skipped '
                                  f'({counts[name]} in a row, stopping at {limit}).')
        if counts[name] >= limit:
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f'{counts[name]} consecutive {name} steps had non-finite losses or gradients '
                                     f'(last at iter {current_iter}); lower the learning rate or check the data, then '
                                     'resume with --auto_resume from the last checkpoint')
        return False
