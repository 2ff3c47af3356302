#!/usr/bin/env python3
"""Does mimic supervision train like Dice? A rerunnable experiment.

With respect to the probabilities, the soft Dice loss has the gradient dL/ds = -a_k*g + c_k per
class k, a_k = 2/(K*D_k), D_k = S_k + G_k + eps (Kervadec & de Bruijne 2023, "On the dice loss
gradient and the ways to mimic it"). The "mimic" loss -sum_k w_k * sum_i s_ki*g_ki, the network's
output times a negative of the ground truth, has the gradient -w_k*g: with w_k = a_k it is Dice's
ground-truth part without the constant c_k.

This script trains one small 2-D U-Net on the axial slices of one volume pair, once per loss:

  dice           MONAI DiceLoss(softmax=True, to_onehot_y=True): mean over classes and samples
  mimic-weighted -sum_k a_k * sum s*g, a_k = 2/(K*D_k) from the mini-batch's sums, recomputed on
                 every mini-batch with no gradient through them (the ground-truth part of batch
                 Dice's gradient)
  mimic          -sum_k sum s*g / (voxels of the mini-batch): no class weights
  ce             torch CrossEntropyLoss

and, on request (--losses), two that tell the weights' pooling from the constant c_k apart:

  dice-batch     MONAI DiceLoss(softmax=True, to_onehot_y=True, batch=True): Dice of the
                 mini-batch's sums, whose ground-truth part mimic-weighted is exactly
  mimic-sample   -sum_b sum_k a_bk * sum s*g, a_bk = 2/(B*K*D_bk) from each sample's sums: exactly
                 the ground-truth part of the default (per-sample) Dice

with the same initial network (seed), optimiser (Adam) and mini-batches, and logs the hard Dice
per class on held-out slices over the steps: a CSV and an SVG plot (no plotting library needed).

The default pair comes with nilearn: the MNI152 2009a T1 template and 4 tissue classes made from
nilearn's own grey- and white-matter maps and brain mask (0 outside the brain, 1 CSF and the rest
of the brain, 2 grey matter, 3 white matter). Nothing is downloaded. Give --image and --labels to
run on your own pair (labels 0..K-1, same grid; axial = the third axis).

    python -m venv venv && venv/bin/pip install torch monai nilearn nibabel
    venv/bin/python examples/mimic_training.py --out mimic-run

docs/mimic.md shows and reads the results of the default run. With the dicegrad Python package
installed, the script also checks its weights against dicegrad.mimic_weights on the first
mini-batch.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

LOSSES = ("dice", "mimic-weighted", "mimic", "ce")
EXTRA = ("dice-batch", "mimic-sample")
TISSUES = ("background", "CSF and other brain", "grey matter", "white matter")


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image", help="a 3-D NIfTI image (default: nilearn's MNI152 T1 template)")
    p.add_argument("--labels", help="its 3-D NIfTI label map, values 0..K-1 (default: nilearn's tissues)")
    p.add_argument("--out", default="mimic-training", help="output folder (default: %(default)s)")
    p.add_argument("--losses", default=",".join(LOSSES), help="comma-separated, of " + ", ".join(LOSSES + EXTRA))
    p.add_argument("--steps", type=int, default=400, help="optimiser steps per loss (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="slices per mini-batch (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: %(default)s)")
    p.add_argument("--eval-every", type=int, default=10, help="validate every N steps (default: %(default)s)")
    p.add_argument("--downsample", type=int, default=2, help="in-plane factor (default: %(default)s; 1 = none)")
    p.add_argument("--holdout", type=int, default=4, help="every Nth slice is held out (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="network and mini-batches (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default: %(default)s)")
    a = p.parse_args()
    a.losses = [x.strip() for x in a.losses.split(",") if x.strip()]
    bad = [x for x in a.losses if x not in LOSSES + EXTRA]
    if bad or not a.losses or len(set(a.losses)) != len(a.losses):
        p.error(f"--losses: unknown or repeated {bad or a.losses}; choose from {', '.join(LOSSES + EXTRA)}")
    if (a.image is None) != (a.labels is None):
        p.error("give both --image and --labels, or neither (the default pair)")
    for name in ("steps", "batch_size", "eval_every", "downsample", "holdout", "threads"):
        if getattr(a, name) < 1 or (name == "holdout" and a.holdout < 2):
            p.error(f"--{name.replace('_', '-')} must be at least {2 if name == 'holdout' else 1}")
    if not a.lr > 0:
        p.error("--lr must be positive")
    for name in ("image", "labels"):
        path = getattr(a, name)
        if path is not None and not os.path.isfile(path):
            p.error(f"--{name} {path}: no such file")
    if os.path.exists(a.out) and not os.path.isdir(a.out):
        p.error(f"--out {a.out}: exists and is not a folder")
    try:
        torch.zeros(1, device=a.device)
    except Exception as e:  # torch raises several kinds for devices it lacks
        p.error(f"--device {a.device}: {str(e).splitlines()[0]}")
    return a


def default_pair() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """nilearn's MNI152 T1 and the 4 tissue classes made from its own maps (nothing downloaded)."""
    try:
        from nilearn import datasets
    except ImportError:
        sys.exit("the default pair needs nilearn: pip install nilearn (or give --image and --labels)")
    t1 = nib.load(datasets.MNI152_FILE_PATH)
    gm = nib.load(datasets.GM_MNI152_FILE_PATH).get_fdata() / 255.0
    wm = nib.load(datasets.WM_MNI152_FILE_PATH).get_fdata() / 255.0
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata() > 0
    rest = np.clip(1.0 - gm - wm, 0.0, 1.0)
    tissue = np.argmax(np.stack([rest, gm, wm]), axis=0) + 1
    labels = np.where(brain, tissue, 0).astype(np.int64)
    return t1.get_fdata(dtype=np.float32), labels, list(TISSUES), "nilearn MNI152 2009a T1 + tissue classes"


