"""What the learned claims are measured on, and at which layers.

The photos are the ImageNet sample's (``imagenet-sample-images/`` in the fixtures folder, the public
originals: one photo per ImageNet-1k class, its class from the manifest, :mod:`cnn_core.fixtures`):
IMAGES_PER_GROUP photos from each of the CLASS_GROUPS, which are
ImageNet classes under one WordNet hypernym. They serve every learned claim that is a statistic
over photos, and their groups are the classes of the class-structure claims (L4). Tiny VGG keeps
CNN Explainer's 20 Tiny ImageNet demo images (of its ten classes, one to four each) as its labelled set.
L5 uses the sample photos boxed by hand in ``claims/object_boxes.csv``; each box, given as
fractions of the original photo, is mapped through each model's own resize and centre crop.
"""
from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torchvision

import cnn_core
from claims import RECORDED_DATA
from claims.judging.notebook import NOTEBOOK_PROBES
from cnn_core import Box, fixtures
from cnn_core.fixtures import FixtureMissing, Fixtures
from cnn_core.models import ModelCard


def spatial_leaves(layers) -> list[cnn_core.Layer]:
    """The leaf layers with a spatial [N, C, H, W] output, in the order they run."""
    return [layer for layer in layers
            if not layer.container and layer.output_shape is not None and len(layer.output_shape) == 4]


