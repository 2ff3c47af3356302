//! The report says what was computed and nothing else: the reduction of each family, a
//! `--no-background` that was ignored, why the two-level structure does not hold, a compared loss
//! that is the main one, and class weights that a loss would ignore.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn sample(kind: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(kind).join(file)
}

fn analyze(kind: &str, pred: &str, extra: &[&str]) -> assert_cmd::Command {
    let mut c = dicegrad();
    c.args(["analyze", "--labels"])
        .arg(sample(kind, "labels.nii.gz"))
        .arg("--pred")
        .arg(sample(kind, pred))
        .args(extra);
    c
}

fn table(kind: &str, pred: &str, extra: &[&str]) -> String {
    let out = analyze(kind, pred, extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_family_names_how_it_combines_its_channels() {
    // the families' formulas (docs/math.md): Dice a mean of per-channel terms, mimic a sum,
    // generalized Dice one ratio of pooled sums, cross-entropy a mean over voxels
    for (loss, reduction, words) in [
        ("dice", "mean", "mean over 4 channels"),
        ("mimic", "sum", "summed over 4 channels"),
        ("generalized-dice", "pooled", "one ratio pooled over 4 channels"),
        ("ce", "voxels", "mean over voxels of a term that reads every channel"),
    ] {
        let report = json_of(&mut analyze("multiclass", "probs.nii.gz", &["--loss", loss, "--json"]));
        assert_eq!(report["parameters"]["reduction"], reduction, "{loss}");
        assert!(table("multiclass", "probs.nii.gz", &["--loss", loss]).contains(words), "{loss}");
    }
    // cross-entropy reads every channel: no background choice to show
    let t = table("multiclass", "probs.nii.gz", &["--loss", "ce"]);
    let params = t.lines().find(|l| l.starts_with("parameters")).unwrap();
    assert!(!params.contains("background"), "{params}");
}

#[test]
fn an_ignored_no_background_is_reported_as_what_was_computed() {
    let report = json_of(&mut analyze("binary", "probs.nii.gz", &["--no-background", "--json"]));
    assert_eq!(report["parameters"]["include_background"], true);
    assert!(report["warnings"].to_string().contains("--no-background ignored"));
    let t = table("binary", "probs.nii.gz", &["--no-background"]);
    assert!(t.contains("background included") && !t.contains("background excluded"), "{t}");
}

#[test]
fn the_verdict_gives_the_reason_that_applies() {
    for (loss, why) in [("squared-dice", "expected of a loss with Σs²"), ("ce", "expected of cross-entropy")] {
        let t = table("multiclass", "probs.nii.gz", &["--loss", loss]);
        assert!(t.contains(why) && !t.contains("through an activation"), "{loss}: {t}");
    }
    let t = table("multiclass", "logits.nii.gz", &["--activation", "softmax"]);
    assert!(t.contains("this is expected through an activation"), "{t}");
}

#[test]
fn comparing_the_main_loss_with_itself_is_noted() {
    let report = json_of(&mut analyze("multiclass", "probs.nii.gz", &["--compare", "dice", "--json"]));
    let w = report["warnings"].to_string();
    assert!(w.contains("--compare dice: dice is the main loss, and is not compared with itself"), "{w}");
}

#[test]
fn class_weights_a_sigmoid_cross_entropy_would_ignore_are_refused() {
    let e = fails_with_2(&mut analyze(
        "multiclass",
        "logits.nii.gz",
        &["--activation", "sigmoid", "--loss", "ce", "--class-weights", "1,5,1,1"],
    ));
    assert!(e.contains("--class-weights with sigmoid cross-entropy is not supported"), "{e}");
}

#[test]
fn the_closed_form_with_respect_to_probabilities_is_not_shown_beside_logit_gradients() {
    let report = json_of(&mut analyze("multiclass", "logits.nii.gz", &["--activation", "softmax", "--json"]));
    for ch in report["channels"].as_array().unwrap() {
        assert!(ch["gradient"]["fit"]["closed_form_a"].is_null(), "{}", ch["gradient"]["fit"]);
        assert!(ch["gradient"]["level_ratio"]["closed_form"].is_null());
    }
    let t = table("multiclass", "logits.nii.gz", &["--activation", "softmax"]);
    // the rows of the first table (the mixed-precision table below it has rows per channel too)
    let rows: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("ch  label"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 4, "{t}");
    assert!(rows.iter().all(|r| r.contains("(–)")), "no closed form beside the measured ratio: {t}");
    // with respect to probabilities it is there, and equals 1 − 2/soft Dice (docs/math.md)
    let report = json_of(&mut analyze("multiclass", "probs.nii.gz", &["--json"]));
    let ch = &report["channels"][1];
    let want = 1.0 - 2.0 / ch["soft_dice"].as_f64().unwrap();
    let got = ch["gradient"]["level_ratio"]["closed_form"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-9 * want.abs(), "{got} vs {want}");
}

#[test]
fn the_offset_share_is_a_share_one_minus_the_squared_cosine_to_mimic() {
    let report = json_of(&mut analyze(
        "multiclass",
        "probs.nii.gz",
        &["--loss", "tversky", "--alpha", "0.9", "--beta", "0.1", "--compare", "mimic", "--json"],
    ));
    let pair = &report["comparison"]["pairs"][0];
    let equivalence = pair["mimic_equivalence"].as_array().unwrap();
    assert!(!equivalence.is_empty());
    for e in equivalence {
        let share = e["offset_share"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share), "{e}");
        // the cosine measured over the two gradient volumes, value by value
        let k = e["channel"].as_u64().unwrap();
        let ch = pair["channels"].as_array().unwrap().iter().find(|c| c["channel"].as_u64() == Some(k)).unwrap();
        let cosine = ch["cosine"].as_f64().unwrap();
        assert!((share - (1.0 - cosine * cosine)).abs() < 1e-5, "channel {k}: {share} vs 1 − {cosine}²");
    }
}

#[test]
fn the_monai_preset_says_its_cross_entropy_takes_the_values_as_given() {
    for (kind, act, warned) in [
        ("multiclass", "none", true),
        ("binary", "none", true),
        ("multiclass", "sigmoid", true),
        ("multiclass", "softmax", false),
    ] {
        let pred = if act == "none" { "probs.nii.gz" } else { "logits.nii.gz" };
        let args = ["--preset", "monai", "--loss", "dice+ce", "--activation", act, "--json"];
        let report = json_of(&mut analyze(kind, pred, &args));
        let ce = report["parameters"]["cross_entropy"].as_str().unwrap();
        let warning = report["warnings"].to_string();
        assert_eq!(warning.contains("MONAI's DiceCELoss"), warned, "{kind} {act}: {warning}");
        if warned {
            assert!(ce.contains("values as given") && ce.contains("MONAI DiceCELoss"), "{ce}");
        }
        // without the preset the cross-entropy is that of the Dice part's probabilities
        let plain = json_of(&mut analyze(kind, pred, &args[2..]));
        assert!(!plain["warnings"].to_string().contains("MONAI"), "{kind} {act}");
        assert!(!plain["parameters"]["cross_entropy"].as_str().unwrap().contains("values as given"));
    }
}
