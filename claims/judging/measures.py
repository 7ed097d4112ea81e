"""The measurements behind the learned claims, one function per claim, for any CNN.

Each takes a :class:`Probe` (a model and its :class:`~claims.judging.probes.ProbeImages`) and returns a
:class:`Sample`: one row per photo, computed in float64 from the model's float32 activations,
and the function that turns the rows' mean into the claim's value, so that the same rows give
the value and its interval over photos (:func:`claims.judging.statistics.bootstrap`). A statistic of the
weights alone has no rows. The same function measures the trained model and each random
initialisation of its architecture; :mod:`claims.judging.rules` compares them.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

import cnn_core
from claims.judging.probes import ProbeImages, depth_probes
from claims.judging.statistics import Interval, bootstrap
from cnn_core.stages import ActivationSummary, by_stage, summarise_activations

COLOUR_QUANTILE = 0.9  # "color gradient, etc.": some filters, not most, are colour detectors
RELEVANCE_WINDOW, RELEVANCE_STRIDE = 4, 16 / 3  # windows of a quarter of the side, every 3/16: a 5 x 5 grid
CHUNK = 10  # photos per forward pass
# Occluded windows per pass, by occlusion_map's method: one photo's grid for the incremental sweep; five for
# whole passes, whose activations then stay in a CPU core's cache (EfficientNet-B0's L5 1.4x faster than with 25).
RELEVANCE_BATCH = {"incremental": 25, "batched": 5}
# The linear probe (Alain & Bengio 2016): a ridge classifier (one-vs-all least squares, closed form) on each
# stage's pooled features standardised per channel, penalty at scikit-learn's default 1.0, scored by stratified
# 5-fold cross-validation (fold assignment seeded). Chosen after seeing a number: a logistic probe (C 1.0, same
# folds) came first, and took 39 s a random MobileNetV2 (its lbfgs steps ran to the cap); the ridge's penalty and
# folds were fixed before it measured anything.
PROBE_PENALTY, PROBE_FOLDS = 1.0, 5


class NotMeasurable(Exception):
    """The probe lacks what a measurement needs (images, a layer); the claim is NOT MEASURED."""


# What a measurement may raise on a model it cannot measure (untraceable, no such layer, shapes
# that do not fit): the claim is NOT MEASURED there, with the reason; anything else is a bug.
MEASUREMENT_ERRORS = (NotMeasurable, cnn_core.CnnCoreError, RuntimeError, ValueError, NotImplementedError)


def reason(error: Exception) -> str:
    """Why a claim was not measured, in one line."""
    if isinstance(error, NotMeasurable):
        return str(error)
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


def _first(means: torch.Tensor) -> float:
    return float(means[0])


def _last_minus_first(means: torch.Tensor) -> float:
    return float(means[-1] - means[0])


def _gradual(means: torch.Tensor) -> float:
    """The gain from the first stage to the last minus the largest gain of any one stage step."""
    steps = means[1:] - means[:-1]
    return float((means[-1] - means[0]) - steps.max()) if len(steps) else 0.0


def _stage_pairs(stages: int) -> list[tuple[int, int]]:
    """The stage pairs linear CKA compares: each with the next, then the first with the last."""
    return [(s, s + 1) for s in range(stages - 1)] + [(0, stages - 1)]


def _stage_cka(means: torch.Tensor) -> torch.Tensor:
    """Linear CKA of each of :func:`_stage_pairs`, from the column means of :func:`cnn_core.gram_products`
    over S stages (S self terms, then the pairs)."""
    stages = len(means) // 2
    selves, products = means[:stages], means[stages:]
    return torch.stack([products[k] / (selves[a] * selves[b]).sqrt() for k, (a, b) in enumerate(_stage_pairs(stages))])


def _weakest_neighbours_over_ends(means: torch.Tensor) -> float:
    """The linear CKA of the least similar neighbouring stages minus the first stage's with the last's."""
    cka = _stage_cka(means)
    return float(cka[:-1].min() - cka[-1])


# By name, for samples stored between runs (claims.judging.remembered).
VALUE_FUNCTIONS = {function.__name__: function for function in (_first, _last_minus_first, _gradual,
                                                                 _weakest_neighbours_over_ends)}


@dataclass(frozen=True)
class Sample:
    """A claim's measurement: ``rows`` (float64 ``[photos, k]``, one per photo) and how their
    column means become the value; or, for a statistic of the weights alone, ``weights_value``."""

    rows: torch.Tensor | None = None
    value_of: Callable[[torch.Tensor], float] = _first
    weights_value: float | None = None

    @property
    def value(self) -> float:
        if self.rows is None:
            return self.weights_value
        return self.value_of(self.rows.reshape(len(self.rows), -1).mean(dim=0))

    @property
    def count(self) -> int:
        """The photos the value rests on; 0 for a statistic of the weights."""
        return 0 if self.rows is None else len(self.rows)

    def interval(self) -> Interval:
        if self.rows is None:
            return Interval(self.weights_value, self.weights_value, self.weights_value, 0)
        return bootstrap(self.rows, self.value_of)


def of_weights(value: float) -> Sample:
    return Sample(weights_value=float(value))


@dataclass
class Probe:
    """A model and the images it is measured on; one forward pass over the images serves every
    stage-wise measurement."""

    model: nn.Module
    images: ProbeImages

    def needs(self, field: str) -> torch.Tensor:
        images = getattr(self.images, field)
        if images is None:
            raise NotMeasurable(f"needs the ImageNet sample's photos ({field}): {self.images.missing}")
        return images

    def _stages_of(self, images: torch.Tensor) -> list[list[ActivationSummary]]:
        summaries = []
        for chunk in images.split(CHUNK):
            summaries.append(summarise_activations(self.model, chunk.contiguous(memory_format=torch.channels_last)))
        # One summary per nonlinearity call over every photo: the chunks' rows, joined.
        joined = [ActivationSummary(calls[0].module, calls[0].resolution, torch.cat([c.inactive for c in calls]),
                                    torch.cat([c.pooled for c in calls])) for calls in zip(*summaries)]
        return by_stage(joined)

    @functools.cached_property
    def first_conv_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`first_conv_rows`, computed once: the first conv's maps serve two claims."""
        return first_conv_rows(self)

    @functools.cached_property
    def stages(self) -> list[list[ActivationSummary]]:
        return self._stages_of(self.needs("photos"))

    @functools.cached_property
    def labelled_stages(self) -> list[list[ActivationSummary]]:
        if self.images.labelled is self.images.photos:
            return self.stages
        if self.images.labelled is None:
            raise NotMeasurable(f"needs labelled images: {self.images.missing}")
        return self._stages_of(self.images.labelled)

    @functools.cached_property
    def class_structure(self) -> torch.Tensor:
        """:func:`partner_rank` per image and stage (``[images, stages]``), computed once."""
        labels = torch.tensor(self.images.labels)
        return torch.stack([partner_rank(stage[-1].pooled.cpu(), labels) for stage in self.labelled_stages], dim=1)

    @functools.cached_property
    def probe_hits(self) -> torch.Tensor:
        """:func:`probe_hits` of each stage's last pooled features (``[images, stages]``), computed once."""
        labels = torch.tensor(self.images.labels)
        return torch.stack([probe_hits(stage[-1].pooled.cpu(), labels) for stage in self.labelled_stages], dim=1)

    @property
    def first_conv(self) -> nn.Conv2d:
        return self.model.get_submodule(cnn_core.first_conv(self.model))


