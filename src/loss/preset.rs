//! Presets: the loss each framework trains with, as defaults that explicit parameters override.
//!
//! - `monai`: MONAI 1.6.1 `DiceLoss()` (monai/losses/dice.py): soft Dice, ε_nr = ε_dr = 1e-5,
//!   background included, mean over channels, no activation.
//! - `nnunet`: nnU-Net v2's default trainer loss (`nnUNetTrainer._build_loss`:
//!   `DC_and_CE_loss({'smooth': 1e-5, 'do_bg': False, ...}, {}, weight_ce=1, weight_dice=1,
//!   dice_class=MemoryEfficientSoftDiceLoss)`, nnunetv2/training/loss/{compound_losses,dice}.py):
//!   softmax over the logits; Dice term −(2I + 1e-5)/max(S + G + 1e-5, 1e-8) averaged over the
//!   foreground channels (do_bg=False; a negative Dice, not 1 − Dice); plus torch
//!   `CrossEntropyLoss` on the logits over all channels; weights 1 and 1; the whole loss weighted
//!   by the full-resolution output's deep-supervision weight ([`NNUNET_DEEP_SUPERVISION_WEIGHT`]).
//!   With regions (region-based training, BraTS): `DC_and_BCE_loss` — a sigmoid per channel,
//!   Dice over every channel (`do_bg=True`), `BCEWithLogitsLoss`.
//! - `smp`: segmentation_models_pytorch 0.6.0 `DiceLoss(mode="multiclass")` defaults
//!   (losses/dice.py, losses/_functional.py): `from_logits=True` (softmax; sigmoid in binary mode
//!   for a one-channel prediction), `smooth=0`, `eps=1e-7` as a lower bound of the denominator,
//!   channels without foreground contribute 0, mean over all channels including background.
//! - `kervadec`: the Dice of Kervadec & de Bruijne's code (`DiceLoss` of their losses.py): softmax
//!   probabilities, 1 − (2I + 1e-10)/(S + G + 1e-10), mean over all classes.

use super::activation::Activation;

/// nnU-Net v2's weight of the full-resolution output's loss under deep supervision with 5 outputs
/// (a 6-stage `3d_fullres` U-Net, its usual plan): weights 2^−i for i = 0..4, the last set to 0,
/// normalised to sum 1 (`nnUNetTrainer._build_loss`): 1/(1 + 1/2 + 1/4 + 1/8) = 8/15. With 4
/// outputs it is 4/7 ≈ 0.571, with 6 it is 16/31 ≈ 0.516.
pub const NNUNET_DEEP_SUPERVISION_WEIGHT: f64 = 8.0 / 15.0;
use super::family::DiceForm;
use super::family::{LossKind, LossSpec};
use crate::names::named_enum;

named_enum! {
    /// A framework preset.
    pub enum Preset: "preset" {
        /// MONAI `DiceLoss()`.
        Monai = "monai",
        /// nnU-Net v2's default: softmax, −Dice over foreground + cross-entropy.
        Nnunet = "nnunet",
        /// segmentation_models_pytorch `DiceLoss`.
        Smp = "smp",
        /// The Dice of Kervadec & de Bruijne's code.
        Kervadec = "kervadec",
    }
}

impl Preset {
    /// The preset's loss family.
    pub fn loss(self) -> LossKind {
        match self {
            Preset::Monai | Preset::Smp | Preset::Kervadec => LossKind::Dice,
            Preset::Nnunet => LossKind::DiceCe,
        }
    }

    /// The preset's loss for a prediction with `channels` channels.
    /// The preset's loss for a prediction whose channels are overlapping regions (`regions`):
    /// logits through a sigmoid per channel, never a softmax; for nnU-Net every channel in the
    /// Dice (region-based training: `DC_and_BCE_loss` with `do_bg=True`, there being no
    /// background channel). Otherwise [`Preset::spec`].
    pub fn spec_for(self, channels: usize, regions: bool) -> LossSpec {
        let mut s = self.spec(channels);
        if regions {
            if s.activation == Activation::Softmax {
                s.activation = Activation::Sigmoid;
            }
            if self == Preset::Nnunet {
                s.include_background = true;
            }
        }
        s
    }

    pub fn spec(self, channels: usize) -> LossSpec {
        let base = LossSpec { loss: self.loss(), preset: Some(self), ..LossSpec::default() };
        let logits = if channels >= 2 { Activation::Softmax } else { Activation::Sigmoid };
        match self {
            Preset::Monai => base,
            Preset::Nnunet => LossSpec {
                activation: Activation::Softmax,
                include_background: false,
                dice_form: DiceForm::Negative,
                denominator_floor: 1e-8,
                loss_weight: NNUNET_DEEP_SUPERVISION_WEIGHT,
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

/// Whether the Dice sums are pooled over a mini-batch (nnU-Net `batch_dice`, MONAI `batch=True`)
/// when the loss is `preset`'s and nothing else is said, and why.
pub fn batch_dice(preset: Option<Preset>) -> (bool, &'static str) {
    match preset {
        Some(Preset::Nnunet) => (
            true,
            "nnunet preset: nnU-Net pools the Dice sums over the mini-batch (batch_dice) in its 3d_lowres \
             configuration and in 3d_fullres when the plan has a 3d_lowres one (large images); its 2d \
             configuration, and 3d_fullres of small images, do not",
        ),
        Some(Preset::Smp) => (true, "smp preset: segmentation_models_pytorch's DiceLoss sums over the whole batch"),
        _ => (false, "the default, as MONAI batch=False"),
    }
}