def depth_probes(model: torch.nn.Module) -> dict[str, str]:
    """Early, middle and deep layers of any CNN: the notebook's own for VGG16; otherwise the second
    conv, the middle spatial layer and the last conv (in the order they run)."""
    if cnn_core.model_card(model).name == "vgg16":
        return {probe.depth: probe.layer for probe in NOTEBOOK_PROBES}
    size = cnn_core.model_card(model).input_size
    listing = cnn_core.layers(model, (size, size))
    spatial = spatial_leaves(listing)
    return {"early": probe_layers(listing, "early")[0], "middle": spatial[len(spatial) // 2].path,
            "deep": probe_layers(listing, "deep")[0]}


@dataclass(frozen=True, eq=False)
class Architecture:
    """A model's architecture, built once per run: on the meta device (no weights, no arithmetic), or, for
    the few that cannot be built there (RegNet), on the CPU; ``size`` is the input it is probed at (the
    size its weights were trained at where 224 pixels are too few: Inception v3)."""

    name: str
    model: torch.nn.Module
    size: tuple[int, int]

    @functools.cached_property
    def layers(self) -> tuple[cnn_core.Layer, ...]:
        """Its layer listing, read once."""
        return tuple(cnn_core.layers(self.model, self.size))

    @functools.cached_property
    def unpadded_deep_probe(self) -> str:
        """The deepest conv whose receptive field fits in the model's own input, so that some of its units never
        see padding there (where translation equivariance is exact at that size); the first conv when none
        does. ConvNeXt's last conv sees 1688 pixels: showing its equivariance would take a 1848-pixel view
        (5 minutes for convnext_base on one core)."""
        fields = cnn_core.receptive_fields(self.model, self.size)
        convs = [layer.path for layer in spatial_leaves(self.layers) if layer.conv]
        fitting = [path for path in convs if path in fields and not fields[path].is_global
                   and all(side <= limit for side, limit in zip(fields[path].size, self.size))]
        return (fitting or convs)[-1 if fitting else 0]


def build(name: str, fixtures_dir: cnn_core.fixtures.FixturesDir = None) -> Architecture:
    """``name``'s architecture (its name checked: :class:`cnn_core.ModelNotFound` names close matches)."""
    try:
        model = cnn_core.build_architecture(name, fixtures_dir=fixtures_dir).eval()  # batch norm on a 1x1 map needs eval mode (ReXNet)
        cnn_core.layers(model)
        return Architecture(name, model, cnn_core.models.input_size_of(model))
    except (NotImplementedError, RuntimeError):
        crop = torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size[0]
        return Architecture(name, cnn_core.build_architecture(name, device="cpu").eval(), (crop, crop))


def _on_one_pixel(layer: cnn_core.Layer) -> bool:
    return layer.input_shape is not None and tuple(layer.input_shape[-2:]) == (1, 1)


def probe_layers(listing: Sequence[cnn_core.Layer], kind: str) -> list[str]:
    """Layers of a model (its ``cnn_core.layers`` listing) to check a claim at.

    ``early``: the second convolution (the notebook's conv1_2, ``features.2`` in VGG16);
    ``deep``: the last convolution on a map larger than one pixel (the notebook's conv5_3, ``features.28``);
    ``spatial``: every leaf layer with a spatial output that can move a receptive field: not the
    pointwise ones (activations, batch norm, dropout), whose field is their input's.
    """
    spatial = spatial_leaves(listing)
    # A conv on a 1x1 map after global pooling (GhostNet's and MobileNetV3's heads) is a fully
    # connected layer: no deep layer of the notebook's kind.
    convs = [layer.path for layer in spatial if layer.conv and not _on_one_pixel(layer)]
    if kind == "early":
        return convs[1:2] or convs[:1]
    if kind == "deep":
        return convs[-1:]
    if kind == "spatial":
        return [layer.path for layer in spatial if not layer.pointwise]
    raise ValueError(f"unknown probe kind {kind!r}")


@dataclass(frozen=True)
class ClassGroup:
    """ImageNet-1k classes under one WordNet hypernym: inclusive ranges of class indices (the
    indices follow sorted WordNet ids, so a subtree's classes lie together)."""

    name: str
    hypernym: str  # the WordNet synset the classes descend from
    ranges: tuple[tuple[int, int], ...]

    @property
    def classes(self) -> list[int]:
        return [index for low, high in self.ranges for index in range(low, high + 1)]

    def picks(self, count: int) -> list[int]:
        """``count`` classes spread evenly over the group (the first, then every len/count-th)."""
        classes = self.classes
        return [classes[i * len(classes) // count] for i in range(count)]


# Source: WordNet 3.0's noun hierarchy, as ImageNet-1k's synsets sit in it; the names in the
# manifest (cnn_core/fixtures.csv) were read to check every range (tests/test_probes.py checks the hypernyms' spans).
CLASS_GROUPS = (
    ClassGroup("fish", "n02512053 fish", ((0, 6), (389, 397))),
    ClassGroup("birds", "n01503061 bird", ((7, 24), (80, 100), (127, 146))),
    ClassGroup("turtles, lizards, crocodiles", "n01661091 reptile (not snakes)", ((33, 50),)),
    ClassGroup("snakes", "n01726692 snake", ((52, 68),)),
    ClassGroup("dogs", "n02084071 dog", ((151, 268),)),
    ClassGroup("wolves, foxes, wild dogs", "n02083346 canine (not dogs)", ((269, 280),)),
    ClassGroup("cats", "n02120997 feline", ((281, 293),)),
    ClassGroup("insects", "n02159955 insect", ((300, 326),)),
    ClassGroup("primates", "n02469914 primate", ((365, 384),)),
    ClassGroup("fruit and vegetables", "n07707451 vegetable, n07705931 edible fruit", ((936, 957),)),
)
IMAGES_PER_GROUP = 10
CHECK_PER_GROUP = 2  # the recorded control is re-measured on this many photos of each group every run
CHECK_OBJECTS = 4  # ... and on this many boxed photos
TOP1_EVERY = 5  # the top-1 oracle classifies every 5th class's photo: 200 photos
OBJECT_BOXES = RECORDED_DATA / "object_boxes.csv"


@dataclass(frozen=True)
class BoxedPhoto:
    path: Path
    fractions: tuple[float, float, float, float]  # top, left, bottom, right of the original photo


def sample_files(found: Fixtures, classes: Iterable[int]) -> dict[int, Path]:
    """The photos of ``classes`` in the fixtures folder, each checked against the manifest; the first
    that is missing or differs raises :class:`~cnn_core.fixtures.FixtureMissing`."""
    photos = fixtures.photos()
    return {index: found.file(photos[index]) for index in classes}


def grouped_photos(found: Fixtures, per_group: int = IMAGES_PER_GROUP) -> list[tuple[Path, int]]:
    """``per_group`` photos of each class group, with the group's index as their label."""
    picks = [(index, label) for label, group in enumerate(CLASS_GROUPS) for index in group.picks(per_group)]
    files = sample_files(found, [index for index, _ in picks])
    return [(files[index], label) for index, label in picks]


def classified_photos(found: Fixtures) -> list[tuple[Path, int]]:
    """The top-1 oracle's photos with their ImageNet class index."""
    return [(path, index) for index, path in sample_files(found, range(0, len(fixtures.photos()), TOP1_EVERY)).items()]


def _box_rows() -> list[dict[str, str]]:
    with OBJECT_BOXES.open(newline="") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def boxed_photos(found: Fixtures) -> list[BoxedPhoto]:
    rows = _box_rows()
    files = sample_files(found, [int(row["class_index"]) for row in rows])
    return [BoxedPhoto(files[int(row["class_index"])], tuple(float(row[k]) for k in ("top", "left", "bottom", "right")))
            for row in rows]


def default_run_photos() -> list[fixtures.FixtureFile]:
    """Every photo a default run reads: the grouped, the boxed and the top-1 oracle's (what the fetch
    downloads by default)."""
    photos = fixtures.photos()
    classes = {index for group in CLASS_GROUPS for index in group.picks(IMAGES_PER_GROUP)}
    classes |= {int(row["class_index"]) for row in _box_rows()}
    classes |= set(range(0, len(photos), TOP1_EVERY))
    return [photos[index] for index in sorted(classes)]


def object_box(photo: BoxedPhoto, card: ModelCard) -> Box:
    """The photo's object box in the pixels of ``card``'s preprocessed crop (torchvision's geometry)."""
    width, height = cnn_core.load_image(photo.path).size
    resized = (int(card.resize * height / width), card.resize) if width < height else (card.resize, int(card.resize * width / height))
    offset = (int(round((resized[0] - card.input_size) / 2.0)), int(round((resized[1] - card.input_size) / 2.0)))
    top, left, bottom, right = photo.fractions

    def clip(value: float, axis: int) -> int:
        return min(card.input_size, max(0, int(round(value * resized[axis])) - offset[axis]))

    return Box(clip(top, 0), clip(left, 1), clip(bottom, 0), clip(right, 1))


def first_of_each(labels: Sequence[int], count: int) -> list[int]:
    """The indices of the first ``count`` items of each label, in order."""
    seen: dict[int, int] = {}
    keep = []
    for i, label in enumerate(labels):
        if seen.get(label, 0) < count:
            seen[label] = seen.get(label, 0) + 1
            keep.append(i)
    return keep


@dataclass(frozen=True)
class ProbeImages:
    """One model's view of the probe images, preprocessed its own way; a field is None (or empty)
    when the fixtures folder that holds it is missing."""

    photos: torch.Tensor | None  # [P, 3, S, S]: the grouped sample photos
    labelled: torch.Tensor | None  # [N, 3, S, S]: images of known class (the grouped photos, or Tiny VGG's own)
    labels: tuple[int, ...]
    objects: torch.Tensor | None  # [B, 3, S, S]: the boxed photos
    object_boxes: tuple[Box, ...]
    name: str  # which images these are, for the recorded nulls
    missing: str = ""  # why the photos are absent (the fixture file that is missing, and the command that fetches it)
    # What the measurements derive from the images alone (the photos' edge maps), kept for every model measured on them.
    derived: dict = field(default_factory=dict, compare=False, repr=False)

    def check_subset(self) -> ProbeImages:
        """A few of each: what the recorded control is re-measured on every run."""
        photo_labels = self.labels if self.labelled is self.photos else ()
        photos = self.photos[first_of_each(photo_labels, CHECK_PER_GROUP)] if photo_labels else (
            None if self.photos is None else self.photos[:CHECK_PER_GROUP * len(CLASS_GROUPS)])
        if self.labelled is self.photos:
            labelled, labels = photos, tuple(self.labels[i] for i in first_of_each(self.labels, CHECK_PER_GROUP))
        else:
            keep = first_of_each(self.labels, CHECK_PER_GROUP)
            labelled = None if self.labelled is None else self.labelled[keep]
            labels = tuple(self.labels[i] for i in keep) if self.labelled is not None else ()
        objects = None if self.objects is None else self.objects[:CHECK_OBJECTS]
        return ProbeImages(photos, labelled, labels, objects, self.object_boxes[:CHECK_OBJECTS], self.name + ":check",
                           self.missing)


def probe_images(card: ModelCard, found: Fixtures, device: torch.device) -> ProbeImages:
    """``card``'s model's view of the photos (and Tiny VGG's of its demo images), preprocessed its own way;
    what the fixtures folder lacks is None, and ``missing`` says why."""
    def stack(paths) -> torch.Tensor:
        return torch.cat([card.preprocess(path) for path in paths]).to(device)

    try:
        grouped, boxed, missing = grouped_photos(found), boxed_photos(found), ""
    except FixtureMissing as error:
        grouped, boxed, missing = [], [], str(error)
    photos = stack(path for path, _ in grouped) if grouped else None
    demos = []
    if card.name == cnn_core.models.TINY_VGG:  # labelled by its own ten classes: CNN Explainer's demo images
        try:
            demos = cnn_core.models.tiny_vgg_demo_images(found)
        except FixtureMissing as error:
            missing = missing or str(error)
        labelled = stack(path for path, _ in demos) if demos else None
        labels = tuple(label for _, label in demos)
    else:
        labelled, labels = photos, tuple(label for _, label in grouped)
    objects = stack(photo.path for photo in boxed) if boxed else None
    # The preprocessing is part of the images' name: nulls measured on images fed one way never judge another.
    name = (f"{fixtures.PHOTOS}:{len(CLASS_GROUPS)}x{IMAGES_PER_GROUP}+{len(boxed)}boxed" if grouped else "none") + (
        f"+tiny-vgg-demos:{len(demos)}" if demos else "") + f"@{card.preprocessing_key}"
    return ProbeImages(photos, labelled, labels, objects, tuple(object_box(photo, card) for photo in boxed), name, missing)
