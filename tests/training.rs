//! The training-regime analysis against an independent route: patches cut out by hand voxel by
//! voxel (padding with label 0 and the first background voxel's prediction, as docs/math.md
//! says), the loss of each mini-batch written out from the formulas of docs/math.md; a seed that
//! gives the same report; nnU-Net's sampling rules; the command line's checks.

mod common;

use common::{dicegrad, json_of, random_case};
use dicegrad::case::Case;
use dicegrad::loss::{Activation, LossConfig, LossKind, LossSpec, Preset};
use dicegrad::training::sampling::{draw, foreground_patches, ClassLocations, Rng};
use dicegrad::training::{analyze, RegimeRequest};

/// The probabilities and classes of one patch, cut out voxel by voxel: (per voxel: class, per
/// channel value).
fn cut(case: &Case, corner: [i64; 3], size: [usize; 3]) -> Vec<(u8, Vec<f64>)> {
    let shape = case.grid.shape;
    let n = case.voxels();
    let c = case.prediction.channels;
    let index = |x: usize, y: usize, z: usize| x + shape[0] * (y + shape[1] * z);
    let pad = case.labels.class.iter().position(|&k| k == 0).unwrap();
    let mut out = Vec::new();
    for dz in 0..size[2] as i64 {
        for dy in 0..size[1] as i64 {
            for dx in 0..size[0] as i64 {
                let p = [corner[0] + dx, corner[1] + dy, corner[2] + dz];
                let inside = (0..3).all(|d| p[d] >= 0 && p[d] < shape[d] as i64);
                let (class, i) = if inside {
                    let i = index(p[0] as usize, p[1] as usize, p[2] as usize);
                    (case.labels.class[i], i)
                } else {
                    (0, pad)
                };
                out.push((class, (0..c).map(|k| f64::from(case.prediction.values[k * n + i])).collect()));
            }
        }
    }
    out
}

/// Soft Dice loss term 1 − (2I + ε)/(S + G + ε) of channel k over voxels (probabilities).
fn dice_term(voxels: &[&(u8, Vec<f64>)], k: usize, fg: u8, eps: f64) -> f64 {
    let (mut i, mut s, mut g) = (0.0, 0.0, 0.0);
    for (class, p) in voxels {
        let t = f64::from(u8::from(*class == fg));
        i += p[k] * t;
        s += p[k];
        g += t;
    }
    1.0 - (2.0 * i + eps) / (s + g + eps)
}

fn request(patch: [usize; 3], batch: usize, batches: usize, seed: u64, batch_dice: Option<bool>) -> RegimeRequest {
    RegimeRequest { patch_size: patch, batch_size: batch, batches, fg_oversample: 0.5, seed, batch_dice }
}

