//! `dicegrad analyze`: one case in, gradient report (table, JSON, pictures, gradient volume) out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use dicegrad::analysis::analyze;
use dicegrad::loss::{Activation, Dice, DiceOptions, GradientKernel, LossConfig};
use dicegrad::nifti_io::{write_f32, LoadOptions, OpenCase, WriteOptions};
use dicegrad::output::{check_output, write_bytes};
use dicegrad::plot::{write_histogram_png, write_histogram_svg};
use dicegrad::report::{json::to_json, table::to_table, Report};
use dicegrad::{Error, Result};

/// Files written into `--out`.
const OUT_FILES: [&str; 3] = ["report.json", "histogram.png", "histogram.svg"];

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Ground-truth label map (X,Y,Z), NIfTI-1 .nii or .nii.gz, integer labels.
    #[arg(long, value_name = "PATH")]
    labels: PathBuf,
    /// Prediction: (X,Y,Z) one foreground channel, or (X,Y,Z,C) / (X,Y,Z,1,C) one channel per label.
    #[arg(long, value_name = "PATH")]
    pred: PathBuf,
    /// Activation applied inside the loss: none = the file holds probabilities; sigmoid / softmax =
    /// the file holds logits and the gradient is with respect to them.
    #[arg(long, value_enum, default_value_t = Activation::None)]
    activation: Activation,
    /// Smoothing added to the numerator 2·Σs·g.
    #[arg(long, default_value_t = 1e-5, value_name = "F")]
    smooth_nr: f64,
    /// Smoothing added to the denominator Σs + Σg.
    #[arg(long, default_value_t = 1e-5, value_name = "F")]
    smooth_dr: f64,
    /// Leave channel 0 (background) out of the loss.
    #[arg(long)]
    no_background: bool,
    /// For a 3D prediction of one class of a multi-label map: the label value K of that class.
    #[arg(long, value_name = "K")]
    label: Option<i64>,
    /// Folder for report.json, histogram.png and histogram.svg (created if missing).
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
    let mut outs: Vec<PathBuf> = a
        .out
        .iter()
        .flat_map(|d| OUT_FILES.map(|f| d.join(f)))
        .collect();
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
        let name = g
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
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
    let options = DiceOptions {
        activation: a.activation,
        smooth_nr: a.smooth_nr,
        smooth_dr: a.smooth_dr,
        include_background: !a.no_background,
    };
    let load = LoadOptions {
        max_values: a.max_voxels,
        label: a.label,
        probabilities: a.activation == Activation::None,
    };
    let open = OpenCase::open(&a.labels, &a.pred, load)?;
    let config = LossConfig::new(options, open.channels)?;
    let case = open.read()?;
    let dice = Dice::compute(&case, config);
    let kernel = GradientKernel::new(&case, &dice);
    let stats = analyze(&kernel, &dice);
    let report = Report::build(&case, &dice, stats, a.label);

    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).map_err(|e| Error::Write {
            path: dir.clone(),
            source: e,
        })?;
        write_bytes(&dir.join(OUT_FILES[0]), a.force, &to_json(&report))?;
        write_histogram_png(&report, &dir.join(OUT_FILES[1]), a.force)?;
        write_histogram_svg(&report, &dir.join(OUT_FILES[2]), a.force)?;
    }
    if let Some(path) = &a.grad_out {
        let pred = &case.prediction;
        let opts = WriteOptions {
            compression: a.compression,
            force: a.force,
        };
        write_f32(
            path,
            &pred.geometry.header,
            &pred.geometry.info.dims,
            opts,
            |start, out| kernel.fill_file_order(start, out),
        )?;
    }
    if a.json {
        use std::io::Write;
        std::io::stdout()
            .write_all(&to_json(&report))
            .map_err(|e| Error::Write {
                path: "<stdout>".into(),
                source: e,
            })?;
    } else {
        print!("{}", to_table(&report));
    }
    for out in planned_outputs(&a) {
        eprintln!("wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
