"""``python -m srgan_plugin.train -opt FILE [--launcher none|pytorch|slurm] [--auto_resume] [--debug]
[--force_yml K=V ...]``: BasicSR's training CLI, with run folders (experiments/, tb_logger/) in the current working
directory. ``python -m basicsr.train`` runs the same ``main`` through the autoload hook.

Option files of the plugin's models (``model_type: SRResNetModel`` or ``SRGANPluginModel``) run the plugin's
fault-tolerant loop (``srgan_plugin.training.loop``); any other registered ``model_type`` (e.g. BasicSR's ``SRModel``)
runs BasicSR's own ``basicsr.train.train_pipeline``, as ``python -m basicsr.train`` does without the plugin.
"""
from __future__ import annotations

import os
import sys
from os import path as osp
from typing import Any, Optional, Sequence

import yaml

import srgan_plugin  # noqa: F401  (registration and compatibility patches)
from srgan_plugin.base.errors import command_errors
from srgan_plugin.options_check import forced_model_type, handled_by_plugin, option_file_path
from srgan_plugin.training.loop import train_pipeline

PROG = 'python -m srgan_plugin.train'
INTERRUPTED = 'the training states saved so far are intact: continue from the newest with --auto_resume'


def option_file_model_type(argv: Sequence[str]) -> Any:
    """The ``model_type`` that BasicSR's parser will find for ``argv``, read without parsing the rest.

    Args:
        argv: The command-line arguments (``sys.argv[1:]``).

    Returns:
        The option file's ``model_type`` (``--force_yml`` included), or None when there is no ``-opt``, or the file
        is missing, unreadable, not YAML or has no ``model_type``.
    """
    forced = forced_model_type(argv)
    if forced is not None:
        return forced
    path = option_file_path(argv)
    if path is None:
        return None
    from basicsr.utils.options import ordered_yaml  # the loader BasicSR's parse_options uses

    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return opt.get('model_type') if isinstance(opt, dict) else None


def runs_plugin_loop(argv: Sequence[str]) -> bool:
    """Whether ``argv`` trains with the plugin's loop: a plugin model, or a file the plugin reports on (missing or
    unreadable file, no or unknown ``model_type``: one ``error:`` line)."""
    return handled_by_plugin(option_file_model_type(argv))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Train with the options of ``argv`` (default: the command line; BasicSR's parser reads ``sys.argv``).

    The plugin's loop ends with the exit statuses of :mod:`srgan_plugin.base.errors`; BasicSR's own loop as BasicSR
    ends it.
    """
    if argv is not None:
        sys.argv[1:] = list(argv)
    if runs_plugin_loop(sys.argv[1:]):
        with command_errors(PROG, INTERRUPTED):
            train_pipeline(os.getcwd())
    else:  # what basicsr/train.py's __main__ block does
        import basicsr.train
        basicsr.train.train_pipeline(osp.abspath(osp.join(basicsr.train.__file__, osp.pardir, osp.pardir)))


if __name__ == '__main__':
    main()
