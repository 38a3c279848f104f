"""Write and check LMDB image databases in BasicSR's exact format.

A BasicSR LMDB is a folder ``name.lmdb`` holding LMDB's ``data.mdb`` / ``lock.mdb`` and a ``meta_info.txt``:

* each value is a PNG-encoded image (``cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, level])``), BGR like
  everything cv2 writes; the LMDB key is the image name without extension, ASCII-encoded;
* ``meta_info.txt`` has one line per image, ``{key}.png ({h},{w},{c}) {compression level}``, e.g.
  ``0001_s001.png (480,480,3) 1`` (``basicsr.utils.lmdb_util.LmdbMaker``).

``basicsr.data.data_util.paired_paths_from_lmdb`` reads the keys back as ``line.split('.')[0]``, so a key must not
contain ``.`` (nor whitespace); :class:`LmdbWriter` refuses such keys. :func:`read_meta_info` reads ``meta_info.txt``
for every part of the plugin: strictly (the format above) or as BasicSR does (any line). An LQ and a GT database are
a pair when their key sets are equal (:func:`key_differences`; :func:`check_lmdb_pair` also decodes every entry and
checks HR = scale x LR). ``meta_info.txt`` is written last, when the writer is closed, so a database whose writing
was interrupted has none and never passes :func:`check_lmdb`.
"""
from __future__ import annotations

import dataclasses
import os
import re
from os import path as osp
from typing import Iterable, Iterator, NamedTuple, Optional

import cv2
import lmdb
import numpy as np
from tqdm import tqdm

from srgan_plugin.base.errors import VerifyError

META_INFO = 'meta_info.txt'
_META_LINE = re.compile(r'^(?P<key>[^\s.]+)\.png \((?P<h>\d+),(?P<w>\d+),(?P<c>\d+)\) (?P<level>\d+)$')
_ANY_META_LINE = re.compile(r'^\S+\s+\((?P<h>\d+),\s*(?P<w>\d+)(?:,\s*(?P<c>\d+))?\)(?:\s+(?P<level>\d+))?')


class MetaInfo(NamedTuple):
    """One line of a BasicSR ``meta_info.txt``.

    Attributes:
        key (str): The LMDB key.
        shape (tuple[int, ...] | None): ``(h, w, c)``; read leniently (``strict=False``), ``(h, w)`` from a line
            without channels and None from a line without a shape.
        compress_level (int | None): The PNG compression level; read leniently, None from a line without one.
    """
    key: str
    shape: Optional[tuple[int, ...]]
    compress_level: Optional[int]


def image_shape(img: np.ndarray) -> tuple[int, int, int]:
    """``(h, w, c)`` of an image, ``c = 1`` for a 2-D one (as BasicSR's ``read_img_worker``)."""
    if img.ndim == 2:
        return img.shape[0], img.shape[1], 1
    if img.ndim == 3:
        return img.shape[0], img.shape[1], img.shape[2]
    raise ValueError(f'Expected an HxW or HxWxC image, got shape {img.shape}.')


def format_meta_line(key: str, shape: tuple[int, int, int], compress_level: int) -> str:
    """A ``meta_info.txt`` line without newline: ``{key}.png ({h},{w},{c}) {compress_level}``."""
    h, w, c = shape
    return f'{key}.png ({h},{w},{c}) {compress_level}'


def parse_meta_line(line: str, strict: bool = True) -> MetaInfo:
    """Parse one ``meta_info.txt`` line.

    Args:
        line (str): The line.
        strict (bool): Require BasicSR's format (:func:`format_meta_line`). When False, any line is read as
            BasicSR's ``paired_paths_from_lmdb`` reads it: the key is the text before the first dot
            (``line.split('.')[0]``), and the shape and compression level are taken where the line gives them.
            Default: True.

    Returns:
        MetaInfo: The entry.

    Raises:
        ValueError: With ``strict``, when the line is not in BasicSR's format.
    """
    text = line.strip()
    if not strict:
        match = _ANY_META_LINE.match(text)
        if match is None:
            return MetaInfo(line.split('.')[0], None, None)
        shape = tuple(int(side) for side in match.group('h', 'w', 'c') if side is not None)
        return MetaInfo(line.split('.')[0], shape, int(match['level']) if match['level'] else None)
    match = _META_LINE.match(text)
    if match is None:
        raise ValueError(f'not a BasicSR meta_info line: {text!r}')
    shape = (int(match['h']), int(match['w']), int(match['c']))
    return MetaInfo(match['key'], shape, int(match['level']))


