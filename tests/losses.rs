//! Every loss family checked against independent routes: central finite differences of its value
//! (every family × activation × option that changes the formula), the two-level property where
//! the closed form has it (and its absence where it does not), and the presets against numbers
//! worked out here from the frameworks' formulas.

mod common;

use dicegrad::error::FieldNames;

use common::{fd_error, gradient, inputs_of, random_case};
use dicegrad::analysis::measure;
use dicegrad::analysis::precision::LossScale;
use dicegrad::case::Case;
use dicegrad::loss::{
    Activation, Coefficients, DiceForm, Evaluation, GradientKernel, LossConfig, LossKind, LossParam, LossPatch,
    LossRequest, LossSpec, Preset, WeightType,
};
use dicegrad::names::Named;

/// The variants of each family that change its formula.
fn variants(kind: LossKind, channels: usize) -> Vec<(String, LossSpec)> {
    let base = LossSpec { loss: kind, ..LossSpec::default() };
    let mut v = vec![("defaults".to_string(), base.clone())];
    let weights: Vec<f64> = (0..channels).map(|k| 0.5 + k as f64).collect();
    match kind {
        LossKind::Dice
        | LossKind::Jaccard
        | LossKind::SquaredDice
        | LossKind::SquaredJaccard
        | LossKind::LogCoshDice => {
            v.push(("no smoothing in numerator".into(), LossSpec { smooth_nr: 0.0, smooth_dr: 1.0, ..base.clone() }));
            v.push(("large smoothing".into(), LossSpec { smooth_nr: 1.0, smooth_dr: 2.0, ..base.clone() }));
        }
        LossKind::GeneralizedDice => {
            for w in [WeightType::Simple, WeightType::Uniform] {
                v.push((format!("{w:?}"), LossSpec { w_type: w, ..base.clone() }));
            }
        }
        LossKind::Tversky => {
            v.push(("alpha 0.3 beta 0.7".into(), LossSpec { alpha: 0.3, beta: 0.7, ..base.clone() }));
            v.push(("alpha 0.9 beta 0.2".into(), LossSpec { alpha: 0.9, beta: 0.2, ..base.clone() }));
        }
        LossKind::DiceCe => {
            v.push(("lambdas".into(), LossSpec { lambda_dice: 0.3, lambda_ce: 2.0, ..base.clone() }));
        }
        LossKind::Ce | LossKind::Mimic => {}
    }
    if kind.has_ce() {
        // MONAI's DiceCELoss: the cross-entropy of the values as given
        v.push(("monai".into(), LossSpec { preset: Some(Preset::Monai), ..base.clone() }));
    }
    if kind.reads(LossParam::ClassWeights) && !(kind.has_ce() && channels == 1) {
        v.push(("class weights".into(), LossSpec { class_weights: Some(weights), ..base.clone() }));
    }
    if matches!(kind, LossKind::Dice | LossKind::DiceCe) {
        v.push(("negative form".into(), LossSpec { dice_form: DiceForm::Negative, ..base.clone() }));
        v.push(("active floor".into(), LossSpec { denominator_floor: 1e3, ..base.clone() }));
        v.push(("skip empty".into(), LossSpec { skip_empty: true, smooth_nr: 0.0, smooth_dr: 0.0, ..base.clone() }));
    }
    v
}

/// Every family × activation × channel count × formula-changing variant × background choice:
/// (description, spec, channels).
fn combinations() -> Vec<(String, LossSpec, usize)> {
    let mut out = Vec::new();
    for &kind in LossKind::ALL {
        for act in [Activation::None, Activation::Sigmoid, Activation::Softmax] {
            for channels in [1, 3] {
                if act == Activation::Softmax && channels == 1 {
                    continue;
                }
                for (name, spec) in variants(kind, channels) {
                    // refused: sigmoid cross-entropy takes no class weights (MONAI's takes the
                    // softmax cross-entropy of the logits)
                    let monai = spec.preset == Some(Preset::Monai);
                    if kind.has_ce() && act == Activation::Sigmoid && spec.class_weights.is_some() && !monai {
                        continue;
                    }
                    for include_background in [true, false] {
                        let what =
                            format!("{} {act:?} C={channels} {name} background={include_background}", kind.name());
                        out.push((what, LossSpec { activation: act, include_background, ..spec.clone() }, channels));
                    }
                }
            }
        }
    }
    out
}

