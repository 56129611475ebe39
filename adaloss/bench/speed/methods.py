"""What ``adaloss speed`` measures: the models, the methods, and one runner per (model, method).

Every method gets its own copy of the same initial model (same seed), the same base
optimizer settings and the same sequence of random batches.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch

from adaloss.bench.step import training_step

DEFAULT_METHODS = ("plain", "fixed", "unroll", "forward", "forward/10")
DEFAULT_MODELS = ("lenet5", "resnet18", "mlp")  # wrn16_8 on request (scripts/gpu_check.sh)


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: timm entrypoint, input shape, batch size and task."""

    timm_name: str
    kwargs: dict[str, Any]
    input_shape: tuple[int, ...]
    batch: int
    outputs: int
    regression: bool
    steps: int  # default number of timed steps (per method with a meta step every step)
    label: str


MODELS: dict[str, ModelSpec] = {
    "lenet5": ModelSpec(
        "adaloss_lenet5", {"num_classes": 10}, (1, 28, 28), 128, 10, False, 40, "LeNet-5"
    ),
    "resnet18": ModelSpec(
        "adaloss_resnet18_cifar",
        {"num_classes": 10},
        (3, 32, 32),
        64,
        10,
        False,
        8,
        "ResNet-18 (CIFAR)",
    ),
    "wrn16_8": ModelSpec(
        "adaloss_wrn16_8",
        {"num_classes": 10},
        (3, 32, 32),
        128,
        10,
        False,
        4,
        "WRN-16-8",
    ),
    # The paper's regression MLP (two hidden layers of 1000 units) on Diabetes-sized input.
    "mlp": ModelSpec(
        "adaloss_mlp", {"in_features": 10, "num_classes": 1}, (10,), 128, 1, True, 40, "MLP"
    ),
}


@dataclass(frozen=True)
class Method:
    """A way to take one training step: ``plain``, or an engine with a meta step every k."""

    name: str
    engine: str | None  # None: the plain optimizer step on the task loss
    meta_every: int = 1
    online: bool = True  # False (``fixed``): the learned loss with ϕ fixed, no meta step
    twin: bool = False  # ``+twin``: also the plain-trained twin of ``handover`` (never taking over)
    check_every: int | None = None  # ``+check``: the twin and ``check_every=200``'s window

    @property
    def cycle(self) -> int:
        """Steps that make one complete schedule (1, or K for ``ENGINE/K``)."""
        return self.meta_every


def parse_method(name: str) -> Method:
    """``plain``, ``fixed`` (the learned loss, ϕ fixed: ``online=False``), ``forward``,
    ``unroll``, or ``forward/K`` / ``unroll/K`` (meta step every K); a ``+twin`` suffix on an
    engine also steps ``handover``'s plain-trained twin (``forward+twin``), a ``+check``
    suffix the twin and ``check_every=200``'s checks on the validation batches."""
    if name.endswith("+check") and name != "+check":
        inner = parse_method(name.removesuffix("+check") + "+twin")
        return Method(name, inner.engine, inner.meta_every, twin=True, check_every=200)
    if name.endswith("+twin") and name != "+twin":
        inner = parse_method(name.removesuffix("+twin"))
        if inner.engine is None or not inner.online:
            raise ValueError(f"method {name!r}: +twin goes with forward, unroll or ENGINE/K")
        return Method(name, inner.engine, inner.meta_every, twin=True)
    if name == "plain":
        return Method(name, None)
    if name == "fixed":
        return Method(name, "forward", online=False)
    engine, _, every = name.partition("/")
    if engine not in ("forward", "unroll"):
        raise ValueError(f"unknown method {name!r}; use plain, fixed, forward, unroll or forward/K")
    k = 1
    if every:
        try:
            k = int(every)
        except ValueError:
            k = 0
        if k < 1:
            raise ValueError(f"method {name!r}: K in {engine}/K must be an integer >= 1")
    return Method(name, engine, k)


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def default_threads() -> int:
    """All cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def make_batches(
    spec: ModelSpec, batch: int, count: int, seed: int, device: torch.device
) -> list[tuple[torch.Tensor, ...]]:
    """``count`` fixed (x, y, x_val, y_val) batches of random data; every method cycles them."""
    g = torch.Generator().manual_seed(seed)

    def inputs() -> torch.Tensor:
        return torch.randn(batch, *spec.input_shape, generator=g)

    def targets() -> torch.Tensor:
        if spec.regression:
            return torch.rand(batch, spec.outputs, generator=g)
        return torch.randint(0, spec.outputs, (batch,), generator=g)

    out = []
    for _ in range(count):
        x, y, x_val, y_val = inputs(), targets(), inputs(), targets()
        out.append(tuple(t.to(device) for t in (x, y, x_val, y_val)))
    return out


class Runner:
    """One (model, method): its own model copy, optimizers and position in the batch stream."""

    def __init__(
        self,
        spec: ModelSpec,
        method: Method,
        batches: list[tuple[torch.Tensor, ...]],
        device: torch.device,
        lr: float,
        momentum: float,
        seed: int,
    ) -> None:
        import timm

        import adaloss
        import adaloss.integrations.timm  # noqa: F401  (registers the adaloss_* models)

        torch.manual_seed(seed)  # every method starts from the same θ_0 (and ϕ_0)
        self.model = timm.create_model(spec.timm_name, **spec.kwargs).to(device).train()
        self.task = adaloss.Regression(spec.outputs) if spec.regression else None
        if self.task is None:
            self.task = adaloss.Classification(spec.outputs)
        self.base = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=momentum)
        self.method = method
        self.opt = None
        if method.engine is not None:
            self.opt = adaloss.MetaLossOptimizer(
                self.model,
                self.base,
                self.task,
                hypergrad=method.engine,
                meta_every=method.meta_every,
                online=method.online,
                handover=2**62 if method.twin else False,  # the twin's cost, never its take-over
                check_every=method.check_every or False,
            )
        self.batches = batches
        self.steps = 0
        torch.manual_seed(seed + 1)  # the same dropout stream for every method

    def step(self) -> None:
        batch = self.batches[self.steps % len(self.batches)]
        training_step(self.model, self.task, self.base, self.opt, batch)
        self.steps += 1

    def align_to_meta_step(self) -> None:
        """Advance the meta schedule so that the next step is a meta step (memory runs only)."""
        if self.opt is not None and self.opt.meta_every > 1:
            k = self.opt.meta_every
            self.opt.steps = math.ceil(self.opt.steps / k) * k

    @property
    def skipped(self) -> int:
        return self.opt.skipped_steps if self.opt is not None else 0


def sync(device: torch.device) -> None:
    """Wait for the device (CUDA kernels run asynchronously); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
