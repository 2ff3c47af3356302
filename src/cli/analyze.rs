//! `dicegrad analyze`: one case in, gradient report (table, JSON, pictures, gradient volume) out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use dicegrad::analysis::views::ViewRequest;
use dicegrad::error::Param;
use dicegrad::loss::{compared_kinds, LossKind};
use dicegrad::nifti::WriteOptions;
use dicegrad::output::{check_output, create_folder, resolved, write_bytes};
use dicegrad::pipeline::load::load;
use dicegrad::pipeline::{analyze, write_gradient, Request};
use dicegrad::plot::{draw_all, write, Picture, ReportPicture};
use dicegrad::report::html::case::{case_report, Provenance};
use dicegrad::report::json::to_json;
use dicegrad::report::table::{channels_csv, to_markdown, to_text};
use dicegrad::{Error, Result};

use super::case_args::CaseArgs;
use super::flags::Flags;
use super::loss_args::{names_of, LossArgs};
use super::terminal::{stdout_layout, Stages};
use super::training_args::TrainingArgs;
use super::{note, print_out};

/// The report's file name in `--out`.
const REPORT: &str = "report.json";
/// The report as a self-contained web page, in `--out`.
const REPORT_HTML: &str = "report.html";

/// The pictures written into `--out`, with their file names: the comparison only when there is a
/// loss to compare with (`--compare` naming only the main loss compares nothing).
fn pictures(a: &AnalyzeArgs) -> Vec<(Picture, &'static str)> {
    let mut p = vec![(Picture::Histogram, "histogram.png"), (Picture::Histogram, "histogram.svg")];
    if compared_kinds(a.loss.request().kind(), &a.compare).len() > 1 {
        p.extend([(Picture::Comparison, "compare.png"), (Picture::Comparison, "compare.svg")]);
    }
    if a.training.requested() {
        p.extend([(Picture::Training, "training.png"), (Picture::Training, "training.svg")]);
    }
    p.extend([
        (Picture::Slices, "slices.png"),
        (Picture::Slices, "slices.svg"),
        (Picture::Density, "density.png"),
        (Picture::Density, "density.svg"),
    ]);
    p
}

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Ground-truth label map (X,Y,Z), NIfTI-1 or NIfTI-2 .nii or .nii.gz, integer labels.
    #[arg(long, value_name = "PATH")]
    labels: PathBuf,
    /// Prediction: (X,Y,Z) one foreground channel, or (X,Y,Z,C) / (X,Y,Z,1,C) one channel per label
    /// (.nii, .nii.gz), or nnU-Net probabilities (.npz, geometry from the labels).
    #[arg(long, value_name = "PATH")]
    pred: PathBuf,
    #[command(flatten)]
    loss: LossArgs,
    #[command(flatten)]
    training: TrainingArgs,
    #[command(flatten)]
    case: CaseArgs,
    /// Also compute these losses' gradients on the same case and compare them with the main one.
    #[arg(long, value_name = "LOSS,...", value_delimiter = ',', num_args = 1.., value_parser = names_of::<LossKind>())]
    compare: Vec<LossKind>,
    /// For a 3D prediction of one class of a multi-label map: the label value K of that class.
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    label: Option<i64>,
    /// Folder for report.json, report.html (the whole report as one self-contained web page) and
    /// the pictures (PNG and SVG): slices (three planes per channel), histogram, density (gradient
    /// against probability), compare with --compare, training with --patch-size; created if missing.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The voxel the slices' planes pass through, as voxel indices (any of x, y, z; the others are
    /// each channel's foreground centroid).
    #[arg(long, value_name = "x=I,y=J,z=K", value_parser = parse_slice)]
    slice: Option<SlicePosition>,
    /// Write the gradient volume here (.nii or .nii.gz), float32, in the prediction's layout and geometry.
    #[arg(long, value_name = "PATH")]
    grad_out: Option<PathBuf>,
    /// Print the report as JSON on stdout (and nothing else there).
    #[arg(long)]
    json: bool,
    /// Also write the report's tables as Markdown into this file (every column).
    #[arg(long, value_name = "FILE")]
    export_markdown: Option<PathBuf>,
    /// Also write the per-channel table as CSV into this file (every column, every digit).
    #[arg(long, value_name = "FILE")]
    export_csv: Option<PathBuf>,
    /// Show every column of the table, however narrow the terminal (a file or pipe always gets all).
    #[arg(long)]
    wide: bool,
    /// No progress on stderr (shown only on a terminal, and only when the analysis takes over a
    /// second).
    #[arg(long)]
    quiet: bool,
    /// Overwrite existing outputs.
    #[arg(long)]
    force: bool,
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
        outs.push(d.join(REPORT_HTML));
    }
    outs.extend(a.grad_out.iter().cloned());
    outs.extend(a.export_markdown.iter().cloned());
    outs.extend(a.export_csv.iter().cloned());
    outs
}

