"""dicegrad.gradient against the closed forms of docs/math.md, written again here in numpy.

The expected gradients below never come from the package: `reference_gradient` is an independent
float64 implementation of the formulas of docs/math.md (every loss family, the activations, the
cross-entropy forms, the presets and the two reductions of a mini-batch), and it is itself checked
against central finite differences of `reference_loss` (the loss values of the same sections) in
`test_reference_matches_finite_differences*`. During development it was also compared with
PyTorch autograd of MONAI 1.6.1 (`DiceLoss`, `GeneralizedDiceLoss`, `TverskyLoss`, `DiceCELoss`),
nnU-Net 2.6 (`DC_and_CE_loss` with `MemoryEfficientSoftDiceLoss`) and plain torch formulas (smp,
Kervadec, mimic, log-cosh, the cross-entropies) in float64; that comparison needs torch and is
not part of this file.

Conventions (docs/math.md, "A mini-batch from arrays" and the brief of the Python API): input
(B, C, *spatial) channel first, or (B, *spatial) for one foreground channel; targets as labels;
the gradient is with respect to the values passed (logits with an activation), computed in float64
from the input rounded to float32, and returned as float32.
"""

import math

import numpy as np
import pytest

import dicegrad

# --------------------------------------------------------------------------------------------
# The reference: docs/math.md in numpy, float64
# --------------------------------------------------------------------------------------------

# docs/math.md, "Every loss family": ratio families f = 1 − Num/Den with Num = a_I·I + ε_nr and
# Den = b_I·I + b_X·X + b_G·G + ε_dr, X = S (or Q = Σs² for the squared forms).
#   dice (2, 0, 1, 1), jaccard (2, −2, 2, 2), tversky (1, 1 − α − β, α, β)
RATIO_FAMILIES = {
    "dice": ((2.0, 0.0, 1.0, 1.0), False),
    "jaccard": ((2.0, -2.0, 2.0, 2.0), False),
    "squared-dice": ((2.0, 0.0, 1.0, 1.0), True),
    "squared-jaccard": ((2.0, -2.0, 2.0, 2.0), True),
    # log-cosh-dice and the Dice part of dice+ce are the `dice` ratio
    "log-cosh-dice": ((2.0, 0.0, 1.0, 1.0), False),
    "dice+ce": ((2.0, 0.0, 1.0, 1.0), False),
}

# Defaults (brief of the Python API; docs/math.md "Soft Dice loss": ε_nr = ε_dr = 1e-5, background
# included; "Every loss family": w_k default 1, α = β = 0.5, w_type square, λ = 1).
DEFAULTS = dict(
    loss="dice",
    activation="none",
    include_background=True,
    batch=False,
    smooth_nr=1e-5,
    smooth_dr=1e-5,
    weight=None,
    w_type="square",
    alpha=0.5,
    beta=0.5,
    lambda_dice=1.0,
    lambda_ce=1.0,
    dice_form="one_minus",
    denominator_floor=0.0,
    skip_empty=False,
    loss_weight=1.0,
    label=1,
    ce_of_input=False,  # MONAI DiceCELoss's cross-entropy of the raw input (preset monai)
)

# Presets, docs/math.md "Presets (`--preset`)" (the pooled default of nnunet and smp: "Training on
# patches", table "The loss of a mini-batch": "pooled (... the default of the `nnunet` and `smp`
# presets)").
NNUNET_LOSS_WEIGHT = 8.0 / 15.0


def preset_options(preset, channels):
    if preset is None:
        return {}
    if preset == "monai":
        # `dice`, no activation, ε_nr = ε_dr = 1e-5, background included, mean over channels;
        # DiceCELoss's cross-entropy of the values as given ("Where this differs from MONAI").
        return dict(loss="dice", activation="none", smooth_nr=1e-5, smooth_dr=1e-5, include_background=True,
                    ce_of_input=True)
    if preset == "nnunet":
        # `dice+ce`, softmax, Dice over the foreground channels only, ε = 1e-5 in numerator and
        # denominator, denominator clipped at 1e-8, value −mean(dc) + CE, λ = 1 and 1, loss weight 8/15.
        return dict(loss="dice+ce", activation="softmax", include_background=False, smooth_nr=1e-5,
                    smooth_dr=1e-5, denominator_floor=1e-8, dice_form="negative", lambda_dice=1.0,
                    lambda_ce=1.0, loss_weight=NNUNET_LOSS_WEIGHT, batch=True)
    if preset == "smp":
        # `dice` from logits (softmax; one channel: sigmoid), smooth = 0, denominator
        # clamp_min(1e-7), channels without foreground contribute 0 but count in the mean,
        # background included; smp always pools over the batch.
        return dict(loss="dice", activation="softmax" if channels >= 2 else "sigmoid", smooth_nr=0.0,
                    smooth_dr=0.0, denominator_floor=1e-7, skip_empty=True, include_background=True, batch=True)
    if preset == "kervadec":
        # `dice` on softmax probabilities, ε = 1e-10 in numerator and denominator, all classes.
        return dict(loss="dice", activation="softmax", smooth_nr=1e-10, smooth_dr=1e-10, include_background=True)
    raise ValueError(preset)


def resolve(channels, preset=None, **explicit):
    """The options of a call: defaults, then the preset's, then those given explicitly."""
    o = dict(DEFAULTS)
    o.update(preset_options(preset, channels))
    o.update({k: v for k, v in explicit.items() if v is not None})
    return o


def _flat(x, labels):
    """(B, C, *spatial) float64 and (B, *spatial) int -> (B, C, N), (B, N)."""
    b, c = x.shape[:2]
    return x.reshape(b, c, -1).astype(np.float64), labels.reshape(b, -1).astype(np.int64)


def activate(x, activation):
    """docs/math.md notation: s = x, sigmoid(x) or softmax_k(x) (over axis 1)."""
    if activation == "none":
        return x.copy()
    if activation == "sigmoid":
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if activation == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(activation)


def one_hot(labels, channels, label=1):
    """g_ki = 1 where the label is k; one channel: g_0i = 1 where the label is 1 (or `label`)."""
    if channels == 1:
        return (labels == label)[:, None, :].astype(np.float64)
    return (labels[:, None, :] == np.arange(channels)[None, :, None]).astype(np.float64)


def loss_channels(channels, include_background):
    """Λ: all C, or 1..C−1 without background; a single channel is always used."""
    lam = np.ones(channels, dtype=bool)
    if channels > 1 and not include_background:
        lam[0] = False
    return lam


