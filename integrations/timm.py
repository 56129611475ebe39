"""The AdaLFL paper's base models (§4.3) in timm's model registry, plus a CIFAR adapter.

Importing ``adaloss.integrations.timm`` registers these entrypoints with
``timm.models.register_model``. All names carry the prefix ``adaloss_`` so they never clash
with timm's own models and ``timm.list_models("adaloss_*")`` lists exactly this set.

Parameter counts are for 10 classes:

- ``adaloss_mlp``: two hidden layers of 1000 ReLU units (Baydin et al. 2018); 1,796,010.
- ``adaloss_logistic``: logistic regression, flatten + one Linear; 7,850.
- ``adaloss_lenet5``: LeNet-5 (LeCun et al. 1998) for 1x28x28 input; 61,706.
- ``adaloss_allcnn_c``: All-CNN-C (Springenberg et al. 2014) with BatchNorm; 1,372,234.
- ``adaloss_resnet18_cifar``: timm ``ResNet`` (BasicBlock, [2, 2, 2, 2]) with a 3x3 stride-1
  stem and no max-pool; 11,173,962.
- ``adaloss_vgg16_cifar``: timm ``VGG`` (vgg16 layers, BatchNorm) with one Linear(512, C) head
  for 32x32 input; 14,728,266.
- ``adaloss_wrn28_10`` / ``adaloss_wrn16_8``: Wide ResNets (Zagoruyko & Komodakis 2016);
  36,479,194 / 10,961,370.
- ``adaloss_squeezenet_cifar``: torchvision ``squeezenet1_1`` with a 3x3 stride-1 first conv for
  32x32 input; 727,626.

Every entrypoint takes ``pretrained=False`` and forwards ``num_classes``, ``in_chans`` and
other keyword arguments to the model, like timm's own; use ``timm.create_model(name, ...)``.
No configuration names a URL or Hugging Face hub id, so nothing is ever downloaded:
``pretrained=True`` loads a local state dict through timm's own loader when given
``pretrained_cfg_overlay=dict(file=path)`` and raises otherwise.

``cifar_stem(model)`` converts a timm ResNet-family or VGG model built for 224x224 ImageNet
input to 32x32 input, keeping every other weight.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import ClassifierHead, create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet
from timm.models.vgg import VGG
from timm.models.vgg import cfgs as _vgg_layer_cfgs
from torch import nn

from adaloss.normalization import NORMALIZATION

__all__ = [
    "MLP",
    "AllCNNC",
    "LeNet5",
    "SqueezeNetCifar",
    "WideResNet",
    "cifar_stem",
]


def _normalization(dataset: str) -> dict[str, tuple[float, ...]]:
    """mean/std of a pretrained config: the values the benchmark's loader normalizes with."""
    mean, std = NORMALIZATION[dataset]
    return {"mean": mean, "std": std}


def _linear_or_identity(in_features: int, num_classes: int) -> nn.Module:
    """Classifier layer, or Identity for ``num_classes=0`` (timm's feature-extractor convention)."""
    return nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()


