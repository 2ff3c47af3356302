"""dicegrad.mimic_weights against the closed form a_k = 2/(K*D_k) computed here in numpy, per
sample and pooled; the weights of the command line's report; and what it refuses."""

from __future__ import annotations

import json
import subprocess

import nibabel as nib
import numpy as np
import pytest

import dicegrad
from test_api import SAMPLES, cli

EPS = 1e-5


def batch(seed: int, b: int = 3, c: int = 4, shape=(6, 5, 4)):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 1.0, (b, c, *shape)).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    y = rng.integers(0, c, (b, *shape))
    return p, y


def onehot(y: np.ndarray, c: int) -> np.ndarray:
    return np.moveaxis(np.eye(c)[y], -1, 1)


def test_pooled_weights_are_a_over_its_sum_with_a_from_the_pooled_sums():
    p, y = batch(1)
    g = onehot(y, 4)
    axes = (0, 2, 3, 4)
    a = 2.0 / (4 * (p.astype(np.float64).sum(axes) + g.sum(axes) + EPS))
    np.testing.assert_allclose(dicegrad.mimic_weights(p, y, batch=True, raw=True), a, rtol=1e-12)
    w = dicegrad.mimic_weights(p, y, batch=True)
    assert w.shape == (4,) and w.dtype == np.float64
    np.testing.assert_allclose(w, a / a.sum(), rtol=1e-12)


def test_per_sample_weights_are_each_sample_s_part_of_the_mean():
    p, y = batch(2)
    g = onehot(y, 4)
    axes = (2, 3, 4)
    a = 2.0 / (3 * 4 * (p.astype(np.float64).sum(axes) + g.sum(axes) + EPS))  # the 1/B of the mean
    raw = dicegrad.mimic_weights(p, y, raw=True)
    assert raw.shape == (3, 4)
    np.testing.assert_allclose(raw, a, rtol=1e-12)
    np.testing.assert_allclose(dicegrad.mimic_weights(p, y), a / a.sum(1, keepdims=True), rtol=1e-12)


def test_a_class_a_sample_lacks_gets_zero_and_no_class_at_all_gives_zeros():
    p, y = batch(3)
    y[0][y[0] == 2] = 1
    w = dicegrad.mimic_weights(p, y)
    assert w[0, 2] == 0.0 and w[1, 2] > 0.0
    np.testing.assert_allclose(w.sum(1), 1.0, rtol=1e-12)
    nothing = np.zeros_like(y)
    assert not dicegrad.mimic_weights(p, nothing, include_background=False, batch=True).any()


def test_the_background_left_out_has_weight_zero_and_k_counts_the_others():
    p, y = batch(4)
    g = onehot(y, 4)
    axes = (0, 2, 3, 4)
    a = 2.0 / (3 * (p.astype(np.float64).sum(axes) + g.sum(axes) + EPS))
    a[0] = 0.0
    raw = dicegrad.mimic_weights(p, y, batch=True, include_background=False, raw=True)
    np.testing.assert_allclose(raw, a, rtol=1e-12)


def test_the_weights_are_those_of_the_command_line_s_report():
    labels = np.asarray(nib.load(SAMPLES / "multiclass" / "labels.nii.gz").dataobj)
    pred = np.asarray(nib.load(SAMPLES / "multiclass" / "probs.nii.gz").dataobj, dtype=np.float32)
    out = subprocess.run(
        [str(cli()), "analyze", "--json", "--labels", str(SAMPLES / "multiclass" / "labels.nii.gz"), "--pred",
         str(SAMPLES / "multiclass" / "probs.nii.gz")],
        check=True, capture_output=True,
    )  # fmt: skip
    report = json.loads(out.stdout)
    w = dicegrad.mimic_weights(np.moveaxis(pred, 3, 0)[None], labels[None], batch=True)
    np.testing.assert_allclose(w, [c["mimic_weight"] for c in report["channels"]], rtol=1e-12)


def test_cross_entropy_has_no_weights_and_says_why():
    p, y = batch(5)
    with pytest.raises(ValueError, match="no Dice-type part"):
        dicegrad.mimic_weights(p, y, loss="ce")


def test_probabilities_activated_again_are_refused_as_for_the_gradient():
    p, y = batch(6)
    with pytest.raises(ValueError, match="force_activation"):
        dicegrad.mimic_weights(p, y, activation="softmax")


def test_raw_must_be_a_switch():
    p, y = batch(7)
    with pytest.raises(TypeError, match="raw must be True or False"):
        dicegrad.mimic_weights(p, y, raw="no")
