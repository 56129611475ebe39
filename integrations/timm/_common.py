"""What the adaloss timm models share: timm's classifier API for dense heads, placement, configs."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from adaloss.normalization import NORMALIZATION


def normalization(dataset: str) -> dict[str, tuple[float, ...]]:
    """mean/std of a pretrained config: the values the benchmark's loader normalizes with."""
    mean, std = NORMALIZATION[dataset]
    return {"mean": mean, "std": std}


def linear_or_identity(in_features: int, num_classes: int) -> nn.Module:
    """Classifier layer, or Identity for ``num_classes=0`` (timm's feature-extractor convention)."""
    return nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()


def to_2tuple(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Normalise an image size to (H, W)."""
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def device_dtype(module: nn.Module) -> tuple[Any, torch.dtype | None]:
    """Device and dtype of a module's first parameter or buffer (None, None for an empty one)."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device, t.dtype
    return None, None


def place(module: nn.Module, device: Any = None, dtype: torch.dtype | None = None) -> None:
    """Move a freshly built model to the requested device/dtype (timm passes them as kwargs)."""
    if device is not None or dtype is not None:
        module.to(device=device, dtype=dtype)


class DenseHead(nn.Module):
    """timm's classifier API for models whose ``features`` give a vector and ``head`` is Linear."""

    features: nn.Module
    head: nn.Module
    drop: nn.Module
    num_features: int
    num_classes: int

    def get_classifier(self) -> nn.Module:
        """The output layer (timm API)."""
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the output layer with a fresh one for ``num_classes`` outputs (timm API)."""
        self.num_classes = num_classes
        device, dtype = device_dtype(self)
        self.head = linear_or_identity(self.num_features, num_classes).to(device, dtype)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before the output layer: a (B, num_features) representation."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Dropout and the output layer."""
        x = self.drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (or regression outputs) of shape (B, num_classes)."""
        return self.forward_head(self.forward_features(x))


def adaloss_cfg(**kwargs: Any) -> dict[str, Any]:
    """Pretrained config for a 32x32 RGB CIFAR-10 model with no downloadable weights."""
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        **normalization("cifar10"),
        "first_conv": "conv1",
        "classifier": "fc",
        "paper_ids": "arXiv:2301.13247",
        **kwargs,
    }


MNIST = dict(input_size=(1, 28, 28), **normalization("mnist"))
