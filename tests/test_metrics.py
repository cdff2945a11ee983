"""Dice (pooled and per image), pixel accuracy, and the input checks they share."""
from __future__ import annotations

import numpy as np
import pytest

from tinyseg.metrics import confusion, dice_per_image, dice_pooled, pixel_accuracy


def _pair():
    pred = np.zeros((2, 4, 4), np.int64)
    target = np.zeros((2, 4, 4), np.int64)
    pred[0, :2, :2] = 1  # 4 px, all correct
    target[0, :2, :2] = 1
    target[1, :, :3] = 1  # 12 px of target
    pred[1, :, :1] = 1  # 4 px predicted, all inside the target
    pred[1, 0, 3] = 1  # 1 false positive
    return pred, target


def test_dice_pooled_sums_counts_over_the_whole_set():
    pred, target = _pair()
    c = confusion(pred, target)
    assert (c.tp, c.fp, c.fn, c.tn) == (8, 1, 8, 15)
    assert dice_pooled(pred, target) == pytest.approx(16 / 25)
    # Pooling is not the mean of per-image Dice: 1.0 and 8/17 average to 0.735, not 0.64.
    np.testing.assert_allclose(dice_per_image(pred, target), [1.0, 8 / 17])
    assert dice_per_image(pred, target).mean() != pytest.approx(dice_pooled(pred, target))


def test_dice_per_image_is_one_when_both_empty_and_zero_when_disjoint():
    pred = np.zeros((3, 5, 5), bool)
    target = np.zeros((3, 5, 5), bool)
    pred[1, 0, 0] = True  # prediction without target
    target[2, 4, 4] = True  # target without prediction
    np.testing.assert_array_equal(dice_per_image(pred, target), [1.0, 0.0, 0.0])
    assert dice_pooled(np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), int)) == 1.0


def test_pixel_accuracy():
    pred, target = _pair()
    assert pixel_accuracy(pred, target) == pytest.approx(23 / 32)
    assert pixel_accuracy(target, target) == 1.0


def test_metrics_reject_bad_inputs_with_clear_messages():
    good = np.zeros((2, 4, 4), np.int64)
    with pytest.raises(ValueError, match="argmax"):
        dice_pooled(good.astype(np.float32), good)
    with pytest.raises(ValueError, match="same shape"):
        dice_pooled(good, good[:1])
    with pytest.raises(ValueError, match=r"outside \{0, 1\}"):
        dice_per_image(good + 2, good)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        pixel_accuracy(good[0], good[0])
    with pytest.raises(ValueError, match="empty set"):
        dice_pooled(good[:0], good[:0])
