"""The parallel part of dataset preparation: one task per input image, workers crop / downscale / encode, the parent
process alone writes (LMDB is single-writer; :func:`pair_writers`).

Each worker reads one image (:func:`srgan_plugin.prepare.imgops.read_image`, or the job's own reader), mod-crops it
to the scale, cuts its sub-images (:func:`srgan_plugin.prepare.imgops.subimage_boxes`, or keeps it whole), makes each
LR counterpart -- MATLAB-style bicubic of the HR sub-image, or the crop at the matching coordinates of a given LR file
(HR box ``(y, x, h, w)`` <-> LR box ``(y, x, h, w) / scale``) -- and returns them PNG-encoded. Workers are started
by a ``forkserver`` that has imported this module once (``spawn`` where there is none; never a plain ``fork`` of the
parent, which may hold threads and an open LMDB), and run torch with one thread each: ``imresize`` is many tiny torch
operations, which intra-op threads only slow down.

Memory stays bounded: at most ``2 * workers`` images are in flight (submitted and not yet written), results are
written in input order as they come, and nothing else of the dataset is kept.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.pool
import multiprocessing.resource_tracker
import os
import signal
import threading
import time
from os import path as osp
from typing import Callable, Iterable, Iterator, NamedTuple, Optional, Sequence

import cv2
import numpy as np
import torch
from tqdm import tqdm

from srgan_plugin.base.errors import BadImage, PrepareError
from srgan_plugin.prepare.imgops import (bicubic_downscale, mod_crop, read_image, subimage_boxes, subimage_key,
                                         torch_threads)
from srgan_plugin.prepare.lmdb_io import LmdbWriter, encode_png

Shape = tuple[int, int, int]


def usable_cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_workers() -> int:
    """``min(4, CPUs this process may use)``: the default of ``--workers``."""
    return max(1, min(4, usable_cores()))


class CropSpec(NamedTuple):
    """Sub-image cropping: the arguments of :func:`srgan_plugin.prepare.imgops.subimage_boxes` after the size.

    Attributes:
        crop_size (int): Side of the square HR sub-images (smaller images are kept whole).
        step (int): Distance between consecutive crops.
        thresh_size (int): A last crop flush with the border is added when more than this many pixels would be left
            over.
    """
    crop_size: int
    step: int
    thresh_size: int


@dataclasses.dataclass(frozen=True)
class Job:
    """One input image and what to make of it (picklable: it is sent to a worker process).

    Attributes:
        path (str): The HR image file (what ``read`` reads).
        key (str): Its key / output name; sub-images are ``{key}_s001``, ``{key}_s002``, ...
        scale (int): SR scale.
        compress_level (int): PNG compression level of the outputs.
        min_size (int): Images whose mod-cropped height or width is smaller are refused.
        crop (CropSpec | None): Sub-image cropping; None keeps the (mod-cropped) image whole, named ``key``.
        lr_path (str | None): LR image to cut at the matching coordinates; None makes the LR with MATLAB-style bicubic.
        part (str): The part of the dataset its pairs go to (:func:`entry`); '' for a dataset of one part.
        read (Callable[[str], tuple[np.ndarray, list[str]]]): Reads ``path`` as an 8-bit BGR image and says what was
            converted; a module-level function. Default: :func:`srgan_plugin.prepare.imgops.read_image`.
    """
    path: str
    key: str
    scale: int
    compress_level: int
    min_size: int
    crop: Optional[CropSpec] = None
    lr_path: Optional[str] = None
    part: str = ''
    read: Callable[[str], tuple[np.ndarray, list[str]]] = read_image


@dataclasses.dataclass
class Pair:
    """An encoded HR / LR pair, ready to be stored."""
    key: str
    hr: bytes
    hr_shape: Shape
    lr: bytes
    lr_shape: Shape


@dataclasses.dataclass
class ImageResult:
    """What a worker made of one :class:`Job`: its pairs, the conversions applied, or why it was refused."""
    path: str
    pairs: list[Pair]
    notes: list[str]
    error: Optional[str] = None


def _official_lr(job: Job, hr_size: tuple[int, int], original: tuple[int, int]) -> np.ndarray:
    """The LR file of ``job``, cropped like its mod-cropped HR; its size must be HR / scale (floor or ceil)."""
    lr, _ = read_image(job.lr_path)
    h, w = original
    s = job.scale
    if not (h // s <= lr.shape[0] <= -(-h // s) and w // s <= lr.shape[1] <= -(-w // s)):
        raise BadImage(f'its LR file {osp.basename(job.lr_path)} is {lr.shape[0]}x{lr.shape[1]}, not '
                       f'{h // s}x{w // s} (HR {h}x{w} / {s})')
    return lr[:hr_size[0] // s, :hr_size[1] // s]


def _pairs(job: Job, hr: np.ndarray,
           lr: Optional[np.ndarray]) -> Iterator[tuple[str, np.ndarray, Optional[np.ndarray]]]:
    """``(key, HR crop, LR crop or None)`` for every sub-image of a mod-cropped image (LR None: make it)."""
    if job.crop is None:
        yield job.key, hr, lr
        return
    s = job.scale
    for index, (y, x, h, w) in enumerate(subimage_boxes(*hr.shape[:2], *job.crop), start=1):
        lr_crop = None if lr is None else lr[y // s:(y + h) // s, x // s:(x + w) // s]
        yield subimage_key(job.key, index), hr[y:y + h, x:x + w], lr_crop


def _process(job: Job) -> ImageResult:
    img, notes = job.read(job.path)
    hr = mod_crop(img, job.scale)
    limit = max(2 * job.scale, job.min_size)
    if min(hr.shape[:2]) < limit:
        raise BadImage(f'{img.shape[0]}x{img.shape[1]} px is too small (under {limit} px on a side after '
                       f'cropping to a multiple of {job.scale})')
    lr = None if job.lr_path is None else _official_lr(job, hr.shape[:2], img.shape[:2])
    pairs = []
    for key, hr_crop, lr_crop in _pairs(job, hr, lr):
        if lr_crop is None:
            lr_crop = bicubic_downscale(hr_crop, job.scale)
        pairs.append(
            Pair(key, encode_png(hr_crop, job.compress_level), hr_crop.shape, encode_png(lr_crop, job.compress_level),
                 lr_crop.shape))
    return ImageResult(job.path, pairs, notes)


def process_image(job: Job) -> ImageResult:
    """Read, mod-crop, cut and downscale one image, returning PNG-encoded pairs (runs in the worker processes).

    Args:
        job (Job): The image and the settings.

    Returns:
        ImageResult: The pairs, or an ``error`` (one line: why the file was refused) and no pairs.
    """
    try:
        return _process(job)
    except BadImage as error:
        return ImageResult(job.path, [], [], str(error))


def _init_worker() -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])  # blocked by _pool until now


HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _pool(workers: int) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of ``workers`` processes that never see Ctrl-C, terminated when the block is left.

    Ctrl-C sends SIGINT to every process of the terminal's foreground group: the forkserver while it imports this
    module, and each worker before its initializer has run, would print a ``KeyboardInterrupt`` traceback, and this
    process, interrupted inside ``Pool()``, would leave workers behind that fail with tracebacks of their own. So
    while the pool starts, SIGINT is blocked (the forkserver and the workers inherit the mask; the workers ignore
    SIGINT, then unblock it), and this process holds SIGINT and SIGTERM and delivers them once inside the block,
    where leaving it terminates the pool. The resource tracker is started first: starting it unblocks SIGINT.
    """
    multiprocessing.resource_tracker.ensure_running()
    held: list[int] = []
    in_main = threading.current_thread() is threading.main_thread()  # handlers can only be set there
    handlers = {signum: signal.signal(signum, lambda n, _: held.append(n)) for signum in HELD_SIGNALS} if in_main \
        else {}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])

    def release() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a SIGINT pending here is held
        for signum, handler in handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    try:
        pool = _pool_context().Pool(workers, initializer=_init_worker)
    except BaseException:
        release()
        raise
    with pool:
        release()
        for signum in dict.fromkeys(held):
            signal.raise_signal(signum)  # e.g. KeyboardInterrupt, raised here
        yield pool


