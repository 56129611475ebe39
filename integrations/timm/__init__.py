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

One model family per module, as timm lays out its own (each defines its models, their
``default_cfgs`` and ``@register_model`` entrypoints): ``mlp``, ``lenet``, ``allcnn``,
``wide_resnet``, ``squeezenet_cifar``, ``resnet_cifar``, ``vgg_cifar``; ``cifar`` holds the
adapter and ``_common`` what they share. This module only imports them, which registers them.
"""

from adaloss.integrations.timm.allcnn import AllCNNC, adaloss_allcnn_c
from adaloss.integrations.timm.cifar import cifar_stem
from adaloss.integrations.timm.lenet import LeNet5, adaloss_lenet5
from adaloss.integrations.timm.mlp import MLP, adaloss_logistic, adaloss_mlp
from adaloss.integrations.timm.resnet_cifar import adaloss_resnet18_cifar
from adaloss.integrations.timm.squeezenet_cifar import SqueezeNetCifar, adaloss_squeezenet_cifar
from adaloss.integrations.timm.vgg_cifar import adaloss_vgg16_cifar
from adaloss.integrations.timm.wide_resnet import WideResNet, adaloss_wrn16_8, adaloss_wrn28_10

__all__ = [
    "MLP",
    "AllCNNC",
    "LeNet5",
    "SqueezeNetCifar",
    "WideResNet",
    "adaloss_allcnn_c",
    "adaloss_lenet5",
    "adaloss_logistic",
    "adaloss_mlp",
    "adaloss_resnet18_cifar",
    "adaloss_squeezenet_cifar",
    "adaloss_vgg16_cifar",
    "adaloss_wrn16_8",
    "adaloss_wrn28_10",
    "cifar_stem",
]