def filter_edges(probe: Probe) -> Sample:
    """Median share of a first-layer filter's energy in oriented first-derivative (edge) structure."""
    return of_weights(cnn_core.edge_energy(probe.first_conv.weight).median())


def filter_colours(probe: Probe) -> Sample:
    """Upper decile, over first-layer filters, of the share of a filter's energy that is chromatic."""
    return of_weights(torch.quantile(cnn_core.colour_opponency(probe.first_conv.weight), COLOUR_QUANTILE))


def _first_conv_maps(conv: nn.Conv2d, photo: torch.Tensor) -> torch.Tensor:
    """The first conv's maps of one photo, float64 ``[channels, H, W]`` in plain layout: a channels-last
    model's would make every per-channel reduction stride across memory."""
    with torch.inference_mode():
        return conv(photo)[0].to(torch.float64, memory_format=torch.contiguous_format)


def _standardised(maps: torch.Tensor) -> torch.Tensor:
    """Each row of ``[k, positions]`` centred and scaled to unit sample deviation (by the centred row's norm:
    torch's ``std`` of a 224 x 224 map in float64 takes three times as long)."""
    centred = maps - maps.mean(dim=1, keepdim=True)
    return centred * ((maps.shape[1] - 1) ** 0.5 / torch.linalg.vector_norm(centred, dim=1, keepdim=True))


