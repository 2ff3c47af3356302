//! The mimic weights: per channel, a_k = 2/(K·D_k) (D_k = S_k + G_k + ε) recomputed here from the
//! arrays written, normalised to sum to 1 over the channels with foreground; in report.json, the
//! table, cases.csv and summary.json, the training figures and the library; and the claim they
//! stand for: with them the mimic loss's gradient is the Dice gradient without its constant.

mod common;

use common::*;
use dicegrad::loss::{LossKind, LossPatch, LossRequest};
use dicegrad::Request;
use ndarray::{Array3, Array4, ShapeBuilder};
use std::path::PathBuf;

const SHAPE: [usize; 3] = [9, 8, 6];
const K: usize = 4;

/// Seeded labels over 4 classes (with `absent` replaced by 0) and probabilities, channel-major.
fn data(seed: u64, absent: Option<u8>) -> (Vec<u8>, Vec<f32>) {
    let (mut labels, probs) = labels_and_probs(seed, SHAPE.iter().product(), K);
    if let Some(a) = absent {
        labels.iter_mut().filter(|l| **l == a).for_each(|l| *l = 0);
    }
    (labels, probs)
}

/// a_k = 2 / (K·(S_k + G_k + 1e-5)), the sums taken here from the values written.
fn a_by_hand(labels: &[u8], probs: &[f32], in_loss: &[usize]) -> Vec<f64> {
    let n = labels.len();
    let k_in = in_loss.len() as f64;
    (0..K)
        .map(|k| {
            if !in_loss.contains(&k) {
                return 0.0;
            }
            let s: f64 = probs[k * n..(k + 1) * n].iter().map(|&v| f64::from(v)).sum();
            let g = labels.iter().filter(|&&l| usize::from(l) == k).count() as f64;
            2.0 / (k_in * (s + g + 1e-5))
        })
        .collect()
}

/// Writes the case and returns (labels path, prediction path).
fn files(d: &tempfile::TempDir, labels: &[u8], probs: &[f32]) -> (std::path::PathBuf, std::path::PathBuf) {
    let (lp, pp) = (at(d, "labels.nii.gz"), at(d, "pred.nii.gz"));
    Nii::u8(&SHAPE, labels).write(&lp);
    Nii::f32(&[SHAPE[0], SHAPE[1], SHAPE[2], K], probs).write(&pp);
    (lp, pp)
}

/// A case's labels and probabilities (channel-major).
type Written = (Vec<u8>, Vec<f32>);

/// A batch of cases c0, c1, … from `cases` (seed, class replaced by 0), run with `extra`: the
/// output folder and each case's (labels, probabilities).
fn batch_of(d: &tempfile::TempDir, cases: &[(u64, Option<u8>)], extra: &[&str]) -> (PathBuf, Vec<Written>) {
    let (ld, pd) = (at(d, "labels"), at(d, "preds"));
    std::fs::create_dir_all(&ld).unwrap();
    std::fs::create_dir_all(&pd).unwrap();
    let mut written = Vec::new();
    for (i, &(seed, absent)) in cases.iter().enumerate() {
        let (labels, probs) = data(seed, absent);
        Nii::u8(&SHAPE, &labels).write(&ld.join(format!("c{i}.nii.gz")));
        Nii::f32(&[SHAPE[0], SHAPE[1], SHAPE[2], K], &probs).write(&pd.join(format!("c{i}.nii.gz")));
        written.push((labels, probs));
    }
    let out = at(d, "out");
    let run = batch_run(&ld, &pd, &out, extra);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    (out, written)
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-12 * b.abs().max(1e-300), "{what}: {a} vs {b}");
}

fn report(lp: &std::path::Path, pp: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    json_of(dicegrad().args(["analyze", "--json", "--labels"]).arg(lp).arg("--pred").arg(pp).args(extra))
}

