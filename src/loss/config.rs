//! A loss request (a preset and the parameters given explicitly), resolved for a prediction of C
//! channels and checked: [`LossConfig`].

use std::ops::Range;

use super::activation::Activation;
use super::ce;
use super::family::{LossKind, LossParam, LossPatch, LossSpec};
use super::preset::Preset;
use crate::error::{set, Error, Result};
use crate::msg;
use crate::names::Named;

/// The loss a user asked for: a preset (or none) and the parameters given explicitly. Resolved
/// per case, since some defaults depend on the number of channels.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LossRequest {
    pub preset: Option<Preset>,
    /// Parameters given explicitly; each overrides the preset's value.
    pub overrides: LossPatch,
}

impl LossRequest {
    /// The loss family asked for (it does not depend on the number of channels).
    pub fn kind(&self) -> LossKind {
        self.overrides.loss.unwrap_or_else(|| self.preset.map_or(LossKind::Dice, Preset::loss))
    }

    /// Every parameter resolved for a prediction with `channels` channels: the preset's (or
    /// MONAI's) defaults with every explicit parameter applied.
    pub fn resolve(&self, channels: usize) -> LossSpec {
        self.resolve_for(channels, false)
    }

    /// [`LossRequest::resolve`] for channels that are overlapping regions when `regions` (the
    /// preset's region-based loss: [`Preset::spec_for`]).
    pub fn resolve_for(&self, channels: usize, regions: bool) -> LossSpec {
        let mut s = self.preset.map_or_else(LossSpec::default, |p| p.spec_for(channels, regions));
        self.overrides.apply(&mut s);
        s
    }

    /// The checked losses for a prediction with `channels` channels: the main one, then each of
    /// `compare` (repeats and the main family dropped), all with the same parameters — a compared
    /// loss keeping the class weights only if it reads them. Parameters given explicitly that none
    /// of these losses reads are refused ([`LossRequest::check_applies`]).
    pub fn configs(&self, compare: &[LossKind], channels: usize) -> Result<Vec<LossConfig>> {
        self.configs_for(compare, channels, false)
    }

    /// [`LossRequest::configs`] for a prediction whose channels are overlapping regions when
    /// `regions` (each channel a binary problem: see [`LossConfig::regions`]).
    pub fn configs_for(&self, compare: &[LossKind], channels: usize, regions: bool) -> Result<Vec<LossConfig>> {
        self.check_applies(compare)?;
        let spec = self.resolve_for(channels, regions);
        compared_kinds(spec.loss, compare)
            .into_iter()
            .map(|k| LossConfig::for_kind(&spec, k, channels, regions))
            .collect()
    }

    /// Refuses parameters given explicitly that neither the main loss nor any of `compared` reads;
    /// class weights, which belong to the main loss (compared losses take them where they read
    /// them), must be read by the main loss.
    pub fn check_applies(&self, compared: &[LossKind]) -> Result<()> {
        let main = self.kind();
        if self.overrides.class_weights.is_some() {
            class_weights_apply(main)?;
        }
        for p in self.overrides.given() {
            if !main.reads(p) && !compared.iter().any(|k| k.reads(p)) {
                let readers: Vec<&str> = LossKind::ALL.iter().filter(|k| k.reads(p)).map(|k| k.name()).collect();
                return Err(Error::parameter(
                    p.param(),
                    msg![
                        "does not apply to ",
                        set(LossParam::Loss.param(), main),
                        format!(" (it applies to {}); drop it or choose one of those losses", readers.join(", ")),
                    ],
                ));
            }
        }
        Ok(())
    }
}

/// Refuses class weights for a family that has none.
fn class_weights_apply(kind: LossKind) -> Result<()> {
    if kind.reads(LossParam::ClassWeights) {
        return Ok(());
    }
    Err(Error::parameter(
        LossParam::ClassWeights.param(),
        msg![
            "does not apply to ",
            set(LossParam::Loss.param(), kind),
            " (it has no class weights in the frameworks); drop it",
        ],
    ))
}

