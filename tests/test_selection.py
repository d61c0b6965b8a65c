"""RIM selection must depend on the input (rimrl.nn.selection; thesis 8.2): hand-computed
measures, and a crafted check that fails if the choice of active RIMs from a zero state
(every episode start) stops depending on the input."""

import math

import numpy as np
import pytest
import torch

from rimrl.nn.rims import RIMCell, RIMs
from rimrl.nn.selection import (entropy_bits, max_entropy_bits, selection_stats,
                                set_codes)


def test_measures_hand_computed():
    masks = np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=bool)
    assert set_codes(masks).tolist() == [3, 3, 6, 5]
    stats = selection_stats(masks, starts=np.array([True, True, False, True]))
    # sets 3, 3, 6, 5: p = 1/2, 1/4, 1/4 -> 1.5 bits; at starts 3, 3, 5: p = 2/3, 1/3
    assert stats["set_entropy_bits"] == pytest.approx(1.5)
    assert stats["top_set_share"] == 0.5 and stats["distinct_sets"] == 3
    assert stats["start_set_entropy_bits"] == pytest.approx(
        -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3))
    assert entropy_bits([7, 7, 7]) == 0.0
    assert max_entropy_bits(6, 4) == pytest.approx(math.log2(15))


def test_activity_record_hand_computed():
    from rimrl.nn.selection import activity_record

    masks = np.array([[[1, 1, 0], [1, 0, 1]], [[1, 1, 0], [0, 1, 1]]], dtype=bool)  # (T, B, K)
    record = activity_record(masks, starts=np.array([[True, True], [False, False]]))
    assert [record[f"active_fraction/{k}"] for k in range(3)] == [0.75, 0.75, 0.5]
    # at the starts: sets 3 and 5, one each -> 1 bit
    assert record["start_set_entropy_bits"] == pytest.approx(1.0)
    assert record["active_fraction_mean"] == pytest.approx(2 / 3)
    assert record["distinct_sets"] == 3 and record["top_set_share"] == 0.5


def zero_state_sets(core: RIMs, inputs: torch.Tensor) -> dict:
    """Selection stats of one step from a zero state, one input per batch entry."""
    with torch.no_grad():
        core(inputs.unsqueeze(0))  # no state: zeros
    return selection_stats(core.last_active[0].numpy())


@pytest.mark.parametrize("elements", [1, 5])  # vector mode, spatial (set) mode
def test_selection_from_a_zero_state_depends_on_the_input(elements):
    torch.manual_seed(0)
    inputs = torch.randn(64, 8 * elements)
    core = RIMs(8 * elements, 24, num_units=6, k_active=4, elements=elements,
                input_key_size=8, comm_key_size=4, comm_value_size=4)
    stats = zero_state_sets(core, inputs)
    # different observations choose different RIMs at an episode start
    assert stats["distinct_sets"] >= 3 and stats["top_set_share"] < 0.8
    assert stats["set_entropy_bits"] > 1.0
    # the same observation always chooses the same set (selection is a function of it)
    assert zero_state_sets(core, inputs[:1].repeat(16, 1))["distinct_sets"] == 1


@pytest.mark.parametrize("elements", [1, 5])
def test_without_the_query_bias_a_zero_state_is_a_tie(elements):
    """Why the bias exists: with a bias-free query every RIM's query is 0 at a zero state,
    every logit is 0 and the same k_A RIMs win for every input."""
    torch.manual_seed(0)
    core = RIMs(8 * elements, 24, num_units=6, k_active=4, elements=elements,
                input_key_size=8, comm_key_size=4, comm_value_size=4, query_bias=False)
    stats = zero_state_sets(core, torch.randn(64, 8 * elements))
    assert stats["distinct_sets"] == 1 and stats["set_entropy_bits"] == 0.0


def test_weights_saved_without_the_query_bias_load_as_a_zero_bias():
    torch.manual_seed(0)
    old = RIMCell(8, 24, query_bias=False)
    new = RIMCell(8, 24)
    new.load_state_dict(old.state_dict())
    assert torch.equal(new.input_query_bias, torch.zeros_like(new.input_query_bias))
    x, h, c = torch.randn(3, 8), torch.randn(6, 3, 4), torch.randn(6, 3, 4)
    keys, inp = old.precompute(x)
    a = old.step(keys, inp.movedim(1, 0), h, c, spatial=False)
    b = new.step(keys, inp.movedim(1, 0), h, c, spatial=False)
    for left, right in zip(a, b):
        assert torch.equal(left, right)


def test_empty_records_give_zeros():
    from rimrl.nn.selection import entropy_bits, selection_stats

    assert entropy_bits([]) == 0.0
    stats = selection_stats(np.zeros((0, 3), dtype=bool))
    assert stats == {"set_entropy_bits": 0.0, "top_set_share": 0.0, "distinct_sets": 0.0}


def test_tensorboard_activation_image_by_hand():
    """Black = active (as the report's figure), 8 rows per RIM, a red band under episode
    ends."""
    from rimrl.sb3.callbacks import activation_image

    pattern = np.array([[1, 0, 0], [0, 1, 1]], dtype=float)  # 2 RIMs x 3 steps
    image = activation_image(pattern, np.array([False, True, False]))
    assert image.shape == (2 * 8 + 3, 3, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [0, 0, 0] and image[0, 1].tolist() == [255, 255, 255]
    assert image[8, 1].tolist() == [0, 0, 0] and image[15, 0].tolist() == [255, 255, 255]
    assert image[17, 1].tolist() == [255, 0, 0] and image[17, 0].tolist() == [255, 255, 255]
