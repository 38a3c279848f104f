"""Section ``train``: seconds per ``optimize_parameters`` step, the plugin's phases (with its speed options) vs
BasicSR's ``SRModel`` / ``SRGANModel``, interleaved so that a noisy machine slows every case alike."""
from __future__ import annotations

import gc
from typing import Any, Optional

import torch

from srgan_plugin.bench.cases import Case, build
from srgan_plugin.bench.measure import bf16_peak, count_flops, interleaved

VARIANTS: dict[str, dict[str, Any]] = {
    'fp32': {},
    'bf16': {
        'amp': 'bf16'
    },
    'fp16': {
        'amp': 'fp16'
    },
    'cl': {
        'channels_last': True
    },
    'bf16+cl': {
        'amp': 'bf16',
        'channels_last': True
    },
    'compile': {
        'compile': True
    },
    'bf16+cl+compile': {
        'amp': 'bf16',
        'channels_last': True,
        'compile': True
    },
}


def default_variants(device: torch.device) -> list[str]:
    """fp32 eager (the default), channels_last, bf16 and both; compile too on CUDA (a CPU compiles for minutes)."""
    return ['fp32', 'cl', 'bf16', 'bf16+cl'] + (['bf16+cl+compile'] if device.type == 'cuda' else [])


def cases_for(batch: int, crop: int, variants: list[str]) -> list[Case]:
    plugin = [Case('plugin', phase, batch, crop, VARIANTS[v], v) for phase in (1, 2) for v in variants]
    return plugin + [Case('basicsr', phase, batch, crop) for phase in (1, 2)]


def flops_of(case: Case, device: torch.device) -> int:
    """Counted FLOPs of one fp32 eager step of ``case``'s model (the speed options do the same work)."""
    model = build(Case(case.impl, case.phase, case.batch, case.crop), device)
    model.optimize_parameters(1)
    return count_flops(lambda: model.optimize_parameters(2))


def run_crop(device: torch.device, batch: int, crop: int, variants: list[str], warmup: int,
             repeats: int) -> list[dict[str, Any]]:
    cases = cases_for(batch, crop, variants)
    rows = [{
        'impl': c.impl,
        'phase': c.phase,
        'crop': crop,
        'batch': batch,
        'variant': c.label,
        'unsupported': c.unsupported
    } for c in cases if c.unsupported]
    runnable = [c for c in cases if not c.unsupported]
    models = {case: build(case, device) for case in runnable}
    flops: dict[tuple[str, int], int] = {}
    for case, model in models.items():  # counting is the first warm-up call of each fp32 eager model
        if not case.speed and (case.impl, case.phase) not in flops:
            flops[case.impl, case.phase] = count_flops(lambda: model.optimize_parameters(1))  # noqa: B023
    for case in runnable:
        if (case.impl, case.phase) not in flops:
            flops[case.impl, case.phase] = flops_of(case, device)
    steps = [(lambda i, model=model: model.optimize_parameters(i)) for model in models.values()]
    timings = dict(zip(models, interleaved(steps, device, warmup, repeats)))
    del models, steps
    gc.collect()
    peak = bf16_peak(device)
    for case, timing in timings.items():
        count = flops.get((case.impl, case.phase))
        rows.append({
            'impl': case.impl,
            'phase': case.phase,
            'crop': crop,
            'batch': batch,
            'variant': case.label,
            'seconds': timing.median,
            'spread': timing.spread,
            'samples': list(timing.samples),
            'flops': count,
            'flops_per_s': count / timing.median if count else None,
            'bf16_peak_fraction': count / timing.median / peak if count and peak else None,
        })
    return rows


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """``vs_basicsr``: seconds per step / BasicSR's at the same phase, batch and crop."""
    base = {(r['phase'], r['crop']): r['seconds'] for r in rows if r['impl'] == 'basicsr' and 'seconds' in r}
    for row in rows:
        reference = base.get((row['phase'], row['crop']))
        row['vs_basicsr'] = row['seconds'] / reference if reference and 'seconds' in row else None


def fmt(value: Optional[float], spec: str, missing: str = 'n/a') -> str:
    return missing if value is None else format(value, spec)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        '| crop | phase | model | options | s/step (median) | spread | counted TFLOP/step | TFLOP/s | '
        '% bf16 peak | vs BasicSR |', '|' + '---|' * 10
    ]
    for r in rows:
        model = 'plugin' if r['impl'] == 'plugin' else (
            'BasicSR SRModel (MSRResNet)' if r['phase'] == 1 else 'BasicSR SRGANModel')
        if r.get('unsupported'):
            lines.append(f'| {r["crop"]} | {r["phase"]} | {model} | {r["variant"]} | n/a: {r["unsupported"]} '
                         '| | | | | |')
            continue
        tera = [value / 1e12 if value else None for value in (r['flops'], r['flops_per_s'])]
        peak = 100 * r['bf16_peak_fraction'] if r['bf16_peak_fraction'] else None
        lines.append(f'| {r["crop"]} | {r["phase"]} | {model} | {r["variant"]} | {r["seconds"]:.3f} | '
                     f'{r["spread"]:.0%} | {fmt(tera[0], ".3f")} | {fmt(tera[1], ".3f")} | {fmt(peak, ".1f")} | '
                     f'{fmt(r["vs_basicsr"], ".2f")} |')
    return '\n'.join(lines)


def run(device: torch.device, batch: int, crops: list[int], variants: list[str], warmup: int,
        repeats: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for crop in crops:
        rows += run_crop(device, batch, crop, variants, warmup, repeats)
    add_ratios(rows)
    rows.sort(key=lambda r: (r['crop'], r['phase'], r['impl'] != 'basicsr'))
    print(f'## Training step, batch {batch} (median of {repeats} after {warmup} warm-up, interleaved)\n')
    print(table(rows) + '\n', flush=True)
    return rows


def fastest_step_rate(rows: Optional[list[dict[str, Any]]]) -> Optional[float]:
    """Steps per second of the fastest plugin step measured (what the data loader must keep up with)."""
    times = [r['seconds'] for r in rows or [] if r['impl'] == 'plugin' and 'seconds' in r]
    return 1 / min(times) if times else None
