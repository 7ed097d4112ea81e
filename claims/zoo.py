"""The session's models: each built once, on the session's device."""
from __future__ import annotations

import warnings

import pytest
import torch

import cnn_core
from claims.options import RunOptions
from claims.subjects import Subject
from cnn_core.models import TINY_VGG


class ModelZoo:
    """Each model is built once per session: a selected model with the run's weights, the suite's
    own models (deliberate breaks, the erratum) with ``auto``; and each learned-claims subject once."""

    def __init__(self, run: RunOptions, device: torch.device):
        self.run = run
        self.device = device
        self._models: dict[str, torch.nn.Module] = {}
        self._subjects: dict[str, Subject] = {}

    def get(self, name: str) -> torch.nn.Module:
        if name not in self._models:
            with warnings.catch_warnings():
                # --weights auto without weights offline is a normal case; the header says so once.
                warnings.simplefilter("ignore", UserWarning)
                self._models[name] = cnn_core.load_model(name, weights=self.run.weights_for(name), device=self.device,
                                                         fixtures_dir=self.run.fixtures_dir)
        # Shared across tests: one that left it in training mode (torch.fx tracing does, when it fails)
        # must not change what the next one measures through BatchNorm or Dropout.
        return self._models[name].eval()

    def subject(self, name: str) -> Subject:
        if name not in self._subjects:
            def random_model(seed: int) -> torch.nn.Module:
                if name == TINY_VGG:  # a TF.js model has no torchvision init: PyTorch's default one
                    return cnn_core.random_twin(self.get(name), seed)
                return cnn_core.load_model(name, "none", self.device, seed=seed)

            self._subjects[name] = Subject(self.get(name), random_model, self.run.fixtures_dir, self.device,
                                           measure_random=self.run.weights != "auto")
        return self._subjects[name]


MODEL_ZOO = pytest.StashKey[ModelZoo]()