def read_meta_info(lmdb_path: str, strict: bool = True) -> list[MetaInfo]:
    """All entries of ``lmdb_path/meta_info.txt``, in file order (blank lines are skipped).

    Args:
        lmdb_path (str): The ``.lmdb`` folder.
        strict (bool): Require an ASCII file in BasicSR's format, as :class:`LmdbWriter` writes it. When False, read
            any file as BasicSR's ``paired_paths_from_lmdb`` does (see :func:`parse_meta_line`; bytes that are not
            UTF-8 are replaced). Default: True.

    Returns:
        list[MetaInfo]: The entries.

    Raises:
        OSError: When the file cannot be read.
        ValueError: With ``strict``, when a line is not in BasicSR's format or the file is not ASCII.
    """
    encoding, errors = ('ascii', 'strict') if strict else ('utf-8', 'replace')
    with open(osp.join(lmdb_path, META_INFO), encoding=encoding, errors=errors) as f:
        return [parse_meta_line(line, strict) for line in f if line.strip()]


def key_differences(first: Iterable[str], second: Iterable[str]) -> tuple[list[str], list[str]]:
    """The keys of ``first`` that ``second`` lacks and those of ``second`` that ``first`` lacks, each in the order
    given (repeats kept): two key sets are equal when both lists are empty.

    Args:
        first (Iterable[str]): Keys, e.g. those of the HR images.
        second (Iterable[str]): Keys, e.g. those of the LR images.

    Returns:
        tuple[list[str], list[str]]: Only in ``first``, only in ``second``.
    """
    first, second = list(first), list(second)
    in_first, in_second = set(first), set(second)
    return [key for key in first if key not in in_second], [key for key in second if key not in in_first]


def check_key(key: str) -> None:
    """Raise ``ValueError`` unless ``key`` can round-trip through BasicSR's ``meta_info.txt`` parsing."""
    if not key or not key.isascii() or '.' in key or any(ch.isspace() for ch in key):
        raise ValueError(f'Invalid LMDB key {key!r}: BasicSR needs non-empty ASCII keys without "." or whitespace.')


