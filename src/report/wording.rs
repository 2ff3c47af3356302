//! The report's words for what was computed.

use crate::error::{set, Msg};
use crate::loss::ce::Form;
use crate::loss::preset::NNUNET_DEEP_SUPERVISION_WEIGHT;
use crate::loss::{Activation, LossParam, LossSpec, Preset};
use crate::msg;

/// What the gradient is taken with respect to.
pub fn gradient_wrt(activation: Activation) -> &'static str {
    match activation {
        Activation::None => "probabilities",
        Activation::Sigmoid => "logits (through sigmoid)",
        Activation::Softmax => "logits (through softmax)",
    }
}

/// What a cross-entropy form computes.
pub fn cross_entropy(form: Form) -> &'static str {
    match form {
        Form::SoftmaxLogits => "cross-entropy of softmax(logits) (torch CrossEntropyLoss, mean weighted by class)",
        Form::SigmoidLogits => {
            "binary cross-entropy of sigmoid(logits) per channel (torch BCEWithLogitsLoss, mean over all values)"
        }
        Form::Nll => "negative log-likelihood of the probabilities (torch NLLLoss of log p, log clamped at −100)",
        Form::Bce => "binary cross-entropy of the probabilities (torch BCELoss, logs clamped at −100)",
        Form::SoftmaxOfInput => {
            "cross-entropy of softmax(values as given) (MONAI DiceCELoss: torch CrossEntropyLoss on the raw input, \
             mean weighted by class)"
        }
        Form::SigmoidOfInput => {
            "binary cross-entropy of sigmoid(values as given) (MONAI DiceCELoss: torch BCEWithLogitsLoss on the raw \
             input)"
        }
    }
}

/// What a cross-entropy form computes on a case with an ignore label (`ignores`) and channels
/// that are overlapping regions (`regions`): [`cross_entropy`], and how the voxels of the ignore
/// label are left out.
pub fn cross_entropy_of(form: Form, ignores: bool, regions: bool) -> String {
    let base = cross_entropy(form);
    match (ignores, regions && form.binary()) {
        (false, _) => base.to_string(),
        (true, true) => format!(
            "{}, summed over the values of the voxels kept (those of the ignore label left out) and divided by \
             the number of voxels kept, not of values (nnU-Net DC_and_BCE_loss with an ignore label)",
            base.split(" (").next().unwrap_or(base)
        ),
        (true, false) => format!("{base}; the voxels of the ignore label left out (torch ignore_index)"),
    }
}

/// The warning for a cross-entropy that takes the values otherwise than the sum-based part does
/// (MONAI's `DiceCELoss`), None for the others.
pub fn cross_entropy_warning(form: Form, activation: Activation) -> Option<String> {
    let what = match form {
        Form::SoftmaxOfInput => "a softmax",
        Form::SigmoidOfInput => "a sigmoid",
        _ => return None,
    };
    let dice_takes = match activation {
        Activation::None => "as probabilities",
        Activation::Sigmoid => "through a sigmoid",
        Activation::Softmax => return None,
    };
    Some(format!(
        "MONAI's DiceCELoss, reproduced here, applies {what} to the values as given in its cross-entropy while its \
         Dice part takes them {dice_takes}: the cross-entropy part is not that of the Dice part's probabilities \
         (without the monai preset it is)"
    ))
}

/// With the nnU-Net preset, which loss weight was used and why.
pub fn nnunet_loss_weight(spec: &LossSpec) -> Option<Msg> {
    if spec.preset != Some(Preset::Nnunet) {
        return None;
    }
    let w = spec.loss_weight;
    let weight = LossParam::LossWeight.param();
    Some(if w == NNUNET_DEEP_SUPERVISION_WEIGHT {
        msg![
            format!(
                "loss weight {w:.6}: nnU-Net trains with deep supervision and weights the full-resolution output's \
                 loss by 1/(1 + 1/2 + 1/4 + 1/8) = 8/15 (5 outputs of a 6-stage 3d_fullres U-Net; the lowest \
                 output is weighted 0), so the loss and gradient shown are that share of nnU-Net's loss; for \
                 another number of outputs pass "
            ),
            set(weight, 4.0 / 7.0),
            " (4) or ",
            set(weight, 16.0 / 31.0),
            " (6), and ",
            set(weight, 1),
            " without deep supervision",
        ]
    } else {
        msg![format!(
            "loss weight {w}, as given (nnU-Net's full-resolution output with 5 deep-supervision outputs: 8/15)"
        )]
    })
}

/// How a channel is named in every text and picture: `channel 1 (label 1)`, with its name when
/// the channels are named (`channel 1 liver (label 1)`).
pub fn channel(k: usize, label: i64, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("channel {k} {n} (label {label})"),
        None => format!("channel {k} (label {label})"),
    }
}

/// The short form of [`channel`] for legends: `ch 1 (label 1)`, `ch 1 liver (label 1)`.
pub fn channel_short(k: usize, label: i64, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("ch {k} {n} (label {label})"),
        None => format!("ch {k} (label {label})"),
    }
}

/// The name of channel `k` among `names`, if the channels are named.
pub use crate::case::labels::name_in as name_of;

/// A label value with the channel's name, for a table's label column: `1`, or `1 (liver)`.
pub fn label_named(label: i64, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{label} ({n})"),
        None => label.to_string(),
    }
}

/// `text` with its first letter capitalised (a sentence or caption that starts with it).
pub fn capitalised(text: &str) -> String {
    let mut c = text.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}
