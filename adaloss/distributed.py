"""Data-parallel training: what R processes average so that they step as one process would.

With a ``DistributedDataParallel`` model every rank holds the same θ and ϕ and its own equal
shard of the batch. All of adaloss's losses are means over the batch, so the concatenated
batch's gradient is the mean of the ranks' gradients, and the optimizer averages exactly
what one process on the concatenated batch would have computed from all shards: the
learned-loss gradient g before the base update, the validation gradient v (with L_T) before
the hypergradient, and the meta-gradient dL_T/dϕ, whose per-rank terms ⟨J_r w, h_r⟩ add up
to the whole batch's. θ and ϕ then stay identical on every rank without a broadcast.

DDP's own gradient hooks never run (adaloss takes gradients with ``torch.autograd.grad``
and calls the module functionally), so the averaging is done here with
``torch.distributed.all_reduce``: one call per dtype for a whole list of tensors. A single
process is the world of one: every method is then the identity and no collective runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

Tensors = tuple[torch.Tensor, ...]
T = TypeVar("T")


class _AllReduceSum(torch.autograd.Function):
    """Sum over the ranks inside autograd; the backward sums the incoming gradients too
    (the adjoint of "every rank gets the sum"). Differentiable twice, as ``unroll`` needs."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group)
        return tensor

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _AllReduceSum.apply(grad, ctx.group), None


def _groups_by_dtype(tensors: Sequence[torch.Tensor]) -> dict[torch.dtype, list[int]]:
    groups: dict[torch.dtype, list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(t.dtype, []).append(i)
    return groups


class Replicas:
    """The processes that train one model together (``group``, ``size`` ranks).

    ``Replicas()`` is one process alone: nothing is communicated.
    """

    def __init__(self, group: dist.ProcessGroup | None = None, broadcast_buffers: bool = False):
        self.group = group
        self.size = dist.get_world_size(group) if group is not None else 1
        self.rank = dist.get_rank(group) if group is not None else 0
        self.broadcast_buffers = broadcast_buffers and self.size > 1

    def _flat_all_reduce(self, tensors: Sequence[torch.Tensor], op, differentiable: bool = False):
        """All-reduce ``tensors`` with one collective per dtype; new tensors, inputs untouched."""
        out: list[torch.Tensor | None] = [None] * len(tensors)
        for indices in _groups_by_dtype(tensors).values():
            parts = [tensors[i] for i in indices]
            flat = torch.cat([t.reshape(-1) for t in parts])
            if differentiable:  # sum only: its backward is a sum again
                flat = _AllReduceSum.apply(flat, self.group)
            else:
                flat = flat.detach().clone()
                dist.all_reduce(flat, op=op, group=self.group)
            for i, piece in zip(indices, flat.split([t.numel() for t in parts]), strict=True):
                out[i] = piece.view_as(tensors[i])
        return tuple(out)

    def mean(self, tensors: Sequence[torch.Tensor]) -> Tensors:
        """The ranks' average of each tensor (detached); the tensors themselves as one process."""
        if self.size == 1 or not tensors:
            return tuple(tensors)
        return tuple(
            t / self.size for t in self._flat_all_reduce(tensors, dist.ReduceOp.SUM, False)
        )

    def mean_differentiable(self, tensors: Sequence[torch.Tensor]) -> Tensors:
        """``mean`` inside autograd: the backward averages too (``unroll`` differentiates it)."""
        if self.size == 1 or not tensors:
            return tuple(tensors)
        summed = self._flat_all_reduce(tensors, dist.ReduceOp.SUM, differentiable=True)
        return tuple(t / self.size for t in summed)

    def sum(self, tensors: Sequence[torch.Tensor]) -> Tensors:
        """The ranks' sum of each tensor (detached): norms and inner products over the batch."""
        if self.size == 1 or not tensors:
            return tuple(tensors)
        return self._flat_all_reduce(tensors, dist.ReduceOp.SUM)

    def total(self, count: int) -> int:
        """The ranks' sum of a host count (one collective; the count itself alone)."""
        if self.size == 1:
            return count
        summed = torch.tensor([count], dtype=torch.int64, device=self._device())
        dist.all_reduce(summed, op=dist.ReduceOp.SUM, group=self.group)
        return int(summed.item())

    def span(self, lo: float, hi: float) -> tuple[float, float]:
        """(min of ``lo``, max of ``hi``) over the ranks."""
        if self.size == 1:
            return lo, hi
        both = torch.tensor([-lo, hi], dtype=torch.float64, device=self._device())
        dist.all_reduce(both, op=dist.ReduceOp.MAX, group=self.group)
        return -float(both[0]), float(both[1])

    def _all_agree(self, ok: bool) -> bool:
        flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=self._device())
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=self.group)
        return bool(flag.item())

    def check_everywhere(self, check: Callable[..., T], *args) -> T:
        """``check(*args)``; if it raises ``ValueError`` on any rank, every rank raises, so
        that no rank goes on into a collective that the failing one never joins."""
        if self.size == 1:
            return check(*args)
        try:
            result = check(*args)
        except ValueError:
            self._all_agree(False)
            raise
        if not self._all_agree(True):
            raise ValueError(
                "another rank rejected its batch (see that rank's error); no rank steps"
            )
        return result

    @torch.no_grad()
    def broadcast_(self, tensors: Sequence[torch.Tensor], src: int = 0) -> None:
        """Overwrite ``tensors`` in place with rank ``src``'s values (one call per dtype)."""
        if self.size == 1 or not tensors:
            return
        src = dist.get_global_rank(self.group, src) if self.group is not None else src
        for indices in _groups_by_dtype(tensors).values():
            parts = [tensors[i] for i in indices]
            flat = torch.cat([t.detach().reshape(-1) for t in parts])
            dist.broadcast(flat, src=src, group=self.group)
            for t, piece in zip(parts, flat.split([t.numel() for t in parts]), strict=True):
                t.copy_(piece.view_as(t))

    def sync_buffers_(self, model: nn.Module) -> None:
        """Rank 0's buffers (BatchNorm running statistics) everywhere, as DDP's forward does."""
        if self.broadcast_buffers:
            self.broadcast_([b for b in model.buffers()])

    def _device(self) -> torch.device:
        # NCCL reduces CUDA tensors only; gloo takes CPU ones.
        backend = dist.get_backend(self.group)
        return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else "cpu"

    def __repr__(self) -> str:
        return f"Replicas(size={self.size}, rank={self.rank})"


def unwrap(model: nn.Module) -> tuple[nn.Module, Replicas]:
    """The module adaloss calls and the ranks it trains with.

    A ``DistributedDataParallel`` model gives its ``module`` and process group; a plain
    model trains alone, with a warning when a process group of several ranks exists (each
    rank would silently train its own copy).
    """
    if isinstance(model, DistributedDataParallel):
        return model.module, Replicas(model.process_group, model.broadcast_buffers)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        warnings.warn(
            f"adaloss: a process group of {dist.get_world_size()} ranks is initialized but the "
            "model is not wrapped in DistributedDataParallel: this rank trains its own copy "
            "and nothing is averaged across ranks. Pass DistributedDataParallel(model) to "
            "train one model on all ranks' batches.",
            RuntimeWarning,
            stacklevel=4,
        )
    return model, Replicas()
