//! The loss families, their options, and the options checked against a prediction.

use std::ops::Range;

use serde::Serialize;

use super::activation::Activation;
use super::preset::Preset;
use crate::error::{Error, Result};

/// A loss family (`--loss NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Soft Dice (MONAI `DiceLoss`).
    Dice,
    /// Soft Jaccard / IoU (MONAI `DiceLoss(jaccard=True)`).
    Jaccard,
    /// Dice with Σs² + Σg² in the denominator (V-Net; MONAI `squared_pred=True`).
    SquaredDice,
    /// Jaccard with squared sums (MONAI `squared_pred=True, jaccard=True`).
    SquaredJaccard,
    /// Generalized Dice (Sudre et al. 2017; MONAI `GeneralizedDiceLoss`).
    GeneralizedDice,
    /// Tversky (MONAI `TverskyLoss`).
    Tversky,
    /// log(cosh(Dice loss)) (Jadon 2020).
    LogCoshDice,
    /// Cross-entropy.
    Ce,
    /// −Σ_k w_k Σ_i s_ki·g_ki: the output times a negative of the ground truth.
    Mimic,
    /// λ_dice·Dice + λ_ce·cross-entropy (MONAI `DiceCELoss`, nnU-Net `DC_and_CE_loss`).
    #[value(name = "dice+ce")]
    #[serde(rename = "dice+ce")]
    DiceCe,
}

impl LossKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Dice => "dice",
            LossKind::Jaccard => "jaccard",
            LossKind::SquaredDice => "squared-dice",
            LossKind::SquaredJaccard => "squared-jaccard",
            LossKind::GeneralizedDice => "generalized-dice",
            LossKind::Tversky => "tversky",
            LossKind::LogCoshDice => "log-cosh-dice",
            LossKind::Ce => "ce",
            LossKind::Mimic => "mimic",
            LossKind::DiceCe => "dice+ce",
        }
    }

    /// Parses a name as used on the command line.
    pub fn parse(name: &str) -> Option<LossKind> {
        <LossKind as clap::ValueEnum>::value_variants().iter().copied().find(|k| k.name() == name.trim())
    }

    /// Whether the loss has a cross-entropy part.
    pub fn has_ce(self) -> bool {
        matches!(self, LossKind::Ce | LossKind::DiceCe)
    }

    /// Whether the loss uses Σs² (so its gradient depends on s itself).
    pub fn squared(self) -> bool {
        matches!(self, LossKind::SquaredDice | LossKind::SquaredJaccard)
    }

    /// Whether `--class-weights` applies (MONAI `weight` of DiceLoss / DiceCELoss, CE `weight`,
    /// the mimic loss's w_k).
    pub fn takes_class_weights(self) -> bool {
        matches!(
            self,
            LossKind::Dice
                | LossKind::Jaccard
                | LossKind::SquaredDice
                | LossKind::SquaredJaccard
                | LossKind::Ce
                | LossKind::Mimic
                | LossKind::DiceCe
        )
    }
}

/// Class weights of the generalized Dice loss, from the ground-truth volume G_k.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum WeightType {
    /// w = 1 / G².
    Square,
    /// w = 1 / G.
    Simple,
    /// w = 1.
    Uniform,
}

/// How a Dice term enters the loss value (the gradient is the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiceForm {
    /// 1 − dice (MONAI, segmentation_models_pytorch, Kervadec et al.).
    OneMinus,
    /// −dice (nnU-Net).
    Negative,
}

/// Every parameter of a loss, resolved (defaults = MONAI `DiceLoss()`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LossSpec {
    /// The loss family.
    #[serde(rename = "loss")]
    pub kind: LossKind,
    /// The preset the defaults came from, if any.
    pub preset: Option<Preset>,
    pub activation: Activation,
    /// ε added to the numerator.
    pub smooth_nr: f64,
    /// ε added to the denominator.
    pub smooth_dr: f64,
    /// Whether channel 0 takes part in the Dice-type part of the loss (cross-entropy always uses
    /// every channel, as MONAI and nnU-Net do).
    pub include_background: bool,
    /// One weight per channel 0..C−1 (MONAI `weight`; CE `weight`; mimic w_k). None = all 1.
    pub class_weights: Option<Vec<f64>>,
    /// Generalized Dice weighting.
    pub w_type: WeightType,
    /// Tversky weight of false positives.
    pub alpha: f64,
    /// Tversky weight of false negatives.
    pub beta: f64,
    /// Weight of the Dice part of `dice+ce`.
    pub lambda_dice: f64,
    /// Weight of the cross-entropy part of `dice+ce`.
    pub lambda_ce: f64,
    /// 1 − dice or −dice in the value.
    pub dice_form: DiceForm,
    /// Lower bound on a Dice denominator (nnU-Net clips at 1e-8, smp at its eps 1e-7); 0 = none.
    /// Where the bound is active the denominator is a constant.
    pub denominator_floor: f64,
    /// Channels without foreground voxels contribute 0 to the loss (smp).
    pub skip_empty: bool,
}

