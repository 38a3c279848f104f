"""Process groups for ``--launcher pytorch`` (torchrun, torch.distributed.launch) and ``--launcher slurm``.

basicsr 1.4.2's ``init_dist`` hard-codes the NCCL backend and ``torch.cuda.set_device(rank % device_count)``, so
without CUDA it dies with ZeroDivisionError, and it picks the device from the global rank, which is wrong on every
node but the first. Here the backend is NCCL when CUDA is available and gloo otherwise, and the device comes from
``LOCAL_RANK``. ``srgan_plugin.compat`` installs ``init_dist`` in place of BasicSR's.

The rank helpers (``rank``, ``world_size``, ``gather_objects``, ``all_ranks_agree``, ...) answer as a single process
does when no process group is running, so that the models, the loop and the option checks call them unconditionally.
"""
from __future__ import annotations

import atexit
import contextlib
import datetime
import os
import subprocess
from typing import Any, Iterator, Optional, Sequence

import torch
import torch.distributed as dist

DEFAULT_PORT = 29500


def default_backend() -> str:
    """``nccl`` when CUDA is available, else ``gloo`` (CPU training, tests, CI)."""
    return 'nccl' if torch.cuda.is_available() else 'gloo'


def init_dist(launcher: str,
              backend: Optional[str] = None,
              port: Optional[int] = None,
              timeout_minutes: Optional[float] = None,
              **kwargs: Any) -> None:
    """Join the process group started by ``launcher`` (``pytorch`` or ``slurm``); a no-op if already joined.

    Args:
        launcher: ``pytorch`` (torchrun / torch.distributed.launch set RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
            MASTER_PORT) or ``slurm`` (srun sets SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, SLURM_NODELIST).
        backend: ``nccl``, ``gloo`` or None for ``default_backend()``. Default: None.
        port: Master port for ``slurm`` (else MASTER_PORT, else 29500). Default: None.
        timeout_minutes: Collective timeout; None keeps torch's default. Default: None.
        **kwargs: Passed to ``torch.distributed.init_process_group``.
    """
    if dist.is_initialized():
        return
    if launcher == 'slurm':
        _environment_from_slurm(port)
    elif launcher != 'pytorch':
        raise ValueError(f"launcher must be 'pytorch' or 'slurm', not {launcher!r}")
    missing = [name for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT') if name not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher {launcher}: {", ".join(missing)} not set; start the job with torchrun '
                           '--nproc_per_node=N -m basicsr.train ... --launcher pytorch (or srun for slurm)')
    if backend == 'nccl' and not torch.cuda.is_available():
        print('dist_params.backend: nccl needs CUDA GPUs; using gloo on this CPU-only machine.', flush=True)
        backend = 'gloo'
    backend = backend or default_backend()
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
    if timeout_minutes is not None:
        kwargs['timeout'] = datetime.timedelta(minutes=timeout_minutes)
    dist.init_process_group(backend=backend, **kwargs)
    atexit.register(leave)


def leave() -> None:
    """Wait for every rank, then destroy the process group (registered at exit by ``init_dist``).

    With gloo, a rank that exits while another still holds the group makes the other abort ("terminate called
    without an active exception"), e.g. when rank 0 still writes results after the last collective.
    """
    if not dist.is_initialized():
        return
    try:
        dist.barrier()
    finally:
        dist.destroy_process_group()


def local_rank() -> int:
    """This process's index on its node (LOCAL_RANK), which picks its GPU."""
    return int(os.environ.get('LOCAL_RANK', 0))


def _environment_from_slurm(port: Optional[int]) -> None:
    """Translate srun's variables into the ones ``init_process_group`` reads (as BasicSR does, but per node)."""
    proc_id = int(os.environ['SLURM_PROCID'])
    os.environ['RANK'] = str(proc_id)
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', str(DEFAULT_PORT))
    if 'MASTER_ADDR' not in os.environ:
        node_list = os.environ['SLURM_NODELIST']
        first = subprocess.run(['scontrol', 'show', 'hostnames', node_list], capture_output=True, text=True,
                               check=True).stdout.split()
        os.environ['MASTER_ADDR'] = first[0]


def normalize_local_rank(argv: Sequence[str]) -> list[str]:
    """``--local-rank=N`` (torch.distributed.launch on torch >= 2.0) -> ``--local_rank=N``, which BasicSR's parser
    accepts (BasicSR #626)."""
    return [('--local_rank' + arg[len('--local-rank'):]) if arg.split('=')[0] == '--local-rank' else arg
            for arg in argv]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_ranks_agree(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on every rank (one tiny all-reduce when distributed)."""
    if not is_distributed():
        return flag
    if dist.get_backend() == 'nccl' and device.type != 'cuda':
        device = torch.device('cuda', torch.cuda.current_device())
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def any_rank(flag: bool, device: torch.device) -> bool:
    """True when ``flag`` is true on at least one rank."""
    return not all_ranks_agree(not flag, device)


@contextlib.contextmanager
def rank_zero_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. a download into a shared cache), then the others; no-op when alone.

    If rank 0 fails inside the block it exits without reaching the barrier, and the launcher (torchrun, srun
    --kill-on-bad-exit) stops the waiting ranks.
    """
    if is_distributed() and rank() != 0:
        dist.barrier()
    yield
    if is_distributed() and rank() == 0:
        dist.barrier()
