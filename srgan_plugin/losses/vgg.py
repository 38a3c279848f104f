"""A frozen VGG19 feature extractor with an offline-friendly weight policy.

Weight policy (``weights`` / the losses' ``vgg_weights`` option), see :func:`resolve_vgg19_weights`:

* a path: torchvision's ImageNet file ``vgg19-dcbb9e9d.pth`` (or any VGG19 state dict, see below) at that path;
* ``None`` (default): torchvision's cache file ``<torch.hub.get_dir()>/checkpoints/vgg19-dcbb9e9d.pth`` if it is
  there, else torchvision's download (which needs the internet and fills that cache);
* ``'random'``: random initialisation, for tests and demos only (a loud warning is logged).

When no weights can be had, :class:`VGGWeightsError` is raised with a one-line message that says where to put the
file and which option points to it. Accepted state dicts: torchvision's full ``vgg19`` one (``features.0.weight``, ...;
``classifier.*`` is ignored) and a features-only one (``0.weight``, ...).
"""
from __future__ import annotations

import pickle
import re
import socket
from collections import OrderedDict
from os import path as osp

import torch
from basicsr.archs.vgg_arch import NAMES
from basicsr.utils import get_root_logger
from torch import nn
from torchvision.models import vgg as tv_vgg

from srgan_plugin.base.errors import VGGWeightsError, VGGWeightsMismatchError

VGG19_FILENAME = 'vgg19-dcbb9e9d.pth'
VGG19_URL = f'https://download.pytorch.org/models/{VGG19_FILENAME}'
DOWNLOAD_STALL_TIMEOUT_S = 60  # a network that silently drops packets fails after this, instead of hanging
RANDOM_WEIGHTS = 'random'
VGG19_LAYER_NAMES: tuple[str, ...] = tuple(NAMES['vgg19'])
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_PAPER_LAYER = re.compile(r'^vgg(\d)(\d)$')


def vgg19_cache_path() -> str:
    """Where torchvision caches (and :func:`resolve_vgg19_weights` looks for) the ImageNet VGG19 weights."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', VGG19_FILENAME)


def _one_line(text: object) -> str:
    """Collapse any whitespace (newlines in wrapped exception messages included) into single spaces."""
    return ' '.join(str(text).split())


def _weights_error(reason: str) -> VGGWeightsError:
    """The single-line error raised whenever no VGG19 weights can be had; ``reason`` says what was tried."""
    return VGGWeightsError(
        _one_line(f'VGG19 weights not available: {reason}. Download torchvision\'s ImageNet file {VGG19_FILENAME} '
                  f'({VGG19_URL}) and put it at {vgg19_cache_path()} (torchvision\'s cache, used when vgg_weights is '
                  f'unset), or point the loss at it with `vgg_weights: /path/to/{VGG19_FILENAME}` in the loss\'s '
                  'YAML block.'))


def _expand(path: str) -> str:
    return osp.expandvars(osp.expanduser(path))


def vgg19_weights_available(weights: str | None) -> bool:
    """Whether :func:`resolve_vgg19_weights` can succeed without the network. Cheap; never downloads.

    Args:
        weights (str | None): The ``vgg_weights`` option: a path, None or 'random'.

    Returns:
        bool: True for 'random', for an existing file, and for None when torchvision's cache file exists. False for
            None without a cached file even though a download might then succeed.
    """
    if weights == RANDOM_WEIGHTS:
        return True
    if weights is None:
        return osp.isfile(vgg19_cache_path())
    return osp.isfile(_expand(weights))


def check_vgg19_weights(weights: str | None) -> None:
    """Raise the :class:`VGGWeightsError` that training would raise, unless the weights are available offline.

    Meant for an options checker that fails before training starts. Never downloads; see
    :func:`vgg19_weights_available` for what counts as available.

    Args:
        weights (str | None): The ``vgg_weights`` option: a path, None or 'random'.
    """
    if not vgg19_weights_available(weights):
        raise _weights_error(_missing_reason(weights))


def _missing_reason(weights: str | None) -> str:
    if weights is None:
        return f'vgg_weights is unset and torchvision\'s cache has no {vgg19_cache_path()}'
    return f'there is no file at vgg_weights: {weights}'


def _download_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's download into its cache; network failures become :class:`VGGWeightsError`."""
    logger = get_root_logger()
    logger.info(f'VGG19 weights not cached; downloading {VGG19_URL} to {vgg19_cache_path()}')
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_STALL_TIMEOUT_S)  # torch.hub opens the URL without a timeout
    try:
        from torchvision.models import VGG19_Weights
        return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=True, map_location='cpu', weights_only=True)
    except OSError as error:  # URLError, HTTPError, ConnectionError, socket timeouts are all OSErrors
        raise _weights_error(f'{_missing_reason(None)} and the download failed ({type(error).__name__}: '
                             f'{_one_line(error)})') from error
    finally:
        socket.setdefaulttimeout(previous_timeout)


