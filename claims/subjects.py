"""The subjects of the claims matrix: a model with given weights, its random twin, and its images.

Learned claims compare a model with its random twin: same architecture, re-initialised from a
fixed seed. A random model's twin is itself, so a learned claim can never hold for it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

import cnn_core
from cnn_core import Box
from cnn_core.models import FIXTURES_ENV, imagenet_cache_path

CNN_SUBJECTS = ("tiny-vgg.trained", "tiny-vgg.random", "vgg16.imagenet", "vgg16.random")
ALL_SUBJECTS = (*CNN_SUBJECTS, "vit_b_16.random")
PHOTOS = ("sample:cat", "sample:astronaut", "sample:coffee", "sample:rocket")  # scikit-image's, offline
CAT_CLASSES = [281, 282, 283, 284, 285]  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat
TINY_VGG_PREFIXES = {"boat": 0, "bug": 1, "pizza": 2, "pepper": 3, "bus": 4, "koala": 5, "espresso": 6,
                     "panda": 7, "orange": 8, "car": 9}


@dataclass(frozen=True)
class RelevanceCase:
    """One image for the class-relevance claim: where the object is, and where it is not."""

    image: torch.Tensor
    target: int | list[int]
    object_box: Box
    background_boxes: tuple[Box, ...]


@dataclass
class Subject:
    key: str  # "model.weights"
    model: nn.Module
    twin: nn.Module
    images: torch.Tensor  # natural images, preprocessed the way the model expects
    sources: tuple[str, ...]  # where each image came from, to load it again at another size
    probe: str  # the deep layer the locality claims look at
    relevance: list[RelevanceCase] = field(default_factory=list)

    @property
    def size(self) -> int:
        return self.images.shape[-1]


def preprocess_all(sources, model) -> torch.Tensor:
    size = cnn_core.models.input_size_of(model)[0]
    return torch.cat([cnn_core.preprocess(s, size, cnn_core.models.normalization_of(model)) for s in sources])


def tiny_vgg_subject(trained: bool) -> Subject:
    folder = os.environ.get(FIXTURES_ENV)
    if not folder or not os.path.isfile(os.path.join(folder, "tiny-vgg", "model.json")):
        pytest.skip(f"Tiny VGG not found: set {FIXTURES_ENV} (or pass --fixtures-dir) to the folder that holds "
                    f"tiny-vgg/, e.g. ../shared/fixtures")
    model = cnn_core.load_model("tiny-vgg", weights="auto")
    if not trained:
        model = cnn_core.random_twin(model)
    files = sorted((cnn_core.models.tiny_vgg_json().parent / "images").glob("*.jpeg"))
    images = preprocess_all(files, model)
    centre = Box(20, 20, 44, 44)  # Tiny ImageNet photos are object-centred crops
    corners = (Box(0, 0, 20, 20), Box(0, 44, 20, 64), Box(44, 0, 64, 20), Box(44, 44, 64, 64))
    relevance = [RelevanceCase(images[i:i + 1], TINY_VGG_PREFIXES[f.name.split("_")[0]], centre, corners)
                 for i, f in enumerate(files)]
    twin = cnn_core.random_twin(model) if trained else model
    return Subject(f"tiny-vgg.{'trained' if trained else 'random'}", model, twin, images,
                   tuple(str(f) for f in files), "conv_2_2", relevance)


def vgg16_weights_source(requested: str) -> str:
    """Where VGG16's trained weights come from: ``--weights PATH``, ``--weights imagenet``, or the cache."""
    if requested not in ("auto", "none", "imagenet"):
        return requested
    cached = imagenet_cache_path("vgg16")
    if requested == "imagenet" or cached.is_file():
        return "imagenet"
    pytest.skip(f"VGG16's ImageNet weights are not in the torch cache ({cached}): run once with --weights imagenet "
                f"on a machine with a network (torchvision downloads 528 MB), or pass --weights PATH to a VGG16 state_dict")


def vgg16_subject(weights: str, zoo, requested: str) -> Subject:
    device = zoo.device
    shared = zoo.get("vgg16")  # the session's VGG16 is the random one unless ImageNet weights were found
    random_model = shared if not cnn_core.is_trained(shared) else cnn_core.load_model("vgg16", weights="none", device=device)
    model = cnn_core.load_model("vgg16", weights=vgg16_weights_source(requested), device=device) \
        if weights == "imagenet" else random_model
    images = preprocess_all(PHOTOS, model).to(device)
    # The cat fills the photo; its face is the object, the blurred top-right corner the background.
    relevance = [RelevanceCase(images[:1], CAT_CLASSES, Box(40, 30, 200, 200), (Box(0, 176, 48, 224),))]
    return Subject(f"vgg16.{weights}", model, random_model, images, PHOTOS, "features.28", relevance)


def vit_subject(zoo) -> Subject:
    model = cnn_core.load_model("vit_b_16", weights="none", device=zoo.device)
    images = preprocess_all(PHOTOS[:1], model).to(zoo.device)
    return Subject("vit_b_16.random", model, model, images, PHOTOS[:1], "encoder.layers.encoder_layer_0")


def build_subject(key: str, zoo, requested_weights: str) -> Subject:
    """The subject ``key``, reusing the session's models (``zoo``) where they are the same."""
    if key.startswith("tiny-vgg."):
        return tiny_vgg_subject(trained=key.endswith("trained"))
    if key.startswith("vgg16."):
        return vgg16_subject(key.split(".")[1], zoo, requested_weights)
    if key == "vit_b_16.random":
        return vit_subject(zoo)
    raise ValueError(f"unknown subject {key!r}")
