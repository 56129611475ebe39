"""torchvision's SqueezeNet 1.1 (Iandola et al. 2016) for 32x32 input.

Entrypoint ``adaloss_squeezenet_cifar``.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from adaloss.integrations.timm._common import adaloss_cfg, device_dtype, place


class SqueezeNetCifar(nn.Module):
    """torchvision's ``squeezenet1_1`` (Iandola et al. 2016) adapted to 32x32 input.

    timm has no SqueezeNet, so this takes ``features`` and ``classifier`` from
    ``torchvision.models.squeezenet1_1(weights=None)`` and only replaces the first conv
    (3x3 stride 2, unpadded) by a 3x3 stride-1 padded one. The three ceil-mode 3x3/2 max-pools
    then give 32 -> 16 -> 8 -> 4, a 4x4 map for the final 1x1 classifier conv. State-dict keys
    match torchvision's. The classifier keeps torchvision's ReLU on the logits.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        drop_rate: float = 0.5,
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        from torchvision.models import squeezenet1_1  # torchvision is only needed here

        base = squeezenet1_1(weights=None, num_classes=max(num_classes, 1), dropout=drop_rate)
        stem = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1)
        nn.init.kaiming_uniform_(stem.weight)  # torchvision's init for non-final convs
        nn.init.zeros_(stem.bias)
        base.features[0] = stem
        self.features = base.features
        self.classifier = base.classifier  # Dropout, Conv2d(512, C, 1), ReLU, AdaptiveAvgPool2d
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = self.head_hidden_size = 512
        if num_classes == 0:
            self.reset_classifier(0)
        place(self, device, dtype)

    def get_classifier(self) -> nn.Module:
        """The final 1x1 conv (timm API)."""
        return self.classifier[1]

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the final 1x1 conv; ``num_classes=0`` leaves pooled features (timm API)."""
        self.num_classes = num_classes
        if num_classes > 0:
            conv = nn.Conv2d(self.num_features, num_classes, 1).to(*device_dtype(self))
            nn.init.normal_(conv.weight, mean=0.0, std=0.01)  # torchvision's final-conv init
            nn.init.zeros_(conv.bias)
            self.classifier[1], self.classifier[2] = conv, nn.ReLU(inplace=True)
        else:
            self.classifier[1], self.classifier[2] = nn.Identity(), nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Fire-module feature map (B, 512, 4, 4) for 32x32 input."""
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Classifier conv, ReLU and global average pooling."""
        if pre_logits:
            return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        return torch.flatten(self.classifier(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores of shape (B, num_classes)."""
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs(
    {
        "adaloss_squeezenet_cifar": adaloss_cfg(
            pool_size=(4, 4), first_conv="features.0", classifier="classifier.1",
            description="SqueezeNet 1.1 (Iandola et al. 2016), CIFAR stem",
        ),
    }
)  # fmt: skip


@register_model
def adaloss_squeezenet_cifar(pretrained: bool = False, **kwargs: Any) -> SqueezeNetCifar:
    """torchvision SqueezeNet 1.1 with a 3x3 stride-1 first conv (CIFAR-10 in the paper)."""
    return build_model_with_cfg(SqueezeNetCifar, "adaloss_squeezenet_cifar", pretrained, **kwargs)