/// Whether a family's gradient with respect to the probabilities is two-valued per channel, from
/// its formula (worked out by hand; the library must agree).
fn two_valued(kind: LossKind) -> bool {
    match kind {
        LossKind::Dice
        | LossKind::Jaccard
        | LossKind::Tversky
        | LossKind::GeneralizedDice
        | LossKind::LogCoshDice
        | LossKind::Mimic => true,
        LossKind::SquaredDice | LossKind::SquaredJaccard | LossKind::Ce | LossKind::DiceCe => false,
    }
}

#[test]
fn every_family_matches_finite_differences_with_every_activation_and_option() {
    let mut checked = 0;
    for (what, spec, channels) in combinations() {
        for empty_last in [false, true] {
            let cfg = LossConfig::new(spec.clone(), channels).unwrap();
            let case = random_case(31 + checked, [3, 2, 2], channels, spec.activation, empty_last);
            let err = fd_error(case, &cfg);
            assert!(err < 5e-5, "{what} empty={empty_last}: relative error {err:e}");
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked} combinations");
}

fn stats_of(case: &Case, cfg: &LossConfig) -> (Evaluation, Vec<dicegrad::analysis::GradientStats>) {
    let eval = Evaluation::compute(case, cfg);
    let stats = measure(&GradientKernel::new(case, &eval), &eval, LossScale::default());
    (eval, stats)
}

#[test]
fn sum_linear_families_have_a_two_valued_gradient_with_respect_to_probabilities() {
    for kind in LossKind::ALL.iter().copied().filter(|&k| two_valued(k)) {
        for channels in [1, 4] {
            let case = random_case(77, [11, 9, 6], channels, Activation::None, false);
            let cfg = LossConfig::new(LossSpec { loss: kind, alpha: 0.3, beta: 0.7, ..LossSpec::default() }, channels)
                .unwrap();
            let (eval, stats) = stats_of(&case, &cfg);
            assert!(eval.two_valued(), "{}", kind.name());
            let g = gradient(&case, &cfg);
            let n = case.voxels();
            for (i, st) in stats.iter().enumerate() {
                assert!(st.two_level && st.foreground.distinct == 1 && st.background.distinct == 1, "{}", kind.name());
                // the two values are exactly the closed-form levels P + R and R
                let k = cfg.reported_channels().nth(i).unwrap();
                let fg = case.labels.target(k).1;
                for (v, &cl) in g[k * n..(k + 1) * n].iter().zip(case.labels.class.iter()) {
                    assert_eq!(*v, eval.level(k, cl == fg) as f32, "{} channel {k}", kind.name());
                }
            }
        }
    }
}

#[test]
fn squared_dice_and_cross_entropy_are_not_two_valued_and_the_report_says_so() {
    for kind in LossKind::ALL.iter().copied().filter(|&k| !two_valued(k)) {
        let case = random_case(78, [11, 9, 6], 3, Activation::None, false);
        let cfg = LossConfig::new(LossSpec { loss: kind, ..LossSpec::default() }, 3).unwrap();
        let (eval, stats) = stats_of(&case, &cfg);
        assert!(!eval.two_valued(), "{}", kind.name());
        assert!(stats.iter().all(|s| !s.two_level && s.foreground.distinct > 1), "{}", kind.name());
        let report =
            dicegrad::report::Report::build(&case, inputs_of(&case), &eval, stats, LossScale::default(), &FieldNames);
        assert!(!report.two_level_holds && !report.two_valued_closed_form);
    }
}

/// Softmax of two logits, computed directly.
fn softmax2(a: f64, b: f64) -> (f64, f64) {
    let (ea, eb) = ((a).exp(), (b).exp());
    (ea / (ea + eb), eb / (ea + eb))
}

/// A 4-voxel two-channel case of logits, with labels [1, 0, 1, 0].
fn tiny_logits() -> (Case<'static>, Vec<(f64, f64)>, [u8; 4]) {
    let z0 = [0.2f32, 1.5, -0.3, 0.8];
    let z1 = [1.1f32, -0.4, 0.9, 0.7];
    let labels = [1u8, 0, 1, 0];
    let mut data = z0.to_vec();
    data.extend_from_slice(&z1);
    let s = (0..4).map(|i| softmax2(z0[i] as f64, z1[i] as f64)).collect();
    let case = Case::from_parts([4, 1, 1], labels.to_vec(), 2, data);
    (case, s, labels)
}

fn preset_config(preset: Preset, channels: usize) -> LossConfig {
    LossRequest { preset: Some(preset), ..LossRequest::default() }.configs(&[], channels).unwrap().swap_remove(0)
}

#[test]
fn nnunet_preset_is_negative_foreground_dice_plus_cross_entropy_on_softmax() {
    let (case, s, labels) = tiny_logits();
    // Dice over channel 1 only (do_bg = False): −(2I + 1e-5)/max(S + G + 1e-5, 1e-8)
    let i: f64 = (0..4).filter(|&v| labels[v] == 1).map(|v| s[v].1).sum();
    let sum: f64 = s.iter().map(|p| p.1).sum();
    let dc = (2.0 * i + 1e-5) / (sum + 2.0 + 1e-5);
    // cross-entropy over both channels: mean of −log s_y
    let ce: f64 = (0..4).map(|v| -(if labels[v] == 1 { s[v].1 } else { s[v].0 }).ln()).sum::<f64>() / 4.0;
    let eval = Evaluation::compute(&case, &preset_config(Preset::Nnunet, 2));
    // weighted as nnU-Net weights its full-resolution output under deep supervision (5 outputs:
    // 2^−i for i = 0..3 and 0 for the last, normalised)
    let w0 = 1.0 / (1.0 + 0.5 + 0.25 + 0.125);
    assert!((eval.value - w0 * (-dc + ce)).abs() < 1e-12, "{} vs {}", eval.value, w0 * (-dc + ce));
    assert_eq!(eval.dice_value.map(|d| (d + dc).abs() < 1e-12), Some(true));
    let cfg = preset_config(Preset::Nnunet, 2);
    assert_eq!((cfg.first, cfg.spec.activation, cfg.spec.lambda_ce), (1, Activation::Softmax, 1.0));
}

#[test]
fn smp_preset_zeroes_empty_classes_and_uses_no_smoothing() {
    let (case, s, labels) = tiny_logits();
    let cfg = preset_config(Preset::Smp, 2);
    let dice = |k: usize| {
        let p = |v: usize| if k == 0 { s[v].0 } else { s[v].1 };
        let i: f64 = (0..4).filter(|&v| labels[v] as usize == k).map(p).sum();
        let sum: f64 = (0..4).map(p).sum();
        2.0 * i / (sum + 2.0)
    };
    let want = ((1.0 - dice(0)) + (1.0 - dice(1))) / 2.0;
    assert!((Evaluation::compute(&case, &cfg).value - want).abs() < 1e-12);
    // with class 1 absent from the labels, its term is 0 but still counted in the mean
    let mut empty = case.clone();
    empty.labels.class = vec![0; 4].into();
    let p0: f64 = s.iter().map(|p| p.0).sum();
    let want = (1.0 - 2.0 * p0 / (p0 + 4.0)) / 2.0;
    let eval = Evaluation::compute(&empty, &cfg);
    assert!((eval.value - want).abs() < 1e-12);
    assert_eq!(eval.channels[1].coefficients, Coefficients::default());
    // a single channel uses sigmoid (smp binary mode)
    assert_eq!(preset_config(Preset::Smp, 1).spec.activation, Activation::Sigmoid);
}

#[test]
fn kervadec_and_monai_presets_are_plain_soft_dice_with_their_smoothing() {
    let (case, s, labels) = tiny_logits();
    let d = |k: usize, eps: f64| {
        let p = |v: usize| if k == 0 { s[v].0 } else { s[v].1 };
        let i: f64 = (0..4).filter(|&v| labels[v] as usize == k).map(p).sum();
        let sum: f64 = (0..4).map(p).sum();
        1.0 - (2.0 * i + eps) / (sum + 2.0 + eps)
    };
    let kv = Evaluation::compute(&case, &preset_config(Preset::Kervadec, 2)).value;
    assert!((kv - (d(0, 1e-10) + d(1, 1e-10)) / 2.0).abs() < 1e-12);
    let monai = preset_config(Preset::Monai, 2);
    assert_eq!((monai.spec.activation, monai.spec.smooth_nr, monai.spec.smooth_dr), (Activation::None, 1e-5, 1e-5));
}

#[test]
fn explicit_options_override_the_preset() {
    let o = LossPatch {
        loss: Some(LossKind::Dice),
        smooth_nr: Some(0.25),
        lambda_ce: Some(3.0),
        include_background: Some(false),
        ..LossPatch::default()
    };
    let s = LossRequest { preset: Some(Preset::Nnunet), overrides: o }.resolve(3);
    assert_eq!(s.loss, LossKind::Dice);
    assert_eq!(s.smooth_nr, 0.25);
    assert_eq!(s.smooth_dr, 1e-5, "not given: the preset's value");
    assert_eq!(s.activation, Activation::Softmax, "not given: the preset's value");
    assert_eq!(s.lambda_ce, 3.0);
    assert_eq!(s.preset, Some(Preset::Nnunet));
}

#[test]
fn generalized_dice_replaces_the_infinite_weight_of_an_empty_class_by_the_largest_other() {
    // labels: class 0 ×3, class 1 ×1, class 2 absent
    let labels = vec![0u8, 0, 0, 1];
    let data: Vec<f32> = vec![0.7, 0.6, 0.5, 0.2, 0.2, 0.3, 0.4, 0.7, 0.1, 0.1, 0.1, 0.1];
    let case = Case::from_parts([4, 1, 1], labels, 3, data);
    let cfg = LossConfig::new(LossSpec { loss: LossKind::GeneralizedDice, ..LossSpec::default() }, 3).unwrap();
    let eval = Evaluation::compute(&case, &cfg);
    let w = [1.0 / 9.0, 1.0, 1.0]; // 1/G²; the empty class takes the largest finite weight
    let i = [0.7 + 0.6 + 0.5, 0.7, 0.0]; // Σ s·g per class
    let sg = [2.0 + 3.0, 1.6 + 1.0, 0.4 + 0.0]; // S + G per class
    let num: f64 = 2.0 * (0..3).map(|k| w[k] * i[k]).sum::<f64>() + 1e-5;
    let den: f64 = (0..3).map(|k| w[k] * sg[k]).sum::<f64>() + 1e-5;
    assert!((eval.value - (1.0 - num / den)).abs() < 1e-6, "{} vs {}", eval.value, 1.0 - num / den);
}

/// The loss written out directly from the frameworks' definitions (MONAI's tp/fp/fn form,
/// torch's cross-entropy), voxel by voxel in f64, independently of the library's sums.
fn direct_value(case: &Case, spec: &LossSpec) -> f64 {
    let c = case.prediction.channels;
    let n = case.voxels();
    let x = |k: usize, i: usize| case.prediction.values[k * n + i] as f64;
    let prob = |k: usize, i: usize| -> f64 {
        match spec.activation {
            Activation::None => x(k, i),
            Activation::Sigmoid => 1.0 / (1.0 + (-x(k, i)).exp()),
            Activation::Softmax => x(k, i).exp() / (0..c).map(|j| x(j, i).exp()).sum::<f64>(),
        }
    };
    let target = |k: usize, i: usize| f64::from(u8::from(case.labels.class[i] == if c == 1 { 1 } else { k as u8 }));
    let first = usize::from(!spec.include_background && c > 1);
    let chans: Vec<usize> = (first..c).collect();
    let w = |k: usize| spec.class_weights.as_ref().map_or(1.0, |w| w[k]);
    let (nr, dr) = (spec.smooth_nr, spec.smooth_dr);
    let tp_fp_fn = |k: usize, ord: i32| {
        let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let (s, g) = (prob(k, i), target(k, i));
            tp += (s * g).powi(ord);
            fp += (s * (1.0 - g)).powi(ord);
            fn_ += ((1.0 - s) * g).powi(ord);
        }
        (tp, fp, fn_)
    };
    let mean = |f: &dyn Fn(usize) -> f64| chans.iter().map(|&k| w(k) * f(k)).sum::<f64>() / chans.len() as f64;
    let dice = |k: usize| {
        let (tp, fp, fn_) = tp_fp_fn(k, 1);
        1.0 - (2.0 * tp + nr) / (2.0 * tp + fp + fn_ + dr)
    };
    match spec.loss {
        LossKind::Dice => mean(&dice),
        LossKind::Jaccard => mean(&|k| {
            let (tp, fp, fn_) = tp_fp_fn(k, 1);
            1.0 - (2.0 * tp + nr) / (2.0 * (tp + fp + fn_) + dr)
        }),
        LossKind::SquaredDice | LossKind::SquaredJaccard => mean(&|k| {
            // MONAI ord = 2: ‖s‖², ‖g‖², tp = (‖s‖² + ‖g‖² − ‖s − g‖²)/2
            let (mut ps, mut gs, mut diff) = (0.0, 0.0, 0.0);
            for i in 0..n {
                let (s, g) = (prob(k, i), target(k, i));
                ps += s * s;
                gs += g * g;
                diff += (s - g) * (s - g);
            }
            let tp = (ps + gs - diff) / 2.0;
            let (fp, fn_) = (ps - tp, gs - tp);
            let den = if spec.loss == LossKind::SquaredDice { 2.0 * tp + fp + fn_ } else { 2.0 * (tp + fp + fn_) };
            1.0 - (2.0 * tp + nr) / (den + dr)
        }),
        LossKind::Tversky => mean(&|k| {
            let (tp, fp, fn_) = tp_fp_fn(k, 1);
            1.0 - (tp + nr) / (tp + spec.alpha * fp + spec.beta * fn_ + dr)
        }),
        LossKind::LogCoshDice => mean(&dice).cosh().ln(),
        LossKind::GeneralizedDice => {
            let g: Vec<f64> = chans.iter().map(|&k| (0..n).map(|i| target(k, i)).sum()).collect();
            let mut wt: Vec<f64> = g
                .iter()
                .map(|&g| match spec.w_type {
                    WeightType::Square => 1.0 / (g * g),
                    WeightType::Simple => 1.0 / g,
                    WeightType::Uniform => 1.0,
                })
                .collect();
            let max = wt.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
            wt.iter_mut().filter(|v| !v.is_finite()).for_each(|v| *v = max);
            let (mut num, mut den) = (nr, dr);
            for (j, &k) in chans.iter().enumerate() {
                let (tp, fp, fn_) = tp_fp_fn(k, 1);
                num += 2.0 * wt[j] * tp;
                den += wt[j] * (2.0 * tp + fp + fn_);
            }
            1.0 - num / den
        }
        LossKind::Mimic => {
            -chans.iter().map(|&k| w(k) * (0..n).map(|i| prob(k, i) * target(k, i)).sum::<f64>()).sum::<f64>()
        }
        LossKind::Ce | LossKind::DiceCe if spec.preset == Some(Preset::Monai) => {
            // MONAI DiceCELoss: BCEWithLogitsLoss (C = 1) or CrossEntropyLoss (C ≥ 2) of the values
            // as given, whatever the Dice part's activation
            let ce = if c == 1 {
                let mut t = 0.0;
                for i in 0..n {
                    let (z, g) = (x(0, i), target(0, i));
                    t += z.max(0.0) - z * g + (-z.abs()).exp().ln_1p();
                }
                t / n as f64
            } else {
                let (mut t, mut wsum) = (0.0, 0.0);
                for i in 0..n {
                    let y = case.labels.class[i] as usize;
                    let lse = (0..c).map(|j| x(j, i).exp()).sum::<f64>().ln();
                    t += w(y) * (lse - x(y, i));
                    wsum += w(y);
                }
                t / wsum
            };
            if spec.loss == LossKind::Ce {
                ce
            } else {
                spec.lambda_dice * mean(&dice) + spec.lambda_ce * ce
            }
        }
        LossKind::Ce | LossKind::DiceCe => {
            let ce = if c == 1 || spec.activation == Activation::Sigmoid {
                let mut t = 0.0;
                for k in 0..c {
                    for i in 0..n {
                        let (s, g) = (prob(k, i), target(k, i));
                        t -= g * s.ln().max(-100.0) + (1.0 - g) * (1.0 - s).ln().max(-100.0);
                    }
                }
                t / (c * n) as f64
            } else {
                let (mut t, mut wsum) = (0.0, 0.0);
                for i in 0..n {
                    let y = case.labels.class[i] as usize;
                    t -= w(y) * prob(y, i).ln();
                    wsum += w(y);
                }
                t / wsum
            };
            if spec.loss == LossKind::Ce {
                ce
            } else {
                spec.lambda_dice * mean(&dice) + spec.lambda_ce * ce
            }
        }
    }
}

