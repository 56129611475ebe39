"""Batch streams and finiteness checks shared by the online step and the offline phase.

Low in the core (torch and ``tasks`` only): both ``optimizer.py`` and ``offline.py``
import it, so neither has to import the other for these helpers. ``check_batch`` is the
step's input check: shapes, finiteness, targets, and the model's device and dtype.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

from adaloss.tasks import check_finite


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


def check_batch(
    task, params, x, y, x_val, y_val, names: tuple[str, str] = ("x", "y")
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raise ValueError, before anything runs, for a batch that cannot train ``params``;
    returns the meta-objective's batch (the training batch when ``x_val`` is None).
    ``names``: what the errors call x and y (``check``'s batch is x_check, y_check)."""
    if (x_val is None) != (y_val is None):
        raise ValueError("pass both x_val and y_val, or neither (meta-objective on x, y)")
    pairs = [(*names, x, y)]
    if x_val is not None:
        pairs.append(("x_val", "y_val", x_val, y_val))
    for xname, yname, xs, ys in pairs:
        if not isinstance(xs, torch.Tensor):
            raise ValueError(f"{xname} must be a torch.Tensor, got {type(xs).__name__}")
        if xs.dim() == 0 or xs.shape[0] == 0:
            raise ValueError(
                f"{xname} must have a non-empty batch dimension; got {tuple(xs.shape)}"
            )
        check_placement(params, xname, xs, yname, ys)
        with _named(yname):
            task.check_target_structure(ys, xs.shape[0])
    # The values of all four tensors in one device sync; the slow path names the culprit.
    valid = [task.valid_target_values(ys) for _, _, _, ys in pairs]
    valid += [torch.isfinite(xs).all() for _, _, xs, _ in pairs if xs.is_floating_point()]
    if not bool(torch.stack(valid).all()):
        for xname, yname, xs, ys in pairs:
            check_finite(xname, xs)
            with _named(yname):
                task.check_targets(ys, xs.shape[0])
    return (x, y) if x_val is None else (x_val, y_val)


@contextmanager
def _named(name: str) -> Iterator[None]:
    """Prefix a ValueError's message with the argument it is about."""
    try:
        yield
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


def check_placement(params, xname: str, xs: torch.Tensor, yname: str, ys: torch.Tensor):
    """A batch on another device, or a float batch of another dtype, than the model's."""
    devices = {p.device for p in params}
    dtypes = {p.dtype for p in params}
    model_devices = " / ".join(sorted(str(d) for d in devices))
    for name, t in ((xname, xs), (yname, ys)):
        if isinstance(t, torch.Tensor) and t.device not in devices:
            raise ValueError(
                f"{name} is on {t.device} but the model's parameters are on {model_devices}; "
                f"move the batch with {name}.to({str(next(iter(devices)))!r})"
            )
    if xs.is_floating_point() and xs.dtype not in dtypes:
        model_dtypes = " / ".join(sorted(str(d) for d in dtypes))
        raise ValueError(
            f"{xname} has dtype {xs.dtype} but the model's parameters are {model_dtypes}; "
            f"convert the batch with {xname}.to({model_dtypes.split(' / ')[0]}) or the model"
        )
