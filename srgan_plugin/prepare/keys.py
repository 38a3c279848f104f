"""Map image names to LMDB keys that survive BasicSR's ``meta_info.txt`` parsing, and record the mapping.

``basicsr.data.data_util.paired_paths_from_lmdb`` takes a key as ``line.split('.')[0]`` of its meta_info line, and
the line's fields are separated by spaces, so a key must be ASCII without ``.`` or whitespace
(:func:`srgan_plugin.prepare.lmdb_io.check_key`). The mapping used here:

* a name made only of ``A-Z a-z 0-9 _ -`` is its own key (``0001`` -> ``0001``, as BasicSR's scripts do);
* any other name becomes ``{slug}-{hash}``: the name reduced to ASCII letters, digits and ``_`` (at most
  :data:`SLUG_LENGTH` characters, ``img`` when nothing is left) and the first 8 hex digits of the SHA-1 of the
  UTF-8 name, e.g. ``photo 1.v2`` -> ``photo_1_v2-8a1b2c3d``;
* names that occur more than once (``a.png`` and ``a.jpg``, or the same file name in two input folders) are mapped
  from ``{folder}/{file name}`` instead, so each still gets its own key.

The mapping is deterministic (the same inputs give the same keys on every machine) and checked to be collision-free;
:func:`write_keys_tsv` writes it next to the data so that every key can be traced back to its file.
"""
from __future__ import annotations

import collections
import hashlib
import re
import unicodedata
from os import path as osp
from typing import Sequence

from srgan_plugin.base.errors import PrepareError

KEYS_FILE = 'keys.tsv'
SLUG_LENGTH = 40
_SAFE = re.compile(r'^[A-Za-z0-9_-]+$')
_UNSAFE_RUN = re.compile(r'[^A-Za-z0-9]+')


def is_safe_key(name: str) -> bool:
    """True when ``name`` can be used as a key unchanged (only ``A-Z a-z 0-9 _ -``)."""
    return bool(_SAFE.match(name))


def safe_key(name: str) -> str:
    """``name`` itself when it is safe, else ``{slug}-{8 hex digits of its SHA-1}`` (see the module docstring)."""
    if is_safe_key(name):
        return name
    ascii_name = unicodedata.normalize('NFKD', name).encode('ascii', 'ignore').decode('ascii')
    slug = _UNSAFE_RUN.sub('_', ascii_name).strip('_')[:SLUG_LENGTH] or 'img'
    digest = hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]
    return f'{slug}-{digest}'


def assign_keys(files: Sequence[str], lmdb_safe: bool = True) -> list[str]:
    """One unique key per file, in the order given.

    Args:
        files (Sequence[str]): Image paths; their stems (file name without extension) are the names to map.
        lmdb_safe (bool): Map names with :func:`safe_key`; when False, names are kept as they are (file names in a
            folder read by BasicSR's disk backend may hold dots, spaces and non-ASCII characters) and only names
            that occur more than once are mapped. Default: True.

    Returns:
        list[str]: The keys, ``keys[i]`` for ``files[i]``.

    Raises:
        PrepareError: When two files would still get the same key (never seen in practice; reported, not guessed).
    """
    stems = [osp.splitext(osp.basename(path))[0] for path in files]
    counts = collections.Counter(stems)
    keys = []
    for path, stem in zip(files, stems):
        if counts[stem] > 1:
            keys.append(safe_key(f'{osp.basename(osp.dirname(osp.abspath(path)))}/{osp.basename(path)}'))
        else:
            keys.append(safe_key(stem) if lmdb_safe else stem)
    clashes = [key for key, count in collections.Counter(keys).items() if count > 1]
    if clashes:
        sources = [path for path, key in zip(files, keys) if key == clashes[0]]
        raise PrepareError(f'{", ".join(sources)} map to the same key {clashes[0]!r}; rename one of them in a copy '
                           'of the input folder')
    return keys


def write_keys_tsv(path: str, keys: Sequence[str], files: Sequence[str]) -> None:
    """Write ``key<TAB>source file`` lines (a header first) recording which file each key came from."""
    with open(path, 'w', encoding='utf-8') as f:
        f.write('key\tsource\n')
        f.writelines(f'{key}\t{osp.abspath(source)}\n' for key, source in zip(keys, files))


def read_keys_tsv(path: str) -> dict[str, str]:
    """``{key: source file}`` from a file written by :func:`write_keys_tsv`."""
    with open(path, encoding='utf-8') as f:
        rows = [line.rstrip('\n').split('\t', 1) for line in f][1:]
    return {key: source for key, source in rows}