#[test]
fn the_loss_of_every_mini_batch_matches_patches_cut_by_hand() {
    // 3 channels of probabilities, the last class rare; patches larger than the volume on z
    let case = random_case(5, [9, 7, 3], 3, Activation::None, false);
    let patch = [4, 5, 4];
    for batch_dice in [false, true] {
        let req = request(patch, 3, 12, 17, Some(batch_dice));
        let regime = req.resolve(None);
        let config = LossConfig::new(LossSpec::default(), 3).unwrap();
        let report = analyze(&case, &config, &regime).unwrap();
        // the same draws as the library: the seed's generator samples the locations, then the patches
        let mut rng = Rng::new(17);
        let locations = ClassLocations::sample(&case.labels.class, &mut rng);
        let places = draw(case.grid.shape, &regime, &locations, |i| case.grid.coords(i), &mut rng);
        assert!(places.iter().any(|p| p.corner.iter().any(|&c| c < 0)), "some patch is padded");
        let sticking_out = places
            .iter()
            .filter(|p| (0..3).any(|d| p.corner[d] < 0 || p.corner[d] + patch[d] as i64 > case.grid.shape[d] as i64))
            .count();
        assert_eq!(report.padded_patch_share, sticking_out as f64 / places.len() as f64);
        for (b, batch) in places.chunks(3).enumerate() {
            let cuts: Vec<Vec<(u8, Vec<f64>)>> = batch.iter().map(|p| cut(&case, p.corner, patch)).collect();
            let want = if batch_dice {
                let all: Vec<&(u8, Vec<f64>)> = cuts.iter().flatten().collect();
                (0..3).map(|k| dice_term(&all, k, k as u8, 1e-5)).sum::<f64>() / 3.0
            } else {
                cuts.iter()
                    .map(|v| {
                        let refs: Vec<&(u8, Vec<f64>)> = v.iter().collect();
                        (0..3).map(|k| dice_term(&refs, k, k as u8, 1e-5)).sum::<f64>() / 3.0
                    })
                    .sum::<f64>()
                    / 3.0
            };
            let got = report.batch_losses[b];
            assert!(
                (got - want).abs() <= 1e-9 * want.abs(),
                "batch_dice {batch_dice}, mini-batch {b}: {got} vs {want}"
            );
        }
        // the levels of the first mini-batch's first patch: dL/ds of the mean of the B·K terms
        if !batch_dice {
            let v = cut(&case, places[0].corner, patch);
            let refs: Vec<&(u8, Vec<f64>)> = v.iter().collect();
            let (mut i, mut s, mut g) = (0.0, 0.0, 0.0);
            for (class, p) in &refs {
                let t = f64::from(u8::from(*class == 1));
                i += p[1] * t;
                s += p[1];
                g += t;
            }
            let d = s + g + 1e-5;
            let bg = (2.0 * i + 1e-5) / (3.0 * 3.0 * d * d);
            let spread = report.channels[1].background_level.as_ref().unwrap();
            let (lo, hi) = (spread.min.unwrap(), spread.max.unwrap());
            assert!(lo <= bg * (1.0 + 1e-12) && bg <= hi * (1.0 + 1e-12), "{bg} outside [{lo}, {hi}]");
        }
    }
}

#[test]
fn the_cross_entropy_of_a_mini_batch_is_its_mean_over_every_voxel() {
    let case = random_case(9, [8, 6, 4], 2, Activation::Softmax, false);
    let patch = [5, 4, 4];
    let spec = LossSpec { loss: LossKind::Ce, activation: Activation::Softmax, ..LossSpec::default() };
    let config = LossConfig::new(spec, 2).unwrap();
    let regime = request(patch, 2, 6, 3, None).resolve(None);
    let report = analyze(&case, &config, &regime).unwrap();
    let mut rng = Rng::new(3);
    let locations = ClassLocations::sample(&case.labels.class, &mut rng);
    let places = draw(case.grid.shape, &regime, &locations, |i| case.grid.coords(i), &mut rng);
    for (b, batch) in places.chunks(2).enumerate() {
        let (mut total, mut count) = (0.0, 0.0);
        for p in batch {
            for (class, z) in cut(&case, p.corner, patch) {
                let lse = z.iter().map(|v| v.exp()).sum::<f64>().ln();
                total += lse - z[usize::from(class)];
                count += 1.0;
            }
        }
        let want = total / count;
        assert!((report.batch_losses[b] - want).abs() <= 1e-9 * want, "{b}: {} vs {want}", report.batch_losses[b]);
    }
    // through softmax every voxel is visited: the window holds the measured extremes
    let w = report.loss_scale_window.every_batch.unwrap();
    let max = report.batch_max_abs.iter().copied().fold(0.0, f64::max);
    let upper = w.max.unwrap();
    assert!((upper - 65504.0 / max).abs() <= 1e-12 * upper);
}

