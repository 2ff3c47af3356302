//! A mini-batch as a training loop holds it (`dicegrad::minibatch`): the input read in place, a
//! one-hot target read as its labels, the per-sample loss's gradient against central differences
//! of the mini-batch's loss as its report gives it (the values and the gradient are computed by
//! different code), the pooled report against the report of the samples laid side by side by the
//! test, and errors that name the sample.

mod common;

use dicegrad::case::Buffer;

use common::*;
use dicegrad::loss::{LossParam, LossPatch, LossRequest};
use dicegrad::minibatch::{reduction, MiniBatch};
use dicegrad::{BatchReduction, Request};
use ndarray::{concatenate, Array4, Array5, Axis, IxDyn};

fn minibatch(b: usize, seed: u64) -> (Array4<u8>, Array5<f32>) {
    minibatch_of(b, 3, [5, 4, 3], seed)
}

fn request(params: &[(LossParam, &str)]) -> Request {
    let mut overrides = LossPatch::default();
    for (p, v) in params {
        overrides.set(*p, v).unwrap();
    }
    Request { loss: LossRequest { preset: None, overrides }, ..Request::default() }
}

#[test]
fn a_c_ordered_float32_input_is_read_in_place() {
    let (labels, probs) = minibatch(2, 3);
    let input = probs.clone().into_dyn();
    let batch = MiniBatch::new(input.view(), labels.view().into_dyn(), None, None).unwrap();
    let range = input.as_slice().unwrap().as_ptr_range();
    for (case, _) in batch.cases() {
        let Buffer::Borrowed(values) = &case.prediction.values else { panic!("the prediction was copied") };
        assert!(range.contains(&values.as_ptr()), "the values lie in the input's memory");
    }
}

#[test]
fn a_one_hot_target_gives_the_gradient_of_its_labels() {
    let (labels, probs) = minibatch(2, 7);
    let hot = Array5::from_shape_fn((2, 3, 5, 4, 3), |(b, k, x, y, z)| f32::from(labels[[b, x, y, z]] == k as u8));
    let req = Request::default();
    let by_labels = MiniBatch::new(probs.view().into_dyn(), labels.view().into_dyn(), None, None).unwrap();
    let by_hot = MiniBatch::new(probs.view().into_dyn(), hot.view().into_dyn(), None, None).unwrap();
    let (a, b) = (
        by_labels.gradient(&req, BatchReduction::PerCase).unwrap(),
        by_hot.gradient(&req, BatchReduction::PerCase).unwrap(),
    );
    assert_eq!(a, b);
    assert_eq!(a.shape(), &[2, 3, 5, 4, 3]);
    // and labels with a channel axis
    let with_axis = labels.clone().insert_axis(Axis(1));
    let by_axis = MiniBatch::new(probs.view().into_dyn(), with_axis.view().into_dyn(), None, None).unwrap();
    assert_eq!(by_axis.gradient(&req, BatchReduction::PerCase).unwrap(), a);
}

/// The mini-batch's loss as its report gives it, for `logits`.
fn batch_loss(labels: &Array4<u8>, logits: &Array5<f32>, req: &Request, r: BatchReduction) -> f64 {
    let batch = MiniBatch::new(logits.view().into_dyn(), labels.view().into_dyn(), None, None).unwrap();
    batch.analyze(req, r, &dicegrad::error::FieldNames).unwrap().batch.loss
}

#[test]
fn the_gradient_of_a_weighted_dice_ce_mini_batch_is_that_of_its_loss() {
    let (labels, probs) = minibatch(2, 21);
    // logits of moderate size; a step of 2^-8 is exact on them
    let logits = probs.mapv(|p| ((p.ln() * 2.0) * 64.0).round() / 64.0);
    let req = request(&[
        (LossParam::Loss, "dice+ce"),
        (LossParam::Activation, "softmax"),
        (LossParam::ClassWeights, "0.5,2,1"),
        (LossParam::LambdaCe, "0.7"),
    ]);
    for r in [BatchReduction::PerCase, BatchReduction::Pooled] {
        let batch = MiniBatch::new(logits.view().into_dyn(), labels.view().into_dyn(), None, None).unwrap();
        let g = batch.gradient(&req, r).unwrap();
        let h = 1.0 / 256.0;
        let scale = g.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        for (i, at) in [[0, 0, 0, 0, 0], [1, 2, 4, 3, 2], [0, 1, 2, 1, 1], [1, 0, 3, 0, 2]].into_iter().enumerate() {
            let (mut up, mut down) = (logits.clone(), logits.clone());
            up[at] += h;
            down[at] -= h;
            let fd = (batch_loss(&labels, &up, &req, r) - batch_loss(&labels, &down, &req, r)) / (2.0 * h as f64);
            let got = f64::from(g[IxDyn(&at)]);
            assert!((fd - got).abs() < 1e-4 * scale, "{r:?} point {i}: finite difference {fd}, gradient {got}");
        }
    }
}

