//! The label conventions of nnU-Net and MONAI: an ignore label (its voxels leave every sum and get
//! gradient 0, as nnU-Net's loss mask does), regions (overlapping channels, each a binary target of
//! its own, through a sigmoid), and nnU-Net's dataset.json (class names, the ignore label,
//! regions). Checked against the definitions computed here by hand and by finite differences.

mod common;

use std::sync::Arc;

use common::*;
use dicegrad::case::labels::{LabelRule, Regions, IGNORED};
use dicegrad::case::{Case, Labels};
use dicegrad::loss::{Activation, LossConfig, LossKind, LossRequest, Preset};
use serde_json::Value;

/// A case of `random_case` with every third voxel of the labels given the ignore label (as a
/// file would give it: its class is `IGNORED`).
fn with_ignored(case: Case<'static>, ignore: i64) -> Case<'static> {
    let class: Vec<u8> =
        case.labels.class.iter().enumerate().map(|(i, &c)| if i % 3 == 1 { IGNORED } else { c }).collect();
    let rule = case.labels.rule.clone();
    Case { labels: Labels::new(class.into(), rule, Some(ignore)), ..case }
}

fn config(request: &LossRequest, channels: usize, regions: bool) -> LossConfig {
    request.configs_for(&[], channels, regions).unwrap().swap_remove(0)
}

#[test]
fn ignored_voxels_get_gradient_zero_and_the_rest_matches_finite_differences() {
    let kinds = [
        (LossRequest { preset: Some(Preset::Nnunet), ..LossRequest::default() }, Activation::Softmax, 3),
        (LossRequest::default(), Activation::None, 3),
        (LossRequest { preset: None, overrides: with_loss(LossKind::Ce, Activation::Softmax) }, Activation::Softmax, 3),
        (
            LossRequest { preset: None, overrides: with_loss(LossKind::DiceCe, Activation::Sigmoid) },
            Activation::Sigmoid,
            1,
        ),
    ];
    for (seed, (request, act, channels)) in kinds.into_iter().enumerate() {
        let case = with_ignored(random_case(seed as u64 + 7, [4, 3, 2], channels, act, false), 9);
        let cfg = config(&request, channels, false);
        let g = gradient(&case, &cfg);
        let n = case.voxels();
        for (i, v) in g.iter().enumerate() {
            if case.labels.class[i % n] == IGNORED {
                assert_eq!(*v, 0.0, "value {i} of an ignored voxel");
            }
        }
        let err = fd_error(case, &cfg);
        assert!(err < 2e-3, "{request:?}: finite differences off by {err:e}");
    }
}

fn with_loss(kind: LossKind, act: Activation) -> dicegrad::loss::LossPatch {
    dicegrad::loss::LossPatch { loss: Some(kind), activation: Some(act), ..Default::default() }
}

#[test]
fn the_sums_leave_ignored_voxels_out_as_a_hand_count_does() {
    let case = with_ignored(random_case(3, [5, 4, 3], 3, Activation::None, false), 9);
    let cfg = config(&LossRequest::default(), 3, false);
    let sums = dicegrad::loss::CaseSums::compute(&case, &cfg);
    let n = case.voxels();
    let kept: Vec<usize> = (0..n).filter(|&i| case.labels.class[i] != IGNORED).collect();
    assert_eq!(sums.voxels, kept.len() as u64);
    for k in 0..3 {
        let s = case.prediction.channel(k);
        let g = |i: usize| f64::from(u8::from(case.labels.class[i] == k as u8));
        let (i_sum, s_sum, g_sum): (f64, f64, f64) = kept
            .iter()
            .fold((0.0, 0.0, 0.0), |(a, b, c), &i| (a + f64::from(s[i]) * g(i), b + f64::from(s[i]), c + g(i)));
        let got = &sums.channels[k];
        assert!((got.intersection - i_sum).abs() < 1e-12 && (got.pred_sum - s_sum).abs() < 1e-12, "channel {k}");
        assert_eq!(got.label_count as f64, g_sum);
    }
}

/// A region-based case: labels 0..3 on a grid, logits for the regions 1+2+3, 2+3, 3.
fn region_case(seed: u64, ignore: Option<i64>) -> Case<'static> {
    let base = random_case(seed, [4, 3, 3], 4, Activation::Softmax, false);
    let regions = Regions::new(vec![vec![1, 2, 3], vec![2, 3], vec![3]], None).unwrap();
    // label values 0..3 are their own codes: the regions' values are 1, 2, 3
    let mut class: Vec<u8> = base.labels.class.to_vec();
    if ignore.is_some() {
        for (i, c) in class.iter_mut().enumerate() {
            if i % 4 == 2 {
                *c = IGNORED;
            }
        }
    }
    let n = class.len();
    let values = base.prediction.values[..3 * n].to_vec();
    let mut case = Case::from_parts([4, 3, 3], vec![0; n], 3, values);
    case.labels = Labels::new(class.into(), LabelRule::Regions(Arc::new(regions)), ignore);
    case
}