/// The main loss and the losses compared with it, in order, each once (the main one first).
pub fn compared_kinds(main: LossKind, compare: &[LossKind]) -> Vec<LossKind> {
    let mut kinds = vec![main];
    for &k in compare {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds
}

/// Every pair (i, j), i < j, of `n` losses, in order: the pairs that comparisons report.
pub fn pairs(n: usize) -> Vec<(usize, usize)> {
    (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect()
}

/// A loss specification checked against a prediction with a given number of channels.
#[derive(Clone, Debug, PartialEq)]
pub struct LossConfig {
    pub spec: LossSpec,
    /// Channels in the prediction, C.
    pub channels: usize,
    /// First channel in the Dice-type part (0, or 1 without background).
    pub first: usize,
    /// Leaving out the background was asked for on a single-channel prediction, where (as in
    /// MONAI) it cannot apply and is ignored.
    pub background_ignored: bool,
    /// The channels are overlapping regions (nnU-Net's region-based training): each is a binary
    /// problem of its own — probabilities through a sigmoid (never a softmax), hard counts at
    /// s ≥ 0.5, a binary cross-entropy per channel.
    pub regions: bool,
}

impl LossConfig {
    /// Validates `spec` for a prediction with `channels` channels, one per class.
    pub fn new(spec: LossSpec, channels: usize) -> Result<Self> {
        LossConfig::with_targets(spec, channels, false)
    }

    /// Validates `spec` for a prediction with `channels` channels, overlapping regions when
    /// `regions`.
    pub fn with_targets(spec: LossSpec, channels: usize, regions: bool) -> Result<Self> {
        spec.check()?;
        if channels == 0 {
            return Err(Error::usage("the prediction has no channels"));
        }
        let activation = LossParam::Activation.param();
        if spec.activation == Activation::Softmax && regions {
            return Err(Error::parameter(
                activation,
                msg![
                    "softmax makes the channels exclusive, but they are overlapping regions (trained with a sigmoid \
                     per channel, as nnU-Net's region-based training does); use ",
                    set(activation, Activation::Sigmoid),
                    " for logits, or no activation for probabilities",
                ],
            ));
        }
        if regions && !spec.include_background && channels > 1 {
            let bg = LossParam::IncludeBackground.param();
            return Err(Error::parameter(
                bg,
                msg![
                    "does not apply to regions: every channel is a region, none is a background; drop ",
                    set(bg, false),
                ],
            ));
        }
        if spec.activation == Activation::Softmax && channels < 2 {
            return Err(Error::parameter(
                activation,
                msg![
                    "softmax needs at least two channels, but the prediction has one; use ",
                    set(activation, Activation::Sigmoid),
                    " for a single foreground logit",
                ],
            ));
        }
        let weights = LossParam::ClassWeights.param();
        if let Some(w) = &spec.class_weights {
            class_weights_apply(spec.loss)?;
            if w.len() != channels {
                return Err(Error::parameter(
                    weights,
                    msg![
                        format!(
                            "has {} values but the prediction has {channels} channel{}; give one weight per \
                             channel 0..{} (with ",
                            w.len(),
                            if channels == 1 { "" } else { "s" },
                            channels - 1
                        ),
                        set(LossParam::IncludeBackground.param(), false),
                        " the first is not used by Dice)",
                    ],
                ));
            }
            let ce_form = spec.loss.has_ce().then(|| ce::Form::for_spec(&spec, channels, regions));
            if ce_form.is_some() && channels == 1 {
                return Err(Error::parameter(
                    weights,
                    "with binary cross-entropy (one channel) is not supported; give a two-channel prediction \
                     or drop the weights",
                ));
            }
            if ce_form.is_some_and(ce::Form::binary) {
                return Err(Error::parameter(
                    weights,
                    msg![
                        "with sigmoid cross-entropy is not supported (the weights would be ignored); drop them, or \
                         take the softmax with ",
                        set(LossParam::Activation.param(), Activation::Softmax),
                    ],
                ));
            }
        }
        let background_ignored = !spec.include_background && channels == 1;
        let first = usize::from(!spec.include_background && channels > 1);
        Ok(LossConfig { spec, channels, first, background_ignored, regions })
    }

    /// Whether the loss has a cross-entropy part.
    pub fn has_ce(&self) -> bool {
        self.spec.loss.has_ce()
    }

    /// Number of channels in the Dice-type part, K.
    pub fn k(&self) -> usize {
        self.channels - self.first
    }

    /// The channels in the Dice-type part.
    pub fn in_loss(&self) -> Range<usize> {
        self.first..self.channels
    }

    /// The channels the report describes: those in the Dice-type part, and every channel when
    /// the loss has a cross-entropy part (which uses all of them).
    pub fn reported_channels(&self) -> Range<usize> {
        if self.has_ce() {
            0..self.channels
        } else {
            self.in_loss()
        }
    }

    /// Weight of channel `k` (1 without class weights).
    pub fn weight(&self, k: usize) -> f64 {
        self.spec.class_weights.as_ref().map_or(1.0, |w| w[k])
    }

    /// The parameters of `spec` for the family `kind`, checked for `channels` channels; class
    /// weights are kept only if the family reads them.
    pub fn for_kind(spec: &LossSpec, kind: LossKind, channels: usize, regions: bool) -> Result<LossConfig> {
        let mut spec = spec.clone();
        spec.loss = kind;
        if !kind.reads(LossParam::ClassWeights) {
            spec.class_weights = None;
        }
        LossConfig::with_targets(spec, channels, regions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_parameter_in_a_stored_request_is_refused() {
        let ok: LossRequest = serde_json::from_str(r#"{"preset": null, "overrides": {"smooth_dr": 0.5}}"#).unwrap();
        assert_eq!(ok.overrides.smooth_dr, Some(0.5));
        let e = serde_json::from_str::<LossRequest>(r#"{"preset": null, "overrides": {"smoth_dr": 0.5}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `smoth_dr`"), "{e}");
    }
}