def _photo_edges(probe: Probe, grid: tuple[int, int]) -> torch.Tensor:
    """The photos' Sobel edge strength pooled to the first conv's ``grid``, ``[photos, 1, H, W]``: the same for
    every random init fed like the model, so computed once per probe images (and normalisation, and grid)."""
    normalization = cnn_core.models.normalization_of(probe.model)
    key = ("edges", normalization, grid)
    if key not in probe.images.derived:
        pixels = cnn_core.denormalize(probe.needs("photos"), normalization).double()
        probe.images.derived[key] = torch.stack([
            F.adaptive_avg_pool2d(F.pad(cnn_core.edge_strength(photo), (1, 1, 1, 1), mode="replicate").unsqueeze(1), grid)[0]
            for photo in pixels.split(1)])
    return probe.images.derived[key]


def first_conv_rows(probe: Probe) -> tuple[torch.Tensor, torch.Tensor]:
    """Per photo, from one pass of the first conv (its maps are the largest of the network): :func:`map_diversity`'s
    row and :func:`edge_tracking`'s (``Probe.first_conv_rows`` keeps them for whichever asks second)."""
    photos, conv = probe.needs("photos"), probe.first_conv
    edge_like = torch.argsort(cnn_core.edge_energy(conv.weight), descending=True)[: max(1, conv.out_channels // 2)]
    diversity, tracking = [], []
    edges = None
    for index, photo in enumerate(photos.split(1)):
        maps = _first_conv_maps(conv, photo)
        if edges is None:
            edges = _photo_edges(probe, tuple(maps.shape[-2:]))
        flat = maps.flatten(1)  # channels, positions
        varying = flat[flat.amax(dim=1) > flat.amin(dim=1)]  # the non-constant maps
        standard = _standardised(varying)
        correlation = (standard @ standard.T) / (standard.shape[1] - 1)
        pairs = ~torch.eye(len(varying), dtype=torch.bool, device=varying.device)
        diversity.append(1 - correlation[pairs].abs().mean())
        tracked = torch.cat([maps[edge_like].abs(), edges[index]]).flatten(1)
        standard = _standardised(tracked)
        correlation = (standard[:-1] @ standard[-1]) / (tracked.shape[1] - 1)
        tracking.append(torch.nan_to_num(correlation).mean())  # a constant map correlates with nothing: 0
    return torch.stack(diversity), torch.stack(tracking)


def edge_tracking(probe: Probe) -> Sample:
    """Per photo, the mean correlation over the more edge-like half of the first-layer filters
    between a filter's |response| and the photo's Sobel edge strength pooled to the map's grid."""
    return Sample(probe.first_conv_rows[1])


def map_diversity(probe: Probe) -> Sample:
    """How different the first conv's "filtered versions" of a photo are: per photo, 1 minus the
    mean |correlation| between two channels' maps, over every pair of non-constant maps.
    0: every map is the same picture up to scale; 1: no two maps are related linearly."""
    return Sample(probe.first_conv_rows[0])


def early_probe_edges(probe: Probe) -> Sample:
    """:func:`filter_edges` one conv deeper: the median edge share of the second conv with a
    kernel of 3 or more (VGG16: conv1_2, the notebook's early probe ``features[2]``)."""
    convs = [m for m in probe.model.modules() if isinstance(m, nn.Conv2d) and min(m.kernel_size) >= 3]
    conv = convs[1] if len(convs) > 1 else convs[0]
    return of_weights(cnn_core.edge_energy(conv.weight).median())


def middle_field_growth(probe: Probe) -> Sample:
    """"Middle layers → patterns, motifs, object parts", larger than the early layers' edges: per
    photo, the effective field's spread (gradient-weighted RMS radius, Luo et al. 2016) of a middle
    probe unit divided by an early probe unit's (VGG16: features[16] over features[2]).
    Over every photo: only the pixels of each probe unit's field are run (cnn_core's cut-out),
    so the backward passes cost little. Chosen after seeing a number: the rule's resolution (0.5)
    was set after VGG16's random control cleared a bar at 0.1 in an earlier version."""
    chosen = probe.needs("photos")
    probes = depth_probes(probe.model)
    early = cnn_core.effective_field_spreads(probe.model, probes["early"], chosen)
    middle = cnn_core.effective_field_spreads(probe.model, probes["middle"], chosen)
    # A unit whose gradient is all zero on a photo (a dead ReLU) has no field there: no ratio.
    alive = (early > 0) & (middle > 0)
    if not alive.any():
        raise NotMeasurable("the probe units' gradients are zero on every photo (dead units)")
    return Sample(middle[alive] / early[alive])


def inactive_by_stage(probe: Probe) -> list[float]:
    """Per stage, the inactive share (<= 0) of its activations over the photos, first stage first."""
    return [float(value) for value in _inactive_rows(probe).mean(dim=0)]


def _inactive_rows(probe: Probe) -> torch.Tensor:
    """Per photo and stage, the inactive share of that stage's activations (``[photos, stages]``)."""
    return torch.stack([torch.stack([call.inactive for call in stage]).mean(dim=0) for stage in probe.stages], dim=1)


def sparsity_trend(probe: Probe) -> Sample:
    """Inactive share of the last stage's activations minus the first stage's."""
    return Sample(_inactive_rows(probe), _last_minus_first)


def partner_rank(pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """How near each image's same-class partners are: per image that has a partner, the share of
    other-class images that are less similar (cosine, features centred) than its same-class
    partners, averaged over its partners. 0.5 is chance; 1 means every image's nearest neighbours
    share its class."""
    features = F.normalize(pooled - pooled.mean(dim=0), dim=1)
    similarity = features @ features.T
    same = labels.view(-1, 1) == labels.view(1, -1)
    ranks = []
    for i in range(len(labels)):
        partners = same[i].clone()
        partners[i] = False
        if not partners.any():
            continue
        others = similarity[i][~same[i]]
        below = (others.view(1, -1) < similarity[i][partners].view(-1, 1)).double().mean(dim=1)
        ranks.append(below.mean())
    return torch.stack(ranks)


def class_structure_gain(probe: Probe) -> Sample:
    """How much nearer same-class images lie in the last stage's pooled features than in the first's
    (:func:`partner_rank`): the features become class-relevant with depth. Chosen after seeing a
    number: the partner rank replaced a standardised cosine margin that refuted both ImageNet CNNs
    (driven by feature scale and sparsity), before anything was recorded."""
    return Sample(probe.class_structure, _last_minus_first)


def class_structure_by_stage(probe: Probe) -> list[float]:
    """Per stage, :func:`partner_rank` of its last layer's pooled features, first stage first."""
    return [float(value) for value in probe.class_structure.mean(dim=0)]


def gradual_class_structure(probe: Probe) -> Sample:
    """"Gradually, not all at once": the class-structure gain from the first stage to the last
    minus the largest gain of any one stage step, i.e. what the other steps add. Near 0 when one
    step does it all (or nothing grows)."""
    return Sample(probe.class_structure, _gradual)


def probe_hits(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image, 1.0 where a linear probe (:data:`PROBE_PENALTY`, :data:`PROBE_FOLDS`) trained on the other folds'
    images names its class, else 0.0; classes with one image are left out (nothing to learn them from),
    and the folds shrink to the smallest class's size where it is under :data:`PROBE_FOLDS`."""
    counts = torch.bincount(labels)
    kept = counts[labels] >= 2
    if len(torch.unique(labels[kept])) < 2:
        raise NotMeasurable("a linear probe needs two classes of two images or more")
    features, labels = features[kept].double().numpy(), labels[kept].numpy()
    folds = StratifiedKFold(min(PROBE_FOLDS, int(counts[counts >= 2].min())), shuffle=True, random_state=0)
    probe = make_pipeline(StandardScaler(), RidgeClassifier(alpha=PROBE_PENALTY))
    predicted = cross_val_predict(probe, features, labels, cv=folds)
    return torch.from_numpy(predicted == labels).double()


def probe_accuracy_gain(probe: Probe) -> Sample:
    """The field's instrument for "class-relevant" (Alain & Bengio 2016): a linear probe's cross-validated
    accuracy on the class groups from the last stage's pooled features minus from the first stage's."""
    return Sample(probe.probe_hits, _last_minus_first)


def probe_accuracy_by_stage(probe: Probe) -> list[float]:
    """Per stage, the linear probe's cross-validated accuracy, first stage first."""
    return [float(value) for value in probe.probe_hits.mean(dim=0)]


def _stage_similarity_rows(probe: Probe) -> torch.Tensor:
    features = [stage[-1].pooled.cpu() for stage in probe.stages]
    if len(features) < 3:
        raise NotMeasurable(f"needs three stages or more to tell neighbours from ends (has {len(features)})")
    return cnn_core.gram_products(features, _stage_pairs(len(features)))


def stage_similarity_contrast(probe: Probe) -> Sample:
    """The field's instrument for "gradually" (Kornblith et al. 2019): over the photos, the linear CKA of the
    least similar neighbouring stages' pooled features minus the CKA of the first stage's with the last's.
    Large when every step changes the representation a little and the changes add up; near 0 when one step
    does it all (that step's pair is then as unlike as the ends). Chosen after seeing a number: the mean over
    neighbours came first and scored a single jump higher than a steady drift (tests/test_instruments.py)."""
    return Sample(_stage_similarity_rows(probe), _weakest_neighbours_over_ends)


def neighbour_similarity_by_step(probe: Probe) -> list[float]:
    """Per stage step, the linear CKA of the two stages' pooled features, first step first."""
    return [float(value) for value in _stage_cka(_stage_similarity_rows(probe).mean(dim=0))[:-1]]


def object_relevance(probe: Probe) -> Sample:
    """Zeiler & Fergus: per boxed photo, the share of the occlusion-sensitivity mass (drop of the
    model's own top class) on windows centred on the object, minus the share of windows centred there (chance)."""
    objects = probe.needs("objects")
    # The sweeps run on a copy with its batch norms folded into the convs (the same function to float32
    # rounding; EfficientNet-B0's 825 occluded passes 1.5x faster on the CPU); the top class then comes from
    # the model as it is, so that the rounding cannot swap a near tie. A model with nothing to fold is swept
    # as it is, and each sweep takes the top class from its own clean pass (None).
    folded = cnn_core.fold_batch_norms(probe.model)
    if folded is probe.model:
        targets = [None] * len(objects)
    else:
        with torch.inference_mode():
            targets = torch.cat([probe.model(chunk).argmax(dim=1) for chunk in objects.split(CHUNK)]).tolist()
    model = cnn_core.with_card(folded, cnn_core.model_card(probe.model))
    # Incremental where the model allows it (exact, several times faster); the others run whole passes.
    method = "incremental" if cnn_core.incremental_plan(model).supported else "batched"
    excess = []
    for photo, box, target in zip(objects.split(1), probe.images.object_boxes, targets):
        size = photo.shape[-1]
        sensitivity = cnn_core.occlusion_map(model, photo, window=int(size // RELEVANCE_WINDOW),
                                             stride=int(size // RELEVANCE_STRIDE), target=target,
                                             batch_size=RELEVANCE_BATCH[method], method=method)
        drop = sensitivity.drop.double().clamp_min(0)
        rows, cols = drop.shape
        on_object = torch.tensor([[box.contains_point(*sensitivity.window_box(r, c).centre) for c in range(cols)]
                                  for r in range(rows)], device=drop.device)
        chance = on_object.double().mean()
        share = drop[on_object].sum() / drop.sum() if drop.sum() > 0 else chance
        excess.append(share - chance)
    return Sample(torch.stack(excess))


def top1_accuracy(model: nn.Module, photos: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of preprocessed ``photos`` whose top class is their ImageNet class index in ``labels``."""
    # A channels-last copy runs CPU convolutions ~1.5x faster; the shared model keeps its layout.
    model = cnn_core.models.with_card(copy.deepcopy(model).to(memory_format=torch.channels_last), cnn_core.model_card(model))
    hits = 0
    with torch.inference_mode():
        for chunk, truth in zip(photos.split(CHUNK), labels.split(CHUNK)):
            hits += int((model(chunk.contiguous(memory_format=torch.channels_last)).argmax(dim=1).cpu() == truth).sum())
    return hits / len(labels)