#[test]
fn every_family_value_matches_its_definition_written_out_directly() {
    for (what, spec, channels) in combinations() {
        if spec.denominator_floor > 0.0 || spec.skip_empty || spec.dice_form == DiceForm::Negative {
            continue; // preset-only options, checked against hand numbers above
        }
        let case = random_case(5, [4, 3, 2], channels, spec.activation, false);
        let cfg = LossConfig::new(spec.clone(), channels).unwrap();
        let (got, want) = (Evaluation::compute(&case, &cfg).value, direct_value(&case, &spec));
        assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{what}: {got} vs {want}");
    }
}

#[test]
fn the_cross_entropy_gradient_on_probabilities_is_the_derivative_of_its_clamped_value() {
    // three voxels of classes 1, 1, 0; the true class's probability 1e-20, 1e-45 (log below −100:
    // clamped, constant) and 0.5
    let s = [1e-20f32, 1e-45, 0.5];
    let values = vec![0.5, 0.5, s[2], s[0], s[1], 0.5];
    let case = dicegrad::case::Case::from_parts([3, 1, 1], vec![1, 1, 0], 2, values);
    let spec = LossSpec { loss: LossKind::Ce, ..LossSpec::default() };
    let g = gradient(&case, &LossConfig::new(spec, 2).unwrap());
    // d/ds of −max(log s, −100)/W with W = 3 voxels of weight 1
    let expected = [0.0, 0.0, -1.0 / (0.5 * 3.0), -1.0 / (f64::from(s[0]) * 3.0), 0.0, 0.0];
    for (i, (&got, want)) in g.iter().zip(expected).enumerate() {
        assert_eq!(got, want as f32, "value {i}: {got} vs {want}");
    }
}