#[test]
fn a_seed_gives_the_same_report_and_another_seed_other_patches() {
    let case = random_case(2, [10, 9, 6], 3, Activation::None, false);
    let config = LossConfig::new(LossSpec::default(), 3).unwrap();
    let a = analyze(&case, &config, &request([5, 5, 4], 2, 20, 11, None).resolve(None)).unwrap();
    let b = analyze(&case, &config, &request([5, 5, 4], 2, 20, 11, None).resolve(None)).unwrap();
    let c = analyze(&case, &config, &request([5, 5, 4], 2, 20, 12, None).resolve(None)).unwrap();
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert_ne!(a.batch_losses, c.batch_losses);
}

#[test]
fn foreground_patches_are_centred_on_a_foreground_voxel_as_nnunet_centres_them() {
    // one foreground voxel at (7, 1, 2) in a 9×8×5 volume
    let shape = [9, 8, 5];
    let n: usize = shape.iter().product();
    let mut class = vec![0u8; n];
    class[7 + 9 * (1 + 8 * 2)] = 1;
    let case = Case::from_parts(shape, class, 1, vec![0.3; n]);
    let mut rng = Rng::new(4);
    let locations = ClassLocations::sample(&case.labels.class, &mut rng);
    let regime = RegimeRequest { fg_oversample: 0.33, ..request([4, 4, 4], 3, 10, 4, None) }.resolve(None);
    let places = draw(shape, &regime, &locations, |i| case.grid.coords(i), &mut rng);
    // B = 3, F = 0.33: round(3·0.67) = 2 uniform patches, the last one a foreground patch
    assert_eq!(foreground_patches(3, 0.33), 1);
    for batch in places.chunks(3) {
        assert!(!batch[0].foreground && !batch[1].foreground && batch[2].foreground);
        // corner max(lo, v − P/2): x 7 − 2 = 5 (sticks out: 5..9 ends at the edge), y max(0, −1) = 0, z 0
        assert_eq!(batch[2].corner, [5, 0, 0]);
    }
}

#[test]
fn the_nnunet_preset_pools_the_dice_over_the_mini_batch_and_says_why() {
    let r = request([4, 4, 4], 2, 1, 0, None);
    assert!(r.resolve(Some(Preset::Nnunet)).batch_dice);
    assert!(r.resolve(Some(Preset::Nnunet)).batch_dice_source.contains("nnU-Net"));
    assert!(!r.resolve(Some(Preset::Monai)).batch_dice);
    assert!(!request([4, 4, 4], 2, 1, 0, Some(false)).resolve(Some(Preset::Nnunet)).batch_dice);
}

fn sample(kind: &str, file: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples").join(kind).join(file)
}

