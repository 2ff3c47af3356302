//! The options of how each case is read and measured, shared by `analyze`, `batch` and `track`.

use std::path::{Path, PathBuf};

use clap::Args;

use dicegrad::analysis::precision::LossScale;
use dicegrad::case::labels::ClassSpec;
use dicegrad::loss::LossKind;
use dicegrad::pipeline::load::LoadOptions;
use dicegrad::report::summary::RunParameters;
use dicegrad::Result;

use super::note;

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
    /// nnU-Net v2 dataset.json of the data set: the class names (shown wherever a channel is
    /// named), its ignore label and its regions. batch and track find DatasetXXX/dataset.json
    /// beside the labels folder (labelsTr) by themselves.
    #[arg(long, value_name = "PATH")]
    pub dataset_json: Option<PathBuf>,
    /// Do not use a dataset.json found beside the labels folder.
    #[arg(long, conflicts_with = "dataset_json")]
    pub no_dataset_json: bool,
    /// Label value whose voxels take no part in the loss or the statistics and get gradient 0
    /// (nnU-Net's "ignore" label, torch's ignore_index); overrides dataset.json's.
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    pub ignore_label: Option<i64>,
    /// Region-based prediction (sigmoid, overlapping channels, as BraTS): one region per channel,
    /// label values joined by '+', e.g. 1+2+3,2+3,3; overrides dataset.json's.
    #[arg(long, value_name = "L+L,...", value_parser = parse_regions)]
    pub regions: Option<Regions>,
}

/// Regions as given: per channel, its label values.
#[derive(Clone, Debug, PartialEq)]
pub struct Regions(pub Vec<Vec<i64>>);

/// Parses `1+2+3,2+3,3`.
fn parse_regions(text: &str) -> std::result::Result<Regions, String> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let values: std::result::Result<Vec<i64>, String> = part
            .split('+')
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    format!(
                        "'{}' is not a label value; write each region as label values joined by '+', e.g. 1+2+3,2+3,3",
                        v.trim()
                    )
                })
            })
            .collect();
        out.push(values?);
    }
    Ok(Regions(out))
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

    /// What the label values mean beyond one class each: `--dataset-json` (or, for a folder of
    /// labels `labels_dir`, the dataset.json nnU-Net keeps above it, said on stderr), with
    /// `--ignore-label` and `--regions` over it.
    pub fn classes(&self, labels_dir: Option<&Path>) -> Result<ClassSpec> {
        let mut spec = match (&self.dataset_json, labels_dir) {
            (Some(p), _) => dicegrad::dataset::read(p)?,
            (None, Some(dir)) if !self.no_dataset_json => match dicegrad::dataset::beside(dir) {
                // found, not given: a file of another format (MSD's dataset.json) is left out
                Some(p) => match dicegrad::dataset::read(&p) {
                    Ok(spec) => {
                        note!("using {} ({}); --no-dataset-json leaves it out", p.display(), what_it_gives(&spec));
                        ClassSpec { found_beside: true, ..spec }
                    }
                    Err(e) => {
                        note!(
                            "note: {} is not read ({}); pass it with --dataset-json once it is an nnU-Net v2 dataset.json",
                            p.display(),
                            super::message(&e)
                        );
                        ClassSpec::default()
                    }
                },
                None => ClassSpec::default(),
            },
            _ => ClassSpec::default(),
        };
        if let Some(k) = self.ignore_label {
            spec.ignore_label = Some(k);
        }
        if let Some(Regions(r)) = &self.regions {
            // regions given here replace the file's, and with them its names and order
            if spec.regions.as_ref() != Some(r) {
                spec.names = None;
                spec.regions_class_order = None;
            }
            spec.regions = Some(r.clone());
        }
        Ok(spec)
    }

    /// What a run over many cases computes: `loss` compared with `compare`, predictions named
    /// with `pred_suffix`, each case read and measured as these options say.
    pub fn run_parameters(
        &self,
        loss: &LossArgs,
        compare: Vec<LossKind>,
        pred_suffix: String,
        labels_dir: Option<&Path>,
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
            classes: self.classes(labels_dir)?,
        })
    }
}

/// What a dataset.json gives, in a few words: `class names, ignore label 3`.
fn what_it_gives(spec: &ClassSpec) -> String {
    let mut parts = Vec::new();
    if spec.regions.is_some() {
        parts.push("regions".to_string());
    } else if spec.names.is_some() {
        parts.push("class names".to_string());
    }
    if let Some(k) = spec.ignore_label {
        parts.push(format!("ignore label {k}"));
    }
    parts.join(", ")
}