def _to_2tuple(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Normalise an image size to (H, W)."""
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _device_dtype(module: nn.Module) -> tuple[Any, torch.dtype | None]:
    """Device and dtype of a module's first parameter or buffer (None, None for an empty one)."""
    for t in (*module.parameters(), *module.buffers()):
        return t.device, t.dtype
    return None, None


def _place(module: nn.Module, device: Any = None, dtype: torch.dtype | None = None) -> None:
    """Move a freshly built model to the requested device/dtype (timm passes them as kwargs)."""
    if device is not None or dtype is not None:
        module.to(device=device, dtype=dtype)


# --------------------------------------------------------------------------- small models


class _DenseHead(nn.Module):
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
        device, dtype = _device_dtype(self)
        self.head = _linear_or_identity(self.num_features, num_classes).to(device, dtype)

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


class MLP(_DenseHead):
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
        h, w = _to_2tuple(img_size)
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
        self.head = _linear_or_identity(prev, num_classes)
        _place(self, device, dtype)


class LeNet5(_DenseHead):
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
        h, w = _to_2tuple(img_size)
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
        self.head = _linear_or_identity(84, num_classes)
        _place(self, device, dtype)


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
        _place(self, device, dtype)

    def get_classifier(self) -> nn.Module:
        """The final 1x1 conv (timm API)."""
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the final 1x1 conv (timm API)."""
        self.num_classes = num_classes
        device, dtype = _device_dtype(self)
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


# --------------------------------------------------------------------------- Wide ResNet


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
        _place(self, device, dtype)

    def get_classifier(self) -> nn.Module:
        """The final Linear (timm API)."""
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace pooling/classifier for ``num_classes`` outputs (timm API)."""
        self.num_classes = num_classes
        device, dtype = _device_dtype(self)
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


# --------------------------------------------------------------------------- SqueezeNet


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
        _place(self, device, dtype)

    def get_classifier(self) -> nn.Module:
        """The final 1x1 conv (timm API)."""
        return self.classifier[1]

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the final 1x1 conv; ``num_classes=0`` leaves pooled features (timm API)."""
        self.num_classes = num_classes
        if num_classes > 0:
            conv = nn.Conv2d(self.num_features, num_classes, 1).to(*_device_dtype(self))
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


# --------------------------------------------------------------------------- CIFAR adapter


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


def _vgg_cifar_head(model: VGG) -> None:
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
    ).to(*_device_dtype(model.features))
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
        _vgg_cifar_head(model)
        _set_input_size(model, 32, (1, 1))
    else:
        raise TypeError(
            "cifar_stem supports timm ResNet-family models (timm.models.resnet.ResNet, e.g. "
            "resnet18/34/50, resnext, seresnet) and VGG models (timm.models.vgg.VGG, e.g. "
            f"vgg11/13/16/19 and their _bn variants); got {type(model).__module__}."
            f"{type(model).__qualname__}"
        )
    return model


def _cifar_resnet(**kwargs: Any) -> ResNet:
    """timm ``ResNet`` with the CIFAR stem, built before any weights are loaded."""
    return cifar_stem(ResNet(**kwargs))


def _cifar_vgg(cfg: list[Any], device: Any = None, **kwargs: Any) -> VGG:
    """timm ``VGG`` with the CIFAR head; built on the meta device so the unused ~100 M-param
    ConvMlp is never allocated, then materialised and initialised with VGG's own init."""
    with torch.device("meta"):
        model = VGG(cfg, **kwargs)
        _vgg_cifar_head(model)
    model.to_empty(device=device if device is not None else torch.get_default_device())
    for m in model.modules():
        if hasattr(m, "reset_parameters"):  # e.g. BatchNorm running statistics
            m.reset_parameters()
    model._initialize_weights()
    return model


# --------------------------------------------------------------------------- registry


def _cfg(**kwargs: Any) -> dict[str, Any]:
    """Pretrained config for a 32x32 RGB CIFAR-10 model with no downloadable weights."""
    return {
        "url": "",
        "num_classes": 10,
        "input_size": (3, 32, 32),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        **_normalization("cifar10"),
        "first_conv": "conv1",
        "classifier": "fc",
        "paper_ids": "arXiv:2301.13247",
        **kwargs,
    }


_MNIST = dict(input_size=(1, 28, 28), **_normalization("mnist"))

default_cfgs = generate_default_cfgs(
    {
        "adaloss_mlp": _cfg(
            **_MNIST, fixed_input_size=True, first_conv=None, classifier="head",
            description="2x1000 ReLU MLP (Baydin et al. 2018)",
        ),
        "adaloss_logistic": _cfg(
            **_MNIST, fixed_input_size=True, first_conv=None, classifier="head",
            description="logistic regression",
        ),
        "adaloss_lenet5": _cfg(
            **_MNIST, fixed_input_size=True, first_conv="features.0", classifier="head",
            description="LeNet-5 (LeCun et al. 1998)",
        ),
        "adaloss_allcnn_c": _cfg(
            pool_size=(6, 6), first_conv="features.0", classifier="head.fc",
            description="All-CNN-C (Springenberg et al. 2014)",
        ),
        "adaloss_resnet18_cifar": _cfg(
            pool_size=(4, 4), description="ResNet-18 (He et al. 2016), CIFAR stem",
        ),
        "adaloss_vgg16_cifar": _cfg(
            pool_size=(1, 1), first_conv="features.0", classifier="head.fc",
            description="VGG-16 with BatchNorm (Simonyan & Zisserman 2015), CIFAR head",
        ),
        "adaloss_wrn28_10": _cfg(
            num_classes=100, **_normalization("cifar100"), pool_size=(8, 8),
            description="WRN-28-10 (Zagoruyko & Komodakis 2016), CIFAR-100 in the paper",
        ),
        "adaloss_wrn16_8": _cfg(
            **_normalization("svhn"), pool_size=(8, 8),
            description="WRN-16-8 (Zagoruyko & Komodakis 2016), SVHN in the paper",
        ),
        "adaloss_squeezenet_cifar": _cfg(
            pool_size=(4, 4), first_conv="features.0", classifier="classifier.1",
            description="SqueezeNet 1.1 (Iandola et al. 2016), CIFAR stem",
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


@register_model
def adaloss_lenet5(pretrained: bool = False, **kwargs: Any) -> LeNet5:
    """LeNet-5 for 1x28x28 input (MNIST in the paper)."""
    return build_model_with_cfg(LeNet5, "adaloss_lenet5", pretrained, **kwargs)


@register_model
def adaloss_allcnn_c(pretrained: bool = False, **kwargs: Any) -> AllCNNC:
    """All-CNN-C for 32x32 input (CIFAR-10 in the paper)."""
    return build_model_with_cfg(AllCNNC, "adaloss_allcnn_c", pretrained, **kwargs)


@register_model
def adaloss_resnet18_cifar(pretrained: bool = False, **kwargs: Any) -> ResNet:
    """timm ResNet-18 (BasicBlock, [2, 2, 2, 2]) with the CIFAR stem (CIFAR-10 in the paper)."""
    model_args = dict(block=BasicBlock, layers=(2, 2, 2, 2))
    return build_model_with_cfg(
        _cifar_resnet, "adaloss_resnet18_cifar", pretrained, **dict(model_args, **kwargs)
    )


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


@register_model
def adaloss_squeezenet_cifar(pretrained: bool = False, **kwargs: Any) -> SqueezeNetCifar:
    """torchvision SqueezeNet 1.1 with a 3x3 stride-1 first conv (CIFAR-10 in the paper)."""
    return build_model_with_cfg(SqueezeNetCifar, "adaloss_squeezenet_cifar", pretrained, **kwargs)
