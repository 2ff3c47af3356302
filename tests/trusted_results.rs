//! Results that could not be trusted are errors, not quiet numbers: probabilities that the loss
//! would activate a second time, a loss that is not finite; batch runs say which loss they
//! computed; results to a closed or full output; worker counts and negative labels.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn sample(kind: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(kind).join(file)
}

fn batch(labels: &Path, preds: &Path, out: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut c = dicegrad();
    c.args(["batch", "--quiet", "--labels-dir"])
        .arg(labels)
        .arg("--pred-dir")
        .arg(preds)
        .arg("--out")
        .arg(out)
        .args(extra);
    c
}

fn analyze(labels: &Path, pred: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut c = dicegrad();
    c.args(["analyze", "--labels"]).arg(labels).arg("--pred").arg(pred).args(extra);
    c
}

#[test]
fn probabilities_are_not_given_to_an_activation_a_second_time() {
    let (l, probs) = (sample("multiclass", "labels.nii.gz"), sample("multiclass", "probs.nii.gz"));
    let e = fails_with_2(&mut analyze(&l, &probs, &["--preset", "nnunet"]));
    assert!(e.contains("every value lies in [0, 1]") && e.contains("every voxel's 4 channels sum to 1"), "{e}");
    assert!(e.contains("the softmax of --preset nnunet would be applied to them a second time"), "{e}");
    assert!(e.contains("pass --activation none") && e.contains("--force-activation"), "{e}");
    let e = fails_with_2(&mut analyze(&l, &probs, &["--activation", "sigmoid"]));
    assert!(e.contains("the sigmoid would be applied"), "{e}");
    let (bl, bp) = (sample("binary", "labels.nii.gz"), sample("binary", "probs.nii.gz"));
    fails_with_2(&mut analyze(&bl, &bp, &["--activation", "sigmoid"]));
    // an expert may go on; logits are never refused
    analyze(&l, &probs, &["--preset", "nnunet", "--force-activation"]).assert().success();
    analyze(&l, &sample("multiclass", "logits.nii.gz"), &["--preset", "nnunet"]).assert().success();
    analyze(&bl, &sample("binary", "logits.nii.gz"), &["--activation", "sigmoid"]).assert().success();
}

#[test]
fn a_few_voxels_that_do_not_sum_to_one_do_not_turn_the_probability_check_off() {
    let d = tmp();
    let (shape, c) = ([10, 10, 3], 3);
    let n: usize = shape.iter().product();
    let (labels, mut probs) = labels_and_probs(5, n, c);
    // one voxel (under 1 %) zero in every channel, as padding would be
    for k in 0..c {
        probs[k * n] = 0.0;
    }
    let (lp, pp, zp) = (at(&d, "l.nii.gz"), at(&d, "p.nii.gz"), at(&d, "p.npz"));
    Nii::u8(&shape, &labels).write(&lp);
    Nii::f32(&[shape[0], shape[1], shape[2], c], &probs).write(&pp);
    let e = fails_with_2(&mut analyze(&lp, &pp, &["--activation", "softmax"]));
    assert!(e.contains(&format!("the 3 channels of {} of {n} voxels sum to 1", n - 1)), "{e}");
    // an nnU-Net .npz holds probabilities whatever some voxels sum to
    write_npz(&zp, [c, shape[2], shape[1], shape[0]], &probs, false);
    let e = fails_with_2(&mut analyze(&lp, &zp, &["--preset", "nnunet"]));
    assert!(e.contains("nnU-Net's .npz holds probabilities"), "{e}");
}

#[test]
fn probabilities_with_resampling_overshoot_or_stored_as_scaled_bytes_are_still_probabilities() {
    let d = tmp();
    let (shape, c) = ([6, 5, 4], 3);
    let n: usize = shape.iter().product();
    let (labels, mut probs) = labels_and_probs(9, n, c);
    let lp = at(&d, "l.nii.gz");
    Nii::u8(&shape, &labels).write(&lp);
    // one value a little below 0, as an interpolation overshoots
    probs[7] = -1e-7;
    let over = at(&d, "over.nii.gz");
    Nii::f32(&[shape[0], shape[1], shape[2], c], &probs).write(&over);
    let e = fails_with_2(&mut analyze(&lp, &over, &[]));
    assert!(e.contains("clip them to [0, 1]") && !e.contains("pass --activation softmax"), "{e}");
    let e = fails_with_2(&mut analyze(&lp, &over, &["--activation", "softmax"]));
    assert!(e.contains("every value lies within 0.001 of [0, 1]"), "{e}");
    // uint8 with scl_slope 1/255: rounding leaves many voxels' sums off by more than 1e-3
    let bytes: Vec<u8> = probs.iter().map(|p| (p.max(0.0) * 255.0).round() as u8).collect();
    let mut scaled = Nii::u8(&[shape[0], shape[1], shape[2], c], &bytes);
    scaled.slope = 1.0 / 255.0;
    let sp = at(&d, "scaled.nii.gz");
    scaled.write(&sp);
    let e = fails_with_2(&mut analyze(&lp, &sp, &["--activation", "softmax"]));
    assert!(e.contains("these are probabilities"), "{e}");
}

