"""timm's VGG-16 with BatchNorm and the CIFAR head: ``adaloss_vgg16_cifar``."""

from __future__ import annotations

from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.vgg import VGG
from timm.models.vgg import cfgs as _vgg_layer_cfgs
from torch import nn

from adaloss.integrations.timm._common import adaloss_cfg
from adaloss.integrations.timm.cifar import vgg_cifar_head


def _cifar_vgg(cfg: list[Any], device: Any = None, **kwargs: Any) -> VGG:
    """timm ``VGG`` with the CIFAR head; built on the meta device so the unused ~100 M-param
    ConvMlp is never allocated, then materialised and initialised with VGG's own init."""
    with torch.device("meta"):
        model = VGG(cfg, **kwargs)
        vgg_cifar_head(model)
    model.to_empty(device=device if device is not None else torch.get_default_device())
    for m in model.modules():
        if hasattr(m, "reset_parameters"):  # e.g. BatchNorm running statistics
            m.reset_parameters()
    model._initialize_weights()
    return model


default_cfgs = generate_default_cfgs(
    {
        "adaloss_vgg16_cifar": adaloss_cfg(
            pool_size=(1, 1), first_conv="features.0", classifier="head.fc",
            description="VGG-16 with BatchNorm (Simonyan & Zisserman 2015), CIFAR head",
        ),
    }
)  # fmt: skip


@register_model
def adaloss_vgg16_cifar(pretrained: bool = False, **kwargs: Any) -> VGG:
    """timm VGG-16 with BatchNorm and a Linear(512, C) head (CIFAR-10 in the paper)."""
    kwargs.setdefault("norm_layer", nn.BatchNorm2d)
    return build_model_with_cfg(
        _cifar_vgg,
        "adaloss_vgg16_cifar",
        pretrained,
        model_cfg=_vgg_layer_cfgs["vgg16"],
        feature_cfg=dict(flatten_sequential=True),
        **kwargs,
    )