def encode_png(img: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a uint8 image (BGR for colour images, cv2's order), as BasicSR stores it in an LMDB.

    Args:
        img (np.ndarray): HxW or HxWxC uint8 image.
        compress_level (int): PNG compression level 0-9. Default: 1.

    Returns:
        bytes: The encoded image.
    """
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise ValueError(f'cv2 could not encode an image of shape {img.shape} and dtype {img.dtype} as PNG.')
    return buf.tobytes()


def decode_png(buf: bytes, flags: int = cv2.IMREAD_UNCHANGED) -> Optional[np.ndarray]:
    """Decode stored image bytes (as :func:`encode_png` makes them); ``None`` when they are not an image."""
    return cv2.imdecode(np.frombuffer(buf, np.uint8), flags)


class LmdbWriter:
    """Write images into a new BasicSR-format LMDB (a streaming, self-growing ``basicsr.utils.lmdb_util.LmdbMaker``).

    Use it as a context manager; ``meta_info.txt`` is written when it closes without error. Writes are committed
    every ``batch`` images; when the map is full it is doubled and the batch is written again.

    Args:
        lmdb_path (str): Folder to create; must end with ``.lmdb`` and must not exist yet.
        compress_level (int): PNG compression level of the stored images. Default: 1.
        batch (int): Images per transaction (they are held in memory until committed). Default: 500.
        map_size (int): Initial LMDB map size in bytes; it grows as needed. Default: 1 GiB.
    """

    def __init__(self, lmdb_path: str, compress_level: int = 1, batch: int = 500, map_size: int = 1 << 30) -> None:
        if not lmdb_path.endswith('.lmdb'):
            raise ValueError(f"LMDB path must end with '.lmdb': {lmdb_path}")
        if osp.exists(lmdb_path):
            raise FileExistsError(f'{lmdb_path} already exists.')
        self.lmdb_path = lmdb_path
        self.compress_level = compress_level
        self.batch = batch
        os.makedirs(osp.dirname(osp.abspath(lmdb_path)), exist_ok=True)
        self.env = lmdb.open(lmdb_path, map_size=map_size)
        self._pending: list[tuple[bytes, bytes]] = []
        self._meta_lines: list[str] = []
        self._keys: set[str] = set()

    def __len__(self) -> int:
        return len(self._meta_lines)

    def put(self, key: str, img: np.ndarray) -> None:
        """Encode ``img`` (uint8, BGR for colour) as PNG and store it under ``key``."""
        self.put_bytes(key, encode_png(img, self.compress_level), image_shape(img))

    def put_bytes(self, key: str, img_bytes: bytes, shape: tuple[int, int, int]) -> None:
        """Store already PNG-encoded bytes (encoded with this writer's ``compress_level``) of an image of ``shape``."""
        check_key(key)
        if key in self._keys:
            raise ValueError(f'Duplicate LMDB key {key!r} in {self.lmdb_path}.')
        self._keys.add(key)
        self._pending.append((key.encode('ascii'), img_bytes))
        self._meta_lines.append(format_meta_line(key, shape, self.compress_level))
        if len(self._pending) >= self.batch:
            self._commit()

    def _commit(self) -> None:
        while True:
            try:
                with self.env.begin(write=True) as txn:  # aborted (nothing written) when put raises
                    for key_bytes, img_bytes in self._pending:
                        txn.put(key_bytes, img_bytes)
                break
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()['map_size'] * 2)
        self._pending.clear()

    def close(self, write_meta: bool = True) -> None:
        """Commit what is pending, close the environment and (unless ``write_meta`` is False) write meta_info.txt."""
        try:
            if write_meta:
                self._commit()
        finally:
            self.env.close()
        if write_meta:
            with open(osp.join(self.lmdb_path, META_INFO), 'w', encoding='ascii') as f:
                f.writelines(f'{line}\n' for line in self._meta_lines)

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(write_meta=exc_type is None)


def _open_readonly(lmdb_path: str) -> lmdb.Environment:
    # the same flags as BasicSR's LmdbBackend: nothing in the folder is modified, not even lock.mdb
    return lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False)


def check_lmdb_structure(lmdb_path: str) -> None:
    """Check, before any value is read, that ``data.mdb`` holds every page its header says the database uses.

    LMDB maps the file into memory: reading a page past the end of a truncated ``data.mdb`` kills the process with
    SIGBUS (no exception, no message), in ``verify`` and in training alike. Only the two header pages are read here:
    the newest one gives the last page used and the page size, so ``(last_pgno + 1) * psize`` bytes must be there.

    Args:
        lmdb_path (str): The ``.lmdb`` folder.

    Raises:
        ValueError: With a one-line reason (``data.mdb`` missing, empty, not an LMDB, or truncated).
    """
    data = osp.join(lmdb_path, 'data.mdb')
    if not osp.isfile(data):
        raise ValueError(f'{lmdb_path}: data.mdb is missing')
    size = osp.getsize(data)
    if size == 0:
        raise ValueError(f'{lmdb_path}: data.mdb is empty (0 bytes)')
    try:
        env = _open_readonly(lmdb_path)
    except lmdb.Error as error:
        reason = str(error).split(': ', 1)[-1]
        raise ValueError(f'{lmdb_path}: data.mdb is not a readable LMDB ({reason})') from None
    try:
        needed = (env.info()['last_pgno'] + 1) * env.stat()['psize']
    finally:
        env.close()
    if size < needed:
        raise ValueError(f'{lmdb_path}: data.mdb is truncated ({size} bytes; its header says the database needs '
                         f'{needed})')


def lmdb_keys(lmdb_path: str) -> list[str]:
    """All keys stored in the LMDB (sorted, decoded), read without modifying any file."""
    env = _open_readonly(lmdb_path)
    try:
        with env.begin(write=False) as txn:
            return [key.decode('ascii') for key in txn.cursor().iternext(keys=True, values=False)]
    finally:
        env.close()


def iter_lmdb_items(lmdb_path: str) -> Iterator[tuple[str, bytes]]:
    """Every ``(key, stored bytes)`` of the LMDB in key order, through one read-only transaction."""
    env = _open_readonly(lmdb_path)
    try:
        with env.begin(write=False, buffers=False) as txn:
            for key, value in txn.cursor():
                yield key.decode('ascii', errors='replace'), value
    finally:
        env.close()


def read_lmdb_image(lmdb_path: str, key: str, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decode the image stored under ``key`` (uint8, BGR for colour images); ``KeyError`` when it is missing."""
    env = _open_readonly(lmdb_path)
    try:
        with env.begin(write=False) as txn:
            buf = txn.get(key.encode('ascii'))
    finally:
        env.close()
    if buf is None:
        raise KeyError(f'{key!r} is not in {lmdb_path}')
    return decode_png(buf, flags)


def check_lmdb(lmdb_path: str) -> list[MetaInfo]:
    """Check that a folder is a complete BasicSR LMDB and return its ``meta_info.txt`` entries.

    Complete means: ``data.mdb`` and ``meta_info.txt`` exist, ``data.mdb`` is as long as its header says
    (:func:`check_lmdb_structure`), every meta_info line parses, its keys are unique, and they are exactly the keys
    stored in the database. Image contents are not decoded.

    Args:
        lmdb_path (str): The ``.lmdb`` folder.

    Returns:
        list[MetaInfo]: The entries, in file order.

    Raises:
        ValueError: With a one-line reason when the database is not complete.
    """
    for name in ('data.mdb', META_INFO):
        if not osp.isfile(osp.join(lmdb_path, name)):
            raise ValueError(f'{lmdb_path}: {name} is missing')
    check_lmdb_structure(lmdb_path)
    entries = read_meta_info(lmdb_path)
    meta_keys = [entry.key for entry in entries]
    if len(set(meta_keys)) != len(meta_keys):
        raise ValueError(f'{lmdb_path}: {META_INFO} lists a key more than once')
    stored = lmdb_keys(lmdb_path)
    only_stored, only_listed = key_differences(stored, meta_keys)
    if only_stored or only_listed:
        raise ValueError(f'{lmdb_path}: {len(stored)} keys stored but {len(meta_keys)} listed in {META_INFO}, '
                         f'{len(only_stored) + len(only_listed)} differ')
    return entries


@dataclasses.dataclass
class PairInfo:
    """What a verified HR / LR pair holds."""
    count: int
    scale: int


def _decode_problems(lmdb_path: str, entries: dict[str, MetaInfo]) -> list[str]:
    problems = []
    items = iter_lmdb_items(lmdb_path)
    for key, buf in tqdm(items, total=len(entries), unit='img', desc=f'verify {lmdb_path}', disable=None):
        img = decode_png(buf)
        if img is None:
            problems.append(f'{lmdb_path}: entry {key} does not decode as an image')
        elif image_shape(img) != entries[key].shape:
            problems.append(f'{lmdb_path}: entry {key} is {image_shape(img)}, meta_info.txt says {entries[key].shape}')
    return problems


def check_images(lmdb_path: str, decode: bool = True) -> dict[str, MetaInfo]:
    """Check one database: complete, and (with ``decode``) every entry decodes to the shape meta_info.txt gives.

    Args:
        lmdb_path (str): The ``.lmdb`` folder.
        decode (bool): Decode every entry (else only the structure is checked). Default: True.

    Returns:
        dict[str, MetaInfo]: meta_info.txt's entries by key.

    Raises:
        VerifyError: Listing the problems.
    """
    try:
        entries = {entry.key: entry for entry in check_lmdb(lmdb_path)}
    except (ValueError, OSError, lmdb.Error) as error:
        raise VerifyError([f'{lmdb_path}: {error}' if lmdb_path not in str(error) else str(error)]) from None
    problems = []
    if decode:
        try:
            problems = _decode_problems(lmdb_path, entries)
        except lmdb.Error as error:
            problems.append(f'{lmdb_path}: reading failed ({error})')
    if problems:
        raise VerifyError(problems)
    return entries


def _pair_problems(hr: dict[str, MetaInfo], lr: dict[str, MetaInfo], scale: int) -> list[str]:
    only_hr, only_lr = key_differences(sorted(hr), sorted(lr))
    if only_hr or only_lr:
        example = (only_hr or only_lr)[0]
        return [f'the key sets differ: {len(only_hr)} key(s) only in HR, {len(only_lr)} only in LR (e.g. {example})']
    problems = []
    for key in sorted(hr):
        (hh, hw, hc), (lh, lw, lc) = hr[key].shape, lr[key].shape
        if (hh, hw, hc) != (lh * scale, lw * scale, lc):
            problems.append(f'{key}: HR {hh}x{hw}x{hc} is not {scale} x LR {lh}x{lw}x{lc}')
    return problems


def check_lmdb_pair(hr_path: str, lr_path: str, scale: Optional[int] = None, decode: bool = True) -> PairInfo:
    """Check an HR / LR pair of databases (see the module docstring).

    Args:
        hr_path (str): The HR ``.lmdb`` folder.
        lr_path (str): The LR ``.lmdb`` folder.
        scale (int | None): Expected scale; None takes the ratio of the first pair. Default: None.
        decode (bool): Decode every entry. Default: True.

    Returns:
        PairInfo: Number of pairs and the scale.

    Raises:
        VerifyError: Listing the problems.
    """
    metas, problems = [], []
    for path in (hr_path, lr_path):
        try:
            metas.append(check_images(path, decode))
        except VerifyError as error:
            problems += error.problems
    if problems:
        raise VerifyError(problems)
    hr, lr = metas
    if scale is None:
        key = min(set(hr) & set(lr), default=None)
        scale = hr[key].shape[0] // max(lr[key].shape[0], 1) if key is not None else 1
    problems = _pair_problems(hr, lr, scale)
    if problems:
        raise VerifyError(problems)
    return PairInfo(len(hr), scale)
