//! The report's words for what was computed.

use crate::loss::ce::Form;
use crate::loss::Activation;

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
    }
}
