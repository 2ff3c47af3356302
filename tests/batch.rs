//! `dicegrad batch` and `merge`: pairing rules, nnU-Net `.npz` input, failure isolation, resume
//! after an interruption, shards + merge and any `--jobs` giving the same bytes, and the pooled
//! ("batch") Dice against a value computed here from the files.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use dicegrad::batch::pairing::pair;
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
use serde_json::Value;

fn values(path: &Path) -> Vec<f64> {
    let obj = ReaderOptions::new().read_file(path).unwrap();
    obj.into_volume().into_ndarray::<f64>().unwrap().t().iter().copied().collect()
}

/// A data set of `n` synthetic 3-class cases: labels/ and preds/ (probabilities).
fn dataset(dir: &tempfile::TempDir, n: usize) -> (PathBuf, PathBuf) {
    synth_dataset(dir, n, |i| format!("case_{i:03}"))
}

fn batch(labels: &Path, preds: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    dicegrad()
        .args(["batch", "--quiet", "--labels-dir"])
        .arg(labels)
        .arg("--pred-dir")
        .arg(preds)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn pairs_by_name_prefers_nnunet_npz_and_finds_monai_folders_and_lists_the_rest() {
    let d = tmp();
    let (l, p) = (at(&d, "l"), at(&d, "p"));
    for dir in [&l, &p, &p.join("c3")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    for name in ["c1.nii.gz", "c2.nii.gz", "c3.nii", "c4.nii.gz"] {
        std::fs::write(l.join(name), b"x").unwrap();
    }
    std::fs::write(p.join("c1.nii.gz"), b"x").unwrap(); // same name
    std::fs::write(p.join("c2.nii.gz"), b"x").unwrap(); // nnU-Net segmentation ...
    std::fs::write(p.join("c2.npz"), b"x").unwrap(); // ... and its probabilities: preferred
    std::fs::write(p.join("c3").join("c3_seg.nii.gz"), b"x").unwrap(); // MONAI
    std::fs::write(p.join("orphan.nii.gz"), b"x").unwrap();
    std::fs::write(p.join("plans.json"), b"{}").unwrap();
    let got = pair(&l, &p, "_seg").unwrap();
    let ids: Vec<(&str, String)> =
        got.cases.iter().map(|c| (c.id.as_str(), c.pred.strip_prefix(&p).unwrap().display().to_string())).collect();
    assert_eq!(ids, vec![("c2", "c2.npz".to_string()), ("c3", "c3/c3_seg.nii.gz".to_string())]);
    let got = pair(&l, &p, "").unwrap();
    let ids: Vec<&str> = got.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec!["c1", "c2"]);
    assert_eq!(got.unpaired_labels, vec![l.join("c3.nii"), l.join("c4.nii.gz")]);
    assert_eq!(got.unpaired_predictions, vec![p.join("c3").join("c3_seg.nii.gz"), p.join("orphan.nii.gz")]);
    let skipped: Vec<(String, &str)> = got.skipped.iter().map(|s| (s.file.clone(), s.reason.as_str())).collect();
    assert_eq!(skipped, vec![(p.join("plans.json").display().to_string(), "not a NIfTI (.nii, .nii.gz) or .npz file")]);
}

#[test]
fn reads_nnunet_npz_probabilities_like_the_same_values_in_nifti() {
    let d = tmp();
    let (l, p, q) = (at(&d, "l"), at(&d, "p"), at(&d, "q"));
    for dir in [&l, &p, &q] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let (x, y, z, c) = (5, 4, 3, 3);
    let (labels, probs) = labels_and_probs(3, x * y * z, c);
    // exactly representable in float16, so both routes see the same numbers
    let probs: Vec<f32> = probs.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    Nii::u8(&[x, y, z], &labels).write(&l.join("a.nii.gz"));
    write_npz(&p.join("a.npz"), [c, z, y, x], &probs, true);
    Nii::f32(&[x, y, z, c], &probs).write(&q.join("a.nii.gz"));
    let (o1, o2) = (at(&d, "o1"), at(&d, "o2"));
    assert!(batch(&l, &p, &o1, &[]).status.success());
    assert!(batch(&l, &q, &o2, &[]).status.success());
    let rec = |o: &Path| -> Value {
        serde_json::from_slice(read(&o.join("cases.jsonl")).split(|b| *b == b'\n').next().unwrap()).unwrap()
    };
    let (a, b) = (rec(&o1), rec(&o2));
    assert_eq!(a["status"], "ok", "{a}");
    assert_eq!(a["loss"], b["loss"]);
    assert_eq!(a["channels"], b["channels"]);
    assert_eq!(a["sums"], b["sums"]);
}

#[test]
fn one_bad_case_fails_alone_and_the_run_exits_with_1() {
    let d = tmp();
    let (l, p) = dataset(&d, 3);
    std::fs::write(p.join("case_001.nii.gz"), b"not a volume").unwrap();
    let out = at(&d, "out");
    let res = batch(&l, &p, &out, &[]);
    assert_eq!(res.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("failed: case_001") && stderr.contains("not a NIfTI volume"), "{stderr}");
    let csv = String::from_utf8(read(&out.join("cases.csv"))).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("case_001,failed,") && l.contains("not a NIfTI volume")));
    assert_eq!(csv.lines().filter(|l| l.contains(",ok,")).count(), 2 * 3);
    let s: Value = serde_json::from_slice(&read(&out.join("summary.json"))).unwrap();
    assert_eq!((s["cases"]["ok"].as_u64(), s["cases"]["failed"].as_u64()), (Some(2), Some(1)));
}

