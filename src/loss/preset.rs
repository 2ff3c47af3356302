//! Presets: the loss each framework trains with, as defaults that explicit options override.
//!
//! - `monai`: MONAI 1.6.1 `DiceLoss()` (monai/losses/dice.py): soft Dice, ε_nr = ε_dr = 1e-5,
//!   background included, mean over channels, no activation.
//! - `nnunet`: nnU-Net v2's default trainer loss (`nnUNetTrainer._build_loss`:
//!   `DC_and_CE_loss({'smooth': 1e-5, 'do_bg': False, ...}, {}, weight_ce=1, weight_dice=1,
//!   dice_class=MemoryEfficientSoftDiceLoss)`, nnunetv2/training/loss/{compound_losses,dice}.py):
//!   softmax over the logits; Dice term −(2I + 1e-5)/max(S + G + 1e-5, 1e-8) averaged over the
//!   foreground channels (do_bg=False; a negative Dice, not 1 − Dice); plus torch
//!   `CrossEntropyLoss` on the logits over all channels; weights 1 and 1.
//! - `smp`: segmentation_models_pytorch 0.6.0 `DiceLoss(mode="multiclass")` defaults
//!   (losses/dice.py, losses/_functional.py): `from_logits=True` (softmax; sigmoid in binary mode
//!   for a one-channel prediction), `smooth=0`, `eps=1e-7` as a lower bound of the denominator,
//!   channels without foreground contribute 0, mean over all channels including background.
//! - `kervadec`: the Dice of Kervadec & de Bruijne's code (`DiceLoss` of their losses.py): softmax
//!   probabilities, 1 − (2I + 1e-10)/(S + G + 1e-10), mean over all classes.

use serde::Serialize;

use super::activation::Activation;
use super::spec::{DiceForm, LossKind, LossSpec};

/// A framework preset (`--preset NAME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    Monai,
    Nnunet,
    Smp,
    Kervadec,
}

impl Preset {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Monai => "monai",
            Preset::Nnunet => "nnunet",
            Preset::Smp => "smp",
            Preset::Kervadec => "kervadec",
        }
    }

    /// The preset's loss for a prediction with `channels` channels.
    pub fn spec(self, channels: usize) -> LossSpec {
        let base = LossSpec { preset: Some(self), ..LossSpec::default() };
        let logits = if channels >= 2 { Activation::Softmax } else { Activation::Sigmoid };
        match self {
            Preset::Monai => base,
            Preset::Nnunet => LossSpec {
                kind: LossKind::DiceCe,
                activation: Activation::Softmax,
                include_background: false,
                dice_form: DiceForm::Negative,
                denominator_floor: 1e-8,
                ..base
            },
            Preset::Smp => LossSpec {
                activation: logits,
                smooth_nr: 0.0,
                smooth_dr: 0.0,
                denominator_floor: 1e-7,
                skip_empty: true,
                ..base
            },
            Preset::Kervadec => {
                LossSpec { activation: Activation::Softmax, smooth_nr: 1e-10, smooth_dr: 1e-10, ..base }
            }
        }
    }
}

/// Options given explicitly on the command line; each one overrides the preset's value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Overrides {
    pub kind: Option<LossKind>,
    pub activation: Option<Activation>,
    pub smooth_nr: Option<f64>,
    pub smooth_dr: Option<f64>,
    pub no_background: bool,
    pub class_weights: Option<Vec<f64>>,
    pub w_type: Option<super::spec::WeightType>,
    pub alpha: Option<f64>,
    pub beta: Option<f64>,
    pub lambda_dice: Option<f64>,
    pub lambda_ce: Option<f64>,
}

/// The loss to compute: the preset's (or MONAI's) defaults, with every explicit option applied.
pub fn resolve(preset: Option<Preset>, o: &Overrides, channels: usize) -> LossSpec {
    let mut s = preset.map_or_else(LossSpec::default, |p| p.spec(channels));
    if let Some(v) = o.kind {
        s.kind = v;
    }
    if let Some(v) = o.activation {
        s.activation = v;
    }
    if let Some(v) = o.smooth_nr {
        s.smooth_nr = v;
    }
    if let Some(v) = o.smooth_dr {
        s.smooth_dr = v;
    }
    if o.no_background {
        s.include_background = false;
    }
    if let Some(v) = &o.class_weights {
        s.class_weights = Some(v.clone());
    }
    if let Some(v) = o.w_type {
        s.w_type = v;
    }
    if let Some(v) = o.alpha {
        s.alpha = v;
    }
    if let Some(v) = o.beta {
        s.beta = v;
    }
    if let Some(v) = o.lambda_dice {
        s.lambda_dice = v;
    }
    if let Some(v) = o.lambda_ce {
        s.lambda_ce = v;
    }
    s
}

/// The loss a user asked for: a preset (or none) and explicit options. Resolved per case, since
/// some defaults depend on the number of channels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct LossRequest {
    pub preset: Option<Preset>,
    pub overrides: Overrides,
}

impl LossRequest {
    /// The checked loss for a prediction with `channels` channels.
    pub fn config(&self, channels: usize) -> crate::error::Result<super::LossConfig> {
        super::LossConfig::new(resolve(self.preset, &self.overrides, channels), channels)
    }
}
