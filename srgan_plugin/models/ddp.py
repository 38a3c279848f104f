"""DistributedDataParallel on GPUs and CPUs, SyncBatchNorm, and validation sharded across ranks."""
from __future__ import annotations

import contextlib
from os import path as osp
from typing import Any, Iterator, Sized, cast

import torch
from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from srgan_plugin.base.distributed import gather_objects, rank, world_size
from srgan_plugin.models.basicsr_api import BasicSRModelAPI


def shard(dataloader: DataLoader, index: int, count: int) -> DataLoader:
    """This rank's images of a validation loader: ``index, index + count, ...`` (batch size 1, in order)."""
    dataset = dataloader.dataset
    size = len(cast(Sized, dataset))
    return DataLoader(Subset(dataset, range(index, size, count)), batch_size=1, shuffle=False, num_workers=0)


class DistributedMixin(BasicSRModelAPI):
    """BasicSR model pieces that work under ``--launcher pytorch|slurm`` on NCCL and gloo.

    - ``model_to_device``: DDP with ``device_ids`` only on CUDA (BasicSR always passes a CUDA device), after
      converting BatchNorm to SyncBatchNorm when the option ``sync_bn: true`` is set (top level of the option
      file, next to BasicSR's ``find_unused_parameters``; GPU only, ignored with a warning on CPU).
    - ``dist_validation``: every rank validates every ``world_size``-th image with the *unwrapped* networks (no
      collective inside, so unequal shares cannot deadlock), then the per-image metrics are gathered and averaged
      in image order, which gives exactly the single-process numbers. BasicSR's runs everything on rank 0 while
      the other ranks wait in their next collective until it times out.
    """

    def model_to_device(self, net: nn.Module) -> nn.Module:
        opt = self.opt
        net = net.to(self.device)
        if opt['dist']:
            on_cuda = self.device.type == 'cuda'
            if opt.get('sync_bn', False) and on_cuda:
                net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
            elif opt.get('sync_bn', False):
                get_root_logger().warning('sync_bn: true is ignored on CPU (torch\'s SyncBatchNorm needs CUDA): '
                                          'each process normalises with its own batch statistics.')
            device_ids = [torch.cuda.current_device()] if on_cuda else None
            return DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=opt.get('find_unused_parameters', False))
        if opt['num_gpu'] > 1:
            return DataParallel(net)
        return net

    @contextlib.contextmanager
    def unwrapped_networks(self) -> Iterator[None]:
        """Inside the block ``net_g`` / ``net_d`` are the bare modules (no DDP forward, so no collective)."""
        wrapped = {name: getattr(self, name) for name in ('net_g', 'net_d') if hasattr(self, name)}
        for name, net in wrapped.items():
            setattr(self, name, self.get_bare_model(net))
        try:
            yield
        finally:
            for name, net in wrapped.items():
                setattr(self, name, net)

    def dist_validation(self, dataloader: DataLoader, current_iter: int, tb_logger: Any, save_img: bool) -> None:
        dataset_name = getattr(dataloader.dataset, 'opt')['name']  # BasicSR's datasets keep their options
        metrics = self.opt['val'].get('metrics') or {}
        with self.unwrapped_networks():
            mine = [(rank() + i * world_size(), self._validate_one(data, current_iter, dataset_name, save_img))
                    for i, data in enumerate(shard(dataloader, rank(), world_size()))]
        if not metrics:
            return
        per_image = sorted(pair for part in gather_objects(mine) for pair in part)
        self._initialize_best_metric_results(dataset_name)
        self.metric_results = {}
        for name in metrics:
            total = 0
            for _, values in per_image:  # image order and BasicSR's accumulation: bit-identical averages
                total += values[name]
            self.metric_results[name] = total / len(per_image)
            self._update_best_metric_result(dataset_name, name, self.metric_results[name], current_iter)
        self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    def _validate_one(self, data: dict[str, Any], current_iter: int, dataset_name: str,
                      save_img: bool) -> dict[str, float]:
        """Run one validation image; save it like BasicSR does; return its metrics."""
        img_name = osp.splitext(osp.basename(data['lq_path'][0]))[0]
        self.feed_data(data)
        self.test()
        visuals = self.get_current_visuals()
        metric_data = {'img': tensor2img([visuals['result']])}
        if 'gt' in visuals:
            metric_data['img2'] = tensor2img([visuals['gt']])
            del self.gt
        del self.lq, self.output
        if save_img:
            imwrite(metric_data['img'], self._visualization_path(img_name, dataset_name, current_iter))
        metrics = self.opt['val'].get('metrics') or {}
        return {name: calculate_metric(metric_data, metric_opt) for name, metric_opt in metrics.items()}

    def _visualization_path(self, img_name: str, dataset_name: str, current_iter: int) -> str:
        opt = self.opt
        if opt['is_train']:
            return osp.join(opt['path']['visualization'], img_name, f'{img_name}_{current_iter}.png')
        suffix = opt['val'].get('suffix') or opt['name']
        return osp.join(opt['path']['visualization'], dataset_name, f'{img_name}_{suffix}.png')