#[test]
fn values_in_the_unit_interval_whose_channels_do_not_sum_to_one_may_be_softmax_logits() {
    let d = tmp();
    let n = 4 * 3 * 2;
    let mut r = Lcg(7);
    let labels: Vec<u8> = (0..n).map(|_| r.below(2) as u8).collect();
    // two channels, each in [0, 1], sums anywhere in [0, 2]
    let values: Vec<f32> = (0..2 * n).map(|_| r.range(0.0, 1.0) as f32).collect();
    let (lp, pp) = (at(&d, "l.nii.gz"), at(&d, "p.nii.gz"));
    Nii::u8(&[4, 3, 2], &labels).write(&lp);
    Nii::f32(&[4, 3, 2, 2], &values).write(&pp);
    analyze(&lp, &pp, &["--activation", "softmax"]).assert().success();
}

#[test]
fn nnunet_npz_probabilities_are_named_as_such_and_a_batch_stops_before_writing() {
    let d = tmp();
    let (l, p) = (at(&d, "L"), at(&d, "P"));
    std::fs::create_dir_all(&l).unwrap();
    std::fs::create_dir_all(&p).unwrap();
    let (shape, c) = ([5, 4, 3], 3);
    let n: usize = shape.iter().product();
    let (labels, probs) = labels_and_probs(3, n, c);
    for id in ["a", "b"] {
        Nii::u8(&shape, &labels).write(&l.join(format!("{id}.nii.gz")));
        // (C, z, y, x) in C order is the NIfTI (x, y, z, C) order read backwards
        write_npz(&p.join(format!("{id}.npz")), [c, shape[2], shape[1], shape[0]], &probs, false);
    }
    let e = fails_with_2(&mut analyze(&l.join("a.nii.gz"), &p.join("a.npz"), &["--preset", "nnunet"]));
    assert!(e.contains("nnU-Net's .npz holds probabilities: the softmax is already applied"), "{e}");
    let o = at(&d, "o");
    let e = fails_with_2(&mut batch(&l, &p, &o, &["--preset", "nnunet"]));
    assert!(e.contains("case a: ") && e.contains("the run stopped before writing anything"), "{e}");
    assert!(!o.exists());
    batch(&l, &p, &o, &["--preset", "nnunet", "--activation", "none"]).assert().success();
}

#[test]
fn a_batch_says_which_loss_it_computed_every_parameter_resolved() {
    let d = tmp();
    let (l, p) = (at(&d, "L"), at(&d, "P"));
    std::fs::create_dir_all(&l).unwrap();
    std::fs::create_dir_all(&p).unwrap();
    std::fs::copy(sample("multiclass", "labels.nii.gz"), l.join("c.nii.gz")).unwrap();
    std::fs::copy(sample("multiclass", "logits.nii.gz"), p.join("c.nii.gz")).unwrap();
    let o = at(&d, "o");
    batch(&l, &p, &o, &["--preset", "nnunet", "--compare", "dice"]).assert().success();
    // nnU-Net v2 nnUNetTrainer._build_loss: softmax, do_bg False, smooth 1e-5, clip 1e-8, -dice,
    // weight_ce = weight_dice = 1
    for file in ["run.json", "summary.json"] {
        let v: Value = serde_json::from_slice(&std::fs::read(o.join(file)).unwrap()).unwrap();
        let resolved = &v["resolved"][0];
        assert_eq!(resolved["prediction_channels"], 4, "{file}");
        let main = &resolved["losses"][0];
        assert_eq!(main["loss"], "dice+ce", "{file}");
        assert_eq!(main["activation"], "softmax");
        assert_eq!(main["include_background"], false);
        assert_eq!((main["smooth_nr"].as_f64(), main["smooth_dr"].as_f64()), (Some(1e-5), Some(1e-5)));
        assert_eq!(main["denominator_floor"].as_f64(), Some(1e-8));
        assert_eq!(main["dice_form"], "negative");
        assert_eq!((main["lambda_dice"].as_f64(), main["lambda_ce"].as_f64()), (Some(1.0), Some(1.0)));
        let compared = &resolved["losses"][1];
        assert_eq!((compared["loss"].as_str(), compared["activation"].as_str()), (Some("dice"), Some("softmax")));
    }
}