def sum_part(I, S, Q, G, o):
    """Value and coefficients (P, R, T) of dL/ds = P·g + R + T·s for one set of sums (per channel).

    docs/math.md, "Every loss family" (table and "Derivatives"); "Soft Dice loss"; the options
    `denominator_floor`, `skip_empty`, `dice_form`; dice+ce's λ_dice. Returns (value, P, R, T) or
    None for pure cross-entropy.
    """
    loss = o["loss"]
    C = len(I)
    lam = loss_channels(C, o["include_background"])
    K = int(lam.sum())
    w = np.ones(C) if o["weight"] is None else np.asarray(o["weight"], np.float64)
    P, R, T = np.zeros(C), np.zeros(C), np.zeros(C)
    nr, dr = o["smooth_nr"], o["smooth_dr"]
    if loss == "ce":
        return None
    if loss == "mimic":
        # L = −Σ_{k∈Λ} w_k·Σ_i s_ki·g_ki;  P_k = −w_k, R_k = 0
        value = -float(np.sum(w[lam] * I[lam]))
        P[lam] = -w[lam]
        return value, P, R, T
    if loss == "generalized-dice":
        # L = 1 − (2·Σ_k ω_k·I_k + ε_nr)/(Σ_k ω_k·(S_k + G_k) + ε_dr), ω = 1/G² | 1/G | 1; an
        # infinite ω replaced by the largest finite ω of the case; P_k = −2ω_k/Den, R_k = ω_k·Num/Den²
        with np.errstate(divide="ignore"):
            Gl = G[lam]
            omega = {"square": 1.0 / Gl**2, "simple": 1.0 / Gl, "uniform": np.ones_like(Gl)}[o["w_type"]]
        finite = np.isfinite(omega)
        omega = np.where(finite, omega, omega[finite].max() if finite.any() else 0.0)
        num = 2.0 * np.sum(omega * I[lam]) + nr
        den = np.sum(omega * (S[lam] + G[lam])) + dr
        P[lam] = -2.0 * omega / den
        R[lam] = omega * num / den**2
        return 1.0 - num / den, P, R, T
    if loss == "tversky":
        # (1/K)·Σ_k (1 − (I + ε_nr)/(I + α·FP + β·FN + ε_dr)): a_I = 1, b_I = 1 − α − β, b_X = α,
        # b_G = β (no class weights in the table's formula)
        coef, squared = (1.0, 1.0 - o["alpha"] - o["beta"], o["alpha"], o["beta"]), False
        w = np.ones(C)
    else:
        coef, squared = RATIO_FAMILIES[loss]
    a_i, b_i, b_x, b_g = coef
    one = 1.0 if o["dice_form"] == "one_minus" else 0.0
    value = 0.0
    for k in np.flatnonzero(lam):
        if o["skip_empty"] and G[k] == 0:
            continue  # a channel with G = 0 contributes 0 and has zero gradient (but counts in K)
        X = Q[k] if squared else S[k]
        num = a_i * I[k] + nr
        den = b_i * I[k] + b_x * X + b_g * G[k] + dr
        if den < o["denominator_floor"]:
            # the denominator is the constant floor, so ∂f/∂X = 0 (and ∂Den/∂I = 0)
            den = o["denominator_floor"]
            df_di, df_dx = -a_i / den, 0.0
        else:
            # ∂f/∂I = −(a_I·Den − Num·b_I)/Den²,  ∂f/∂X = Num·b_X/Den²
            df_di = -(a_i * den - num * b_i) / den**2
            df_dx = num * b_x / den**2
        wk = w[k] / K
        value += wk * (one - num / den)
        P[k] = wk * df_di
        if squared:
            T[k] = 2.0 * wk * df_dx  # T = 2·∂L/∂Q
        else:
            R[k] = wk * df_dx
    if loss == "log-cosh-dice":
        # ln(cosh(L_dice)); ∂L = tanh(L_dice)·∂L_dice
        t = math.tanh(value)
        return math.log(math.cosh(value)), P * t, R * t, T * t
    if loss == "dice+ce":
        lam_d = o["lambda_dice"]
        return lam_d * value, P * lam_d, R * lam_d, T * lam_d
    return value, P, R, T


def ce_form(o, channels):
    """Which cross-entropy applies: docs/math.md "Cross-entropy" and its MONAI table."""
    act = o["activation"]
    if act == "softmax":
        return "softmax-logits"
    if act == "sigmoid":
        if channels >= 2 and o["ce_of_input"]:
            return "softmax-of-input"
        return "sigmoid-logits"
    if channels == 1:
        return "sigmoid-of-input" if o["ce_of_input"] else "bce"
    return "softmax-of-input" if o["ce_of_input"] else "nll"


def _softmax(z):
    return activate(z, "softmax")


def _sigmoid(z):
    return activate(z, "sigmoid")


def ce_value_and_grad(x, s, g, y, o):
    """Cross-entropy over the whole mini-batch (mean over all its voxels, torch's reduction) and its
    gradient with respect to the values passed (logits, or probabilities without activation).

    docs/math.md "Cross-entropy": x, s, g (B, C, N); y (B, N) the voxel's class.
    """
    B, C, N = x.shape
    form = ce_form(o, C)
    w = np.ones(C) if o["weight"] is None else np.asarray(o["weight"], np.float64)
    if form in ("softmax-logits", "softmax-of-input"):
        # Σ_i w_{y_i}·(−log softmax(z_i)_{y_i}) / W,  W = Σ_i w_{y_i};  ∂/∂z_ki = w_{y_i}·(q_ki − g_ki)/W
        q = s if form == "softmax-logits" else _softmax(x)
        m = x.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
        zy = np.take_along_axis(x, y[:, None, :], axis=1)[:, 0]
        wy = w[y]
        W = wy.sum()
        return float(np.sum(wy * (lse - zy)) / W), wy[:, None, :] * (q - g) / W
    if form in ("sigmoid-logits", "sigmoid-of-input"):
        # Σ_{k,i} [max(z,0) − z·g + log(1 + e^(−|z|))] / (C·N);  (q_ki − g_ki)/(C·N)
        q = s if form == "sigmoid-logits" else _sigmoid(x)
        n = B * C * N
        v = np.maximum(x, 0) - x * g + np.log1p(np.exp(-np.abs(x)))
        return float(v.sum() / n), (q - g) / n
    if form == "nll":
        # Σ_i w_{y_i}·(−max(log s_{y_i,i}, −100)) / W; gradient −w_{y_i}/(s·W) on the true class where
        # log s > −100, else 0; 0 on the other classes
        sy = np.take_along_axis(s, y[:, None, :], axis=1)[:, 0]
        wy = w[y]
        W = wy.sum()
        with np.errstate(divide="ignore"):
            logs = np.log(sy)
        value = float(np.sum(wy * -np.maximum(logs, -100.0)) / W)
        grad = np.zeros_like(s)
        gy = np.where(logs > -100.0, -wy / np.where(sy > 0, sy, 1.0) / W, 0.0)
        np.put_along_axis(grad, y[:, None, :], gy[:, None, :], axis=1)
        return value, grad
    if form == "bce":
        # Σ_i −[g·max(log s, −100) + (1 − g)·max(log(1 − s), −100)] / N;
        # (s − g)/(max(s(1 − s), 1e−12)·N)
        n = B * N
        with np.errstate(divide="ignore"):
            v = -(g * np.maximum(np.log(s), -100.0) + (1 - g) * np.maximum(np.log(1 - s), -100.0))
        return float(v.sum() / n), (s - g) / (np.maximum(s * (1 - s), 1e-12) * n)
    raise ValueError(form)


