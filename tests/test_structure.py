"""Results that depend on a model's structure are computed once, and afresh when it changes."""
from __future__ import annotations

import torch
from torch import nn

import cnn_core
from cnn_core import receptive
from cnn_core.structure import cached, structure_key


def vgg_like() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1))


def test_an_unchanged_model_is_asked_once():
    model, calls = vgg_like(), []
    for _ in range(3):
        assert cached(model, "question", lambda: calls.append(1) or len(calls)) == 1
    assert len(calls) == 1


def test_weights_are_not_structure_but_strides_and_forwards_are():
    model = vgg_like()
    key = structure_key(model)
    with torch.no_grad():
        model[0].weight.add_(1)
    assert structure_key(model) == key
    model[2].stride = 1
    assert structure_key(model) != key
    model[2].stride = 2
    assert structure_key(model) == key
    model[3].forward = lambda x: x
    assert structure_key(model) != key


def test_a_deliberate_break_gets_its_own_fields_and_the_repair_the_original(monkeypatch):
    model = vgg_like()
    before = cnn_core.receptive_field(model, "3", (16, 16))
    with monkeypatch.context() as patch:
        patch.setattr(model[2], "stride", 1)
        assert cnn_core.receptive_field(model, "3", (16, 16)).jump == (1, 1)
    with monkeypatch.context() as patch:
        patch.setattr(receptive, "_conv_padding", lambda module, input_hw: (0, 0))
        assert cnn_core.receptive_field(model, "3", (16, 16)).first != before.first
    assert cnn_core.receptive_field(model, "3", (16, 16)) == before
    assert before.jump == (2, 2)
