"""The session's models: each built once, on the session's device."""
from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Callable

import pytest
import torch

import cnn_core
from claims.judging.subjects import Subject, Unavailable
from claims.session.options import RunOptions


class ModelZoo:
    """Each model is built once per session: a selected model with the run's weights, the suite's
    own models (deliberate breaks, the erratum) with ``auto``; and each learned-claims subject once."""

    def __init__(self, run: RunOptions, device: torch.device, progress: Callable[[str], None], cache=None):
        self.run = run
        self.device = device
        self.progress = progress  # a line for long work, shown even while pytest captures output
        self.cache = cache  # pytest's cache: nulls of architectures with none recorded
        self._models: dict[str, torch.nn.Module] = {}
        self._subjects: dict[str, Subject] = {}
        self._preprocessed: dict[str, torch.Tensor] = {}

    def get(self, name: str) -> torch.nn.Module:
        """Model ``name``: a selected or the suite's own model by its name, a compared checkpoint by its key."""
        if name not in self._models:
            with warnings.catch_warnings():
                # --weights auto without weights offline is a normal case; the header says so once.
                warnings.simplefilter("ignore", UserWarning)
                self._models[name] = cnn_core.load_model(self.run.architecture_of(name), weights=self.run.weights_for(name),
                                                         device=self.device,
                                                         fixtures_dir=self.run.fixtures,
                                                         preprocessing=self.run.preprocessing_for(name))
        # Shared across tests: one that left it in training mode (torch.fx tracing does, when it fails)
        # must not change what the next one measures through BatchNorm or Dropout.
        return self._models[name].eval()

    def preprocessed(self, name: str, sources: list) -> torch.Tensor:
        """``sources`` through model ``name``'s own preprocessing, on the session's device, once per session."""
        if name not in self._preprocessed:
            card = cnn_core.model_card(self.get(name))
            self._preprocessed[name] = torch.cat([card.preprocess(source) for source in sources]).to(self.device)
        return self._preprocessed[name]

    def unavailable(self, name: str) -> str | None:
        """Why model ``name`` cannot be loaded in this run (Tiny VGG's files not fetched), or None."""
        try:
            self.get(name)
        except cnn_core.WeightsError as error:
            return str(error)
        return None

    def subject(self, name: str) -> Subject | Unavailable:
        if name not in self._subjects:
            reason = self.unavailable(name)
            self._subjects[name] = Unavailable(name, reason) if reason is not None else Subject(
                self.get(name), self.run.fixtures, self.device, measure_random=self.run.weights != "auto",
                progress=self.progress, cache=self.cache, record_nulls=self.run.record_nulls,
                threads=self.run.measuring_threads, null_source=self.run.nulls)
        return self._subjects[name]


def terminal_progress(config: pytest.Config) -> Callable[[str], None]:
    """Writes progress to the terminal with pytest's output capture suspended, so that it shows
    while a test runs (an xdist worker's goes to its own stderr)."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def write(text: str) -> None:
        with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
            sys.stderr.write(text)
            sys.stderr.flush()

    return write


MODEL_ZOO = pytest.StashKey[ModelZoo]()
