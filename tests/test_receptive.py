"""Receptive fields: analytic against measured on random stacks, branches, global layers, unit boxes."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

import cnn_core
from claims.judging.probes import probe_layers
from claims.judging.structural import units_touching_region
from claims.tools.strategies import boxes


@st.composite
def conv_stacks(draw) -> nn.Sequential:
    """A random stack of convs and pools with arbitrary kernel, stride, padding, dilation and ceil mode."""
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.integers(0, 5)) == 0:
            layers.append(nn.AdaptiveAvgPool2d(draw(st.integers(2, 9))))
        kernel = draw(st.integers(1, 5))
        padding = draw(st.integers(0, kernel // 2))
        if draw(st.booleans()):
            layers.append(nn.Conv2d(1, 1, kernel, stride=draw(st.integers(1, 3)), padding=padding,
                                    dilation=draw(st.integers(1, 2))))
        else:
            pool = draw(st.sampled_from([nn.MaxPool2d, nn.AvgPool2d]))
            layers.append(pool(kernel, stride=draw(st.integers(1, 3)), padding=padding, ceil_mode=draw(st.booleans())))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@given(stack=conv_stacks(), data=st.data())
def test_analytic_equals_measured_for_any_stack(stack, data):
    try:
        stack(torch.zeros(1, 1, 48, 48))
    except RuntimeError:  # the stack shrinks 48 pixels to nothing
        assume(False)
    table = cnn_core.receptive_fields(stack, (48, 48))
    for name, field in table.items():
        if field.is_global or name == "":
            continue
        unit = (data.draw(st.integers(0, field.output_size[0] - 1)), data.draw(st.integers(0, field.output_size[1] - 1)))
        assert cnn_core.empirical_receptive_field(stack, name, (48, 48), unit=unit) == field.box(*unit), name


def test_pool1_centres_fall_on_half_pixels(zoo):
    field = cnn_core.receptive_field(zoo.get("vgg16"), "pool1")
    assert field.start == (0.5, 0.5) and field.size == (6, 6) and field.jump == (2, 2)
    assert field.box(0, 0, clip=False) == cnn_core.Box(-2, -2, 4, 4)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.wide = nn.Conv2d(1, 1, 5, padding=2)
        self.narrow = nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.wide(x) + self.narrow(x)


def test_branches_meet_as_the_union_of_their_fields():
    model = Residual()
    field = cnn_core.receptive_fields(model, (32, 32))["narrow"]
    assert field.size == (1, 1)
    whole = cnn_core.receptive_fields(torch.nn.Sequential(model), (32, 32))["0"]
    assert whole.size == (5, 5)
    assert cnn_core.empirical_receptive_field(torch.nn.Sequential(model), "0", (32, 32)) == whole.box(16, 16)


def test_flatten_and_linear_layers_are_global(zoo):
    fields = cnn_core.receptive_fields(zoo.get("vgg16"))
    assert fields["classifier.0"].is_global and not fields["features.30"].is_global
    assert fields["classifier.0"].box(0, 0) == cnn_core.Box(0, 0, 224, 224)


def test_vit_is_global_after_the_patch_embedding():
    vit = cnn_core.build_architecture("vit_b_16")
    fields = cnn_core.receptive_fields(vit)
    assert fields["conv_proj"].size == (16, 16) and fields["conv_proj"].jump == (16, 16)
    assert fields["encoder.layers.encoder_layer_0"].is_global


@given(box=boxes(224))
def test_units_touching_are_exactly_the_units_whose_box_overlaps(zoo, box):
    field = cnn_core.receptive_field(zoo.get("vgg16"), "conv3_1")
    rows, cols = field.units_touching(box)
    for row in range(field.output_size[0]):
        overlaps = field.box(row, cols.start if cols.stop > cols.start else 0, clip=False)
        expected = overlaps.top < box.bottom and box.top < overlaps.bottom
        assert (rows.start <= row < rows.stop) == expected, row


def test_unknown_layer_and_non_spatial_layer_errors(zoo):
    model = zoo.get("vgg16")
    with pytest.raises(cnn_core.LayerNotFound, match="conv5_3"):
        cnn_core.receptive_field(model, "conv5_9")
    with pytest.raises(cnn_core.ReceptiveFieldError, match="Linear over a dimension of size 49 mixes positions"):
        cnn_core.empirical_receptive_field(model, "classifier.0")


def test_squeeze_and_excitation_gates_keep_their_global_support():
    """efficientnet_b0 gates every block by a global average (x * sigmoid(fc(pool(x)))): its fields
    are global, and the measured gradient support must say so, not vanish (products of values below 1,
    block after block, underflowed float64 in the positive twin until gates became sums there)."""
    model = cnn_core.build_architecture("efficientnet_b0").eval()
    assert cnn_core.receptive_field(model, "features.6").is_global
    corner, centre = cnn_core.empirical_receptive_fields(model, "features.6", (224, 224), [(0, 0), None])
    assert corner == centre == cnn_core.Box(0, 0, 224, 224)


class ChannelsLastBlock(nn.Module):
    """ConvNeXt's block in small: a depthwise 3x3 conv, then LayerNorm and an MLP over channels-last
    channels, a learned layer scale, and the residual. ``norm_over``: "channels" (as ConvNeXt) or
    "columns" (a LayerNorm over the last dimension of the NCHW map: the deliberate break)."""

    def __init__(self, channels: int = 4, width: int = 32, norm_over: str = "channels"):
        super().__init__()
        self.norm_over = norm_over
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        self.norm = nn.LayerNorm(channels if norm_over == "channels" else width)
        self.mlp = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))
        self.layer_scale = nn.Parameter(torch.full((channels, 1, 1), 0.1))

    def forward(self, x):
        y = self.conv(x)
        if self.norm_over == "channels":
            y = self.mlp(self.norm(y.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        else:
            y = self.norm(y)
        return x + self.layer_scale * y


@pytest.mark.parametrize("layer", ["conv", "norm", "mlp.0", "mlp.1", "mlp.2", ""])
def test_channels_last_layer_norms_and_linears_stay_per_position(layer):
    """ConvNeXt normalises and mixes channels in channels-last layout: every unit still sees only
    its 3x3 neighbourhood, in the analytic fields and in the gradient support alike."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), ChannelsLastBlock()).eval()
    name = f"1.{layer}".rstrip(".")
    field = cnn_core.receptive_fields(model, (32, 32))[name]
    assert field.size == (3, 3) and field.output_size == (32, 32)
    assert field.spatial_dims == ((1, 2) if layer in ("norm", "mlp.0", "mlp.1", "mlp.2") else (2, 3))
    measured = cnn_core.empirical_receptive_fields(model, name, (32, 32), [None, (0, 0)], field.spatial_dims)
    assert measured == [field.box(16, 16), field.box(0, 0)] == [cnn_core.Box(15, 15, 18, 18), cnn_core.Box(0, 0, 2, 2)]


