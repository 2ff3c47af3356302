//! The reduction pass: per-channel sums of a case (and the cross-entropy sum), accumulated in f64
//! over fixed chunks and added in chunk order, so that the result does not depend on the number of
//! threads.

use std::ops::Range;

use super::activation::{sigmoid, softmax, Activation};
use super::ce;
use super::spec::LossConfig;
use crate::parallel::fold_chunks;
use crate::volume::Case;

/// Sums over the voxels of one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChannelSums {
    /// I = Σ s·g.
    pub intersection: f64,
    /// S = Σ s.
    pub pred_sum: f64,
    /// Q = Σ s².
    pub pred_sq_sum: f64,
    /// G = Σ g: the number of foreground voxels.
    pub label_count: u64,
    /// Voxels predicted as this class (argmax, or s ≥ 0.5) that are foreground.
    pub hard_tp: u64,
    /// Voxels predicted as this class.
    pub hard_pred: u64,
}

impl ChannelSums {
    /// Adds another's sums (pooling over cases).
    pub fn add(&mut self, o: &ChannelSums) {
        self.intersection += o.intersection;
        self.pred_sum += o.pred_sum;
        self.pred_sq_sum += o.pred_sq_sum;
        self.label_count += o.label_count;
        self.hard_tp += o.hard_tp;
        self.hard_pred += o.hard_pred;
    }

    /// Hard Dice 2·TP / (P + G); 1 when the class is absent from both.
    pub fn hard_dice(&self) -> f64 {
        let denom = self.hard_pred + self.label_count;
        if denom == 0 {
            1.0
        } else {
            2.0 * self.hard_tp as f64 / denom as f64
        }
    }
}

/// All sums of a case.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseSums {
    /// Voxels N of the case.
    pub voxels: u64,
    /// One entry per prediction channel.
    pub channels: Vec<ChannelSums>,
    /// Σ over voxels of the (weighted) cross-entropy; 0 when the loss has none.
    pub ce_sum: f64,
    /// The cross-entropy's normaliser: Σ of the voxels' class weights (softmax / NLL), or the
    /// number of values (binary cross-entropy).
    pub ce_norm: f64,
}

/// Activated probabilities of the voxels in `r`, for every channel, channel-major into `s`
/// (`s[k*len + j]` for voxel `r.start + j`), in f64.
pub fn probabilities(case: &Case, act: Activation, r: Range<usize>, s: &mut [f64]) {
    let pred = &case.prediction;
    let len = r.len();
    let c = pred.channels;
    match act {
        Activation::None | Activation::Sigmoid => {
            for k in 0..c {
                let src = &pred.channel(k)[r.clone()];
                let dst = &mut s[k * len..(k + 1) * len];
                if act == Activation::None {
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v as f64);
                } else {
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = sigmoid(v as f64));
                }
            }
        }
        Activation::Softmax => {
            let (mut z, mut p) = (vec![0.0; c], vec![0.0; c]);
            for j in 0..len {
                for (k, zk) in z.iter_mut().enumerate() {
                    *zk = pred.channel(k)[r.start + j] as f64;
                }
                softmax(&z, &mut p);
                for (k, pk) in p.iter().enumerate() {
                    s[k * len + j] = *pk;
                }
            }
        }
    }
}

fn channel_sums(config: &LossConfig, k: usize, p: &[f64], class: &[u8], threshold: bool) -> ChannelSums {
    let mut sk = ChannelSums::default();
    let fg = config.fg_class(k);
    for (&v, &cl) in p.iter().zip(class) {
        sk.pred_sum += v;
        sk.pred_sq_sum += v * v;
        if cl == fg {
            sk.intersection += v;
            sk.label_count += 1;
        }
    }
    if threshold {
        for (&v, &cl) in p.iter().zip(class) {
            if v >= 0.5 {
                sk.hard_pred += 1;
                sk.hard_tp += u64::from(cl == fg);
            }
        }
    }
    sk
}

/// Adds the argmax prediction of each voxel to the hard counts.
fn argmax_counts(sums: &mut [ChannelSums], s: &[f64], class: &[u8]) {
    let (c, len) = (sums.len(), class.len());
    for (j, &cl) in class.iter().enumerate() {
        let mut best = 0;
        for k in 1..c {
            if s[k * len + j] > s[best * len + j] {
                best = k;
            }
        }
        sums[best].hard_pred += 1;
        sums[best].hard_tp += u64::from(cl == best as u8);
    }
}

impl CaseSums {
    /// Adds another case's sums (MONAI `batch=True`, nnU-Net `batch_dice`): channel by channel.
    pub fn pool(&mut self, o: &CaseSums) {
        self.voxels += o.voxels;
        for (a, b) in self.channels.iter_mut().zip(&o.channels) {
            a.add(b);
        }
        self.ce_sum += o.ce_sum;
        self.ce_norm += o.ce_norm;
    }

    /// One pass over the case.
    pub fn compute(case: &Case, config: &LossConfig) -> CaseSums {
        let c = config.channels;
        let act = config.spec.activation;
        let threshold = c == 1 || act == Activation::Sigmoid;
        let ce_form = config.spec.kind.has_ce().then(|| ce::Form::of(config));
        let mut total =
            CaseSums { voxels: case.voxels() as u64, channels: vec![ChannelSums::default(); c], ..CaseSums::default() };
        let chunk = |r: Range<usize>| {
            let len = r.len();
            let mut s = vec![0.0; c * len];
            probabilities(case, act, r.clone(), &mut s);
            let class = &case.labels.class[r.clone()];
            let mut sums: Vec<ChannelSums> =
                (0..c).map(|k| channel_sums(config, k, &s[k * len..(k + 1) * len], class, threshold)).collect();
            if !threshold {
                argmax_counts(&mut sums, &s, class);
            }
            let ce = ce_form.map_or((0.0, 0.0), |form| ce::chunk_sum(form, config, case, r));
            (sums, ce)
        };
        fold_chunks(case.voxels(), chunk, |(part, (ce_sum, ce_norm))| {
            for (t, p) in total.channels.iter_mut().zip(&part) {
                t.add(p);
            }
            total.ce_sum += ce_sum;
            total.ce_norm += ce_norm;
        });
        total
    }
}