def _load_file(path: str) -> dict[str, torch.Tensor]:
    try:
        state_dict = torch.load(path, map_location='cpu', weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise VGGWeightsMismatchError(
            _one_line(f'Cannot load VGG19 weights from {path}: {type(error).__name__}: {error}')) from error
    if not isinstance(state_dict, dict):
        raise VGGWeightsMismatchError(f'VGG19 weight file {path} holds a {type(state_dict).__name__}, not a state '
                                      'dict')
    get_root_logger().info(f'Loaded VGG19 weights from {path}')
    return state_dict


def resolve_vgg19_weights(weights: str | None) -> dict[str, torch.Tensor] | None:
    """Apply the weight policy (see the module docstring).

    Args:
        weights (str | None): A path to a VGG19 state dict, None (torchvision's cache, else its download) or 'random'.

    Returns:
        dict[str, Tensor] | None: The state dict as stored (full or features-only), or None for 'random'.

    Raises:
        VGGWeightsError: No weights at the given path, or none cached and the download failed.
        VGGWeightsMismatchError: The file cannot be loaded as a state dict.
    """
    if weights == RANDOM_WEIGHTS:
        get_root_logger().warning('VGG19 uses RANDOM weights (vgg_weights: random): the VGG content loss is NOT the '
                                  'paper\'s perceptual loss. Use this for tests and demos only.')
        return None
    if weights is None:
        cached = vgg19_cache_path()
        return _load_file(cached) if osp.isfile(cached) else _download_state_dict()
    path = _expand(weights)
    if not osp.isfile(path):
        raise _weights_error(_missing_reason(weights))
    return _load_file(path)


def features_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reduce torchvision's full VGG19 state dict to its ``features`` part (keys ``0.weight``, ...).

    A features-only state dict is returned unchanged; ``classifier.*`` keys are dropped.
    """
    if not any(key.startswith('features.') for key in state_dict):
        return state_dict
    return {key[len('features.'):]: value for key, value in state_dict.items() if key.startswith('features.')}


def resolve_layer_name(layer: str) -> str:
    """Map the paper's ``vgg<i><j>`` (the j-th conv, after its ReLU, before the i-th pooling) to BasicSR's names.

    'vgg22' -> 'relu2_2', 'vgg54' -> 'relu5_4'; BasicSR's names ('conv1_1', 'relu1_1', ..., 'pool5') pass through.
    """
    match = _PAPER_LAYER.match(layer)
    name = f'relu{match.group(1)}_{match.group(2)}' if match else layer
    if name not in VGG19_LAYER_NAMES:
        raise ValueError(f'Unknown VGG19 layer {layer!r}: use vgg22, vgg54 or one of {", ".join(VGG19_LAYER_NAMES)}')
    return name


def _build_features(state_dict: dict[str, torch.Tensor] | None) -> nn.Sequential:
    """The full VGG19 ``features`` stack, loaded from ``state_dict`` or torchvision-initialised when it is None."""
    features = tv_vgg.make_layers(tv_vgg.cfgs['E'], batch_norm=False)
    if state_dict is None:
        for module in features.modules():
            if isinstance(module, nn.Conv2d):  # the same initialisation as torchvision's VGG
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
                nn.init.constant_(module.bias, 0)
        return features
    try:
        features.load_state_dict(features_state_dict(state_dict), strict=True)
    except RuntimeError as error:
        raise VGGWeightsMismatchError(
            _one_line(f'The VGG19 weights do not match torchvision\'s vgg19 (expected '
                      f'features.N.* or N.* keys, classifier.* ignored): {error}')) from error
    return features


class VGG19Features(nn.Module):
    """Frozen VGG19 ``features`` truncated after ``layer``; always in eval mode.

    Args:
        layer (str): Last layer kept, and whose output ``forward`` returns: a BasicSR name ('conv1_1', 'relu1_1',
            ..., 'relu5_4', 'pool5') or the paper's 'vgg22' / 'vgg54' (= 'relu2_2' / 'relu5_4'). Default: 'relu5_4'.
        weights (str | None): A path to the VGG19 weights, None (torchvision's cache, else its download) or 'random'
            (tests and demos only). See :func:`resolve_vgg19_weights`. Default: None.
        use_input_norm (bool): Normalise the [0, 1] RGB input with ImageNet's mean and std. Default: True.
        range_norm (bool): Map the input from [-1, 1] to [0, 1] first. Default: False.
    """

    def __init__(self,
                 layer: str = 'relu5_4',
                 weights: str | None = None,
                 use_input_norm: bool = True,
                 range_norm: bool = False) -> None:
        super().__init__()
        self.layer = resolve_layer_name(layer)
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        features = _build_features(resolve_vgg19_weights(weights))
        last = VGG19_LAYER_NAMES.index(self.layer)
        self.features = nn.Sequential(OrderedDict(zip(VGG19_LAYER_NAMES[:last + 1], features[:last + 1])))
        for param in self.features.parameters():
            param.requires_grad = False
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.train(False)

    @property
    def out_channels(self) -> int:
        """Channels of the returned feature map."""
        convs = [module for module in self.features if isinstance(module, nn.Conv2d)]
        return convs[-1].out_channels

    def train(self, mode: bool = True) -> VGG19Features:
        """Keep the extractor in eval mode whatever ``mode`` is (``model.train()`` must not flip it)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of ``x`` (n, 3, h, w), RGB in [0, 1] (or [-1, 1] with ``range_norm``), at ``self.layer``."""
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        return self.features(x)