#[test]
fn each_region_is_a_binary_target_of_its_own() {
    let case = region_case(11, None);
    let request = LossRequest { preset: None, overrides: with_loss(LossKind::Dice, Activation::Sigmoid) };
    let cfg = config(&request, 3, true);
    let g = gradient(&case, &cfg);
    let n = case.voxels();
    let sets = [vec![1u8, 2, 3], vec![2, 3], vec![3]];
    // Dice through a sigmoid per channel, by hand: dL/ds = (N − 2·g·D)/(K·D²), dL/dz = dL/ds·s(1 − s)
    for (k, set) in sets.iter().enumerate() {
        let z = case.prediction.channel(k);
        let s: Vec<f64> = z.iter().map(|&z| 1.0 / (1.0 + (-f64::from(z)).exp())).collect();
        let t: Vec<f64> = (0..n).map(|i| f64::from(u8::from(set.contains(&case.labels.class[i])))).collect();
        let i_sum: f64 = s.iter().zip(&t).map(|(a, b)| a * b).sum();
        let (s_sum, t_sum): (f64, f64) = (s.iter().sum(), t.iter().sum());
        let (num, den) = (2.0 * i_sum + 1e-5, s_sum + t_sum + 1e-5);
        for i in 0..n {
            let want = (num - 2.0 * t[i] * den) / (3.0 * den * den) * s[i] * (1.0 - s[i]);
            let got = f64::from(g[k * n + i]);
            assert!((got - want).abs() <= 1e-6 * want.abs().max(1e-6), "channel {k} voxel {i}: {got} vs {want}");
        }
    }
    assert!(fd_error(case, &cfg) < 2e-3);
}

#[test]
fn regions_with_an_ignore_label_divide_the_binary_cross_entropy_by_the_voxels_kept() {
    // nnU-Net's DC_and_BCE_loss: (bce · mask).sum() / mask.sum(), the mask of one channel
    let case = region_case(5, Some(4));
    let request = LossRequest { preset: None, overrides: with_loss(LossKind::Ce, Activation::Sigmoid) };
    let cfg = config(&request, 3, true);
    let eval = dicegrad::loss::Evaluation::compute(&case, &cfg);
    let n = case.voxels();
    let sets = [vec![1u8, 2, 3], vec![2, 3], vec![3]];
    let kept: Vec<usize> = (0..n).filter(|&i| case.labels.class[i] != IGNORED).collect();
    let mut total = 0.0;
    for (k, set) in sets.iter().enumerate() {
        for &i in &kept {
            let z = f64::from(case.prediction.channel(k)[i]);
            let t = f64::from(u8::from(set.contains(&case.labels.class[i])));
            total += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
        }
    }
    let want = total / kept.len() as f64;
    assert!((eval.value - want).abs() < 1e-12 * want, "{} vs {want}", eval.value);
    assert!(fd_error(case, &cfg) < 2e-3);
}

