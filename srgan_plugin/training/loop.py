"""BasicSR's training loop (``basicsr/train.py`` of 1.4.2), made fault tolerant.

``python -m basicsr.train`` runs ``train_pipeline`` through the autoload hook (``basicsr/train.py`` keeps its logic in
its ``__main__`` block, where nothing can be patched), and so does ``python -m srgan_plugin.train``, for the option
files of the plugin's models (``srgan_plugin.train.main``). Same options, folders, logs and checkpoints as BasicSR;
in addition:

- resume (``--auto_resume`` or ``path.resume_state``) loads to CPU first (BasicSR maps to ``cuda.current_device()``,
  which crashes without a GPU), verifies the state and its networks and falls back to the previous complete one;
- resume restores every rank's RNG states and the position inside the epoch: on CPU with 0 data workers a run
  killed and resumed ends bit-identical to an uninterrupted one;
- validation is sharded across ranks (``DistributedMixin``) and never changes the training RNG stream;
- ``logger.save_on_signal`` (default true): SIGTERM/SIGINT save a training state, then exit with 128 + signal; the
  DataLoader workers ignore both, so a signal to the whole process group (Ctrl-C, a scheduler) ends the same way;
- ``logger.keep_last_states`` (default null = all): older states and their networks are removed after a save;
- non-finite losses skip steps (``train.max_nonfinite_steps``); errors end with one ``error:`` line (exit statuses:
  :mod:`srgan_plugin.base.errors`).
"""
from __future__ import annotations

import datetime
import itertools
import logging
import math
import signal
import time
from dataclasses import dataclass
from os import path as osp
from typing import Any, Iterator, Optional, Protocol, runtime_checkable

import torch
import torch.distributed as dist
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.prefetch_dataloader import CPUPrefetcher, CUDAPrefetcher
from basicsr.models import build_model
from basicsr.utils import (AvgTimer, MessageLogger, check_resume, get_env_info, get_root_logger, get_time_str,
                           make_exp_dirs, mkdir_and_rename)
from basicsr.utils import options as basicsr_options
from basicsr.utils.options import copy_opt_file, dict2str

from srgan_plugin.base.distributed import gather_objects, is_distributed, leave, rank, world_size
from srgan_plugin.base.errors import CheckpointError, SRGANPluginError, signal_status
from srgan_plugin.base.files import remove_temporaries
from srgan_plugin.models.ema import resolve_ema_warmup
from srgan_plugin.training import state_files
from srgan_plugin.training.exact_resume import ResumableSampler, capture_rng, preserved_rng, restore_rng
from srgan_plugin.training.signals import StopRequest, quiet_workers, workers_start_deaf

Opt = dict[str, Any]


class TrainingModel(Protocol):
    """What the loop calls on the model ``basicsr.models.build_model`` returns: BasicSR's model API."""
    device: torch.device

    def resume_training(self, resume_state: dict[str, Any]) -> None:
        ...

    def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None:
        ...

    def feed_data(self, data: dict[str, Any]) -> None:
        ...

    def optimize_parameters(self, current_iter: int) -> None:
        ...

    def get_current_learning_rate(self) -> list[float]:
        ...

    def get_current_log(self) -> dict[str, Any]:
        ...

    def save(self, epoch: int, current_iter: int) -> None:
        ...

    def validation(self, dataloader: Any, current_iter: int, tb_logger: Any, save_img: bool) -> None:
        ...


@runtime_checkable
class ExactlyResumable(Protocol):
    """A model the loop can resume exactly (the plugin's models: ``srgan_plugin.models.saving``): its save writes
    every file whole or not at all and stores ``loop_state`` (the loop's RNG states and position in the epoch) in the
    training state. Other models are saved with BasicSR's ``save`` and resume at the start of their epoch."""

    def save_with_loop_state(self, epoch: int, current_iter: int, loop_state: dict[str, Any]) -> None:
        ...


