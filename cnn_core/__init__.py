"""cnn_core: the extraction library behind the cnn-claims suite.

Models by name, images to tensors, layers by path or alias, activations as they really are,
receptive fields, occlusion and Grad-CAM. Every public name is importable from here.
"""
from .activations import capture, check_input
from .empirical_field import (
    effective_field_spread,
    effective_field_spreads,
    effective_receptive_field,
    empirical_receptive_field,
    empirical_receptive_fields,
)
from .errors import (
    AmbiguousLayer,
    CnnCoreError,
    ImageError,
    InputError,
    LayerNotFound,
    ModelNotFound,
    NoSupportTwin,
    ReceptiveFieldError,
    WeightsError,
)
from .fixtures import FixtureMissing, Fixtures
from .geometry import Box
from .images import (
    DEFAULT_IMAGE,
    IMAGENET,
    IMAGENET_MEAN,
    IMAGENET_STD,
    UNIT,
    ImageFolder,
    Normalization,
    collate_images,
    denormalize,
    fill_value,
    image_files,
    load_image,
    normalize,
    preprocess,
)
from .gradcam import GradCam, grad_cam, last_conv_stage
from .incremental import incremental_plan, occlusion_cost
from .layer_index import Layer, LayerRef, first_conv, layers, resolve, vgg_aliases
from .metrics import (
    centre_of_mass,
    changed_region,
    colour_opponency,
    correlation,
    edge_energy,
    edge_strength,
    gram_products,
    invariance,
    linear_cka,
    sparsity,
)
from .models import (
    ModelCard,
    available_models,
    build_architecture,
    is_trained,
    load_model,
    model_card,
    preprocess_for,
    random_twin,
    with_card,
)
from .occlusion import OcclusionMap, class_score, occlude, occlusion_diff, occlusion_map
from .receptive import ReceptiveField, receptive_field, receptive_fields
from .stages import ActivationSummary, by_stage, summarise_activations
from .tracing import fold_batch_norms

__all__ = [
    "AmbiguousLayer", "Box", "CnnCoreError", "FixtureMissing", "Fixtures", "DEFAULT_IMAGE", "IMAGENET", "IMAGENET_MEAN", "IMAGENET_STD", "ImageError",
    "Normalization", "UNIT", "first_conv", "random_twin", "colour_opponency", "correlation", "edge_energy",
    "edge_strength", "gram_products", "invariance", "linear_cka", "effective_field_spread", "effective_field_spreads", "effective_receptive_field", "ImageFolder", "collate_images",
    "image_files",
    "InputError", "Layer", "LayerNotFound", "LayerRef", "ModelNotFound", "OcclusionMap", "ReceptiveField",
    "NoSupportTwin", "ReceptiveFieldError", "WeightsError", "available_models", "build_architecture", "capture", "centre_of_mass",
    "changed_region", "check_input", "class_score", "denormalize", "empirical_receptive_field",
    "empirical_receptive_fields", "fill_value",
    "is_trained", "layers", "load_image", "load_model", "normalize", "occlude", "occlusion_diff", "occlusion_map",
    "preprocess", "receptive_field", "ModelCard", "model_card", "preprocess_for", "with_card", "ActivationSummary",
    "by_stage", "summarise_activations", "fold_batch_norms", "GradCam", "grad_cam", "last_conv_stage", "incremental_plan", "occlusion_cost", "receptive_fields", "resolve", "sparsity", "vgg_aliases",
]
