"""The package as a user meets it: analyze against the command line's report.json on the bundled
samples, the kinds of arrays it takes (float16/64, DLPack, __array__, tensor-like objects), the
reports of mini-batches, threads and the interpreter lock, the keyword arguments against the
library's table of parameters, and the messages of bad input."""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import subprocess
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import dicegrad

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


def cli() -> Path:
    """The command line, built by `cargo build --release` (as .ci/run does before pytest)."""
    path = Path(os.environ.get("DICEGRAD_CLI", ROOT / "target" / "release" / "dicegrad"))
    assert path.exists(), f"{path} is missing: run `cargo build --release` first (or set DICEGRAD_CLI)"
    return path


def cli_report(labels: Path, pred: Path, *args: str) -> dict:
    out = subprocess.run(
        [str(cli()), "analyze", "--json", "--labels", str(labels), "--pred", str(pred), *args],
        check=True,
        capture_output=True,
    )
    return json.loads(out.stdout)


def load_case(folder: str, pred: str):
    """A bundled case as a mini-batch of one: target (1, X, Y, Z), input (1, C, X, Y, Z) (C = 1
    for a 3-D prediction)."""
    labels = np.asarray(nib.load(SAMPLES / folder / "labels.nii.gz").dataobj)
    p = np.asarray(nib.load(SAMPLES / folder / pred).dataobj, dtype=np.float32)
    p = np.moveaxis(p, 3, 0) if p.ndim == 4 else p[None]
    return labels[None], p[None]


def assert_same(a, b, path="report"):
    """Equal structures; floats within 1e-12 relative (sums run in another memory order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys {sorted(a.keys() ^ b.keys())}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: lengths {len(a)} and {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, (int, float)):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


CASES = [
    ("binary", "probs.nii.gz", {}, []),
    ("binary", "logits.nii.gz", {"activation": "sigmoid"}, ["--activation", "sigmoid"]),
    ("multiclass", "probs.nii.gz", {}, []),
    ("multiclass", "probs.nii.gz", {"loss": "generalized-dice", "include_background": False},
     ["--loss", "generalized-dice", "--no-background"]),
    ("multiclass", "logits.nii.gz", {"preset": "nnunet"}, ["--preset", "nnunet"]),
    ("multiclass", "logits.nii.gz", {"activation": "softmax", "compare": ["ce", "mimic"], "loss_scale": 1024},
     ["--activation", "softmax", "--compare", "ce,mimic", "--loss-scale", "1024"]),
]  # fmt: skip


@pytest.mark.parametrize("folder,pred,kwargs,flags", CASES)
def test_analyze_gives_the_report_of_the_command_line(folder, pred, kwargs, flags):
    want = cli_report(SAMPLES / folder / "labels.nii.gz", SAMPLES / folder / pred, *flags)
    target, x = load_case(folder, pred)
    got = dicegrad.analyze(x, target, **kwargs)
    assert got.pop("batch")["size"] == 1
    # per sample (the default), the one sample's report; pooled (the nnunet preset), the report
    got = got["samples"][0] if "samples" in got else got
    # the arrays are not the files: where they came from differs, what was computed does not
    for r in (got, want):
        r.pop("inputs")
        r.pop("tool")
    # notes name options as their reader writes them: `--loss-weight 1` and `loss_weight=1`
    want["warnings"] = [re.sub(r"--([a-z-]+) ", lambda m: m[1].replace("-", "_") + "=", w) for w in want["warnings"]]
    assert_same(got, want)


def test_the_gradient_is_the_one_the_command_line_writes(tmp_path):
    out = tmp_path / "grad.nii.gz"
    labels = SAMPLES / "multiclass" / "labels.nii.gz"
    pred = SAMPLES / "multiclass" / "logits.nii.gz"
    subprocess.run(
        [str(cli()), "analyze", "--labels", str(labels), "--pred", str(pred), "--activation", "softmax",
         "--grad-out", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    want = np.moveaxis(np.asarray(nib.load(out).dataobj, dtype=np.float32), 3, 0)[None]
    target, x = load_case("multiclass", "logits.nii.gz")
    got = dicegrad.gradient(x, target, activation="softmax")
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 1e-6 * scale


def random_batch(b=2, c=3, spatial=(6, 5, 4), seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, (b, *spatial))
    logits = rng.normal(0, 2, (b, c, *spatial)).astype(np.float32)
    e = np.exp(logits - logits.max(1, keepdims=True))
    return labels, logits, (e / e.sum(1, keepdims=True)).astype(np.float32)


def test_float16_and_float64_inputs_are_read_as_float32():
    labels, _, probs = random_batch()
    want = dicegrad.gradient(probs, labels)
    h = probs.astype(np.float16)
    assert np.array_equal(dicegrad.gradient(h, labels), dicegrad.gradient(h.astype(np.float32), labels))
    assert np.array_equal(dicegrad.gradient(probs.astype(np.float64), labels), want)
    assert want.dtype == np.float32 and want.shape == probs.shape


class Dlpack:
    """An array known only by the DLPack protocol."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kw):
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