def _pool_context() -> multiprocessing.context.BaseContext:
    """``forkserver`` with this module preloaded where there is one (imports torch and basicsr once, not once per
    worker), else ``spawn``; never a plain ``fork`` of this possibly multi-threaded process."""
    if 'forkserver' in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context('forkserver')
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context('spawn')


def imap_bounded(func: Callable, items: Iterable, workers: int) -> Iterator:
    """``map(func, items)`` in ``workers`` processes, in order, with at most ``2 * workers`` items in flight.

    With ``workers <= 1`` it runs in this process (with one torch thread). Leaving the iteration early (an error,
    Ctrl-C) terminates the workers; Ctrl-C reaches this process only (:func:`_pool`).

    Args:
        func (Callable): A picklable, module-level function of one argument.
        items (Iterable): Its arguments (picklable).
        workers (int): Number of processes.

    Yields:
        The results, in the order of ``items``.
    """
    if workers <= 1:
        with torch_threads(1):
            yield from map(func, items)
        return
    with _pool(workers) as pool:
        pending: collections.deque = collections.deque()
        for item in items:
            pending.append(pool.apply_async(func, (item, )))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


@dataclasses.dataclass
class PipelineReport:
    """What :func:`run_pipeline` did.

    Attributes:
        images (int): Images that gave pairs.
        pairs (int): Pairs written.
        skipped (list[tuple[str, str]]): ``(file, reason)`` of the refused files.
        converted (dict[str, list[str]]): Files per conversion applied (``'grayscale'``, ``'alpha'``, ``'16-bit'``).
        smallest (tuple[str, int, int] | None): ``(key, h, w)`` of the HR image / sub-image with the shortest side.
        parts (dict[str, int]): Pairs written per part of the dataset.
        seconds (float): Wall time.
        workers (int): Processes used.
    """
    images: int = 0
    pairs: int = 0
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    converted: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    smallest: Optional[tuple[str, int, int]] = None
    parts: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.
    workers: int = 1

    def add(self, result: ImageResult, part: str = '') -> None:
        """Count a worker's result for ``part`` (the caller has stored its pairs)."""
        self.images += 1
        self.pairs += len(result.pairs)
        self.parts[part] = self.parts.get(part, 0) + len(result.pairs)
        for note in result.notes:
            self.converted.setdefault(note, []).append(result.path)
        for pair in result.pairs:
            if self.smallest is None or min(pair.hr_shape[:2]) < min(self.smallest[1:]):
                self.smallest = (pair.key, pair.hr_shape[0], pair.hr_shape[1])


