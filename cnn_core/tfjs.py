"""TensorFlow.js / Keras layers-models (``model.json`` + weight shards) as torch modules.

Covers the Sequential models of CNN Explainer's kind: Conv2D, Activation, MaxPooling2D,
Flatten, Dense (and Dropout, InputLayer). Keras stores conv kernels as HWIO and flattens
channels-last; the torch model takes NCHW input and flattens in Keras's order, so that
every layer computes what the Keras layer computed.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import WeightsError

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softmax": lambda: nn.Softmax(dim=1)}
DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4")}


class ChannelsLastFlatten(nn.Module):
    """Keras's Flatten: NCHW is flattened in NHWC order, so Dense weights line up."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).flatten(1)


def model_json_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/model.json`` when a folder is given."""
    candidate = Path(path)
    return candidate / "model.json" if candidate.is_dir() else candidate


def load_tfjs_model(path: str | Path, with_weights: bool = True) -> nn.Sequential:
    """A torch ``nn.Sequential`` equal to the Keras model in ``model.json``, returning logits.

    A final softmax is left out (``class_score`` applies it); module names are Keras's layer names.
    """
    json_path = model_json_path(path)
    spec = _read_json(json_path)
    layers, input_shape = _sequential_layers(spec, json_path)
    weights = _read_weights(json_path, spec.get("weightsManifest", [])) if with_weights else {}
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    channels = input_shape[-1]
    for position, layer in enumerate(layers):
        kind, config = layer["class_name"], layer["config"]
        name = config["name"]
        last = position == len(layers) - 1
        if kind == "Conv2D":
            modules[name] = _conv(config, channels, weights, json_path)
            channels = config["filters"]
        elif kind == "Dense":
            modules[name] = _dense(config, weights, json_path)
        elif kind == "MaxPooling2D":
            if config.get("padding", "valid") != "valid":
                raise WeightsError(f"{json_path}: layer {name}: only 'valid' max pooling is supported")
            modules[name] = nn.MaxPool2d(tuple(config["pool_size"]), stride=tuple(config["strides"] or config["pool_size"]))
        elif kind == "Flatten":
            modules[name] = ChannelsLastFlatten()
        elif kind in ("Dropout", "InputLayer"):
            continue
        elif kind != "Activation":
            raise WeightsError(f"{json_path}: layer {name} is a {kind}, which this loader does not support")
        activation = config.get("activation", "linear")
        if activation != "linear" and not (last and activation == "softmax"):
            if activation not in ACTIVATIONS:
                raise WeightsError(f"{json_path}: layer {name}: activation {activation!r} is not supported")
            modules[name if kind == "Activation" else f"{name}_{activation}"] = ACTIVATIONS[activation]()
    model = nn.Sequential(modules)
    model.input_size = input_shape[0]
    return model


def _read_json(json_path: Path) -> dict:
    if not json_path.is_file():
        raise WeightsError(f"{json_path}: no such model.json")
    try:
        return json.loads(json_path.read_text())
    except (OSError, ValueError) as error:
        raise WeightsError(f"{json_path}: not a readable JSON file ({error})") from None


def _sequential_layers(spec: dict, json_path: Path) -> tuple[list[dict], tuple[int, int, int]]:
    topology = spec.get("modelTopology", {})
    config = topology.get("model_config", topology)
    if config.get("class_name") != "Sequential":
        raise WeightsError(f"{json_path}: only Keras Sequential models are supported, got {config.get('class_name')!r}")
    layers = config["config"]["layers"] if isinstance(config["config"], dict) else config["config"]
    first = layers[0]["config"]
    if first.get("data_format", "channels_last") != "channels_last" or "batch_input_shape" not in first:
        raise WeightsError(f"{json_path}: the first layer must declare a channels_last batch_input_shape")
    return layers, tuple(first["batch_input_shape"][1:])


def _read_weights(json_path: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        try:
            data = b"".join((json_path.parent / shard).read_bytes() for shard in group["paths"])
        except OSError as error:
            raise WeightsError(f"{json_path}: weight shard missing or unreadable ({error})") from None
        offset = 0
        for entry in group["weights"]:
            if "quantization" in entry or entry["dtype"] not in DTYPES:
                raise WeightsError(f"{json_path}: weight {entry['name']} is {entry['dtype']}/quantized; only float32 is supported")
            dtype = DTYPES[entry["dtype"]]
            count = int(np.prod(entry["shape"]))
            end = offset + count * dtype.itemsize
            if end > len(data):
                raise WeightsError(f"{json_path}: the shards hold {len(data)} bytes, fewer than the manifest needs")
            weights[entry["name"]] = np.frombuffer(data[offset:end], dtype=dtype).reshape(entry["shape"]).copy()
            offset = end
        if offset != len(data):
            raise WeightsError(f"{json_path}: the shards hold {len(data) - offset} bytes more than the manifest describes")
    return weights


def _weight(weights: dict, name: str, json_path: Path) -> torch.Tensor | None:
    if not weights:
        return None
    if name not in weights:
        raise WeightsError(f"{json_path}: the manifest has no weight {name!r}")
    return torch.from_numpy(weights[name])


def _conv(config: dict, channels: int, weights: dict, json_path: Path) -> nn.Conv2d:
    name, kernel = config["name"], tuple(config["kernel_size"])
    if config.get("padding") not in ("valid", "same") or (config["padding"] == "same" and any(k % 2 == 0 for k in kernel)):
        raise WeightsError(f"{json_path}: layer {name}: padding {config.get('padding')!r} with kernel {kernel} is not supported")
    conv = nn.Conv2d(channels, config["filters"], kernel, stride=tuple(config["strides"]),
                     padding=0 if config["padding"] == "valid" else "same",
                     dilation=tuple(config.get("dilation_rate", (1, 1))), bias=config.get("use_bias", True))
    kernel_hwio = _weight(weights, f"{name}/kernel", json_path)
    if kernel_hwio is not None:
        with torch.no_grad():
            conv.weight.copy_(kernel_hwio.permute(3, 2, 0, 1))
            if conv.bias is not None:
                conv.bias.copy_(_weight(weights, f"{name}/bias", json_path))
    return conv


def _dense(config: dict, weights: dict, json_path: Path) -> nn.Linear:
    name = config["name"]
    kernel = _weight(weights, f"{name}/kernel", json_path)
    if kernel is None:
        raise WeightsError(f"{json_path}: layer {name}: a Dense layer needs its weights to know its input size")
    dense = nn.Linear(kernel.shape[0], config["units"], bias=config.get("use_bias", True))
    with torch.no_grad():
        dense.weight.copy_(kernel.T)
        if dense.bias is not None:
            dense.bias.copy_(_weight(weights, f"{name}/bias", json_path))
    return dense
