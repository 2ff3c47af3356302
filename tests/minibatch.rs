//! The gradient of a mini-batch from arrays: per case (each sample's loss averaged over the
//! samples) against each sample's own gradient divided by B, and pooled (one loss of the sums over
//! the samples) against the gradient of one case made of the samples laid side by side, whose sums
//! are the pooled sums by construction.

mod common;

use common::*;
use dicegrad::loss::{Activation, LossKind, LossPatch, LossRequest};
use dicegrad::{BatchReduction, Request};
use ndarray::{concatenate, s, Array4, Array5, Axis};

fn minibatch(b: usize, seed: u64) -> (Array4<u8>, Array5<f32>) {
    minibatch_of(b, 3, [6, 5, 4], seed)
}

fn request(kind: LossKind, activation: Activation) -> Request {
    let mut patch = LossPatch::default();
    patch.set(dicegrad::loss::LossParam::Loss, &kind.to_string()).unwrap();
    patch.set(dicegrad::loss::LossParam::Activation, &activation.to_string()).unwrap();
    Request { loss: LossRequest { preset: None, overrides: patch }, ..Request::default() }
}

/// max |a − b| / max |b|.
fn relative(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).fold(0.0, f64::max) / scale
}

#[test]
fn per_case_is_each_samples_gradient_over_the_batch_size() {
    let (labels, probs) = minibatch(3, 11);
    for kind in [LossKind::Dice, LossKind::Jaccard, LossKind::Tversky, LossKind::DiceCe] {
        let req = request(kind, Activation::None);
        let g = dicegrad::batch_gradient(labels.view(), probs.view(), &req, BatchReduction::PerCase).unwrap();
        for b in 0..3 {
            let own = dicegrad::gradient(labels.index_axis(Axis(0), b), probs.index_axis(Axis(0), b), &req).unwrap();
            let want: Vec<f32> = own.iter().map(|v| v / 3.0).collect();
            let got: Vec<f32> = g.index_axis(Axis(0), b).iter().copied().collect();
            assert!(relative(&got, &want) < 1e-6, "{kind} sample {b}: {}", relative(&got, &want));
        }
    }
}

#[test]
fn pooled_equals_one_case_of_the_samples_side_by_side() {
    let (labels, probs) = minibatch(3, 5);
    // the samples laid along z: one case whose sums are the sums over the samples
    let wide_labels = concatenate(
        Axis(2),
        &[labels.index_axis(Axis(0), 0), labels.index_axis(Axis(0), 1), labels.index_axis(Axis(0), 2)],
    )
    .unwrap();
    let wide_probs = concatenate(
        Axis(3),
        &[probs.index_axis(Axis(0), 0), probs.index_axis(Axis(0), 1), probs.index_axis(Axis(0), 2)],
    )
    .unwrap();
    let logits = probs.mapv(|p| p.ln() * 1.5 + 0.2);
    let wide_logits = wide_probs.mapv(|p| p.ln() * 1.5 + 0.2);
    for (kind, act) in [
        (LossKind::Dice, Activation::None),
        (LossKind::SquaredDice, Activation::None),
        (LossKind::GeneralizedDice, Activation::None),
        (LossKind::DiceCe, Activation::Softmax),
        (LossKind::Dice, Activation::Softmax),
    ] {
        let req = request(kind, act);
        let (p, wp) = if act == Activation::None { (&probs, &wide_probs) } else { (&logits, &wide_logits) };
        let g = dicegrad::batch_gradient(labels.view(), p.view(), &req, BatchReduction::Pooled).unwrap();
        let whole = dicegrad::gradient(wide_labels.view(), wp.view(), &req).unwrap();
        for b in 0..3 {
            let want: Vec<f32> = whole.slice(s![.., .., .., 4 * b..4 * (b + 1)]).iter().copied().collect();
            let got: Vec<f32> = g.index_axis(Axis(0), b).iter().copied().collect();
            assert!(relative(&got, &want) < 1e-6, "{kind} {act} sample {b}: {}", relative(&got, &want));
        }
        // pooling is not the per-case mean: the two differ for Dice
        let per = dicegrad::batch_gradient(labels.view(), p.view(), &req, BatchReduction::PerCase).unwrap();
        assert!(relative(per.as_slice().unwrap(), g.as_slice().unwrap()) > 1e-3, "{kind} {act}");
    }
}

#[test]
fn a_batch_whose_labels_and_predictions_disagree_in_size_is_refused() {
    let (labels, probs) = minibatch(3, 1);
    let e = dicegrad::batch_gradient(
        labels.slice(s![..2, .., .., ..]),
        probs.view(),
        &Request::default(),
        BatchReduction::Pooled,
    )
    .unwrap_err();
    assert!(e.to_string().contains("the labels hold 2 samples and the prediction 3"), "{e}");
}
