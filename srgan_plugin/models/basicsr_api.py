"""What the plugin's model mixins use of BasicSR's models, declared once for type checkers.

The mixins (``PerformanceMixin``, ``NonFiniteGuardMixin``, ``DistributedMixin``, ``AtomicCheckpointMixin``,
``BufferEMAMixin``) are put before a BasicSR model class (``SRModel``, ``SRGANModel``) in the bases of the plugin's
models, and use its attributes and methods. :class:`BasicSRModelAPI`, their common base, declares those with their
types. It holds annotations only and defines nothing, so at run time every name resolves, through the MRO, to the
plugin's mixins and then to BasicSR's class, as before.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn, optim

__all__ = ['BasicSRModelAPI']


class BasicSRModelAPI:
    """Declarations (no definitions) of what BasicSR's ``BaseModel`` / ``SRModel`` / ``SRGANModel`` provide and the
    mixins use, and of the one method a mixin provides for another (``loss_scaler``, ``PerformanceMixin``)."""

    # BaseModel
    opt: dict[str, Any]
    device: torch.device
    is_train: bool
    optimizers: list[optim.Optimizer]
    schedulers: list[Any]
    metric_results: dict[str, float]
    init_training_settings: Callable[[], None]
    feed_data: Callable[[dict[str, Any]], None]
    test: Callable[[], None]
    get_current_visuals: Callable[[], dict[str, Tensor]]
    save: Callable[[int, int], None]
    resume_training: Callable[[dict[str, Any]], None]
    model_to_device: Callable[[nn.Module], nn.Module]
    get_bare_model: Callable[[nn.Module], nn.Module]
    _initialize_best_metric_results: Callable[[str], None]
    _update_best_metric_result: Callable[[str, str, float, int], None]
    _log_validation_metric_values: Callable[[int, str, Any], None]

    # SRModel / SRGANModel
    net_g: nn.Module
    net_g_ema: nn.Module
    net_d: nn.Module
    lq: Tensor
    gt: Tensor
    output: Tensor
    cri_pix: Optional[nn.Module]
    cri_perceptual: Optional[nn.Module]

    # the plugin's mixins, for each other
    loss_scaler: Callable[[str], Optional[torch.amp.GradScaler]]  # PerformanceMixin; used by NonFiniteGuardMixin
