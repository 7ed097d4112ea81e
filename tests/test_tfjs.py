"""The TF.js loader: Tiny VGG converted exactly, checked on CNN Explainer's own demo images."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import cnn_core
from cnn_core.models import TINY_VGG_CLASSES, tiny_vgg_demo_images
from cnn_core.tfjs import ChannelsLastFlatten, load_tfjs_model


@pytest.fixture(scope="module")
def demo(tiny_vgg_folder):
    """The demo images as [N, 3, 64, 64] pixels in [0, 1], their classes and file names."""
    demos = tiny_vgg_demo_images(tiny_vgg_folder.parent)
    pixels = torch.cat([cnn_core.preprocess(path, size=64, normalization=cnn_core.UNIT) for path, _ in demos])
    return pixels, torch.tensor([label for _, label in demos]), [path.name for path, _ in demos]


def keras_forward(folder, pixels: torch.Tensor) -> np.ndarray:
    """Tiny VGG computed the Keras way, in numpy: NHWC activations, HWIO kernels, NHWC flatten."""
    spec = json.loads((folder / "model.json").read_text())
    raw = np.fromfile(folder / "group1-shard1of1.bin", dtype="<f4")
    weights, offset = {}, 0
    for entry in spec["weightsManifest"][0]["weights"]:
        size = int(np.prod(entry["shape"]))
        weights[entry["name"]] = raw[offset:offset + size].reshape(entry["shape"]).astype(np.float64)
        offset += size
    x = pixels.permute(0, 2, 3, 1).double().numpy()
    for block in (1, 2):
        for conv in (1, 2):
            kernel, bias = weights[f"conv_{block}_{conv}/kernel"], weights[f"conv_{block}_{conv}/bias"]
            windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))  # N, H, W, C, 3, 3
            x = np.maximum(np.einsum("nhwcij,ijco->nhwo", windows, kernel) + bias, 0)
        n, h, w, c = x.shape
        x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    return x.reshape(len(x), -1) @ weights["output/kernel"] + weights["output/bias"]


def test_conversion_matches_an_independent_keras_computation(tiny_vgg_folder, demo):
    model = load_tfjs_model(tiny_vgg_folder)
    pixels, _, _ = demo
    with torch.no_grad():
        ours = model(pixels).double().numpy()
    # float32 torch against float64 numpy on logits of magnitude ~10: agreement to 1e-4 absolute.
    np.testing.assert_allclose(ours, keras_forward(tiny_vgg_folder, pixels), rtol=0, atol=1e-4)


def test_the_demo_images_are_recognised(tiny_vgg_folder, demo):
    """The images CNN Explainer shows by default (``*_1``) are all classified right, 14 of 20 overall."""
    model = cnn_core.load_model("tiny-vgg", weights=tiny_vgg_folder / "model.json")
    pixels, labels, names = demo
    with torch.no_grad():
        predicted = model(pixels).argmax(dim=1)
    right = {name for name, p, y in zip(names, predicted, labels) if p == y}
    assert {name for name in names if name.endswith("_1.jpeg")} <= right
    assert len(right) >= 14, sorted(set(names) - right)
    assert cnn_core.model_card(model).class_names == TINY_VGG_CLASSES and cnn_core.model_card(model).normalization == cnn_core.UNIT


def test_flattening_in_torch_order_breaks_the_model(tiny_vgg_folder, demo, monkeypatch):
    """Break: Keras flattens channels-last; flattening NCHW instead must ruin the predictions."""
    monkeypatch.setattr(ChannelsLastFlatten, "forward", lambda self, x: x.flatten(1))
    model = load_tfjs_model(tiny_vgg_folder)
    pixels, labels, _ = demo
    with torch.no_grad():
        right = int((model(pixels).argmax(dim=1) == labels).sum())
    assert right <= 6


def test_random_twin_keeps_the_architecture_not_the_weights(tiny_vgg_folder):
    trained = cnn_core.load_model("tiny-vgg", weights=tiny_vgg_folder / "model.json")
    twin = cnn_core.random_twin(trained)
    assert [n for n, _ in twin.named_modules()] == [n for n, _ in trained.named_modules()]
    assert not torch.equal(twin.conv_1_1.weight, trained.conv_1_1.weight)
    assert cnn_core.model_card(twin).weights.startswith("random") and not cnn_core.is_trained(twin)


@pytest.mark.parametrize("mutate, problem", [
    (lambda spec: spec["modelTopology"]["model_config"].update(class_name="Model"), "only Keras Sequential"),
    (lambda spec: spec["modelTopology"]["model_config"]["config"]["layers"][1].update(class_name="LSTM"), "LSTM"),
    (lambda spec: spec["weightsManifest"][0]["weights"].pop(), "bytes more than the manifest"),
], ids=["functional-model", "unsupported-layer", "manifest-short"])
def test_unsupported_or_inconsistent_files_raise_weights_error(tiny_vgg_folder, tmp_path, mutate, problem):
    spec = json.loads((tiny_vgg_folder / "model.json").read_text())
    mutate(spec)
    (tmp_path / "model.json").write_text(json.dumps(spec))
    (tmp_path / "group1-shard1of1.bin").write_bytes((tiny_vgg_folder / "group1-shard1of1.bin").read_bytes())
    with pytest.raises(cnn_core.WeightsError, match=problem):
        load_tfjs_model(tmp_path)


def test_missing_fixture_says_how_to_fetch_it(monkeypatch, tmp_path):
    monkeypatch.delenv(cnn_core.fixtures.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # an empty cache: nothing fetched
    with pytest.raises(cnn_core.WeightsError, match=r"no fixtures folder was found .*CNN_CLAIMS_FIXTURES.*python -m claims fetch"):
        cnn_core.load_model("tiny-vgg", weights="auto")
