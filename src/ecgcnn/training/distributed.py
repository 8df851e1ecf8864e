"""DistributedDataParallel context from torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK)."""

from __future__ import annotations

import os

import torch
import torch.distributed as torch_dist
from torch.utils.data import DistributedSampler


class Distributed:
    """DistributedDataParallel context from torchrun's environment (WORLD_SIZE, RANK, LOCAL_RANK).

    gloo on CPU, nccl on CUDA. Each rank trains on its shard of every epoch's shuffled order (DistributedSampler);
    gradients are averaged by DDP, metrics are summed across ranks, and only rank 0 writes files.
    """

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def setup(self, device: torch.device) -> torch.device:
        if not self.enabled:
            return device
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not torch_dist.is_initialized():
            torch_dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return device

    def sum(self, *values: float) -> list[float]:
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        torch_dist.all_reduce(tensor)
        return tensor.tolist()

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """BatchNorm statistics are per rank; make every rank hold rank 0's."""
        if self.enabled:
            for buffer in model.buffers():
                torch_dist.broadcast(buffer, 0)

    def teardown(self) -> None:
        if self.enabled and torch_dist.is_initialized():
            torch_dist.barrier()
            torch_dist.destroy_process_group()


def rank_batches(n: int, batch_size: int, seed: int, epoch: int, dist: Distributed) -> list[torch.Tensor]:
    """This rank's share of the epoch: a DistributedSampler shard, batched (global batch = batch_size)."""
    sampler = DistributedSampler(range(n), num_replicas=dist.world, rank=dist.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    indices = torch.tensor(list(sampler))
    per_rank = max(batch_size // dist.world, 2)
    return [b for b in indices.split(per_rank) if b.numel() >= 2]
