"""The plugin's errors, and the exit status of every command.

Every error a user can cause derives from :class:`SRGANPluginError`; its message is one line that says what is wrong
and what to do. Each error also keeps the built-in class it always had (``ValueError``, ``RuntimeError``, ...), so
``except ValueError`` still catches an :class:`InferenceError`.

Exit statuses, the same for every command (``python -m srgan_plugin.prepare``, ``.upscale``, ``.evaluate``,
``.export``, ``.interpolate``, ``.visualize``, ``.bench``, ``.test``, and ``.train`` / ``basicsr.train`` for the
plugin's models):

* 0: success.
* 1: error: one ``error: <what is wrong>; <what to do>`` line on stderr, no traceback (a :class:`SRGANPluginError`;
  data that does not verify; a bad option file).
* 2: usage: bad command-line arguments, as argparse reports them (one ``prog: error: ...`` line,
  :class:`ArgumentParser`; a combination of arguments the parser cannot check alone raises :class:`UsageError`).
* 128 + N: stopped by signal N after cleaning up, with one ``error: interrupted; ...`` line saying what is left:
  130 for Ctrl-C (SIGINT), 143 for SIGTERM (``kill``, a job scheduler). Training saves a state first
  (``srgan_plugin.training.signals``).

:func:`command_errors` implements this: each command's ``main`` runs its body inside it.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from types import FrameType
from typing import Callable, Iterator, NoReturn, Optional, Union

EXIT_ERROR = 1
EXIT_USAGE = 2

__all__ = [
    'EXIT_ERROR', 'EXIT_USAGE', 'SRGANPluginError', 'UsageError', 'OptionsError', 'DataError', 'CheckpointError',
    'NonFiniteLossError', 'NonFiniteWeightsError', 'InferenceError', 'PrepareError', 'VerifyError', 'BadImage',
    'VGGWeightsError', 'VGGWeightsMismatchError', 'Interrupted', 'signal_status', 'sigterm_as_interrupt',
    'ArgumentParser', 'number_argument', 'command_errors'
]


class SRGANPluginError(Exception):
    """Base of every error a user can cause; the message is one line that says what is wrong and what to do."""


class UsageError(SRGANPluginError):
    """Command-line arguments that do not go together (exit status 2, as argparse's own usage errors)."""


class OptionsError(SRGANPluginError, ValueError):
    """An option file that cannot work: a key, a value, a type name (``srgan_plugin.options_check``)."""


class DataError(SRGANPluginError, ValueError):
    """Data or a checkpoint an option file points at that is damaged or unsafe (``srgan_plugin.data_check``)."""


class CheckpointError(SRGANPluginError, RuntimeError):
    """A training state or network file that cannot be resumed from; the message says which file and why."""


class NonFiniteLossError(SRGANPluginError, RuntimeError):
    """Training produced non-finite losses or gradients ``train.max_nonfinite_steps`` times in a row."""


class NonFiniteWeightsError(SRGANPluginError, RuntimeError):
    """Raised instead of writing a checkpoint whose weights contain NaN or Inf."""


class InferenceError(SRGANPluginError, ValueError):
    """Bad input to an inference command (a checkpoint, an image, an argument)."""


class PrepareError(SRGANPluginError):
    """A dataset preparation that cannot go on."""


class VerifyError(PrepareError):
    """A database that does not verify; ``problems`` lists what is wrong (one line each)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        more = f' (and {len(problems) - 1} more problem(s))' if len(problems) > 1 else ''
        super().__init__(f'{problems[0]}{more}')


class BadImage(SRGANPluginError, ValueError):
    """An input file that is not a usable image; the message says why."""


class VGGWeightsError(SRGANPluginError, FileNotFoundError):
    """The VGG19 weights cannot be found (or downloaded); the message says where to put the file."""


class VGGWeightsMismatchError(SRGANPluginError, ValueError):
    """The VGG19 weight file exists but does not hold a VGG19 (``features``) state dict."""


class Interrupted(KeyboardInterrupt):
    """A signal other than SIGINT raised as ``KeyboardInterrupt`` (:func:`sigterm_as_interrupt`), so that the clean-up
    of Ctrl-C runs; ``signum`` gives the exit status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_status(signum: int) -> int:
    """The exit status of a command stopped by signal ``signum``: ``128 + signum`` (130 SIGINT, 143 SIGTERM)."""
    return 128 + signum


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Raise SIGTERM (``kill``, a job scheduler's stop) as :class:`Interrupted` inside the block, so that partial
    outputs are cleaned up as on Ctrl-C. Only in the main thread, where Python delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Optional[FrameType]) -> NoReturn:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ArgumentParser(argparse.ArgumentParser):
    """An ``argparse.ArgumentParser`` whose usage errors are one line (``prog: error: message (see prog --help)``),
    exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f'{self.prog}: error: {message} (see {self.prog} --help)\n')


def number_argument(kind: Callable[[str], Union[int, float]],
                    minimum: Optional[float] = None,
                    maximum: Optional[float] = None,
                    positive: bool = False) -> Callable[[str], Union[int, float]]:
    """An argparse ``type=`` for a number in range, so that a value out of range is a usage error (status 2).

    Args:
        kind (Callable): ``int`` or ``float``.
        minimum (float | None): Smallest value allowed. Default: None.
        maximum (float | None): Largest value allowed. Default: None.
        positive (bool): Values must be > 0. Default: False.

    Returns:
        Callable[[str], int | float]: The converter; its message says the range, e.g. ``must be in [0, 1], got 2``.
    """

    def convert(text: str) -> Union[int, float]:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a{"n integer" if kind is int else " number"}') from None
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f'must be positive, got {text}')
        low = minimum is not None and value < minimum
        high = maximum is not None and value > maximum
        if (low or high) and minimum is not None and maximum is not None:
            raise argparse.ArgumentTypeError(f'must be in [{minimum:g}, {maximum:g}], got {text}')
        if low:
            raise argparse.ArgumentTypeError(f'must be >= {minimum:g}, got {text}')
        if high:
            raise argparse.ArgumentTypeError(f'must be <= {maximum:g}, got {text}')
        return value

    return convert


@contextlib.contextmanager
def command_errors(prog: str,
                   interrupted: str,
                   prefix: str = '',
                   catch: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Run a command's body with the exit statuses of this module's docstring.

    An :class:`SRGANPluginError` (or one of ``catch``) ends the command with ``SystemExit('<prefix>error: message')``
    (status 1, the line printed on stderr); a :class:`UsageError` with one line and status 2; Ctrl-C and SIGTERM
    with ``<prefix>error: interrupted; <interrupted>`` and status 130 or 143.

    Args:
        prog (str): The command, e.g. ``python -m srgan_plugin.upscale`` (usage errors point at its ``--help``).
        interrupted (str): What an interruption leaves, e.g. ``nothing was left at the destination``.
        prefix (str): Put before ``error:`` on every line, e.g. ``python -m srgan_plugin.prepare demo: ``.
            Default: ''.
        catch (tuple[type[Exception], ...]): Further errors reported as one line, e.g. ``(OSError, )`` where any I/O
            failure is the user's to fix. Default: ().
    """
    reported: tuple[type[Exception], ...] = (SRGANPluginError, *catch)
    try:
        with sigterm_as_interrupt():
            yield
    except UsageError as error:
        sys.stderr.write(f'{prefix}error: {error} (see {prog} --help)\n')
        raise SystemExit(EXIT_USAGE) from None
    except reported as error:
        raise SystemExit(f'{prefix}error: {error}') from None
    except KeyboardInterrupt as stop:
        sys.stderr.write(f'{prefix}error: interrupted; {interrupted}\n')
        raise SystemExit(signal_status(getattr(stop, 'signum', signal.SIGINT))) from None
