"""Timing with warm-up and medians, counted FLOPs, and the device line every reported number carries."""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch.utils.flop_counter import FlopCounterMode

from srgan_plugin.prepare.pipeline import usable_cores

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, FLOP/s, matched against the device name.
BF16_PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    ('H100 PCIe', 756e12),
    ('H100 NVL', 835e12),
    ('H100', 989e12),  # SXM
    ('H200', 989e12),
    ('GH200', 989e12),
    ('A100', 312e12),
    ('L40S', 362e12),
    ('L4', 121e12),
    ('A10', 125e12),
    ('RTX 4090', 165e12),
)


@dataclass(frozen=True)
class Timing:
    """Seconds per call over ``len(samples)`` timed calls after the warm-up."""
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median of the timed calls: how noisy the machine was."""
        return (max(self.samples) - min(self.samples)) / self.median


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[int], object], device: torch.device, warmup: int, repeats: int) -> Timing:
    """Call ``fn(i)`` ``warmup`` times untimed (compilation, cuDNN autotuning, allocator), then ``repeats`` times,
    each timed on its own with a device synchronisation on both ends."""
    for i in range(warmup):
        fn(i + 1)
    samples = []
    for i in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn(warmup + i + 1)
        synchronize(device)
        samples.append(time.perf_counter() - start)
    return Timing(tuple(samples))


def interleaved(calls: list[Callable[[int], object]], device: torch.device, warmup: int, repeats: int) -> list[Timing]:
    """Warm every call up, then time one call of each in turn, ``repeats`` rounds, so that a machine that slows
    down for a while slows every call alike."""
    for call in calls:
        time_calls(call, device, warmup, 0)
    rounds = [[time_calls(call, device, 0, 1).samples[0] for call in calls] for _ in range(repeats)]
    return [Timing(tuple(samples)) for samples in zip(*rounds)]


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as torch counts them (convolutions and matmuls, forward and backward; one
    multiply-add = 2 FLOPs). Elementwise ops, normalisation and the optimizer are not counted."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def bf16_peak(device: torch.device) -> Optional[float]:
    """The GPU's dense bf16 peak FLOP/s from :data:`BF16_PEAK_FLOPS`, or None (CPUs and unknown GPUs)."""
    if device.type != 'cuda':
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in BF16_PEAK_FLOPS if key in name), None)


def cpu_model() -> str:
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def host() -> str:
    """CPU model, usable cores and the 1-minute load average, in one line."""
    return f'{cpu_model()}, {usable_cores()} cores usable, load average {os.getloadavg()[0]:.2f}'


def machine(device: Optional[torch.device] = None) -> str:
    """One line naming what the numbers were measured on: the GPU, else the CPU, cores, load; torch's version."""
    description = host()
    if device is not None and device.type == 'cuda':
        description = f'{torch.cuda.get_device_name(device)} (host: {description})'
    return f'{description}; torch {torch.__version__}, {torch.get_num_threads()} threads'
