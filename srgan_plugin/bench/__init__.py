"""``python -m srgan_plugin.bench``: how fast the plugin trains and infers, next to BasicSR's own SRGAN, measured in
one process on one device so that the ratios compare like with like.

Sections (``--sections train,infer,data``):

* ``train`` (:mod:`.training`): seconds per ``optimize_parameters`` step of the plugin's phase 1 (``SRResNetModel``)
  and phase 2 (``SRGANPluginModel``) with each requested speed option (``--variants``: fp32 eager, bf16 autocast,
  channels_last, compile, ...), and of BasicSR's ``SRModel`` (MSRResNet) and ``SRGANModel`` (MSRResNet +
  VGGStyleDiscriminator + VGG19 conv5_4 perceptual loss), at ``--batch`` and each of ``--crops`` (the paper: 16 x 96
  px; BasicSR: 16 x 128 px; BasicSR's discriminator accepts 128 and 256 only). Models are built with BasicSR's
  ``build_model`` from option dicts (:mod:`.cases`) with random VGG weights. Every model is warmed up, then the
  steps are timed one per model in turn (interleaved), ``--repeats`` rounds, and the median is reported with the
  spread. Each fp32 eager step is also counted (convolution and matmul FLOPs, forward and backward, by
  ``torch.utils.flop_counter``) to give achieved FLOP/s and, on known GPUs, the fraction of the bf16 peak.
* ``infer`` (:mod:`.inference`): output megapixels per second of the generator, batch 1: the plugin's SRResNet as
  trained and with BatchNorm folded, in fp32, bf16 (and fp16 on CUDA), vs BasicSR's MSRResNet in fp32.
* ``data`` (:mod:`.data`): samples per second from an LMDB of photo sub-images through BasicSR's
  ``PairedImageDataset`` per worker count, and the worker count that keeps up with the fastest measured step.

``--json FILE`` writes every sample. Tables are printed as Markdown, headed by the device line.
"""
