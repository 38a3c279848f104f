"""Build an output folder under a temporary name and rename it into place only when it is finished.

An interrupted run (Ctrl-C, a kill, a full disk) therefore never leaves anything at the destination that looks
finished. The staging folder is ``<parent>/.<name>.partial`` next to the destination ``<parent>/<name>`` (same file
system, so the final rename is atomic); it carries a marker file while it is being written, and a later run removes a
leftover staging folder only when it recognises it as one of its own. Two runs building the same destination at the
same time are not supported.

Every finished folder holds a small JSON manifest (:data:`MANIFEST`) that says what it is, so that a later run can
tell a finished dataset from anything else at the destination and never overwrites the latter.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
from os import path as osp
from typing import Any, Iterator, Optional

MANIFEST = 'prepare_info.json'
PARTIAL_MARKER = '.prepare_partial'


class PrepareError(Exception):
    """A dataset preparation that cannot go on; the message is one line that says what to do."""


def staging_path(out: str) -> str:
    """The temporary folder that :func:`staged_output` builds ``out`` in: ``<parent>/.<name>.partial``."""
    out = osp.abspath(out)
    return osp.join(osp.dirname(out), f'.{osp.basename(out)}.partial')


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


def is_empty_dir(path: str) -> bool:
    """True for an existing folder with nothing in it."""
    return osp.isdir(path) and not os.listdir(path)


def _remove_leftover(tmp: str) -> None:
    """Remove a staging folder left by an interrupted run; refuse anything that is not recognisably one."""
    if not osp.lexists(tmp):
        return
    ours = osp.isdir(tmp) and (osp.isfile(osp.join(tmp, PARTIAL_MARKER)) or read_manifest(tmp) is not None)
    if not ours:
        raise PrepareError(f'{tmp} is in the way of the temporary build folder and was not made by this tool; '
                           'remove it or pass --out elsewhere')
    print(f'Removing {tmp}, left over by an interrupted run.')
    shutil.rmtree(tmp)


@contextlib.contextmanager
def staged_output(out: str) -> Iterator[str]:
    """Context manager: yield a fresh staging folder, rename it to ``out`` when the block ends without error.

    ``out`` must not exist, or be an empty folder (which is replaced). The caller writes everything, including its
    manifest, into the yielded folder. When the block raises, the staging folder is removed and the error propagates.

    Args:
        out (str): Destination folder.

    Yields:
        str: Absolute path of the staging folder.
    """
    out = osp.abspath(out)
    if osp.lexists(out) and not is_empty_dir(out):
        raise PrepareError(f'{out} already exists; remove it or pass --out elsewhere')
    tmp = staging_path(out)
    _remove_leftover(tmp)
    os.makedirs(tmp)
    marker = osp.join(tmp, PARTIAL_MARKER)
    open(marker, 'w').close()
    try:
        yield tmp
        os.remove(marker)
        if is_empty_dir(out):
            os.rmdir(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