@dataclass
class Position:
    """Where training is: ``batch`` counts the batches of ``epoch`` already trained on."""
    epoch: int = 0
    iter: int = 0
    batch: int = 0


def find_resume(opt: Opt, notes: list[str]) -> Optional[dict[str, Any]]:
    """The training state to resume (rank 0 decides, every rank loads the same file), or None to start afresh."""
    explicit = opt['path'].get('resume_state')
    if not (opt['auto_resume'] or explicit):
        return None
    chosen, state = None, None
    if rank() == 0:
        states_dir = opt['path']['training_states'] if opt['auto_resume'] else osp.dirname(explicit)
        stem = osp.basename(explicit or '').split('.')[0]
        newest = int(stem) if explicit and not opt['auto_resume'] and stem.isdigit() else None
        remove_temporaries([states_dir, opt['path']['models']], notes.append)
        labels = state_files.network_labels(opt)
        found = state_files.find_resume_state(states_dir, opt['path']['models'], labels, notes.append, newest)
        chosen, state = found if found else (None, None)
        if explicit and chosen is None:
            raise CheckpointError(f'path.resume_state: {explicit} and every older state are unusable (see above '
                                  'warnings); remove resume_state to start afresh')
    if is_distributed():
        box = [chosen]
        dist.broadcast_object_list(box, src=0)
        chosen = box[0]
    if chosen is None:
        return None
    if state is None:  # the other ranks: rank 0 has already loaded (and verified) it
        state = state_files.load(chosen)
    opt['path']['resume_state'] = chosen
    check_resume(opt, state['iter'])
    return state


