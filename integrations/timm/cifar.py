"""``cifar_stem``: convert a timm ResNet-family or VGG model built for 224x224 input to 32x32."""

from __future__ import annotations

from timm.layers import ClassifierHead
from timm.models.resnet import ResNet
from timm.models.vgg import VGG
from torch import nn

from adaloss.integrations.timm._common import device_dtype


def _set_input_size(model: nn.Module, size: int, pool_size: tuple[int, int]) -> None:
    """Record the new nominal input size so ``timm.data.resolve_data_config`` sees 32x32."""
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg:
        cfg = dict(cfg)
        chans = cfg.get("input_size", (getattr(model, "in_chans", 3),))[0]
        cfg.update(input_size=(chans, size, size), pool_size=pool_size)
        cfg.pop("test_input_size", None)
        model.pretrained_cfg = model.default_cfg = cfg
    traits = getattr(model, "_traits", None)  # recent timm keeps the current input size here
    if isinstance(traits, dict):
        model._traits = {**traits, "img_size": (size, size)}


def _resnet_cifar_stem(model: ResNet) -> None:
    """3x3 stride-1 first conv and no max-pool: 32x32 input reaches layer4 at 4x4."""
    stem = model.conv1
    if isinstance(stem, nn.Sequential):  # deep stems: three 3x3 convs, only the first strides
        first = stem[0]
        if isinstance(first, nn.Conv2d):
            first.stride = (1, 1)
    elif isinstance(stem, nn.Conv2d):
        if stem.kernel_size != (3, 3) or stem.stride != (1, 1):
            w = stem.weight
            new = nn.Conv2d(
                stem.in_channels,
                stem.out_channels,
                kernel_size=3,
                stride=1,
                padding=1,
                bias=stem.bias is not None,
                device=w.device,
                dtype=w.dtype,
            )
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")  # timm's
            if new.bias is not None:
                nn.init.zeros_(new.bias)
            model.conv1 = new
    else:
        raise TypeError(f"cifar_stem: unexpected ResNet stem {type(stem).__name__}")
    model.maxpool = nn.Identity()
    for info in getattr(model, "feature_info", []):
        if "reduction" in info:  # stem lost a stride of 2, the max-pool another
            info["reduction"] = max(1, info["reduction"] // (2 if info["module"] == "act1" else 4))


def vgg_cifar_head(model: VGG) -> None:
    """Drop the 7x7 ConvMlp pre-logits (it assumes 224 input) for a Linear on the 512-d feature."""
    if isinstance(model.pre_logits, nn.Identity):
        return
    old = model.head
    model.pre_logits = nn.Identity()
    model.head = ClassifierHead(
        model.num_features,
        model.num_classes,
        pool_type=old.global_pool.pool_type,
        drop_rate=old.drop.p,
    ).to(*device_dtype(model.features))
    model.head_hidden_size = model.head.num_features
    if isinstance(model.head.fc, nn.Linear):  # VGG's own Linear init
        nn.init.normal_(model.head.fc.weight, 0.0, 0.01)
        nn.init.zeros_(model.head.fc.bias)


def cifar_stem(model: nn.Module) -> nn.Module:
    """Convert a timm ResNet-family or VGG model built for 224x224 input to 32x32 input, in place.

    ResNet (``timm.models.resnet.ResNet``: resnet*, resnext*, seresnet*, ...): the 7x7 stride-2
    stem conv becomes a 3x3 stride-1 conv (deep 3x3 stems only lose their stride) and the
    max-pool is removed. VGG (``timm.models.vgg.VGG``): the 7x7 ConvMlp pre-logits block and
    its 4096-wide classifier are replaced by one Linear on the pooled 512-d feature. All other
    modules and their weights are kept as they are. Returns ``model`` for chaining.
    """
    if isinstance(model, ResNet):
        _resnet_cifar_stem(model)
        _set_input_size(model, 32, (4, 4))
    elif isinstance(model, VGG):
        vgg_cifar_head(model)
        _set_input_size(model, 32, (1, 1))
    else:
        raise TypeError(
            "cifar_stem supports timm ResNet-family models (timm.models.resnet.ResNet, e.g. "
            "resnet18/34/50, resnext, seresnet) and VGG models (timm.models.vgg.VGG, e.g. "
            f"vgg11/13/16/19 and their _bn variants); got {type(model).__module__}."
            f"{type(model).__qualname__}"
        )
    return model
