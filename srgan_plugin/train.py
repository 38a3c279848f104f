"""``python -m srgan_plugin.train -opt FILE [--launcher ...] [--auto_resume] ...``: BasicSR's training CLI with the
plugin imported explicitly and run folders (experiments/, tb_logger/) in the current working directory."""
import os

import srgan_plugin  # noqa: F401  (registration and compatibility patches)
from basicsr.train import train_pipeline


def main() -> None:
    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