#[test]
fn a_loss_that_is_not_finite_is_refused_unless_asked_for() {
    let d = tmp();
    let (lp, pp) = (at(&d, "l.nii.gz"), at(&d, "p.nii.gz"));
    Nii::u8(&[4, 4, 4], &[0; 64]).write(&lp);
    Nii::f32(&[4, 4, 4], &[0.0; 64]).write(&pp);
    let args = ["--activation", "none", "--smooth-nr", "0", "--smooth-dr", "0"];
    let e = fails_with_2(&mut analyze(&lp, &pp, &args));
    assert!(e.contains("the dice loss is NaN") && e.contains("channel 0") && e.contains("a Dice ratio 0/0"), "{e}");
    assert!(e.contains("--allow-non-finite"), "{e}");
    let mut with = args.to_vec();
    with.extend(["--allow-non-finite", "--json"]);
    let report = json_of(&mut analyze(&lp, &pp, &with));
    assert!(report["loss"]["value"].is_null() || report["loss"]["value"].as_f64().is_none_or(f64::is_nan));
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("the dice loss is NaN"), "{warnings}");
    // MONAI's default smoothing makes the same case finite: 1 − ε/ε = 0
    let report = json_of(&mut analyze(&lp, &pp, &["--json"]));
    assert_eq!(report["loss"]["value"].as_f64(), Some(0.0));
    // a compared loss that is not finite is refused the same way, named
    let e = fails_with_2(&mut analyze(
        &lp,
        &pp,
        &["--loss", "ce", "--compare", "dice", "--smooth-nr", "0", "--smooth-dr", "0"],
    ));
    assert!(e.contains("the dice loss is NaN"), "{e}");
    // a cross-entropy whose class weights are all 0 on the voxels' classes: 0/0, not a log 0
    let two = at(&d, "two.nii.gz");
    Nii::f32(&[4, 4, 4, 2], &[0.5; 128]).write(&two);
    let e = fails_with_2(&mut analyze(&lp, &two, &["--loss", "ce", "--class-weights", "0,1"]));
    assert!(e.contains("its normaliser (the sum of the voxels' class weights) is 0"), "{e}");
    assert!(!e.contains("--smooth-dr"), "smoothing is not the cure here: {e}");
    // a parameter so large that float64 overflows is named as the cause
    let e = fails_with_2(&mut analyze(&lp, &pp, &["--smooth-nr", "1e308", "--smooth-dr", "1e308"]));
    assert!(e.contains("an overflow: smooth_nr 1e308"), "{e}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_result_to_a_full_disk_is_an_error_and_to_a_closed_pipe_ends_quietly() {
    let (l, p) = (sample("binary", "labels.nii.gz"), sample("binary", "probs.nii.gz"));
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("dicegrad"));
    let out = cmd.args(["analyze", "--labels"]).arg(&l).arg("--pred").arg(&p).stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: cannot write the result to stdout: No space left on device"), "{err}");
    // a reader that is gone before the result is written
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("dicegrad"))
        .args(["analyze", "--labels"])
        .arg(&l)
        .arg("--pred")
        .arg(&p)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(141), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    // diagnostics that cannot be written stop nothing
    let d = tmp();
    let (ld, pd) = (at(&d, "L"), at(&d, "P"));
    std::fs::create_dir_all(&ld).unwrap();
    std::fs::create_dir_all(&pd).unwrap();
    std::fs::copy(&l, ld.join("c.nii.gz")).unwrap();
    std::fs::copy(&p, pd.join("c.nii.gz")).unwrap();
    std::fs::write(pd.join("orphan.nii.gz"), b"x").unwrap();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("dicegrad"))
        .args(["batch", "--labels-dir"])
        .arg(&ld)
        .arg("--pred-dir")
        .arg(&pd)
        .arg("--out")
        .arg(at(&d, "o"))
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(at(&d, "o").join("summary.json").exists());
}

#[test]
fn worker_counts_are_capped_and_negative_labels_parse() {
    let (l, p) = (sample("binary", "labels.nii.gz"), sample("binary", "probs.nii.gz"));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = analyze(&l, &p, &["--threads", "100000"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("--threads 100000: using {}", 4 * cores)), "{err}");
    // a negative label value is a value, not a flag: it selects no voxel, which is noted
    let report = json_of(&mut analyze(&l, &p, &["--label", "-1", "--json"]));
    assert!(report["warnings"].to_string().contains("-1"), "{}", report["warnings"]);
}
