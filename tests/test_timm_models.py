"""The paper's base models in timm's registry (adaloss.integrations.timm) and the CIFAR adapter."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import adaloss.integrations.timm as adaloss_timm

# name -> (reference parameter count for 10 classes, where the reference comes from).
# Each count is checked to within 2 %; all of ours are in fact within 0.2 %.
REFERENCE_PARAMS: dict[str, tuple[int, str]] = {
    "adaloss_mlp": (
        1_796_010,
        "Baydin et al. 2018 MNIST MLP 784-1000-1000-10: 785*1000 + 1001*1000 + 1001*10",
    ),
    "adaloss_logistic": (7_850, "logistic regression on 28x28 MNIST: 785*10"),
    "adaloss_lenet5": (
        61_706,
        "LeNet-5 (LeCun et al. 1998), dense C3: conv 156 + 2,416, fc 48,120 + 10,164 + 850",
    ),
    "adaloss_allcnn_c": (
        1_369_738,
        "All-CNN-C layer list of Springenberg et al. 2014 (convs with biases, no BatchNorm); "
        "our default adds BatchNorm after each hidden conv, +2,496",
    ),
    "adaloss_resnet18_cifar": (
        11_173_962,
        "CIFAR ResNet-18 of kuangliu/pytorch-cifar, also used in the AdaLFL authors' "
        "Evolved-Model-Agnostic-Loss code (experiments/resources/models/resnet.py)",
    ),
    "adaloss_vgg16_cifar": (
        14_728_266,
        "CIFAR VGG-16 with BatchNorm and Linear(512, 10) of kuangliu/pytorch-cifar, also the "
        "AdaLFL authors' Evolved-Model-Agnostic-Loss experiments/resources/models/vgg.py",
    ),
    "adaloss_wrn28_10": (
        36_500_000,
        "Zagoruyko & Komodakis 2016, parameter table: WRN-28-10 36.5M",
    ),
    "adaloss_wrn16_8": (11_000_000, "Zagoruyko & Komodakis 2016, parameter table: WRN-16-8 11.0M"),
    "adaloss_squeezenet_cifar": (
        727_626,
        "torchvision squeezenet1_1: 1,235,496 params at 1000 classes (torchvision docs); "
        "classifier conv 512*1000+1000 -> 512*10+10; the 3x3 3->64 stem keeps its shape",
    ),
}
BIG = {"adaloss_wrn28_10"}  # build + one B=1 forward only


@pytest.fixture(autouse=True)
def _one_thread():
    """Keep the CPU checks predictable on small CI machines."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _input(model: nn.Module, batch: int) -> torch.Tensor:
    return torch.randn(batch, *model.pretrained_cfg["input_size"])


def test_registered_names_are_exactly_the_paper_models():
    assert set(timm.list_models("adaloss_*")) == set(REFERENCE_PARAMS)
    assert all(name.startswith("adaloss_") for name in REFERENCE_PARAMS)


def test_no_registered_model_can_download_anything():
    assert timm.list_models("adaloss_*", pretrained=True) == []
    for name in REFERENCE_PARAMS:
        cfg = timm.models.get_pretrained_cfg(name)
        assert not cfg.url and not cfg.hf_hub_id and not cfg.file
    with pytest.raises(RuntimeError, match="No pretrained weights"):
        timm.create_model("adaloss_logistic", pretrained=True)


@pytest.mark.parametrize("name", sorted(set(REFERENCE_PARAMS) - BIG))
def test_model_forward_and_param_count(name: str):
    model = timm.create_model(name, pretrained=False, num_classes=10).eval()
    cfg = model.pretrained_cfg
    assert cfg["num_classes"] == 10 and len(cfg["input_size"]) == 3
    assert model.default_cfg is cfg
    assert model.num_classes == 10
    with torch.no_grad():
        out = model(_input(model, 2))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    reference, _source = REFERENCE_PARAMS[name]
    assert _n_params(model) == pytest.approx(reference, rel=0.02)


def test_wrn28_10_builds_and_runs_one_image():
    model = timm.create_model("adaloss_wrn28_10", num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10)
    assert _n_params(model) == pytest.approx(REFERENCE_PARAMS["adaloss_wrn28_10"][0], rel=0.02)


def test_exact_counts_of_the_standard_cifar_implementations():
    # Same layers as the references, so the counts agree exactly, not just within 2 %.
    for name in ("adaloss_resnet18_cifar", "adaloss_vgg16_cifar", "adaloss_squeezenet_cifar"):
        assert _n_params(timm.create_model(name, num_classes=10)) == REFERENCE_PARAMS[name][0]
    # timm.create_model drops None-valued kwargs, so "no norm" is spelled nn.Identity there
    no_bn = timm.create_model("adaloss_allcnn_c", num_classes=10, norm_layer=nn.Identity)
    assert _n_params(no_bn) == REFERENCE_PARAMS["adaloss_allcnn_c"][0]


def test_wide_resnet_uses_preactivation_blocks_and_dropout_option():
    model = timm.create_model("adaloss_wrn16_8", num_classes=10, drop_rate=0.3)
    block = model.layer2[0]
    assert isinstance(block.bn1, nn.BatchNorm2d) and block.bn1.num_features == 128
    assert block.conv1.out_channels == 256 and block.conv1.stride == (2, 2)
    assert block.drop.p == 0.3
    assert [len(model.layer1), len(model.layer2), len(model.layer3)] == [2, 2, 2]
    assert model.num_features == 512  # 64 * k