#[test]
fn the_weights_are_a_over_its_sum_with_a_from_the_sums() {
    let d = tmp();
    let (labels, probs) = data(11, None);
    let (lp, pp) = files(&d, &labels, &probs);
    let r = report(&lp, &pp, &[]);
    let a = a_by_hand(&labels, &probs, &[0, 1, 2, 3]);
    let total: f64 = a.iter().sum();
    close(r["mimic_weight_total"].as_f64().unwrap(), total, "total");
    for (k, ch) in r["channels"].as_array().unwrap().iter().enumerate() {
        close(ch["closed_form"]["a"].as_f64().unwrap(), a[k], "a");
        close(ch["mimic_weight"].as_f64().unwrap(), a[k] / total, "weight");
    }
    // the smaller a class, the larger its weight
    let w: Vec<f64> = r["channels"].as_array().unwrap().iter().map(|c| c["mimic_weight"].as_f64().unwrap()).collect();
    let fg: Vec<u64> =
        r["channels"].as_array().unwrap().iter().map(|c| c["foreground_voxels"].as_u64().unwrap()).collect();
    let (small, large) = ((0..K).min_by_key(|&k| fg[k]).unwrap(), (0..K).max_by_key(|&k| fg[k]).unwrap());
    assert!(w[small] > w[large], "{w:?} for {fg:?}");
}

#[test]
fn a_class_without_foreground_gets_weight_zero_and_the_others_share_one() {
    let d = tmp();
    let (labels, probs) = data(12, Some(2));
    let (lp, pp) = files(&d, &labels, &probs);
    let r = report(&lp, &pp, &["--no-background"]);
    let a = a_by_hand(&labels, &probs, &[1, 2, 3]);
    let total = a[1] + a[3];
    let chans = r["channels"].as_array().unwrap();
    assert_eq!(chans.len(), 3, "the background is left out");
    for ch in chans {
        let k = ch["channel"].as_u64().unwrap() as usize;
        close(ch["closed_form"]["a"].as_f64().unwrap(), a[k], "a");
        let want = if k == 2 { 0.0 } else { a[k] / total };
        assert!((ch["mimic_weight"].as_f64().unwrap() - want).abs() <= 1e-12, "channel {k}: {ch}");
    }
    // its own a is not 0: the rule, not the sums, leaves it out
    assert!(a[2] > 0.0 && chans[1]["closed_form"]["a"].as_f64().unwrap() > 0.0);
}

#[test]
fn with_the_raw_weights_the_mimic_gradient_is_the_dice_gradient_without_its_constant() {
    let (labels, probs) = data(13, None);
    let a = a_by_hand(&labels, &probs, &[0, 1, 2, 3]);
    let [x, y, z] = SHAPE;
    let l = Array3::from_shape_vec((x, y, z).f(), labels.clone()).unwrap();
    let p = Array4::from_shape_vec((x, y, z, K).f(), probs.clone()).unwrap().permuted_axes([3, 0, 1, 2]);
    let request =
        |patch: LossPatch| Request { loss: LossRequest { preset: None, overrides: patch }, ..Request::default() };
    let dice = dicegrad::gradient(l.view(), p.view(), &request(LossPatch::default())).unwrap();
    let mimic = dicegrad::gradient(
        l.view(),
        p.view(),
        &request(LossPatch {
            loss: Some(LossKind::Mimic),
            class_weights: Some(Some(a.clone())),
            ..LossPatch::default()
        }),
    )
    .unwrap();
    let n = labels.len();
    for k in 0..K {
        // c_k = N_k/(K·D_k²), from the sums by hand
        let s: f64 = probs[k * n..(k + 1) * n].iter().map(|&v| f64::from(v)).sum();
        let i: f64 = (0..n).filter(|&v| usize::from(labels[v]) == k).map(|v| f64::from(probs[k * n + v])).sum();
        let g = labels.iter().filter(|&&v| usize::from(v) == k).count() as f64;
        let dd = s + g + 1e-5;
        let c = (2.0 * i + 1e-5) / (K as f64 * dd * dd);
        for (dv, mv) in dice.index_axis(ndarray::Axis(0), k).iter().zip(mimic.index_axis(ndarray::Axis(0), k)) {
            let tol = 2.0 * f64::from(f32::EPSILON) * f64::from(dv.abs().max(mv.abs()));
            let diff = f64::from(*dv) - f64::from(*mv);
            assert!((diff - c).abs() <= tol, "channel {k}: dice {dv} − mimic {mv} = {diff}, c = {c}");
        }
    }
}