def run_pipeline(jobs: Sequence[Job],
                 put: Callable[[str, Pair], None],
                 workers: int,
                 stop_on_bad: bool = False,
                 desc: str = 'images') -> PipelineReport:
    """Process ``jobs`` in parallel and hand every pair to ``put`` in this process, with a progress bar (and ETA).

    Args:
        jobs (Sequence[Job]): The images.
        put (Callable[[str, Pair], None]): Stores one pair in its job's part (called in this process only), e.g. the
            function :func:`pair_writers` yields.
        workers (int): Worker processes (1: none, all in this process).
        stop_on_bad (bool): Raise at the first refused file instead of listing it and going on. Default: False.
        desc (str): Progress bar label. Default: 'images'.

    Returns:
        PipelineReport: Counts, refused files and conversions.

    Raises:
        PrepareError: With ``stop_on_bad``, for the first refused file.
    """
    workers = max(1, min(workers, len(jobs)))
    report = PipelineReport(workers=workers)
    start = time.perf_counter()
    results = imap_bounded(process_image, jobs, workers)
    # closing: on an error the workers are stopped here and now, not by the garbage collector at interpreter exit
    with contextlib.closing(results), tqdm(total=len(jobs), unit='img', desc=desc, disable=None) as pbar:
        for job, result in zip(jobs, results):
            if result.error is not None:
                if stop_on_bad:
                    raise PrepareError(f'{result.path}: {result.error}; fix or remove it in a copy of the input '
                                       'folder, or leave out --on-bad-file stop to skip such files')
                report.skipped.append((result.path, result.error))
            else:
                for pair in result.pairs:
                    put(job.part, pair)
                report.add(result, job.part)
            pbar.update(1)
            pbar.set_postfix(pairs=report.pairs, skipped=len(report.skipped), refresh=False)
    report.seconds = time.perf_counter() - start
    return report


def entry(part: str, side: str) -> str:
    """The layout name of one side (``hr`` or ``lr``) of a dataset's part: ``hr``, or ``train_hr`` for ``train``."""
    return f'{part}_{side}' if part else side


class PngFolderWriter:
    """Writes images as ``{key}.png`` files into a new folder, as :class:`LmdbWriter` stores them in an LMDB.

    Args:
        folder (str): The folder to create.
    """

    def __init__(self, folder: str) -> None:
        os.makedirs(folder)
        self.folder = folder

    def put_bytes(self, key: str, img_bytes: bytes, shape: tuple[int, int, int]) -> None:
        """Write already PNG-encoded bytes as ``{key}.png`` (``shape`` is not needed in a folder)."""
        with open(osp.join(self.folder, f'{key}.png'), 'wb') as f:
            f.write(img_bytes)


@contextlib.contextmanager
def pair_writers(root: str, layout: dict[str, str], compress_level: int) -> Iterator[Callable[[str, Pair], None]]:
    """Context manager: create the HR and LR side of every part of ``layout`` and yield ``put(part, pair)``.

    A side whose path ends with ``.lmdb`` becomes a BasicSR LMDB (its meta_info.txt is written when the block ends
    without error), any other a folder of PNG files. An HR and an LR side of a part hold the same keys.

    Args:
        root (str): The folder the layout's paths are relative to.
        layout (dict[str, str]): ``hr`` and ``lr`` (:func:`entry` names for several parts), other entries ignored.
        compress_level (int): The PNG compression level the pairs were encoded with (recorded in meta_info.txt).

    Yields:
        Callable[[str, Pair], None]: Stores one pair in a part (called in this process only).
    """
    with contextlib.ExitStack() as stack:
        writers = {}
        for name, rel in layout.items():
            path = osp.join(root, rel)
            if name.endswith(('hr', 'lr')):
                writers[name] = stack.enter_context(LmdbWriter(path, compress_level, batch=64)) \
                    if path.endswith('.lmdb') else PngFolderWriter(path)

        def put(part: str, pair: Pair) -> None:
            writers[entry(part, 'hr')].put_bytes(pair.key, pair.hr, pair.hr_shape)
            writers[entry(part, 'lr')].put_bytes(pair.key, pair.lr, pair.lr_shape)

        yield put
