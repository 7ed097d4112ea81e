"""The learned claims' photos: the class groups are what they say, the boxes are valid and small,
the check subset is a few of each."""
from __future__ import annotations

import torch

import cnn_core
from claims.judging.measures import RELEVANCE_STRIDE, RELEVANCE_WINDOW
from claims.judging.probes import (
    CHECK_OBJECTS,
    CHECK_PER_GROUP,
    CLASS_GROUPS,
    IMAGES_PER_GROUP,
    boxed_photos,
    object_box,
    probe_images,
)
from claims.judging.subjects import Subject
from cnn_core import fixtures

# The first and last class of each group's ranges, as the manifest names them.
ENDS = {
    "fish": [("tench", "stingray"), ("barracouta", "puffer")],
    "birds": [("cock", "great_grey_owl"), ("black_grouse", "black_swan"), ("white_stork", "albatross")],
    "turtles, lizards, crocodiles": [("loggerhead", "American_alligator")],
    "snakes": [("thunder_snake", "sidewinder")],
    "dogs": [("Chihuahua", "Mexican_hairless")],
    "wolves, foxes, wild dogs": [("timber_wolf", "grey_fox")],
    "cats": [("tabby", "cheetah")],
    "insects": [("tiger_beetle", "lycaenid")],
    "primates": [("orangutan", "indri")],
    "fruit and vegetables": [("head_cabbage", "pomegranate")],
}


def test_groups_are_disjoint_and_large_enough():
    classes = [index for group in CLASS_GROUPS for index in group.classes]
    assert len(classes) == len(set(classes))
    assert all(len(group.classes) >= IMAGES_PER_GROUP for group in CLASS_GROUPS) and len(CLASS_GROUPS) >= 8


def test_each_groups_ranges_run_from_the_named_first_to_the_named_last_class():
    label = {index: entry.name for index, entry in fixtures.photos().items()}
    assert sorted(label) == list(range(1000))
    for group in CLASS_GROUPS:
        assert [(label[low], label[high]) for low, high in group.ranges] == ENDS[group.name]


def test_boxes_are_valid_and_leave_most_of_the_crop_to_background(fixtures_with_photos):
    """Chance, the share of L5's window centres on the object, stays below 2/3 per photo and 0.35 on average."""
    photos = boxed_photos(fixtures_with_photos)
    assert len(photos) >= 30 and len({photo.path for photo in photos}) == len(photos)
    card = cnn_core.models.ModelCard("mobilenet_v2", "imagenet", True, True)
    window, stride = int(card.input_size // RELEVANCE_WINDOW), int(card.input_size // RELEVANCE_STRIDE)
    centres = [window / 2 + k * stride for k in range((card.input_size - window) // stride + 1)]
    chances = []
    for photo in photos:
        top, left, bottom, right = photo.fractions
        assert 0 <= top < bottom <= 1 and 0 <= left < right <= 1, photo
        box = object_box(photo, card)
        chances.append(sum(box.contains_point(row, col) for row in centres for col in centres) / len(centres) ** 2)
        assert chances[-1] < 2 / 3, f"{photo.path.name}: {box} covers most of the window centres"
    assert sum(chances) / len(chances) < 0.35


def test_the_check_subset_keeps_a_few_of_each(fixtures_with_photos):
    card = cnn_core.models.ModelCard("mobilenet_v2", "imagenet", True, True)
    images = probe_images(card, fixtures_with_photos, torch.device("cpu"))
    check = images.check_subset()
    assert images.photos.shape[0] == IMAGES_PER_GROUP * len(CLASS_GROUPS)
    assert sorted(check.labels) == sorted(list(range(len(CLASS_GROUPS))) * CHECK_PER_GROUP)
    assert check.labelled is check.photos and len(check.object_boxes) == CHECK_OBJECTS == check.objects.shape[0]
    assert check.name == images.name + ":check"


def test_a_subject_measures_its_model_with_the_models_own_card(tiny_vgg_folder):
    """The subject measures a copy of the model in one memory layout; the copy must keep the card
    (Tiny VGG's 64-pixel input and raw-pixel normalisation), or the probes and fills go wrong."""
    model = cnn_core.load_model("tiny-vgg", weights="auto", fixtures_dir=tiny_vgg_folder.parent)
    subject = Subject(model, cnn_core.fixtures.locate(tiny_vgg_folder.parent), torch.device("cpu"), measure_random=False,
                      progress=lambda _: None)
    measured = subject.own()
    assert not isinstance(measured["L3-middle-layers-see-larger-patterns"], str), measured
    assert not isinstance(measured["L5-occluding-the-object-matters"], str), measured
