"""The ``python -m srgan_plugin.prepare`` command line: one argparse subcommand per dataset recipe.

Each subcommand lives in its own module with an ``add_parser(subparsers)`` function that registers it and sets
``func`` (called with the parsed namespace). To add one, write the module and list it in :data:`SUBCOMMANDS`.
Errors are reported as one ``error:`` line on stderr with exit status 2 (or the error's ``exit_status``, 1 for data
that does not verify), without a traceback.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from srgan_plugin.interrupts import sigterm_as_interrupt
from srgan_plugin.prepare import benchmark, demo, div2k, folder, verify
from srgan_plugin.prepare.staging import PrepareError

PROG = 'python -m srgan_plugin.prepare'
SUBCOMMANDS = (demo, div2k, folder, benchmark, verify)


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (``prog: error: message (see --help)``)."""

    def error(self, message: str) -> None:
        self.exit(2, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand of :data:`SUBCOMMANDS` registered."""
    parser = OneLineArgumentParser(prog=PROG, description='Prepare SR datasets for BasicSR / the SRGAN plugin.')
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
        int: 0 on success; failures exit through ``parser.exit(status, ...)`` (``SystemExit``) with one line on
        stderr.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigterm_as_interrupt():
            args.func(args)
    except (PrepareError, OSError) as error:
        parser.exit(getattr(error, 'exit_status', 2), f'{PROG} {args.command}: error: {error}\n')
    except KeyboardInterrupt:
        parser.exit(130, f'{PROG} {args.command}: error: interrupted; nothing was left at the destination\n')
    return 0