#[test]
fn the_table_shows_the_weights_and_cross_entropy_says_why_it_has_none() {
    let d = tmp();
    let (labels, probs) = data(14, None);
    let (lp, pp) = files(&d, &labels, &probs);
    let out = dicegrad().args(["analyze", "--wide", "--labels"]).arg(&lp).arg("--pred").arg(&pp).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let r = report(&lp, &pp, &[]);
    let header = text.lines().find(|l| l.starts_with("ch ")).unwrap();
    assert!(header.contains("mimic w") && header.trim_end().ends_with(" a"), "{header}");
    for ch in r["channels"].as_array().unwrap() {
        let w = format!("{:.4}", ch["mimic_weight"].as_f64().unwrap());
        let row = text.lines().find(|l| l.starts_with(&format!(" {} ", ch["channel"]))).unwrap();
        assert!(row.contains(&w), "{row} lacks {w}");
    }
    assert!(text.contains(&format!("Σa = {:.4e}", r["mimic_weight_total"].as_f64().unwrap())), "{text}");
    let ce = report(&lp, &pp, &["--loss", "ce"]);
    assert!(ce["mimic_weight_total"].is_null());
    assert!(ce["channels"].as_array().unwrap().iter().all(|c| c["mimic_weight"].is_null()));
    let out =
        dicegrad().args(["analyze", "--loss", "ce", "--labels"]).arg(&lp).arg("--pred").arg(&pp).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("mimic weights: none, cross-entropy's dL/ds = −g/(N·s)"), "{text}");
}

#[test]
fn the_weights_of_a_dice_part_leave_out_its_lambda_and_the_loss_weight() {
    let d = tmp();
    let (labels, probs) = data(15, None);
    let (lp, pp) = files(&d, &labels, &probs);
    let plain = report(&lp, &pp, &[]);
    let scaled = report(&lp, &pp, &["--loss", "dice+ce", "--lambda-dice", "0.3", "--loss-weight", "0.5"]);
    for (p, s) in plain["channels"].as_array().unwrap().iter().zip(scaled["channels"].as_array().unwrap()) {
        close(s["mimic_weight"].as_f64().unwrap(), p["mimic_weight"].as_f64().unwrap(), "weight");
        close(s["closed_form"]["a"].as_f64().unwrap(), 0.15 * p["closed_form"]["a"].as_f64().unwrap(), "a");
    }
}

#[test]
fn a_batch_gives_each_case_its_weights_and_their_spread() {
    let d = tmp();
    let (out, written) = batch_of(&d, &[(21, None), (22, None), (23, None)], &[]);
    let by_case: Vec<Vec<f64>> = written
        .iter()
        .map(|(labels, probs)| {
            let a = a_by_hand(labels, probs, &[0, 1, 2, 3]);
            let t: f64 = a.iter().sum();
            a.iter().map(|v| v / t).collect()
        })
        .collect();
    let mut csv = ::csv::Reader::from_path(out.join("cases.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in csv.records() {
        let row = row.unwrap();
        let case: usize = row[col("case")].trim_start_matches('c').parse().unwrap();
        let k: usize = row[col("channel")].parse().unwrap();
        close(row[col("mimic_weight")].parse().unwrap(), by_case[case][k], "cases.csv");
    }
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    for ch in summary["channels"].as_array().unwrap() {
        let k = ch["channel"].as_u64().unwrap() as usize;
        let mut v: Vec<f64> = by_case.iter().map(|w| w[k]).collect();
        v.sort_by(f64::total_cmp);
        let st = &ch["mimic_weight"];
        close(st["median"].as_f64().unwrap(), v[1], "median");
        close(st["min"].as_f64().unwrap(), v[0], "min");
        close(st["max"].as_f64().unwrap(), v[2], "max");
        close(st["mean"].as_f64().unwrap(), v.iter().sum::<f64>() / 3.0, "mean");
    }
}

#[test]
fn patches_of_the_whole_volume_have_the_volume_s_weights() {
    let d = tmp();
    let (labels, probs) = data(16, None);
    let (lp, pp) = files(&d, &labels, &probs);
    let size = format!("{},{},{}", SHAPE[0], SHAPE[1], SHAPE[2]);
    let r = report(&lp, &pp, &["--patch-size", &size, "--batch-size", "1", "--patches", "3", "--fg-oversample", "0"]);
    let a = a_by_hand(&labels, &probs, &[0, 1, 2, 3]);
    let total: f64 = a.iter().sum();
    for ch in r["training"]["channels"].as_array().unwrap() {
        let k = ch["channel"].as_u64().unwrap() as usize;
        let s = &ch["mimic_weight"];
        assert_eq!(s["count"], 3, "{s}");
        for q in ["min", "median", "max"] {
            close(s[q].as_f64().unwrap(), a[k] / total, q);
        }
    }
}

#[test]
fn a_track_gives_each_step_its_weights() {
    let d = tmp();
    let (labels, _) = data(31, None);
    let lp = at(&d, "labels.nii.gz");
    Nii::u8(&SHAPE, &labels).write(&lp);
    let mut want = Vec::new();
    let mut preds = Vec::new();
    for (step, seed) in [(10u64, 32u64), (20, 33)] {
        let (_, probs) = labels_and_probs(seed, labels.len(), K);
        let pp = at(&d, &format!("epoch_{step:03}.nii.gz"));
        Nii::f32(&[SHAPE[0], SHAPE[1], SHAPE[2], K], &probs).write(&pp);
        let a = a_by_hand(&labels, &probs, &[0, 1, 2, 3]);
        let t: f64 = a.iter().sum();
        want.push((a.clone(), a.iter().map(|v| v / t).collect::<Vec<f64>>()));
        preds.push(pp);
    }
    let out = at(&d, "track");
    let run = dicegrad()
        .args(["track", "--quiet", "--labels"])
        .arg(&lp)
        .arg("--pred")
        .args(&preds)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let series: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("series.json")).unwrap()).unwrap();
    for (step, (a, w)) in series["steps"].as_array().unwrap().iter().zip(&want) {
        for ch in step["channels"].as_array().unwrap() {
            let k = ch["channel"].as_u64().unwrap() as usize;
            close(ch["mimic_weight"].as_f64().unwrap(), w[k], "series weight");
            close(ch["mimic_a"].as_f64().unwrap(), a[k], "series a");
        }
    }
    let page = std::fs::read_to_string(out.join("track.html")).unwrap();
    assert!(page.contains("<th>mimic weight</th>") || page.contains(">mimic weight<"), "track.html names the column");
    assert!(page.contains(&format!("{:.4}", want[1].1[1])), "track.html shows the weights");
}

