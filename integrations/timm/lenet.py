"""LeNet-5 (LeCun et al. 1998) for 1x28x28 input: ``adaloss_lenet5``."""

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


class LeNet5(DenseHead):
    """LeNet-5 (LeCun et al. 1998) for 28x28 input: the first conv pads by 2 to act as on 32x32.

    conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> fc 120 -> fc 84 -> fc C, with tanh and average
    pooling as in the original (``act_layer=nn.ReLU`` for the modern variant).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        img_size: int | tuple[int, int] = (28, 28),
        act_layer: type[nn.Module] = nn.Tanh,
        drop_rate: float = 0.0,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        h, w = to_2tuple(img_size)
        fh, fw = (h // 2 - 4) // 2, (w // 2 - 4) // 2  # spatial size after conv2 + pool2
        if fh < 1 or fw < 1:
            raise ValueError(f"LeNet5 needs img_size >= 12x12, got {(h, w)}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5, padding=2),
            act_layer(),
            nn.AvgPool2d(2),
            nn.Conv2d(6, 16, 5),
            act_layer(),
            nn.AvgPool2d(2),
            nn.Flatten(1),
            nn.Linear(16 * fh * fw, 120),
            act_layer(),
            nn.Linear(120, 84),
            act_layer(),
        )
        self.num_features = self.head_hidden_size = 84
        self.drop = nn.Dropout(drop_rate)
        self.head = linear_or_identity(84, num_classes)
        place(self, device, dtype)


default_cfgs = generate_default_cfgs(
    {
        "adaloss_lenet5": adaloss_cfg(
            **MNIST, fixed_input_size=True, first_conv="features.0", classifier="head",
            description="LeNet-5 (LeCun et al. 1998)",
        ),
    }
)  # fmt: skip


@register_model
def adaloss_lenet5(pretrained: bool = False, **kwargs: Any) -> LeNet5:
    """LeNet-5 for 1x28x28 input (MNIST in the paper)."""
    return build_model_with_cfg(LeNet5, "adaloss_lenet5", pretrained, **kwargs)
