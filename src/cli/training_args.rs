//! The flags of a training-regime analysis: patches in mini-batches, as nnU-Net samples them.

use clap::Args;

use dicegrad::error::Param;
use dicegrad::training::{Regime, RegimeRequest};
use dicegrad::{Error, Result};

#[derive(Args, Debug, Clone)]
pub struct TrainingArgs {
    /// Also analyse the loss as the network is trained: on patches of this size (voxels on the
    /// volume's axes X,Y,Z, e.g. 128,128,128) in mini-batches, sampled as nnU-Net samples them.
    #[arg(long, value_name = "X,Y,Z", value_delimiter = ',')]
    patch_size: Option<Vec<usize>>,
    /// Patches per mini-batch (with --patch-size; nnU-Net 3d_fullres: 2).
    #[arg(long, value_name = "B")]
    batch_size: Option<usize>,
    /// Mini-batches to draw (with --patch-size; default 250, one nnU-Net epoch).
    #[arg(long, value_name = "N")]
    patches: Option<usize>,
    /// Share of the patches of a mini-batch centred on a foreground voxel (nnU-Net's
    /// oversample_foreground_percent; the last B − round(B·(1 − F)) patches; default 0.33).
    #[arg(long, value_name = "F")]
    fg_oversample: Option<f64>,
    /// Seed of the patch sampling: the same seed gives the same patches and the same report.
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Pool the Dice sums over the mini-batch (nnU-Net batch_dice, MONAI batch=True); implied by
    /// --preset nnunet.
    #[arg(long, conflicts_with = "no_batch_dice")]
    batch_dice: bool,
    /// Dice per patch, averaged over the mini-batch, even with --preset nnunet.
    #[arg(long)]
    no_batch_dice: bool,
}

impl TrainingArgs {
    /// Whether a training regime is asked for.
    pub fn requested(&self) -> bool {
        self.patch_size.is_some()
    }

    /// The regime asked for, if any; its flags without --patch-size are refused.
    pub fn request(&self) -> Result<Option<RegimeRequest>> {
        let Some(p) = &self.patch_size else {
            let given = self.batch_size.is_some()
                || self.patches.is_some()
                || self.fg_oversample.is_some()
                || self.seed.is_some()
                || self.batch_dice
                || self.no_batch_dice;
            if given {
                return Err(Error::parameter(
                    Param::PATCH_SIZE,
                    "is needed by the training-regime options (--batch-size, --patches, --fg-oversample, --seed, \
                     --batch-dice, --no-batch-dice); give the patch size, e.g. --patch-size 128,128,128",
                ));
            }
            return Ok(None);
        };
        if p.len() != 3 {
            return Err(Error::parameter(
                Param::PATCH_SIZE,
                format!("takes three sizes X,Y,Z in voxels, e.g. 128,128,128; got {} value(s)", p.len()),
            ));
        }
        let batch_dice = match (self.batch_dice, self.no_batch_dice) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        Ok(Some(RegimeRequest {
            patch_size: [p[0], p[1], p[2]],
            batch_size: self.batch_size.unwrap_or(Regime::BATCH_SIZE),
            batches: self.patches.unwrap_or(Regime::BATCHES),
            fg_oversample: self.fg_oversample.unwrap_or(Regime::FG_OVERSAMPLE),
            seed: self.seed.unwrap_or(Regime::SEED),
            batch_dice,
        }))
    }
}
