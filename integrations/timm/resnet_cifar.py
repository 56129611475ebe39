"""timm's ResNet-18 with the CIFAR stem: ``adaloss_resnet18_cifar``."""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet

from adaloss.integrations.timm._common import adaloss_cfg
from adaloss.integrations.timm.cifar import cifar_stem


def _cifar_resnet(**kwargs: Any) -> ResNet:
    """timm ``ResNet`` with the CIFAR stem, built before any weights are loaded."""
    return cifar_stem(ResNet(**kwargs))


default_cfgs = generate_default_cfgs(
    {
        "adaloss_resnet18_cifar": adaloss_cfg(
            pool_size=(4, 4), description="ResNet-18 (He et al. 2016), CIFAR stem",
        ),
    }
)  # fmt: skip


@register_model
def adaloss_resnet18_cifar(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """timm ResNet-18 (BasicBlock, [2, 2, 2, 2]) with the CIFAR stem (CIFAR-10 in the paper)."""
    model_args = dict(block=BasicBlock, layers=(2, 2, 2, 2))
    return build_model_with_cfg(
        _cifar_resnet, "adaloss_resnet18_cifar", pretrained, **dict(model_args, **kwargs)
    )