def test_a_layer_norm_over_a_spatial_dimension_is_global_and_has_no_twin():
    """Break: the same LayerNorm over the map's columns mixes every column of a row: the analytic
    field is global and the support twin refuses it rather than pass it as an identity."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1), ChannelsLastBlock(norm_over="columns")).eval()
    assert cnn_core.receptive_fields(model, (32, 32))["1.norm"].is_global
    with pytest.raises(cnn_core.ReceptiveFieldError, match="size 32 mixes positions"):
        cnn_core.empirical_receptive_fields(model, "1.norm", (32, 32), [None])


def test_convnext_fields_through_its_layer_norms_and_layer_scale():
    """torchvision's convnext_tiny: a 4x4 stride-4 stem, LayerNorm2d (permute, layer_norm, permute),
    then 7x7 depthwise convs: its first block sees 4 + 6 * 4 = 28 pixels, measured and computed."""
    model = cnn_core.build_architecture("convnext_tiny", device="cpu").eval()
    fields = cnn_core.receptive_fields(model)
    assert fields["features.0"].size == (4, 4) and fields["features.1.0"].size == (28, 28)
    for layer in ("features.0", "features.1.0", "features.1.0.block.3"):
        field = fields[layer]
        measured = cnn_core.empirical_receptive_fields(model, layer, (224, 224), [None], field.spatial_dims)
        assert measured == [field.box(28, 28)], layer


class SplitAndPool(nn.Module):
    """Inception's and MixNet's idioms: channels split into groups convolved with different kernels
    and concatenated, then a functional max pool and a functional average pool."""

    def __init__(self, split: str = "channels"):
        super().__init__()
        self.split = split
        self.stem = nn.Conv2d(3, 8, 1)
        self.small, self.large = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 5, padding=2)
        self.after = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        x = self.stem(x)
        a, b = torch.split(x, [4, 4], dim=1) if self.split == "channels" else torch.split(x, [16, 16], dim=3)
        if self.split != "channels":
            a, b = a[:, :4], b[:, 4:]
        x = torch.cat([self.small(a), self.large(b)], 1)
        x = F.max_pool2d(x, 3, stride=2, padding=1)
        return self.after(F.avg_pool2d(x, kernel_size=2))


def test_channel_splits_and_functional_pools_have_exact_fields():
    """A channel split keeps every part's positions; F.max_pool2d and F.avg_pool2d move fields as
    their modules do: analytic equals measured at every layer (the 5x5 branch decides the union)."""
    model = SplitAndPool().eval()
    table = cnn_core.receptive_fields(model, (32, 32))
    assert table["after"].size == (5 + 2 + 2, 5 + 2 + 2) and table["after"].jump == (4, 4)
    for name in ("small", "large", "after"):
        field = table[name]
        assert cnn_core.empirical_receptive_fields(model, name, (32, 32), [None, (0, 0)]) == \
            [field.box(field.output_size[0] // 2, field.output_size[1] // 2), field.box(0, 0)], name


def test_a_split_along_columns_is_global():
    """Break: splitting the columns and convolving each half apart is no longer a per-position operation."""
    assert cnn_core.receptive_fields(SplitAndPool(split="columns").eval(), (32, 32))["after"].is_global


def test_global_unit_centres_lie_on_the_input_fed_not_the_size_built_for():
    """EfficientNet-B3 is built for 300 px; fed the notebook's 224 its deep (gated, global) units sit
    over those 224 pixels, and only fields computed at the size fed say so (the break: its own size)."""
    model = cnn_core.build_architecture("efficientnet_b3").eval()
    fed = cnn_core.receptive_field(model, "features.8", (224, 224))
    built = cnn_core.receptive_field(model, "features.8", (300, 300))
    assert fed.is_global and fed.output_size == (7, 7)
    assert float(fed.unit_centres(0).max()) < 224 < float(built.unit_centres(0, 7).max())



class MethodSigmoid(nn.Module):
    """timm's ``Sigmoid`` module: a ``x.sigmoid()`` call that tracing sees inside it, not an nn.Sigmoid."""

    def forward(self, x):
        return x.sigmoid()