#[test]
fn class_weights_of_zero_are_named_as_the_reason_there_are_no_weights() {
    let d = tmp();
    let (labels, probs) = data(41, None);
    let (lp, pp) = files(&d, &labels, &probs);
    let out = dicegrad()
        .args(["analyze", "--class-weights", "0,0,0,0", "--labels"])
        .arg(&lp)
        .arg("--pred")
        .arg(&pp)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("mimic weights: none, the loss gives the ground truth no weight"), "{text}");
    assert!(!text.contains("no channel in the loss has a foreground voxel"), "{text}");
}

#[test]
fn cross_entropy_has_no_raw_weight_either() {
    let d = tmp();
    let (out, _) = batch_of(&d, &[(42, None)], &["--loss", "ce"]);
    let mut csv = ::csv::Reader::from_path(out.join("cases.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let (w, a) =
        (header.iter().position(|h| h == "mimic_weight").unwrap(), header.iter().position(|h| h == "mimic_a").unwrap());
    for row in csv.records() {
        let row = row.unwrap();
        assert_eq!((&row[w], &row[a]), ("", ""), "{row:?}");
    }
    let table = dicegrad()
        .args(["analyze", "--wide", "--loss", "ce", "--labels"])
        .arg(d.path().join("labels/c0.nii.gz"))
        .arg("--pred")
        .arg(d.path().join("preds/c0.nii.gz"))
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    let row = text.lines().find(|l| l.starts_with(" 1 ")).unwrap();
    assert!(row.split_whitespace().rev().take(2).all(|c| c == "–"), "mimic w and a are both undefined: {row}");
}

#[test]
fn a_case_without_the_class_is_left_out_of_its_weight_s_spread() {
    let d = tmp();
    let (out, written) = batch_of(&d, &[(51, None), (52, None), (53, Some(3))], &[]);
    let with_class_3: Vec<f64> = written[..2]
        .iter()
        .map(|(labels, probs)| {
            let a = a_by_hand(labels, probs, &[0, 1, 2, 3]);
            a[3] / a.iter().sum::<f64>()
        })
        .collect();
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let st = &summary["channels"][3]["mimic_weight"];
    assert_eq!(st["n"], 2, "{st}");
    close(
        st["mean"].as_f64().unwrap(),
        (with_class_3[0] + with_class_3[1]) / 2.0,
        "mean over the cases with the class",
    );
}