def test_resnet18_cifar_is_timms_resnet_with_cifar_stem():
    model = timm.create_model("adaloss_resnet18_cifar", num_classes=10)
    assert isinstance(model, timm.models.resnet.ResNet)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 512, 4, 4)


def test_vgg16_cifar_is_timms_vgg_with_linear_head():
    model = timm.create_model("adaloss_vgg16_cifar", num_classes=10)
    assert isinstance(model, timm.models.vgg.VGG)
    assert isinstance(model.pre_logits, nn.Identity)
    assert isinstance(model.get_classifier(), nn.Linear)
    assert model.get_classifier().in_features == 512
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 13
    bn = model.features[1]  # materialised from the meta device: real running statistics
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", ["adaloss_mlp", "adaloss_logistic"])
def test_mlp_on_tabular_regression_data(name: str):
    model = timm.create_model(name, in_features=10, num_classes=1)
    assert model(torch.randn(4, 10)).shape == (4, 1)


def test_mlp_in_features_follow_image_size_and_channels():
    assert timm.create_model("adaloss_mlp").in_features == 784
    assert timm.create_model("adaloss_mlp", in_chans=3, img_size=32).in_features == 3 * 32 * 32


@pytest.mark.parametrize("name", sorted(set(REFERENCE_PARAMS) - BIG))
def test_timm_classifier_api(name: str):
    model = timm.create_model(name, num_classes=0).eval()
    x = _input(model, 2)
    with torch.no_grad():
        assert model(x).shape == (2, model.num_features)
        model.reset_classifier(3)
        assert model(x).shape == (2, 3)


@pytest.mark.parametrize("name", ["adaloss_lenet5", "adaloss_resnet18_cifar"])
def test_pretrained_cfg_overlay_loads_a_local_file(name: str, tmp_path):
    torch.manual_seed(0)
    source = timm.create_model(name, num_classes=10)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)

    torch.manual_seed(1)  # a different init, so equality below proves the file was loaded
    loaded = timm.create_model(
        name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), num_classes=10
    )
    expected = source.state_dict()
    got = loaded.state_dict()
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


@pytest.mark.parametrize("name", sorted(set(REFERENCE_PARAMS) - BIG))
def test_pretrained_file_with_new_class_count_drops_only_the_classifier(name: str, tmp_path):
    # Checks that each pretrained_cfg names the right first_conv/classifier for timm's loader.
    source = timm.create_model(name, num_classes=10)
    path = tmp_path / "weights.pth"
    torch.save(source.state_dict(), path)
    model = timm.create_model(
        name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), num_classes=4
    )
    assert model.num_classes == 4
    head_ids = {id(p) for p in model.get_classifier().parameters()}
    fresh = {key for key, p in model.named_parameters() if id(p) in head_ids}
    assert fresh and all(p.shape[0] == 4 for p in model.get_classifier().parameters())
    expected = source.state_dict()
    for key, value in model.state_dict().items():
        if key not in fresh:
            assert torch.equal(value, expected[key]), key


# ------------------------------------------------------------------ cifar_stem adapter


def _snapshot(
    model: nn.Module, skip: tuple[str, ...]
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Tensor objects and value copies of every parameter/buffer outside the replaced parts."""
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    return {k: (t, t.detach().clone()) for k, t in tensors.items() if not k.startswith(skip)}


@pytest.mark.parametrize(
    ("name", "replaced"),
    [
        ("resnet18", ("conv1.",)),
        ("resnet34", ("conv1.",)),
        ("resnet18d", ()),  # deep 3x3 stem: only the stride changes, every weight is kept
        ("vgg11", ("pre_logits.", "head.")),
    ],
)
def test_cifar_stem_adapts_imagenet_models_and_keeps_other_weights(name, replaced):
    model = timm.create_model(name, pretrained=False, num_classes=10)
    kept = _snapshot(model, replaced)
    assert kept  # sanity

    assert adaloss_timm.cifar_stem(model) is model
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)

    now = dict(model.named_parameters())
    now.update(model.named_buffers())
    for key, (tensor, value) in kept.items():
        assert now[key] is tensor, key
        assert torch.equal(now[key], value), key
    assert model.pretrained_cfg["input_size"] == (3, 32, 32)
    assert timm.data.resolve_data_config(model=model)["input_size"] == (3, 32, 32)


def test_cifar_stem_resnet_geometry_and_idempotence():
    model = adaloss_timm.cifar_stem(timm.create_model("resnet34", num_classes=10))
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 512, 4, 4)
    conv1 = model.conv1
    adaloss_timm.cifar_stem(model)
    assert model.conv1 is conv1


def test_cifar_stem_vgg_has_small_head():
    model = adaloss_timm.cifar_stem(timm.create_model("vgg11", num_classes=10))
    assert isinstance(model.pre_logits, nn.Identity)
    assert model.get_classifier().weight.shape == (10, 512)
    assert _n_params(model) < 10_000_000  # the 7x7x512x4096 ConvMlp (~103 M) is gone


@pytest.mark.parametrize("model", [nn.Linear(3, 2), nn.Sequential(nn.Conv2d(3, 8, 3))])
def test_cifar_stem_rejects_unsupported_models(model):
    with pytest.raises(TypeError, match=r"ResNet.*VGG"):
        adaloss_timm.cifar_stem(model)