class GateAfterSums(nn.Module):
    """Residual sums double the positive twin's values block after block (ReXNet's), and then a gate
    calls ``x.sigmoid()``, whose slope at such values is 0 in float64."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.gate = MethodSigmoid()

    def forward(self, x):
        x = self.conv(x)
        for _ in range(12):
            x = x + x
        return self.gate(x)


def test_activations_called_as_methods_are_identities_in_the_support_twin():
    model = GateAfterSums().eval()
    assert cnn_core.empirical_receptive_field(model, "gate", (16, 16), (0, 0)) == cnn_core.Box(0, 0, 2, 2)
    assert cnn_core.receptive_field(model, "gate", (16, 16)).box(0, 0) == cnn_core.Box(0, 0, 2, 2)


def test_an_empty_sequential_passes_its_input_field_on():
    """GhostNet's shortcut where shapes match is an empty nn.Sequential: an identity with no node in
    the traced graph, listed as a pointwise layer, so no field is looked up for it."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(), nn.Conv2d(4, 4, 3)).eval()
    listed = {layer.path: layer for layer in cnn_core.layers(model, (16, 16))}
    assert listed["1"].pointwise and not listed["0"].pointwise
    assert "1" not in probe_layers(cnn_core.layers(model, (16, 16)), "spatial")


def test_window_partitions_keep_the_layout_through_transposes():
    """MaxViT partitions maps into windows: reshapes to six dimensions, permutes and swapaxes. The
    layout follows each permutation of any rank; attention over a window makes the field global."""
    model = cnn_core.build_architecture("maxvit_t").eval()
    fields = cnn_core.receptive_fields(model)
    assert fields["stem.1.0"].size == (7, 7)  # two 3x3 convs, the first of stride 2
    assert fields["blocks.0.layers.0.layers.window_attention"].is_global


def test_a_box_between_a_strided_projections_samples_changes_no_unit():
    """RegNet's second conv is a 1x1 stride-2 projection: it reads every other pixel, so a 1-px box
    on an odd column touches no unit's field, and the occlusion changes nothing (float64)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 1, stride=2)).double().eval()
    field = cnn_core.receptive_field(model, "0", (16, 16))
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for box, touched in ((cnn_core.Box(0, 1, 1, 2), None), (cnn_core.Box(0, 0, 3, 3), cnn_core.Box(0, 0, 2, 2))):
        assert units_touching_region(field, box) == touched
        assert cnn_core.changed_region(cnn_core.occlusion_diff(model, x, box, "0")["0"][0]) == touched
