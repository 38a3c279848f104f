"""Training models (BasicSR's MODEL_REGISTRY): phase 1 ``SRResNetModel``, phase 2 ``SRGANPluginModel``."""
from srgan_plugin.models.srgan_model import SRGANPluginModel
from srgan_plugin.models.srresnet_model import SRResNetModel

__all__ = ['SRResNetModel', 'SRGANPluginModel']