#[test]
fn softmax_is_refused_for_regions() {
    let request = LossRequest { preset: None, overrides: with_loss(LossKind::Dice, Activation::Softmax) };
    let e = request.configs_for(&[], 3, true).unwrap_err().to_string();
    assert!(e.contains("overlapping regions"), "{e}");
    // the nnunet preset trains regions through a sigmoid, every channel in the Dice
    let cfg = config(&LossRequest { preset: Some(Preset::Nnunet), ..LossRequest::default() }, 3, true);
    assert_eq!((cfg.spec.activation, cfg.spec.include_background), (Activation::Sigmoid, true));
}

/// A 3-class case on disk (labels with a slab of label 3, probabilities of 3 channels).
fn files(d: &tempfile::TempDir) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let (labels, probs) = labels_and_probs(21, 6 * 5 * 4, 3);
    let mut labels = labels;
    for l in labels.iter_mut().take(30) {
        *l = 3;
    }
    let (lp, pp) = (at(d, "labels.nii.gz"), at(d, "probs.nii.gz"));
    Nii::u8(&[6, 5, 4], &labels).write(&lp);
    Nii::f32(&[6, 5, 4, 3], &probs).write(&pp);
    (lp, pp, labels)
}

#[test]
fn the_ignore_label_from_the_command_line_counts_and_zeroes_its_voxels() {
    let d = tmp();
    let (lp, pp, labels) = files(&d);
    let g = at(&d, "g.nii");
    let r = json_of(
        dicegrad()
            .args(["analyze", "--json", "--ignore-label", "3", "--labels"])
            .arg(&lp)
            .arg("--pred")
            .arg(&pp)
            .arg("--grad-out")
            .arg(&g),
    );
    assert_eq!(r["parameters"]["ignore_label"], 3);
    assert_eq!(r["parameters"]["ignored_voxels"], 30);
    let kept = labels.iter().filter(|&&l| l != 3).count() as u64;
    for (k, ch) in r["channels"].as_array().unwrap().iter().enumerate() {
        let fg = labels.iter().filter(|&&l| l == k as u8).count() as u64;
        assert_eq!(ch["foreground_voxels"].as_u64().unwrap(), fg);
        assert_eq!(ch["background_voxels"].as_u64().unwrap(), kept - fg);
    }
    let bytes = std::fs::read(&g).unwrap();
    let values: Vec<f32> = bytes[352..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let n = labels.len();
    for k in 0..3 {
        for (i, &l) in labels.iter().enumerate() {
            if l == 3 {
                assert_eq!(values[k * n + i], 0.0);
            }
        }
    }
    // an ignore label that no voxel holds is said
    let d2 = tmp();
    let (bl, bp) = binary_case(&d2, [4, 4, 4], 2);
    let r = json_of(
        dicegrad().args(["analyze", "--json", "--ignore-label", "7", "--labels"]).arg(&bl).arg("--pred").arg(&bp),
    );
    let said = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("--ignore-label 7 selects no voxel"));
    assert!(said, "{}", r["warnings"]);
    // a class value is not an ignore label
    let err =
        fails_with_2(dicegrad().args(["analyze", "--ignore-label", "1", "--labels"]).arg(&lp).arg("--pred").arg(&pp));
    assert!(err.contains("--ignore-label") && err.contains("1 is a label the loss trains on"), "{err}");
    // without it, label 3 is out of range for three channels, and says so
    let err = fails_with_2(dicegrad().args(["analyze", "--labels"]).arg(&lp).arg("--pred").arg(&pp));
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn dataset_json_names_the_channels_everywhere_and_batch_finds_it_beside_labels_tr() {
    let d = tmp();
    let root = at(&d, "Dataset042_Liver");
    let (labels_tr, preds) = (root.join("labelsTr"), at(&d, "preds"));
    std::fs::create_dir_all(&labels_tr).unwrap();
    std::fs::create_dir_all(&preds).unwrap();
    let (lp, pp, _) = files(&d);
    std::fs::copy(&lp, labels_tr.join("liver_001.nii.gz")).unwrap();
    std::fs::copy(&pp, preds.join("liver_001.nii.gz")).unwrap();
    std::fs::write(
        root.join("dataset.json"),
        r#"{"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumour": 2, "ignore": 3},
            "numTraining": 1, "file_ending": ".nii.gz"}"#,
    )
    .unwrap();
    let r = json_of(
        dicegrad()
            .args(["analyze", "--json", "--labels"])
            .arg(&lp)
            .arg("--pred")
            .arg(&pp)
            .arg("--dataset-json")
            .arg(root.join("dataset.json")),
    );
    let names: Vec<&str> = r["channels"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["background", "liver", "tumour"]);
    assert_eq!(r["parameters"]["ignore_label"], 3, "the ignore label comes with the file");
    let table = dicegrad()
        .args(["analyze", "--labels"])
        .arg(&lp)
        .arg("--pred")
        .arg(&pp)
        .arg("--dataset-json")
        .arg(root.join("dataset.json"))
        .output()
        .unwrap();
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.lines().any(|l| l.contains(" liver ")), "{text}");
    // batch: found beside labelsTr, said on stderr, names in cases.csv and summary.json
    let out = at(&d, "out");
    let run = batch_run(&labels_tr, &preds, &out, &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(err.contains("dataset.json (class names, ignore label 3); --no-dataset-json leaves it out"), "{err}");
    let summary: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["channels"][2]["name"], "tumour");
    let csv = std::fs::read_to_string(out.join("cases.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains(",label,name,"), "{csv}");
    assert!(csv.contains(",1,liver,"), "{csv}");
    // --no-dataset-json: label 3 is no longer ignored, so the case fails as out of range
    let again = batch_run(&labels_tr, &preds, &out, &["--force", "--no-dataset-json"]);
    assert_eq!(again.status.code(), Some(1));
}

#[test]
fn regions_from_the_flag_and_from_dataset_json_agree() {
    let d = tmp();
    let n = 6 * 5 * 4;
    let (labels, _) = labels_and_probs(8, n, 4);
    let logits: Vec<f32> = (0..3 * n).map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0).collect();
    let (lp, pp) = (at(&d, "l.nii.gz"), at(&d, "z.nii.gz"));
    Nii::u8(&[6, 5, 4], &labels).write(&lp);
    Nii::f32(&[6, 5, 4, 3], &logits).write(&pp);
    let ds = at(&d, "dataset.json");
    std::fs::write(
        &ds,
        r#"{"labels": {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3], "enhancing tumor": 3},
            "regions_class_order": [1, 2, 3]}"#,
    )
    .unwrap();
    let by_flag = json_of(
        dicegrad()
            .args(["analyze", "--json", "--preset", "nnunet", "--regions", "1+2+3,2+3,3", "--labels"])
            .arg(&lp)
            .arg("--pred")
            .arg(&pp),
    );
    let by_file = json_of(
        dicegrad()
            .args(["analyze", "--json", "--preset", "nnunet", "--labels"])
            .arg(&lp)
            .arg("--pred")
            .arg(&pp)
            .arg("--dataset-json")
            .arg(&ds),
    );
    assert_eq!(by_flag["loss"], by_file["loss"]);
    assert_eq!(by_file["parameters"]["activation"], "sigmoid");
    assert_eq!(by_file["channels"][1]["name"], "tumor core");
    assert_eq!(by_file["channels"][1]["region"], serde_json::json!([2, 3]));
    for k in 0..3 {
        let region: Vec<u8> = [vec![1, 2, 3], vec![2, 3], vec![3]][k].clone();
        let fg = labels.iter().filter(|l| region.contains(l)).count() as u64;
        assert_eq!(by_flag["channels"][k]["foreground_voxels"].as_u64().unwrap(), fg, "region {k}");
    }
    let err = fails_with_2(
        dicegrad()
            .args(["analyze", "--regions", "1+2,3", "--activation", "sigmoid", "--labels"])
            .arg(&lp)
            .arg("--pred")
            .arg(&pp),
    );
    assert!(
        err.contains("--regions") && err.contains("names 2 regions but") && err.contains("has 3 channels"),
        "{err}"
    );
    let err = fails_with_2(
        dicegrad()
            .args(["analyze", "--regions", "1+2+3,2+3,3", "--activation", "softmax", "--labels"])
            .arg(&lp)
            .arg("--pred")
            .arg(&pp),
    );
    assert!(err.contains("overlapping regions"), "{err}");
    let err =
        fails_with_2(dicegrad().args(["analyze", "--regions", "0+1,2,3", "--labels"]).arg(&lp).arg("--pred").arg(&pp));
    assert!(err.contains("holds label 0, the background"), "{err}");
}

