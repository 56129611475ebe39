"""Shared small models and data for the optimizer and engine tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

# One thread: two OpenMP threads on a busy 2-core machine wait on each other.
torch.set_num_threads(1)


class CrossEntropyOnProbabilities(nn.Module):
    """A parameter-free 'learned' loss equal to cross-entropy via the task mapping."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -(target * pred.log()).sum(dim=1).mean()


def mlp(inputs: int = 6, classes: int = 3, hidden: int = 16, dropout: float = 0.0) -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(inputs, hidden), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers += [nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


def lenet5(classes: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, classes),
    )  # fmt: skip


def bn_cnn(classes: int = 3) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes),
    )  # fmt: skip


MODELS = {
    "mlp": (lambda: mlp(), (6,)),
    "lenet5": (lambda: lenet5(), (1, 28, 28)),
    "bn_cnn": (lambda: bn_cnn(), (1, 8, 8)),
    "dropout_mlp": (lambda: mlp(dropout=0.3), (6,)),
}

OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1),
    "nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "weight_decay": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-2),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=1e-2),
}


def make_model(name: str, seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return MODELS[name][0]().to(dtype)


def batches(
    input_shape, n: int, batch: int = 8, classes: int = 3, seed: int = 1, dtype=torch.float64
):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n, batch, *input_shape, generator=g, dtype=dtype)
    ys = torch.randint(0, classes, (n, batch), generator=g)
    return list(zip(xs, ys, strict=True))


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def paper_optimizer(*args, **kwargs):
    """A MetaLossOptimizer on the paper's recipe: ϕ starts random (no warm start) and no
    guard scales the loss, so mechanics tests see M_ϕ exactly as built. The default
    recipe's warm start and guard are tested in tests/test_recipes.py."""
    import adaloss

    return adaloss.MetaLossOptimizer(*args, **{"recipe": "paper", **kwargs})
