//! The options of how each case is read and measured, shared by `analyze`, `batch` and `track`.

use clap::Args;

use dicegrad::analysis::precision::LossScale;
use dicegrad::loss::LossKind;
use dicegrad::pipeline::load::LoadOptions;
use dicegrad::report::summary::RunParameters;
use dicegrad::Result;

use super::loss_args::LossArgs;

#[derive(Args, Debug, Clone)]
pub struct CaseArgs {
    /// Loss scale S of the mixed-precision figures: the gradient × S is what a 16-bit cast meets
    /// (PyTorch GradScaler starts at 65536 = 2^16). A positive number; rounded to float32.
    #[arg(long, default_value_t = 65536.0, value_name = "S", allow_hyphen_values = true)]
    pub loss_scale: f64,
    /// Largest difference allowed between an entry of the labels' and the prediction's affines (mm).
    #[arg(long, default_value_t = 1e-3, value_name = "F", allow_hyphen_values = true)]
    pub affine_tol: f64,
    /// Apply the activation even when every value lies in [0, 1] (and, for softmax, channels sum to
    /// 1): refused otherwise, as probabilities activated a second time.
    #[arg(long)]
    pub force_activation: bool,
    /// Report a loss or gradient that is not finite (NaN, infinite) instead of refusing it.
    #[arg(long)]
    pub allow_non_finite: bool,
    /// Refuse files whose header claims more values (voxels × channels) than this.
    #[arg(long, default_value_t = 2_000_000_000, value_name = "N")]
    pub max_voxels: u64,
}

impl CaseArgs {
    /// The loss scale, checked.
    pub fn loss_scale(&self) -> Result<LossScale> {
        LossScale::new(self.loss_scale)
    }

    /// How each case is loaded.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions { max_values: self.max_voxels, affine_tol: self.affine_tol }
    }

    /// What a run over many cases computes: `loss` compared with `compare`, predictions named
    /// with `pred_suffix`, each case read and measured as these options say.
    pub fn run_parameters(
        &self,
        loss: &LossArgs,
        compare: Vec<LossKind>,
        pred_suffix: String,
    ) -> Result<RunParameters> {
        Ok(RunParameters {
            loss: loss.request(),
            compare,
            pred_suffix,
            affine_tol: self.affine_tol,
            max_values: self.max_voxels,
            force_activation: self.force_activation,
            allow_non_finite: self.allow_non_finite,
            loss_scale: self.loss_scale()?,
        })
    }
}
