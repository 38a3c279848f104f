"""``python -m srgan_plugin.bench``: its counting and advice, and one tiny end-to-end run of every section."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from launcher import python
from srgan_plugin.bench import data, measure
from srgan_plugin.bench.cases import Case

REPO = Path(__file__).resolve().parents[1]


def test_flops_are_counted_as_two_per_multiply_add():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    assert measure.count_flops(lambda: conv(x)) == 2 * 8 * 3 * 9 * 64
    assert measure.count_flops(lambda: conv(x).sum().backward()) == 3 * 2 * 8 * 3 * 9 * 64  # + grad input, weight


@pytest.mark.parametrize('name,peak', [('NVIDIA H100 80GB HBM3', 989e12), ('NVIDIA H100 PCIe', 756e12),
                                       ('NVIDIA H200', 989e12), ('NVIDIA A100-SXM4-80GB', 312e12), ('Tesla T4', None)])
def test_bf16_peak_by_gpu_name(monkeypatch, name, peak):
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda *_: name)
    assert measure.bf16_peak(torch.device('cuda')) == peak
    assert measure.bf16_peak(torch.device('cpu')) is None


def test_worker_advice():
    rates = {0: 100.0, 1: 90.0, 2: 180.0, 4: 350.0}
    assert data.recommendation(rates, 100.0).startswith('2 worker(s) deliver >=')
    assert data.recommendation(rates, 10.0).startswith('the main process')
    assert 'about 9 workers' in data.recommendation(rates, 500.0)  # best 90 samples/s per worker, 1.5x headroom
    assert data.recommendation(rates, None) is None


def test_basicsr_gan_needs_its_discriminator_sizes():
    assert 'accepts only 128/256' in Case('basicsr', 2, 16, 96).unsupported
    assert Case('basicsr', 2, 16, 128).unsupported is None
    assert Case('plugin', 2, 16, 96).unsupported is None


@pytest.mark.slow
def test_every_section_end_to_end(tmp_path):
    out = tmp_path / 'bench.json'
    cmd = [
        '-m', 'srgan_plugin.bench', '--device', 'cpu', '--batch', '1', '--crops', '128', '--variants',
        'fp32', '--warmup', '0', '--repeats', '1', '--infer-size', '8', '--workers', '0', '--json',
        str(out)
    ]
    result = python(cmd, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '## Training step' in result.stdout and '| 128 | 2 | BasicSR SRGANModel |' in result.stdout
    report = json.loads(out.read_text())
    train = {(r['impl'], r['phase']): r for r in report['train']}
    assert set(train) == {('plugin', 1), ('plugin', 2), ('basicsr', 1), ('basicsr', 2)}
    assert all(r['seconds'] > 0 and r['flops'] > 0 and r['vs_basicsr'] > 0 for r in train.values())
    assert train['basicsr', 2]['vs_basicsr'] == 1.0
    assert train['plugin', 2]['flops'] > train['plugin', 1]['flops']  # the GAN step adds D and VGG
    assert [r['form'] for r in report['infer']][:3] == ['as trained (BatchNorm)', 'BatchNorm folded', 'as shipped']
    assert report['data']['samples_per_s']['level1']['0'] > 0 and 'worker' in report['data']['advice']
    assert list(tmp_path.iterdir()) == [out]  # nothing else written


@pytest.mark.parametrize('args,message', [(['--variants', 'fp64'], "unknown variant 'fp64'"),
                                          (['--sections', 'gpu'], "unknown section 'gpu'"),
                                          (['--crops', '96,100'], '--crops: 100 is not a positive multiple of 16'),
                                          (['--repeats', '0'], 'must be >= 1')])
def test_bad_arguments_are_one_line(capsys, args, message):
    from srgan_plugin.bench.__main__ import main
    with pytest.raises(SystemExit) as info:
        main(['--device', 'cpu', *args])
    text = str(info.value.code) + capsys.readouterr().err
    assert message in text
