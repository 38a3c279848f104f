"""``python -m srgan_plugin.train -opt FILE [--launcher none|pytorch|slurm] [--auto_resume] [--debug]
[--force_yml K=V ...]``: BasicSR's training CLI, run by the plugin's fault-tolerant loop
(``srgan_plugin.training.loop``), with run folders (experiments/, tb_logger/) in the current working directory.
``python -m basicsr.train`` runs the same ``main`` through the autoload hook."""
import os

import srgan_plugin  # noqa: F401  (registration and compatibility patches)
from srgan_plugin.training.loop import train_pipeline


def main() -> None:
    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