#[test]
fn a_volume_with_every_voxel_ignored_gives_nnunets_loss_not_a_refusal() {
    // nnU-Net skips the cross-entropy when no voxel is kept (num_fg > 0), and each masked Dice is
    // ε/ε = 1: with the nnunet preset the loss is 8/15 · (−1) and the gradient 0
    let base = random_case(4, [3, 3, 2], 3, Activation::Softmax, false);
    let n = base.voxels();
    let case = Case { labels: Labels::new(vec![IGNORED; n].into(), base.labels.rule.clone(), Some(3)), ..base };
    let cfg = config(&LossRequest { preset: Some(Preset::Nnunet), ..LossRequest::default() }, 3, false);
    let eval = dicegrad::loss::Evaluation::compute(&case, &cfg);
    assert!((eval.value - (-8.0 / 15.0)).abs() < 1e-12, "{}", eval.value);
    assert!(gradient(&case, &cfg).iter().all(|&g| g == 0.0));
}

#[test]
fn regions_refuse_a_background_and_questionable_regions() {
    let request = LossRequest {
        preset: None,
        overrides: dicegrad::loss::LossPatch {
            include_background: Some(false),
            ..with_loss(LossKind::Dice, Activation::Sigmoid)
        },
    };
    let e = request.configs_for(&[], 3, true).unwrap_err().to_string();
    assert!(e.contains("every channel is a region"), "{e}");
    let e = Regions::new(vec![vec![1, 2], vec![-3]], None).unwrap_err().to_string();
    assert!(e.contains("label values of a region are positive"), "{e}");
    let e = Regions::new(vec![vec![1, 2], vec![2, 1]], None).unwrap_err().to_string();
    assert!(e.contains("regions 0 and 1 are the same labels"), "{e}");
}

