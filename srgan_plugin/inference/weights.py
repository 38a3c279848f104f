"""Generator weights: BasicSR checkpoints of the SRResNet generator (safe loading, architecture inference) and the
weights shipped with the package (:func:`shipped_models`, :func:`resolve_model`).

A BasicSR checkpoint is a dict ``{'params': state_dict}`` and/or ``{'params_ema': state_dict}`` (what
``net_g_*.pth`` holds); ``params_ema`` is preferred, as BasicSR's test options do. A bare state dict loads too.
Files are read with ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling (pickled Python
objects) is refused, never executed, and so are weights holding NaN or Inf (a diverged training's). The architecture
(:class:`ArchSpec`) is read from the state dict's key names and tensor shapes, so no option file is needed; every
failure is an :class:`InferenceError` naming what mismatched.
"""
from __future__ import annotations

import dataclasses
import json
import math
import pickle
import re
from os import path as osp
from typing import Any, Optional

import torch
from torch import Tensor

from srgan_plugin.archs.srresnet_arch import SUPPORTED_SCALES, SRResNet
from srgan_plugin.base.errors import InferenceError
from srgan_plugin.base.files import sha256_of
from srgan_plugin.inference.bn_fold import fold_batchnorm

__all__ = [
    'ArchSpec', 'load_checkpoint', 'read_state_dict', 'select_params', 'first_nonfinite', 'require_finite',
    'infer_arch', 'build_generator', 'random_generator', 'load_generator', 'arch_differences', 'require_same_arch',
    'resolve_model', 'WEIGHTS_DIR'
]

WEIGHTS_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'weights')
PARAM_KEYS = ('params_ema', 'params')
REQUIRED_KEYS = ('conv_first.weight', 'prelu_first.weight', 'conv_body.weight', 'bn_body.running_var',
                 'upsample.0.0.weight', 'conv_last.weight')
# A key that only another architecture has -> its name, to say what a wrong checkpoint is.
OTHER_ARCHS = (
    ('body.0.rdb1.conv1.weight', 'RRDBNet (ESRGAN)'),
    ('upconv1.weight', "MSRResNet (BasicSR's SRResNet, without BatchNorm)"),
    ('conv_after_body.weight', 'EDSR'),
    ('classifier.1.weight', 'SRGANDiscriminator (the discriminator, net_d_*.pth; pass the generator, net_g_*.pth)'),
    ('conv0_0.weight', "VGGStyleDiscriminator (BasicSR's discriminator; pass the generator, net_g_*.pth)"),
    ('features.0.weight', 'a VGG-style network (a discriminator?)'),
)


@dataclasses.dataclass(frozen=True)
class ArchSpec:
    """The :class:`~srgan_plugin.archs.srresnet_arch.SRResNet` constructor arguments a state dict was made with."""
    num_in_ch: int
    num_out_ch: int
    num_feat: int
    num_block: int
    upscale: int
    prelu_per_channel: bool

    def describe(self) -> str:
        """Human-readable summary, e.g. ``SRResNet x4, 64 features, 16 blocks``."""
        extra = '' if (self.num_in_ch, self.num_out_ch) == (3, 3) else f', {self.num_in_ch}->{self.num_out_ch} ch'
        prelu = ', per-channel PReLU' if self.prelu_per_channel else ''
        return f'SRResNet x{self.upscale}, {self.num_feat} features, {self.num_block} blocks{extra}{prelu}'


