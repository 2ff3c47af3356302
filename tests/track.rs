//! `dicegrad track`: each step's figures equal those of `analyze` (files) or `batch` (folders) on
//! that step's predictions; the measured level ratio follows 1 − 2/Dice at every step; steps are
//! named and sorted by number; a track resumes where it stopped and refuses what it cannot trust.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// A 3-class case (labels) and its prediction at three checkpoints (less shift and noise later),
/// `epoch_5`, `epoch_20`, `epoch_100` (in a shuffled order): (labels, predictions as given).
fn checkpoints(dir: &tempfile::TempDir) -> (PathBuf, Vec<PathBuf>) {
    let mut preds = Vec::new();
    for (epoch, shift, noise) in [(20, "1", "1.0"), (100, "0", "0.3"), (5, "3", "2.5")] {
        let tmp = at(dir, &format!("synth{epoch}"));
        dicegrad()
            .args(["synth", "--classes", "3", "--shape", "14,12,9", "--seed", "7", "--shift", shift, "--noise", noise])
            .arg("--out")
            .arg(&tmp)
            .assert()
            .success();
        let p = at(dir, &format!("epoch_{epoch}.nii.gz"));
        std::fs::rename(tmp.join("probs.nii.gz"), &p).unwrap();
        preds.push(p);
    }
    (at(dir, "synth5/labels.nii.gz"), preds)
}

