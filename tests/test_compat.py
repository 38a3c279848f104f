"""Each workaround in srgan_plugin.compat, against the upstream problem it names."""
from __future__ import annotations

import collections
import os
from os import path as osp

import pytest
import torch

from srgan_plugin import compat


def test_functional_tensor_alias_basicsr_663():
    from torchvision.transforms.functional_tensor import rgb_to_grayscale  # what basicsr/data/degradations.py does

    import basicsr.data.degradations  # noqa: F401  (the module that fails to import without the alias)
    assert rgb_to_grayscale(torch.rand(3, 4, 4)).shape == (1, 4, 4)


def test_working_root_maps_basicsr_install_root_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert compat.working_root(compat.basicsr_install_root()) == str(tmp_path)
    assert compat.working_root('/some/basicsr/checkout') == '/some/basicsr/checkout'


@pytest.mark.parametrize('folder', compat.RUN_FOLDERS)
def test_rebase_run_path(tmp_path, monkeypatch, folder):
    monkeypatch.chdir(tmp_path)
    inside = osp.join(compat.basicsr_install_root(), folder, 'exp')
    assert compat.rebase_run_path(inside) == str(tmp_path / folder / 'exp')
    elsewhere = osp.join(compat.basicsr_install_root(), 'basicsr', 'archs')
    assert compat.rebase_run_path(elsewhere) == elsewhere


def test_parse_options_and_tb_helpers_are_patched_everywhere():
    import basicsr.train
    import basicsr.utils
    import basicsr.utils.options

    def patched(func) -> bool:
        return func.__code__.co_filename == compat.__file__

    for module in (basicsr.utils.options, basicsr.train):
        assert patched(module.parse_options)
    for module in (basicsr.utils, basicsr.train):
        assert patched(module.mkdir_and_rename) and patched(module.init_tb_logger)


def test_tb_logger_keyword_call_is_rebased(tmp_path, monkeypatch):
    import basicsr.utils
    monkeypatch.chdir(tmp_path)
    target = osp.join(compat.basicsr_install_root(), 'tb_logger', 'exp')
    basicsr.utils.mkdir_and_rename(path=target)
    assert (tmp_path / 'tb_logger' / 'exp').is_dir()
    assert not osp.exists(target)


def test_perceptual_loss_l2_basicsr_515(monkeypatch):
    from basicsr.archs import vgg_arch
    from basicsr.losses.basic_loss import PerceptualLoss
    vgg19 = vgg_arch.vgg.vgg19
    monkeypatch.setattr(vgg_arch.vgg, 'vgg19', lambda **kwargs: vgg19(weights=None))  # offline: random weights
    loss = PerceptualLoss({'relu1_1': 1.0}, criterion='l2')
    assert isinstance(loss.criterion, torch.nn.MSELoss) and loss.criterion_type == 'l2'
    x, gt = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    features = loss.vgg(x)['relu1_1'], loss.vgg(gt)['relu1_1']
    percep, _ = loss(x, gt)
    assert torch.allclose(percep, torch.nn.functional.mse_loss(*features))


def test_resume_state_with_scheduler_counter_loads_with_weights_only(tmp_path):
    from basicsr.models.lr_scheduler import MultiStepRestartLR
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    state = {'iter': 1, 'schedulers': [MultiStepRestartLR(optimizer, milestones=[10]).state_dict()]}
    assert isinstance(state['schedulers'][0]['milestones'], collections.Counter)
    torch.save(state, tmp_path / '1.state')
    assert torch.load(tmp_path / '1.state', weights_only=True)['schedulers'][0]['milestones'] == {10: 1}


def test_apply_is_idempotent():
    import basicsr.utils.options
    before = basicsr.utils.options.parse_options
    compat.apply()
    assert basicsr.utils.options.parse_options is before
    assert os.getcwd()  # nothing else to observe: no double wrapping


def test_editable_basicsr_checkout_keeps_its_own_root(tmp_path, monkeypatch):
    """A BasicSR checkout installed with ``pip install -e`` is its own install root: BasicSR's behaviour is kept."""
    monkeypatch.chdir(tmp_path)
    checkout = tmp_path / 'BasicSR'
    monkeypatch.setattr(compat, 'basicsr_install_root', lambda: str(checkout))
    assert compat.working_root(str(checkout)) == str(checkout)
    assert compat.rebase_run_path(str(checkout / 'tb_logger' / 'x')) == str(checkout / 'tb_logger' / 'x')


def test_init_dist_is_replaced_for_gloo_and_local_rank():
    """Patch 5: BasicSR's init_dist (NCCL only, ZeroDivisionError without CUDA) is ours wherever it is bound."""
    import basicsr.utils.dist_util
    import basicsr.utils.options

    from srgan_plugin.base.distributed import init_dist
    assert basicsr.utils.options.init_dist is init_dist and basicsr.utils.dist_util.init_dist is init_dist


def test_missing_option_file_is_one_line(tmp_path):
    """Patch 6: a missing ``-opt FILE`` is one line (BasicSR raises FileNotFoundError from deep in its parser)."""
    with pytest.raises(SystemExit, match='^error: -opt missing.yml: no such option file$'):
        compat._require_option_file(['--launcher', 'none', '-opt', 'missing.yml'])
    (tmp_path / 'there.yml').write_text('name: x\n')
    compat._require_option_file(['-opt', str(tmp_path / 'there.yml')])  # an existing file passes


@pytest.mark.parametrize('text, value', [('-1', -1), ('+2', 2), ('7', 7), ('1e-4', 1e-4), ('-0.5', -0.5), ('.5', 0.5),
                                         ('2.5E3', 2500.0), ('~', None), ('true', True), ('!!float 3', 3.0),
                                         ('[1, 2]', [1, 2]), ('1e-4x', '1e-4x'), ('-', '-'), ('v1.0', 'v1.0')])
def test_force_yml_reads_signed_and_exponent_numbers(text, value):
    """Patch 7: BasicSR's ``--force_yml`` read ``-1`` and ``1e-4`` as text (``str.isdigit``)."""
    import basicsr.utils.options

    parsed = basicsr.utils.options._postprocess_yml_value(text)
    assert parsed == value and type(parsed) is type(value)
