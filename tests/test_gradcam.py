"""Grad-CAM (cnn_core.grad_cam): captum's LayerGradCam as the oracle on three architectures, the default layer,
the classes it is taken for, clear errors, and no hook left behind."""
from __future__ import annotations

import pytest
import torch

import cnn_core

LayerGradCam = pytest.importorskip("captum.attr", reason="captum is the oracle: pip install captum").LayerGradCam

# Random inits suffice: Grad-CAM's arithmetic does not depend on what was learned, and the oracle sees the same model.
ARCHITECTURES = {"vgg16": "avgpool", "resnet18": "layer4", "mobilenet_v2": "features"}


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_grad_cam_equals_captums_layer_grad_cam(name, photos):
    model = cnn_core.load_model(name, "none", seed=3)
    assert cnn_core.last_conv_stage(model) == ARCHITECTURES[name]
    before = hook_count(model)
    ours = cnn_core.grad_cam(model, photos)
    assert hook_count(model) == before
    layer = model.get_submodule(ours.layer)
    with torch.no_grad():
        top = model(photos).argmax(dim=1)
    theirs = LayerGradCam(model, layer).attribute(photos, target=top, relu_attributions=True).squeeze(1).detach()
    assert ours.targets == tuple(top.tolist()) and ours.maps.shape == theirs.shape
    # float32 sums in another order: within 1e-5 of the largest value of the map
    assert torch.allclose(ours.maps, theirs, rtol=0, atol=1e-5 * float(theirs.abs().max())), name
    assert ours.maps.max() > 0


def test_a_named_layer_and_class_and_the_in_place_relu_after_it(photos):
    """VGG16's conv5_3 is followed by ReLU(inplace=True): the map is made of the conv's own (pre-ReLU) output."""
    model = cnn_core.load_model("vgg16", "none", seed=3)
    cam = cnn_core.grad_cam(model, photos, layer="conv5_3", target=7)
    theirs = LayerGradCam(model, model.features[28]).attribute(photos.clone(), target=7, relu_attributions=True)
    assert cam.layer == "features.28" and cam.targets == (7, 7) and cam.maps.shape == (2, 14, 14)
    theirs = theirs.squeeze(1).detach()
    assert torch.allclose(cam.maps, theirs, rtol=0, atol=1e-5 * float(theirs.abs().max()))
    assert cam.upsampled((224, 224)).shape == (2, 224, 224)


def test_it_works_inside_no_grad_and_names_bad_input(photos):
    model = cnn_core.load_model("resnet18", "none", seed=3)
    with torch.no_grad():
        assert cnn_core.grad_cam(model, photos[:1]).maps.shape == (1, 7, 7)
    with pytest.raises(cnn_core.InputError, match="outside the model's 1000 classes"):
        cnn_core.grad_cam(model, photos, target=1000)
    with pytest.raises(cnn_core.InputError, match="3 classes for 2 images"):
        cnn_core.grad_cam(model, photos, target=[1, 2, 3])
    with pytest.raises(cnn_core.LayerNotFound, match="layer5"):
        cnn_core.grad_cam(model, photos, layer="layer5")
    with pytest.raises(cnn_core.InputError, match=r"needs a \[N, C, H, W\] output"):
        cnn_core.grad_cam(model, photos, layer="fc")
    assert hook_count(model) == 0
