"""The measurements behind the learned claims, one function per claim, for any CNN.

Each takes a :class:`Probe` (a model and its :class:`~claims.probes.ProbeImages`) and returns one
float, computed in float64 from the model's float32 activations. The same function measures the
trained model and each random initialisation of its architecture; :mod:`claims.rules` compares them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

import cnn_core
from claims.probes import ProbeImages, depth_probes
from cnn_core.stages import ActivationSummary, by_stage, summarise_activations

COLOUR_QUANTILE = 0.9  # "color gradient, etc.": some filters, not most, are colour detectors
RELEVANCE_WINDOW, RELEVANCE_STRIDE = 4, 16 / 3  # windows of a quarter of the side, every 3/16: a 5 x 5 grid


@dataclass
class Probe:
    """A model and the images it is measured on; one forward pass over the images serves every
    stage-wise measurement."""

    model: nn.Module
    images: ProbeImages

    @functools.cached_property
    def stages(self) -> list[list[ActivationSummary]]:
        images = self.images.labelled if self.images.labelled is not None else self.images.photos
        # channels-last runs CPU convolutions ~1.4x faster; values agree to 1e-6, far below the 4 digits kept.
        return by_stage(summarise_activations(self.model, images.contiguous(memory_format=torch.channels_last)))

    @functools.cached_property
    def class_structure(self) -> list[float]:
        """:func:`class_structure_by_stage`, computed once for the claims and the report that use it."""
        labels = torch.tensor(self.images.labels)
        return [partner_rank(stage[-1].pooled.cpu(), labels) for stage in self.stages]

    @property
    def first_conv_weight(self) -> torch.Tensor:
        return self.model.get_submodule(cnn_core.first_conv(self.model)).weight


def filter_edges(probe: Probe) -> float:
    """Median share of a first-layer filter's energy in oriented first-derivative (edge) structure."""
    return float(cnn_core.edge_energy(probe.first_conv_weight).median())


def filter_colours(probe: Probe) -> float:
    """Upper decile, over first-layer filters, of the share of a filter's energy that is chromatic."""
    return float(torch.quantile(cnn_core.colour_opponency(probe.first_conv_weight), COLOUR_QUANTILE))