#[test]
fn jobs_shards_merge_and_resume_all_give_the_same_bytes() {
    let d = tmp();
    let (l, p) = dataset(&d, 5);
    let opts = ["--compare", "ce,mimic"];
    let single = at(&d, "single");
    assert!(batch(&l, &p, &single, &[&opts[..], &["--jobs", "1"]].concat()).status.success());
    let files = ["cases.csv", "cases.jsonl", "summary.json"];
    let summary: Value = serde_json::from_slice(&read(&single.join("summary.json"))).unwrap();
    assert_eq!(summary["channels"][0]["cosine_tests"].as_array().map(Vec::len), Some(3), "tests between the 3 pairs");
    // any number of jobs
    let three = at(&d, "three");
    assert!(batch(&l, &p, &three, &[&opts[..], &["--jobs", "3"]].concat()).status.success());
    for f in files {
        assert_eq!(read(&single.join(f)), read(&three.join(f)), "{f} with --jobs 3");
    }
    // three shards, merged
    let shards: Vec<PathBuf> = (0..3).map(|k| at(&d, &format!("shard{k}"))).collect();
    for (k, s) in shards.iter().enumerate() {
        assert!(batch(&l, &p, s, &[&opts[..], &["--shard", &format!("{k}/3")]].concat()).status.success());
    }
    let merged = at(&d, "merged");
    dicegrad().args(["merge", "--out"]).arg(&merged).args(&shards).assert().success();
    for f in files {
        assert_eq!(read(&single.join(f)), read(&merged.join(f)), "{f} after merge");
    }
    // a run killed after two cases, mid-way through the third line
    let resumed = at(&d, "resumed");
    assert!(batch(&l, &p, &resumed, &opts).status.success());
    let jsonl = String::from_utf8(read(&resumed.join("cases.jsonl"))).unwrap();
    let lines: Vec<&str> = jsonl.lines().collect();
    std::fs::write(resumed.join("cases.jsonl"), format!("{}\n{}\n{}", lines[0], lines[1], &lines[2][..40])).unwrap();
    std::fs::remove_file(resumed.join("summary.json")).unwrap();
    let again = batch(&l, &p, &resumed, &opts);
    assert_eq!(again.status.code(), Some(2), "an existing run needs --resume or --force");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    assert!(batch(&l, &p, &resumed, &[&opts[..], &["--resume"]].concat()).status.success());
    for f in files {
        assert_eq!(read(&single.join(f)), read(&resumed.join(f)), "{f} after --resume");
    }
}

#[test]
fn pooled_batch_dice_matches_sums_computed_from_the_files() {
    let d = tmp();
    let (l, p) = dataset(&d, 3);
    let out = at(&d, "out");
    assert!(batch(&l, &p, &out, &[]).status.success());
    let (mut i, mut s, mut g) = ([0.0f64; 3], [0.0f64; 3], [0.0f64; 3]);
    for case in 0..3 {
        let labels = values(&l.join(format!("case_{case:03}.nii.gz")));
        let probs = values(&p.join(format!("case_{case:03}.nii.gz")));
        let n = labels.len();
        for k in 0..3 {
            for v in 0..n {
                let pr = probs[k * n + v];
                s[k] += pr;
                if labels[v] as usize == k {
                    i[k] += pr;
                    g[k] += 1.0;
                }
            }
        }
    }
    let want: f64 = (0..3).map(|k| 1.0 - (2.0 * i[k] + 1e-5) / (s[k] + g[k] + 1e-5)).sum::<f64>() / 3.0;
    let summary: Value = serde_json::from_slice(&read(&out.join("summary.json"))).unwrap();
    let got = summary["batch"]["loss"].as_f64().unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    let per_case = summary["batch"]["per_case_mean_loss"].as_f64().unwrap();
    assert!((per_case - summary["loss"]["mean"].as_f64().unwrap()).abs() < 1e-15);
    assert_ne!(got, per_case, "pooled and per-case losses differ in general");
}

