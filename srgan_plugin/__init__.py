"""SRGAN (Ledig et al., CVPR 2017) as a BasicSR plugin.

``import srgan_plugin`` is the single registration trigger: it makes basicsr 1.4.2 work with current torch
(``srgan_plugin.compat``) and registers the plugin's networks, losses and models in BasicSR's registries, so that
option files can name them in ``type:`` / ``model_type:``. The installed autoload hook does this import for you
whenever ``basicsr`` is imported, e.g. by ``python -m basicsr.train``; it also installs the option-file checks.

Layers (a module imports its own layer or lower ones, never higher; ``tests/test_layers.py`` holds the table and
checks it):

1. entry points: this package's ``__init__``, ``train``, ``test``, ``upscale``, ``evaluate``, ``export``,
   ``interpolate``, ``visualize``, ``bench/``, ``prepare/cli`` (the commands)
2. option-file checks: ``options_check``, ``options_schema``, ``options_data``, ``data_check``
3. ``training/``, ``inference/``, ``prepare/`` (which do not import each other)
4. ``models/``, ``archs/``, ``losses/``, ``metrics`` (which do not import each other)
5. shared base: ``base/`` (errors and exit statuses, whole-or-nothing files, distributed helpers, image decoding),
   ``compat``, ``version``
"""
from srgan_plugin import compat

compat.apply()  # before the first import of basicsr (see compat's docstring)

from srgan_plugin import archs, losses, metrics, models  # noqa: E402,F401  (registration happens at import)
from srgan_plugin import options_check  # noqa: E402
from srgan_plugin.version import __version__  # noqa: E402,F401

compat.install_option_checks(options_check.check_option_file, options_check.check_parsed_options)