fn check_outputs(a: &AnalyzeArgs) -> Result<()> {
    let inputs: [&Path; 2] = [&a.labels, &a.pred];
    for (param, path) in [(Param::LABELS, &a.labels), (Param::PRED, &a.pred)] {
        if let Some(e) = Error::input_path(param, path, false) {
            return Err(e);
        }
    }
    if let Some(dir) = &a.out {
        if dir.exists() && !dir.is_dir() {
            return Err(Error::parameter(
                Param::OUT,
                format!("{}: is a file, not a folder; give a folder", dir.display()),
            ));
        }
    }
    refuse_shared_outputs(a)?;
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

/// Refuses two outputs of this run at one path (`--export-csv` naming the `--grad-out` file, or a
/// file of `--out`, or `--out` itself): one would replace the other.
fn refuse_shared_outputs(a: &AnalyzeArgs) -> Result<()> {
    let mut named: Vec<(String, PathBuf)> = Vec::new();
    if let Some(d) = &a.out {
        named.push(("--out".to_string(), d.clone()));
        let files = pictures(a).into_iter().map(|(_, f)| f).chain([REPORT, REPORT_HTML]);
        named.extend(files.map(|f| (format!("--out ({f})"), d.join(f))));
    }
    for (flag, path) in
        [("--grad-out", &a.grad_out), ("--export-markdown", &a.export_markdown), ("--export-csv", &a.export_csv)]
    {
        if let Some(p) = path {
            named.push((flag.to_string(), p.clone()));
        }
    }
    let resolved: Vec<PathBuf> = named.iter().map(|(_, p)| resolved(p)).collect::<Result<_>>()?;
    for (i, (flag, path)) in named.iter().enumerate() {
        if let Some(j) = (0..i).find(|&j| resolved[j] == resolved[i]) {
            return Err(Error::usage(format!(
                "{flag} {}: is also the path of {}; give each output a path of its own",
                path.display(),
                named[j].0
            )));
        }
    }
    Ok(())
}

/// With `--force` into a folder of an earlier run: removes the pictures that run wrote and this
/// one does not (a `compare.png` of an earlier `--compare`), so that the folder holds one run.
fn remove_stale(dir: &Path, written: &[(Picture, &'static str)]) -> Result<()> {
    let all = [Picture::Histogram, Picture::Comparison, Picture::Training, Picture::Slices, Picture::Density];
    for p in all {
        for ext in ["png", "svg"] {
            let name = format!("{}.{ext}", p.stem());
            let path = dir.join(&name);
            if !written.iter().any(|(_, w)| *w == name) && path.is_file() {
                std::fs::remove_file(&path).map_err(|e| Error::Write { path: path.clone(), source: e })?;
                note!("removed {} (an earlier run's picture, not written by this one)", path.display());
            }
        }
    }
    Ok(())
}

/// Voxel indices along x, y, z, each optional.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlicePosition(pub [Option<usize>; 3]);

/// Parses `x=I,y=J,z=K` (any non-empty subset, each axis once).
fn parse_slice(text: &str) -> std::result::Result<SlicePosition, String> {
    let mut at = [None; 3];
    for part in text.split(',') {
        let (axis, value) = part.split_once('=').ok_or_else(|| {
            format!("'{part}' is not AXIS=INDEX; write the voxel as x=I,y=J,z=K (any of the three), e.g. z=40")
        })?;
        let a = match axis.trim() {
            "x" | "X" => 0,
            "y" | "Y" => 1,
            "z" | "Z" => 2,
            other => return Err(format!("'{other}' is not an axis; use x, y or z")),
        };
        if at[a].is_some() {
            return Err(format!("{} is given twice; give each axis once", axis.trim()));
        }
        let i = value.trim().parse::<usize>().map_err(|_| {
            format!("'{}' is not a voxel index; give a whole number from 0 (e.g. {}=40)", value.trim(), axis.trim())
        })?;
        at[a] = Some(i);
    }
    Ok(SlicePosition(at))
}

pub fn run(a: AnalyzeArgs) -> Result<ExitCode> {
    super::init_threads(a.threads)?;
    check_outputs(&a)?;
    if a.slice.is_some() && a.out.is_none() {
        return Err(Error::usage(
            "--slice places the planes of slices.png, which is written into --out; give --out DIR as well",
        ));
    }
    let loss_scale = a.case.loss_scale()?;
    let request = Request {
        loss: a.loss.request(),
        compare: a.compare.clone(),
        label: a.label,
        classes: a.case.classes(None)?,
        force_activation: a.case.force_activation,
        allow_non_finite: a.case.allow_non_finite,
        regime: a.training.request()?,
        loss_scale,
        views: a.out.as_ref().map(|_| ViewRequest { slice: a.slice.map_or([None; 3], |s| s.0) }),
    };
    let options = a.case.load_options();
    let stages = Stages::new(a.quiet);
    stages.stage("reading the files");
    let loaded = load(&a.labels, &a.pred, options, &request)?;
    stages.stage("computing the gradient and its figures");
    let result = analyze(&loaded.case, loaded.inputs, &request, &Flags)?;
    let report = result.report;

    if let Some(dir) = &a.out {
        create_folder(dir)?;
    }
    // the gradient first: by far the longest to write, it is the one an interruption meets
    if let Some(path) = &a.grad_out {
        stages.stage("writing the gradient volume");
        let opts = WriteOptions { compression: a.compression, force: a.force };
        write_gradient(path, &loaded.layout, &result.kernel, opts)?;
    }
    // the volume is no longer needed: the pictures are drawn from the report alone, within the
    // memory the volume held
    drop(result.kernel);
    drop(loaded.case);
    if let Some(dir) = &a.out {
        stages.stage("drawing the pictures and the report page");
        write_bytes(&dir.join(REPORT), a.force, &to_json(&report))?;
        let page = dir.join(REPORT_HTML);
        // each SVG drawn once: written as a file and embedded in the page
        let (figs, pngs) = draw_all(&report, dir)?;
        for (picture, name) in pictures(&a) {
            let path = dir.join(name);
            let svg =
                figs.iter().find(|f| name.ends_with(".svg") && f.name == picture.stem()).map(|f| f.svg.as_bytes());
            let png = pngs.iter().find(|(p, _)| name.ends_with(".png") && *p == picture).map(|(_, b)| &b[..]);
            match svg.or(png) {
                Some(bytes) => write_bytes(&path, a.force, bytes)?,
                None => write(&ReportPicture(&report, picture), &path, a.force)?,
            }
        }
        if a.force {
            remove_stale(dir, &pictures(&a))?;
        }
        let how = Provenance { command: super::command_line(), note: None, index: None };
        let html = case_report(&report, &figs, &how);
        write_bytes(&page, a.force, html.as_bytes())?;
    }
    if let Some(path) = &a.export_markdown {
        write_bytes(path, a.force, to_markdown(&report).as_bytes())?;
    }
    if let Some(path) = &a.export_csv {
        write_bytes(path, a.force, &channels_csv(&report))?;
    }
    stages.done();
    if a.json {
        print_out(&to_json(&report))?;
    } else {
        print_out(to_text(&report, &stdout_layout(a.wide)).as_bytes())?;
    }
    // in the order written
    for out in a.grad_out.iter().chain(planned_outputs(&a).iter().filter(|p| Some(*p) != a.grad_out.as_ref())) {
        note!("wrote {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
