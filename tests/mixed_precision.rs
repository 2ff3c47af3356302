//! The mixed-precision figures of the report checked from the outside: on every bundled sample
//! (probabilities, and logits through softmax / sigmoid) and at several loss scales, the gradient
//! volume written by `--grad-out` is read back with the `nifti` crate, multiplied by S in float32
//! and cast with the `half` crate's conversions; the values flushed to zero, made subnormal or
//! infinite are counted here, the L1 mass flushed summed, and the window computed from the
//! smallest non-zero and the largest magnitude. Counts and shares must equal the report's exactly,
//! sums and bounds to 1e-12. Also: bad loss scales refused, a batch recording the same figures, and
//! the figures the README states.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use half::{bf16, f16};
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
use serde_json::Value;

/// Values of a NIfTI file in file (Fortran) order: channel k of an (X,Y,Z,C) volume is the k-th
/// run of X·Y·Z values.
fn read_back(path: &Path) -> Vec<f32> {
    let obj = ReaderOptions::new().read_file(path).unwrap();
    obj.into_volume().into_ndarray::<f32>().unwrap().t().iter().copied().collect()
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

/// What a 16-bit format does to S·g, by the `half` crate: (is zero, is subnormal, is infinite).
type Cast = fn(f32) -> (bool, bool, bool);

fn f16_cast(x: f32) -> (bool, bool, bool) {
    let h = f16::from_f32(x);
    (h.to_f32() == 0.0, h.classify() == std::num::FpCategory::Subnormal, h.is_infinite())
}

fn bf16_cast(x: f32) -> (bool, bool, bool) {
    let h = bf16::from_f32(x);
    (h.to_f32() == 0.0, h.classify() == std::num::FpCategory::Subnormal, h.is_infinite())
}

/// The figures of one format, computed here from the values.
struct Expected {
    zero: u64,
    subnormal: u64,
    overflow: u64,
    l1: f64,
    l1_flushed: f64,
    values: u64,
    min_nonzero: f64,
    max_abs: f64,
}

fn expected(values: &[f32], scale: f32, cast: Cast) -> Expected {
    let mut e = Expected {
        zero: 0,
        subnormal: 0,
        overflow: 0,
        l1: 0.0,
        l1_flushed: 0.0,
        values: values.len() as u64,
        min_nonzero: f64::INFINITY,
        max_abs: 0.0,
    };
    for &g in values {
        let a = f64::from(g.abs());
        let (zero, subnormal, infinite) = cast(scale * g);
        e.l1 += a;
        if g != 0.0 {
            e.min_nonzero = e.min_nonzero.min(a);
            if zero {
                e.zero += 1;
                e.l1_flushed += a;
            }
        }
        e.max_abs = e.max_abs.max(a);
        e.subnormal += u64::from(subnormal);
        e.overflow += u64::from(infinite);
    }
    e
}

fn close(x: f64, y: f64, what: &str) {
    assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0), "{what}: report {x}, expected {y}");
}

/// Checks `at_scale` and `loss_scale_window` of `m` (a report's `mixed_precision` object, or its
/// `bfloat16` part) against the values.
fn check(m: &Value, values: &[f32], scale: f32, cast: Cast, [smallest, largest]: [f64; 2], what: &str) {
    let e = expected(values, scale, cast);
    let at = &m["at_scale"];
    assert_eq!(at["scale"].as_f64().unwrap(), f64::from(scale), "{what}");
    let share = |n: u64| n as f64 / e.values as f64;
    assert_eq!(at["zero_share"].as_f64().unwrap(), share(e.zero), "{what}: zero_share");
    assert_eq!(at["subnormal_share"].as_f64().unwrap(), share(e.subnormal), "{what}: subnormal_share");
    assert_eq!(at["overflow_share"].as_f64().unwrap(), share(e.overflow), "{what}: overflow_share");
    let lost = at["l1_lost_share"].as_f64().unwrap();
    if e.l1_flushed == 0.0 {
        assert_eq!(lost, 0.0, "{what}: l1_lost_share");
    } else {
        close(lost, e.l1_flushed / e.l1, &format!("{what}: l1_lost_share"));
    }
    let w = &m["loss_scale_window"];
    let (lo, hi) = (smallest / e.min_nonzero, largest / e.max_abs);
    close(w["min"].as_f64().unwrap(), lo, &format!("{what}: window min"));
    close(w["max"].as_f64().unwrap(), hi, &format!("{what}: window max"));
    close(w["log2_min"].as_f64().unwrap(), lo.log2(), &format!("{what}: window log2_min"));
    close(w["log2_max"].as_f64().unwrap(), hi.log2(), &format!("{what}: window log2_max"));
    assert_eq!(w["empty"].as_bool().unwrap(), lo > hi, "{what}: window empty");
}

const F16: [f64; 2] = [6.103_515_625e-5, 65504.0];
/// 2^−126 and the largest finite bfloat16.
const BF16: [f64; 2] = [1.175_494_350_822_287_5e-38, 3.389_531_389_251_535_5e38];

