"""The ``python -m srgan_plugin.prepare`` command line: one argparse subcommand per dataset recipe.

Each subcommand lives in its own module with an ``add_parser(subparsers)`` function that registers it and sets
``func`` (called with the parsed namespace). To add one, write the module and list it in :data:`SUBCOMMANDS`.
Errors are one ``python -m srgan_plugin.prepare COMMAND: error:`` line on stderr without a traceback; exit statuses
are those of every command (:mod:`srgan_plugin.base.errors`: 1 error, 2 usage, 130 / 143 interrupted).
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from srgan_plugin.base.errors import ArgumentParser, command_errors
from srgan_plugin.prepare import demo, div2k, folder, testset, verify

PROG = 'python -m srgan_plugin.prepare'
SUBCOMMANDS = (demo, div2k, folder, testset, verify)  # testset registers the subcommand 'benchmark'


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand of :data:`SUBCOMMANDS` registered."""
    parser = ArgumentParser(prog=PROG, description='Prepare SR datasets for BasicSR / the SRGAN plugin.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen subcommand.

    Args:
        argv (Sequence[str] | None): Arguments without the program name. Default: None.

    Returns:
        int: 0 on success; failures raise ``SystemExit`` with one line on stderr (:func:`command_errors`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    command = f'{PROG} {args.command}'
    with command_errors(command, 'nothing was left at the destination', prefix=f'{command}: ', catch=(OSError, )):
        args.func(args)
    return 0