def load_checkpoint(path: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, with the failures turned into one-line errors.

    A file that would run code while loading (any pickled object other than tensors and plain containers) is refused,
    never executed: the error says to re-save its weights as a plain state dict where the file is trusted.

    Args:
        path (str): The checkpoint.

    Returns:
        Any: What the file holds (a dict of tensors, or of such dicts).

    Raises:
        InferenceError: Missing, empty, truncated or non-PyTorch file, or one that needs arbitrary unpickling.
    """
    if not osp.isfile(path):
        raise InferenceError(f'checkpoint {path} not found')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        if 'Weights only load failed' not in str(error):
            raise InferenceError(f'{path} is not a readable PyTorch checkpoint ({error})') from None
        found = re.search(r'GLOBAL ([\w.]*\w)', str(error))
        what = f' (it pickles {found.group(1)})' if found else ''
        raise InferenceError(
            f'{path} holds pickled Python objects{what}, which can run code when loaded, so it is '
            'refused; if you trust where it comes from, load it there and re-save the weights alone as '
            'a plain state dict: torch.save(net.state_dict(), path)') from None
    except (EOFError, RuntimeError, KeyError, ValueError, OSError) as error:
        first = str(error).split('. ')[0].strip()
        reason = first if isinstance(error, (RuntimeError, OSError)) and first else type(error).__name__
        raise InferenceError(f'{path} is not a readable PyTorch checkpoint ({reason}); '
                             'an empty, truncated or non-PyTorch file?') from None


def first_nonfinite(state: dict[str, Tensor]) -> Optional[tuple[str, int]]:
    """The first floating-point tensor of ``state`` holding NaN or Inf and how many do, or None when all are finite."""
    bad = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    return (bad[0], len(bad)) if bad else None


def require_finite(state: dict[str, Tensor], where: str) -> None:
    """Raise an :class:`InferenceError` naming the first tensor of ``state`` that holds NaN or Inf.

    Args:
        state (dict[str, Tensor]): A state dict.
        where (str): The file (and key) it was read from, for the message.
    """
    found = first_nonfinite(state)
    if found:
        key, count = found
        more = f' (and {count - 1} more tensors)' if count > 1 else ''
        raise InferenceError(f'{where}: {key} holds NaN or Inf values{more}, so the network would output nothing '
                             'useful; the training that wrote it diverged: use an earlier checkpoint')


def select_params(obj: Any, path: str) -> dict[str, Tensor]:
    """The generator's state dict inside a loaded checkpoint: ``params_ema``, else ``params``, else ``obj`` itself.

    Args:
        obj (Any): What ``torch.load`` returned.
        path (str): The file, for messages.

    Returns:
        dict[str, Tensor]: The state dict, a leading ``module.`` (DataParallel) removed from its keys.

    Raises:
        InferenceError: No state dict in ``obj``, or one holding NaN / Inf values.
    """
    if not isinstance(obj, dict):
        raise InferenceError(f'{path} holds a {type(obj).__name__}, not a state dict or a BasicSR checkpoint')
    key = next((k for k in PARAM_KEYS if k in obj), None)
    state = obj[key] if key else obj
    where = f"{path}['{key}']" if key else path
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        keys = ', '.join(map(str, list(obj)[:5]))
        raise InferenceError(f'{where} is not a state dict (a dict of tensors) and has no params_ema / params '
                             f'(keys: {keys}); pass a BasicSR generator checkpoint (net_g_*.pth)')
    require_finite(state, where)
    return {(k[7:] if k.startswith('module.') else k): v for k, v in state.items()}


def read_state_dict(path: str) -> dict[str, Tensor]:
    """Load ``path`` safely and return the generator's state dict (see :func:`select_params`)."""
    return select_params(load_checkpoint(path), path)


def _indices(state: dict[str, Tensor], pattern: str) -> list[int]:
    """Sorted distinct integers ``i`` of the keys matching ``pattern`` (a regex with one group)."""
    found = {int(m.group(1)) for m in map(re.compile(pattern).fullmatch, state) if m}
    return sorted(found)


def _not_srresnet(state: dict[str, Tensor], path: str, missing: list[str]) -> InferenceError:
    other = next((name for key, name in OTHER_ARCHS if key in state), None)
    looks = f'it looks like {other}' if other else f'it has e.g. {", ".join(list(state)[:3])}'
    return InferenceError(f'{path} is not an SRResNet checkpoint: no {", ".join(missing[:3])}; {looks}')


def _upscale(state: dict[str, Tensor], num_feat: int, path: str) -> int:
    """Product of the sub-pixel factors of ``upsample.<j>.0`` (each conv has ``num_feat * f^2`` outputs)."""
    blocks = _indices(state, r'upsample\.(\d+)\.0\.weight')
    scale = 1
    for j in blocks:
        ratio = state[f'upsample.{j}.0.weight'].shape[0] / num_feat
        factor = round(math.sqrt(ratio))
        if factor * factor != ratio or factor not in (2, 3):
            raise InferenceError(f'{path}: upsample.{j} has {ratio:g}x the features, not 4 or 9 (x2 or x3 steps)')
        scale *= factor
    if blocks != list(range(len(blocks))) or scale not in SUPPORTED_SCALES:
        raise InferenceError(f'{path}: upsampling blocks {blocks} give x{scale}; SRResNet supports {SUPPORTED_SCALES}')
    return scale


def infer_arch(state: dict[str, Tensor], path: str = 'checkpoint') -> ArchSpec:
    """Read the SRResNet constructor arguments from a state dict's keys and shapes.

    Args:
        state (dict[str, Tensor]): Generator state dict.
        path (str): The file, for messages. Default: 'checkpoint'.

    Returns:
        ArchSpec: The architecture.
    """
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise _not_srresnet(state, path, missing)
    first = state['conv_first.weight']
    if first.ndim != 4 or tuple(first.shape[2:]) != (9, 9):
        raise InferenceError(f'{path}: conv_first.weight has shape {tuple(first.shape)}, not (features, in, 9, 9)')
    num_feat, num_in_ch = first.shape[:2]
    blocks = _indices(state, r'body\.(\d+)\.conv1\.weight')
    if blocks != list(range(len(blocks))):
        raise InferenceError(f'{path}: residual blocks are numbered {blocks}, expected 0..{len(blocks) - 1}')
    return ArchSpec(
        num_in_ch=int(num_in_ch),
        num_out_ch=int(state['conv_last.weight'].shape[0]),
        num_feat=int(num_feat),
        num_block=len(blocks),
        upscale=_upscale(state, int(num_feat), path),
        prelu_per_channel=state['prelu_first.weight'].numel() > 1)


def build_generator(spec: ArchSpec) -> SRResNet:
    """A fresh SRResNet with the architecture ``spec`` (random weights)."""
    return SRResNet(**dataclasses.asdict(spec))


def random_generator(spec: Optional[ArchSpec] = None, seed: int = 0) -> SRResNet:
    """An SRResNet with random weights, for tests and benchmarks only (it is not a trained model).

    Unlike a fresh SRResNet (BasicSR's 0.1-scaled init, outputs near 0), convolutions get PyTorch's default init,
    BatchNorm layers random affine parameters and running statistics, and the last layer a 0.5 bias and 4x weights,
    so that outputs vary over much of [0, 1] and BatchNorm changes them: tiling, folding and export checks are then
    meaningful.

    Args:
        spec (ArchSpec | None): Architecture; None for the defaults (x4, 64 features, 16 blocks). Default: None.
        seed (int): Random seed. Default: 0.

    Returns:
        SRResNet: The network in eval mode.
    """
    spec = spec or ArchSpec(3, 3, 64, 16, 4, False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_generator(spec)
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.reset_parameters()
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
                torch.nn.init.uniform_(module.weight, 0.5, 1.5)
                torch.nn.init.uniform_(module.bias, -0.1, 0.1)
        with torch.no_grad():
            net.conv_last.weight.mul_(4)
            net.conv_last.bias.fill_(0.5)
    return net.eval()


def load_generator(path: str,
                   device: Optional[torch.device] = None,
                   dtype: torch.dtype = torch.float32,
                   fold_bn: bool = False) -> tuple[SRResNet, ArchSpec]:
    """Load a checkpoint into the SRResNet inferred from it, in eval mode, without gradients.

    Args:
        path (str): BasicSR checkpoint or bare state dict.
        device (torch.device | None): Where to put the network; None for CPU. Default: None.
        dtype (torch.dtype): Parameter dtype. Default: torch.float32.
        fold_bn (bool): Fold the BatchNorm layers into the convolutions before them (in fp32, before the cast to
            ``dtype``): the same outputs up to float rounding, 33 fewer layers. Default: False.

    Returns:
        tuple[SRResNet, ArchSpec]: The network and its architecture.
    """
    state = read_state_dict(path)
    spec = infer_arch(state, path)
    net = build_generator(spec)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise InferenceError(f'{path} does not fit the {spec.describe()} inferred from it: {detail}') from None
    net.eval().requires_grad_(False)
    if fold_bn:
        net = fold_batchnorm(net)
    return net.to(device=device or torch.device('cpu'), dtype=dtype), spec


def arch_differences(a: ArchSpec, b: ArchSpec) -> list[str]:
    """``'<field> <a> vs <b>'`` for each constructor argument where ``a`` and ``b`` differ (empty when equal)."""
    return [
        f'{field.name} {getattr(a, field.name)} vs {getattr(b, field.name)}' for field in dataclasses.fields(a)
        if getattr(a, field.name) != getattr(b, field.name)
    ]


def require_same_arch(a: ArchSpec, b: ArchSpec, name_a: str, name_b: str) -> None:
    """Raise an :class:`InferenceError` naming each difference when ``a`` and ``b`` are not the same architecture."""
    differences = arch_differences(a, b)
    if differences:
        raise InferenceError(f'{name_a} and {name_b} have different architectures ({"; ".join(differences)}); '
                             'both must be the same SRResNet')


def shipped_models(weights_dir: str = WEIGHTS_DIR) -> Optional[dict[str, Any]]:
    """The manifest of the shipped weights (``<weights_dir>/manifest.json``), or None when none are shipped."""
    manifest = osp.join(weights_dir, 'manifest.json')
    if not osp.isfile(manifest):
        return None
    with open(manifest, encoding='utf-8') as f:
        return json.load(f)


def _shipped_name(name: str, models: dict[str, Any]) -> Optional[str]:
    """The shipped model ``name`` stands for: a manifest name, or the one name starting with ``name_`` (``srgan``)."""
    if name in models:
        return name
    matches = [key for key in models if key.startswith(f'{name.lower()}_')]
    return matches[0] if len(matches) == 1 else None


def resolve_model(path: Optional[str], weights_dir: str = WEIGHTS_DIR) -> str:
    """``--model``: a checkpoint path, the name of a shipped model (``srresnet``, ``srgan`` or a manifest name), or
    None for the shipped default.

    Shipped weights are listed in ``<weights_dir>/manifest.json``:
    ``{"default": "NAME", "models": {"NAME": {"file": "NAME.pth", "sha256": "..."}}}``; the sha256 is checked, and a
    mismatch is an error, never a fallback.

    Args:
        path (str | None): The ``--model`` argument.
        weights_dir (str): Folder of the shipped weights. Default: ``srgan_plugin/weights``.

    Returns:
        str: The checkpoint to load.
    """
    if path and (osp.exists(path) or osp.sep in path or path.endswith(('.pth', '.pt'))):
        return path  # a file: a missing or unreadable one is reported by the loader
    listing = shipped_models(weights_dir)
    if listing is None:
        hint = f'{path!r} is not a file, and ' if path else ''
        raise InferenceError(f'{hint}no weights are shipped in {weights_dir}; pass --model PATH '
                             '(a BasicSR generator checkpoint, e.g. experiments/NAME/models/net_g_latest.pth)')
    models = listing['models']
    name = _shipped_name(path, models) if path else listing['default']
    if name is None:
        raise InferenceError(f'--model {path}: no such file and no such shipped model; shipped: '
                             f'{", ".join(sorted(models))} (default {listing["default"]}), or pass a checkpoint path')
    entry = models[name]
    weights = osp.join(weights_dir, entry['file'])
    if not osp.isfile(weights) or sha256_of(weights) != entry.get('sha256'):
        raise InferenceError(f'shipped weights {weights} are missing or damaged (sha256 mismatch); reinstall the '
                             'package or pass --model PATH')
    return weights
