"""Erratum: where the notebook's code and comments say something that is not so.

Each test quotes the notebook line it corrects and asserts the fact instead. They run on VGG16 as
the suite builds it (random weights offline; the facts are structural, the measured fractions are
printed with the weights they were measured on).
"""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torchvision
from torchvision.models import VGG16_Weights, WeightsEnum

import cnn_core
from claims.judging import notebook

pytestmark = [pytest.mark.structural, pytest.mark.block("erratum")]


@pytest.fixture(scope="module")
def vgg16(zoo):
    return zoo.get("vgg16")


def test_features_2_is_conv1_2_inside_the_first_block(vgg16):
    """Notebook: ``model.features[2].register_forward_hook(get_activation('early'))    # After first conv block``.
    Fact: features[2] is conv1_2, the block's second convolution; relu1_2 (features[3]) and pool1
    (features[4]) still follow before the first block ends."""
    aliases = cnn_core.vgg_aliases(vgg16)
    assert aliases["conv1_2"] == "features.2" and isinstance(vgg16.features[2], torch.nn.Conv2d)
    assert (aliases["relu1_2"], aliases["pool1"]) == ("features.3", "features.4")


def test_the_notebook_hooks_store_post_relu_values(vgg16, image_tensor):
    """Notebook: ``activations[name] = output.detach()`` on features[2] and features[28], shown as the
    "early" and "deep" conv maps, "DEEP: ... sparse activations". Fact: ``detach`` shares memory and
    the next ``ReLU(inplace=True)`` overwrites it, so the notebook shows post-ReLU maps. conv5_3's
    true output has no zeros at all; every zero the notebook shows there comes from the overwrite."""
    stored = notebook.detach_hooks(vgg16, image_tensor.clone(), ["features.2", "features.28"])
    true = cnn_core.capture(vgg16, image_tensor, ["features.2", "features.3", "features.28", "features.29"])
    for conv, relu in (("features.2", "features.3"), ("features.28", "features.29")):
        assert torch.equal(stored[conv], true[relu]), f"the notebook's {conv} is not its ReLU's output"
        assert not torch.equal(stored[conv], true[conv])
    shown, actual = cnn_core.sparsity(stored["features.28"]), cnn_core.sparsity(true["features.28"])
    # shown, measured on the cat: 0.897 with VGG16's ImageNet conv weights, 0.488 with random ones.
    assert actual == 0.0 and shown > 0.2, (
        f"conv5_3 zeros: {actual:.1%} in the true output, {shown:.1%} in the notebook's map ({cnn_core.model_card(vgg16).label})"
    )


def test_black_out_paints_the_mean_grey_not_black(vgg16, image_tensor):
    """Notebook: ``perturbed_tensor[:, :, 50:150, 60:160] = 0  # Black out a region``. Fact: 0 in
    normalised space is the ImageNet mean colour, a grey (124, 116, 104); black is
    (0 - mean) / std. Painting true black changes the Block 4 difference maps substantially."""
    grey = cnn_core.denormalize(cnn_core.occlude(image_tensor, notebook.NOTEBOOK_BOX, fill="mean"))[0, :, 50, 60]
    assert [round(float(v) * 255) for v in grey] == [124, 116, 104]
    layers = ["features.2", "features.28"]
    as_notebook = cnn_core.occlusion_diff(vgg16, image_tensor, notebook.NOTEBOOK_BOX, layers, fill="mean")
    truly_black = cnn_core.occlusion_diff(vgg16, image_tensor, notebook.NOTEBOOK_BOX, layers, fill="black")
    change = {layer: float((truly_black[layer] - as_notebook[layer]).norm() / as_notebook[layer].norm()) for layer in layers}
    # Measured: ImageNet conv weights 0.796 (conv1_2), 0.203 (conv5_3); random VGG16 1.505, 0.522.
    assert all(value > 0.1 for value in change.values()), f"relative change of the difference maps with true black: {change}"


def test_the_overlay_cast_wraps_around(vgg16, image_tensor):
    """Notebook: ``Image.fromarray((activation * 255).astype(np.uint8))`` to overlay conv1_1's maps.
    Fact: activations are not in [0, 1]; casting to uint8 wraps every value outside [0, 256) around
    (−1 becomes 255), so dark and bright swap. Normalise to [0, 1] first."""
    maps = cnn_core.capture(vgg16, image_tensor, "features.0")["features.0"][0, :4].numpy()
    scaled = maps * 255
    outside = (scaled < 0) | (scaled >= 256)
    cast = scaled.astype(np.int64).astype(np.uint8)  # the notebook's cast, made well defined
    # Share outside [0, 256), measured: 0.985 with ImageNet conv weights, 0.427 with random ones.
    assert (cast[outside] != np.clip(scaled[outside], 0, 255).astype(np.uint8)).any()
    assert outside.mean() > 0.05, f"{outside.mean():.1%} of the overlaid pixels wrap ({cnn_core.model_card(vgg16).label})"


