//! `dicegrad analyze`: one case in, gradient report (table, JSON, pictures, gradient volume) out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use dicegrad::loss::preset::{LossRequest, Overrides};
use dicegrad::loss::{Activation, LossKind, Preset, WeightType};
use dicegrad::nifti_io::{write_f32, LoadOptions, OpenCase, WriteOptions};
use dicegrad::output::{check_output, write_bytes};
use dicegrad::pipeline::{analyze_case, Analysis};
use dicegrad::plot::{write, Picture, ReportPicture};
use dicegrad::report::{json::to_json, table::to_table};
use dicegrad::{Error, Result};

/// The report's file name in `--out`.
const REPORT: &str = "report.json";

/// The pictures written into `--out`, with their file names.
fn pictures(a: &AnalyzeArgs) -> Vec<(Picture, &'static str)> {
    let mut p = vec![(Picture::Histogram, "histogram.png"), (Picture::Histogram, "histogram.svg")];
    if !a.compare.is_empty() {
        p.extend([(Picture::Comparison, "compare.png"), (Picture::Comparison, "compare.svg")]);
    }
    p
}

/// The loss options shared by every command that computes a loss.
#[derive(Args, Debug, Clone)]
pub struct LossArgs {
    /// Loss family. Default: dice (or the preset's).
    #[arg(long, value_enum, value_name = "NAME")]
    loss: Option<LossKind>,
    /// Framework preset: the exact loss that framework trains with. Explicit options override it.
    #[arg(long, value_enum, value_name = "NAME")]
    preset: Option<Preset>,
    /// Activation applied inside the loss: none = the file holds probabilities; sigmoid / softmax =
    /// the file holds logits and the gradient is with respect to them. Default: none (or the preset's).
    #[arg(long, value_enum)]
    activation: Option<Activation>,
    /// Smoothing added to the numerator. Default: 1e-5 (or the preset's).
    #[arg(long, value_name = "F")]
    smooth_nr: Option<f64>,
    /// Smoothing added to the denominator. Default: 1e-5 (or the preset's).
    #[arg(long, value_name = "F")]
    smooth_dr: Option<f64>,
    /// Leave channel 0 (background) out of the Dice-type part of the loss.
    #[arg(long)]
    no_background: bool,
    /// One weight per channel 0..C−1 (MONAI `weight`, cross-entropy `weight`, mimic w_k).
    #[arg(long, value_name = "W0,W1,...", value_delimiter = ',', num_args = 1..)]
    class_weights: Option<Vec<f64>>,
    /// Generalized Dice class weights from the ground-truth volume G: square = 1/G², simple = 1/G,
    /// uniform = 1. Default: square.
    #[arg(long, value_enum)]
    w_type: Option<WeightType>,
    /// Tversky weight of false positives. Default: 0.5.
    #[arg(long, value_name = "F")]
    alpha: Option<f64>,
    /// Tversky weight of false negatives. Default: 0.5.
    #[arg(long, value_name = "F")]
    beta: Option<f64>,
    /// Weight of the Dice part of dice+ce. Default: 1.
    #[arg(long, value_name = "F")]
    lambda_dice: Option<f64>,
    /// Weight of the cross-entropy part of dice+ce. Default: 1.
    #[arg(long, value_name = "F")]
    lambda_ce: Option<f64>,
}

