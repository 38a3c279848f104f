"""The flow every dataset command (``div2k``, ``folder``, ``benchmark``, ``demo``) goes through: plan, stage, check.

1. Plan (:class:`Plan`): the jobs (one per input image), the layout of the output and the settings. A dataset has one
   HR/LR part (``hr``, ``lr``) or several named ones (``train_hr``, ``train_lr``, ``val_hr``, ...); a part whose path
   ends with ``.lmdb`` is a BasicSR LMDB, any other a folder of PNG files.
2. Check the paths: every input folder exists and holds files; ``--out`` is not inside an input folder and no output
   would land on one (input folders are only ever read).
3. When ``--out`` already holds a manifest: reuse it if it was made with the same settings from the same inputs and
   still checks out (:func:`reuse_problem`), else refuse with the reason. A plan may also ask for an ``--out`` of its
   own (``exclusive``): then anything else there is refused too.
4. Otherwise build everything in a staging folder (:func:`srgan_plugin.prepare.staging.staged_entries`) with the
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

from srgan_plugin.archs.srresnet_arch import SUPPORTED_SCALES
from srgan_plugin.base.errors import PrepareError, UsageError, VerifyError
from srgan_plugin.prepare.keys import KEYS_FILE, assign_keys, write_keys_tsv
from srgan_plugin.prepare.lmdb_io import check_lmdb_pair
from srgan_plugin.prepare.pipeline import (CropSpec, Job, PipelineReport, default_workers, entry, pair_writers,
                                           run_pipeline)
from srgan_plugin.prepare.staging import MANIFEST, read_manifest, staged_entries, write_manifest
from srgan_plugin.version import __version__

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
        kind (str): The command (``div2k``, ``folder``, ``benchmark``, ``demo``); recorded in the manifest.
        out (str): Destination folder (may hold other things, unless ``exclusive``).
        layout (dict[str, str]): The HR and LR side of each part (:func:`srgan_plugin.prepare.pipeline.entry` names)
            and ``keys`` for ``keys.tsv``, if wanted: paths relative to ``out``.
        settings (dict[str, Any]): What a finished build must have been made with to be reused, JSON values; at least
            ``scale`` and ``compress_level``.
        jobs (list[Job]): One per input image.
        inputs (list[str]): The input folders.
        exclusive (bool): ``out`` must be missing, empty or hold this build. Default: False.
        info (Callable[[dict[str, int]], dict[str, Any]] | None): Further manifest entries, from the pairs written per
            part. Default: None.
    """
    kind: str
    out: str
    layout: dict[str, str]
    settings: dict[str, Any]
    jobs: list[Job]
    inputs: list[str]
    exclusive: bool = False
    info: Optional[Callable[[dict[str, int]], dict[str, Any]]] = None

    @property
    def parts(self) -> list[str]:
        """The part names: ``['']`` for a dataset of one part (``hr``, ``lr``), else e.g. ``['train', 'val']``."""
        return [name[:-3] for name in self.layout if name.endswith('hr')]

    @property
    def entries(self) -> list[str]:
        """The top-level names the build adds to ``out``, the manifest last."""
        return list(dict.fromkeys(rel.split('/')[0] for rel in self.layout.values())) + [MANIFEST]

    def sides(self, part: str, root: Optional[str] = None) -> tuple[str, str]:
        """The HR and LR path of ``part``, relative to ``out`` (or under ``root``)."""
        return tuple(
            osp.join(root, self.layout[entry(part, side)]) if root else self.layout[entry(part, side)]
            for side in ('hr', 'lr'))

    def remove_hint(self) -> str:
        """``remove A, B and C from OUT or pass --out elsewhere`` (``remove it ...`` for an exclusive ``out``)."""
        if self.exclusive:
            return 'remove it or pass --out elsewhere'
        return f'remove {", ".join(self.entries)} from {self.out} or pass --out elsewhere'


