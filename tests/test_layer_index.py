"""Layer names: VGG aliases, resolution with suggestions, the ordered listing and call indices."""
from __future__ import annotations

import pytest

import cnn_core
from cnn_core import AmbiguousLayer, LayerNotFound


@pytest.fixture(scope="module")
def vgg16(zoo):
    return zoo.get("vgg16")


def test_vgg16_aliases_follow_the_conventional_names(vgg16):
    aliases = cnn_core.vgg_aliases(vgg16)
    assert aliases["conv1_2"] == "features.2"
    assert aliases["conv3_3"] == "features.14" and aliases["pool3"] == "features.16"
    assert aliases["conv5_3"] == "features.28" and aliases["relu5_3"] == "features.29"
    assert aliases["pool5"] == "features.30" and aliases["fc8"] == "classifier.6"
    assert len([a for a in aliases if a.startswith("conv")]) == 13


def test_bn_variants_have_bn_aliases(zoo):
    aliases = cnn_core.vgg_aliases(zoo.get("vgg16_bn"))
    assert (aliases["conv1_2"], aliases["bn1_2"], aliases["relu1_2"]) == ("features.3", "features.4", "features.5")


def test_unknown_layer_suggests_close_names(vgg16):
    with pytest.raises(LayerNotFound, match="did you mean 'conv5_3'") as error:
        cnn_core.resolve(vgg16, "conv5_4")
    assert "conv5_3" in error.value.suggestions


def test_bad_call_index_is_an_input_error(vgg16):
    with pytest.raises(cnn_core.InputError, match="call index"):
        cnn_core.resolve(vgg16, "features.2@x")


def test_listing_is_in_output_order_with_shapes(vgg16):
    listing = cnn_core.layers(vgg16)
    paths = [layer.path for layer in listing]
    assert paths.index("features.2") < paths.index("features.28") < paths.index("classifier.6")
    by_path = {layer.path: layer for layer in listing}
    assert by_path["features.28"].output_shape == (1, 512, 14, 14)
    assert by_path["features.28"].alias == "conv5_3" and by_path["features.28"].type == "Conv2d"
    assert by_path["features"].container and not by_path["features.0"].container
    assert by_path["features.4"].input_shape == (1, 64, 224, 224)


def test_modules_run_twice_are_listed_per_call(zoo):
    paths = [layer.path for layer in cnn_core.layers(zoo.get("resnet18"))]
    assert "layer1.0.relu@0" in paths and "layer1.0.relu@1" in paths and "layer1.0.relu" not in paths


def test_capturing_a_reused_module_without_a_call_index_is_refused(zoo):
    model = zoo.get("resnet18")
    with pytest.raises(AmbiguousLayer, match="'layer1.0.relu@0', 'layer1.0.relu@1'"):
        cnn_core.capture(model, cnn_core.preprocess(cnn_core.load_image(), size=64), "layer1.0.relu")
