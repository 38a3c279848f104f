"""The flow the dataset commands (``div2k``, ``folder``, ``benchmark``) share.

1. Check the paths: every input folder exists and holds files; ``--out`` is not inside an input folder and no output
   would land on one (input folders are only ever read).
2. When ``--out`` already holds this command's manifest: reuse it if it was made with the same settings from the same
   input files (names and sizes) and still checks out (:func:`quick_check`), else refuse with the reason.
3. Otherwise build everything in a staging folder (:func:`srgan_plugin.prepare.staging.staged_entries`) with the
   parallel pipeline (:mod:`srgan_plugin.prepare.pipeline`), write ``keys.tsv`` and the manifest, and move the entries
   into ``--out``, the manifest last. Any error (a full disk included) removes the partial output.
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import hashlib
import os
from os import path as osp
from typing import Any, Callable, Optional, Sequence

import lmdb

from srgan_plugin.base.errors import PrepareError, VerifyError
from srgan_plugin.prepare.keys import write_keys_tsv
from srgan_plugin.prepare.lmdb_io import check_lmdb_pair
from srgan_plugin.prepare.pipeline import Job, LmdbPairSink, PipelineReport, PngPairSink, default_workers, run_pipeline
from srgan_plugin.prepare.staging import MANIFEST, read_manifest, staged_entries, write_manifest
from srgan_plugin.version import __version__

SCALES = (2, 3, 4, 8)
DEGRADATION = 'MATLAB bicubic (basicsr.utils.matlab_functions.imresize, antialiasing), rounded to uint8'
POLICY = ('16-bit -> 8-bit (round(v / 257)); grayscale -> 3 equal channels; alpha dropped; BGR PNG; '
          'mod-cropped to the scale (top-left kept)')


def list_images(folder: str) -> list[str]:
    """The candidate image files of ``folder``: every regular, non-hidden file directly in it, sorted by name.

    Sub-folders are not searched. Which files are really images is found out when they are read.

    Args:
        folder (str): An input folder.

    Returns:
        list[str]: The file paths.

    Raises:
        PrepareError: When ``folder`` is not a folder or holds no files (naming its sub-folders, if any).
    """
    if not osp.isdir(folder):
        raise PrepareError(f'{folder} is not a folder; pass the folder that holds the images')
    with os.scandir(folder) as entries:
        entries = sorted((e for e in entries if not e.name.startswith('.')), key=lambda e: e.name)
    files = [e.path for e in entries if e.is_file()]
    if not files:
        raise PrepareError(f'{folder} holds no image files{subfolder_hint(folder)}')
    return files


def subfolder_hint(folder: str) -> str:
    """`` (it has the folders A, B: pass one of them?)``, or '' when ``folder`` has no sub-folders."""
    subdirs = sorted(name for name in os.listdir(folder) if osp.isdir(osp.join(folder, name)) and name[0] != '.')
    return f' (it has the folders {", ".join(subdirs[:6])}: pass one of them?)' if subdirs else ''


def fingerprint(files: Sequence[str]) -> str:
    """SHA-1 of the files' names and sizes: what tells a re-run whether the inputs are those of a finished build."""
    digest = hashlib.sha1()
    for path in files:
        digest.update(f'{osp.basename(path)}\t{os.path.getsize(path)}\n'.encode('utf-8', 'surrogateescape'))
    return digest.hexdigest()


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_paths(out: str, entries: Sequence[str], inputs: Sequence[str]) -> None:
    """Refuse an ``out`` inside an input folder, and outputs that would land on an input folder.

    Args:
        out (str): The destination folder.
        entries (Sequence[str]): Names of the outputs inside ``out``.
        inputs (Sequence[str]): The input folders.

    Raises:
        PrepareError: With the offending paths.
    """
    out_real = osp.realpath(out)
    for folder in inputs:
        real = osp.realpath(folder)
        if _within(out_real, real):
            raise PrepareError(f'--out {out} is inside the input folder {folder}; pass an --out outside it '
                               '(input folders are only read, never written)')
        for name in entries:
            if _within(real, osp.join(out_real, name)):
                raise PrepareError(f'the input folder {folder} is where the output {name} would be written; pass '
                                   'another --out')


