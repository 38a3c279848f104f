"""The training loop and its fault tolerance: ``python -m basicsr.train`` (through the autoload hook) and
``python -m srgan_plugin.train`` both run ``loop.train_pipeline``.

- ``state_files``: the training states and network files of a run: verified resume-state discovery, retention.
- ``exact_resume``: RNG capture/restore and the resumable sampler that make a killed-and-resumed run exact.
- ``signals``: save a training state on SIGTERM/SIGINT (cluster preemption).
- ``loop``: BasicSR's training loop with the pieces above.
"""
