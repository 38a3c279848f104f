"""Files written whole or not at all, and file hashes.

Every file the plugin writes in one piece (checkpoints and training states, upscaled images, exported models,
interpolated weights, results, grids) goes through :func:`atomic_output`: it is written under a temporary name in
the same folder, flushed to disk and renamed over its final name (``os.replace`` is atomic on POSIX and Windows), so
a kill, a full disk or Ctrl-C leaves either the previous file or the new one, never a truncated one. Prepared
datasets, which are folders, are built the same way under the same kind of name
(:mod:`srgan_plugin.prepare.staging`).

Temporary names are ``.<name>.tmp-<pid>`` next to ``<name>`` (:func:`temporary_path`): hidden, recognisable
(:func:`is_temporary`), and distinct per process.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
from os import path as osp
from typing import Any, Callable, Iterable, Iterator

import torch

TEMP_MARK = '.tmp-'

__all__ = [
    'TEMP_MARK', 'temporary_path', 'is_temporary', 'atomic_output', 'atomic_write', 'atomic_save', 'sha256_of',
    'remove_temporaries'
]


def temporary_path(path: str, pid: int | None = None) -> str:
    """The name ``path`` is built under before it is renamed into place: ``<folder>/.<name>.tmp-<pid>``.

    Args:
        path (str): The final file or folder.
        pid (int | None): Process id in the name; None for this process's. Default: None.

    Returns:
        str: The temporary path, in the same folder (the rename never crosses file systems).
    """
    folder, name = osp.split(osp.abspath(path))
    return osp.join(folder, f'.{name}{TEMP_MARK}{os.getpid() if pid is None else pid}')


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`temporary_path`'s (left behind when the writer was killed)."""
    return name.startswith('.') and TEMP_MARK in name


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: str) -> None:
    with open(path, 'rb+') as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Write ``path`` whole or not at all: yields the temporary name to write to (:func:`temporary_path`); when the
    block ends without error the file is flushed to disk and renamed over ``path``, otherwise (an error, Ctrl-C) it
    is removed and ``path`` is left as it was.

    Args:
        path (str): The output file; its folder must exist.

    Yields:
        str: The name to write to (any writer: ``open``, ``torch.save``, ``torch.onnx.export``, ...).
    """
    temp = temporary_path(path)
    try:
        yield temp
        _fsync_file(temp)
        os.replace(temp, path)
    finally:
        if osp.lexists(temp):
            os.remove(temp)
    _fsync_folder(osp.dirname(temp))


def atomic_write(data: bytes, path: str) -> str:
    """Write ``data`` to ``path`` whole or not at all (:func:`atomic_output`); return its SHA-256 (hex)."""
    with atomic_output(path) as temp, open(temp, 'wb') as handle:
        handle.write(data)
    return hashlib.sha256(data).hexdigest()


def atomic_save(obj: Any, path: str) -> str:
    """``torch.save(obj, path)`` whole or not at all; return the file's SHA-256 (hex)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write(buffer.getvalue(), path)


def sha256_of(path: str) -> str:
    """SHA-256 (hex) of a file's contents, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def remove_temporaries(folders: Iterable[str], report: Callable[[str], None]) -> None:
    """Delete the temporary files (:func:`is_temporary`) in ``folders``: left by a write that was killed, they never
    replaced a complete file. ``report`` receives one line per file removed."""
    for folder in folders:
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            if is_temporary(name) and osp.isfile(osp.join(folder, name)):
                os.remove(osp.join(folder, name))
                report(f'Removed {name}, left in {folder} by an interrupted save.')