def quick_check(plan: Plan, manifest: dict[str, Any]) -> None:
    """Check a finished output without decoding it: for each LMDB part its structure and HR = scale x LR from
    meta_info.txt, for each PNG part the same file names on both sides; and the manifest's count. Raises
    ``ValueError`` with the reason."""
    count = 0
    for part in plan.parts:
        hr, lr = plan.sides(part, plan.out)
        if hr.endswith('.lmdb'):
            try:
                count += check_lmdb_pair(hr, lr, plan.settings['scale'], decode=False).count
            except VerifyError as error:
                raise ValueError(error.problems[0]) from None
            continue
        names = [sorted(os.listdir(folder)) if osp.isdir(folder) else [] for folder in (hr, lr)]
        if names[0] != names[1]:
            raise ValueError('{} and {} hold different file names'.format(*plan.sides(part)))
        count += len(names[0])
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


def reuse_problem(plan: Plan, manifest: Optional[dict[str, Any]]) -> Optional[str]:
    """Why the output at ``plan.out`` (its ``manifest``, None when it has none) is not the finished build of
    ``plan``: a phrase that follows the folder's name, e.g. ``is not a finished folder dataset: it does not verify
    (...)``; None when it is that build."""
    if manifest is None:
        return f'is not a finished {plan.kind} dataset (it has no {MANIFEST})'
    changed = _differences(manifest.get('settings') or {}, plan.settings)
    if manifest.get('kind') == plan.kind and changed:
        return f'holds a {plan.kind} dataset for scale {manifest.get("scale")} made differently ({changed})'
    if manifest.get('kind') != plan.kind or manifest.get('layout') != plan.layout:
        return (f'already holds another prepared dataset ({manifest.get("kind")}: '
                f'{", ".join(map(str, (manifest.get("layout") or {}).values()))})')
    try:
        quick_check(plan, manifest)
    except (ValueError, KeyError, TypeError, OSError, lmdb.Error) as error:
        return f'is not a finished {plan.kind} dataset: it does not verify ({error})'
    return None


def _build(plan: Plan, tmp: str, workers: int, stop_on_bad: bool) -> PipelineReport:
    """Run the pipeline into the staging folder ``tmp`` and write ``keys.tsv`` there."""
    with pair_writers(tmp, plan.layout, plan.settings['compress_level']) as put:
        report = run_pipeline(plan.jobs, put, workers, stop_on_bad, desc=plan.kind)
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
        **(plan.info(report.parts) if plan.info else {}),
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
        where = '; '.join('{} and {}'.format(*plan.sides(part)) for part in plan.parts)
        lines = [
            head, f'  {m["images"]} images -> {m["count"]} HR/LR pairs in {where}' +
            (f' (key map: {plan.layout["keys"]})' if 'keys' in plan.layout else '')
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
    manifest = read_manifest(plan.out)
    if manifest is not None or (plan.exclusive and osp.lexists(plan.out) and
                                (not osp.isdir(plan.out) or os.listdir(plan.out))):
        problem = reuse_problem(plan, manifest)
        if problem is not None:
            raise PrepareError(f'{plan.out} {problem}; {plan.remove_hint()}')
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
                         several_hr: bool = False,
                         crop: Optional[CropSpec] = None) -> argparse.ArgumentParser:
    """Add the arguments every dataset command has to ``parser``, and those of the sub-image commands.

    ``--hr`` and ``--out`` (with the command's help texts), ``--scale``, ``--compress-level``, ``--min-size``,
    ``--workers`` and ``--on-bad-file``; with ``crop``, also ``--crop-size``, ``--step`` and ``--thresh-size``.

    Args:
        parser (argparse.ArgumentParser): A dataset command's parser.
        compress_level (int): The command's default PNG compression level.
        hr_help (str): Help of ``--hr``.
        out_help (str): Help of ``--out``.
        out_default (str | None): Default of ``--out``; None makes it required. Default: None.
        several_hr (bool): ``--hr`` takes one or more folders. Default: False.
        crop (CropSpec | None): Defaults of the crop arguments; None: the command has none. Default: None.

    Returns:
        argparse.ArgumentParser: ``parser``.
    """
    parser.add_argument('--hr', nargs='+' if several_hr else None, required=True, metavar='DIR', help=hr_help)
    parser.add_argument('--out', required=out_default is None, default=out_default, help=out_help)
    add_scale_argument(parser)
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
    if crop is not None:
        parser.add_argument(
            '--crop-size',
            type=int,
            default=crop.crop_size,
            help='side of the HR sub-images; smaller images are kept whole (default: %(default)s)')
        parser.add_argument(
            '--step', type=int, default=crop.step, help='distance between sub-images (default: %(default)s)')
        parser.add_argument(
            '--thresh-size',
            type=int,
            default=crop.thresh_size,
            help='add a last sub-image flush with the border when more than this many pixels are left over '
            '(default: %(default)s)')
    return parser