class ArrayOnly:
    """An array known only by __array__."""

    def __init__(self, a):
        self._a = a

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


class FakeTensor:
    """What the package reads of a torch tensor: detach(), device, dtype, numpy()."""

    class Device:
        def __init__(self, kind):
            self.type = kind

        def __str__(self):
            return f"{self.type}:0"

    def __init__(self, a, device="cpu"):
        self._a, self.device, self.dtype = a, FakeTensor.Device(device), "torch.float32"
        self.detached = False

    def detach(self):
        self.detached = True
        return self

    def numpy(self):
        return self._a


def test_arrays_by_dlpack_array_protocol_or_as_tensors_give_the_same_gradient():
    labels, _, probs = random_batch(seed=1)
    want = dicegrad.gradient(probs, labels)
    assert np.array_equal(dicegrad.gradient(Dlpack(probs), Dlpack(labels)), want)
    assert np.array_equal(dicegrad.gradient(ArrayOnly(probs), ArrayOnly(labels)), want)
    t = FakeTensor(probs)
    assert np.array_equal(dicegrad.gradient(t, labels), want)
    assert t.detached
    with pytest.raises(TypeError, match=r"tensor on cuda:0.*\.detach\(\)\.cpu\(\)"):
        dicegrad.gradient(FakeTensor(probs, "cuda"), labels)


def test_torch_tensors_when_torch_is_installed():
    torch = pytest.importorskip("torch")
    labels, logits, _ = random_batch(seed=2)
    x = torch.tensor(logits, requires_grad=True)
    g = dicegrad.gradient(x, torch.tensor(labels), activation="softmax")
    assert np.array_equal(g, dicegrad.gradient(logits, labels, activation="softmax"))
    assert np.array_equal(x.detach().numpy(), logits)  # not modified
    b = dicegrad.gradient(x.to(torch.bfloat16), torch.tensor(labels), activation="softmax")
    assert b.shape == logits.shape


def test_the_input_is_read_in_place_and_never_modified():
    labels, _, probs = random_batch(seed=3)
    before = probs.copy()
    g = dicegrad.gradient(probs, labels)
    assert np.array_equal(probs, before)
    assert not np.shares_memory(g, probs)
    # the package hands a C-ordered float32 array to the library as it is
    assert dicegrad._input(probs) is probs
    # and others converted once
    f = np.asfortranarray(probs)
    assert dicegrad._input(f).flags.c_contiguous
    assert np.array_equal(dicegrad.gradient(f, labels), g)
    assert np.array_equal(dicegrad.gradient(probs[:, :, ::-1], labels[:, ::-1]), g[:, :, ::-1])


def test_the_per_sample_report_holds_every_sample_and_the_mini_batch():
    labels, _, probs = random_batch(b=3, seed=4)
    r = dicegrad.analyze(probs, labels)
    assert set(r) == {"batch", "samples"} and len(r["samples"]) == 3
    own = [dicegrad.analyze(probs[i : i + 1], labels[i : i + 1], batch=True)["loss"]["value"] for i in range(3)]
    assert math.isclose(r["batch"]["loss"], sum(own) / 3, rel_tol=1e-14)
    assert r["batch"]["reduction"] == "per_sample"
    # each sample's gradient is its own over B: so are its levels
    for s, i in zip(r["samples"], range(3)):
        alone = dicegrad.analyze(probs[i : i + 1], labels[i : i + 1])["samples"][0]
        for a, b in zip(s["channels"], alone["channels"]):
            assert math.isclose(a["closed_form"]["foreground_level"], b["closed_form"]["foreground_level"] / 3,
                                rel_tol=1e-14)  # fmt: skip
    window = r["batch"]["mixed_precision"]["loss_scale_window"]
    mins = [s["mixed_precision"]["loss_scale_window"]["min"] for s in r["samples"]]
    maxs = [s["mixed_precision"]["loss_scale_window"]["max"] for s in r["samples"]]
    assert (window["min"], window["max"]) == (max(mins), min(maxs))


