//! The inference in `summary.json` of `dicegrad batch --compare ce,mimic`, checked against a
//! recomputation here from `cases.jsonl`: each mean's 95 % confidence interval as mean ± t·s/√n
//! with the t quantile taken from scipy, and each paired test of two pairs' cosines by ranking the
//! differences by hand and counting all 2^n sign assignments for the p-value.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// scipy 1.17.1 `stats.t.ppf(0.975, df)` for df = 7 (8 cases) and df = 9 (10 cases).
const T_975_DF7: f64 = 2.364624251592784;
const T_975_DF9: f64 = 2.262157162798205;

fn batch(labels: &Path, preds: &Path, out: &Path) {
    dicegrad()
        .args(["batch", "--quiet", "--compare", "ce,mimic", "--labels-dir"])
        .arg(labels)
        .arg("--pred-dir")
        .arg(preds)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

fn records(out: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("cases.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn summary(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap()
}

/// Channel `k`'s row of a record.
fn row(rec: &Value, k: u64) -> &Value {
    rec["channels"].as_array().unwrap().iter().find(|c| c["channel"] == k).unwrap()
}

/// The cosine of pair `pair` in a row, when there is one.
fn cosine(row: &Value, pair: &str) -> Option<f64> {
    row["comparisons"].as_array().unwrap().iter().find(|p| p["pair"] == pair)?["cosine"].as_f64()
}

/// Checks `stats` (a `Stats` of summary.json) against mean ± t·s/√n of `x`.
fn check_interval(what: &str, stats: &Value, x: &[f64], t: f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let s = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let half = t * s / n.sqrt();
    assert_eq!(stats["n"].as_u64(), Some(x.len() as u64), "{what}");
    let tol = 1e-9 * (mean.abs() + half);
    for (field, want) in [("ci95_low", mean - half), ("ci95_high", mean + half)] {
        let got = stats[field].as_f64().unwrap_or_else(|| panic!("{what}: {field} missing"));
        assert!((got - want).abs() <= tol, "{what} {field}: {got} vs {want}");
    }
}

/// Ranks of |d| (1..n, ties averaged), by counting: 1 + #smaller + (#equal − 1)/2.
fn ranks(d: &[f64]) -> Vec<f64> {
    d.iter()
        .map(|x| {
            let smaller = d.iter().filter(|y| y.abs() < x.abs()).count();
            let equal = d.iter().filter(|y| y.abs() == x.abs()).count();
            1.0 + smaller as f64 + (equal - 1) as f64 / 2.0
        })
        .collect()
}

/// The two-sided p-value of W+ = `w` by enumerating every sign assignment of the integer ranks `r`.
fn p_by_enumeration(r: &[f64], w: f64) -> f64 {
    let (mut below, mut above) = (0u64, 0u64);
    for mask in 0u64..(1 << r.len()) {
        let s: f64 = r.iter().enumerate().filter(|(i, _)| mask >> i & 1 == 1).map(|(_, v)| v).sum();
        below += u64::from(s <= w);
        above += u64::from(s >= w);
    }
    (2.0 * below.min(above) as f64 / (1u64 << r.len()) as f64).min(1.0)
}

/// Checks every mean's interval and every cosine test of `out` against `cases.jsonl`; returns the
/// W+ and n of each test.
fn check_run(out: &Path, t: f64) -> Vec<(f64, usize)> {
    let recs = records(out);
    let s = summary(out);
    let losses: Vec<f64> = recs.iter().map(|r| r["loss"].as_f64().unwrap()).collect();
    check_interval("loss", &s["loss"], &losses, t);
    let mut seen = Vec::new();
    for ch in s["channels"].as_array().unwrap() {
        let k = ch["channel"].as_u64().unwrap();
        let rows: Vec<&Value> = recs.iter().map(|r| row(r, k)).collect();
        let dice: Vec<f64> = rows.iter().map(|r| r["soft_dice"].as_f64().unwrap()).collect();
        check_interval(&format!("channel {k} soft Dice"), &ch["soft_dice"], &dice, t);
        let pairs: Vec<&str> =
            ch["comparisons"].as_array().unwrap().iter().map(|p| p["pair"].as_str().unwrap()).collect();
        assert_eq!(pairs, ["dice vs ce", "dice vs mimic", "ce vs mimic"]);
        for (p, pair) in pairs.iter().enumerate() {
            let cos: Vec<f64> = rows.iter().map(|r| cosine(r, pair).unwrap()).collect();
            check_interval(&format!("channel {k} {pair} cosine"), &ch["comparisons"][p]["cosine"], &cos, t);
        }
        let tests = ch["cosine_tests"].as_array().unwrap();
        let names: Vec<(&str, &str)> =
            tests.iter().map(|t| (t["a"].as_str().unwrap(), t["b"].as_str().unwrap())).collect();
        assert_eq!(names, [(pairs[0], pairs[1]), (pairs[0], pairs[2]), (pairs[1], pairs[2])]);
        for test in tests {
            let (a, b) = (test["a"].as_str().unwrap(), test["b"].as_str().unwrap());
            let d: Vec<f64> = rows.iter().map(|r| cosine(r, a).unwrap() - cosine(r, b).unwrap()).collect();
            let nonzero: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
            let r = ranks(&nonzero);
            let w: f64 = nonzero.iter().zip(&r).filter(|(x, _)| **x > 0.0).map(|(_, r)| r).sum();
            let what = format!("channel {k}: {a} against {b}");
            assert_eq!(test["cases"].as_u64(), Some(d.len() as u64), "{what}");
            assert_eq!(test["n"].as_u64(), Some(nonzero.len() as u64), "{what}");
            assert_eq!(test["statistic"].as_f64(), Some(w), "{what}");
            assert!(r.iter().all(|v| v.fract() == 0.0), "{what}: tied differences, the data set needs changing");
            assert_eq!(test["method"], "exact", "{what}");
            let p = test["p_value"].as_f64().unwrap();
            assert_eq!(p, p_by_enumeration(&r, w), "{what}");
            let mut sorted = d.clone();
            sorted.sort_by(f64::total_cmp);
            let m = sorted.len() / 2;
            let median = if sorted.len() % 2 == 1 { sorted[m] } else { (sorted[m - 1] + sorted[m]) / 2.0 };
            assert_eq!(test["median_difference"].as_f64(), Some(median), "{what}");
            seen.push((w, nonzero.len()));
        }
    }
    seen
}

#[test]
fn intervals_and_cosine_tests_match_a_recomputation_from_the_case_records() {
    let d = tmp();
    let (l, p) = synth_dataset(&d, 8, |i| format!("case_{i}"));
    let out = at(&d, "out");
    batch(&l, &p, &out);
    let tests = check_run(&out, T_975_DF7);
    assert_eq!(tests.len(), 3 * 3, "three channels, three pairs of pairs each");
    // the page shows the mean loss with its interval, and the tests
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let loss = &summary(&out)["loss"];
    let [m, lo, hi] = ["mean", "ci95_low", "ci95_high"].map(|f| loss[f].as_f64().unwrap());
    assert!(html.contains(&format!("{m:.4} ({lo:.4} to {hi:.4})")), "mean loss and its interval on the page");
    assert!(html.contains("Wilcoxon signed-rank test of cosine A − cosine B"));
    assert_eq!(html.matches("<td>dice vs ce</td><td>ce vs mimic</td>").count(), 3, "one row per channel");
}

/// `n` synthetic 3-class cases whose predictions differ in noise and shift, so that the pairs'
/// cosines do not all move together.
fn varied_dataset(dir: &tempfile::TempDir, n: usize) -> (PathBuf, PathBuf) {
    let (labels, preds) = (at(dir, "labels"), at(dir, "preds"));
    std::fs::create_dir_all(&labels).unwrap();
    std::fs::create_dir_all(&preds).unwrap();
    let noise = [0.3, 2.5, 1.0, 4.0, 0.6, 3.0, 1.5, 0.2, 2.0, 5.0];
    for i in 0..n {
        let tmp = at(dir, &format!("synth{i}"));
        dicegrad()
            .args(["synth", "--classes", "3", "--shape", "12,10,8", "--seed", &i.to_string()])
            .args(["--noise", &noise[i % noise.len()].to_string(), "--shift", &(i % 4).to_string()])
            .arg("--out")
            .arg(&tmp)
            .assert()
            .success();
        std::fs::rename(tmp.join("labels.nii.gz"), labels.join(format!("case_{i}.nii.gz"))).unwrap();
        std::fs::rename(tmp.join("probs.nii.gz"), preds.join(format!("case_{i}.nii.gz"))).unwrap();
    }
    (labels, preds)
}

#[test]
fn a_test_with_differences_of_both_signs_matches_the_count_of_sign_assignments() {
    let d = tmp();
    let (l, p) = varied_dataset(&d, 10);
    let out = at(&d, "out");
    batch(&l, &p, &out);
    let tests = check_run(&out, T_975_DF9);
    assert!(
        tests.iter().any(|&(w, n)| w > 0.0 && w < (n * (n + 1) / 2) as f64),
        "some test should have differences of both signs: {tests:?}"
    );
}
