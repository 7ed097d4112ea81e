"""occlude, occlusion_diff and occlusion_map; boxes and the small metrics they feed."""
from __future__ import annotations

import pytest
import torch

import cnn_core
from cnn_core import Box, InputError


def test_occlude_paints_only_the_box_and_leaves_the_input_alone(image_tensor):
    original = image_tensor.clone()
    grey = cnn_core.occlude(image_tensor, Box(50, 60, 150, 160), fill="mean")
    assert torch.equal(image_tensor, original)
    assert (grey[:, :, 50:150, 60:160] == 0).all()
    outside = torch.ones_like(grey, dtype=torch.bool)
    outside[:, :, 50:150, 60:160] = False
    assert torch.equal(grey[outside], original[outside])
    black = cnn_core.denormalize(cnn_core.occlude(image_tensor, Box(0, 0, 2, 2), fill="black"))
    # float32 round trip through the normalisation: zero to within a few ulps of 1
    torch.testing.assert_close(black[:, :, :2, :2], torch.zeros(1, 3, 2, 2), rtol=0, atol=1e-6)


@pytest.mark.parametrize("box_args, problem", [
    ((0, 0, 300, 10), "reaches outside"),
    ((-5, 0, 10, 10), "reaches outside"),
    ((10, 10, 10, 20), "empty"),
    ((0.5, 0, 10, 10), "integer"),
], ids=["too-tall", "negative", "empty", "fractional"])
def test_bad_boxes_raise_input_error(image_tensor, box_args, problem):
    with pytest.raises(InputError, match=problem):
        cnn_core.occlude(image_tensor, Box(*box_args))


def test_occlusion_diff_is_per_layer_and_zero_far_from_the_box(zoo, image_tensor):
    diffs = cnn_core.occlusion_diff(zoo.get("vgg16"), image_tensor, Box(0, 0, 20, 20), ["conv1_2", "conv5_3"])
    assert diffs["conv1_2"].shape == (1, 224, 224) and diffs["conv5_3"].shape == (1, 14, 14)
    assert diffs["conv1_2"][0, 30:, 30:].abs().max() == 0 and diffs["conv1_2"][0, :20, :20].max() > 0


def test_batched_occlusion_map_equals_one_window_at_a_time(zoo):
    model = zoo.get("resnet18")
    x = cnn_core.preprocess(cnn_core.load_image(), size=64)
    batched = cnn_core.occlusion_map(model, x, window=16, stride=8, target=281, batch_size=10, method="batched")
    with torch.no_grad():
        base = cnn_core.class_score(model(x), 281)
        naive = torch.stack([
            base - cnn_core.class_score(model(cnn_core.occlude(x, batched.window_box(r, c))), 281)
            for r in range(batched.drop.shape[0]) for c in range(batched.drop.shape[1])
        ]).view_as(batched.drop)
    # Batch size changes the conv kernels' blocking; softmax probabilities agree to float32 rounding.
    torch.testing.assert_close(batched.drop, naive, rtol=1e-4, atol=1e-6)
    assert batched.drop.shape == (7, 7) and batched.peak().height == 16


@pytest.mark.parametrize("method", ["batched", "incremental"])
def test_no_target_sweeps_the_models_own_top_class(zoo, method):
    """Break: a target other than the top class (the second one) gives another map."""
    model = zoo.get("resnet18")
    x = cnn_core.preprocess(cnn_core.load_image(), size=64)
    with torch.no_grad():
        top, second = model(x).topk(2, dim=1).indices[0].tolist()
    own = cnn_core.occlusion_map(model, x, window=16, stride=16, target=None, method=method)
    # The same clean pass decides the class and the base score: equal in float32 bit for bit.
    assert torch.equal(own.drop, cnn_core.occlusion_map(model, x, window=16, stride=16, target=top, method=method).drop)
    assert not torch.equal(own.drop, cnn_core.occlusion_map(model, x, window=16, stride=16, target=second, method=method).drop)


@pytest.mark.parametrize("kwargs, problem", [
    ({"window": 300}, "larger than"),
    ({"stride": 0}, "stride must be a positive integer"),
    ({"target": 5000}, "not among the model's 1000 classes"),
], ids=["window-too-large", "zero-stride", "unknown-class"])
def test_occlusion_map_rejects_bad_arguments(zoo, image_tensor, kwargs, problem):
    arguments = {"window": 32, "stride": 32, "target": 281, **kwargs}
    with pytest.raises(InputError, match=problem):
        cnn_core.occlusion_map(zoo.get("alexnet"), image_tensor, **arguments)


