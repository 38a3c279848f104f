"""``python -m srgan_plugin.test -opt FILE``: BasicSR's test CLI with the plugin imported explicitly and results/ in
the current working directory."""
import os

import srgan_plugin  # noqa: F401  (registration and compatibility patches)
from basicsr.test import test_pipeline


def main() -> None:
    test_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
