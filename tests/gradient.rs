//! The gradient checked against independent routes: central finite differences of the loss value
//! (every option combination), the closed form computed here from hand sums, and a worked example.

mod common;

use dicegrad::error::FieldNames;

use common::{fd_error, gradient, inputs_of, random_case};
use dicegrad::analysis::precision::LossScale;
use dicegrad::analysis::{measure, measure_each_voxel, GradientStats};
use dicegrad::case::Case;
use dicegrad::loss::{Activation, Evaluation, GradientKernel, LossConfig, LossSpec};
use dicegrad::report::{json::to_json, Report};

fn case(shape: [usize; 3], class: Vec<u8>, channels: usize, data: Vec<f32>) -> Case<'static> {
    Case::from_parts(shape, class, channels, data)
}

fn spec(act: Activation, smooth_nr: f64, smooth_dr: f64, include_background: bool) -> LossSpec {
    LossSpec { activation: act, smooth_nr, smooth_dr, include_background, ..LossSpec::default() }
}

#[test]
fn gradient_matches_finite_differences_for_every_option_combination() {
    let smoothings = [(1e-5, 1e-5), (0.0, 1.0), (1.0, 0.0), (0.5, 2.0)];
    let mut checked = 0;
    for act in [Activation::None, Activation::Sigmoid, Activation::Softmax] {
        for channels in [1, 3] {
            if act == Activation::Softmax && channels == 1 {
                continue;
            }
            for include_background in [true, false] {
                for (i, &(smooth_nr, smooth_dr)) in smoothings.iter().enumerate() {
                    for empty in [false, true] {
                        let seed = 7 + checked as u64;
                        let c = random_case(seed, [3, 2, 2], channels, act, empty);
                        let cfg =
                            LossConfig::new(spec(act, smooth_nr, smooth_dr, include_background), channels).unwrap();
                        let err = fd_error(c, &cfg);
                        assert!(
                            err < 2e-5,
                            "{act:?} C={channels} background={include_background} smoothing #{i} empty={empty}: \
                             relative error {err:e}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert_eq!(checked, 80);
}

/// The closed form from sums computed here, voxel by voxel, independently of the library.
fn hand_levels(case: &Case, k: usize, channels_in_loss: usize, nr: f64, dr: f64) -> (f64, f64) {
    let n = case.voxels();
    let fg_class = if case.prediction.channels == 1 { 1 } else { k as u8 };
    let (mut i_sum, mut s_sum, mut g_sum) = (0.0, 0.0, 0.0);
    for v in 0..n {
        let s = case.prediction.values[k * n + v] as f64;
        let g = f64::from(case.labels.class[v] == fg_class);
        i_sum += s * g;
        s_sum += s;
        g_sum += g;
    }
    let (num, den) = (2.0 * i_sum + nr, s_sum + g_sum + dr);
    let kk = channels_in_loss as f64;
    ((num - 2.0 * den) / (kk * den * den), num / (kk * den * den))
}

#[test]
fn probability_gradient_takes_exactly_the_two_closed_form_values_per_channel() {
    for (channels, include_background) in [(1, true), (4, true), (4, false)] {
        let c = random_case(99, [13, 11, 7], channels, Activation::None, false);
        let opts = LossSpec { include_background, ..LossSpec::default() };
        let cfg = LossConfig::new(opts, channels).unwrap();
        let g = gradient(&c, &cfg);
        let n = c.voxels();
        for k in 0..channels {
            let fg_class = if channels == 1 { 1 } else { k as u8 };
            let block = &g[k * n..(k + 1) * n];
            if k < cfg.first {
                assert!(block.iter().all(|&v| v == 0.0), "excluded background has zero gradient");
                continue;
            }
            let (fg, bg) = hand_levels(&c, k, cfg.k(), 1e-5, 1e-5);
            for (v, &cl) in block.iter().zip(c.labels.class.iter()) {
                let want = if cl == fg_class { fg as f32 } else { bg as f32 };
                assert_eq!(*v, want, "channel {k}");
            }
        }
        let eval = Evaluation::compute(&c, &cfg);
        let kernel = GradientKernel::new(&c, &eval);
        for st in measure(&kernel, &eval, LossScale::default()) {
            assert!(st.two_level);
            assert_eq!((st.foreground.distinct, st.background.distinct), (1, 1));
            assert_eq!(st.fit.r2, Some(1.0));
        }
    }
}

#[test]
fn logits_gradient_is_not_two_valued_and_the_analysis_says_so() {
    for act in [Activation::Sigmoid, Activation::Softmax] {
        let c = random_case(5, [9, 8, 7], 3, act, false);
        let cfg = LossConfig::new(LossSpec { activation: act, ..LossSpec::default() }, 3).unwrap();
        let eval = Evaluation::compute(&c, &cfg);
        let stats = measure(&GradientKernel::new(&c, &eval), &eval, LossScale::default());
        assert!(stats.iter().all(|s| !s.two_level && s.foreground.distinct > 1), "{act:?}");
        assert!(stats.iter().all(|s| s.fit.r2.unwrap() < 1.0));
    }
}

#[test]
fn worked_example_by_hand() {
    // s = [0.9, 0.2, 0.6, 0.1], g = [1, 0, 1, 0], no smoothing:
    // I = 1.5, S = 1.8, G = 2, N = 3, D = 3.8, L = 1 − 3/3.8,
    // dL/ds = (3 − 7.6)/3.8² on foreground, 3/3.8² on background; ratio 1 − 2/(3/3.8) = −23/15.
    let c = case([4, 1, 1], vec![1, 0, 1, 0], 1, vec![0.9, 0.2, 0.6, 0.1]);
    let opts = LossSpec { smooth_nr: 0.0, smooth_dr: 0.0, ..LossSpec::default() };
    let cfg = LossConfig::new(opts, 1).unwrap();
    let eval = Evaluation::compute(&c, &cfg);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-7 * b.abs();
    assert!(close(eval.value, 1.0 - 3.0 / 3.8));
    let g = gradient(&c, &cfg);
    let (fg, bg) = ((3.0 - 7.6) / 14.44, 3.0 / 14.44);
    assert!(close(g[0] as f64, fg) && close(g[2] as f64, fg));
    assert!(close(g[1] as f64, bg) && close(g[3] as f64, bg));
    let st = &measure(&GradientKernel::new(&c, &eval), &eval, LossScale::default())[0];
    assert!(close(st.level_ratio.closed_form.unwrap(), -23.0 / 15.0));
    assert!(close(st.level_ratio.measured.unwrap(), -23.0 / 15.0));
    assert!(close(st.fit.a.unwrap(), 2.0 / 3.8));
    assert!(close(st.fit.c.unwrap(), 3.0 / 14.44));
    assert!(close(st.dynamic_range.ratio.unwrap(), 4.6 / 3.0));
    // hard Dice: s ≥ 0.5 predicts voxels 0 and 2, both foreground.
    assert_eq!(eval.sums.channels[0].hard_dice(), 1.0);
}

#[test]
fn all_zero_prediction_and_empty_class_give_finite_gradients() {
    let n = 4 * 3 * 2;
    let class: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    let c = case([4, 3, 2], class, 3, vec![0.0; 3 * n]);
    let cfg = LossConfig::new(LossSpec::default(), 3).unwrap();
    let g = gradient(&c, &cfg);
    assert!(g.iter().all(|v| v.is_finite()));
    // class 2 is empty and predicted nowhere: N = ε_nr, D = ε_dr, soft Dice 1, gradient 1/(3·ε_dr).
    let eval = Evaluation::compute(&c, &cfg);
    assert_eq!(eval.soft_dice(2), 1.0);
    assert!(g[2 * n..].iter().all(|&v| v == (1e-5 / (3.0 * 1e-10)) as f32));
    let st = measure(&GradientKernel::new(&c, &eval), &eval, LossScale::default());
    assert_eq!(st[2].foreground.count, 0);
    assert_eq!(st[2].fit.a, None);
    assert!(to_json(&Report::build(&c, inputs_of(&c), &eval, st, LossScale::default(), &FieldNames)).len() > 100);
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    for act in [Activation::Softmax, Activation::None] {
        threads_give_identical_results(act);
    }
}

fn threads_give_identical_results(act: Activation) {
    let c = random_case(11, [40, 40, 30], 3, act, false);
    let cfg = LossConfig::new(LossSpec { activation: act, ..LossSpec::default() }, 3).unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let eval = Evaluation::compute(&c, &cfg);
            let kernel = GradientKernel::new(&c, &eval);
            let stats = measure(&kernel, &eval, LossScale::default());
            let mut g = vec![0f32; c.prediction.values.len()];
            kernel.fill(0, &mut g);
            (to_json(&Report::build(&c, inputs_of(&c), &eval, stats, LossScale::default(), &FieldNames)), g)
        })
    };
    let (one, g1) = run(1);
    let (three, g3) = run(3);
    assert_eq!(one, three);
    assert!(g1.iter().zip(&g3).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn written_gradient_equals_the_gradient_the_statistics_see() {
    use dicegrad::loss::sums::probabilities;
    for act in [Activation::None, Activation::Sigmoid, Activation::Softmax] {
        let c = random_case(21, [17, 9, 5], 3, act, false);
        let cfg =
            LossConfig::new(LossSpec { activation: act, include_background: false, ..LossSpec::default() }, 3).unwrap();
        let written = gradient(&c, &cfg);
        let eval = Evaluation::compute(&c, &cfg);
        let kernel = GradientKernel::new(&c, &eval);
        let n = c.voxels();
        let mut s = vec![0.0; 3 * n];
        let mut block = vec![0f32; 3 * n];
        probabilities(&c, act, 0..n, &mut s);
        kernel.gradient(0..n, &s, &mut block);
        assert!(written.iter().zip(&block).all(|(a, b)| a.to_bits() == b.to_bits()), "{act:?}");
    }
}

/// Every field of two statistics, floats to 1e-12 relative (means and spreads are sums taken in a
/// different order), everything else exactly.
fn assert_same_stats(a: &GradientStats, b: &GradientStats, what: &str) {
    fn walk(x: &serde_json::Value, y: &serde_json::Value, path: &str) {
        use serde_json::Value::*;
        match (x, y) {
            (Object(p), Object(q)) => {
                assert_eq!(p.len(), q.len(), "{path}");
                for (k, v) in p {
                    walk(v, &q[k], &format!("{path}.{k}"));
                }
            }
            (Array(p), Array(q)) => {
                assert_eq!(p.len(), q.len(), "{path}");
                for (i, (u, v)) in p.iter().zip(q).enumerate() {
                    walk(u, v, &format!("{path}[{i}]"));
                }
            }
            (Number(p), Number(q)) if p.is_f64() || q.is_f64() => {
                let (u, v) = (p.as_f64().unwrap(), q.as_f64().unwrap());
                assert!((u - v).abs() <= 1e-12 * u.abs().max(v.abs()), "{path}: {u} vs {v}");
            }
            _ => assert_eq!(x, y, "{path}"),
        }
    }
    walk(&serde_json::to_value(a).unwrap(), &serde_json::to_value(b).unwrap(), what);
    assert_eq!(a.log_histogram, b.log_histogram, "{what}: log histogram");
}

/// Also the mixed-precision figures at several loss scales, exactly.
#[test]
fn statistics_counted_per_side_equal_those_of_every_voxel() {
    let weighted = LossSpec { class_weights: Some(vec![0.5, 1.0, 2.0, 0.0]), ..LossSpec::default() };
    let no_background = LossSpec { include_background: false, ..LossSpec::default() };
    let cases = [
        (random_case(5, [40, 40, 30], 1, Activation::None, false), LossSpec::default(), 1),
        (random_case(6, [40, 40, 30], 4, Activation::None, true), no_background, 4),
        (random_case(7, [19, 23, 5], 4, Activation::None, false), weighted, 4),
    ];
    // GradScaler's first scale, 1, 2^30 (overflow), and scales that flush values in float16, in
    // bfloat16, and make them subnormal there
    let scales = [65536.0, 1.0, 1e-3, 2f64.powi(30), 1e-34, 1e-37, 1e-40];
    let (mut flushed, mut subnormal) = ([false; 2], [false; 2]);
    for (i, (c, spec, channels)) in cases.into_iter().enumerate() {
        let cfg = LossConfig::new(spec, channels).unwrap();
        let eval = Evaluation::compute(&c, &cfg);
        let kernel = GradientKernel::new(&c, &eval);
        for s in scales {
            let scale = LossScale::new(s).unwrap();
            let (sides, voxels) = (measure(&kernel, &eval, scale), measure_each_voxel(&kernel, &eval, scale));
            assert_eq!(sides.len(), voxels.len());
            for (k, (a, b)) in sides.iter().zip(&voxels).enumerate() {
                let what = format!("case {i} channel {k}, S = {s}");
                assert!(a.two_level && b.two_level, "{what}");
                assert_eq!(a.foreground.count + a.background.count, c.voxels() as u64);
                assert_same_stats(a, b, &what);
                // a run of n equal values has the L1 sum n·|v| exactly on both routes
                assert_eq!(a.precision_sums, b.precision_sums, "{what}");
                assert_eq!(a.mixed_precision, b.mixed_precision, "{what}");
                let p = &a.precision_sums;
                flushed[0] |= p.float16.counts.flushed_to_zero > 0 && p.float16.l1_flushed.iter().sum::<f64>() > 0.0;
                flushed[1] |= p.bfloat16.counts.flushed_to_zero > 0 && p.bfloat16.l1_flushed.iter().sum::<f64>() > 0.0;
                subnormal[0] |= p.float16.counts.subnormal > 0;
                subnormal[1] |= p.bfloat16.counts.subnormal > 0;
            }
        }
    }
    assert_eq!([flushed, subnormal], [[true; 2]; 2], "the scales reach every fate (flushed, subnormal)");
}

/// The block loops of the kernel (vectorised, channel-major) against the chain rule written out
/// voxel by voxel with the public per-voxel pieces: the same bits.
#[test]
fn block_gradient_equals_the_chain_rule_voxel_by_voxel() {
    use dicegrad::loss::activation::{sigmoid, softmax, softmax_vjp};
    use dicegrad::loss::ce::add_gradient;
    use dicegrad::loss::sums::probabilities;
    use dicegrad::loss::{LossKind, Preset};
    let weights = Some(vec![0.5, 1.0, 2.0]);
    let specs = [
        (Activation::Softmax, LossSpec { activation: Activation::Softmax, ..LossSpec::default() }, 3),
        (
            Activation::Softmax,
            LossSpec {
                activation: Activation::Softmax,
                loss: LossKind::DiceCe,
                class_weights: weights,
                ..LossSpec::default()
            },
            3,
        ),
        (
            Activation::Softmax,
            LossSpec { activation: Activation::Softmax, loss: LossKind::SquaredDice, ..LossSpec::default() },
            3,
        ),
        (
            Activation::Sigmoid,
            LossSpec { activation: Activation::Sigmoid, loss: LossKind::SquaredDice, ..LossSpec::default() },
            3,
        ),
        (
            Activation::Sigmoid,
            LossSpec { activation: Activation::Sigmoid, loss: LossKind::DiceCe, ..LossSpec::default() },
            1,
        ),
        (Activation::None, LossSpec { loss: LossKind::SquaredDice, ..LossSpec::default() }, 3),
        (Activation::None, LossSpec { loss: LossKind::DiceCe, ..LossSpec::default() }, 3),
        (Activation::None, LossSpec { loss: LossKind::DiceCe, preset: Some(Preset::Monai), ..LossSpec::default() }, 3),
        (
            Activation::Sigmoid,
            LossSpec {
                activation: Activation::Sigmoid,
                loss: LossKind::DiceCe,
                preset: Some(Preset::Monai),
                ..LossSpec::default()
            },
            3,
        ),
    ];
    for (i, (act, spec, channels)) in specs.into_iter().enumerate() {
        let c = random_case(31 + i as u64, [13, 11, 7], channels, act, false);
        let cfg = LossConfig::new(spec, channels).unwrap();
        let eval = Evaluation::compute(&c, &cfg);
        let kernel = GradientKernel::new(&c, &eval);
        let n = c.voxels();
        let mut s = vec![0.0; channels * n];
        let mut block = vec![0f32; channels * n];
        probabilities(&c, act, 0..n, &mut s);
        kernel.gradient(0..n, &s, &mut block);
        for j in 0..n {
            let cl = c.labels.class[j];
            let z: Vec<f64> = (0..channels).map(|k| f64::from(c.prediction.channel(k)[j])).collect();
            let mut p = vec![0.0; channels];
            match act {
                Activation::Softmax => softmax(&z, &mut p),
                Activation::Sigmoid => p.iter_mut().zip(&z).for_each(|(p, &z)| *p = sigmoid(z)),
                Activation::None => p.copy_from_slice(&z),
            }
            let u: Vec<f64> = (0..channels)
                .map(|k| {
                    let c = eval.channels[k].coefficients;
                    c.p * f64::from(u8::from(cl == if channels == 1 { 1 } else { k as u8 })) + c.r + c.t * p[k]
                })
                .collect();
            let mut g = vec![0.0; channels];
            match act {
                Activation::Softmax => softmax_vjp(&p, &u, &mut g),
                Activation::Sigmoid => (0..channels).for_each(|k| g[k] = u[k] * p[k] * (1.0 - p[k])),
                Activation::None => g.copy_from_slice(&u),
            }
            if let Some(form) = eval.ce_form() {
                add_gradient(form, &cfg, &p, &z, cl, eval.ce_scale, &mut g);
            }
            for k in 0..channels {
                let b = block[k * n + j];
                assert_eq!(b.to_bits(), (g[k] as f32).to_bits(), "spec {i}, voxel {j}, channel {k}: {b} vs {}", g[k]);
            }
        }
    }
}
