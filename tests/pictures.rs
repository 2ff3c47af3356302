//! What the pictures show, read back from the files: the comparison wrapped into a grid, the
//! variant's parameters in the titles, the pooled histogram's bins adding up to the voxels of the
//! data set, and a batch folder written with the old one-per-factor-2 bins refused by `--resume`
//! and `merge` with a message that says what to do.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Width and height of a PNG file, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[1..4], b"PNG", "{} is a PNG", path.display());
    let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (word(16), word(20))
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(name)
}

#[test]
fn four_losses_on_one_channel_are_compared_in_a_two_by_two_grid() {
    let d = tmp();
    let out = at(&d, "out");
    dicegrad()
        .args(["analyze", "--compare", "dice,squared-dice,tversky,ce", "--labels"])
        .arg(sample("binary/labels.nii.gz"))
        .arg("--pred")
        .arg(sample("binary/probs.nii.gz"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let (w, h) = png_size(&out.join("compare.png"));
    let (one_w, _) = png_size(&out.join("histogram.png"));
    assert!(w <= 2 * 600, "at most two columns of panels: {w}×{h}");
    let aspect = f64::from(w) / f64::from(h);
    assert!((0.8..=2.0).contains(&aspect), "a readable shape, not a strip: {w}×{h}");
    assert!(one_w <= 820);
}

#[test]
fn tversky_alpha_and_beta_are_in_the_titles() {
    let d = tmp();
    let out = at(&d, "out");
    dicegrad()
        .args(["analyze", "--loss", "tversky", "--alpha", "0.3", "--beta", "0.7", "--compare", "dice", "--labels"])
        .arg(sample("multiclass/labels.nii.gz"))
        .arg("--pred")
        .arg(sample("multiclass/probs.nii.gz"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    for name in ["histogram.svg", "compare.svg"] {
        let svg = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(svg.contains("tversky (α = 0.3, β = 0.7)"), "{name} names α and β");
    }
}

/// A batch of three 3-class cases in `d/out`.
fn small_batch(d: &tempfile::TempDir) -> (PathBuf, PathBuf, PathBuf) {
    let (labels, preds) = synth_dataset(d, 3, |i| format!("case_{i}"));
    let out = at(d, "out");
    dicegrad()
        .args(["batch", "--quiet", "--labels-dir"])
        .arg(&labels)
        .arg("--pred-dir")
        .arg(&preds)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    (labels, preds, out)
}

fn records(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("cases.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_pooled_histogram_counts_every_voxel_once_on_its_side() {
    let d = tmp();
    let (_, _, out) = small_batch(&d);
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let recs = records(&out);
    let sum = |v: &Value| v.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()).sum::<u64>();
    for ch in summary["channels"].as_array().unwrap() {
        let h = &ch["pooled_histogram"];
        assert_eq!(h["bins_per_octave"], 4);
        let k = ch["channel"].as_u64().unwrap();
        // the foreground voxels of the channel over the cases, counted from the records
        let fg_voxels: u64 = recs
            .iter()
            .flat_map(|r| r["channels"].as_array().unwrap().iter())
            .filter(|c| c["channel"].as_u64() == Some(k))
            .map(|c| c["foreground_voxels"].as_u64().unwrap())
            .sum();
        let fg = sum(&h["foreground"]) + h["zeros"][1].as_u64().unwrap();
        let bg = sum(&h["background"]) + h["zeros"][0].as_u64().unwrap();
        assert_eq!(fg, fg_voxels, "channel {k}: foreground");
        assert_eq!(fg + bg, 3 * 9 * 8 * 7, "channel {k}: every voxel of the 3 cases");
        // a two-valued gradient: one value per side and case, so at most 3 bins per side
        let used = |v: &Value| v.as_array().unwrap().iter().filter(|c| c.as_u64() != Some(0)).count();
        assert!(used(&h["foreground"]) <= 3 && used(&h["background"]) <= 3, "{h}");
    }
}

/// Rewrites the records of `out` as the first versions wrote them: 256 bins, one per factor 2,
/// and no count of bins.
fn write_old_records(out: &Path) {
    let mut text = String::new();
    for mut r in records(out) {
        let n = r["log_histograms"].as_array().unwrap().len();
        let old = serde_json::json!({"foreground": vec![0u64; 256], "background": vec![1u64; 256], "zeros": [0, 0]});
        r["log_histograms"] = Value::Array(vec![old; n]);
        text += &(serde_json::to_string(&r).unwrap() + "\n");
    }
    std::fs::write(out.join("cases.jsonl"), text).unwrap();
}

#[test]
fn a_run_written_with_the_old_bins_is_refused_by_resume_and_merge() {
    let d = tmp();
    let (labels, preds, out) = small_batch(&d);
    write_old_records(&out);
    let err = fails_with_2(
        dicegrad()
            .args(["batch", "--quiet", "--resume", "--labels-dir"])
            .arg(&labels)
            .arg("--pred-dir")
            .arg(&preds)
            .arg("--out")
            .arg(&out),
    );
    assert!(err.contains("cases.jsonl") && err.contains("case_0"), "names the file and the case: {err}");
    assert!(err.contains("one bin per factor 2") && err.contains("--force"), "says why and what to do: {err}");
    let err = fails_with_2(dicegrad().arg("merge").arg("--out").arg(at(&d, "merged")).arg(&out));
    assert!(err.contains("one bin per factor 2") && err.contains("--force"), "{err}");
    assert!(!at(&d, "merged").join("summary.json").exists());
    // starting over with --force replaces the old records
    dicegrad()
        .args(["batch", "--quiet", "--force", "--labels-dir"])
        .arg(&labels)
        .arg("--pred-dir")
        .arg(&preds)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    assert!(records(&out).iter().all(|r| r["log_histograms"][0]["bins_per_octave"] == 4));
}
