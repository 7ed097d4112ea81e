"""Code Block 1 — First contact: image → tensors → activations.

"What happens when an image enters a CNN? 1. The image becomes a tensor: [batch, 3, 224, 224]
(3 RGB channels) 2. The first conv layer transforms it into [batch, 64, 224, 224] (64 feature maps)"
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import cnn_core
from claims.judging.expectations import record
from claims.judging.structural import (
    IMAGE_MODES,
    check_conv_arithmetic,
    check_first_conv_maps,
    check_image_tensor,
    check_notebook_transform,
    check_top1,
    conv_output_size,
    random_image,
)

pytestmark = [pytest.mark.structural, pytest.mark.block("1")]


@given(
    width=st.integers(1, 640), height=st.integers(1, 640), mode=st.sampled_from(IMAGE_MODES),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_image_becomes_a_1x3x224x224_tensor(width, height, mode, seed):
    """"The image becomes a tensor: `[batch, 3, 224, 224]` (3 RGB channels)" — for any size, aspect ratio and mode."""
    check_image_tensor(cnn_core.preprocess(random_image(mode, width, height, seed)))


def test_image_claim_fails_without_the_centre_crop(monkeypatch):
    """Break: without CenterCrop a non-square photo keeps its aspect ratio, and the claim must fail."""
    monkeypatch.setattr(cnn_core.images.transforms, "CenterCrop", lambda size: (lambda image: image))
    with pytest.raises(AssertionError, match=r"not \[1, 3, 224, 224\]"):
        check_image_tensor(cnn_core.preprocess(random_image("RGB", 300, 200, seed=0)))


def test_the_tensor_is_the_notebooks_transform(image, image_tensor):
    """"transforms.Resize(224), transforms.CenterCrop(224), transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])": the suite's
    tensor of the photo equals that transform computed by hand (PIL and numpy), channel by channel."""
    check_notebook_transform(image_tensor, image)


@pytest.mark.learned
def test_the_weights_see_the_photos_as_they_were_trained_to(classifier_name, zoo, classified_photos):
    """"transforms.Resize(...), transforms.ToTensor(), transforms.Normalize(mean=[0.485, 0.456, 0.406],
    std=[0.229, 0.224, 0.225])": a model's weights work only on images prepared the way they were
    trained on. Through the suite's own loading and the model's own preprocessing, every ImageNet
    classifier it has offline classifies the sample's photos at least as well as its published top-1."""
    model = zoo.get(classifier_name)
    card = cnn_core.model_card(model)
    if not card.head_trained or card.published_top1 is None:
        pytest.skip(f"{card.label}: no trained ImageNet classifier with a published top-1 to check against")
    sources, labels = classified_photos
    check_top1(model, zoo.preprocessed(classifier_name, sources), labels)


@pytest.mark.learned
@pytest.mark.parametrize("damage", ["channels-in-BGR-order", "not-normalised"])
def test_top1_fails_when_the_preprocessing_is_wrong(offline_classifier, zoo, classified_photos, damage):
    """Break: the same photos with their channels in B, G, R order, or left unnormalised."""
    card = cnn_core.model_card(offline_classifier)
    sources, labels = classified_photos
    photos = zoo.preprocessed(card.name, sources)
    wrong = {"channels-in-BGR-order": photos.flip(1), "not-normalised": cnn_core.denormalize(photos, card.normalization)}
    with pytest.raises(AssertionError, match="below its published ImageNet top-1"):
        check_top1(offline_classifier, wrong[damage], labels)


@pytest.mark.parametrize("damage", ["channels-in-BGR-order", "not-normalised", "corner-crop"])
def test_transform_claim_fails_when_the_transform_is_wrong(image, image_tensor, damage):
    """Break: BGR channel order, a missing Normalize, or a crop at the corner instead of the centre."""
    pixels = cnn_core.denormalize(image_tensor)
    wrong = {"channels-in-BGR-order": image_tensor.flip(1), "not-normalised": pixels,
             "corner-crop": cnn_core.preprocess(image.crop((0, 0, min(image.size), min(image.size))))}[damage]
    with pytest.raises(AssertionError, match="differs from the notebook's transform"):
        check_notebook_transform(wrong, image)


@pytest.mark.models("vgg*")
def test_first_conv_gives_64_maps_of_the_input_size(model, image_tensor):
    """"The first conv layer transforms it into `[batch, 64, 224, 224]` (64 feature maps)";
    "Filter shape: ... 64 filters, each 3x3x3 (RGB)"."""
    check_first_conv_maps(model, image_tensor)


def test_first_conv_claim_fails_without_padding(zoo, image_tensor, monkeypatch):
    """Break: with padding 0 the 3x3 conv shrinks 224 to 222, and the claim must fail."""
    model = zoo.get("vgg16")
    monkeypatch.setattr(model.features[0], "padding", (0, 0))
    with pytest.raises(AssertionError, match="not 64 maps of the input's size"):
        check_first_conv_maps(model, image_tensor)


def test_every_conv_follows_the_convolution_arithmetic(model):
    """"Each filter is a small `3×3` (or `5×5`) pattern that slides across the image" — so every
    conv's output size is floor((n + 2p - d(k-1) - 1) / s) + 1."""
    assert check_conv_arithmetic(model) > 0


@given(
    size=st.integers(1, 64), kernel=st.integers(1, 7), stride=st.integers(1, 4),
    padding=st.integers(0, 3), dilation=st.integers(1, 3),
)
def test_any_conv_follows_the_convolution_arithmetic(size, kernel, stride, padding, dilation):
    """The same arithmetic for any kernel, stride, padding, dilation and input size that torch accepts."""
    expected = conv_output_size(size, kernel, stride, padding, dilation)
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    if expected < 1:
        with pytest.raises(RuntimeError):
            conv(torch.zeros(1, 1, size, size))
        return
    assert conv(torch.zeros(1, 1, size, size)).shape[2:] == (expected, expected)


def test_conv_arithmetic_claim_fails_when_a_stride_is_ignored(zoo, monkeypatch):
    """Break: a conv whose stride attribute lies about what it computes must be caught."""
    model = zoo.get("resnet18")
    real_forward = model.conv1.forward
    monkeypatch.setattr(model.conv1, "forward", lambda x: real_forward(x)[:, :, :-1, :-1])
    with pytest.raises(AssertionError, match="conv1:"):
        check_conv_arithmetic(model)


@pytest.mark.learned
@pytest.mark.claim("L1-maps-differ")
def test_the_64_maps_are_different_filtered_versions(subject, claim, request):
    """"The image becomes 64 'filtered' versions", "64 different filtered versions of the image, each
    highlighting different local patterns": the first conv's maps of a photo are less alike (1 -
    mean |correlation| between two maps) than random initialisations' maps are, beyond their spread."""
    record(request, *subject.verdicts(claim))
