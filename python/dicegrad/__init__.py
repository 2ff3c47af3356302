"""dicegrad: the exact per-voxel gradient of the Dice loss, and of the losses networks train with,
on the mini-batch a training loop holds — without autograd and without files.

With respect to probabilities the soft Dice gradient takes two values per channel,
dL/ds = -a*g + c (Kervadec & de Bruijne 2023, "On the dice loss gradient and the ways to mimic
it"). ``gradient`` returns it for every value of a mini-batch; ``analyze`` returns the report the
command line writes as report.json (levels, ratio 1 - 2/Dice, dynamic range, float16 loss-scale
window), for the mini-batch as its loss sees it.

Arrays are laid out as PyTorch and MONAI lay them out:

- ``input``: probabilities, or logits with an ``activation``; ``(B, C, *spatial)`` channel-first,
  or ``(B, *spatial)`` for one foreground channel (the binary case). One to three spatial axes.
  numpy arrays, CPU torch tensors (detached here; never modified), anything with ``__array__`` or
  ``__dlpack__``; float16, float32 or float64. float32 in C order is read in place; other inputs
  are converted to float32 once (float64 is rounded: the gradient is that of the rounded values).
- ``target``: integer labels ``(B, *spatial)`` or ``(B, 1, *spatial)``, or one-hot
  ``(B, C, *spatial)`` (integers, bool or floats holding 0 and 1).

Every parameter left at None takes the preset's value, or the default: MONAI's ``DiceLoss()``.
docs/python.md has the full story; docs/math.md the formulas.
"""

from __future__ import annotations

import json
import numbers
import warnings
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _dicegrad

__version__: str = _dicegrad.__version__

__all__ = ["gradient", "analyze", "mimic_weights", "loss_parameters", "__version__"]

ArrayLike = Any


