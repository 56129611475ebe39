"""Wide ResNets (Zagoruyko & Komodakis 2016) for 32x32 input.

Entrypoints ``adaloss_wrn28_10`` and ``adaloss_wrn16_8``.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from adaloss.integrations.timm._common import adaloss_cfg, device_dtype, normalization, place


class _WideBasic(nn.Module):
    """Pre-activation wide basic block: BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3 + shortcut."""

    def __init__(self, in_chs: int, out_chs: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.act1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_chs, out_chs, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs)
        self.act2 = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(drop_rate)
        self.conv2 = nn.Conv2d(out_chs, out_chs, 3, 1, 1, bias=False)
        needs_proj = stride != 1 or in_chs != out_chs
        self.shortcut = nn.Conv2d(in_chs, out_chs, 1, stride, bias=False) if needs_proj else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update; a projection shortcut sees the pre-activated input, as in the paper."""
        out = self.act1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(self.drop(self.act2(self.bn2(self.conv1(out)))))
        return out + shortcut


class WideResNet(nn.Module):
    """Wide ResNet WRN-depth-k (Zagoruyko & Komodakis 2016) for 32x32 input.

    3x3 conv 16 -> three stages of (depth-4)/6 pre-activation wide basic blocks with widths
    16k, 32k, 64k (strides 1, 2, 2) -> BN-ReLU -> global pool -> Linear. ``drop_rate`` is the
    paper's dropout between the two convs of each block.
    """

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.0,
        global_pool: str = "avg",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        prev = 16
        for i, (width, stride) in enumerate(zip(widths, (1, 2, 2), strict=True)):
            blocks = [
                _WideBasic(prev if j == 0 else width, width, stride if j == 0 else 1, drop_rate)
                for j in range(n)
            ]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            prev = width
        self.bn = nn.BatchNorm2d(prev)
        self.act = nn.ReLU(inplace=True)
        self.num_features = self.head_hidden_size = prev
        self.global_pool, self.fc = create_classifier(prev, num_classes, pool_type=global_pool)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
        place(self, device, dtype)

    def get_classifier(self) -> nn.Module:
        """The final Linear (timm API)."""
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace pooling/classifier for ``num_classes`` outputs (timm API)."""
        self.num_classes = num_classes
        device, dtype = device_dtype(self)
        pool = global_pool if global_pool is not None else self.global_pool.pool_type
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool)
        self.global_pool.to(device, dtype)
        self.fc.to(device, dtype)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map after the final BN-ReLU."""
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.act(self.bn(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global pooling and the Linear classifier."""
        x = self.global_pool(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (B, num_classes)."""
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs(
    {
        "adaloss_wrn28_10": adaloss_cfg(
            num_classes=100, **normalization("cifar100"), pool_size=(8, 8),
            description="WRN-28-10 (Zagoruyko & Komodakis 2016), CIFAR-100 in the paper",
        ),
        "adaloss_wrn16_8": adaloss_cfg(
            **normalization("svhn"), pool_size=(8, 8),
            description="WRN-16-8 (Zagoruyko & Komodakis 2016), SVHN in the paper",
        ),
    }
)  # fmt: skip


@register_model
def adaloss_wrn28_10(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """Wide ResNet 28-10 (CIFAR-100 in the paper); ``drop_rate`` is the in-block dropout."""
    model_args = dict(depth=28, widen_factor=10)
    return build_model_with_cfg(
        WideResNet, "adaloss_wrn28_10", pretrained, **dict(model_args, **kwargs)
    )


@register_model
def adaloss_wrn16_8(pretrained: bool = False, **kwargs: Any) -> WideResNet:
    """Wide ResNet 16-8 (SVHN in the paper); ``drop_rate`` is the in-block dropout."""
    model_args = dict(depth=16, widen_factor=8)
    return build_model_with_cfg(
        WideResNet, "adaloss_wrn16_8", pretrained, **dict(model_args, **kwargs)
    )
