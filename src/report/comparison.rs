//! The comparison part of the report (losses compared with the main one): the compared losses' gradients and the pairwise
//! figures.

use serde::Serialize;

use super::ClosedForm;
use crate::analysis::compare::Pair;
use crate::analysis::GradientStats;
use crate::case::Case;
use crate::loss::{Evaluation, LossKind};

/// One channel of a compared loss.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ComparedChannel {
    pub channel: usize,
    pub label: i64,
    pub closed_form: ClosedForm,
    pub gradient: GradientStats,
}

/// A compared loss: its value and its gradient per reported channel.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ComparedLoss {
    pub name: LossKind,
    pub value: f64,
    /// Every channel's gradient takes one value on foreground and one on background voxels.
    pub two_level_holds: bool,
    /// The closed form is two-valued with respect to probabilities.
    pub two_valued_closed_form: bool,
    pub channels: Vec<ComparedChannel>,
}

/// Everything comparing losses adds to the report.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Comparison {
    /// The compared losses, with the options of the main loss.
    pub losses: Vec<ComparedLoss>,
    /// Every pair among the main loss and the compared ones (main loss first).
    pub pairs: Vec<Pair>,
}

impl ComparedLoss {
    /// A compared loss from its evaluation and gradient statistics (one per reported channel).
    pub fn build(case: &Case, eval: &Evaluation, stats: Vec<GradientStats>) -> ComparedLoss {
        let channels: Vec<ComparedChannel> = eval
            .config
            .reported_channels()
            .zip(stats)
            .map(|(k, gradient)| ComparedChannel {
                channel: k,
                label: case.labels.label_of(k),
                closed_form: ClosedForm::of(eval, k),
                gradient,
            })
            .collect();
        ComparedLoss {
            name: eval.config.spec.loss,
            value: eval.value,
            two_level_holds: channels.iter().all(|c| c.gradient.two_level),
            two_valued_closed_form: eval.two_valued(),
            channels,
        }
    }
}
