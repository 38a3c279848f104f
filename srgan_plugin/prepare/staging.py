"""Build the entries of an output folder under a temporary name and move them into place only when all are finished.

An interrupted run (Ctrl-C, a kill, a full disk) therefore never leaves anything at the destination that looks
finished. The staging folder is ``<parent>/.<name>.tmp-<pid>`` next to the destination ``<parent>/<name>`` (the
temporary name of every whole-or-nothing write, :func:`srgan_plugin.base.files.temporary_path`; same file system, so
each move is an atomic rename); it carries a marker file while it is being written, and a later run removes a leftover
staging folder only when it recognises it as one of its own. Two runs building the same destination at the same time
are not supported.

Every finished folder holds a small JSON manifest (:data:`MANIFEST`) that says what it is, so that a later run can
tell a finished dataset from anything else at the destination and never overwrites the latter.

:func:`staged_entries` leaves whatever else the destination holds alone (e.g. ``datasets/DIV2K`` with the raw
``DIV2K_train_HR`` in it): it moves a fixed list of named entries out of the staging folder one by one, the manifest
last, so the manifest only appears once everything else is in place. The list is written into the marker before the
first move; a run killed in the middle of the moves leaves the staging folder with that list, and the next run
removes the entries already moved before it starts again.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from os import path as osp
from typing import Any, Iterator, Optional, Sequence

from srgan_plugin.base.errors import PrepareError
from srgan_plugin.base.files import TEMP_MARK, temporary_path

MANIFEST = 'prepare_info.json'
PARTIAL_MARKER = '.prepare_partial'


def staging_path(out: str) -> str:
    """The temporary folder that this process builds ``out`` in: ``<parent>/.<name>.tmp-<pid>``."""
    return temporary_path(out)


def staging_folders(out: str) -> list[str]:
    """The staging folders of ``out`` that exist, this process's or left by an interrupted run of any other."""
    out = osp.abspath(out)
    parent, prefix = osp.dirname(out), f'.{osp.basename(out)}{TEMP_MARK}'
    if not osp.isdir(parent):
        return []
    return sorted(osp.join(parent, name) for name in os.listdir(parent) if name.startswith(prefix))


def read_manifest(folder: str) -> Optional[dict[str, Any]]:
    """The manifest of a prepared folder, or None when there is none or it is not a JSON object."""
    try:
        with open(osp.join(folder, MANIFEST), encoding='utf-8') as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def write_manifest(folder: str, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` (JSON-serialisable) as the folder's :data:`MANIFEST`."""
    with open(osp.join(folder, MANIFEST), 'w', encoding='utf-8') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')


def _remove_leftovers(out: str) -> None:
    """Remove the staging folders of ``out`` left by interrupted runs; refuse anything that is not recognisably one."""
    for tmp in staging_folders(out):
        ours = osp.isdir(tmp) and (osp.isfile(osp.join(tmp, PARTIAL_MARKER)) or read_manifest(tmp) is not None)
        if not ours:
            raise PrepareError(f'{tmp} is in the way of the temporary build folder and was not made by this tool; '
                               'remove it or pass --out elsewhere')
        print(f'Removing {tmp}, left over by an interrupted run.')
        moved = _committing(tmp)
        if moved and not osp.lexists(osp.join(out, MANIFEST)):  # killed while moving entries: undo the moves
            for name in moved:
                _remove(osp.join(out, name))
        shutil.rmtree(tmp)


def _committing(tmp: str) -> list[str]:
    """The entry names a staging folder's marker lists (being moved into place), or [] when it lists none."""
    try:
        with open(osp.join(tmp, PARTIAL_MARKER), encoding='utf-8') as f:
            names = json.load(f)
    except (OSError, ValueError):
        return []
    return [name for name in names if isinstance(name, str) and name and osp.basename(name) == name]


def _remove(path: str) -> None:
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)


def _move_entries(tmp: str, out: str, names: Sequence[str]) -> None:
    """Move ``names`` (those present) from ``tmp`` into ``out``, :data:`MANIFEST` last; undo the moves on error."""
    order = [name for name in names if name != MANIFEST] + [name for name in names if name == MANIFEST]
    order = [name for name in order if osp.lexists(osp.join(tmp, name))]
    with open(osp.join(tmp, PARTIAL_MARKER), 'w', encoding='utf-8') as f:
        json.dump(order, f)
    os.makedirs(out, exist_ok=True)
    moved = []
    try:
        for name in order:
            os.rename(osp.join(tmp, name), osp.join(out, name))
            moved.append(name)
    except BaseException:
        for name in moved:
            _remove(osp.join(out, name))
        raise


@contextlib.contextmanager
def staged_entries(out: str, names: Sequence[str]) -> Iterator[str]:
    """Context manager: yield a fresh staging folder; move the entries ``names`` from it into ``out`` at the end.

    ``out`` may exist and hold other files and folders, which are left alone; none of ``names`` may exist in it.
    The caller writes the entries (files or folders; :data:`MANIFEST` among them, moved last) into the yielded
    folder. When the block raises, nothing is moved, the staging folder is removed and the error propagates.

    Args:
        out (str): Destination folder (created when missing).
        names (Sequence[str]): Names of the entries to move, relative to ``out``, without path separators.

    Yields:
        str: Absolute path of the staging folder.
    """
    out = osp.abspath(out)
    if osp.lexists(out) and not osp.isdir(out):
        raise PrepareError(f'{out} exists and is not a folder; pass --out elsewhere')
    _remove_leftovers(out)  # first: it removes entries a killed run had already moved into place
    tmp = staging_path(out)
    taken = [name for name in names if osp.lexists(osp.join(out, name))]
    if taken:
        raise PrepareError(f'{osp.join(out, taken[0])} already exists; remove it or pass --out elsewhere')
    try:  # from the first step on: a signal between creating the folder and entering the block leaves nothing
        os.makedirs(tmp)
        open(osp.join(tmp, PARTIAL_MARKER), 'w').close()
        yield tmp
        _move_entries(tmp, out, names)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp)