impl Default for LossSpec {
    fn default() -> Self {
        LossSpec {
            kind: LossKind::Dice,
            preset: None,
            activation: Activation::None,
            smooth_nr: 1e-5,
            smooth_dr: 1e-5,
            include_background: true,
            class_weights: None,
            w_type: WeightType::Square,
            alpha: 0.5,
            beta: 0.5,
            lambda_dice: 1.0,
            lambda_ce: 1.0,
            dice_form: DiceForm::OneMinus,
            denominator_floor: 0.0,
            skip_empty: false,
        }
    }
}

/// A loss specification checked against a prediction with a given number of channels.
#[derive(Clone, Debug, PartialEq)]
pub struct LossConfig {
    pub spec: LossSpec,
    /// Channels in the prediction, C.
    pub channels: usize,
    /// First channel in the Dice-type part (0, or 1 without background).
    pub first: usize,
    /// `--no-background` was asked for on a single-channel prediction, where (as in MONAI) it
    /// cannot apply and is ignored.
    pub background_ignored: bool,
}

fn check_nonnegative(name: &str, v: f64) -> Result<()> {
    if !v.is_finite() || v < 0.0 {
        return Err(Error::usage(format!("{name} must be a finite number ≥ 0, got {v}")));
    }
    Ok(())
}

impl LossConfig {
    /// Validates `spec` for a prediction with `channels` channels.
    pub fn new(spec: LossSpec, channels: usize) -> Result<Self> {
        for (name, v) in [
            ("--smooth-nr", spec.smooth_nr),
            ("--smooth-dr", spec.smooth_dr),
            ("--alpha", spec.alpha),
            ("--beta", spec.beta),
            ("--lambda-dice", spec.lambda_dice),
            ("--lambda-ce", spec.lambda_ce),
        ] {
            check_nonnegative(name, v)?;
        }
        if channels == 0 {
            return Err(Error::usage("the prediction has no channels"));
        }
        if spec.activation == Activation::Softmax && channels < 2 {
            return Err(Error::usage(
                "--activation softmax needs at least two channels, but the prediction has one; \
                 use --activation sigmoid for a single foreground logit",
            ));
        }
        if let Some(w) = &spec.class_weights {
            if !spec.kind.takes_class_weights() {
                return Err(Error::usage(format!(
                    "--class-weights does not apply to --loss {} (it has no class weights in the \
                     frameworks); drop it",
                    spec.kind.name()
                )));
            }
            if w.len() != channels {
                return Err(Error::usage(format!(
                    "--class-weights has {} values but the prediction has {channels} channels; give \
                     one weight per channel 0..{} (with --no-background the first is not used by Dice)",
                    w.len(),
                    channels - 1
                )));
            }
            for &v in w {
                check_nonnegative("--class-weights", v)?;
            }
            if spec.kind.has_ce() && channels == 1 {
                return Err(Error::usage(
                    "--class-weights with binary cross-entropy (one channel) is not supported; give \
                     a two-channel prediction or drop the weights",
                ));
            }
        }
        let background_ignored = !spec.include_background && channels == 1;
        let first = usize::from(!spec.include_background && channels > 1);
        Ok(LossConfig { spec, channels, first, background_ignored })
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
        if self.spec.kind.has_ce() {
            0..self.channels
        } else {
            self.in_loss()
        }
    }

    /// The class index whose voxels are foreground (g = 1) for channel `k`: 1 for a
    /// single-channel prediction, `k` otherwise.
    pub fn fg_class(&self, k: usize) -> u8 {
        if self.channels == 1 {
            1
        } else {
            k as u8
        }
    }

    /// Weight of channel `k` (1 without `--class-weights`).
    pub fn weight(&self, k: usize) -> f64 {
        self.spec.class_weights.as_ref().map_or(1.0, |w| w[k])
    }

    /// The same configuration for another loss family (for comparisons).
    pub fn with_kind(&self, kind: LossKind) -> Result<LossConfig> {
        let mut spec = self.spec.clone();
        spec.kind = kind;
        if !kind.takes_class_weights() {
            spec.class_weights = None;
        }
        LossConfig::new(spec, self.channels)
    }
}
