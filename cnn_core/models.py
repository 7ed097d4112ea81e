"""Building torchvision models by name, with weights that never download by surprise.

``weights`` is one of:

- ``"none"``: random initialisation from a fixed seed, bit-identical on every call;
- ``"imagenet"``: torchvision's default weights, downloaded once if missing (needs a network);
- ``"auto"``: the ImageNet weights if they already sit in the torch cache, else random
  initialisation with a warning that says how to get them;
- a path to a ``state_dict`` file saved with ``torch.save``.

``"tiny-vgg"`` is CNN Explainer's trained Tiny VGG, read from its TensorFlow.js files: a path
to its ``model.json``, or ``"auto"`` to find it under ``$CNN_CLAIMS_FIXTURES/tiny-vgg/``;
``"none"`` gives its randomly initialised twin.
"""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from .errors import InputError, ModelNotFound, WeightsError
from .images import IMAGENET, UNIT, Normalization
from .tfjs import load_tfjs_model

RANDOM_SEED = 0
FIXTURES_ENV = "CNN_CLAIMS_FIXTURES"  # the folder that holds tiny-vgg/ (CNN Explainer's trained model)
TINY_VGG = "tiny-vgg"
TINY_VGG_CLASSES = (
    "lifeboat", "ladybug", "pizza", "bell pepper", "school bus",
    "koala", "espresso", "red panda", "orange", "sport car",
)


def available_models() -> list[str]:
    """Names of every torchvision image-classification model."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def check_model_name(name: str) -> str:
    known = available_models()
    if name not in known and name != TINY_VGG:
        raise ModelNotFound(name, [*known, TINY_VGG], hint="torchvision.models.list_models() lists them all")
    return name


def tiny_vgg_json() -> Path:
    """CNN Explainer's Tiny VGG ``model.json``, found through the CNN_CLAIMS_FIXTURES folder."""
    folder = os.environ.get(FIXTURES_ENV)
    if not folder:
        raise WeightsError(
            f"Tiny VGG is read from CNN Explainer's files: set {FIXTURES_ENV} to the folder that holds "
            f"tiny-vgg/ (for example ../shared/fixtures), or pass weights='path/to/model.json'"
        )
    path = Path(folder) / TINY_VGG / "model.json"
    if not path.is_file():
        raise WeightsError(f"{FIXTURES_ENV}={folder} holds no {TINY_VGG}/model.json")
    return path


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when present; ``"cuda"`` without a GPU is an error, not a fallback."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InputError(f"device {device!r} is not a torch device ({error})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was asked for but torch sees no CUDA GPU; use 'cpu' or 'auto'")
    return resolved


def imagenet_cache_path(name: str) -> Path | None:
    """Where torch.hub keeps the default weights of ``name``; None if it has none."""
    try:
        default = torchvision.models.get_model_weights(name).DEFAULT
    except (ValueError, KeyError, AttributeError):
        return None
    filename = os.path.basename(urlparse(default.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def build_architecture(name: str, device: str | torch.device = "meta") -> nn.Module:
    """The architecture of ``name`` without touching real memory (default: meta device).

    Collection-time code uses this to list layers without paying for initialisation.
    """
    check_model_name(name)
    if name == TINY_VGG:
        return load_tfjs_model(tiny_vgg_json()).to(device)
    with torch.device(device):
        return torchvision.models.get_model(name, weights=None)


def load_model(name: str, weights: str | os.PathLike = "none", device: str | torch.device = "cpu") -> nn.Module:
    """An eval-mode torchvision model, with ``model.weights_source`` saying where its weights came from."""
    check_model_name(name)
    target = resolve_device(device)
    weights_text = os.fspath(weights)
    if name == TINY_VGG:
        return _tiny_vgg(weights_text).to(target).eval()
    if weights_text == "imagenet":
        model = torchvision.models.get_model(name, weights="DEFAULT")
        source = "imagenet"
    elif weights_text == "auto":
        model, source = _cached_or_random(name)
    elif weights_text == "none":
        model, source = _random_model(name), f"random(seed={RANDOM_SEED})"
    else:
        model = _random_model(name)
        _load_state_dict_file(model, Path(weights_text))
        source = f"file:{weights_text}"
    model.weights_source = source
    model.normalization = IMAGENET
    model.input_size = 224
    model.class_names = _imagenet_categories(name)
    return model.to(target).eval()


def random_twin(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every layer re-initialised from the fixed seed: same architecture, no training."""
    twin = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        for module in twin.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    twin.weights_source = f"random(seed={RANDOM_SEED})"
    return twin.eval()


def _tiny_vgg(weights: str) -> nn.Module:
    if weights in ("auto", "none", "imagenet"):
        path = tiny_vgg_json()
    else:
        path = Path(weights)
    model = load_tfjs_model(path)
    model.normalization = UNIT
    model.class_names = TINY_VGG_CLASSES
    model.weights_source = f"file:{path}"
    return random_twin(model) if weights == "none" else model.eval()


def _imagenet_categories(name: str) -> tuple[str, ...] | None:
    try:
        return tuple(torchvision.models.get_model_weights(name).DEFAULT.meta["categories"])
    except (ValueError, KeyError, AttributeError):
        return None


def is_trained(model: nn.Module) -> bool:
    return not getattr(model, "weights_source", "random").startswith("random")


def input_size_of(model: nn.Module) -> tuple[int, int]:
    """The square input ``model`` was built for (224 unless the loader said otherwise)."""
    size = getattr(model, "input_size", 224)
    return (size, size)


def normalization_of(model: nn.Module) -> Normalization:
    """The input normalisation ``model`` expects (ImageNet's unless the loader said otherwise)."""
    return getattr(model, "normalization", IMAGENET)


def _random_model(name: str) -> nn.Module:
    # A private RNG stream: the same weights every time, and the caller's RNG is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        return torchvision.models.get_model(name, weights=None)


def _cached_or_random(name: str) -> tuple[nn.Module, str]:
    path = imagenet_cache_path(name)
    if path is not None and path.is_file():
        model = _random_model(name)
        _load_state_dict_file(model, path)
        return model, "imagenet"
    where = f" at {path}" if path is not None else ""
    warnings.warn(
        f"ImageNet weights for {name} are not in the torch cache{where}; using random "
        f"initialisation. Run once with weights='imagenet' (pytest option --weights imagenet) "
        f"on a machine with a network to download them.",
        stacklevel=3,
    )
    return _random_model(name), f"random(seed={RANDOM_SEED})"


def _load_state_dict_file(model: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise WeightsError(
            f"weights {os.fspath(path)!r}: no such file; pass 'none', 'imagenet', 'auto' or the path of a state_dict"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise WeightsError(f"weights {os.fspath(path)!r} is not a torch state_dict file: {error}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"weights {os.fspath(path)!r} holds a {type(state).__name__}, not a state_dict")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # tensor shape mismatches
        raise WeightsError(f"weights {os.fspath(path)!r} do not fit {type(model).__name__}: {error}") from None
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"weights {os.fspath(path)!r} do not fit {type(model).__name__}: "
            f"missing {_sample(result.missing_keys)}, unexpected {_sample(result.unexpected_keys)}"
        )


def _sample(keys: list[str]) -> str:
    shown = ", ".join(keys[:3])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > 3 else ''})" if keys else "0"