def test_the_pooled_report_is_one_case_of_the_samples_side_by_side():
    labels, _, probs = random_batch(b=2, seed=5)
    r = dicegrad.analyze(probs, labels, batch=True)
    wide = dicegrad.analyze(np.concatenate(list(probs), axis=1)[None], np.concatenate(list(labels))[None], batch=True)
    assert r["batch"]["reduction"] == "pooled"
    assert math.isclose(r["loss"]["value"], wide["loss"]["value"], rel_tol=1e-14)
    assert r["inputs"]["prediction"]["dims"] == list(probs.shape)
    for a, b in zip(r["channels"], wide["channels"]):
        assert math.isclose(a["soft_dice"], b["soft_dice"], rel_tol=1e-14)


def test_results_do_not_depend_on_the_threads():
    labels, logits, _ = random_batch(b=2, spatial=(40, 30, 20), seed=6)
    one = dicegrad.gradient(logits, labels, activation="softmax", threads=1)
    assert np.array_equal(one, dicegrad.gradient(logits, labels, activation="softmax", threads=3))
    a = dicegrad.analyze(logits, labels, activation="softmax", batch=True, threads=1)
    assert a == dicegrad.analyze(logits, labels, activation="softmax", batch=True)


def test_the_interpreter_runs_other_threads_during_a_computation():
    labels, logits, _ = random_batch(b=2, c=4, spatial=(96, 96, 64), seed=7)
    done = threading.Event()
    counted = 0

    def work():
        for _ in range(3):
            dicegrad.gradient(logits, labels, activation="softmax", threads=1)
        done.set()

    t = threading.Thread(target=work)
    start = time.perf_counter()
    t.start()
    while not done.is_set():
        counted += 1
    t.join()
    elapsed = time.perf_counter() - start
    # with the lock held, this loop would stand still while the gradient is computed
    assert counted > 10_000, f"{counted} iterations in {elapsed:.2f} s"


def test_every_loss_parameter_of_the_library_is_a_keyword():
    names = [p["name"] for p in dicegrad.loss_parameters()]
    assert "weight" in names and "smooth_nr" in names and "class_weights" not in names
    for f in (dicegrad.gradient, dicegrad.analyze):
        params = inspect.signature(f).parameters
        assert [n for n in names if n not in params] == []
        assert f.__doc__ and all(n in f.__doc__ or f is dicegrad.analyze for n in names)
    # MONAI's order for the first ones
    assert list(inspect.signature(dicegrad.gradient).parameters)[:10] == [
        "input", "target", "loss", "activation", "include_background", "batch", "smooth_nr", "smooth_dr",
        "weight", "preset",
    ]  # fmt: skip


def test_names_with_underscores_and_sequences_of_weights():
    labels, _, probs = random_batch(seed=8)
    a = dicegrad.gradient(probs, labels, loss="squared_dice", weight=np.array([1.0, 2.0, 0.5]))
    b = dicegrad.gradient(probs, labels, loss="squared-dice", weight=(1, 2, 0.5))
    assert np.array_equal(a, b)


def raises(exc, pattern, *args, **kwargs):
    with pytest.raises(exc) as info:
        dicegrad.gradient(*args, **kwargs)
    assert re.search(pattern, str(info.value)), str(info.value)
    return str(info.value)


def test_bad_input_is_refused_with_what_to_do():
    labels, logits, probs = random_batch(seed=9)
    raises(ValueError, r"do not make a mini-batch.*\(2, 6, 5, 4\)", probs, labels[:, :3])
    raises(TypeError, r"holds int64.*segmentation", labels[:, None].repeat(3, 1), labels)
    raises(ValueError, r"values lie outside \[0, 1\].*activation='softmax'", logits, labels)
    raises(ValueError, r"probabilities.*force_activation=True", probs, labels, activation="softmax")
    raises(ValueError, r"^unknown loss 'dise'; choose one of: dice", probs, labels, loss="dise")
    raises(TypeError, r"smooth_nr must be a number, got str", probs, labels, smooth_nr="1e-5")
    raises(TypeError, r"include_background must be True or False", probs, labels, include_background=1)
    raises(ValueError, r"alpha does not apply to loss='dice'", probs, labels, alpha=0.3)
    raises(ValueError, r"weight.*3 channels|channels.*weight", probs, labels, weight=[1, 2])
    raises(ValueError, r"batch cannot pool: the ce loss has no Dice sums", logits, labels, loss="ce",
           activation="softmax", batch=True)  # fmt: skip
    raises(ValueError, r"spatial_dims must be 1, 2 or 3", probs, labels, spatial_dims=4)
    bad = labels.copy()
    bad[1, 0, 0, 0] = 9
    raises(ValueError, r"^labels array, sample 1: 1 voxels hold label values out of range", probs, bad)
    nan = probs.copy()
    nan[0, 1, 2, 2, 2] = np.nan
    raises(ValueError, r"NaN", nan, labels)
    soft = np.stack([labels == k for k in range(3)], 1).astype(np.float32) * 0.9
    raises(ValueError, r"one-hot target holds only 0 and 1", probs, soft)
    raises(TypeError, r"the target must be an array|target holds", probs, "labels")
    raises(TypeError, r"the target holds complex", probs, labels.astype(complex))
    with pytest.raises(TypeError):
        dicegrad.gradient(probs, labels, smoothnr=1e-5)


