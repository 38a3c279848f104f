"""Opt-in speed options of the training step: mixed precision, channels_last and ``torch.compile``."""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Optional

import torch
from basicsr.utils import get_root_logger
from torch import nn

from srgan_plugin.models.basicsr_api import BasicSRModelAPI

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


def cpu_has_fast(dtype: torch.dtype) -> bool:
    """Whether this CPU computes ``dtype`` (bfloat16 / float16) convolutions natively in oneDNN (AVX512-BF16, AMX,
    AVX512-FP16); elsewhere oneDNN emulates them, far slower than fp32. True when torch cannot tell."""
    probe = {torch.bfloat16: '_is_mkldnn_bf16_supported', torch.float16: '_is_mkldnn_fp16_supported'}[dtype]
    try:
        return bool(getattr(torch.ops.mkldnn, probe)())
    except (AttributeError, RuntimeError):
        return True


def speed_options(opt: dict[str, Any]) -> dict[str, Any]:
    """The ``train`` options this module reads (empty outside training: ``basicsr.test`` runs in fp32 eager)."""
    return (opt.get('train') or {}) if opt.get('is_train') else {}


def compile_kwargs(value: Any) -> Optional[dict[str, Any]]:
    """``train.compile``: false/~ -> None, true -> {}, a dict -> ``torch.compile`` keyword arguments."""
    if not value:
        return None
    return {} if value is True else dict(value)


def speed_up(net: nn.Module, channels_last: bool, compile_with: Optional[dict[str, Any]]) -> nn.Module:
    """``net`` in NHWC memory format and/or compiled in place (``nn.Module.compile``: the module, its class and its
    state-dict keys stay the same, so checkpoints are unchanged)."""
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    if compile_with is not None:
        net.compile(**compile_with)
    return net


class PerformanceMixin(BasicSRModelAPI):
    """Speed options for BasicSR models, all off by default. Options (``train``)::

        amp: ~             # ~: fp32. bf16: autocast to bfloat16 (no loss scaling needed). fp16: autocast to float16
                           #   with one dynamic GradScaler per optimizer (G and D never share one), saved in the
                           #   training state; an fp16 overflow skips the step and lowers that scale, and does not
                           #   count toward max_nonfinite_steps.
        channels_last: false  # networks, the VGG of the content loss and the batches in NHWC memory format
        compile: false     # true, or torch.compile kwargs such as {mode: max-autotune}: compile the generator, the
                           #   discriminator and the content-loss network (the first steps are slow while it compiles;
                           #   the GAN step then runs D over the fakes twice, as BasicSR does)

    Put it before the BasicSR model class in the bases. The networks and validation stay fp32 (autocast covers only
    the training step's forward passes and losses); checkpoints are fp32 and identical in format with or without.
    """

    @property
    def amp_dtype(self) -> Optional[torch.dtype]:
        """The autocast dtype of ``train.amp``, or None for fp32."""
        amp = speed_options(self.opt).get('amp')
        return AMP_DTYPES.get(amp) if isinstance(amp, str) else None

    @property
    def compiled(self) -> bool:
        """Whether ``train.compile`` compiles the networks."""
        return compile_kwargs(speed_options(self.opt).get('compile')) is not None

    def autocast(self) -> ContextManager[Any]:
        """Autocast for the training step's forward passes and losses (a no-op unless ``train.amp`` is set)."""
        dtype = self.amp_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def loss_scaler(self, name: str) -> Optional[torch.amp.GradScaler]:
        """The GradScaler of the optimizer stepped as ``name`` (created on first use), or None unless ``amp: fp16``."""
        if self.amp_dtype != torch.float16:
            return None
        scalers: dict[str, torch.amp.GradScaler] = self.__dict__.setdefault('loss_scalers', {})
        if name not in scalers:
            scalers[name] = torch.amp.GradScaler(self.device.type)
        return scalers[name]

    def apply_speed_options(self, net: nn.Module) -> nn.Module:
        """``net`` with ``train.channels_last`` and ``train.compile`` applied (see :func:`speed_up`)."""
        speed = speed_options(self.opt)
        return speed_up(net, bool(speed.get('channels_last')), compile_kwargs(speed.get('compile')))

    def model_to_device(self, net: nn.Module) -> nn.Module:
        return super().model_to_device(self.apply_speed_options(net))

    def init_training_settings(self) -> None:
        super().init_training_settings()
        dtype = self.amp_dtype
        if dtype is not None and self.device.type == 'cpu' and not cpu_has_fast(dtype):
            get_root_logger().warning(
                f'train.amp: {speed_options(self.opt)["amp"]} on a CPU without native {dtype} support (no '
                'AVX512-BF16/AMX): the step is emulated and far slower than fp32 (a bf16 SRResNet step took 23 s '
                'against 2.4 s in fp32 on a 2-core AVX2 CPU). Remove train.amp; channels_last: true is the fast fp32 '
                'setting.')
        loss = getattr(self, 'cri_perceptual', None)
        if isinstance(loss, nn.Module) and any(True for _ in loss.parameters()):
            self.apply_speed_options(loss)

    def feed_data(self, data: dict[str, Any]) -> None:
        super().feed_data(data)
        if speed_options(self.opt).get('channels_last'):
            for name in ('lq', 'gt'):
                if hasattr(self, name):
                    setattr(self, name, getattr(self, name).contiguous(memory_format=torch.channels_last))

    def resume_training(self, resume_state: dict[str, Any]) -> None:
        super().resume_training(resume_state)
        for name, state in resume_state.get('loss_scalers', {}).items():
            scaler = self.loss_scaler(name)
            if scaler is not None:
                scaler.load_state_dict(state)

    def training_state_extras(self) -> dict[str, Any]:
        """Saved in the training state next to BasicSR's keys: the fp16 loss scales."""
        scalers = self.__dict__.get('loss_scalers') or {}
        return {'loss_scalers': {name: scaler.state_dict() for name, scaler in scalers.items()}} if scalers else {}
