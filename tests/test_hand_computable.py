"""The library on models small enough to compute by hand (tests/helpers): exact answers, in float64."""
from __future__ import annotations

import torch

import cnn_core
from tests.helpers import box_sum_net, conv_pool_conv


def test_capture_of_a_box_sum_conv_is_the_neighbourhood_sum():
    """An impulse at (3, 3) in one channel lights exactly the 3x3 units around it, each with 1."""
    x = torch.zeros(1, 3, 7, 7, dtype=torch.float64)
    x[0, 1, 3, 3] = 1.0
    out = cnn_core.capture(box_sum_net(), x, "0")["0"][0, 0]
    expected = torch.zeros(7, 7, dtype=torch.float64)
    expected[2:5, 2:5] = 1.0
    assert torch.equal(out, expected)  # exact: sums of ones and zeros


def test_analytic_fields_are_the_hand_computed_ones():
    fields = cnn_core.receptive_fields(conv_pool_conv(), (16, 16))
    assert [(fields[name].size[0], fields[name].jump[0], fields[name].first[0]) for name in ("0", "1", "2")] == [
        (3, 1, -1), (4, 2, -1), (8, 2, -3)]
    assert fields["2"].unit_centres(0).tolist() == [0.5 + 2 * k for k in range(8)]
    assert fields["0"].interior_units(0) == range(1, 15)  # units 0 and 15 see the zero padding
    assert fields["2"].interior_units(1) == range(2, 6)  # unit k sees pixels 2k - 3 .. 2k + 4, inside 0 .. 15


def test_empirical_field_is_the_hand_computed_box():
    """Centre unit (4, 4) of the last conv on 16x16 sees pixels 2*4 - 3 = 5 up to 5 + 8 = 13."""
    assert cnn_core.empirical_receptive_field(conv_pool_conv(), "2", (16, 16)) == cnn_core.Box(5, 5, 13, 13)


def test_occlusion_changes_the_box_grown_by_one_pixel():
    """A 3x3 box sum sees one pixel past the box on every side, and nothing further."""
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    difference = cnn_core.occlusion_diff(box_sum_net(), x, cnn_core.Box(4, 5, 7, 9), "0")["0"][0]
    assert cnn_core.changed_region(difference) == cnn_core.Box(3, 4, 8, 10)


def test_several_boxes_in_one_batch_give_each_box_its_own_change():
    """One clean pass for many boxes: each box's change is the box grown by one pixel, exactly as alone."""
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    boxes = [cnn_core.Box(0, 0, 3, 3), cnn_core.Box(4, 5, 7, 9)]
    together = cnn_core.occlusion.occlusion_diffs(box_sum_net(), x, boxes, "0")
    for box, difference in zip(boxes, together):
        alone = cnn_core.occlusion_diff(box_sum_net(), x, box, "0")["0"]
        assert torch.equal(difference["0"], alone)  # exact: float64 sums of the same terms
    assert [cnn_core.changed_region(d["0"][1]) for d in together] == [cnn_core.Box(0, 0, 4, 4), cnn_core.Box(3, 4, 8, 10)]