fn track(labels: &Path, preds: &[PathBuf], out: &Path, extra: &[&str]) -> std::process::Output {
    dicegrad()
        .args(["track", "--quiet", "--labels"])
        .arg(labels)
        .arg("--pred")
        .args(preds)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn each_step_equals_analyze_on_its_file_and_the_ratio_follows_one_minus_two_over_dice() {
    let d = tmp();
    let (labels, preds) = checkpoints(&d);
    let out = at(&d, "track");
    ok(track(&labels, &preds, &out, &["--compare", "ce"]));
    let series = json(&out.join("series.json"));
    let steps = series["steps"].as_array().unwrap();
    assert_eq!(steps.iter().map(|s| s["step"].as_u64().unwrap()).collect::<Vec<_>>(), [5, 20, 100]);
    for s in steps {
        let file = PathBuf::from(s["source"].as_str().unwrap());
        let report = json_of(
            dicegrad().args(["analyze", "--json", "--compare", "ce", "--labels"]).arg(&labels).arg("--pred").arg(&file),
        );
        assert_eq!(s["loss"], report["loss"]["value"], "step {}", s["step"]);
        let channels = s["channels"].as_array().unwrap();
        assert_eq!(channels.len(), 3);
        for (c, r) in channels.iter().zip(report["channels"].as_array().unwrap()) {
            let g = &r["gradient"];
            for (ours, theirs) in [
                ("soft_dice", &r["soft_dice"]),
                ("hard_dice", &r["hard_dice"]),
                ("loss_term", &r["loss_term"]),
                ("foreground_level", &g["foreground"]["mean"]),
                ("background_level", &g["background"]["mean"]),
                ("dynamic_range", &g["dynamic_range"]["ratio"]),
                ("float16_window_log2_min", &g["mixed_precision"]["loss_scale_window"]["log2_min"]),
                ("float16_window_log2_max", &g["mixed_precision"]["loss_scale_window"]["log2_max"]),
                ("float16_zero_share", &g["mixed_precision"]["at_scale"]["zero_share"]),
                ("level_ratio_closed_form", &g["level_ratio"]["closed_form"]),
            ] {
                assert_eq!(&c[ours], theirs, "step {} channel {} {ours}", s["step"], c["channel"]);
            }
            let cos = &report["comparison"]["pairs"][0]["channels"][c["channel"].as_u64().unwrap() as usize]["cosine"];
            assert_eq!(&c["cosines"][0]["cosine"], cos);
            // the closed form of the Dice gradient's level ratio, from the soft Dice alone
            let dice = c["soft_dice"].as_f64().unwrap();
            let measured = c["level_ratio"].as_f64().unwrap();
            assert!(close(measured, 1.0 - 2.0 / dice, 1e-6), "step {}: {measured} vs {}", s["step"], 1.0 - 2.0 / dice);
            assert!(close(c["dice_ratio"].as_f64().unwrap(), 1.0 - 2.0 / dice, 1e-15));
        }
    }
    // one CSV row per step and channel, in step order
    let csv = std::fs::read_to_string(out.join("series.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 1 + 3 * 3);
    assert!(rows[0].starts_with("step,source,status,") && rows[0].ends_with(",dice_vs_ce_cosine"), "{}", rows[0]);
    assert!(rows[1].starts_with("5,") && rows[9].starts_with("100,"));
    for f in ["series.png", "series.svg", "track.html", "track.json", "steps.jsonl"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let page = std::fs::read_to_string(out.join("track.html")).unwrap();
    assert!(page.contains("follows 1 − 2/soft Dice within a relative"), "the page reads the ratio");
}

#[test]
fn steps_given_name_the_predictions_and_any_number_of_jobs_gives_the_same_series() {
    let d = tmp();
    let (labels, preds) = checkpoints(&d);
    let (a, b) = (at(&d, "a"), at(&d, "b"));
    ok(track(&labels, &preds, &a, &["--jobs", "1"]));
    ok(track(&labels, &preds, &b, &["--jobs", "3"]));
    assert_eq!(std::fs::read(a.join("series.csv")).unwrap(), std::fs::read(b.join("series.csv")).unwrap());
    let c = at(&d, "c");
    ok(track(&labels, &preds, &c, &["--steps", "3,1,2"]));
    let steps: Vec<(u64, String)> = json(&c.join("series.json"))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_u64().unwrap(), s["source"].as_str().unwrap().to_string()))
        .collect();
    // the order given: epoch_20 = 3, epoch_100 = 1, epoch_5 = 2
    assert!(steps[0].0 == 1 && steps[0].1.ends_with("epoch_100.nii.gz"), "{steps:?}");
    assert!(steps[2].0 == 3 && steps[2].1.ends_with("epoch_20.nii.gz"), "{steps:?}");
}

#[test]
fn names_without_a_step_duplicate_steps_and_miscounted_steps_are_refused_before_writing() {
    let d = tmp();
    let (labels, mut preds) = checkpoints(&d);
    let best = at(&d, "checkpoint_best.nii.gz");
    std::fs::copy(&preds[0], &best).unwrap();
    preds.push(best);
    let out = at(&d, "out");
    let cmd = |extra: &[&str], preds: &[PathBuf]| {
        let mut c = dicegrad();
        c.args(["track", "--labels"]).arg(&labels).arg("--pred").args(preds).arg("--out").arg(&out).args(extra);
        c
    };
    let e = fails_with_2(&mut cmd(&[], &preds));
    assert!(e.contains("checkpoint_best.nii.gz: no step number in its name") && e.contains("--steps"), "{e}");
    let e = fails_with_2(&mut cmd(&["--steps", "1,2"], &preds));
    assert!(e.contains("--steps gives 2 step numbers for 4 predictions"), "{e}");
    let e = fails_with_2(&mut cmd(&["--steps", "1,2,3,3"], &preds));
    assert!(e.contains("are both step 3"), "{e}");
    assert!(!out.exists(), "nothing written");
    let e = fails_with_2(&mut cmd(&[], &[preds[0].clone(), at(&d, "epoch_7.nii.gz")]));
    assert!(e.contains("epoch_7.nii.gz: does not exist"), "{e}");
}

#[test]
fn an_interrupted_track_resumes_to_the_same_series_and_other_options_are_refused() {
    let d = tmp();
    let (labels, preds) = checkpoints(&d);
    let (whole, cut) = (at(&d, "whole"), at(&d, "cut"));
    ok(track(&labels, &preds, &whole, &[]));
    ok(track(&labels, &preds, &cut, &[]));
    // as a killed run leaves it: the first record complete, the second cut short, no outputs
    let jsonl = std::fs::read_to_string(cut.join("steps.jsonl")).unwrap();
    let first = jsonl.lines().next().unwrap();
    std::fs::write(cut.join("steps.jsonl"), format!("{first}\n{}", &jsonl[first.len() + 1..first.len() + 40])).unwrap();
    for f in ["series.csv", "series.json", "track.html"] {
        std::fs::remove_file(cut.join(f)).unwrap();
    }
    let again = track(&labels, &preds, &cut, &[]);
    let e = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2));
    assert!(e.contains("already holds a track; pass --resume to continue it or --force to start over"), "{e}");
    let e =
        String::from_utf8_lossy(&track(&labels, &preds, &cut, &["--resume", "--smooth-dr", "0.5"]).stderr).to_string();
    assert!(e.contains("holds a track whose parameters.loss.overrides.smooth_dr"), "{e}");
    ok(track(&labels, &preds, &cut, &["--resume"]));
    assert_eq!(std::fs::read(whole.join("series.csv")).unwrap(), std::fs::read(cut.join("series.csv")).unwrap());
    let lines = std::fs::read_to_string(cut.join("steps.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
    // starting over with other options
    ok(track(&labels, &preds, &cut, &["--force", "--smooth-dr", "0.5"]));
    assert_eq!(json(&cut.join("series.json"))["parameters"]["loss"]["overrides"]["smooth_dr"], 0.5);
}

#[test]
fn a_step_that_fails_is_recorded_the_others_go_on_and_the_exit_code_says_so() {
    let d = tmp();
    let (labels, mut preds) = checkpoints(&d);
    let broken = at(&d, "epoch_50.nii.gz");
    std::fs::write(&broken, b"not a nifti file").unwrap();
    preds.push(broken);
    let out = at(&d, "out");
    let o = track(&labels, &preds, &out, &[]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let series = json(&out.join("series.json"));
    let steps = series["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[2]["step"], 50);
    assert_eq!(steps[2]["status"], "failed");
    assert!(steps[2]["errors"][0].as_str().unwrap().contains("epoch_50.nii.gz"), "{}", steps[2]);
    assert!(steps.iter().filter(|s| s["status"] == "ok").count() == 3);
    let csv = std::fs::read_to_string(out.join("series.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("50,") && l.contains("failed: ")), "{csv}");
}

#[test]
fn outputs_never_reach_the_inputs() {
    let d = tmp();
    let (labels, preds) = checkpoints(&d);
    let e = fails_with_2(
        dicegrad().args(["track", "--labels"]).arg(&labels).arg("--pred").args(&preds).arg("--out").arg(d.path()),
    );
    assert!(e.contains("holds the input file") && e.contains("choose another folder"), "{e}");
    let e = fails_with_2(
        dicegrad().args(["track", "--labels"]).arg(&labels).arg("--pred").args(&preds).arg("--out").arg(&preds[0]),
    );
    assert!(e.contains("is a file, not a folder; give a folder"), "{e}");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 6, "no file added among the inputs");
}

/// Folders: two checkpoints of a 3-case data set, each pooled as `batch` pools it.
#[test]
fn folder_steps_pool_their_cases_as_batch_does() {
    let d = tmp();
    let (labels, first) = synth_dataset(&d, 3, |i| format!("case_{i}"));
    // a later checkpoint: the same labels, the predictions of other synthetic seeds sharpened
    let later = at(&d, "ckpt_40");
    std::fs::create_dir_all(&later).unwrap();
    let ckpt_10 = at(&d, "ckpt_10");
    std::fs::rename(&first, &ckpt_10).unwrap();
    for i in 0..3 {
        let tmp = at(&d, &format!("s{i}"));
        dicegrad()
            .args(["synth", "--classes", "3", "--shape", "9,8,7", "--shift", "0", "--noise", "0.2", "--seed"])
            .arg(i.to_string())
            .arg("--out")
            .arg(&tmp)
            .assert()
            .success();
        std::fs::rename(tmp.join("probs.nii.gz"), later.join(format!("case_{i}.nii.gz"))).unwrap();
    }
    let out = at(&d, "track");
    let o = dicegrad()
        .args(["track", "--quiet", "--labels-dir"])
        .arg(&labels)
        .arg("--pred-dirs")
        .arg(&later)
        .arg(&ckpt_10)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    ok(o);
    let series = json(&out.join("series.json"));
    let steps = series["steps"].as_array().unwrap();
    assert_eq!(steps.iter().map(|s| s["step"].as_u64().unwrap()).collect::<Vec<_>>(), [10, 40]);
    for s in steps {
        let folder = out.join(s["folder"].as_str().unwrap());
        // the pooled figures recomputed here from the cases' own sums
        let records: Vec<Value> = std::fs::read_to_string(folder.join("cases.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(records.len(), 3);
        for c in s["channels"].as_array().unwrap() {
            let k = c["channel"].as_u64().unwrap() as usize;
            let sum = |f: &str| records.iter().map(|r| r["sums"]["channels"][k][f].as_f64().unwrap()).sum::<f64>();
            let (i, p, g) = (sum("intersection"), sum("pred_sum"), sum("label_count"));
            let dice = (2.0 * i + 1e-5) / (p + g + 1e-5);
            assert!(close(c["soft_dice"].as_f64().unwrap(), dice, 1e-12), "{} vs {dice}", c["soft_dice"]);
            // Dice's levels from the pooled sums: c − a and c, a = 2/(K·D), c = N/(K·D²)
            let (n, dd) = (2.0 * i + 1e-5, p + g + 1e-5);
            let (a, cc) = (2.0 / (3.0 * dd), n / (3.0 * dd * dd));
            assert!(close(c["foreground_level"].as_f64().unwrap(), cc - a, 1e-12));
            assert!(close(c["background_level"].as_f64().unwrap(), cc, 1e-12));
            assert!(close(c["level_ratio"].as_f64().unwrap(), 1.0 - 2.0 / dice, 1e-12));
            let case_dice: Vec<f64> = records.iter().map(|r| r["channels"][k]["soft_dice"].as_f64().unwrap()).collect();
            let mean = case_dice.iter().sum::<f64>() / 3.0;
            assert!(close(c["spread"]["soft_dice"]["mean"].as_f64().unwrap(), mean, 1e-12));
            // its 95 % confidence interval: mean ± t(0.975; 2)·sd/√3, t from scipy's stats.t.ppf
            let sd = (case_dice.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
            let half = 4.302652729749462 * sd / 3f64.sqrt();
            assert!(close(c["spread"]["soft_dice"]["ci95_low"].as_f64().unwrap(), mean - half, 1e-9));
            assert!(close(c["spread"]["soft_dice"]["ci95_high"].as_f64().unwrap(), mean + half, 1e-9));
        }
        // the step's loss is the pooled loss of `batch` on the same folder
        let summary = json(&folder.join("summary.json"));
        assert_eq!(s["loss"], summary["batch"]["loss"]);
        assert!(folder.join("index.html").is_file());
    }
    let page = std::fs::read_to_string(out.join("track.html")).unwrap();
    assert!(page.contains("href=\"steps/10/index.html\""), "folder steps link to their pages");
}

#[test]
fn probabilities_activated_again_stop_the_track_before_it_writes_anything() {
    let d = tmp();
    let (labels, preds) = checkpoints(&d);
    let out = at(&d, "out");
    let e = fails_with_2(
        dicegrad()
            .args(["track", "--activation", "softmax", "--labels"])
            .arg(&labels)
            .arg("--pred")
            .args(&preds)
            .arg("--out")
            .arg(&out),
    );
    assert!(e.contains("step 5 (") && e.contains("--force-activation"), "{e}");
    assert!(e.ends_with("the track stopped before writing anything\n"), "{e}");
    assert!(!out.exists(), "the folder the track created is gone");
}

#[test]
fn a_forced_track_with_a_wrong_option_leaves_the_earlier_track_as_it_was() {
    let d = tmp();
    let (labels, preds) = checkpoints(&d);
    let out = at(&d, "out");
    ok(track(&labels, &preds, &out, &[]));
    let before = std::fs::read(out.join("series.csv")).unwrap();
    let o = track(&labels, &preds, &out, &["--force", "--activation", "softmax"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the track stopped before writing anything"));
    assert_eq!(std::fs::read(out.join("series.csv")).unwrap(), before);
    assert_eq!(std::fs::read_to_string(out.join("steps.jsonl")).unwrap().lines().count(), 3);
    // a first case that fails (a label file of another grid) stops a forced track the same way
    let other = at(&d, "other");
    dicegrad().args(["synth", "--shape", "5,5,5", "--out"]).arg(&other).assert().success();
    let o = track(&other.join("labels.nii.gz"), &preds, &out, &["--force"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("the earlier track in") && e.contains("is left as it was"), "{e}");
    assert_eq!(std::fs::read(out.join("series.csv")).unwrap(), before);
    // a user's files in steps/ survive the replacement of a track
    std::fs::create_dir_all(out.join("steps/mine")).unwrap();
    std::fs::write(out.join("steps/mine/notes.txt"), b"mine").unwrap();
    ok(track(&labels, &preds, &out, &["--force", "--smooth-dr", "0.5"]));
    assert_eq!(std::fs::read(out.join("steps/mine/notes.txt")).unwrap(), b"mine");
}

#[test]
fn a_resumed_track_analyses_again_the_steps_whose_file_changed_or_failed() {
    let d = tmp();
    let (labels, mut preds) = checkpoints(&d);
    let broken = at(&d, "epoch_50.nii.gz");
    std::fs::write(&broken, b"not yet written").unwrap();
    preds.push(broken.clone());
    let out = at(&d, "out");
    assert_eq!(track(&labels, &preds, &out, &[]).status.code(), Some(1));
    // the checkpoint is written at last, and another one replaced
    std::fs::copy(&preds[1], &broken).unwrap();
    std::fs::copy(&preds[1], &preds[0]).unwrap();
    let o = ok(track(&labels, &preds, &out, &["--resume"]));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("analysed again (its file changed since, or its analysis had failed): step 20, 50"), "{e}");
    let fresh = at(&d, "fresh");
    ok(track(&labels, &preds, &fresh, &[]));
    assert_eq!(std::fs::read(out.join("series.csv")).unwrap(), std::fs::read(fresh.join("series.csv")).unwrap());
}

#[test]
fn a_track_and_a_batch_never_share_a_folder_and_force_keeps_what_is_not_a_tracks() {
    let d = tmp();
    let (labels, preds) = checkpoints(&d);
    let (labels_dir, preds_dir) = synth_dataset(&d, 2, |i| format!("c{i}"));
    let b = at(&d, "batch");
    dicegrad()
        .args(["batch", "--quiet", "--labels-dir"])
        .arg(&labels_dir)
        .arg("--pred-dir")
        .arg(&preds_dir)
        .arg("--out")
        .arg(&b)
        .assert()
        .success();
    let e = fails_with_2(
        dicegrad()
            .args(["track", "--labels"])
            .arg(&labels)
            .arg("--pred")
            .args(&preds)
            .arg("--out")
            .arg(&b)
            .arg("--force"),
    );
    assert!(e.contains("holds a batch run (run.json)"), "{e}");
    let t = at(&d, "track");
    ok(track(&labels, &preds, &t, &[]));
    let e = fails_with_2(
        dicegrad()
            .args(["batch", "--labels-dir"])
            .arg(&labels_dir)
            .arg("--pred-dir")
            .arg(&preds_dir)
            .arg("--out")
            .arg(&t),
    );
    assert!(e.contains("holds a track (track.json)"), "{e}");
    // a folder of the user's named steps/ survives a forced file track
    let u = at(&d, "user");
    std::fs::create_dir_all(u.join("steps")).unwrap();
    std::fs::write(u.join("steps/notes.txt"), b"mine").unwrap();
    std::fs::write(u.join("series.csv"), b"old").unwrap();
    assert_eq!(track(&labels, &preds, &u, &[]).status.code(), Some(2), "files a track writes, without --force");
    ok(track(&labels, &preds, &u, &["--force"]));
    assert_eq!(std::fs::read(u.join("steps/notes.txt")).unwrap(), b"mine");
    // the wrong mode's flags
    let e = fails_with_2(
        dicegrad()
            .args(["track", "--labels"])
            .arg(&labels)
            .arg("--pred-dirs")
            .arg(&preds_dir)
            .arg("--out")
            .arg(at(&d, "x")),
    );
    assert!(e.contains("--labels-dir"), "{e}");
    let e = fails_with_2(
        dicegrad().args(["track", "--labels"]).arg(&labels).arg("--pred").arg(&preds_dir).arg("--out").arg(at(&d, "x")),
    );
    assert!(e.contains("is a folder") && e.contains("--pred-dirs"), "{e}");
}

#[test]
fn folder_steps_with_cases_missing_are_marked_and_an_empty_folder_is_refused_first() {
    let d = tmp();
    let (labels, preds) = synth_dataset(&d, 3, |i| format!("case_{i}"));
    let (ep10, ep20, ep30) = (at(&d, "ep10"), at(&d, "ep20"), at(&d, "ep30"));
    for dir in [&ep10, &ep20] {
        std::fs::create_dir_all(dir).unwrap();
        for i in 0..3 {
            std::fs::copy(preds.join(format!("case_{i}.nii.gz")), dir.join(format!("case_{i}.nii.gz"))).unwrap();
        }
    }
    std::fs::remove_file(ep20.join("case_2.nii.gz")).unwrap();
    std::fs::create_dir_all(&ep30).unwrap();
    let run = |dirs: &[&PathBuf], out: &Path| {
        let mut c = dicegrad();
        c.args(["track", "--quiet", "--labels-dir"]).arg(&labels).arg("--pred-dirs").args(dirs).arg("--out").arg(out);
        c
    };
    let out = at(&d, "out");
    let e = fails_with_2(&mut run(&[&ep10, &ep20, &ep30], &out));
    assert!(e.contains("ep30 (step 30): none of the 3 label files") && e.contains("--pred-suffix"), "{e}");
    assert!(!out.exists(), "refused before anything was analysed or written");
    let o = run(&[&ep10, &ep20], &out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("step 20 (")
            && String::from_utf8_lossy(&o.stderr).contains("1 label file without a prediction, left out of the step: ")
    );
    let series = json(&out.join("series.json"));
    assert_eq!(series["steps"][0]["status"], "ok");
    assert_eq!(series["steps"][1]["status"], "partial");
    assert_eq!(series["steps"][1]["missing"].as_array().unwrap().len(), 1);
    let page = std::fs::read_to_string(out.join("track.html")).unwrap();
    assert!(page.contains("Steps over fewer cases: step 20 (2 of 3 cases; 1 without a prediction)"), "the page warns");
}

#[test]
fn the_dice_identity_is_given_only_for_channels_in_the_dice_part() {
    let d = tmp();
    let (labels, preds) = checkpoints(&d);
    let out = at(&d, "out");
    // nnU-Net's loss: Dice without the background, cross-entropy over every channel
    ok(track(&labels, &preds, &out, &["--preset", "nnunet", "--activation", "none"]));
    let series = json(&out.join("series.json"));
    for s in series["steps"].as_array().unwrap() {
        let ch = s["channels"].as_array().unwrap();
        assert_eq!(ch.len(), 3, "cross-entropy reads the background too");
        assert!(ch[0]["dice_ratio"].is_null(), "the background is not in the Dice part");
        let dice = ch[1]["soft_dice"].as_f64().unwrap();
        assert!(close(ch[1]["dice_ratio"].as_f64().unwrap(), 1.0 - 2.0 / dice, 1e-15));
        // a cross-entropy part: the gradient is not two-valued, so no levels, and no closed-form ratio
        assert!(ch[1]["foreground_level"].is_null() && ch[1]["level_ratio_closed_form"].is_null());
        assert!(ch[1]["gradient_min"].as_f64().unwrap() < ch[1]["gradient_max"].as_f64().unwrap());
    }
}
