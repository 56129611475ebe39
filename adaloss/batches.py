"""Batch streams and finiteness checks shared by the online step and the offline phase.

A leaf module (torch only): both ``optimizer.py`` and ``offline.py`` import it, so
neither has to import the other for these helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch


def cycle(batches: Iterable) -> Iterator:
    """Repeat an iterable of batches forever; DataLoaders reshuffle every pass."""
    if iter(batches) is batches:  # a one-shot iterator: use it as it is
        for batch in batches:  # not `yield from`: closing us must not close the caller's
            yield batch
        raise ValueError("the batch iterator ran out during initialize(); pass a re-iterable")
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ValueError("initialize() got an empty iterable of batches")


def all_finite(tensors) -> bool:
    """Whether every tensor holds only finite values (one device sync for all of them)."""
    sums = [t.detach().sum() for t in tensors if t.numel()]
    return not sums or bool(torch.isfinite(torch.stack(sums)).all())


def all_finite_and_value(tensors, value: torch.Tensor) -> tuple[bool, float]:
    """``all_finite(tensors)`` and ``float(value)`` for one device sync instead of two."""
    sums = [t.detach().sum() for t in tensors if t.numel()]
    if not sums:
        return True, float(value)
    finite = torch.isfinite(torch.stack(sums)).all().to(torch.float64)
    finite, value = torch.stack([finite, value.detach().reshape(()).to(torch.float64)]).tolist()
    return bool(finite), value