def add_scale_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--scale``: one of the scales the generator supports, default 4."""
    parser.add_argument(
        '--scale', type=int, default=4, choices=SUPPORTED_SCALES, help='SR scale (default: %(default)s)')


def crop_spec(args: argparse.Namespace) -> CropSpec:
    """The crop settings of ``args``, checked against the scale (LR crops must fall on whole LR pixels)."""
    spec = CropSpec(args.crop_size, args.step, args.thresh_size)
    if spec.crop_size % args.scale or spec.step % args.scale:
        raise UsageError(f'--crop-size {spec.crop_size} and --step {spec.step} must be multiples of --scale '
                         f'{args.scale}')
    if spec.crop_size < 2 * args.scale or spec.step < 1 or spec.thresh_size < 0:
        raise UsageError(f'--crop-size must be at least {2 * args.scale}, --step at least 1, --thresh-size at '
                         'least 0')
    return spec


def lmdb_layout(prefix: str, scale: int) -> dict[str, str]:
    """The entries of a sub-image dataset: ``{prefix}_HR_sub.lmdb``, ``{prefix}_LR_bicubic_X{scale}_sub.lmdb``, keys."""
    return {'hr': f'{prefix}_HR_sub.lmdb', 'lr': f'{prefix}_LR_bicubic_X{scale}_sub.lmdb', 'keys': KEYS_FILE}


def dataset_plan(kind: str,
                 args: argparse.Namespace,
                 hr_files: Sequence[str],
                 layout: dict[str, str],
                 crop: Optional[CropSpec] = None,
                 lr_files: Optional[Sequence[str]] = None) -> Plan:
    """The plan of a one-part dataset from the common arguments (``div2k``, ``folder`` and ``benchmark``).

    Args:
        kind (str): The command name.
        args (argparse.Namespace): Parsed arguments (the common ones, ``out``, ``hr`` and ``lr``, if any).
        hr_files (Sequence[str]): The HR files, in order.
        layout (dict[str, str]): ``hr`` and ``lr``, and ``keys`` for an LMDB pair (:func:`lmdb_layout`).
        crop (CropSpec | None): Sub-image cropping (:func:`crop_spec`); None keeps the images whole. Default: None.
        lr_files (Sequence[str] | None): An LR file per HR file, cut at the matching coordinates; None makes the LR
            with MATLAB-style bicubic. Default: None.

    Returns:
        Plan: Ready for :func:`prepare`.
    """
    keys = assign_keys(hr_files, lmdb_safe=layout['hr'].endswith('.lmdb'))
    lr_files = lr_files or [None] * len(hr_files)
    jobs = [
        Job(path, key, args.scale, args.compress_level, args.min_size, crop, lr_path)
        for path, key, lr_path in zip(hr_files, keys, lr_files)
    ]
    files = [*hr_files, *(path for path in lr_files if path)]
    settings = {
        'scale': args.scale,
        'compress_level': args.compress_level,
        'min_size': args.min_size,
        'fingerprint': fingerprint(files),
        'files': len(files),
        **(crop._asdict() if crop else {}),
        'lr': 'files' if lr_files[0] else 'bicubic',
    }
    inputs = (args.hr if isinstance(args.hr, list) else [args.hr]) + ([args.lr] if getattr(args, 'lr', None) else [])
    return Plan(kind, args.out, layout, settings, jobs, inputs)


def run_plan(plan: Plan, args: argparse.Namespace) -> Summary:
    """Build ``plan`` with the common arguments and print its summary (the commands' last step)."""
    summary = prepare(plan, args.workers, args.on_bad_file == 'stop')
    print(summary)
    return summary
