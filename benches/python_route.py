#!/usr/bin/env python3
"""The same job done the usual way: nibabel load + numpy closed-form Dice gradient (MONAI DiceLoss
defaults, probabilities) + the statistics dicegrad reports (per channel and side: min, max, mean,
distinct values; fit, dynamic range, float16 loss; a 100-bin histogram). For benches/e2e.sh; never
run in CI.  Usage: python_route.py LABELS PRED
"""
import sys

import nibabel as nib
import numpy as np

lab = np.asarray(nib.load(sys.argv[1]).dataobj).astype(np.int64)
pred = np.asarray(nib.load(sys.argv[2]).dataobj, dtype=np.float32)
if pred.ndim == 3:
    pred, onehot = pred[None], (lab == 1)[None]
else:
    pred = np.moveaxis(pred, 3, 0)
    onehot = lab[None] == np.arange(pred.shape[0])[:, None, None, None]
k = pred.shape[0]
p = pred.reshape(k, -1).astype(np.float64)
g = onehot.reshape(k, -1)
inter = (p * g).sum(1)
den = p.sum(1) + g.sum(1) + 1e-5
num = 2 * inter + 1e-5
grad = ((num[:, None] - 2 * g * den[:, None]) / (k * den[:, None] ** 2)).astype(np.float32)
for c in range(k):
    v, m = grad[c], g[c]
    for side in (v[m], v[~m]):
        if side.size:
            side.min(), side.max(), side.mean(dtype=np.float64), np.unique(side).size
    a = np.abs(v)
    a.max(), a[a > 0].min(), (a < 2 ** -14).mean()
    np.histogram(v, bins=100)
