"""The demo pipeline end to end with its literal option files (iterations cut with BasicSR's --force_yml):
prepare demo -> phase 1 -> phase 2 from phase 1's weights -> basicsr.test for both -> comparison image."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from conftest import OPTIONS, REPO, load_options, run

pytestmark = pytest.mark.slow  # the demo pipeline end to end

SHORT = ('train:total_iter=4 val:val_freq=4 logger:print_freq=2 logger:save_checkpoint_freq=4 '
         'datasets:train:num_worker_per_gpu=0 num_gpu=0').split()


def command(module: str, option_file: str, *force_yml: str) -> list[str]:
    return ['-m', module, '-opt', str(OPTIONS / 'demo' / option_file), '--force_yml', *force_yml]


@pytest.fixture(scope='module')
def demo_dir(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp('demo')
    steps = [
        ['-m', 'srgan_plugin.prepare', 'demo'],
        command('basicsr.train', 'train_srresnet_demo.yml', *SHORT),
        command('basicsr.train', 'train_srgan_demo.yml', *SHORT),
        command('basicsr.test', 'test_srresnet_demo.yml', 'num_gpu=0'),
        command('basicsr.test', 'test_srgan_demo.yml', 'num_gpu=0'),
    ]
    for step in steps:
        result = run(step, cwd=cwd)
        assert result.returncode == 0, f'{step}:\n{result.stderr[-3000:]}'
    return cwd


def test_demo_phases_chain(demo_dir):
    p1, p2 = load_options('demo/train_srresnet_demo.yml')['name'], load_options('demo/train_srgan_demo.yml')['name']
    assert (demo_dir / 'experiments' / p1 / 'models' / 'net_g_latest.pth').is_file()
    log = next((demo_dir / 'experiments' / p2).glob('train_*.log')).read_text()
    assert f'Loading SRResNet model from experiments/{p1}/models/net_g_latest.pth' in log
    assert 'l_g_gan:' in log and 'l_d_real:' in log


def test_demo_comparison_image(demo_dir):
    """The Makefile's last steps: the shipped generators on the held-out images, then the comparison picture."""
    for model in ('srresnet', 'srgan'):
        result = run([
            '-m', 'srgan_plugin.upscale', '--model', model, '-i', 'datasets/demo/val/LR_bicubic/X4', '-o',
            f'results/demo_shipped_{model}', '--suffix', ''
        ],
                     cwd=demo_dir)
        assert result.returncode == 0, result.stderr[-3000:]
    out = demo_dir / 'results' / 'demo_comparison.png'
    result = run([
        '-m', 'srgan_plugin.visualize', '--lr', 'datasets/demo/val/LR_bicubic/X4', '--hr', 'datasets/demo/val/HR',
        '--sr', 'demo SRResNet=results/test_demo_SRResNet_x4/visualization/demo_val', '--sr',
        'demo SRGAN=results/test_demo_SRGAN_x4/visualization/demo_val', '--sr',
        'shipped SRResNet=results/demo_shipped_srresnet', '--sr', 'shipped SRGAN=results/demo_shipped_srgan', '-o',
        str(out)
    ],
                 cwd=demo_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(label in result.stdout for label in ('mean PSNR', 'shipped SRResNet', 'shipped SRGAN', 'bicubic'))
    image = cv2.imread(str(out))
    assert image.shape[1] > 6 * 256  # bicubic | demo SRResNet | demo SRGAN | shipped SRResNet | shipped SRGAN | HR
    assert image.shape[0] > 2 * 256  # one row per held-out image


def test_makefile_demo_runs_the_steps_tested_here():
    """The demo steps above are the Makefile's: the same modules, option files and shipped models."""
    makefile = (REPO / 'Makefile').read_text()
    steps = ('-m srgan_plugin.prepare demo', 'train_srresnet_demo.yml', 'train_srgan_demo.yml',
             'test_srresnet_demo.yml', 'test_srgan_demo.yml', 'upscale --model srresnet', 'upscale --model srgan',
             "--sr 'demo SRResNet=results/test_demo_SRResNet_x4/visualization/demo_val'",
             "--sr 'demo SRGAN=results/test_demo_SRGAN_x4/visualization/demo_val'",
             "--sr 'shipped SRResNet=results/demo_shipped_srresnet'", "--sr 'shipped SRGAN=results/demo_shipped_srgan'")
    for step in steps:
        assert step in makefile, step


def test_visualize_refuses_bad_arguments(demo_dir):
    result = run([
        '-m', 'srgan_plugin.visualize', '--lr', 'nowhere', '--hr', 'datasets/demo/val/HR', '--sr', 'X=nowhere', '-o',
        'x.png'
    ],
                 cwd=demo_dir)
    assert result.returncode == 2 and 'expected LABEL=FOLDER with an existing folder' in result.stderr
    assert 'Traceback' not in result.stderr
