"""capture: true outputs despite in-place ReLUs, early stop, hook hygiene, torchvision parity."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

import cnn_core
from cnn_core.activations import copied_layers


@pytest.fixture(scope="module")
def vgg16(zoo):
    return zoo.get("vgg16")


def hook_count(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_conv_layers_are_captured_before_the_in_place_relu(vgg16, image_tensor):
    maps = cnn_core.capture(vgg16, image_tensor, ["features.2", "features.3", "features.28", "features.29"])
    with torch.no_grad():
        conv1_2 = vgg16.features[:3](image_tensor.clone())
        conv5_3 = vgg16.features[:29](image_tensor.clone())
    assert torch.equal(maps["features.2"], conv1_2) and (maps["features.2"] < 0).any()
    assert torch.equal(maps["features.3"], conv1_2.relu())
    assert torch.equal(maps["features.28"], conv5_3) and (maps["features.28"] < 0).any()
    assert torch.equal(maps["features.29"], conv5_3.relu())


def test_only_overwritten_layers_are_copied(zoo, image_tensor):
    model = cnn_core.load_model("vgg11")  # a fresh model: nothing learned about it yet
    cnn_core.capture(model, image_tensor, ["features.4", "features.6"])  # pool, then a conv at the stop
    assert copied_layers(model) == set()
    cnn_core.capture(model, image_tensor, ["features.3", "features.6"])  # conv2_1, then its in-place ReLU runs
    assert copied_layers(model) == {"features.3"}


def test_matches_torchvision_feature_extraction_bit_for_bit(vgg16, image_tensor):
    nodes = ["features.3", "features.4", "features.16", "features.28"]
    extractor = create_feature_extractor(vgg16, nodes)
    with torch.no_grad():
        expected = extractor(image_tensor.clone())
    maps = cnn_core.capture(vgg16, image_tensor, nodes)
    for node in nodes:
        assert torch.equal(maps[node], expected[node]), node


def test_torchvision_returns_post_relu_where_an_in_place_op_follows(vgg16, image_tensor):
    """Why capture exists: create_feature_extractor's 'features.2' is already overwritten."""
    with torch.no_grad():
        extracted = create_feature_extractor(vgg16, ["features.2", "features.3"])(image_tensor.clone())
    ours = cnn_core.capture(vgg16, image_tensor, "features.2")["features.2"]
    assert torch.equal(extracted["features.2"], extracted["features.3"])
    assert not torch.equal(ours, extracted["features.2"])


def test_forward_stops_after_the_deepest_requested_layer(vgg16, image_tensor):
    ran = []
    handle = vgg16.classifier.register_forward_hook(lambda *args: ran.append("classifier"))
    try:
        cnn_core.capture(vgg16, image_tensor, "features.28")
    finally:
        handle.remove()
    assert ran == []


def test_no_hooks_remain_after_success_or_failure(vgg16, image_tensor, monkeypatch):
    before = hook_count(vgg16)
    cnn_core.capture(vgg16, image_tensor, ["conv1_2", "fc8"])
    assert hook_count(vgg16) == before

    def explode(_x):
        raise RuntimeError("boom")

    monkeypatch.setattr(vgg16.features[10], "forward", explode)
    with pytest.raises(RuntimeError, match="boom"):
        cnn_core.capture(vgg16, image_tensor, ["features.2", "features.28"])
    assert hook_count(vgg16) == before


def test_reused_modules_are_captured_per_call(zoo):
    model = zoo.get("resnet18")
    x = cnn_core.preprocess(cnn_core.load_image(), size=64)
    maps = cnn_core.capture(model, x, ["layer1.0.bn1", "layer1.0.relu@0", "layer1.0.relu@1", "layer1.0"])
    assert torch.equal(maps["layer1.0.relu@0"], maps["layer1.0.bn1"].relu())
    assert torch.equal(maps["layer1.0.relu@1"], maps["layer1.0"])
    with pytest.raises(cnn_core.InputError, match="does not run 3 times"):
        cnn_core.capture(model, x, "layer1.0.relu@2")


def test_aliases_are_returned_under_the_name_asked_for(vgg16, image_tensor):
    maps = cnn_core.capture(vgg16, image_tensor, ["conv5_3", "features.28"])
    assert set(maps) == {"conv5_3", "features.28"} and torch.equal(maps["conv5_3"], maps["features.28"])


@pytest.mark.parametrize("bad, problem", [
    (torch.zeros(3, 224, 224), "unsqueeze"),
    (torch.zeros(1, 3, 224, 224, dtype=torch.int64), "floating-point"),
    (torch.full((1, 3, 224, 224), float("nan")), "NaN"),
    (torch.zeros(1, 3, 224, 224, dtype=torch.float64), "float64 but the model is torch.float32"),
    ("not a tensor", "torch.Tensor"),
], ids=["no-batch", "int64", "nan", "float64", "string"])
def test_bad_inputs_raise_input_error(vgg16, bad, problem):
    with pytest.raises(cnn_core.InputError, match=problem):
        cnn_core.capture(vgg16, bad, "features.2")


def state_fingerprint(model) -> list[tuple[str, bytes]]:
    return [(name, tensor.detach().cpu().numpy().tobytes()) for name, tensor in model.state_dict().items()]


@pytest.mark.parametrize("call, error", [
    (lambda m, x: cnn_core.capture(m, x, "conv5_4"), cnn_core.LayerNotFound),
    (lambda m, x: cnn_core.capture(m, x[0], "conv5_3"), cnn_core.InputError),
    (lambda m, x: cnn_core.capture(m, x * float("inf"), "conv5_3"), cnn_core.InputError),
    (lambda m, x: cnn_core.occlusion_diff(m, x, cnn_core.Box(200, 200, 300, 300), "conv5_3"), cnn_core.InputError),
    (lambda m, x: cnn_core.occlusion_map(m, x, window=500, stride=8, target=1), cnn_core.InputError),
    (lambda m, x: cnn_core.receptive_field(m, "features.99"), cnn_core.LayerNotFound),
], ids=["unknown-layer", "no-batch", "infinite-input", "box-outside", "window-too-large", "unknown-field-layer"])
def test_after_any_error_no_hooks_remain_and_the_model_is_unchanged(vgg16, image_tensor, call, error):
    before_hooks, before_state = hook_count(vgg16), state_fingerprint(vgg16)
    with pytest.raises(error):
        call(vgg16, image_tensor)
    assert hook_count(vgg16) == before_hooks and state_fingerprint(vgg16) == before_state


def test_capture_works_inside_inference_mode(vgg16, image_tensor):
    expected = cnn_core.capture(vgg16, image_tensor, ["features.2", "features.3"])
    with torch.inference_mode():
        inside = cnn_core.capture(vgg16, image_tensor.clone(), ["features.2", "features.3"])
    assert all(torch.equal(inside[k], expected[k]) for k in expected)


def test_a_view_the_whole_model_refuses_is_captured_on_the_model_cut_after_the_layer():
    """A ViT asserts its image size before its patch embedding runs: a 32-px view of a model built
    for 64 px is captured at ``conv_proj`` by the model cut after it, with the same values."""
    vit = torchvision.models.VisionTransformer(image_size=64, patch_size=16, num_layers=1, num_heads=2,
                                               hidden_dim=16, mlp_dim=32).eval()
    cnn_core.models.with_card(vit, dataclasses.replace(cnn_core.model_card(vit), input_size=64))
    view = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError, match="Wrong image height"):
        vit(view)
    captured = cnn_core.capture(vit, view, "conv_proj")["conv_proj"]
    torch.testing.assert_close(captured, vit.conv_proj(view), rtol=0, atol=0)