/// Loss scales: 1, GradScaler's powers of two (2^10, 2^16, 2^24, and 2^30, where the largest
/// values overflow), and 1000, which float32 does not multiply exactly.
const SCALES: [f32; 6] = [1.0, 1024.0, 65536.0, 16_777_216.0, 1_073_741_824.0, 1000.0];

/// Runs `analyze` on a sample with `args`, writes the gradient once, and checks the report at
/// every scale against it: per reported channel and for all of them together.
fn check_sample(folder: &str, pred: &str, args: &[&str]) {
    let dir = tmp();
    let grad = at(&dir, "g.nii");
    let analyze = |extra: &[&str]| {
        let mut cmd = dicegrad();
        cmd.args(["analyze", "--json", "--labels"])
            .arg(sample(&format!("{folder}/labels.nii.gz")))
            .arg("--pred")
            .arg(sample(&format!("{folder}/{pred}")))
            .args(args)
            .args(extra);
        json_of(&mut cmd)
    };
    analyze(&["--grad-out", grad.to_str().unwrap()]);
    let g = read_back(&grad);
    for s in SCALES {
        let r = analyze(&["--loss-scale", &s.to_string()]);
        assert_eq!(r["parameters"]["loss_scale"].as_f64().unwrap(), f64::from(s));
        let channels = r["channels"].as_array().unwrap();
        let c0 = &channels[0];
        let per_channel =
            (c0["foreground_voxels"].as_u64().unwrap() + c0["background_voxels"].as_u64().unwrap()) as usize;
        let mut all = Vec::new();
        for c in channels {
            let k = c["channel"].as_u64().unwrap() as usize;
            let values = &g[k * per_channel..(k + 1) * per_channel];
            let m = &c["gradient"]["mixed_precision"];
            let what = format!("{folder}/{pred} {args:?}, S = {s}, channel {k}");
            check(m, values, s, f16_cast, F16, &format!("{what}, float16"));
            check(&m["bfloat16"], values, s, bf16_cast, BF16, &format!("{what}, bfloat16"));
            all.extend_from_slice(values);
        }
        let m = &r["mixed_precision"];
        let what = format!("{folder}/{pred} {args:?}, S = {s}, all channels");
        check(m, &all, s, f16_cast, F16, &format!("{what}, float16"));
        check(&m["bfloat16"], &all, s, bf16_cast, BF16, &format!("{what}, bfloat16"));
    }
}

#[test]
fn figures_agree_with_a_half_cast_of_the_binary_probability_gradient() {
    check_sample("binary", "probs.nii.gz", &[]);
}

#[test]
fn figures_agree_with_a_half_cast_of_the_binary_logit_gradient_through_sigmoid() {
    check_sample("binary", "logits.nii.gz", &["--activation", "sigmoid"]);
}

#[test]
fn figures_agree_with_a_half_cast_of_the_multiclass_probability_gradient() {
    check_sample("multiclass", "probs.nii.gz", &[]);
    // the whole prediction is the reported channels: here without channel 0
    check_sample("multiclass", "probs.nii.gz", &["--no-background"]);
}

#[test]
fn figures_agree_with_a_half_cast_of_the_multiclass_logit_gradient_through_softmax() {
    check_sample("multiclass", "logits.nii.gz", &["--activation", "softmax"]);
}

#[test]
fn a_loss_scale_that_is_not_a_positive_finite_float32_is_refused() {
    let dir = tmp();
    for bad in ["0", "-1", "-0", "nan", "inf", "-inf", "1e39", "1e-50"] {
        let out = at(&dir, "out");
        let err = fails_with_2(
            dicegrad()
                .args(["analyze", "--labels"])
                .arg(sample("binary/labels.nii.gz"))
                .arg("--pred")
                .arg(sample("binary/probs.nii.gz"))
                .arg("--out")
                .arg(&out)
                .arg(format!("--loss-scale={bad}")),
        );
        assert!(err.contains("--loss-scale must be a positive finite number"), "{bad}: {err}");
        assert!(err.contains(", got "), "{bad}: {err}");
        assert!(!out.exists(), "{bad}: nothing is written");
        let batch_out = at(&dir, "batch");
        let err = fails_with_2(
            dicegrad()
                .args(["batch", "--quiet", "--labels-dir"])
                .arg(sample("binary"))
                .arg("--pred-dir")
                .arg(sample("binary"))
                .arg("--out")
                .arg(&batch_out)
                .arg(format!("--loss-scale={bad}")),
        );
        assert!(err.contains("--loss-scale must be a positive finite number"), "batch, {bad}: {err}");
        assert!(!batch_out.exists(), "batch, {bad}: nothing is written");
    }
}