class Trainer:
    """One training run: the loop of ``basicsr/train.py``, split into steps that can be saved and resumed."""

    def __init__(self, opt: Opt, logger: logging.Logger, tb_logger: Any, resume: Optional[dict[str, Any]]) -> None:
        self.opt, self.logger, self.tb_logger = opt, logger, tb_logger
        self.train_loader, self.sampler, self.val_loaders, self.total_iters = self._dataloaders()
        self.model: TrainingModel = build_model(opt)
        self.pos, self.rng = Position(), None
        if resume:
            self.model.resume_training(resume)
            self._restore_position(resume)
        self.msg_logger = MessageLogger(opt, self.pos.iter, tb_logger)
        self.data_timer, self.iter_timer = AvgTimer(), AvgTimer()
        self.keep = opt['logger'].get('keep_last_states')
        if not isinstance(self.model, ExactlyResumable):
            logger.warning(f'{type(self.model).__name__} is not a srgan_plugin model: its checkpoints are written in '
                           'place and resume restarts the epoch (BasicSR behaviour).')

    def _dataloaders(self) -> tuple[Any, ResumableSampler, list[Any], int]:
        opt, train_loader, sampler, val_loaders = self.opt, None, None, []
        for phase, dataset_opt in opt['datasets'].items():
            if phase == 'train':
                train_set = build_dataset(dataset_opt)
                ratio = dataset_opt.get('dataset_enlarge_ratio', 1)
                sampler = ResumableSampler(train_set, opt['world_size'], opt['rank'], ratio)
                train_loader = build_dataloader(
                    train_set,
                    dataset_opt,
                    num_gpu=opt['num_gpu'],
                    dist=opt['dist'],
                    sampler=sampler,
                    seed=opt['manual_seed'])
                quiet_workers(train_loader)  # only this process reacts to SIGTERM / Ctrl-C
                per_epoch = math.ceil(len(train_set) * ratio / (dataset_opt['batch_size_per_gpu'] * opt['world_size']))
                self.logger.info(f'Training statistics:\n\tNumber of train images: {len(train_set)}'
                                 f'\n\tDataset enlarge ratio: {ratio}'
                                 f'\n\tBatch size per gpu: {dataset_opt["batch_size_per_gpu"]}'
                                 f'\n\tWorld size (gpu number): {opt["world_size"]}'
                                 f'\n\tRequire iter number per epoch: {per_epoch}'
                                 f'\n\tTotal iters: {int(opt["train"]["total_iter"])}.')
            elif phase.split('_')[0] == 'val':
                val_set = build_dataset(dataset_opt)
                val_loaders.append(
                    build_dataloader(
                        val_set,
                        dataset_opt,
                        num_gpu=opt['num_gpu'],
                        dist=opt['dist'],
                        sampler=None,
                        seed=opt['manual_seed']))
                self.logger.info(f'Number of val images/folders in {dataset_opt["name"]}: {len(val_set)}')
            else:
                raise ValueError(f'Dataset phase {phase} is not recognized.')
        return train_loader, sampler, val_loaders, int(opt['train']['total_iter'])

    def _restore_position(self, resume: dict[str, Any]) -> None:
        self.pos = Position(epoch=resume['epoch'], iter=resume['iter'])
        loop = resume.get('loop')
        batch_size = self.opt['datasets']['train']['batch_size_per_gpu']
        if loop and loop['world_size'] == world_size() and loop['batch_size'] == batch_size:
            self.pos.batch = loop['batch']
            self.rng = loop['rng'][rank()]
        else:
            self.logger.warning('The training state has no loop position for this world size and batch size: '
                                'resuming at the start of its epoch with fresh random streams.')
        self.logger.info(f'Resuming training from epoch: {self.pos.epoch}, iter: {self.pos.iter}.')

    def _batches(self, epoch: int, skip: int) -> Iterator[Any]:
        """The batches of ``epoch`` after the first ``skip`` (restoring the resumed RNG once the loader exists)."""
        self.sampler.set_epoch(epoch)
        self.sampler.start_at(skip * self.train_loader.batch_size)
        with workers_start_deaf():  # creating the loader iterator starts the workers (and draws from torch's RNG)
            if self.opt['datasets']['train'].get('prefetch_mode') == 'cuda':
                prefetcher = CUDAPrefetcher(self.train_loader, self.opt)
            else:
                prefetcher = CPUPrefetcher(self.train_loader)
        if self.rng is not None:
            restore_rng(self.rng)
            self.rng = None
        data = prefetcher.next()
        while data is not None:
            yield data
            data = prefetcher.next()

    def run(self) -> None:
        self.logger.info(f'Start training from epoch: {self.pos.epoch}, iter: {self.pos.iter}')
        start_time = time.time()
        with StopRequest(enabled=self.opt['logger'].get('save_on_signal', True)) as stop:
            for epoch in itertools.count(self.pos.epoch):
                if self.pos.iter >= self.total_iters:
                    break
                skip = self.pos.batch if epoch == self.pos.epoch else 0
                self.pos.epoch, self.pos.batch = epoch, skip
                self.data_timer.start()
                self.iter_timer.start()
                for data in self._batches(epoch, skip):
                    self._train_step(data)
                    self._after_step(stop)
                    if self.pos.iter >= self.total_iters:
                        break
                    self.data_timer.start()
                    self.iter_timer.start()
        consumed = str(datetime.timedelta(seconds=int(time.time() - start_time)))
        self.logger.info(f'End of training. Time consumed: {consumed}')
        self.logger.info('Save the latest model.')
        self.model.save(epoch=-1, current_iter=-1)
        self._validate()

    def _train_step(self, data: Any) -> None:
        self.data_timer.record()
        self.pos.iter += 1
        self.model.update_learning_rate(self.pos.iter, warmup_iter=self.opt['train'].get('warmup_iter', -1))
        self.model.feed_data(data)
        self.model.optimize_parameters(self.pos.iter)
        self.pos.batch += 1
        self.iter_timer.record()
        if self.pos.iter == 1:
            self.msg_logger.reset_start_time()

    def _after_step(self, stop: StopRequest) -> None:
        current_iter, logger_opt = self.pos.iter, self.opt['logger']
        if current_iter % logger_opt['print_freq'] == 0:
            log_vars = {
                'epoch': self.pos.epoch,
                'iter': current_iter,
                'lrs': self.model.get_current_learning_rate(),
                'time': self.iter_timer.get_avg_time(),
                'data_time': self.data_timer.get_avg_time()
            }
            log_vars.update(self.model.get_current_log())
            self.msg_logger(log_vars)
        saved = current_iter % logger_opt['save_checkpoint_freq'] == 0
        if saved:
            self.save()
        if self.opt.get('val') is not None and current_iter % self.opt['val']['val_freq'] == 0:
            self._validate()
        if stop.requested(self.model.device):
            if not saved:
                self.save()
            self.logger.info(f'{stop.name or "Stop requested"} received: training state of iter {current_iter} '
                             'saved; continue with --auto_resume.')
            raise SystemExit(signal_status(stop.signum or signal.SIGTERM))

    def save(self) -> None:
        self.logger.info('Saving models and training states.')
        if not isinstance(self.model, ExactlyResumable):
            self.model.save(self.pos.epoch, self.pos.iter)
            return
        loop = {
            'batch': self.pos.batch,
            'world_size': world_size(),
            'batch_size': self.opt['datasets']['train']['batch_size_per_gpu'],
            'rng': gather_objects(capture_rng())
        }
        self.model.save_with_loop_state(self.pos.epoch, self.pos.iter, loop)
        if self.keep and rank() == 0:
            state_files.prune(self.opt['path']['training_states'], self.opt['path']['models'], int(self.keep),
                              self.logger.info)

    def _validate(self) -> None:
        if self.opt.get('val') is None:
            return
        if len(self.val_loaders) > 1:
            self.logger.warning('Multiple validation datasets are *only* supported by SRModel.')
        with preserved_rng():
            for val_loader in self.val_loaders:
                self.model.validation(val_loader, self.pos.iter, self.tb_logger, self.opt['val']['save_img'])