def _sums(s, g):
    """I = Σ s·g, S = Σ s, Q = Σ s², G = Σ g over the voxels, per sample and channel: (B, C) each."""
    return (s * g).sum(axis=2), s.sum(axis=2), (s * s).sum(axis=2), g.sum(axis=2)


def _evaluate(x, labels, o):
    """(loss value, gradient) of the mini-batch: docs/math.md "A mini-batch from arrays" and "The
    loss of a mini-batch": per case w·(λ·(1/B)·Σ_b L(sums_b) + λ_ce·CE), pooled w·(λ·L(Σ_b sums_b) +
    λ_ce·CE); λ_dice is inside `sum_part`; CE the mean over every voxel of the mini-batch."""
    shape = x.shape
    x, y = _flat(x, labels)
    B, C, N = x.shape
    s = activate(x, o["activation"])
    g = one_hot(y, C, o["label"])
    if C == 1:
        y = (y == o["label"]).astype(np.int64)  # the binary class of a one-channel prediction
    I, S, Q, G = _sums(s, g)
    u = np.zeros_like(s)  # ∂L/∂s of the sum-based part
    value = 0.0
    if o["loss"] != "ce":
        if o["batch"]:
            part = sum_part(I.sum(0), S.sum(0), Q.sum(0), G.sum(0), o)
            value += part[0]
            P, R, T = (c[None, :, None] for c in part[1:])
            u += P * g + R + T * s
        else:
            for b in range(B):
                part = sum_part(I[b], S[b], Q[b], G[b], o)
                value += part[0] / B
                P, R, T = (c[:, None] / B for c in part[1:])
                u[b] += P * g[b] + R + T * s[b]
    # docs/math.md "Through an activation": sigmoid u·s·(1 − s); softmax s_j·(u_j − Σ_k s_k·u_k)
    if o["activation"] == "sigmoid":
        grad = u * s * (1 - s)
    elif o["activation"] == "softmax":
        grad = s * (u - (s * u).sum(axis=1, keepdims=True))
    else:
        grad = u
    if o["loss"] in ("ce", "dice+ce"):
        lam_ce = o["lambda_ce"] if o["loss"] == "dice+ce" else 1.0
        ce_v, ce_g = ce_value_and_grad(x, s, g, y, o)
        value += lam_ce * ce_v
        grad = grad + lam_ce * ce_g
    return o["loss_weight"] * value, (o["loss_weight"] * grad).reshape(shape)


def reference_gradient(x, labels, **kw):
    """The closed-form gradient (float64) of `dicegrad.gradient(x, labels, **kw)`; x (B, C, *spatial),
    labels (B, *spatial). The input is rounded to float32 first, as the package holds it."""
    x = np.asarray(x).astype(np.float32).astype(np.float64)
    return _evaluate(x, np.asarray(labels), resolve(x.shape[1], **kw))[1]


def reference_loss(x, labels, **kw):
    """The loss value (float64, no rounding of x) of the same options."""
    x = np.asarray(x, np.float64)
    return _evaluate(x, np.asarray(labels), resolve(x.shape[1], **kw))[0]


def reference_gradient_f64(x, labels, **kw):
    """The closed form on x as given (float64, no rounding), for the finite-difference checks."""
    x = np.asarray(x, np.float64)
    return _evaluate(x, np.asarray(labels), resolve(x.shape[1], **kw))[1]


# --------------------------------------------------------------------------------------------
# Data and comparison helpers
# --------------------------------------------------------------------------------------------

B, C, SPATIAL = 2, 3, (5, 4, 3)


def make_labels(rng, b, c, spatial, all_present=True):
    labels = rng.integers(0, c, size=(b, *spatial))
    if all_present:
        flat = labels.reshape(b, -1)
        for k in range(c):
            flat[:, k] = k  # every class in every sample
    return labels


def make_logits(rng, b, c, spatial, scale=3.0):
    return (rng.normal(size=(b, c, *spatial)) * scale).astype(np.float32)


def make_input(rng, activation, b=B, c=C, spatial=SPATIAL, scale=3.0):
    """Logits (normal × 3) with an activation; probabilities without (softmax of logits for C ≥ 2,
    sigmoid for one channel), float32."""
    z = make_logits(rng, b, c, spatial, scale).astype(np.float64)
    if activation != "none":
        return z.astype(np.float32)
    p = activate(z, "softmax") if c >= 2 else activate(z, "sigmoid")
    return p.astype(np.float32)


def assert_matches(got, ref, rtol=1e-6, what=""):
    """float32 output of the input's shape, within rtol·max|ref| of the closed form."""
    assert isinstance(got, np.ndarray), type(got)
    assert got.dtype == np.float32, got.dtype
    assert got.shape == ref.shape, (got.shape, ref.shape)
    assert np.all(np.isfinite(got))
    scale = float(np.abs(ref).max())
    err = float(np.abs(got.astype(np.float64) - ref).max())
    assert err <= rtol * scale, f"{what}: max |got − closed form| = {err:.3e}, max |closed form| = {scale:.3e} " \
                                f"(relative {err / scale if scale else float('inf'):.3e})"


def call(x, labels, **kw):
    return dicegrad.gradient(x, labels, **kw)


# The parameters each family reads (an explicitly given parameter that the loss does not read is
# refused, so the tests pass only these). docs/math.md "Every loss family".
SUM_FAMILIES = ["dice", "jaccard", "squared-dice", "squared-jaccard", "generalized-dice", "tversky",
                "log-cosh-dice", "mimic", "dice+ce"]
