"""The paper's MLP (Baydin et al. 2018) and logistic regression.

Entrypoints ``adaloss_mlp`` and ``adaloss_logistic``.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from adaloss.integrations.timm._common import (
    MNIST,
    DenseHead,
    adaloss_cfg,
    linear_or_identity,
    place,
    to_2tuple,
)


class MLP(DenseHead):
    """ReLU MLP on the flattened input; ``hidden_features=()`` makes it logistic regression.

    The paper's MLP is Baydin et al. (2018)'s: two hidden layers of 1000 ReLU units. For images
    ``in_features`` defaults to ``in_chans * H * W``; pass ``in_features`` for tabular data
    (e.g. ``in_features=10, num_classes=1`` for a regression target).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int | tuple[int, int] = (28, 28),
        in_features: int | None = None,
        hidden_features: tuple[int, ...] = (1000, 1000),
        drop_rate: float = 0.0,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        h, w = to_2tuple(img_size)
        self.in_features = in_features if in_features is not None else in_chans * h * w
        self.num_classes = num_classes
        self.in_chans = in_chans
        layers: list[nn.Module] = [nn.Flatten(1)]
        prev = self.in_features
        for width in hidden_features:
            layers += [nn.Linear(prev, width), nn.ReLU(inplace=True)]
            prev = width
        self.features = nn.Sequential(*layers)
        self.num_features = self.head_hidden_size = prev
        self.drop = nn.Dropout(drop_rate)
        self.head = linear_or_identity(prev, num_classes)
        place(self, device, dtype)


default_cfgs = generate_default_cfgs(
    {
        "adaloss_mlp": adaloss_cfg(
            **MNIST, fixed_input_size=True, first_conv=None, classifier="head",
            description="2x1000 ReLU MLP (Baydin et al. 2018)",
        ),
        "adaloss_logistic": adaloss_cfg(
            **MNIST, fixed_input_size=True, first_conv=None, classifier="head",
            description="logistic regression",
        ),
    }
)  # fmt: skip


@register_model
def adaloss_mlp(pretrained: bool = False, **kwargs: Any) -> MLP:
    """Baydin et al. (2018) MLP, 2x1000 ReLU; ``in_features=...`` for tabular inputs."""
    return build_model_with_cfg(MLP, "adaloss_mlp", pretrained, **kwargs)


@register_model
def adaloss_logistic(pretrained: bool = False, **kwargs: Any) -> MLP:
    """Logistic regression: flatten + one Linear; ``in_features=...`` for tabular inputs."""
    kwargs.setdefault("hidden_features", ())
    return build_model_with_cfg(MLP, "adaloss_logistic", pretrained, **kwargs)