def _as_numpy(x: ArrayLike, what: str) -> np.ndarray:
    """``x`` as a numpy array sharing its memory where it can (torch tensors on the CPU, DLPack)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "device") and hasattr(x, "numpy"):  # a torch tensor
        t = x.detach()
        if t.device.type != "cpu":
            raise TypeError(
                f"the {what} is a tensor on {t.device}; dicegrad reads arrays in the CPU's memory: "
                f"pass {what}.detach().cpu()"
            )
        if str(t.dtype) == "torch.bfloat16":  # numpy has no bfloat16; widening is exact
            t = t.float()
        return t.numpy()
    if hasattr(x, "__array__") or isinstance(x, (list, tuple, int, float)):
        return np.asarray(x)
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    raise TypeError(
        f"the {what} must be an array (numpy, a CPU torch tensor, or anything numpy can view), "
        f"got {type(x).__name__}"
    )


def _input(x: ArrayLike) -> np.ndarray:
    """The input as the float32 C-ordered array the library reads: ``x`` itself when it is one."""
    a = _as_numpy(x, "input")
    if a.ndim < 2:
        raise ValueError(
            f"the input has shape {a.shape}; give a mini-batch (B, C, *spatial) — one to three spatial "
            "axes — or (B, *spatial) for one foreground channel"
        )
    if a.dtype.kind != "f":
        hint = (
            " (a segmentation? the input is the network's probabilities or logits)"
            if a.dtype.kind in "biu"
            else ""
        )
        raise TypeError(f"the input holds {a.dtype}; give float16, float32 or float64 values{hint}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _target(y: ArrayLike) -> np.ndarray:
    """The target as an array of a type the library reads (bool as uint8, float16 as float32)."""
    t = _as_numpy(y, "target")
    if t.dtype == np.bool_:
        return t.view(np.uint8)
    if t.dtype.kind not in "iuf":
        raise TypeError(f"the target holds {t.dtype}; give integer labels or a one-hot array of 0 and 1")
    if t.dtype == np.float16 or (t.dtype.kind == "f" and t.dtype.itemsize > 8):
        return t.astype(np.float32 if t.dtype == np.float16 else np.float64)
    if not t.dtype.isnative:  # big-endian data, as nibabel reads some NIfTI files
        return t.astype(t.dtype.newbyteorder("="))
    return t


def _options(call: Dict[str, Any]) -> Dict[str, Any]:
    """The options of a call: its arguments (``locals()`` as the function starts) but the arrays and
    what the package handles itself, those left at None dropped."""
    kw = {k: v for k, v in call.items() if k not in ("input", "target", "raw")}
    threads = kw.get("threads")
    if isinstance(threads, numbers.Integral) and _dicegrad.max_threads < threads < 2**63:
        warnings.warn(
            f"threads={threads}: using {_dicegrad.max_threads} (4 per core on this machine); "
            "results do not depend on it",
            stacklevel=3,
        )
    return {k: v for k, v in kw.items() if v is not None}


def gradient(
    input: ArrayLike,
    target: ArrayLike,
    loss: Optional[str] = None,
    activation: Optional[str] = None,
    include_background: Optional[bool] = None,
    batch: Optional[bool] = None,
    smooth_nr: Optional[float] = None,
    smooth_dr: Optional[float] = None,
    weight: Optional[Sequence[float]] = None,
    preset: Optional[str] = None,
    *,
    w_type: Optional[str] = None,
    alpha: Optional[float] = None,
    beta: Optional[float] = None,
    lambda_dice: Optional[float] = None,
    lambda_ce: Optional[float] = None,
    dice_form: Optional[str] = None,
    denominator_floor: Optional[float] = None,
    skip_empty: Optional[bool] = None,
    loss_weight: Optional[float] = None,
    label: Optional[int] = None,
    spatial_dims: Optional[int] = None,
    force_activation: bool = False,
    allow_non_finite: bool = False,
    threads: Optional[int] = None,
) -> np.ndarray:
    """The gradient of the loss with respect to every value of ``input``, as PyTorch autograd of
    the same loss gives it: a float32 array of ``input``'s shape, each value computed in float64
    and rounded once. With an ``activation`` it is with respect to the logits passed.

    Args:
        input: ``(B, C, *spatial)`` probabilities or logits, or ``(B, *spatial)`` (one channel).
        target: labels ``(B, *spatial)`` / ``(B, 1, *spatial)``, or one-hot ``(B, C, *spatial)``.
        loss: "dice" (default), "jaccard", "squared-dice", "squared-jaccard", "generalized-dice",
            "tversky", "log-cosh-dice", "ce", "mimic" or "dice+ce" (underscores work too).
        activation: "none" (the values are probabilities), "sigmoid" or "softmax" (logits).
        include_background: whether channel 0 takes part in the Dice-type part of the loss
            (MONAI ``include_background``); cross-entropy always uses every channel.
        batch: False: each sample's loss, averaged over the mini-batch (MONAI ``batch=False``);
            True: one loss of the sums pooled over the mini-batch (MONAI ``batch=True``, nnU-Net
            ``batch_dice``). None: the preset's (nnunet and smp pool), else False.
        smooth_nr, smooth_dr: the epsilons of the numerator and denominator (default 1e-5).
        weight: one weight per channel (MONAI and torch ``weight``), or one number for all; with
            the background left out of a Dice-type loss, C - 1 weights of the foreground channels
            (as MONAI's DiceLoss takes them). None: all 1.
        preset: "monai", "nnunet", "smp" or "kervadec": the exact loss that framework trains with;
            parameters given here override it. "nnunet" includes nnU-Net's deep-supervision weight
            of the full-resolution output, loss_weight=8/15 (give loss_weight=1 without deep
            supervision), and pools the sums over the mini-batch (batch=False for a configuration
            without batch Dice).
        w_type: generalized Dice weights: "square" (1/G^2, default), "simple" (1/G), "uniform".
        alpha, beta: Tversky weights of false positives and false negatives (0.5 each).
        lambda_dice, lambda_ce: weights of the parts of "dice+ce" (1 each).
        dice_form: "one_minus" (1 - dice) or "negative" (-dice, nnU-Net); the gradient is the same.
        denominator_floor: lower bound on a Dice denominator (nnU-Net 1e-8, smp 1e-7; 0 = none).
        skip_empty: channels without foreground contribute 0 (smp).
        loss_weight: multiplies the loss and its gradient (a deep-supervision weight).
        label: with one channel and multi-label maps: the label value that is foreground.
        spatial_dims: how many axes are spatial. Needed only when a target of the input's shape
            leaves it open: ``(B, N1, N2, N3)`` is one-hot over N1 channels of 2-D images
            (``spatial_dims=2``) or the labels of a binary 3-D volume (``spatial_dims=3``);
            ``(B, N1, N2)`` likewise. Without it such shapes are refused.
        force_activation: apply the activation even to values that look like probabilities
            (refused otherwise, as probabilities activated a second time).
        allow_non_finite: return a gradient that is not finite instead of raising.
        threads: worker threads (None or 0: one per core; at most 4 per core). Results do not
            depend on it. A call runs to its end: Ctrl-C is seen when it returns.

    Raises:
        ValueError: the arrays' values or shapes, or a parameter, cannot be used (the message
            says what to change). TypeError: an argument of the wrong type.
    """
    options = _options(locals())
    return _dicegrad.gradient(_input(input), _target(target), options)


def analyze(
    input: ArrayLike,
    target: ArrayLike,
    loss: Optional[str] = None,
    activation: Optional[str] = None,
    include_background: Optional[bool] = None,
    batch: Optional[bool] = None,
    smooth_nr: Optional[float] = None,
    smooth_dr: Optional[float] = None,
    weight: Optional[Sequence[float]] = None,
    preset: Optional[str] = None,
    *,
    w_type: Optional[str] = None,
    alpha: Optional[float] = None,
    beta: Optional[float] = None,
    lambda_dice: Optional[float] = None,
    lambda_ce: Optional[float] = None,
    dice_form: Optional[str] = None,
    denominator_floor: Optional[float] = None,
    skip_empty: Optional[bool] = None,
    loss_weight: Optional[float] = None,
    label: Optional[int] = None,
    spatial_dims: Optional[int] = None,
    force_activation: bool = False,
    allow_non_finite: bool = False,
    threads: Optional[int] = None,
    compare: Optional[Union[str, Sequence[str]]] = None,
    loss_scale: Optional[float] = None,
    pictures: bool = False,
    spacing: Optional[Sequence[float]] = None,
) -> Dict[str, Any]:
    """The report of the mini-batch's loss and its gradient: the keys of the command line's
    report.json (loss, per-channel soft and hard Dice, sums, closed-form levels, the measured
    gradient's levels, ratio, dynamic range, histogram and mixed-precision figures), and
    ``batch``.

    - Pooled (``batch=True``, or the preset's): one report, of the mini-batch as its loss sees
      it (its samples side by side: every sum is the pooled one; the values are copied once to
      lay them side by side).
    - Per sample (``batch=False``, the default): ``{"batch": ..., "samples": [report, ...]}``,
      each sample's report as part of the mini-batch (its Dice part weighted 1/B, its share of
      the cross-entropy), so that its levels and float16 window are those of the gradient that
      reaches the network — also with one sample, so that a last, smaller batch reads alike.

    ``batch`` holds ``size``, ``reduction`` ("per_sample" or "pooled"), the mini-batch's ``loss``
    and ``mixed_precision``: the float16 loss-scale window and the shares at the loss scale over
    every value of the mini-batch's gradient — what to log every N steps.

    Takes the arguments of :func:`gradient`, and:
        compare: loss names whose gradients are compared with the main one's (cosine, ...).
        loss_scale: the loss scale S of the mixed-precision figures (default 65536, GradScaler's
            initial scale).
        pictures: also draw the command line's pictures of each report, as PNG bytes under
            ``"pictures"`` (``slices``, ``histogram``, ``density``, and ``compare`` with
            ``compare``): ``IPython.display.Image(r["pictures"]["slices"])`` in a notebook. The
            report then also holds ``views`` (where the planes lie, the colour scales).
        spacing: the voxel size along each spatial axis (mm), e.g. ``(0.8, 0.8, 2.0)``: the
            report's voxel size and the pictures' aspect. Arrays carry no geometry: the pictures
            take their axes as RAS, at 1 mm unless ``spacing`` says otherwise. The gradient does
            not depend on it.
    """
    options = _options(locals())
    text, drawn = _dicegrad.analyze(_input(input), _target(target), options)
    report = json.loads(text)
    if pictures:
        reports = report["samples"] if "samples" in report else [report]
        for r, p in zip(reports, drawn):
            r["pictures"] = dict(p)
    return report


def mimic_weights(
    input: ArrayLike,
    target: ArrayLike,
    loss: Optional[str] = None,
    activation: Optional[str] = None,
    include_background: Optional[bool] = None,
    batch: Optional[bool] = None,
    smooth_nr: Optional[float] = None,
    smooth_dr: Optional[float] = None,
    weight: Optional[Sequence[float]] = None,
    preset: Optional[str] = None,
    *,
    raw: bool = False,
    w_type: Optional[str] = None,
    alpha: Optional[float] = None,
    beta: Optional[float] = None,
    lambda_dice: Optional[float] = None,
    lambda_ce: Optional[float] = None,
    dice_form: Optional[str] = None,
    denominator_floor: Optional[float] = None,
    skip_empty: Optional[bool] = None,
    loss_weight: Optional[float] = None,
    label: Optional[int] = None,
    spatial_dims: Optional[int] = None,
    force_activation: bool = False,
    allow_non_finite: bool = False,
    threads: Optional[int] = None,
) -> np.ndarray:
    """The mimic weights of the loss on this mini-batch: per channel, the weight with which the
    mimic loss ``-sum_k w_k * sum_i s_ki * g_ki`` has the ground-truth part ``-a_k * g`` of the
    loss's gradient with respect to probabilities (Dice: ``a_k = 2 / (K * D_k)``,
    ``D_k = S_k + G_k + smooth_dr``). Only the sums are computed (one pass over the values).

    Returns float64: ``(C,)`` when the loss pools the mini-batch (``batch=True``, or the preset's),
    ``(B, C)`` per sample (each sample's part of the mini-batch's loss). Normalised (the default):
    ``w_k = a_k / sum_j a_j`` over the channels in the Dice-type part that have a foreground voxel,
    summing to 1; 0 for the others (a channel without foreground has no ground-truth part, and one
    left out of the loss has none either), and all 0 when the loss's ground-truth part is 0 on every channel
    (no channel with foreground voxels, or class weights of 0: nothing to mimic, and a mimic loss
    with these weights gives that mini-batch no gradient). ``raw=True``: ``a_k = -P_k``
    itself, in units of loss per unit of ``sum s*g`` (with ``batch=False`` it includes the 1/B of
    the mean over samples; with a preset, its loss weight).

    The weights are constants of the mini-batch: use them without a gradient through them, e.g.
    ``w = torch.as_tensor(mimic_weights(probs.detach(), y, batch=True, raw=True))``.

    Takes the loss arguments of :func:`gradient`. Raises ValueError for a loss without a
    Dice-type part (``"ce"``), whose gradient weighs the ground truth per voxel, not per class.
    """
    options = _options(locals())
    if not isinstance(raw, (bool, np.bool_)):
        raise TypeError(f"raw must be True or False, got {type(raw).__name__}")
    pooled, sets = _dicegrad.mimic_weights(_input(input), _target(target), options)
    rows = [a if raw else (w if w is not None else [0.0] * len(a)) for a, w in sets]
    out = np.array(rows, dtype=np.float64)
    return out[0] if pooled else out


def loss_parameters() -> List[Dict[str, Any]]:
    """Every loss parameter: its keyword, what it is, its default (as the library writes it) and
    the values to choose from (None for numbers and switches)."""
    return [
        {"name": n, "help": h, "default": d, "choices": c}
        for (n, h, d, c) in _dicegrad.parameters()
    ]