READS_WEIGHT = {"dice", "jaccard", "squared-dice", "squared-jaccard", "mimic", "dice+ce", "ce"}
READS_SMOOTHING = {"dice", "jaccard", "squared-dice", "squared-jaccard", "generalized-dice", "tversky",
                   "log-cosh-dice", "dice+ce"}


def family_options(loss, activation, channels):
    """Non-default values of every option the family reads (valid for the activation)."""
    kw = {}
    if loss in READS_SMOOTHING:
        kw.update(smooth_nr=0.3, smooth_dr=0.7)
    if loss in READS_WEIGHT:
        # class weights are refused with binary cross-entropy (sigmoid, or one channel)
        binary_ce = loss in ("ce", "dice+ce") and (activation == "sigmoid" or channels == 1)
        if not binary_ce:
            kw["weight"] = [0.5, 2.0, 1.25][:channels]
    if loss == "generalized-dice":
        kw["w_type"] = "simple"
    if loss == "tversky":
        kw.update(alpha=0.3, beta=0.7)
    if loss == "dice+ce":
        kw.update(lambda_dice=0.3, lambda_ce=2.0)
    kw["loss_weight"] = 0.75
    return kw


ACTIVATIONS = ["none", "sigmoid", "softmax"]


# --------------------------------------------------------------------------------------------
# The reference, checked on its own: central finite differences of the loss value (float64)
# --------------------------------------------------------------------------------------------

def finite_difference(x, labels, h, **kw):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        grad[idx] = (reference_loss(xp, labels, **kw) - reference_loss(xm, labels, **kw)) / (2 * h)
    return grad


def fd_input(rng, activation, b=2, c=3, spatial=(4, 3, 2)):
    """Moderate values (no probability below ~1e-2), so that the clamped logs and 1/s of the
    cross-entropy on probabilities are smooth at the step."""
    z = rng.normal(size=(b, c, *spatial))
    if activation != "none":
        return z * 2.0
    return activate(z, "softmax") if c >= 2 else activate(z, "sigmoid")


def assert_fd(x, labels, **kw):
    ref = reference_gradient_f64(x, labels, **kw)
    fd = finite_difference(x, labels, 1e-6, **kw)
    scale = np.abs(ref).max()
    assert scale > 0
    err = np.abs(fd - ref).max()
    # truncation O(h²) relative to the gradient, plus the rounding of the loss values, ~ε·|L|/h
    roundoff = 1e-9 * max(1.0, abs(reference_loss(x, labels, **kw)))
    assert err <= 1e-6 * scale + roundoff, f"reference vs finite differences: {err:.3e} of max {scale:.3e}"


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", SUM_FAMILIES)
def test_reference_matches_finite_differences(loss, activation, batch):
    rng = np.random.default_rng(100 + SUM_FAMILIES.index(loss) * 7 + ACTIVATIONS.index(activation) * 2 + batch)
    x = fd_input(rng, activation)
    labels = make_labels(rng, 2, 3, (4, 3, 2))
    kw = dict(loss=loss, activation=activation, batch=batch, include_background=batch)
    assert_fd(x, labels, **kw)
    assert_fd(x, labels, **kw, **family_options(loss, activation, 3))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_reference_cross_entropy_matches_finite_differences(activation):
    rng = np.random.default_rng(7 + ACTIVATIONS.index(activation))
    x = fd_input(rng, activation)
    labels = make_labels(rng, 2, 3, (4, 3, 2))
    assert_fd(x, labels, loss="ce", activation=activation)
    assert_fd(x, labels, loss="ce", activation=activation, **family_options("ce", activation, 3))
    # the quirk of the monai preset: softmax cross-entropy of the values as given
    if activation != "softmax":
        assert_fd(x, labels, preset="monai", loss="dice+ce", activation=activation)


@pytest.mark.parametrize("activation", ["none", "sigmoid"])
@pytest.mark.parametrize("loss", ["dice", "squared-jaccard", "tversky", "dice+ce", "ce"])
def test_reference_binary_matches_finite_differences(loss, activation):
    rng = np.random.default_rng(11)
    x = fd_input(rng, activation, c=1)
    labels = rng.integers(0, 2, size=(2, 4, 3, 2))
    assert_fd(x, labels, loss=loss, activation=activation)
    if loss == "dice+ce":
        assert_fd(x, labels, loss=loss, activation=activation, preset="monai")


@pytest.mark.parametrize("preset", ["monai", "nnunet", "smp", "kervadec"])
def test_reference_presets_match_finite_differences(preset):
    rng = np.random.default_rng(21)
    act = "none" if preset == "monai" else "softmax"
    x = fd_input(rng, act)
    labels = make_labels(rng, 2, 3, (4, 3, 2))
    assert_fd(x, labels, preset=preset)
    assert_fd(x, labels, preset=preset, batch=False)
    assert_fd(x, labels, preset=preset, batch=True)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("loss", ["dice", "tversky", "log-cosh-dice", "dice+ce"])
def test_reference_framework_options_match_finite_differences(loss, batch):
    """denominator_floor (active on every channel, and on one), skip_empty with an empty class,
    dice_form negative."""
    rng = np.random.default_rng(23)
    x = fd_input(rng, "softmax")
    labels = make_labels(rng, 2, 3, (4, 3, 2))
    kw = dict(loss=loss, activation="softmax", batch=batch)
    assert_fd(x, labels, denominator_floor=1000.0, **kw)
    assert_fd(x, labels, dice_form="negative", **kw)
    empty = labels.copy()
    empty[empty == 2] = 0
    assert_fd(x, empty, skip_empty=True, **kw)
    assert_fd(x, empty, skip_empty=True, smooth_nr=0.0, smooth_dr=0.0, denominator_floor=1e-7, **kw)
    # a floor between the channels' denominators: the empty channel 2 (smallest S + G) clamped
    s = activate(x.reshape(2, 3, -1), "softmax")
    I, S, Q, G = _sums(s, one_hot(empty.reshape(2, -1), 3))
    if batch:
        I, S, G = I.sum(0, keepdims=True), S.sum(0, keepdims=True), G.sum(0, keepdims=True)
    den = 0.5 * (S + G) if loss == "tversky" else S + G  # α = β = 1/2: Den = (S + G)/2
    low, high = den[:, 2].max(), den[:, :2].min()
    assert low < high
    assert_fd(x, empty, denominator_floor=0.5 * (low + high), **kw)