#[test]
fn the_monai_preset_takes_the_cross_entropy_of_the_values_as_given_as_dice_ce_loss_does() {
    // two channels of probabilities on four voxels of classes [1, 0, 1, 0]
    let p1 = [0.9f32, 0.2, 0.6, 0.3];
    let labels = [1u8, 0, 1, 0];
    let mut values: Vec<f32> = p1.iter().map(|p| 1.0 - p).collect();
    values.extend_from_slice(&p1);
    let case = Case::from_parts([4, 1, 1], labels.to_vec(), 2, values);
    let config = |preset: Option<Preset>| {
        let spec = LossSpec { loss: LossKind::DiceCe, preset, activation: Activation::None, ..LossSpec::default() };
        LossConfig::new(spec, 2).unwrap()
    };
    let (monai, plain) =
        (Evaluation::compute(&case, &config(Some(Preset::Monai))), Evaluation::compute(&case, &config(None)));
    // MONAI: CrossEntropyLoss of the probabilities taken as logits, −log softmax(p)_y, mean
    let ce_monai: f64 = (0..4)
        .map(|i| {
            let (a, b) = (f64::from(1.0 - p1[i]), f64::from(p1[i]));
            let (s0, s1) = softmax2(a, b);
            -(if labels[i] == 1 { s1 } else { s0 }).ln()
        })
        .sum::<f64>()
        / 4.0;
    // without the preset: −log p_y, mean
    let ce_plain: f64 =
        (0..4).map(|i| -(if labels[i] == 1 { f64::from(p1[i]) } else { f64::from(1.0 - p1[i]) }).ln()).sum::<f64>()
            / 4.0;
    assert!((monai.ce_value.unwrap() - ce_monai).abs() < 1e-12, "{:?} vs {ce_monai}", monai.ce_value);
    assert!((plain.ce_value.unwrap() - ce_plain).abs() < 1e-12, "{:?} vs {ce_plain}", plain.ce_value);
    assert_eq!(monai.dice_value, plain.dice_value);
    // the gradient of the cross-entropy part: (softmax(p) − onehot)/N on both channels
    let g_monai = gradient(&case, &config(Some(Preset::Monai)));
    let g_plain = gradient(&case, &config(None));
    for i in 0..4 {
        let (s0, s1) = softmax2(f64::from(1.0 - p1[i]), f64::from(p1[i]));
        let y1 = f64::from(labels[i]);
        let (p0v, p1v) = (f64::from(1.0 - p1[i]), f64::from(p1[i]));
        // the plain route's cross-entropy part: −1/(p_y·N) on the true class
        let plain_ce = if labels[i] == 1 { [0.0, -1.0 / (p1v * 4.0)] } else { [-1.0 / (p0v * 4.0), 0.0] };
        let monai_ce = [(s0 - (1.0 - y1)) / 4.0, (s1 - y1) / 4.0];
        for k in 0..2 {
            let dice_part = f64::from(g_plain[k * 4 + i]) - plain_ce[k];
            let want = dice_part + monai_ce[k];
            let got = f64::from(g_monai[k * 4 + i]);
            assert!((got - want).abs() < 1e-6 * want.abs().max(1e-3), "voxel {i} channel {k}: {got} vs {want}");
        }
    }
}