#[test]
fn the_command_line_reports_the_regime_and_refuses_bad_values() {
    let base = |extra: &[&str]| {
        let mut c = dicegrad();
        c.args(["analyze", "--labels"])
            .arg(sample("multiclass", "labels.nii.gz"))
            .arg("--pred")
            .arg(sample("multiclass", "probs.nii.gz"))
            .args(extra);
        c
    };
    let r = json_of(&mut base(&["--patch-size", "16,16,8", "--patches", "30", "--seed", "5", "--json"]));
    let t = &r["training"];
    assert_eq!(t["regime"]["batches"], 30);
    assert_eq!(t["batch_losses"].as_array().unwrap().len(), 30);
    assert_eq!(t["regime"]["batch_dice"], false);
    for (args, words) in [
        (vec!["--patches", "5"], "--patch-size is needed"),
        (vec!["--patch-size", "16,16"], "three sizes"),
        (vec!["--patch-size", "16,0,8"], "has no voxel"),
        (vec!["--patch-size", "8,8,8", "--batch-size", "0"], "--batch-size must be at least 1"),
        (vec!["--patch-size", "8,8,8", "--fg-oversample", "1.5"], "--fg-oversample is a share"),
        (vec!["--patch-size", "8,8,8", "--batch-dice", "--no-batch-dice"], "cannot be used with"),
    ] {
        let out = base(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
    }
}

#[test]
fn the_loss_weight_multiplies_the_loss_and_every_gradient() {
    let case = random_case(3, [6, 5, 4], 3, Activation::Softmax, false);
    let spec = LossSpec { loss: LossKind::DiceCe, activation: Activation::Softmax, ..LossSpec::default() };
    let one = LossConfig::new(spec.clone(), 3).unwrap();
    let half = LossConfig::new(LossSpec { loss_weight: 0.5, ..spec }, 3).unwrap();
    let (g1, g2) = (common::gradient(&case, &one), common::gradient(&case, &half));
    for (a, b) in g1.iter().zip(&g2) {
        // halving is exact in binary floating point
        assert_eq!(a * 0.5, *b);
    }
    let (e1, e2) =
        (dicegrad::loss::Evaluation::compute(&case, &one), dicegrad::loss::Evaluation::compute(&case, &half));
    assert_eq!(e1.value * 0.5, e2.value);
}

fn regime_of(patch: [usize; 3], batch: usize, batches: usize, batch_dice: Option<bool>) -> dicegrad::training::Regime {
    RegimeRequest { fg_oversample: 0.33, ..request(patch, batch, batches, 1, batch_dice) }.resolve(None)
}

#[test]
fn the_smp_preset_pools_over_the_batch_as_smp_does() {
    let r = request([4, 4, 4], 2, 1, 0, None);
    assert!(r.resolve(Some(Preset::Smp)).batch_dice);
    assert!(r.resolve(Some(Preset::Smp)).batch_dice_source.contains("smp"));
}

#[test]
fn pooled_levels_are_counted_on_every_mini_batch_that_holds_the_class() {
    let case = random_case(8, [12, 10, 6], 3, Activation::None, false);
    let config = LossConfig::new(LossSpec::default(), 3).unwrap();
    let report = analyze(&case, &config, &regime_of([2, 2, 2], 2, 60, Some(true))).unwrap();
    for c in &report.channels {
        let holding = ((1.0 - c.absent_batch_share) * 60.0).round() as usize;
        assert_eq!(c.foreground_level.as_ref().unwrap().count, holding, "channel {}", c.channel);
        assert_eq!(c.background_level.as_ref().unwrap().count, 60, "channel {}", c.channel);
    }
}

#[test]
fn the_largest_gradient_is_the_largest_of_the_reported_channels() {
    // through softmax with the background left out, channel 0 has a gradient but is not reported
    let case = random_case(12, [8, 8, 4], 3, Activation::Softmax, false);
    let spec = LossSpec { activation: Activation::Softmax, include_background: false, ..LossSpec::default() };
    let config = LossConfig::new(spec, 3).unwrap();
    let report = analyze(&case, &config, &regime_of([1, 1, 1], 1, 100, None)).unwrap();
    let max = report.batch_max_abs.iter().copied().fold(0.0, f64::max);
    let largest = report.largest.unwrap();
    assert_eq!(largest.value, max);
    assert_ne!(largest.channel, 0);
    assert_eq!(report.batch_max_abs[largest.batch], max);
}

#[test]
fn mini_batches_whose_loss_is_not_finite_are_counted() {
    // one-hot probabilities and no smoothing: a patch without class k and without its prediction
    // has a Dice ratio 0/0
    let shape = [6, 4, 2];
    let n: usize = shape.iter().product();
    let class: Vec<u8> = (0..n).map(|i| (i % 5 == 0) as u8).collect();
    let mut values = vec![0f32; 2 * n];
    for (i, &c) in class.iter().enumerate() {
        values[usize::from(c) * n + i] = 1.0;
    }
    let case = Case::from_parts(shape, class, 2, values);
    let spec = LossSpec { smooth_nr: 0.0, smooth_dr: 0.0, ..LossSpec::default() };
    let report = analyze(&case, &LossConfig::new(spec, 2).unwrap(), &regime_of([1, 1, 1], 1, 40, None)).unwrap();
    let nan = report.batch_losses.iter().filter(|l| !l.is_finite()).count();
    assert!(nan > 0);
    assert_eq!(report.non_finite_batches, nan);
    assert_eq!(report.first_non_finite_batch, report.batch_losses.iter().position(|l| !l.is_finite()));
    assert_eq!(report.loss.count, 40 - nan);
}

#[test]
fn labels_without_background_are_refused_only_where_padding_is_needed_and_say_why() {
    let shape = [8, 8, 4];
    let n: usize = shape.iter().product();
    let case = Case::from_parts(shape, vec![1; n], 1, vec![0.7; n]);
    let config = LossConfig::new(LossSpec::default(), 1).unwrap();
    let e = analyze(&case, &config, &regime_of([4, 4, 4], 2, 20, None)).unwrap_err();
    let m = e.render(&dicegrad::error::FieldNames);
    assert!(m.contains("foreground patches") && m.contains("a share of 0"), "{m}");
    let none = RegimeRequest { fg_oversample: 0.0, ..request([4, 4, 4], 2, 20, 1, None) }.resolve(None);
    assert_eq!(analyze(&case, &config, &none).unwrap().padded_patch_share, 0.0);
}

#[test]
fn the_command_line_refuses_sizes_beyond_its_limits_and_pooling_without_dice_sums() {
    let base = |extra: &[&str]| {
        let mut c = dicegrad();
        c.args(["analyze", "--labels"])
            .arg(sample("multiclass", "labels.nii.gz"))
            .arg("--pred")
            .arg(sample("multiclass", "probs.nii.gz"))
            .args(extra);
        c
    };
    for (args, words) in [
        (vec!["--patch-size", "8,8,8", "--patches", "4611686018427387904"], "at most 10000000 patches"),
        (vec!["--patch-size", "8,8,8", "--batch-size", "9223372036854775807"], "at most 10000000 patches"),
        (vec!["--patch-size", "18446744073709551615,1,1"], "a side of at most"),
        (vec!["--patch-size", "8,8,8", "--loss", "ce", "--batch-dice"], "no Dice sums to pool"),
        (vec!["--loss-weight", "1e300"], "overflows float32"),
    ] {
        let out = base(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(words) && !err.contains("panicked"), "{args:?}: {err}");
    }
    // class weights before the training options
    let r =
        json_of(&mut base(&["--class-weights", "1,2,3,0.5", "--patch-size", "16,16,8", "--patches", "3", "--json"]));
    assert_eq!(r["training"]["regime"]["batches"], 3);
    assert_eq!(r["parameters"]["class_weights"][3], 0.5);
}

#[test]
fn a_mini_batch_that_is_not_finite_is_refused_unless_asked_for() {
    let shape = [6, 4, 2];
    let n: usize = shape.iter().product();
    let class: Vec<u8> = (0..n).map(|i| (i % 5 == 0) as u8).collect();
    let mut values = vec![0f32; 2 * n];
    for (i, &c) in class.iter().enumerate() {
        values[usize::from(c) * n + i] = 1.0;
    }
    let case = Case::from_parts(shape, class, 2, values);
    let patch = dicegrad::loss::LossPatch { smooth_nr: Some(0.0), smooth_dr: Some(0.0), ..Default::default() };
    let mut req = dicegrad::Request {
        loss: dicegrad::loss::LossRequest { preset: None, overrides: patch },
        regime: Some(request([1, 1, 1], 1, 40, 1, None)),
        ..Default::default()
    };
    let naming = dicegrad::error::FieldNames;
    let e = dicegrad::pipeline::analyze(&case, common::inputs_of(&case), &req, &naming).err().unwrap();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.render(&naming).contains("mini-batches have a loss or gradient that is not finite"),
        "{}",
        e.render(&naming)
    );
    req.allow_non_finite = true;
    let r = dicegrad::pipeline::analyze(&case, common::inputs_of(&case), &req, &naming).unwrap().report;
    assert!(r.training.unwrap().non_finite_batches > 0);
    assert!(r.warnings.iter().any(|w| w.contains("left out of the spreads")));
}
