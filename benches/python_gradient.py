#!/usr/bin/env python3
"""dicegrad.gradient against PyTorch autograd of MONAI's DiceLoss on the CPU, on one mini-batch
(default (2, 4, 128, 128, 128) float32), run by hand where torch and monai are installed (never in
CI). Prints the median time of each over REPEATS runs, their ratio, the largest difference of the
gradients relative to the largest |g|, and the memory dicegrad.gradient adds to the process (peak
resident size over the arrays already held): about the gradient it returns plus one byte per voxel
of labels when the input is read in place.

Usage: python_gradient.py [B C X Y Z] [--repeats N] [--activation softmax|none]
"""
import argparse
import statistics
import time

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("shape", nargs="*", type=int, default=[2, 4, 128, 128, 128])
parser.add_argument("--repeats", type=int, default=5)
parser.add_argument("--activation", default="softmax", choices=["softmax", "none"])
args = parser.parse_args()
b, c, *spatial = args.shape

rng = np.random.default_rng(0)
labels = rng.integers(0, c, (b, *spatial)).astype(np.int64)
logits = rng.normal(0, 2, (b, c, *spatial)).astype(np.float32)
if args.activation == "none":
    e = np.exp(logits - logits.max(1, keepdims=True))
    logits = (e / e.sum(1, keepdims=True)).astype(np.float32)
mib = logits.nbytes / 2**20


def status_mib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) / 1024


def reset_peak():
    """Linux: the peak resident size starts again from the current one."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


import dicegrad  # noqa: E402

dicegrad.gradient(logits, labels, activation=args.activation)  # threads started, pages mapped
reset_peak()
before = status_mib("VmRSS:")
g = dicegrad.gradient(logits, labels, activation=args.activation)
added = status_mib("VmHWM:") - before
times = []
for _ in range(args.repeats):
    t = time.perf_counter()
    dicegrad.gradient(logits, labels, activation=args.activation)
    times.append(time.perf_counter() - t)
ours = statistics.median(times)

import torch  # noqa: E402
from monai.losses import DiceLoss  # noqa: E402

loss = DiceLoss(softmax=args.activation == "softmax")
target = torch.from_numpy(labels)[:, None]
times = []
for _ in range(args.repeats):
    x = torch.from_numpy(logits).clone().requires_grad_(True)
    t = time.perf_counter()
    loss(x, target_onehot := torch.nn.functional.one_hot(target[:, 0], c).movedim(-1, 1).float()).backward()
    times.append(time.perf_counter() - t)
theirs = statistics.median(times)
diff = np.abs(x.grad.numpy() - g).max() / np.abs(x.grad.numpy()).max()

print(f"input {tuple(logits.shape)} float32 ({mib:.0f} MiB), activation {args.activation}, torch threads {torch.get_num_threads()}")
print(f"dicegrad.gradient:          {ours:.3f} s  (median of {args.repeats})")
print(f"MONAI DiceLoss + backward:  {theirs:.3f} s  ({theirs / ours:.1f}x dicegrad's time)")
print(f"largest difference / max|g|: {diff:.2e}")
print(f"peak memory dicegrad.gradient added: {added:.0f} MiB (the gradient it returns: {mib:.0f} MiB; one byte of class per voxel: {labels.size / 2**20:.0f} MiB; a copy of the input would add {mib:.0f} MiB)")
