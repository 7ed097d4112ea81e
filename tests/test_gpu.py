"""On a GPU, the hot paths stay on the device: capturing the notebook's layers and an incremental
occlusion sweep never wait for the host (no ``.item()``, ``.cpu()`` or ``.tolist()`` per layer or
per window). Run by ``reports/bench/gpu-check.sh`` on a machine with CUDA; elsewhere there is no
device to wait for."""
from __future__ import annotations

import pytest
import torch

import cnn_core
from claims.judging.notebook import NOTEBOOK_PROBES
from cnn_core.images import fill_value
from cnn_core.incremental import incremental_outputs, incremental_plan

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bash reports/bench/gpu-check.sh)")


@pytest.fixture
def no_host_waits():
    """Any synchronising call raises while the test body runs."""
    torch.cuda.set_sync_debug_mode("error")
    yield
    torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "mobilenet_v2"])
def test_capture_and_incremental_occlusion_never_wait_for_the_host(name, request):
    model = cnn_core.load_model(name, "none", device="cuda")
    x = torch.randn(1, 3, 224, 224, device="cuda")
    layers = [probe.layer for probe in NOTEBOOK_PROBES] if name == "vgg16" else [cnn_core.first_conv(model)]
    plan = incremental_plan(model)
    boxes = [cnn_core.Box(top, left, top + 32, left + 32) for top in range(0, 193, 16) for left in range(0, 193, 16)]
    paint = fill_value("mean", x)
    with torch.no_grad():  # first calls pick kernels and allocate: not what is checked
        cnn_core.capture(model, x, layers)
        incremental_outputs(plan, x, boxes[:2], paint, batch_size=2)
    request.getfixturevalue("no_host_waits")
    with torch.no_grad():
        cnn_core.capture(model, x, layers)
        _, outputs = incremental_outputs(plan, x, boxes, paint, batch_size=64)
    assert outputs.is_cuda and outputs.shape[0] == len(boxes)