@dataclasses.dataclass
class Plan:
    """Everything a dataset command decided before building.

    Attributes:
        kind (str): The command (``div2k``, ``folder``, ``benchmark``); recorded in the manifest.
        out (str): Destination folder (may hold other things).
        layout (dict[str, str]): ``hr`` and ``lr`` (and ``keys`` for LMDB datasets): paths relative to ``out``.
        settings (dict[str, Any]): What a finished build must have been made with to be reused, JSON values.
        jobs (list[Job]): One per input file.
        inputs (list[str]): The input folders.
        lmdb (bool): Write an LMDB pair (else PNG folders).
    """
    kind: str
    out: str
    layout: dict[str, str]
    settings: dict[str, Any]
    jobs: list[Job]
    inputs: list[str]
    lmdb: bool = True

    @property
    def entries(self) -> list[str]:
        """The top-level names the build adds to ``out``, the manifest last."""
        names = []
        for rel in self.layout.values():
            if rel.split('/')[0] not in names:
                names.append(rel.split('/')[0])
        return names + [MANIFEST]

    def remove_hint(self) -> str:
        """``remove A, B and C from OUT or pass --out elsewhere``."""
        return f'remove {", ".join(self.entries)} from {self.out} or pass --out elsewhere'


def quick_check(plan: Plan, manifest: dict[str, Any]) -> None:
    """Check a finished output without decoding it: LMDB structure and HR = scale x LR from meta_info.txt, or for
    PNG folders the same file names in both; and the manifest's count. Raises ``ValueError`` with the reason."""
    hr, lr = (osp.join(plan.out, plan.layout[part]) for part in ('hr', 'lr'))
    if plan.lmdb:
        try:
            count = check_lmdb_pair(hr, lr, plan.settings['scale'], decode=False).count
        except VerifyError as error:
            raise ValueError(error.problems[0]) from None
    else:
        names = [sorted(os.listdir(folder)) if osp.isdir(folder) else [] for folder in (hr, lr)]
        if names[0] != names[1]:
            raise ValueError(f'{plan.layout["hr"]} and {plan.layout["lr"]} hold different file names')
        count = len(names[0])
    if count != manifest.get('count'):
        raise ValueError(f'it holds {count} pairs, its manifest says {manifest.get("count")}')


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``name: A there, B asked; ...`` for the settings that differ (one ``other input files`` for the inputs)."""
    items = []
    for name, value in new.items():
        if old.get(name) != value:
            items.append('other input files' if name in ('fingerprint',
                                                         'files') else f'{name}: {old.get(name)} there, {value} asked')
    return '; '.join(dict.fromkeys(items))


def _check_reusable(plan: Plan, manifest: dict[str, Any]) -> None:
    """Raise ``PrepareError`` unless the finished build at ``plan.out`` is what ``plan`` would make."""
    changed = _differences(manifest.get('settings') or {}, plan.settings)
    if manifest.get('kind') == plan.kind and changed:
        raise PrepareError(f'{plan.out} holds a {plan.kind} dataset made differently ({changed}); '
                           f'{plan.remove_hint()}')
    if manifest.get('kind') != plan.kind or manifest.get('layout') != plan.layout:
        raise PrepareError(f'{plan.out} already holds another prepared dataset ({manifest.get("kind")}: '
                           f'{", ".join(map(str, (manifest.get("layout") or {}).values()))}); {plan.remove_hint()}')
    try:
        quick_check(plan, manifest)
    except (ValueError, KeyError, TypeError, OSError, lmdb.Error) as error:
        raise PrepareError(f'{plan.out} holds a {plan.kind} dataset that does not verify ({error}); '
                           f'{plan.remove_hint()}') from None


def _build(plan: Plan, tmp: str, workers: int, stop_on_bad: bool) -> PipelineReport:
    """Run the pipeline into the staging folder ``tmp`` and write ``keys.tsv`` there."""
    hr, lr = (osp.join(tmp, plan.layout[part]) for part in ('hr', 'lr'))
    sink = LmdbPairSink(hr, lr, plan.settings['compress_level']) if plan.lmdb else PngPairSink(hr, lr)
    with sink:
        report = run_pipeline(plan.jobs, sink.put, workers, stop_on_bad, desc=plan.kind)
    if report.images == 0:
        path, reason = report.skipped[0]
        hints = ''.join(subfolder_hint(folder) for folder in plan.inputs)
        raise PrepareError(f'none of the {len(plan.jobs)} input files is a usable image (e.g. {path}: {reason}); '
                           f'check --hr{hints}')
    if 'keys' in plan.layout:
        write_keys_tsv(
            osp.join(tmp, plan.layout['keys']), [job.key for job in plan.jobs], [job.path for job in plan.jobs])
    return report


def _manifest(plan: Plan, report: PipelineReport) -> dict[str, Any]:
    smallest = None
    if report.smallest is not None:
        smallest = {'key': report.smallest[0], 'hr_size': list(report.smallest[1:])}
    return {
        'kind': plan.kind,
        'scale': plan.settings['scale'],
        'layout': plan.layout,
        'settings': plan.settings,
        'inputs': [osp.abspath(folder) for folder in plan.inputs],
        'count': report.pairs,
        'images': report.images,
        'smallest': smallest,
        'skipped': [dict(file=path, reason=reason) for path, reason in report.skipped],
        'converted': report.converted,
        'degradation': DEGRADATION if plan.settings.get('lr') != 'files' else 'given LR files, cropped',
        'policy': POLICY,
        'workers': report.workers,
        'seconds': round(report.seconds, 2),
        'srgan_plugin': __version__,
    }


@dataclasses.dataclass
class Summary:
    """What :func:`prepare` built (``reused`` False) or found finished; ``str()`` is the report the commands print."""
    plan: Plan
    manifest: dict[str, Any]
    reused: bool

    def __str__(self) -> str:
        m, plan = self.manifest, self.plan
        rate = m['images'] / max(m['seconds'], 1e-9)
        done = (f'built in {m["seconds"]:.1f} s with {m["workers"]} worker(s) ({rate:.1f} images/s).'
                if not self.reused else 'is already complete; nothing to do.')
        head = f'{plan.kind} dataset (X{m["scale"]}) in {plan.out} {done}'
        lines = [
            head, f'  {m["images"]} images -> {m["count"]} HR/LR pairs in {plan.layout["hr"]} and '
            f'{plan.layout["lr"]}' + (f' (key map: {plan.layout["keys"]})' if 'keys' in plan.layout else '')
        ]
        for note, files in sorted(m['converted'].items()):
            lines.append(f'  converted ({note}): {len(files)} file(s), e.g. {osp.basename(files[0])}')
        if m['smallest'] is not None and 'crop_size' in m['settings']:
            key, (h, w) = m['smallest']['key'], m['smallest']['hr_size']
            lines.append(f'  smallest HR sub-image: {key}, {h}x{w} (training crops, gt_size, must not be larger; '
                         '--min-size leaves smaller images out)')
        if m['skipped']:
            lines.append(f'  skipped {len(m["skipped"])} file(s) (--on-bad-file stop to stop at the first):')
            lines.extend(f'    {item["file"]}: {item["reason"]}' for item in m['skipped'])
        return '\n'.join(lines)


def prepare(plan: Plan, workers: int = 1, stop_on_bad: bool = False) -> Summary:
    """Build ``plan`` at ``plan.out``, or reuse the finished build already there (see the module docstring).

    Args:
        plan (Plan): What to build.
        workers (int): Worker processes. Default: 1.
        stop_on_bad (bool): Stop at the first file that is not a usable image instead of listing it. Default: False.

    Returns:
        Summary: The plan, the manifest and whether a finished build was reused.

    Raises:
        PrepareError: For bad input, an output in the way, or a failed write (the partial output is removed).
    """
    check_paths(plan.out, plan.entries, plan.inputs)
    manifest = read_manifest(plan.out) if osp.isdir(plan.out) else None
    if manifest is not None:
        _check_reusable(plan, manifest)
        return Summary(plan, manifest, reused=True)
    try:
        with staged_entries(plan.out, plan.entries) as tmp:
            manifest = _manifest(plan, _build(plan, tmp, workers, stop_on_bad))
            write_manifest(tmp, manifest)
    except lmdb.Error as error:
        raise PrepareError(f'writing the LMDB failed ({error}); the partial output was removed') from error
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise PrepareError(f'no space left on the disk of {plan.out} ({error.strerror}); the partial output was '
                           'removed: free some space or pass --out on another disk') from error
    return Summary(plan, manifest, reused=False)


def command_parser(subparsers: argparse._SubParsersAction, name: str, summary: str, description: str,
                   func: Callable[[argparse.Namespace], None]) -> argparse.ArgumentParser:
    """Register the subcommand ``name`` (``summary``: its line in ``--help``) that runs ``func(args)``."""
    parser = subparsers.add_parser(name, help=summary, description=description)
    parser.set_defaults(func=func)
    return parser


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
    return value


def add_common_arguments(parser: argparse.ArgumentParser,
                         compress_level: int,
                         hr_help: str,
                         out_help: str,
                         out_default: Optional[str] = None,
                         several_hr: bool = False) -> argparse.ArgumentParser:
    """Add the arguments every dataset command has to ``parser``.

    ``--hr`` and ``--out`` (with the command's help texts), ``--scale``, ``--compress-level``, ``--min-size``,
    ``--workers`` and ``--on-bad-file``.

    Args:
        parser (argparse.ArgumentParser): A dataset command's parser.
        compress_level (int): The command's default PNG compression level.
        hr_help (str): Help of ``--hr``.
        out_help (str): Help of ``--out``.
        out_default (str | None): Default of ``--out``; None makes it required. Default: None.
        several_hr (bool): ``--hr`` takes one or more folders. Default: False.

    Returns:
        argparse.ArgumentParser: ``parser``.
    """
    parser.add_argument('--hr', nargs='+' if several_hr else None, required=True, metavar='DIR', help=hr_help)
    parser.add_argument('--out', required=out_default is None, default=out_default, help=out_help)
    parser.add_argument('--scale', type=int, default=4, choices=SCALES, help='SR scale (default: %(default)s)')
    parser.add_argument(
        '--compress-level',
        type=int,
        default=compress_level,
        choices=range(10),
        metavar='0-9',
        help='PNG compression level of the outputs (default: %(default)s)')
    parser.add_argument(
        '--min-size',
        type=int,
        default=0,
        metavar='PX',
        help='leave out images with a side under PX pixels after cropping to a multiple of the scale (default: '
        '%(default)s; images under 2 x scale pixels are always left out)')
    parser.add_argument(
        '--workers',
        type=positive_int,
        default=default_workers(),
        help='worker processes (default: min(4, CPUs) = %(default)s; 1 runs everything in this process)')
    parser.add_argument(
        '--on-bad-file',
        choices=('skip', 'stop'),
        default='skip',
        help='a file that is not a usable image (not an image, too small, an LR file of the wrong size): skip it and '
        'list it at the end, or stop and build nothing (default: %(default)s)')
    return parser


def common_settings(args: argparse.Namespace, files: Sequence[str]) -> dict[str, Any]:
    """The manifest settings every dataset command records: scale, compression, min size, input fingerprint."""
    return {
        'scale': args.scale,
        'compress_level': args.compress_level,
        'min_size': args.min_size,
        'fingerprint': fingerprint(files),
        'files': len(files),
    }


def run_plan(plan: Plan, args: argparse.Namespace) -> Summary:
    """Build ``plan`` with the common arguments and print its summary (the commands' last step)."""
    summary = prepare(plan, args.workers, args.on_bad_file == 'stop')
    print(summary)
    return summary
