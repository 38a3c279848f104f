"""Saving a model: network files and training states written whole or not at all, hashed, never with non-finite
weights (found and verified at resume by ``srgan_plugin.training.state_files``)."""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

import torch
from basicsr.utils.dist_util import master_only
from torch import nn

from srgan_plugin.base.errors import NonFiniteWeightsError
from srgan_plugin.base.files import atomic_save
from srgan_plugin.models.basicsr_api import BasicSRModelAPI

NetOrNets = Union[nn.Module, Sequence[nn.Module]]


class AtomicCheckpointMixin(BasicSRModelAPI):
    """``save_network`` / ``save_training_state`` that write atomically and never write non-finite weights.

    The training state (written after the networks of its iteration) additionally holds ``files`` (SHA-256 of those
    network files, checked at resume) and, when saved by :meth:`save_with_loop_state` (what the training loop's
    ``ExactlyResumable`` protocol asks for), ``loop`` (the loop's RNG states and position in the epoch), so that
    ``--auto_resume`` continues exactly where the save was made. File names and dict keys are BasicSR's, so BasicSR's
    own tools read these files.
    """

    _written: dict[str, str]
    _loop_state: Optional[dict[str, Any]] = None

    def save(self, epoch: int, current_iter: int) -> None:
        self._written = {}
        super().save(epoch, current_iter)

    def save_with_loop_state(self, epoch: int, current_iter: int, loop_state: dict[str, Any]) -> None:
        """``save``, with the loop's position and RNG states (``loop_state``) in the training state."""
        self._loop_state = loop_state
        try:
            self.save(epoch, current_iter)
        finally:
            self._loop_state = None

    @master_only
    def save_network(self,
                     net: NetOrNets,
                     net_label: str,
                     current_iter: int,
                     param_key: Union[str, Sequence[str]] = 'params') -> None:
        nets = [net] if isinstance(net, nn.Module) else list(net)
        keys = list(param_key) if isinstance(param_key, (list, tuple)) else [param_key]
        if len(nets) != len(keys):
            raise ValueError(f'{len(nets)} networks but {len(keys)} param keys')
        save_dict = {key: self._cpu_state_dict(one, f'{net_label}.{key}') for one, key in zip(nets, keys)}
        name = f'{net_label}_{"latest" if current_iter == -1 else current_iter}.pth'
        digest = atomic_save(save_dict, os.path.join(self.opt['path']['models'], name))
        getattr(self, '_written', {})[name] = digest

    def _cpu_state_dict(self, net: nn.Module, what: str) -> dict[str, torch.Tensor]:
        state = self.get_bare_model(net).state_dict()
        bad = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
        if bad:
            raise NonFiniteWeightsError(f'{what} has non-finite values in {bad[0]} (and {len(bad) - 1} more tensors); '
                                        'no checkpoint was written, the previous ones are intact')
        return {key.removeprefix('module.'): value.detach().cpu() for key, value in state.items()}

    @master_only
    def save_training_state(self, epoch: int, current_iter: int) -> None:
        if current_iter == -1:
            return
        state: dict[str, Any] = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [o.state_dict() for o in self.optimizers],
            'schedulers': [s.state_dict() for s in self.schedulers],
            'files': dict(getattr(self, '_written', {})),
        }
        if self._loop_state is not None:
            state['loop'] = self._loop_state
        extras = getattr(self, 'training_state_extras', None)
        state.update(extras() if extras else {})
        atomic_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))