def load_pair(a: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    if a.image is None:
        return default_pair()
    try:
        img, lab = nib.load(a.image), nib.load(a.labels)
        image = np.asanyarray(img.dataobj).astype(np.float32)
        labels = np.asanyarray(lab.dataobj)
    except Exception as e:  # nibabel's errors for files it cannot read
        sys.exit(f"cannot read the pair: {e}")
    if image.ndim != 3 or labels.shape != image.shape:
        sys.exit(f"{a.image} {image.shape} and {a.labels} {labels.shape}: give a 3-D image and labels on its grid")
    if not np.allclose(img.affine, lab.affine, atol=1e-3):
        sys.exit(f"{a.image} and {a.labels} have different affines: give labels on the image's grid")
    if not np.all(np.isfinite(image)):
        sys.exit(f"{a.image}: holds NaN or infinite values")
    if not np.all(labels == np.round(labels)) or labels.min() < 0:
        sys.exit(f"{a.labels}: labels must be whole numbers 0..K-1")
    labels = labels.astype(np.int64)
    values = np.unique(labels)
    k = int(values[-1]) + 1
    if k < 2:
        sys.exit(f"{a.labels}: holds only label 0; there is nothing to segment")
    if len(values) != k:
        shown = ", ".join(str(v) for v in values[:12]) + (", ..." if len(values) > 12 else "")
        sys.exit(f"{a.labels}: holds the values {shown}; give labels 0..K-1, each of them present (one channel "
                 "per value: a mask of 0 and 255 is 0 and 1)")  # fmt: skip
    return image, labels, [f"class {c}" for c in range(k)], f"{a.image} + {a.labels}"


def slices(image: np.ndarray, labels: np.ndarray, f: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Axial slices with foreground, the image averaged and the labels sampled over f x f pixels,
    padded to a multiple of 8 (the U-Net halves them three times)."""
    keep = [z for z in range(image.shape[2]) if labels[:, :, z].any()]
    img = torch.from_numpy(np.ascontiguousarray(image[:, :, keep].transpose(2, 0, 1)))[:, None]
    lab = torch.from_numpy(np.ascontiguousarray(labels[:, :, keep].transpose(2, 0, 1)))
    if f > 1:
        h, w = (img.shape[2] // f) * f, (img.shape[3] // f) * f
        img = F.avg_pool2d(img[:, :, :h, :w], f)
        lab = lab[:, f // 2 : h : f, f // 2 : w : f]
    img = (img - img.mean()) / img.std().clamp_min(1e-6)
    ph, pw = (-img.shape[2]) % 8, (-img.shape[3]) % 8
    img = F.pad(img, (0, pw, 0, ph), value=float(img.min()))
    lab = F.pad(lab, (0, pw, 0, ph), value=0)
    return img.contiguous(), lab.contiguous()


def mimic_weights(probs: torch.Tensor, onehot: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """a_k = 2/(K*D_k), D_k = S_k + G_k + eps over the mini-batch: the weight of the ground truth in
    the gradient of Dice of the mini-batch's sums. Not differentiated."""
    with torch.no_grad():
        dims = [0] + list(range(2, probs.ndim))
        d = probs.sum(dims) + onehot.sum(dims) + eps
        return 2.0 / (probs.shape[1] * d)


def sample_weights(probs: torch.Tensor, onehot: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """a_bk = 2/(B*K*D_bk), D_bk = S_bk + G_bk + eps of each sample: the weight of the ground truth
    in the gradient of the mean over samples of their Dice. Not differentiated."""
    with torch.no_grad():
        dims = list(range(2, probs.ndim))
        d = probs.sum(dims) + onehot.sum(dims) + eps
        return 2.0 / (probs.shape[0] * probs.shape[1] * d)


def loss_function(name: str, k: int):
    from monai.losses import DiceLoss

    dice = DiceLoss(softmax=True, to_onehot_y=True)
    dice_batch = DiceLoss(softmax=True, to_onehot_y=True, batch=True)
    ce = torch.nn.CrossEntropyLoss()

    def fn(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if name == "dice":
            return dice(logits, target[:, None]), None
        if name == "dice-batch":
            return dice_batch(logits, target[:, None]), None
        if name == "ce":
            return ce(logits, target), None
        probs = logits.softmax(1)
        onehot = F.one_hot(target, k).movedim(-1, 1).to(probs.dtype)
        if name == "mimic":
            return -(probs * onehot).sum() / target.numel(), None
        if name == "mimic-sample":
            a = sample_weights(probs, onehot)
            present = onehot.sum((2, 3)) > 0  # the weights of the classes each sample holds
            return -(a[:, :, None, None] * probs * onehot).sum(), (a * present).sum(0)
        a = mimic_weights(probs, onehot)
        return -(a[None, :, None, None] * probs * onehot).sum(), a * (onehot.sum((0, 2, 3)) > 0)

    return fn


def hard_scores(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> list[tuple[float, float, float]]:
    """(Dice, precision, recall) of the argmax per class, counts pooled over the held-out slices
    (Dice 1 when a class is in neither; precision 1 when nothing is predicted, recall 1 when nothing
    is true)."""
    net.eval()
    inter, pred, true = torch.zeros(k), torch.zeros(k), torch.zeros(k)
    with torch.no_grad():
        for i in range(0, len(x), 32):
            p = net(x[i : i + 32]).argmax(1).cpu()
            t = y[i : i + 32].cpu()
            for c in range(k):
                pc, tc = p == c, t == c
                inter[c] += (pc & tc).sum()
                pred[c] += pc.sum()
                true[c] += tc.sum()
    net.train()

    def ratio(a: torch.Tensor, b: torch.Tensor) -> float:
        return 1.0 if b == 0 else float(a / b)

    return [(ratio(2 * inter[c], pred[c] + true[c]), ratio(inter[c], pred[c]), ratio(inter[c], true[c])) for c in range(k)]


def network(k: int, seed: int) -> torch.nn.Module:
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    return UNet(spatial_dims=2, in_channels=1, out_channels=k, channels=(16, 32, 64, 128), strides=(2, 2, 2),
                num_res_units=1)  # fmt: skip


def check_against_dicegrad(x, y, k, seed, device) -> str:
    """The weights of the first mini-batch against dicegrad's (when its package is installed)."""
    try:
        import dicegrad
    except ImportError:
        return "dicegrad's Python package is not installed: weights not cross-checked"
    net = network(k, seed).to(device)
    with torch.no_grad():
        probs = net(x).softmax(1)
    ours = mimic_weights(probs, F.one_hot(y, k).movedim(-1, 1).to(probs.dtype)).double().cpu().numpy()
    theirs = dicegrad.mimic_weights(probs.cpu(), y.cpu(), batch=True, raw=True)
    err = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
    return f"a_k of the first mini-batch agree with dicegrad {dicegrad.__version__}: max relative difference {err:.1e}"


def plot_svg(path: str, rows: list[dict], losses: list[str], names: list[str]) -> None:
    """Validation hard Dice against steps, one panel per class, one line per loss."""
    colours = {"dice": "#1f77b4", "mimic-weighted": "#d62728", "mimic": "#ff7f0e", "ce": "#2ca02c",
               "dice-batch": "#9467bd", "mimic-sample": "#8c564b"}  # fmt: skip
    k = len(names)
    pw, ph, m = 300, 220, 44
    cols = min(k, 4)
    nrows = (k + cols - 1) // cols
    width, height = cols * (pw + m) + m, nrows * (ph + m + 20) + 60
    steps = max(int(r["step"]) for r in rows)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>']  # fmt: skip
    for c in range(k):
        ox = m + (c % cols) * (pw + m)
        oy = 30 + (c // cols) * (ph + m + 20)
        out.append(f'<text x="{ox + pw / 2}" y="{oy - 8}" text-anchor="middle" font-weight="bold">'
                   f"class {c}: {names[c]}</text>")  # fmt: skip
        out.append(f'<rect x="{ox}" y="{oy}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>')
        for t in range(0, 11, 2):
            y = oy + ph - ph * t / 10
            out.append(f'<line x1="{ox}" x2="{ox + pw}" y1="{y}" y2="{y}" stroke="#eee"/>')
            out.append(f'<text x="{ox - 4}" y="{y + 4}" text-anchor="end">{t / 10:.1f}</text>')
        for t in range(0, 5):
            s = steps * t / 4
            out.append(f'<text x="{ox + pw * t / 4}" y="{oy + ph + 14}" text-anchor="middle">{s:.0f}</text>')
        out.append(f'<text x="{ox + pw / 2}" y="{oy + ph + 30}" text-anchor="middle">step</text>')
        for loss in losses:
            pts = [(int(r["step"]), float(r["val_dice"])) for r in rows if r["loss"] == loss and int(r["class"]) == c]
            d = " ".join(f"{ox + pw * s / steps:.1f},{oy + ph - ph * v:.1f}" for s, v in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{colours[loss]}" stroke-width="1.6"/>')
    lx = m
    for loss in losses:
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{height - 22}" y2="{height - 22}" stroke="{colours[loss]}" '
                   f'stroke-width="3"/><text x="{lx + 30}" y="{height - 18}">{loss}</text>')  # fmt: skip
        lx += 140
    out.append(f'<text x="{width - m}" y="{height - 18}" text-anchor="end">held-out hard Dice per class</text>')
    out.append("</svg>\n")
    with open(path, "w") as fh:
        fh.write("\n".join(out))


def main() -> None:
    a = arguments()
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    import monai

    try:
        import nilearn

        nilearn_version = f"nilearn {nilearn.__version__}, "
    except ImportError:
        nilearn_version = ""
    print(f"python {platform.python_version()}, torch {torch.__version__}, monai {monai.__version__}, "
          f"{nilearn_version}nibabel {nib.__version__}, numpy {np.__version__}, device {a.device}, "
          f"{a.threads} threads")  # fmt: skip
    image, labels, names, source = load_pair(a)
    k = len(names)
    if min(image.shape[:2]) // a.downsample < 8:
        sys.exit(f"--downsample {a.downsample}: slices of {image.shape[0]}x{image.shape[1]} would shrink below 8 pixels")
    x, y = slices(image, labels, a.downsample)
    held = torch.arange(len(x)) % a.holdout == 0
    xt, yt, xv, yv = x[~held].to(a.device), y[~held].to(a.device), x[held].to(a.device), y[held].to(a.device)
    share = [float((yt == c).float().mean()) for c in range(k)]
    print(f"{source}: {k} classes, {len(x)} axial slices of {x.shape[2]}x{x.shape[3]} "
          f"({len(xt)} to train, {len(xv)} held out); class shares of the training pixels: "
          + ", ".join(f"{c} {100 * s:.1f}%" for c, s in enumerate(share)))  # fmt: skip
    if len(xt) < a.batch_size or len(xv) == 0:
        sys.exit(f"{len(xt)} training and {len(xv)} held-out slices: too few for --batch-size {a.batch_size}")
    g = torch.Generator().manual_seed(a.seed)
    batches = [torch.randperm(len(xt), generator=g)[: a.batch_size] for _ in range(a.steps)]
    print(check_against_dicegrad(xt[batches[0]], yt[batches[0]], k, a.seed, a.device))
    os.makedirs(a.out, exist_ok=True)
    rows: list[dict] = []
    for name in a.losses:
        net = network(k, a.seed).to(a.device)
        opt = torch.optim.Adam(net.parameters(), lr=a.lr)
        fn = loss_function(name, k)
        start = time.time()
        for step in range(a.steps + 1):
            weights = None
            if step > 0:
                idx = batches[step - 1]
                loss, a_k = fn(net(xt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if a_k is not None:
                    weights = (a_k / a_k.sum()).cpu().tolist()
            if step % a.eval_every == 0 or step == a.steps:
                scores = hard_scores(net, xv, yv, k)
                for c in range(k):
                    dice, precision, recall = scores[c]
                    rows.append({"loss": name, "step": step, "class": c, "name": names[c], "val_dice": dice,
                                 "val_precision": precision, "val_recall": recall,
                                 "train_loss": loss.item() if step else "",
                                 "mimic_weight": weights[c] if weights else ""})  # fmt: skip
        final = [r["val_dice"] for r in rows[-k:]]
        print(f"{name:>15}: {time.time() - start:6.1f} s, held-out hard Dice at step {a.steps}: "
              + ", ".join(f"{c} {d:.3f}" for c, d in enumerate(final)))  # fmt: skip
    path = os.path.join(a.out, "dice_over_steps.csv")
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot_svg(os.path.join(a.out, "dice_over_steps.svg"), rows, a.losses, names)
    print(f"wrote {path} and {os.path.join(a.out, 'dice_over_steps.svg')}")
    if "mimic-weighted" in a.losses and "dice" in a.losses and "dice-batch" not in a.losses:
        print("note: mimic-weighted's a_k come from the mini-batch's pooled sums, the ground-truth part of Dice of "
              "those sums (dice-batch); dice is per sample (its exact mimic is mimic-sample). Add them with "
              "--losses dice,mimic-weighted,mimic,ce,dice-batch,mimic-sample to tell the pooling from the "
              "constant c_k apart")  # fmt: skip


if __name__ == "__main__":
    main()
