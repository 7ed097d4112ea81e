"""load_model: deterministic random init, weights from files and the cache, clear errors, no downloads."""
from __future__ import annotations

import pytest
import torch

import cnn_core
from cnn_core import ModelNotFound, WeightsError
from cnn_core.models import imagenet_cache_path


def test_random_init_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = cnn_core.load_model("resnet18")
    second = cnn_core.load_model("resnet18")
    assert torch.equal(torch.rand(1), expected_next)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    assert not first.training and cnn_core.model_card(first).weights == "random(seed=0)"
    assert not cnn_core.is_trained(first)


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelNotFound, match="did you mean .*'vgg16'") as error:
        cnn_core.load_model("vgg61")
    assert "vgg16" in error.value.suggestions


def test_state_dict_file_round_trip(tmp_path):
    trained = cnn_core.load_model("resnet18")
    with torch.no_grad():
        trained.fc.bias.fill_(0.25)
    path = tmp_path / "weights.pt"
    torch.save(trained.state_dict(), path)
    loaded = cnn_core.load_model("resnet18", weights=path)
    assert torch.equal(loaded.fc.bias, trained.fc.bias)
    assert cnn_core.model_card(loaded).weights == f"file:{path}" and cnn_core.is_trained(loaded)


def test_checkpoint_wrapped_state_dict_is_accepted(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": cnn_core.load_model("resnet18").state_dict(), "epoch": 3}, path)
    assert cnn_core.model_card(cnn_core.load_model("resnet18", weights=path)).weights.startswith("file:")


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    (b"garbage", "not a torch state_dict file"),
    ("wrong-model", "do not fit"),
], ids=["missing", "garbage", "wrong-architecture"])
def test_bad_weight_files_raise_weights_error(tmp_path, content, problem):
    path = tmp_path / "weights.pt"
    if content == "wrong-model":
        torch.save(cnn_core.load_model("alexnet").state_dict(), path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match=problem):
        cnn_core.load_model("resnet18", weights=path)


def test_auto_without_cached_weights_warns_and_falls_back(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.warns(UserWarning, match="weights='imagenet'"):
        model = cnn_core.load_model("resnet18", weights="auto")
    assert cnn_core.model_card(model).weights.startswith("random")


def test_auto_uses_weights_already_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    cached = imagenet_cache_path("resnet18")
    cached.parent.mkdir(parents=True)
    reference = cnn_core.load_model("resnet18")
    with torch.no_grad():
        reference.fc.bias.fill_(0.5)
    torch.save(reference.state_dict(), cached)
    model = cnn_core.load_model("resnet18", weights="auto")
    assert cnn_core.model_card(model).weights == "imagenet" and torch.equal(model.fc.bias, reference.fc.bias)


def test_cuda_without_a_gpu_is_an_error_not_a_fallback():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU, so asking for one is not an error")
    with pytest.raises(cnn_core.InputError, match="no CUDA GPU"):
        cnn_core.load_model("resnet18", device="cuda")


def test_architectures_build_on_meta_without_memory():
    model = cnn_core.build_architecture("vgg16")
    assert all(p.is_meta for p in model.parameters())