#[test]
fn a_batch_records_the_figures_of_analyze_at_its_loss_scale() {
    let dir = tmp();
    let (labels, preds, out) = (at(&dir, "labels"), at(&dir, "preds"), at(&dir, "out"));
    std::fs::create_dir_all(&labels).unwrap();
    std::fs::create_dir_all(&preds).unwrap();
    std::fs::copy(sample("multiclass/labels.nii.gz"), labels.join("m.nii.gz")).unwrap();
    std::fs::copy(sample("multiclass/logits.nii.gz"), preds.join("m.nii.gz")).unwrap();
    let run = dicegrad()
        .args(["batch", "--quiet", "--activation", "softmax", "--loss-scale", "1", "--labels-dir"])
        .arg(&labels)
        .arg("--pred-dir")
        .arg(&preds)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = json_of(
        dicegrad()
            .args(["analyze", "--json", "--activation", "softmax", "--loss-scale", "1", "--labels"])
            .arg(labels.join("m.nii.gz"))
            .arg("--pred")
            .arg(preds.join("m.nii.gz")),
    );
    let mut csv = csv::Reader::from_path(out.join("cases.csv")).unwrap();
    let head = csv.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["parameters"]["loss_scale"].as_f64(), Some(1.0));
    let cell = |row: &csv::StringRecord, name: &str| -> f64 {
        row[head.iter().position(|h| h == name).unwrap()].parse().unwrap()
    };
    for (c, row) in report["channels"].as_array().unwrap().iter().zip(&rows) {
        let m = &c["gradient"]["mixed_precision"];
        let k = c["channel"].as_u64().unwrap() as usize;
        for (column, field) in [
            ("float16_window_log2_min", &m["loss_scale_window"]["log2_min"]),
            ("float16_window_log2_max", &m["loss_scale_window"]["log2_max"]),
            ("float16_zero_share", &m["at_scale"]["zero_share"]),
            ("float16_subnormal_share", &m["at_scale"]["subnormal_share"]),
            ("float16_overflow_share", &m["at_scale"]["overflow_share"]),
            ("float16_l1_lost_share", &m["at_scale"]["l1_lost_share"]),
            ("bfloat16_zero_share", &m["bfloat16"]["at_scale"]["zero_share"]),
            ("bfloat16_l1_lost_share", &m["bfloat16"]["at_scale"]["l1_lost_share"]),
        ] {
            assert_eq!(cell(row, column), field.as_f64().unwrap(), "channel {k}: {column}");
            let stats = &summary["channels"][k][column];
            assert_eq!((stats["n"].as_u64(), stats["mean"].as_f64()), (Some(1), field.as_f64()), "summary {column}");
        }
    }
    assert!(cell(&rows[0], "float16_zero_share") > 0.0, "at S = 1 the softmax gradient loses values");
}

/// The figures the README states (in the text below its example), from the runs it names.
#[test]
fn the_readme_states_the_figures_measured_on_the_samples() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let readme = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    let run = |pred: &str, args: &[&str]| {
        json_of(
            dicegrad()
                .args(["analyze", "--json", "--labels"])
                .arg(sample("multiclass/labels.nii.gz"))
                .arg("--pred")
                .arg(sample(&format!("multiclass/{pred}")))
                .args(args),
        )
    };
    let window = |r: &Value| {
        let w = &r["mixed_precision"]["loss_scale_window"];
        format!("window is 2^{:.2} to 2^{:.2}", w["log2_min"].as_f64().unwrap(), w["log2_max"].as_f64().unwrap())
    };
    let pct = |v: &Value| format!("{:.2} %", 100.0 * v.as_f64().unwrap());
    let probs = run("probs.nii.gz", &[]);
    let probs_at_1 = run("probs.nii.gz", &["--loss-scale", "1"]);
    let soft = run("logits.nii.gz", &["--activation", "softmax"]);
    let soft_at_1 = run("logits.nii.gz", &["--activation", "softmax", "--loss-scale", "1"]);
    let at = |r: &Value, field: &str| r["mixed_precision"]["at_scale"][field].clone();
    let ch =
        |r: &Value, k: usize, field: &str| r["channels"][k]["gradient"]["mixed_precision"]["at_scale"][field].clone();
    assert_eq!(at(&probs, "subnormal_share").as_f64(), Some(0.0));
    assert_eq!(
        (ch(&probs_at_1, 0, "subnormal_share").as_f64(), at(&probs_at_1, "zero_share").as_f64()),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(at(&soft, "zero_share").as_f64(), Some(0.0));
    for stated in [
        window(&probs),
        format!("{} of channel 3's would be subnormal", pct(&ch(&probs_at_1, 3, "subnormal_share"))),
        window(&soft),
        format!("at 2^16, {} of the values are subnormal", pct(&at(&soft, "subnormal_share"))),
        format!("{} would be flushed to zero", pct(&at(&soft_at_1, "zero_share"))),
        format!("({} of the L1 mass)", pct(&at(&soft_at_1, "l1_lost_share"))),
        format!("and {} made subnormal", pct(&at(&soft_at_1, "subnormal_share"))),
    ] {
        assert!(readme.contains(&stated), "the README does not say \"{stated}\"");
    }
}
