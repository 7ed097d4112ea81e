"""What the benchmarks run on: the devices at hand and the label a machine's results are filed under."""
from __future__ import annotations

import os
import platform
import re

import torch


def devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def machine_label() -> str:
    if torch.cuda.is_available():
        return "cuda-" + re.sub(r"[^A-Za-z0-9]+", "-", torch.cuda.get_device_name(0)).strip("-")
    return f"cpu-{os.cpu_count()}core-{platform.machine()}"