def test_reference_two_levels_of_dice():
    """docs/math.md "Gradient with respect to probabilities": c_k = N_k/(K·D_k²) on background,
    c_k − a_k = (N_k − 2·D_k)/(K·D_k²) on foreground, from sums computed here by plain loops."""
    rng = np.random.default_rng(5)
    x = make_input(rng, "none", b=1).astype(np.float64)
    labels = make_labels(rng, 1, C, SPATIAL)
    grad = reference_gradient(x, labels)
    flat = labels.reshape(-1)
    K = C
    for k in range(C):
        sk = x[0, k].reshape(-1)
        gk = (flat == k)
        I = sum(float(v) for v, m in zip(sk, gk) if m)
        S = sum(float(v) for v in sk)
        G = float(gk.sum())
        Nk, Dk = 2 * I + 1e-5, S + G + 1e-5
        levels = np.where(gk, (Nk - 2 * Dk) / (K * Dk**2), Nk / (K * Dk**2))
        np.testing.assert_allclose(grad[0, k].reshape(-1), levels, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# The package against the closed forms
# --------------------------------------------------------------------------------------------

def _check(x, labels, **kw):
    got = call(x, labels, **kw)
    ref = reference_gradient(x, labels, **kw)
    assert_matches(got, ref, what=repr(kw))
    return got


@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", SUM_FAMILIES)
def test_family_defaults(loss, activation, batch, include_background):
    seed = 1000 + SUM_FAMILIES.index(loss) * 13 + ACTIVATIONS.index(activation) * 4 + 2 * batch + include_background
    rng = np.random.default_rng(seed)
    x = make_input(rng, activation)
    labels = make_labels(rng, B, C, SPATIAL)
    _check(x, labels, loss=loss, activation=activation, batch=batch, include_background=include_background)


@pytest.mark.parametrize("batch", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", SUM_FAMILIES)
def test_family_options(loss, activation, batch):
    """Every option the family reads, at non-default values, background left out."""
    rng = np.random.default_rng(2000 + SUM_FAMILIES.index(loss) * 7 + ACTIVATIONS.index(activation) * 2 + batch)
    x = make_input(rng, activation)
    labels = make_labels(rng, B, C, SPATIAL)
    kw = family_options(loss, activation, C)
    if loss == "dice+ce" and not batch:
        # weighted cross-entropy per sample is tested on its own below
        kw.pop("weight", None)
    _check(x, labels, loss=loss, activation=activation, batch=batch, include_background=False, **kw)


@pytest.mark.parametrize("w_type", ["square", "simple", "uniform"])
@pytest.mark.parametrize("batch", [False, True])
def test_generalized_dice_weight_types(w_type, batch):
    rng = np.random.default_rng(31)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    _check(x, labels, loss="generalized-dice", activation="softmax", w_type=w_type, batch=batch)


@pytest.mark.parametrize("alpha,beta", [(0.5, 0.5), (0.3, 0.7), (0.9, 0.1), (1.0, 1.0)])
def test_tversky_alpha_beta(alpha, beta):
    rng = np.random.default_rng(32)
    x = make_input(rng, "sigmoid")
    labels = make_labels(rng, B, C, SPATIAL)
    _check(x, labels, loss="tversky", activation="sigmoid", alpha=alpha, beta=beta)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_cross_entropy(activation):
    """Cross-entropy alone: the mean over every voxel of the mini-batch (no pooling option)."""
    rng = np.random.default_rng(40 + ACTIVATIONS.index(activation))
    x = make_input(rng, activation)
    labels = make_labels(rng, B, C, SPATIAL)
    _check(x, labels, loss="ce", activation=activation)
    _check(x, labels, loss="ce", activation=activation, loss_weight=0.25)
    # (class weights: test_weighted_cross_entropy_is_the_mean_over_the_mini_batch)


def test_cross_entropy_refuses_pooling():
    """docs/math.md "The loss of a mini-batch": `--batch-dice` is refused for `--loss ce`."""
    rng = np.random.default_rng(41)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    with pytest.raises(Exception):
        call(x, labels, loss="ce", activation="softmax", batch=True)


@pytest.mark.parametrize("loss", ["ce", "dice+ce"])
@pytest.mark.parametrize("activation", ["none", "softmax"])
def test_weighted_cross_entropy_is_the_mean_over_the_mini_batch(loss, activation):
    """With class weights and batch=False the cross-entropy stays torch's CrossEntropyLoss(weight)
    of the whole mini-batch: Σ_{b,i} w_y·(−log s_y) / Σ_{b,i} w_y (one W over all samples, as
    MONAI's DiceCELoss(batch=False) computes it), not the mean of each sample's weighted mean.
    The samples' class counts differ a lot, so the two readings differ."""
    rng = np.random.default_rng(42)
    x = make_input(rng, activation)
    labels = make_labels(rng, B, C, SPATIAL)
    labels[0].reshape(-1)[C:] = 0
    labels[1].reshape(-1)[C:40] = 2
    _check(x, labels, loss=loss, activation=activation, weight=[0.2, 1.0, 3.0], batch=False)


@pytest.mark.parametrize("loss", ["dice", "jaccard", "dice+ce"])
def test_weights_with_background_left_out(loss):
    """One weight per channel 0..C−1; without background the first is not used by the Dice part
    (but is by the cross-entropy)."""
    rng = np.random.default_rng(43)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    _check(x, labels, loss=loss, activation="softmax", include_background=False, weight=[7.0, 2.0, 0.5],
           batch=True)


# ----------------------------------------------------------------- shapes and dtypes


@pytest.mark.parametrize("activation", ["none", "sigmoid"])
@pytest.mark.parametrize("loss", ["dice", "jaccard", "squared-dice", "generalized-dice", "tversky", "log-cosh-dice",
                                  "mimic", "dice+ce", "ce"])
@pytest.mark.parametrize("batch", [False, True])
def test_binary_input(loss, activation, batch):
    """(B, *spatial) input = one foreground channel; labels 0/1; g = 1 where the label is 1."""
    if loss == "ce" and batch:
        pytest.skip("cross-entropy has no sums to pool")
    rng = np.random.default_rng(50)
    x = make_input(rng, activation, c=1)[:, 0]  # (B, X, Y, Z)
    labels = rng.integers(0, 2, size=(B, *SPATIAL))
    labels.reshape(B, -1)[:, :2] = [0, 1]
    kw = dict(loss=loss, activation=activation)
    if loss != "ce":
        kw["batch"] = batch
    ref = reference_gradient(x[:, None], labels, **kw)[:, 0]
    got = call(x, labels, spatial_dims=3, **kw)
    assert_matches(got, ref, what=f"binary {kw}")
    # a target of the input's shape reads two ways: without spatial_dims it is refused
    with pytest.raises(ValueError, match="spatial_dims=3"):
        call(x, labels, **kw)


def test_binary_labels_with_a_channel_axis_and_background_flag():
    """(B, 1, *spatial) labels for a binary input; leaving out the background does not apply to a
    single channel (docs/math.md: "a single channel is always used")."""
    rng = np.random.default_rng(51)
    x = make_input(rng, "sigmoid", c=1)[:, 0]
    labels = rng.integers(0, 2, size=(B, *SPATIAL))
    ref = reference_gradient(x[:, None], labels, activation="sigmoid")[:, 0]
    assert_matches(call(x, labels[:, None], activation="sigmoid"), ref)
    assert_matches(call(x, labels, activation="sigmoid", include_background=False, spatial_dims=3), ref)


def test_binary_label_value():
    """`label=K`: for a single-channel prediction g = 1 where the label is K."""
    rng = np.random.default_rng(52)
    x = make_input(rng, "none", c=1)[:, 0]
    labels = rng.integers(0, 3, size=(B, *SPATIAL))
    ref = reference_gradient(x[:, None], labels, label=2)[:, 0]
    assert_matches(call(x, labels, label=2, spatial_dims=3), ref)
    ref1 = reference_gradient(x[:, None], labels, label=1)[:, 0]
    assert not np.allclose(ref, ref1)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch", [False, True])
def test_two_dimensional(activation, batch):
    """(B, C, H, W) with labels (B, H, W)."""
    rng = np.random.default_rng(60)
    x = make_input(rng, activation, spatial=(6, 5))
    labels = make_labels(rng, B, C, (6, 5))
    got = _check(x, labels, loss="dice+ce", activation=activation, batch=batch, include_background=False)
    assert got.shape == (B, C, 6, 5)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_one_dimensional(activation):
    rng = np.random.default_rng(61)
    x = make_input(rng, activation, spatial=(17,))
    labels = make_labels(rng, B, C, (17,))
    _check(x, labels, activation=activation, loss="jaccard")


def test_four_samples_and_more_channels():
    rng = np.random.default_rng(62)
    x = make_input(rng, "softmax", b=4, c=5, spatial=(6, 5, 4))
    labels = make_labels(rng, 4, 5, (6, 5, 4))
    for batch in (False, True):
        _check(x, labels, activation="softmax", batch=batch, include_background=False)
        _check(x, labels, loss="generalized-dice", activation="softmax", batch=batch)


@pytest.mark.parametrize("activation", ["none", "softmax"])
def test_label_forms_agree(activation):
    """Labels (B, *spatial), (B, 1, *spatial) and a one-hot target (B, C, *spatial) (bool, float or
    integer) give the same gradient, the closed form of the labels."""
    rng = np.random.default_rng(70)
    x = make_input(rng, activation)
    labels = make_labels(rng, B, C, SPATIAL)
    kw = dict(loss="dice+ce", activation=activation, include_background=False)
    ref = reference_gradient(x, labels, **kw)
    hot = (labels[:, None] == np.arange(C)[None, :, None, None, None])
    base = call(x, labels, **kw)
    assert_matches(base, ref)
    for target in (labels[:, None], hot, hot.astype(np.float32), hot.astype(np.uint8), labels.astype(np.uint8),
                   labels.astype(np.int32)):
        got = call(x, target, **kw)
        assert_matches(got, ref, what=f"target {target.dtype} {target.shape}")
        np.testing.assert_array_equal(got, base)


def test_one_hot_target_in_two_dimensions():
    """A 2-D one-hot target has the input's shape; spatial_dims=2 says which reading is meant."""
    rng = np.random.default_rng(71)
    x = make_input(rng, "softmax", spatial=(6, 5))
    labels = make_labels(rng, B, C, (6, 5))
    hot = (labels[:, None] == np.arange(C)[None, :, None, None]).astype(np.float32)
    ref = reference_gradient(x, labels, activation="softmax")
    assert_matches(call(x, hot, activation="softmax", spatial_dims=2), ref)
    with pytest.raises(ValueError, match="spatial_dims=2"):
        call(x, hot, activation="softmax")


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("activation", ["none", "softmax"])
def test_input_dtypes(dtype, activation):
    """float16 and float64 inputs: the gradient of the input cast to float32."""
    rng = np.random.default_rng(80)
    z = rng.normal(size=(B, C, *SPATIAL)) * 3.0
    x = activate(z, "softmax") if activation == "none" else z
    x = x.astype(dtype)
    if dtype == np.float64:
        assert np.any(x.astype(np.float32).astype(np.float64) != x)  # rounding to float32 matters
    labels = make_labels(rng, B, C, SPATIAL)
    kw = dict(activation=activation, loss="squared-dice")
    got = call(x, labels, **kw)
    assert_matches(got, reference_gradient(x.astype(np.float32), labels, **kw))
    np.testing.assert_array_equal(got, call(x.astype(np.float32), labels, **kw))


def test_output_is_a_new_float32_array_of_the_input_shape():
    rng = np.random.default_rng(81)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    before = x.copy()
    got = call(x, labels, activation="softmax")
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_array_equal(x, before)  # the input is not modified


def test_non_contiguous_input():
    """A transposed (non C-contiguous) view gives the gradient of its values."""
    rng = np.random.default_rng(82)
    base = make_logits(rng, B, C, SPATIAL[::-1])
    x = np.transpose(base, (0, 1, 4, 3, 2))
    assert not x.flags["C_CONTIGUOUS"]
    labels = make_labels(rng, B, C, SPATIAL)
    _check(x, labels, activation="softmax")


# ----------------------------------------------------------------- presets


@pytest.mark.parametrize("batch", [None, False, True])
def test_preset_monai(batch):
    """`monai`: dice, no activation, ε_nr = ε_dr = 1e-5, background included (MONAI DiceLoss())."""
    rng = np.random.default_rng(90)
    x = make_input(rng, "none")
    labels = make_labels(rng, B, C, SPATIAL)
    got = _check(x, labels, preset="monai", batch=batch)
    # the same as the defaults, written out
    ref = reference_gradient(x, labels, loss="dice", activation="none", smooth_nr=1e-5, smooth_dr=1e-5,
                             include_background=True, batch=bool(batch))
    assert_matches(got, ref)


@pytest.mark.parametrize("activation", ["none", "sigmoid", "softmax"])
@pytest.mark.parametrize("channels", [1, 3])
def test_preset_monai_dice_ce(activation, channels):
    """MONAI's DiceCELoss: its cross-entropy takes the values as given (softmax cross-entropy for
    C ≥ 2, BCE with logits for C = 1) whatever the Dice part's activation (docs/math.md, "Where
    this differs from MONAI, and `--preset monai`")."""
    if activation == "softmax" and channels == 1:
        pytest.skip("softmax needs two channels")
    rng = np.random.default_rng(91)
    x = make_input(rng, activation, c=channels)
    if channels == 1:
        labels = rng.integers(0, 2, size=(B, *SPATIAL))
        got = call(x[:, 0], labels, preset="monai", loss="dice+ce", activation=activation, spatial_dims=3)
        ref = reference_gradient(x, labels, preset="monai", loss="dice+ce", activation=activation)[:, 0]
        assert_matches(got, ref)
        plain = reference_gradient(x, labels, loss="dice+ce", activation=activation)[:, 0]
    else:
        labels = make_labels(rng, B, C, SPATIAL)
        got = _check(x, labels, preset="monai", loss="dice+ce", activation=activation)
        plain = reference_gradient(x, labels, loss="dice+ce", activation=activation)
        _check(x, labels, preset="monai", loss="dice+ce", activation=activation, lambda_dice=0.3, lambda_ce=2.0,
               include_background=False, batch=True)
    if activation == "softmax" or (activation == "sigmoid" and channels == 1):
        np.testing.assert_allclose(got, plain, rtol=0, atol=1e-6 * np.abs(plain).max())
    else:
        assert np.abs(got - plain).max() > 1e-3 * np.abs(plain).max()  # the quirk does change it


def test_preset_monai_dice_ce_weights():
    rng = np.random.default_rng(92)
    x = make_input(rng, "none")
    labels = make_labels(rng, B, C, SPATIAL)
    _check(x, labels, preset="monai", loss="dice+ce", weight=[1.0, 2.0, 0.5], batch=True)


@pytest.mark.parametrize("batch", [None, False, True])
@pytest.mark.parametrize("loss_weight", [None, 1.0, 4.0 / 7.0])
def test_preset_nnunet(batch, loss_weight):
    """`nnunet`: dice+ce through softmax, Dice over the foreground channels, ε = 1e-5 in numerator
    and denominator, denominator clipped at 1e-8, −Dice (same gradient), CE over all channels,
    loss weight 8/15 unless given; the Dice sums pooled over the mini-batch unless batch=False."""
    rng = np.random.default_rng(93)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    got = _check(x, labels, preset="nnunet", batch=batch, loss_weight=loss_weight)
    # written out in full
    ref = reference_gradient(
        x, labels, loss="dice+ce", activation="softmax", include_background=False, smooth_nr=1e-5, smooth_dr=1e-5,
        denominator_floor=1e-8, dice_form="negative", lambda_dice=1.0, lambda_ce=1.0,
        loss_weight=NNUNET_LOSS_WEIGHT if loss_weight is None else loss_weight,
        batch=True if batch is None else batch)
    assert_matches(got, ref)


def test_preset_nnunet_2d_and_overrides():
    rng = np.random.default_rng(94)
    x = make_input(rng, "softmax", b=3, c=4, spatial=(7, 6))
    labels = make_labels(rng, 3, 4, (7, 6))
    _check(x, labels, preset="nnunet")
    _check(x, labels, preset="nnunet", include_background=True, lambda_ce=0.5, batch=False)
    _check(x, labels, preset="nnunet", weight=[1.0, 2.0, 3.0, 0.5])


@pytest.mark.parametrize("batch", [None, False])
def test_preset_smp(batch):
    """`smp`: softmax, smooth 0, denominator clamp_min(1e-7), empty channels contribute 0 but count
    in the mean, background included, pooled over the batch (unless batch=False)."""
    rng = np.random.default_rng(95)
    x = make_input(rng, "softmax", c=4)
    labels = make_labels(rng, B, 3, SPATIAL)  # class 3 absent from the mini-batch
    got = _check(x, labels, preset="smp", batch=batch)
    # written out in full
    ref = reference_gradient(x, labels, loss="dice", activation="softmax", smooth_nr=0.0, smooth_dr=0.0,
                             denominator_floor=1e-7, skip_empty=True, include_background=True,
                             batch=True if batch is None else batch)
    assert_matches(got, ref)
    # the empty class has no Dice term: its coefficients are 0 (through the softmax its channel
    # still moves with the others)
    s = activate(x.astype(np.float64).reshape(B, 4, -1), "softmax")
    I, S, Q, G = _sums(s, one_hot(labels.reshape(B, -1), 4))
    _, P, R, T = sum_part(I.sum(0), S.sum(0), Q.sum(0), G.sum(0), resolve(4, preset="smp"))
    assert P[3] == 0 and R[3] == 0 and T[3] == 0 and P[0] != 0


def test_preset_smp_binary():
    """A one-channel prediction: binary mode, sigmoid."""
    rng = np.random.default_rng(96)
    x = make_input(rng, "sigmoid", c=1)
    labels = rng.integers(0, 2, size=(B, *SPATIAL))
    got = call(x[:, 0], labels, preset="smp", spatial_dims=3)
    assert_matches(got, reference_gradient(x, labels, preset="smp")[:, 0])
    assert_matches(got, reference_gradient(x, labels, activation="sigmoid", smooth_nr=0.0, smooth_dr=0.0,
                                           denominator_floor=1e-7, skip_empty=True, batch=True)[:, 0])


@pytest.mark.parametrize("batch", [None, True])
def test_preset_kervadec(batch):
    """`kervadec`: dice on softmax probabilities, ε = 1e-10, all classes."""
    rng = np.random.default_rng(97)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    got = _check(x, labels, preset="kervadec", batch=batch)
    assert_matches(got, reference_gradient(x, labels, activation="softmax", smooth_nr=1e-10, smooth_dr=1e-10,
                                           batch=bool(batch)))


# ----------------------------------------------------------------- options and edge cases


def test_empty_class_monai_defaults():
    """docs/math.md "Edge cases": an empty class that is not predicted has N = ε_nr, D = ε_dr and a
    gradient ε_nr/(K·ε_dr²) on every voxel (here over B samples: /B)."""
    rng = np.random.default_rng(100)
    x = make_input(rng, "none")
    labels = make_labels(rng, B, 2, SPATIAL)  # class 2 absent
    x[:, 2] = 0.0
    got = _check(x, labels)
    # the other channels are nine orders of magnitude smaller: checked on their own scale
    assert_matches(got[:, :2], reference_gradient(x, labels)[:, :2])
    level = 1e-5 / (C * 1e-5**2) / B
    np.testing.assert_allclose(got[:, 2], np.float32(level), rtol=1e-6)


def test_empty_class_without_numerator_smoothing():
    """ε_nr = 0 and an empty class never predicted: its gradient is exactly 0."""
    rng = np.random.default_rng(101)
    x = make_input(rng, "none")
    labels = make_labels(rng, B, 2, SPATIAL)
    x[:, 2] = 0.0
    got = _check(x, labels, smooth_nr=0.0)
    assert np.all(got[:, 2] == 0)


@pytest.mark.parametrize("batch", [False, True])
def test_generalized_dice_empty_class_weight(batch):
    """An infinite ω (a class absent from a sample's, or the pooled, ground truth) is replaced by
    the largest finite ω of the case."""
    rng = np.random.default_rng(102)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    labels[0][labels[0] == 2] = 1  # class 2 absent from sample 0
    if batch:
        labels[1][labels[1] == 2] = 0  # and from the whole mini-batch
    for w_type in ("square", "simple"):
        _check(x, labels, loss="generalized-dice", activation="softmax", batch=batch, w_type=w_type)


@pytest.mark.parametrize("loss", ["dice", "tversky", "log-cosh-dice", "dice+ce"])
def test_dice_form_negative_has_the_same_gradient(loss):
    rng = np.random.default_rng(103)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    kw = dict(loss=loss, activation="softmax")
    a = _check(x, labels, dice_form="negative", **kw)
    if loss != "log-cosh-dice":  # ln cosh of −Dice is another function: only its own closed form
        np.testing.assert_array_equal(a, call(x, labels, dice_form="one_minus", **kw))


@pytest.mark.parametrize("activation", ["none", "softmax"])
def test_denominator_floor(activation):
    """Where Den < floor the denominator is the constant floor (∂f/∂X = 0); above it no change."""
    rng = np.random.default_rng(104)
    x = make_input(rng, activation)
    labels = make_labels(rng, B, C, SPATIAL)
    # every denominator (at most 2·60 + ε) below the floor
    got = _check(x, labels, activation=activation, denominator_floor=1000.0)
    # two-valued with R = 0 without activation: −2w/(K·floor·B) on foreground, 0 on background
    if activation == "none":
        hot = labels[:, None] == np.arange(C)[None, :, None, None, None]
        np.testing.assert_allclose(got, np.where(hot, -2.0 / (C * 1000.0 * B), 0.0), rtol=1e-6, atol=0)
    # a floor under every denominator changes nothing
    np.testing.assert_array_equal(call(x, labels, activation=activation, denominator_floor=1e-3),
                                  call(x, labels, activation=activation))
    # a floor between the denominators of a mini-batch's classes
    labels2 = labels.copy()
    labels2[labels2 == 2] = 1
    x2 = x.copy()
    if activation == "none":
        x2[:, 2] *= 0.01
    _check(x2, labels2, activation=activation, denominator_floor=1.0, smooth_nr=0.0, smooth_dr=0.0)


@pytest.mark.parametrize("batch", [False, True])
def test_skip_empty(batch):
    rng = np.random.default_rng(105)
    x = make_input(rng, "softmax")
    labels = make_labels(rng, B, C, SPATIAL)
    labels[0][labels[0] == 2] = 0  # class 2 absent from sample 0 (per sample: its term is 0)
    _check(x, labels, activation="softmax", skip_empty=True, batch=batch)
    _check(x, labels, activation="softmax", skip_empty=True, smooth_nr=0.0, smooth_dr=0.0, batch=batch)


def test_force_activation_on_probability_like_values():
    """Values in [0, 1] are refused as logits unless force_activation=True; then the closed form
    of those values taken as logits."""
    rng = np.random.default_rng(106)
    x = make_input(rng, "none")
    labels = make_labels(rng, B, C, SPATIAL)
    with pytest.raises(Exception):
        call(x, labels, activation="softmax")
    _check(x, labels, activation="softmax", force_activation=True)
    _check(x, labels, activation="sigmoid", force_activation=True)


def test_threads_give_the_same_bits():
    rng = np.random.default_rng(107)
    x = make_input(rng, "softmax", b=3, c=4, spatial=(9, 8, 7))
    labels = make_labels(rng, 3, 4, (9, 8, 7))
    one = call(x, labels, activation="softmax", loss="dice+ce", threads=1)
    two = call(x, labels, activation="softmax", loss="dice+ce", threads=2)
    np.testing.assert_array_equal(one, two)
    assert_matches(one, reference_gradient(x, labels, activation="softmax", loss="dice+ce"))


@pytest.mark.parametrize("loss", ["mimic", "log-cosh-dice"])
@pytest.mark.parametrize("batch", [False, True])
def test_mini_batch_reductions_of_special_families(loss, batch):
    """mimic pooled: the sum over the whole mini-batch (gradient −w·g, no 1/B); per sample: the
    mean (−w·g/B). log-cosh per sample: the mean of ln cosh of each sample's Dice loss."""
    rng = np.random.default_rng(108)
    x = make_input(rng, "none")
    labels = make_labels(rng, B, C, SPATIAL)
    got = _check(x, labels, loss=loss, batch=batch)
    if loss == "mimic":
        hot = labels[:, None] == np.arange(C)[None, :, None, None, None]
        np.testing.assert_array_equal(got, np.where(hot, np.float32(-1.0 if batch else -1.0 / B), np.float32(0)))


def test_per_sample_mean_is_the_mean_of_single_samples():
    """batch=False: sample b's gradient is its own loss's gradient divided by B (checked against the
    closed form of each sample alone)."""
    rng = np.random.default_rng(109)
    x = make_input(rng, "softmax", b=3)
    labels = make_labels(rng, 3, C, SPATIAL)
    got = call(x, labels, activation="softmax", loss="tversky", alpha=0.2, beta=0.8)
    for b in range(3):
        alone = reference_gradient(x[b:b + 1], labels[b:b + 1], activation="softmax", loss="tversky", alpha=0.2,
                                   beta=0.8)
        assert_matches(got[b:b + 1], alone / 3)


def test_pooled_is_one_case_of_the_samples_side_by_side():
    """batch=True: the gradient of one case made of the samples laid side by side (without
    cross-entropy, whose mean is over the voxels either way)."""
    rng = np.random.default_rng(110)
    x = make_input(rng, "sigmoid")
    labels = make_labels(rng, B, C, SPATIAL)
    got = call(x, labels, activation="sigmoid", loss="jaccard", batch=True)
    side = np.concatenate(list(x), axis=1)[None]  # (1, C, 2·X, Y, Z)
    side_labels = np.concatenate(list(labels), axis=0)[None]
    ref = reference_gradient(side, side_labels, activation="sigmoid", loss="jaccard")[0]
    ref = np.stack(np.split(ref, B, axis=1))
    assert_matches(got, ref)