impl LossArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            kind: self.loss,
            activation: self.activation,
            smooth_nr: self.smooth_nr,
            smooth_dr: self.smooth_dr,
            no_background: self.no_background,
            class_weights: self.class_weights.clone(),
            w_type: self.w_type,
            alpha: self.alpha,
            beta: self.beta,
            lambda_dice: self.lambda_dice,
            lambda_ce: self.lambda_ce,
        }
    }

    /// The loss as requested (resolved per case).
    pub fn request(&self) -> LossRequest {
        LossRequest { preset: self.preset, overrides: self.overrides() }
    }
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Ground-truth label map (X,Y,Z), NIfTI-1 .nii or .nii.gz, integer labels.
    #[arg(long, value_name = "PATH")]
    labels: PathBuf,
    /// Prediction: (X,Y,Z) one foreground channel, or (X,Y,Z,C) / (X,Y,Z,1,C) one channel per label.
    #[arg(long, value_name = "PATH")]
    pred: PathBuf,
    #[command(flatten)]
    loss: LossArgs,
    /// Also compute these losses' gradients on the same case and compare them with the main one.
    #[arg(long, value_enum, value_name = "LOSS,...", value_delimiter = ',', num_args = 1..)]
    compare: Vec<LossKind>,
    /// For a 3D prediction of one class of a multi-label map: the label value K of that class.
    #[arg(long, value_name = "K")]
    label: Option<i64>,
    /// Folder for report.json, histogram.png and histogram.svg (and compare.png / .svg with
    /// --compare), created if missing.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write the gradient volume here (.nii or .nii.gz), float32, in the prediction's layout and geometry.
    #[arg(long, value_name = "PATH")]
    grad_out: Option<PathBuf>,
    /// Print the report as JSON on stdout (and nothing else there).
    #[arg(long)]
    json: bool,
    /// Overwrite existing outputs.
    #[arg(long)]
    force: bool,
    /// Refuse files whose header claims more values (voxels × channels) than this.
    #[arg(long, default_value_t = 2_000_000_000, value_name = "N")]
    max_voxels: u64,
    /// Worker threads (0 = one per core). Results do not depend on it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
    /// gzip level (0–9) of a .nii.gz gradient volume; 1 is fastest.
    #[arg(long, default_value_t = 1, value_name = "LEVEL", value_parser = clap::value_parser!(u32).range(0..=9))]
    compression: u32,
}

/// Every output this run will write.
fn planned_outputs(a: &AnalyzeArgs) -> Vec<PathBuf> {
    let mut outs: Vec<PathBuf> = Vec::new();
    if let Some(d) = &a.out {
        outs.push(d.join(REPORT));
        outs.extend(pictures(a).iter().map(|(_, f)| d.join(f)));
    }
    outs.extend(a.grad_out.iter().cloned());
    outs
}

fn check_outputs(a: &AnalyzeArgs) -> Result<()> {
    let inputs: [&Path; 2] = [&a.labels, &a.pred];
    if let Some(dir) = &a.out {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::usage(format!(
                "--out {}: exists and is not a folder; choose a folder path",
                dir.display()
            )));
        }
    }
    // --out is created once the analysis has succeeded; nothing in it can exist before.
    let new_out = a.out.as_ref().filter(|d| !d.exists());
    for out in planned_outputs(a) {
        if new_out.is_some_and(|d| out.parent() == Some(d.as_path())) {
            continue;
        }
        check_output(&out, &inputs, a.force)?;
    }
    if let Some(g) = &a.grad_out {
        let name = g.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
        if !(name.ends_with(".nii") || name.ends_with(".nii.gz")) {
            return Err(Error::usage(format!(
                "--grad-out {}: the gradient is written as NIfTI; give a path ending in .nii or .nii.gz",
                g.display()
            )));
        }
    }
    Ok(())
}

pub fn run(a: AnalyzeArgs) -> Result<ExitCode> {
    super::init_threads(a.threads)?;
    check_outputs(&a)?;
    let load = LoadOptions { max_values: a.max_voxels, label: a.label };
    let open = OpenCase::open(&a.labels, &a.pred, load)?;
    let config = a.loss.request().config(open.channels)?;
    let case = open.read(config.spec.activation == Activation::None)?;
    let Analysis { report, kernel, .. } = analyze_case(&case, &config, &a.compare, a.label)?;

    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).map_err(|e| Error::Write { path: dir.clone(), source: e })?;
        write_bytes(&dir.join(REPORT), a.force, &to_json(&report))?;
        for (picture, name) in pictures(&a) {
            write(&ReportPicture(&report, picture), &dir.join(name), a.force)?;
        }
    }
    if let Some(path) = &a.grad_out {
        let pred = &case.prediction;
        let opts = WriteOptions { compression: a.compression, force: a.force };
        write_f32(path, &pred.geometry.header, &pred.geometry.info.dims, opts, |start, out| {
            kernel.fill_file_order(start, out)
        })?;
    }
    if a.json {
        use std::io::Write;
        std::io::stdout()
            .write_all(&to_json(&report))
            .map_err(|e| Error::Write { path: "<stdout>".into(), source: e })?;
    } else {
        print!("{}", to_table(&report));
    }
    for out in planned_outputs(&a) {
        eprintln!("wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