#[test]
fn the_pooled_report_is_the_report_of_the_samples_side_by_side() {
    let (labels, probs) = minibatch(3, 9);
    let req = request(&[(LossParam::Loss, "generalized-dice")]);
    let batch = MiniBatch::new(probs.view().into_dyn(), labels.view().into_dyn(), None, None).unwrap();
    let pooled = batch.analyze(&req, BatchReduction::Pooled, &dicegrad::error::FieldNames).unwrap();
    let report = pooled.report.as_ref().unwrap();
    let wide_labels = concatenate(
        Axis(0),
        &[labels.index_axis(Axis(0), 0), labels.index_axis(Axis(0), 1), labels.index_axis(Axis(0), 2)],
    )
    .unwrap();
    let wide = concatenate(
        Axis(1),
        &[probs.index_axis(Axis(0), 0), probs.index_axis(Axis(0), 1), probs.index_axis(Axis(0), 2)],
    )
    .unwrap();
    let whole = dicegrad::analyze(wide_labels.view(), wide.view(), &req).unwrap();
    assert_eq!(report.loss.value, whole.loss.value);
    assert_eq!(pooled.batch.loss, whole.loss.value);
    for (a, b) in report.channels.iter().zip(&whole.channels) {
        assert_eq!(a.soft_dice, b.soft_dice);
        assert_eq!(a.closed_form.foreground_level, b.closed_form.foreground_level);
        assert_eq!(a.gradient.dynamic_range.max_abs, b.gradient.dynamic_range.max_abs);
    }
    assert_eq!(report.inputs.prediction.file.dims, vec![3, 3, 5, 4, 3]);
}

#[test]
fn per_sample_reports_add_up_to_the_mini_batch() {
    let (labels, probs) = minibatch(2, 4);
    let req = Request::default();
    let batch = MiniBatch::new(probs.view().into_dyn(), labels.view().into_dyn(), None, None).unwrap();
    let r = batch.analyze(&req, BatchReduction::PerCase, &dicegrad::error::FieldNames).unwrap();
    assert_eq!(r.samples.len(), 2);
    // each sample's Dice loss, from its own report on its own, over B
    let own: Vec<f64> = (0..2)
        .map(|b| {
            dicegrad::analyze(labels.index_axis(Axis(0), b), probs.index_axis(Axis(0), b), &req).unwrap().loss.value
        })
        .collect();
    assert!((r.batch.loss - (own[0] + own[1]) / 2.0).abs() < 1e-15);
    for (s, o) in r.samples.iter().zip(&own) {
        assert!((s.loss.value - o / 2.0).abs() < 1e-15);
    }
    // the window of the whole gradient: the tightest of the samples'
    let w = &r.batch.mixed_precision.loss_scale_window;
    let lo = r.samples.iter().map(|s| s.mixed_precision.loss_scale_window.min.unwrap()).fold(0.0, f64::max);
    let hi = r.samples.iter().map(|s| s.mixed_precision.loss_scale_window.max.unwrap()).fold(f64::INFINITY, f64::min);
    assert_eq!((w.min, w.max), (Some(lo), Some(hi)));
    let json: serde_json::Value = serde_json::from_slice(&r.to_json()).unwrap();
    assert_eq!(json["batch"]["reduction"], "per_sample");
    assert_eq!(json["samples"].as_array().unwrap().len(), 2);
}

#[test]
fn errors_name_the_sample() {
    let (mut labels, probs) = minibatch(2, 2);
    labels[[1, 2, 1, 0]] = 7;
    let e = MiniBatch::new(probs.view().into_dyn(), labels.view().into_dyn(), None, None).err().unwrap().to_string();
    assert!(e.starts_with("labels array, sample 1:") && e.contains("out of range"), "{e}");
    let (labels, mut probs) = minibatch(2, 2);
    probs[[1, 0, 0, 0, 0]] = 1.5;
    let batch = MiniBatch::new(probs.view().into_dyn(), labels.view().into_dyn(), None, None).unwrap();
    let e = batch.gradient(&Request::default(), BatchReduction::PerCase).unwrap_err().to_string();
    assert!(e.starts_with("prediction array, sample 1:") && e.contains("outside [0, 1]"), "{e}");
}

#[test]
fn pooling_a_loss_without_sums_is_refused_and_presets_pool_by_default() {
    let ce = request(&[(LossParam::Loss, "ce"), (LossParam::Activation, "softmax")]);
    let e = reduction(Some(true), &ce).unwrap_err().to_string();
    assert!(e.contains("cannot pool: the ce loss has no Dice sums"), "{e}");
    assert_eq!(reduction(None, &ce).unwrap().0, BatchReduction::PerCase);
    let mut nnunet = Request::default();
    nnunet.loss.preset = Some(dicegrad::loss::Preset::Nnunet);
    assert_eq!(reduction(None, &nnunet).unwrap().0, BatchReduction::Pooled);
    assert_eq!(reduction(Some(false), &nnunet).unwrap().0, BatchReduction::PerCase);
    assert_eq!(reduction(None, &Request::default()).unwrap().0, BatchReduction::PerCase);
}
