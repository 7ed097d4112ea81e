"""Batch norms folded into the convs before them: the same function, fewer layers."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import cnn_core
from cnn_core import tracing


def with_trained_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """A fresh init's batch norms are nearly identities (mean 0, variance 1, scale 1, shift 0): folding
    them would prove little. These get statistics and affine parameters far from that."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator))
            module.running_var.copy_(torch.rand(size, generator=generator) * 2 + 0.1)
            module.weight.data.copy_(torch.randn(size, generator=generator))
            module.bias.data.copy_(torch.randn(size, generator=generator))
    return model


def batch_norm_calls(model: nn.Module) -> int:
    graph_module = tracing.trace(model)
    return sum(node.op == "call_module" and isinstance(graph_module.get_submodule(node.target), nn.BatchNorm2d)
               for node in graph_module.graph.nodes)


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0", "resnet18", "timm/tf_efficientnet_b0"])
def test_folding_keeps_the_function_in_float64(name):
    """Exact up to float64 rounding (1e-10 of the output's scale), and every conv-then-norm pair is gone:
    torch's batch norms and timm's with their activation (BatchNormAct2d, after TensorFlow-padded convs)."""
    model = with_trained_statistics(cnn_core.load_model(name, "none")).double()
    folded = cnn_core.fold_batch_norms(model)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        reference, ours = model(x), folded(x)
    assert torch.allclose(ours, reference, rtol=0, atol=1e-10 * float(reference.abs().max()))
    assert batch_norm_calls(model) > 0 and batch_norm_calls(folded) == 0


def test_a_fold_that_forgets_the_running_mean_changes_the_function(monkeypatch):
    """Break: the conv's bias folded without the batch norm's running mean; the equality above fails."""
    real = tracing.fuse_conv_bn_eval

    def forgetful(conv, bn):
        bn = copy.deepcopy(bn)
        bn.running_mean.zero_()
        return real(conv, bn)

    monkeypatch.setattr(tracing, "fuse_conv_bn_eval", forgetful)
    model = with_trained_statistics(cnn_core.load_model("mobilenet_v2", "none")).double()
    x = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        reference, ours = model(x), cnn_core.fold_batch_norms(model)(x)
    assert not torch.allclose(ours, reference, rtol=0, atol=1e-3 * float(reference.abs().max()))


def test_a_conv_read_twice_keeps_its_batch_norm():
    """A conv whose output another layer also reads cannot take the norm's scale into its weights."""

    class TwoReaders(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.norm = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.norm(y) + y

    model = with_trained_statistics(TwoReaders()).eval()
    folded = cnn_core.fold_batch_norms(model)
    x = torch.randn(1, 3, 16, 16)
    assert batch_norm_calls(folded) == 1
    assert torch.allclose(folded(x), model(x), rtol=0, atol=1e-6)


def test_nothing_to_fold_and_training_mode_give_the_model_itself():
    vgg = cnn_core.load_model("vgg11", "none")
    assert cnn_core.fold_batch_norms(vgg) is vgg  # no batch norm
    training = cnn_core.load_model("mobilenet_v2", "none").train()
    assert cnn_core.fold_batch_norms(training) is training  # batch statistics: nothing fixed to fold
