"""Networks of the paper (Ledig et al., CVPR 2017, Figure 4), registered in BasicSR's ARCH_REGISTRY."""
from srgan_plugin.archs.discriminator_arch import SRGANDiscriminator
from srgan_plugin.archs.srresnet_arch import SRResNet

__all__ = ['SRResNet', 'SRGANDiscriminator']