def test_a_target_of_the_inputs_shape_is_read_as_spatial_dims_says():
    rng = np.random.default_rng(10)
    # (B, X, Y, Z) binary volume with its labels
    p = rng.random((2, 6, 5, 4)).astype(np.float32)
    y = (p > 0.5).astype(np.uint8)
    g = dicegrad.gradient(p, y, spatial_dims=3)
    assert np.array_equal(g[:, None], dicegrad.gradient(p[:, None], y[:, None]))
    # (B, C, H, W) with a one-hot target
    labels = rng.integers(0, 6, (2, 5, 4))
    hot = np.stack([labels == k for k in range(6)], 1)
    q = rng.dirichlet(np.ones(6), (2, 5, 4)).transpose(0, 3, 1, 2).astype(np.float32)
    assert np.array_equal(dicegrad.gradient(q, hot, spatial_dims=2), dicegrad.gradient(q, labels))
    # never guessed from the values (one step's batch could read one way, the next another)
    for x, t in ((p, y), (q, hot)):
        with pytest.raises(ValueError, match=r"reads two ways.*spatial_dims=2.*spatial_dims=3"):
            dicegrad.gradient(x, t)


def test_pictures_are_the_command_lines_drawn_in_memory(tmp_path):
    target, x = load_case("multiclass", "logits.nii.gz")
    r = dicegrad.analyze(x, target, activation="softmax", compare="ce", pictures=True)["samples"][0]
    assert set(r["pictures"]) == {"slices", "histogram", "density", "compare"}
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in r["pictures"].values())
    assert r["views"] is not None
    # the command line draws the same histogram from the same report
    subprocess.run(
        [str(cli()), "analyze", "--labels", str(SAMPLES / "multiclass" / "labels.nii.gz"), "--pred",
         str(SAMPLES / "multiclass" / "logits.nii.gz"), "--activation", "softmax", "--compare", "ce",
         "--out", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert r["pictures"]["histogram"] == (tmp_path / "histogram.png").read_bytes()
    per_sample = dicegrad.analyze(np.concatenate([x, x]), np.concatenate([target, target]), activation="softmax",
                                  pictures=True)  # fmt: skip
    assert [set(s["pictures"]) for s in per_sample["samples"]] == [{"slices", "histogram", "density"}] * 2
    assert "pictures" not in dicegrad.analyze(x, target, activation="softmax")["samples"][0]


def _child(x, y, q):
    q.put(float(np.abs(dicegrad.gradient(x, y, activation="softmax")).max()))


def test_a_forked_child_computes_after_its_parent_did():
    """A DataLoader worker or a multiprocessing pool forks the process: the child has none of the
    parent's threads, and must not wait for them."""
    import multiprocessing as mp

    labels, logits, _ = random_batch(seed=11)
    want = float(np.abs(dicegrad.gradient(logits, labels, activation="softmax")).max())
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(logits, labels, q))
    p.start()
    p.join(60)
    alive = p.is_alive()
    if alive:
        p.kill()
    assert not alive, "the child hung"
    assert q.get(timeout=5) == want


def test_threads_beyond_four_per_core_are_capped_with_a_warning():
    labels, _, probs = random_batch(seed=12)
    with pytest.warns(UserWarning, match=rf"threads=100000: using {dicegrad._dicegrad.max_threads}"):
        g = dicegrad.gradient(probs, labels, threads=np.int64(100_000))
    assert np.array_equal(g, dicegrad.gradient(probs, labels))
    raises(ValueError, r"threads must be a whole number within 64 bits", probs, labels, threads=10**30)


def test_a_gradient_that_overflows_float32_is_refused():
    labels, _, probs = random_batch(seed=13)
    raises(ValueError, r"overflows float32.*allow_non_finite=True", probs, labels, loss_weight=1e300)
    assert np.isinf(dicegrad.gradient(probs, labels, loss_weight=1e300, allow_non_finite=True)).all()
    r = dicegrad.analyze(probs, labels, loss_weight=1e300, allow_non_finite=True, batch=True)
    assert any("overflows float32" in w and "allow_non_finite=True" in w for w in r["warnings"]), r["warnings"]


def test_weights_with_a_one_hot_target_and_cross_entropy_ask_for_labels():
    """torch divides a one-hot target's class-weighted cross-entropy by the voxel count, labels' by
    the sum of their weights: the one-hot form is refused with weights, not computed the other way."""
    labels, logits, _ = random_batch(seed=16)
    hot = np.stack([labels == k for k in range(3)], 1)
    raises(ValueError, r"weight with a one-hot target.*target.argmax\(1\)", logits, hot, loss="dice+ce",
           activation="softmax", weight=[1, 2, 3])  # fmt: skip
    # without weights, or with labels, both forms agree
    assert np.array_equal(
        dicegrad.gradient(logits, hot, loss="dice+ce", activation="softmax"),
        dicegrad.gradient(logits, labels, loss="dice+ce", activation="softmax"),
    )


def test_weight_as_monai_takes_it():
    labels, _, probs = random_batch(seed=14)
    # one number for every channel
    assert np.array_equal(dicegrad.gradient(probs, labels, weight=2.0), dicegrad.gradient(probs, labels, weight=[2, 2, 2]))
    # the foreground channels' weights, with the background left out of a Dice loss
    assert np.array_equal(
        dicegrad.gradient(probs, labels, include_background=False, weight=[2, 3]),
        dicegrad.gradient(probs, labels, include_background=False, weight=[7, 2, 3]),
    )
    # a weight MONAI's DiceLoss ignores is refused, not applied
    raises(ValueError, r"one channel is left.*MONAI's DiceLoss ignores", probs[:, 1], (labels == 1), weight=[2.0],
           spatial_dims=3)  # fmt: skip
    raises(ValueError, r"weight is empty", probs, labels, weight=[])
    raises(TypeError, r"weight must be a number, or one number per channel", probs, labels, weight={1: 1})


def test_names_as_python_writes_them_and_big_endian_targets():
    labels, logits, probs = random_batch(seed=15)
    want = dicegrad.gradient(logits, labels, loss="dice+ce", activation="softmax", dice_form="one_minus")
    got = dicegrad.gradient(logits, labels, loss="dice_ce", activation="softmax", dice_form="one-minus")
    assert np.array_equal(got, want)
    assert np.array_equal(dicegrad.gradient(probs, labels.astype(">i2")), dicegrad.gradient(probs, labels))
    with pytest.raises(ValueError, match=r"the input has shape \(\)"):
        dicegrad.gradient(np.float32(0.5), labels)


def test_spacing_places_the_voxels_of_the_report_and_its_pictures(tmp_path):
    target, x = load_case("multiclass", "probs.nii.gz")
    # the voxel size as nibabel reads it from the header: (0.8, 0.8, 2.0) mm, as float32
    spacing = [float(v) for v in nib.load(SAMPLES / "multiclass" / "probs.nii.gz").header.get_zooms()[:3]]
    r = dicegrad.analyze(x, target, spacing=spacing, pictures=True)["samples"][0]
    assert r["inputs"]["prediction"]["voxel_size"] == pytest.approx([0.8, 0.8, 2.0])
    plain = dicegrad.analyze(x, target, pictures=True)["samples"][0]
    assert r["pictures"]["slices"] != plain["pictures"]["slices"]
    # the gradient's figures do not depend on it
    assert r["channels"][1]["closed_form"] == plain["channels"][1]["closed_form"]
    # the command line reads the same voxel size from the sample's header (0.8 x 0.8 x 2 mm)
    subprocess.run(
        [str(cli()), "analyze", "--labels", str(SAMPLES / "multiclass" / "labels.nii.gz"), "--pred",
         str(SAMPLES / "multiclass" / "probs.nii.gz"), "--out", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert r["views"]["channels"] == json.loads((tmp_path / "report.json").read_text())["views"]["channels"]
    for bad in [(1.0, 1.0), (1.0, -1.0, 2.0)]:
        with pytest.raises(ValueError, match=r"spacing must be 3 positive voxel sizes"):
            dicegrad.analyze(x, target, spacing=bad)