def test_pretrained_true_is_the_deprecated_spelling(monkeypatch):
    """Notebook: ``models.vgg16(pretrained=True)``. Fact: deprecated since torchvision 0.13; current
    torchvision warns twice and maps it to ``weights=VGG16_Weights.IMAGENET1K_V1``. Write
    ``models.vgg16(weights=models.VGG16_Weights.IMAGENET1K_V1)`` (or ``weights="DEFAULT"``)."""
    requested = []

    class Intercepted(Exception):
        pass

    def intercept(weights, *args, **kwargs):  # stops before any download
        requested.append(weights)
        raise Intercepted

    monkeypatch.setattr(WeightsEnum, "get_state_dict", intercept)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(Intercepted):
        warnings.simplefilter("always")
        torchvision.models.vgg16(pretrained=True)
    messages = " | ".join(str(w.message) for w in caught)
    assert "'pretrained' is deprecated" in messages and "weights=VGG16_Weights.IMAGENET1K_V1" in messages
    assert requested == [VGG16_Weights.IMAGENET1K_V1]


def test_the_stated_block_boundaries_are_right(vgg16):
    """Notebook: ``# VGG16 structure: features[0-4]=block1, [5-9]=block2, [10-16]=block3,
    [17-23]=block4, [24-30]=block5``. Fact: correct — each range runs from conv{b}_1 to pool{b}."""
    aliases = cnn_core.vgg_aliases(vgg16)
    for block, (first, last) in enumerate([(0, 4), (5, 9), (10, 16), (17, 23), (24, 30)], start=1):
        assert (aliases[f"conv{block}_1"], aliases[f"pool{block}"]) == (f"features.{first}", f"features.{last}")


def test_the_first_layer_is_a_64_filter_3x3_conv(vgg16):
    """Notebook: ``first_conv = model.features[0]  # VGG16's first layer: Conv2d(3, 64, kernel_size=3)``
    and ``# 64 filters, each 3x3x3 (RGB)``. Fact: correct, with stride 1 and padding 1."""
    conv = vgg16.features[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding) == (3, 64, (3, 3), (1, 1), (1, 1))


def test_the_first_figure_shows_nine_maps_not_eight():
    """Notebook: ``# Visualize: original image vs first 8 feature maps`` above ``for i in range(9)``
    on a 2 x 5 grid. Fact: the loop fills nine panels (maps 0 to 8), the grid's ten less the original."""
    panels = set(notebook.BLOCK1_MAP_PANELS)
    assert len(panels) == 9 and (0, 0) not in panels and panels <= {(r, c) for r in range(2) for c in range(5)}


def test_the_overlay_is_stretched_over_the_uncropped_photo(image):
    """Notebook: ``activation_resized = np.array(Image.fromarray(...).resize(img.size))`` drawn over
    ``axes[i, 3].imshow(img)``. Fact: the map covers the 224 x 224 centre crop, but is stretched
    over the whole uncropped photo, so every unit is drawn away from where it is."""
    offset = notebook.overlay_misalignment(image.size)
    assert offset > 0.1 * max(image.size), f"units drawn up to {offset:.1f} px away from their place in the {image.size} photo"


def test_block4_shows_the_uncropped_photo_beside_the_cropped_tensor(image):
    """Notebook: ``axes[0, 0].imshow(img)`` as the "Original Image" beside ``perturbed_tensor``.
    Fact: the tensor is the 224 x 224 centre crop; the panel shows photo the network never saw."""
    share = notebook.hidden_share(image.size)
    assert share > 0.1, f"{share:.1%} of the shown original is outside the tensor"


def test_the_permute_comment_hides_a_change_of_layout(vgg16):
    """Notebook: ``filt = filters[i].permute(1, 2, 0).numpy()  # [3, 3, 3] -> [3, 3, 3]``. Fact: the
    shape's numbers stay, but channels move from first to last (CHW to HWC, what imshow wants):
    of conv1_1 filter 0's 27 values, all but the 3 on the c = h = w diagonal change place."""
    moved = notebook.permuted_entries(vgg16.features[0].weight.detach()[0])
    assert moved == 24, f"{moved} of 27 values change place under permute(1, 2, 0)"


def test_the_four_random_maps_are_the_four_most_varied(vgg16, image_tensor):
    """Notebook: ``# Show 4 random feature maps from this layer``. Fact: the next lines pick
    ``torch.argsort(variances, descending=True)[:4]``, the four most varied channels, far from a
    random draw: their variance is many times the median channel's."""
    for layer in ("features.2", "features.16", "features.28"):
        activation = notebook.detach_hooks(vgg16, image_tensor, [layer])[layer]
        variances = activation[0].var(dim=[1, 2])
        ratio = float(variances[notebook.shown_channels(activation)].min() / variances.median())
        # Smallest ratio measured: ImageNet conv weights 2.38 (conv1_2; 4.61, 156.8 deeper), random 8.18.
        assert ratio > 1.5, f"{layer}: the least varied shown map has {ratio:.2f}x the median variance"


def test_block3_hooks_accumulate_when_the_cell_runs_again(zoo, image_tensor):
    """Notebook Block 3: ``model.features[2].register_forward_hook(get_activation('early'))`` with no
    ``.remove()``. Fact: running the cell again adds a second hook per layer, so every forward
    calls six hooks instead of three (Block 4 builds a "Fresh model to avoid hook accumulation")."""
    model = copy.deepcopy(zoo.get("vgg16"))
    for _ in range(2):
        notebook.block3_cell(model, image_tensor)
    hooks = sum(len(model.features[i]._forward_hooks) for i in (2, 16, 28))
    assert hooks == 6, f"{hooks} hooks on the three probed layers after two runs of the cell"

