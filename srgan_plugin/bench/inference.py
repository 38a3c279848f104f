"""Section ``infer``: generator inference speed in output megapixels per second, the plugin's SRResNet (as trained,
with BatchNorm folded, in fp32 and reduced precision) vs BasicSR's MSRResNet, batch 1, eval mode, no gradients,
timed interleaved."""
from __future__ import annotations

from typing import Any

import torch
from basicsr.archs.srresnet_arch import MSRResNet
from torch import nn

from srgan_plugin.archs import SRResNet
from srgan_plugin.bench.measure import count_flops, interleaved
from srgan_plugin.inference.bn_fold import fold_batchnorm

SCALE = 4


def networks(device: torch.device) -> list[tuple[str, str, nn.Module, torch.dtype]]:
    """(model, form, network, dtype) rows: fp32 for all, plus bf16 (and fp16 on CUDA) for the folded SRResNet."""
    ours = SRResNet(upscale=SCALE).eval()
    rows = [('plugin SRResNet', 'as trained (BatchNorm)', ours, torch.float32),
            ('plugin SRResNet', 'BatchNorm folded', fold_batchnorm(ours), torch.float32),
            ('BasicSR MSRResNet', 'as shipped', MSRResNet(upscale=SCALE).eval(), torch.float32)]
    reduced = [torch.bfloat16] + ([torch.float16] if device.type == 'cuda' else [])
    rows += [('plugin SRResNet', 'BatchNorm folded', fold_batchnorm(ours), dtype) for dtype in reduced]
    return [(name, form, net.to(device=device, dtype=dtype).requires_grad_(False), dtype)
            for name, form, net, dtype in rows]


def run(device: torch.device, size: int, warmup: int, repeats: int) -> list[dict[str, Any]]:
    rows = []
    megapixels = (size * SCALE)**2 / 1e6
    lr = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    nets = networks(device)
    calls = [(lambda _, net=net, x=lr.to(dtype): net(x)) for _, _, net, dtype in nets]
    with torch.inference_mode():
        flops = [count_flops(lambda call=call: call(0)) for call in calls]
        timings = interleaved(calls, device, warmup, repeats)
    for index, ((name, form, _, dtype), timing) in enumerate(zip(nets, timings)):
        rows.append({
            'model': name,
            'form': form,
            'dtype': str(dtype).removeprefix('torch.'),
            'lr_size': size,
            'seconds': timing.median,
            'spread': timing.spread,
            'megapixels_per_s': megapixels / timing.median,
            'flops': flops[index],
            'flops_per_s': flops[index] / timing.median
        })
    base = next(r['megapixels_per_s'] for r in rows if r['model'].startswith('BasicSR'))
    print(f'## Inference, {size}x{size} -> {size * SCALE}x{size * SCALE}, batch 1 (median of {repeats})\n')
    print('| model | form | dtype | output MP/s | vs MSRResNet fp32 | counted GFLOP | GFLOP/s |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        r['vs_basicsr'] = r['megapixels_per_s'] / base
        print(f'| {r["model"]} | {r["form"]} | {r["dtype"]} | {r["megapixels_per_s"]:.3f} | {r["vs_basicsr"]:.2f}x | '
              f'{r["flops"] / 1e9:.1f} | {r["flops_per_s"] / 1e9:.1f} |')
    print(flush=True)
    return rows