#[test]
fn a_dataset_json_of_another_format_beside_the_labels_is_left_out_with_a_note() {
    let d = tmp();
    let root = at(&d, "Task01_Thing");
    let (labels_tr, preds) = (root.join("labelsTr"), at(&d, "preds"));
    std::fs::create_dir_all(&labels_tr).unwrap();
    std::fs::create_dir_all(&preds).unwrap();
    let (lp, pp) = binary_case(&d, [4, 4, 4], 3);
    std::fs::copy(&lp, labels_tr.join("a.nii.gz")).unwrap();
    std::fs::copy(&pp, preds.join("a.nii.gz")).unwrap();
    // the Medical Segmentation Decathlon's dataset.json: names keyed by label value
    std::fs::write(root.join("dataset.json"), r#"{"labels": {"0": "background", "1": "thing"}}"#).unwrap();
    let run = batch_run(&labels_tr, &preds, &at(&d, "o"), &[]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let err = String::from_utf8(run.stderr).unwrap();
    assert!(
        err.contains("dataset.json is not read (") && err.contains("--dataset-json once it is an nnU-Net v2"),
        "{err}"
    );
    // a binary nnU-Net dataset.json names the one channel of a sigmoid prediction
    std::fs::write(root.join("dataset.json"), r#"{"labels": {"background": 0, "thing": 1}}"#).unwrap();
    let run = batch_run(&labels_tr, &preds, &at(&d, "o"), &["--force"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let summary: Value = serde_json::from_slice(&std::fs::read(at(&d, "o").join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["channels"][0]["name"], "thing");
}