def edge_tracking(probe: Probe) -> float:
    """Mean correlation, over the more edge-like half of the first-layer filters and the photos,
    between a filter's |response| and the photo's Sobel edge strength pooled to the map's grid."""
    model, images = probe.model, probe.images
    path = cnn_core.first_conv(model)
    conv = model.get_submodule(path)
    with torch.inference_mode():
        responses = conv(images.photos).abs().double()
    pixels = cnn_core.denormalize(images.photos, cnn_core.models.normalization_of(model)).double()
    edges = F.adaptive_avg_pool2d(F.pad(cnn_core.edge_strength(pixels), (1, 1, 1, 1), mode="replicate").unsqueeze(1),
                                  responses.shape[-2:])[:, 0]
    edge_like = torch.argsort(cnn_core.edge_energy(conv.weight), descending=True)[: max(1, conv.out_channels // 2)]
    return float(torch.tensor([cnn_core.correlation(responses[i, c], edges[i])
                               for c in edge_like.tolist() for i in range(len(edges))]).mean())


def map_diversity(probe: Probe) -> float:
    """How different the first conv's "filtered versions" of a photo are: 1 minus the mean
    |correlation| between two channels' maps, over every pair of non-constant maps and the photos.
    0: every map is the same picture up to scale; 1: no two maps are related linearly."""
    conv = probe.model.get_submodule(cnn_core.first_conv(probe.model))
    with torch.inference_mode():
        responses = conv(probe.images.photos).double().flatten(2)  # photos, channels, positions
    diversity = []
    for maps in responses:
        maps = maps[maps.std(dim=1) > 0]
        standard = (maps - maps.mean(dim=1, keepdim=True)) / maps.std(dim=1, keepdim=True)
        correlation = (standard @ standard.T) / (standard.shape[1] - 1)
        pairs = ~torch.eye(len(maps), dtype=torch.bool, device=maps.device)
        diversity.append(1 - float(correlation[pairs].abs().mean()))
    return sum(diversity) / len(diversity)


def early_probe_edges(probe: Probe) -> float:
    """:func:`filter_edges` one conv deeper: the median edge share of the second conv with a
    kernel of 3 or more (VGG16: conv1_2, the notebook's early probe ``features[2]``)."""
    convs = [m for m in probe.model.modules() if isinstance(m, nn.Conv2d) and min(m.kernel_size) >= 3]
    conv = convs[1] if len(convs) > 1 else convs[0]
    return float(cnn_core.edge_energy(conv.weight).median())


def middle_field_growth(probe: Probe) -> float:
    """"Middle layers → patterns, motifs, object parts", larger than the early layers' edges: the
    effective field's spread (gradient-weighted RMS radius, Luo et al. 2016) of a middle probe unit
    divided by an early probe unit's (VGG16: features[16] over features[2]), mean over the photos."""
    probes = depth_probes(probe.model)
    ratios = []
    for photo in probe.images.photos:
        x = photo.unsqueeze(0)
        early = cnn_core.effective_field_spread(probe.model, probes["early"], x)
        ratios.append(cnn_core.effective_field_spread(probe.model, probes["middle"], x) / early)
    return sum(ratios) / len(ratios)


def inactive_by_stage(probe: Probe) -> list[float]:
    """Per stage, the inactive share (<= 0) of its activations over the images, first stage first."""
    return [float(torch.stack([call.inactive for call in stage]).mean()) for stage in probe.stages]


def sparsity_trend(probe: Probe) -> float:
    """Inactive share of the last stage's activations minus the first stage's."""
    by_stage_share = inactive_by_stage(probe)
    return by_stage_share[-1] - by_stage_share[0]


def partner_rank(pooled: torch.Tensor, labels: torch.Tensor) -> float:
    """How near each image's same-class partners are: per image, the share of other-class images
    that are less similar (cosine, features centred) than its same-class images, averaged.
    0.5 is chance; 1 means every image's nearest neighbours share its class."""
    features = F.normalize(pooled - pooled.mean(dim=0), dim=1)
    similarity = features @ features.T
    same = labels.view(-1, 1) == labels.view(1, -1)
    ranks = []
    for i in range(len(labels)):
        partners = same[i].clone()
        partners[i] = False
        others = similarity[i][~same[i]]
        ranks += [float((others < similarity[i, j]).double().mean()) for j in torch.nonzero(partners).flatten().tolist()]
    return sum(ranks) / len(ranks)


def class_structure_gain(probe: Probe) -> float:
    """How much nearer same-class images lie in the last stage's pooled features than in the first's
    (:func:`partner_rank`): the features become class-relevant with depth."""
    ranks = class_structure_by_stage(probe)
    return ranks[-1] - ranks[0]


def class_structure_by_stage(probe: Probe) -> list[float]:
    """Per stage, :func:`partner_rank` of its last layer's pooled features, first stage first."""
    return probe.class_structure


def gradual_class_structure(probe: Probe) -> float:
    """"Gradually, not all at once": the class-structure gain from the first stage to the last
    minus the largest gain of any one stage step, i.e. what the other steps add. Near 0 when one
    step does it all (or nothing grows)."""
    ranks = class_structure_by_stage(probe)
    steps = [after - before for before, after in zip(ranks, ranks[1:])]
    return (ranks[-1] - ranks[0]) - max(steps) if steps else 0.0


def object_relevance(probe: Probe) -> float:
    """Zeiler & Fergus: the share of the occlusion-sensitivity mass (drop of the model's own top
    class) on windows centred on the object, minus the share of windows centred there (chance)."""
    model, images = probe.model, probe.images
    # Incremental where the model allows it (exact, several times faster); the others run whole passes.
    method = "incremental" if cnn_core.incremental_plan(model).supported else "batched"
    excess = []
    for photo, box in zip(images.photos, images.object_boxes):
        x = photo.unsqueeze(0)
        size = x.shape[-1]
        with torch.inference_mode():
            target = int(model(x).argmax(dim=1))
        sensitivity = cnn_core.occlusion_map(model, x, window=int(size // RELEVANCE_WINDOW),
                                             stride=int(size // RELEVANCE_STRIDE), target=target, batch_size=25,
                                             method=method)
        drop = sensitivity.drop.double().clamp_min(0)
        rows, cols = drop.shape
        on_object = torch.tensor([[box.contains_point(*sensitivity.window_box(r, c).centre) for c in range(cols)]
                                  for r in range(rows)], device=drop.device)
        chance = float(on_object.double().mean())
        share = float(drop[on_object].sum() / drop.sum()) if drop.sum() > 0 else chance
        excess.append(share - chance)
    return sum(excess) / len(excess)