#[test]
fn a_run_killed_mid_way_resumes_to_the_same_files() {
    let d = tmp();
    let (l, p) = dataset(&d, 8);
    let reference = at(&d, "reference");
    assert!(batch(&l, &p, &reference, &["--jobs", "1"]).status.success());
    let out = at(&d, "killed");
    let bin = assert_cmd::cargo::cargo_bin("dicegrad");
    let mut child = std::process::Command::new(bin)
        .args(["batch", "--quiet", "--jobs", "1", "--labels-dir"])
        .arg(&l)
        .arg("--pred-dir")
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // kill it (SIGKILL) as soon as the first case is on disk
    let started = std::time::Instant::now();
    while std::fs::read(out.join("cases.jsonl")).map_or(true, |b| b.is_empty())
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let _ = child.kill(); // it may have finished already; the checks below hold either way
    child.wait().unwrap();
    let lines = read(&out.join("cases.jsonl")).iter().filter(|&&b| b == b'\n').count();
    eprintln!("killed with {lines} of 8 cases on disk");
    assert!(batch(&l, &p, &out, &["--resume"]).status.success());
    for f in ["cases.csv", "cases.jsonl", "summary.json"] {
        assert_eq!(read(&reference.join(f)), read(&out.join(f)), "{f}");
    }
}

#[test]
fn failed_cases_name_parameters_by_their_flags() {
    let d = tmp();
    let (l, p) = dataset(&d, 2);
    // a prediction of logits where probabilities are expected
    let logits = at(&d, "logits");
    dicegrad().args(["synth", "--classes", "3", "--shape", "9,8,7", "--out"]).arg(&logits).assert().success();
    std::fs::copy(logits.join("logits.nii.gz"), p.join("case_001.nii.gz")).unwrap();
    let o = at(&d, "o");
    let out = batch(&l, &p, &o, &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed: case_001") && stderr.contains("pass --activation softmax"), "{stderr}");
    let records = String::from_utf8(read(&o.join("cases.jsonl"))).unwrap();
    assert!(records.contains("pass --activation softmax") && !records.contains("activation=softmax"), "{records}");
}

#[test]
fn the_pooled_loss_is_computed_with_class_weights_and_compared_losses() {
    let d = tmp();
    let (l, p) = dataset(&d, 2);
    let o = at(&d, "o");
    assert!(batch(&l, &p, &o, &["--compare", "ce", "--class-weights", "1,2,3"]).status.success());
    let summary: Value = serde_json::from_slice(&read(&o.join("summary.json"))).unwrap();
    let pooled = summary["batch"]["loss"].as_f64().expect("a pooled loss");
    let (i, s, g): (Vec<f64>, Vec<f64>, Vec<f64>) = {
        let sums = &summary["batch"]["sums"]["channels"];
        let f = |key: &str| (0..3).map(|k| sums[k][key].as_f64().unwrap()).collect();
        (f("intersection"), f("pred_sum"), f("label_count"))
    };
    // mean over the 3 channels of w_k·(1 − (2I + ε)/(S + G + ε)), from the pooled sums
    let want = (0..3).map(|k| (k + 1) as f64 * (1.0 - (2.0 * i[k] + 1e-5) / (s[k] + g[k] + 1e-5))).sum::<f64>() / 3.0;
    assert!((pooled - want).abs() < 1e-12, "{pooled} vs {want}");
}

#[test]
fn a_label_file_is_never_its_own_prediction() {
    let d = tmp();
    let (l, _) = dataset(&d, 2);
    let o = at(&d, "o");
    let out = batch(&l, &l, &o, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no case to analyse: none of the 2 label files"), "{err}");
    assert!(!o.exists(), "nothing is written when no case pairs");
}

#[test]
fn resuming_with_other_parameters_says_which() {
    let d = tmp();
    let (l, p) = dataset(&d, 1);
    let o = at(&d, "o");
    assert!(batch(&l, &p, &o, &["--smooth-dr", "0.5"]).status.success());
    let out = batch(&l, &p, &o, &["--smooth-dr", "0.25", "--resume"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("--resume: ")
            && err.contains("whose parameters.loss.overrides.smooth_dr (0.5 in the run, 0.25 now) differ"),
        "{err}"
    );
}
