//! `--loss`, `--preset` and `--compare` from the command line, checked against gradient volumes
//! written by separate runs and read back with the `nifti` crate.

mod common;

use std::path::Path;

use common::*;
use nifti::{IntoNdArray, NiftiObject, ReaderOptions};
use serde_json::Value;

fn values(path: &Path) -> Vec<f64> {
    let obj = ReaderOptions::new().read_file(path).unwrap();
    obj.into_volume().into_ndarray::<f64>().unwrap().t().iter().copied().collect()
}

fn synth(dir: &tempfile::TempDir) {
    dicegrad()
        .args(["synth", "--seed", "5", "--classes", "3", "--shape", "10,9,8", "--out"])
        .arg(dir.path())
        .assert()
        .success();
}

fn grad_of(d: &tempfile::TempDir, pred: &str, loss: &str, extra: &[&str]) -> Vec<f64> {
    let out = at(d, &format!("g-{loss}.nii"));
    dicegrad()
        .args(["analyze", "--force", "--loss", loss, "--labels"])
        .arg(at(d, "labels.nii.gz"))
        .arg("--pred")
        .arg(at(d, pred))
        .arg("--grad-out")
        .arg(&out)
        .args(extra)
        .assert()
        .success();
    values(&out)
}

#[test]
fn comparison_figures_agree_with_separately_written_gradients() {
    let d = tmp();
    synth(&d);
    let act = ["--activation", "softmax"];
    let n = 10 * 9 * 8;
    let grads: Vec<Vec<f64>> = ["dice", "mimic", "ce"].iter().map(|l| grad_of(&d, "logits.nii.gz", l, &act)).collect();
    let r = json_of(
        dicegrad()
            .args(["analyze", "--json", "--activation", "softmax", "--compare", "mimic,ce", "--labels"])
            .arg(at(&d, "labels.nii.gz"))
            .arg("--pred")
            .arg(at(&d, "logits.nii.gz")),
    );
    let pairs = r["comparison"]["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 3);
    for p in pairs {
        let idx = |name: &Value| ["dice", "mimic", "ce"].iter().position(|l| name == *l).unwrap();
        let (a, b) = (&grads[idx(&p["a"])], &grads[idx(&p["b"])]);
        for k in 0..3 {
            let (a, b) = (&a[k * n..(k + 1) * n], &b[k * n..(k + 1) * n]);
            let ab: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let aa: f64 = a.iter().map(|x| x * x).sum();
            let bb: f64 = b.iter().map(|x| x * x).sum();
            let agree = a.iter().zip(b).filter(|(x, y)| x.signum() == y.signum() || (**x == 0.0 && **y == 0.0)).count();
            let ch = &p["channels"][k];
            let close = |v: &Value, w: f64| (v.as_f64().unwrap() - w).abs() <= 1e-9 * w.abs().max(1e-30);
            assert!(close(&ch["cosine"], ab / (aa * bb).sqrt()), "{p} {k}");
            assert!(close(&ch["scale"], ab / aa), "{p} {k}");
            assert!(close(&ch["sign_agreement"], agree as f64 / n as f64), "{p} {k}");
        }
    }
}

#[test]
fn mimic_equivalence_reconstructs_the_dice_gradient_exactly() {
    let d = tmp();
    synth(&d);
    let n = 10 * 9 * 8;
    let dice = grad_of(&d, "probs.nii.gz", "dice", &[]);
    let mimic = grad_of(&d, "probs.nii.gz", "mimic", &[]);
    let r = json_of(
        dicegrad()
            .args(["analyze", "--json", "--compare", "mimic", "--labels"])
            .arg(at(&d, "labels.nii.gz"))
            .arg("--pred")
            .arg(at(&d, "probs.nii.gz")),
    );
    let eq = r["comparison"]["pairs"][0]["mimic_equivalence"].as_array().unwrap();
    assert_eq!(eq.len(), 3);
    for e in eq {
        let k = e["channel"].as_u64().unwrap() as usize;
        let (scale, offset) = (e["scale"].as_f64().unwrap(), e["offset"].as_f64().unwrap());
        for i in 0..n {
            let rebuilt = scale * mimic[k * n + i] + offset;
            assert!((rebuilt - dice[k * n + i]).abs() <= 1e-6 * dice[k * n + i].abs(), "channel {k} voxel {i}");
        }
    }
}

#[test]
fn compare_writes_side_by_side_pictures() {
    let d = tmp();
    synth(&d);
    let out = at(&d, "out");
    dicegrad()
        .args(["analyze", "--compare", "mimic,squared-dice", "--labels"])
        .arg(at(&d, "labels.nii.gz"))
        .arg("--pred")
        .arg(at(&d, "probs.nii.gz"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let svg = std::fs::read_to_string(out.join("compare.svg")).unwrap();
    assert!(svg.contains("squared-dice: channel 2") && svg.contains("mimic: channel 0"));
    assert_eq!(&std::fs::read(out.join("compare.png")).unwrap()[..4], b"\x89PNG");
}

#[test]
fn preset_parameters_are_reported_and_explicit_flags_win() {
    let d = tmp();
    synth(&d);
    let run = |extra: &[&str]| {
        json_of(
            dicegrad()
                .args(["analyze", "--json", "--labels"])
                .arg(at(&d, "labels.nii.gz"))
                .arg("--pred")
                .arg(at(&d, "logits.nii.gz"))
                .args(extra),
        )
    };
    let r = run(&["--preset", "nnunet"]);
    let p = &r["parameters"];
    assert_eq!((p["preset"].as_str(), p["loss"].as_str()), (Some("nnunet"), Some("dice+ce")));
    assert_eq!((p["activation"].as_str(), p["include_background"].as_bool()), (Some("softmax"), Some(false)));
    assert_eq!(p["dice_form"], "negative");
    assert_eq!(r["channels"].as_array().unwrap().len(), 3, "cross-entropy reports every channel");
    let r = run(&["--preset", "nnunet", "--lambda-ce", "0", "--smooth-nr", "0.5"]);
    assert_eq!(r["parameters"]["lambda_ce"], 0.0);
    assert_eq!(r["parameters"]["smooth_nr"], 0.5);
    assert_eq!(r["parameters"]["smooth_dr"], 1e-5);
    // the whole loss weighted by nnU-Net's deep-supervision weight of the full-resolution output
    let w0 = 1.0 / (1.0 + 0.5 + 0.25 + 0.125);
    assert_eq!(r["parameters"]["loss_weight"].as_f64(), Some(w0));
    let (value, dice) = (r["loss"]["value"].as_f64().unwrap(), r["loss"]["dice_part"].as_f64().unwrap());
    assert!((value - w0 * dice).abs() <= 1e-15 * dice.abs(), "{value} vs {w0} × {dice}");
}

#[test]
fn class_weights_of_the_wrong_length_or_for_the_wrong_loss_are_refused() {
    let d = tmp();
    synth(&d);
    let base = |extra: &[&str]| {
        let mut c = dicegrad();
        c.args(["analyze", "--labels"])
            .arg(at(&d, "labels.nii.gz"))
            .arg("--pred")
            .arg(at(&d, "probs.nii.gz"))
            .args(extra);
        c
    };
    let err = fails_with_2(&mut base(&["--class-weights", "1,2"]));
    assert!(err.contains("2 values") && err.contains("3 channels"), "{err}");
    let err = fails_with_2(&mut base(&["--loss", "tversky", "--class-weights", "1,2,3"]));
    assert!(err.contains("does not apply to --loss tversky"), "{err}");
    let err = fails_with_2(&mut base(&["--loss", "tversky", "--alpha=-1"]));
    assert!(err.contains("--alpha"), "{err}");
}

#[test]
fn comparing_the_main_loss_with_itself_writes_no_comparison() {
    let d = tmp();
    synth(&d);
    let out = at(&d, "o");
    let report = json_of(
        dicegrad()
            .args(["analyze", "--json", "--compare", "dice,dice", "--labels"])
            .arg(at(&d, "labels.nii.gz"))
            .arg("--pred")
            .arg(at(&d, "probs.nii.gz"))
            .arg("--out")
            .arg(&out),
    );
    assert!(report["comparison"].is_null());
    assert!(
        out.join("histogram.png").exists() && !out.join("compare.png").exists() && !out.join("compare.svg").exists()
    );
}

#[test]
fn class_weights_belong_to_the_main_loss_and_compared_losses_take_them_where_they_read_them() {
    let d = tmp();
    synth(&d);
    let base = || {
        let mut c = dicegrad();
        c.args(["analyze", "--labels"]).arg(at(&d, "labels.nii.gz")).arg("--pred").arg(at(&d, "probs.nii.gz"));
        c
    };
    // generalized Dice has no class weights: refused even though the compared Dice has them
    let err =
        fails_with_2(base().args(["--loss", "generalized-dice", "--compare", "dice", "--class-weights", "1,2,3"]));
    assert!(err.contains("--class-weights does not apply to --loss generalized-dice"), "{err}");
    // Dice has them; the compared Tversky does not read them, the compared dice+ce does
    let r = json_of(base().args(["--json", "--compare", "tversky,dice+ce", "--class-weights", "1,2,3"]));
    assert_eq!(r["parameters"]["class_weights"], serde_json::json!([1.0, 2.0, 3.0]));
    let plain_tversky = json_of(base().args(["--json", "--loss", "tversky"]));
    assert_eq!(r["comparison"]["losses"][0]["value"], plain_tversky["loss"]["value"]);
    let weighted = json_of(base().args(["--json", "--loss", "dice+ce", "--class-weights", "1,2,3"]));
    assert_eq!(r["comparison"]["losses"][1]["value"], weighted["loss"]["value"]);
}