def setup_run(opt: Opt, args: Any, resumed: bool) -> tuple[logging.Logger, Any]:
    """Folders, the copied option file, the log file and the tensorboard/wandb loggers, as basicsr/train.py."""
    from basicsr.train import init_tb_loggers

    if not resumed:
        make_exp_dirs(opt)
        if opt['logger'].get('use_tb_logger') and 'debug' not in opt['name'] and opt['rank'] == 0:
            mkdir_and_rename(osp.join(opt['root_path'], 'tb_logger', opt['name']))
    copy_opt_file(args.opt, opt['path']['experiments_root'])
    log_file = osp.join(opt['path']['log'], f"train_{opt['name']}_{get_time_str()}.log")
    logger = get_root_logger(logger_name='basicsr', log_level=logging.INFO, log_file=log_file)
    logger.info(get_env_info())
    logger.info(dict2str(opt))
    return logger, init_tb_loggers(opt)


def train_pipeline(root_path: str) -> None:
    """``basicsr.train.train_pipeline`` with the guarantees listed in this module's docstring.

    Errors raised in the loop (:class:`~srgan_plugin.base.errors.SRGANPluginError`) are also written to the log;
    ``srgan_plugin.train.main`` reports them, and Ctrl-C, as one line
    (:func:`~srgan_plugin.base.errors.command_errors`).
    """
    # BasicSR's parser, patched by compat: cwd root, option checks, init_dist with gloo or NCCL
    opt, args = basicsr_options.parse_options(root_path, is_train=True)
    opt['root_path'] = root_path
    torch.backends.cudnn.benchmark = bool(opt.get('cudnn_benchmark', True))
    notes: list[str] = []
    resolve_ema_warmup(opt)  # from the option file, before resuming points pretrain_network_g at the run's own
    resume = find_resume(opt, notes)
    logger, tb_logger = setup_run(opt, args, resume is not None)
    for note in notes:
        logger.warning(note)
    try:
        Trainer(opt, logger, tb_logger, resume).run()
    except SRGANPluginError as error:  # e.g. non-finite losses: in the log too
        logger.error(str(error))
        raise
    finally:
        if tb_logger:
            tb_logger.close()
    leave()