def test_changed_region_and_centre_of_mass():
    difference = torch.zeros(6, 8)
    difference[2:4, 3:6] = 1.0
    assert cnn_core.changed_region(difference) == Box(2, 3, 4, 6)
    assert cnn_core.changed_region(torch.zeros(3, 3)) is None
    centre = cnn_core.centre_of_mass(difference, torch.arange(6.0), torch.arange(8.0))
    assert centre == (2.5, 4.0) and Box(2, 3, 4, 6).centre == centre


def test_sparsity_counts_exact_zeros():
    assert cnn_core.sparsity(torch.tensor([0.0, 1.0, 0.0, -2.0])) == 0.5


@pytest.mark.parametrize("name, method", [("resnet18", "batched"), ("vgg11", "incremental")])
def test_occlusion_map_matches_captum(zoo, name, method):
    """captum's Occlusion, with the same windows, baseline and target, gives the same per-pixel map,
    whole forward passes and incremental ones alike."""
    occlusion = pytest.importorskip("captum.attr", reason="captum comes with the dev extra: pip install -e '.[dev]'").Occlusion
    model = zoo.get(name)
    x = cnn_core.preprocess(cnn_core.load_image(), size=64)
    ours = cnn_core.occlusion_map(model, x, window=16, stride=8, target=281, batch_size=7, method=method)
    with torch.no_grad():
        theirs = occlusion(lambda images: model(images).softmax(dim=1)).attribute(
            x, sliding_window_shapes=(3, 16, 16), strides=(3, 8, 8), target=281, baselines=0.0,
            perturbations_per_eval=7)
    # captum gives every channel the same value; batches of different size round differently.
    torch.testing.assert_close(theirs[0, 0], ours.pixel_map(64, 64), rtol=1e-4, atol=1e-6)


class RunsOutOfMemoryAbove:
    """Wraps a model so that any batch larger than ``limit`` raises CUDA's out-of-memory error."""

    def __init__(self, model, limit):
        self.model, self.limit, self.sizes = model, limit, []

    def __call__(self, x):
        self.sizes.append(len(x))
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.model(x)


def test_out_of_memory_halves_the_batch_and_goes_on(zoo, monkeypatch):
    model = zoo.get("resnet18")
    x = cnn_core.preprocess(cnn_core.load_image(), size=64)
    expected = cnn_core.occlusion_map(model, x, window=16, stride=8, target=281, batch_size=3, method="batched")
    limited = RunsOutOfMemoryAbove(model.forward, limit=3)
    monkeypatch.setattr(model, "forward", limited)
    with pytest.warns(ResourceWarning, match="out of memory with 12 images per batch; going on with 6"):
        result = cnn_core.occlusion_map(model, x, window=16, stride=8, target=281, batch_size=12, method="batched")
    first_try = limited.sizes.index(12)
    assert limited.sizes[first_try:first_try + 3] == [12, 6, 3]
    torch.testing.assert_close(result.drop, expected.drop, rtol=1e-4, atol=1e-6)  # batch size moves rounding only


def test_the_memory_budget_caps_the_batch(zoo, monkeypatch):
    model = zoo.get("vgg16")
    sizes = []
    real_forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x: sizes.append(len(x)) or real_forward(x))
    x = cnn_core.preprocess(cnn_core.load_image(), size=64)
    # conv1's output is the largest: 64 x 64 x 64 floats, 1 MiB; three of them per image
    cnn_core.occlusion_map(model, x, window=32, stride=32, target=281, batch_size=64, memory_budget_bytes=7 << 20,
                           method="batched")
    assert max(sizes) == 2


def test_the_batch_follows_the_memory_a_gpu_reports(zoo, monkeypatch):
    """A GPU's free memory sets the budget (a fake figure here: 28 MiB free, half of it for the batch);
    the CPU keeps its fixed budget."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (28 << 20, 80 << 30))
    assert cnn_core.occlusion.memory_budget(torch.device("cuda")) == 14 << 20
    assert cnn_core.occlusion.memory_budget(torch.device("cpu")) == cnn_core.occlusion.CPU_MEMORY_BUDGET_BYTES
    monkeypatch.setattr(cnn_core.occlusion, "memory_budget", lambda device: 14 << 20)
    model = zoo.get("vgg16")
    sizes = []
    real_forward = model.forward
    monkeypatch.setattr(model, "forward", lambda x: sizes.append(len(x)) or real_forward(x))
    x = cnn_core.preprocess(cnn_core.load_image(), size=64)
    cnn_core.occlusion_map(model, x, window=32, stride=16, target=281, batch_size=64, method="batched")
    assert sizes[-3:] == [4, 4, 1]  # 9 windows: 14 MiB over three 1 MiB activations per image
