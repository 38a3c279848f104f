"""The training loop and its fault tolerance: ``python -m basicsr.train`` (through the autoload hook) and
``python -m srgan_plugin.train`` both run ``loop.train_pipeline``.

- ``checkpoints``: atomic writes, verified resume-state discovery, retention.
- ``state``: RNG capture/restore and the resumable sampler that make a killed-and-resumed run exact.
- ``signals``: save a training state on SIGTERM/SIGINT (cluster preemption).
- ``loop``: BasicSR's training loop with the pieces above.
"""
