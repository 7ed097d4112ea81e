"""TensorFlow's "SAME" padding (timm's ``tf_`` models): padded in ``forward`` from the input's size,
the smaller half first. The analytic fields must place every unit where timm's own padding puts it."""
from __future__ import annotations

import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import cnn_core

timm_layers = pytest.importorskip("timm.layers", reason="timm's layers need timm: pip install -e '.[dev]' brings it")
from timm.layers.pool2d_same import AvgPool2dSame, MaxPool2dSame  # noqa: E402 - after the skip


@st.composite
def same_stacks(draw) -> nn.Sequential:
    """timm's Conv2dSame, MaxPool2dSame and AvgPool2dSame with any kernel, stride and dilation."""
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        kernel, stride = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        kind = draw(st.sampled_from(["conv", "max", "avg"]))
        if kind == "conv":
            layers.append(timm_layers.Conv2dSame(1, 1, kernel, stride=stride, dilation=draw(st.integers(1, 2))))
        else:
            pool = MaxPool2dSame if kind == "max" else AvgPool2dSame
            layers.append(pool(kernel, stride=stride))
    return nn.Sequential(*layers).eval()


@given(stack=same_stacks(), size=st.integers(17, 40), data=st.data())
def test_same_padding_fields_equal_the_gradient_support(stack, size, data):
    """Every unit's analytic field equals the pixels that reach it through timm's own padding (the
    support twin pads by timm's ``pad_same``), at odd and even sizes, where the halves differ."""
    table = cnn_core.receptive_fields(stack, (size, size))
    out = stack(torch.zeros(1, 1, size, size))
    assert table[str(len(stack) - 1)].output_size == tuple(out.shape[-2:])
    for name, field in table.items():
        if name == "":
            continue
        unit = (data.draw(st.integers(0, field.output_size[0] - 1)), data.draw(st.integers(0, field.output_size[1] - 1)))
        assert cnn_core.empirical_receptive_field(stack, name, (size, size), unit=unit) == field.box(*unit), name


def test_same_padding_puts_the_smaller_half_first():
    """A 3x3 stride-2 conv on 224 pixels pads one row, below the image (TensorFlow), not above."""
    conv = nn.Sequential(timm_layers.Conv2dSame(3, 8, 3, stride=2))
    field = cnn_core.receptive_field(conv, "0", (224, 224))
    assert (field.first, field.output_size) == ((0, 0), (112, 112))
    assert field.box(111, 111) == cnn_core.Box(222, 222, 224, 224)


def test_fields_disagree_when_the_larger_half_comes_first(monkeypatch):
    """Break: padding the larger half first (the other convention) must move fields off the support."""
    stack = nn.Sequential(timm_layers.Conv2dSame(1, 1, 3, stride=2)).eval()  # 20 px: one row of padding

    def larger_first(module, input_hw):
        kernel, stride, dilation = (cnn_core.geometry.as_pair(getattr(module, a)) for a in ("kernel_size", "stride", "dilation"))
        return tuple(-(-cnn_core.padding.same_total(n, k, s, d) // 2) for n, k, s, d in zip(input_hw, kernel, stride, dilation))

    monkeypatch.setattr(cnn_core.receptive, "_conv_padding", larger_first)
    field = cnn_core.receptive_field(stack, "0", (20, 20))
    assert cnn_core.empirical_receptive_field(stack, "0", (20, 20), unit=(0, 0)) != field.box(0, 0)


def test_a_tf_model_traces_with_timms_no_trace_layers_whole():
    """timm's tf_efficientnet_b0 pads from the input's size, which torch.fx cannot trace; kept whole
    (timm's registry) its Conv2dSame layers are single nodes and single layers with exact fields."""
    model = cnn_core.load_model("timm/tf_efficientnet_b0", weights="none")
    paths = [layer.path for layer in cnn_core.layers(model)]
    assert "conv_stem" in paths and "bn1" in paths and "bn1.act" not in paths  # BatchNormAct2d is one layer
    stem = cnn_core.receptive_field(model, "conv_stem")
    assert (stem.size, stem.jump, stem.first) == ((3, 3), (2, 2), (0, 0))
    depthwise = cnn_core.receptive_field(model, "blocks.0.0.conv_dw")
    assert depthwise.box(56, 56, clip=False) == cnn_core.Box(110, 110, 117, 117)
    assert cnn_core.empirical_receptive_field(model, "blocks.0.0.conv_dw") == depthwise.box(56, 56)


def test_incremental_occlusion_falls_back_on_same_padding():
    """A cut-out block changes the input size a "SAME" layer pads from: the incremental sweep must not
    run it, and falls back to whole passes with its warning naming the layer."""
    model = nn.Sequential(timm_layers.Conv2dSame(3, 4, 3, stride=2), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    plan = cnn_core.incremental_plan(model)
    assert not plan.supported and "Conv2dSame" in plan.blocker
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cnn_core.occlusion_map(model, torch.randn(1, 3, 32, 32), window=8, stride=8, target=0)
    assert any("Conv2dSame" in str(w.message) for w in caught)
    assert result.drop.shape == (4, 4)
