"""All-CNN-C (Springenberg et al. 2014) for 32x32 input: ``adaloss_allcnn_c``."""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import ClassifierHead
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from adaloss.integrations.timm._common import adaloss_cfg, device_dtype, place


class AllCNNC(nn.Module):
    """All-CNN-C (Springenberg et al. 2014): only convolutions, strided convs instead of pooling.

    Layers: 3x3 conv 96, 96, 96/2 -> 3x3 conv 192, 192, 192/2 -> 3x3 conv 192 (valid) ->
    1x1 conv 192 -> 1x1 conv C -> global average pool. Dropout ``drop_rate`` follows each
    stride-2 conv. By default every hidden conv is followed by BatchNorm, as in the AdaLFL
    authors' own All-CNN-C code; ``norm_layer=None`` (``nn.Identity`` through
    ``timm.create_model``, which drops None-valued arguments) with ``input_drop_rate=0.2`` gives
    the 2014 model (1,369,738 params for 10 classes; we omit its ReLU on the logits).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        norm_layer: type[nn.Module] | None = nn.BatchNorm2d,
        drop_rate: float = 0.5,
        input_drop_rate: float = 0.0,
        global_pool: str = "avg",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_chans = in_chans

        def conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 1) -> list[nn.Module]:
            norm = [norm_layer(cout)] if norm_layer is not None else []
            return [nn.Conv2d(cin, cout, k, stride, pad), *norm, nn.ReLU(inplace=True)]

        self.input_drop = nn.Dropout(input_drop_rate)
        self.features = nn.Sequential(
            *conv(in_chans, 96, 3),
            *conv(96, 96, 3),
            *conv(96, 96, 3, stride=2),
            nn.Dropout(drop_rate),
            *conv(96, 192, 3),
            *conv(192, 192, 3),
            *conv(192, 192, 3, stride=2),
            nn.Dropout(drop_rate),
            *conv(192, 192, 3, pad=0),
            *conv(192, 192, 1, pad=0),
        )
        self.num_features = self.head_hidden_size = 192
        # The final 1x1 conv commutes with global average pooling, so timm's conv head (pool,
        # then 1x1 conv) is the same function with the same parameters as conv-then-pool.
        self.head = ClassifierHead(192, num_classes, pool_type=global_pool, use_conv=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        place(self, device, dtype)

    def get_classifier(self) -> nn.Module:
        """The final 1x1 conv (timm API)."""
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the final 1x1 conv (timm API)."""
        self.num_classes = num_classes
        device, dtype = device_dtype(self)
        pool = global_pool if global_pool is not None else self.head.global_pool.pool_type
        head = ClassifierHead(192, num_classes, pool_type=pool, use_conv=True)
        self.head = head.to(device, dtype)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before the classifier conv."""
        return self.features(self.input_drop(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global pooling and the classifier conv."""
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (B, num_classes)."""
        return self.forward_head(self.forward_features(x))


default_cfgs = generate_default_cfgs(
    {
        "adaloss_allcnn_c": adaloss_cfg(
            pool_size=(6, 6), first_conv="features.0", classifier="head.fc",
            description="All-CNN-C (Springenberg et al. 2014)",
        ),
    }
)  # fmt: skip


@register_model
def adaloss_allcnn_c(pretrained: bool = False, **kwargs: Any) -> AllCNNC:
    """All-CNN-C for 32x32 input (CIFAR-10 in the paper)."""
    return build_model_with_cfg(AllCNNC, "adaloss_allcnn_c", pretrained, **kwargs)
