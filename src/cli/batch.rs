//! `dicegrad batch` and `dicegrad merge`: whole data sets, on one machine or in shards.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use dicegrad::batch::merge::merge;
use dicegrad::batch::pairing::Shard;
use dicegrad::batch::run::{run, BatchOptions};
use dicegrad::loss::LossKind;
use dicegrad::report::summary::Summary;
use dicegrad::Result;

use super::case_args::CaseArgs;
use super::flags::Flags;
use super::loss_args::{names_of, LossArgs};
use super::note;
use super::print_out;
use super::terminal::{stdout_layout, Counter};
use dicegrad::report::layout::render;
use dicegrad::report::summary_table::summary_blocks;

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// Folder of ground-truth label maps (CASE.nii.gz or CASE.nii).
    #[arg(long, value_name = "DIR")]
    labels_dir: PathBuf,
    /// Folder of predictions: CASE.nii.gz / CASE.nii, nnU-Net CASE.npz probabilities, or MONAI
    /// CASE/CASE{SUFFIX}.nii.gz (see --pred-suffix).
    #[arg(long, value_name = "DIR")]
    pred_dir: PathBuf,
    /// Output folder: run.json, cases.jsonl, cases.csv, summary.json, histogram/levels pictures,
    /// index.html (the data set as one self-contained web page).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    loss: LossArgs,
    #[command(flatten)]
    case: CaseArgs,
    /// Also compute these losses' gradients and compare them with the main one (per case).
    #[arg(long, value_name = "LOSS,...", value_delimiter = ',', num_args = 1.., value_parser = names_of::<LossKind>())]
    compare: Vec<LossKind>,
    /// Text after the case id in prediction file names (e.g. _seg for MONAI's CASE/CASE_seg.nii.gz).
    #[arg(long, default_value = "", value_name = "TEXT")]
    pred_suffix: String,
    /// Cases analysed at once (0 = one per core). Results do not depend on it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    jobs: usize,
    /// Continue the run recorded in --out, skipping its complete cases.
    #[arg(long)]
    resume: bool,
    /// Start over in an --out folder that holds a run.
    #[arg(long)]
    force: bool,
    /// Analyse only the cases whose index in the sorted case list is K modulo N (0 ≤ K < N).
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// No progress bar (shown only when stderr is a terminal).
    #[arg(long)]
    quiet: bool,
    /// Print summary.json on stdout at the end (and nothing else there), instead of the table of
    /// means per channel.
    #[arg(long)]
    json: bool,
    /// Show every column of the end-of-run table, however narrow the terminal.
    #[arg(long)]
    wide: bool,
    /// Write every case's gradient volume here as CASE.nii.gz.
    #[arg(long, value_name = "DIR")]
    grad_out_dir: Option<PathBuf>,
    /// Also write each successful case's own report.html into --out, as cases/CASE/report.html
    /// (characters other than letters, digits, '-', '_' and '.' in CASE written %XX), linked
    /// from index.html. A resumed run must be given the same choice (it is refused otherwise); merge
    /// copies the shards' reports.
    #[arg(long)]
    case_reports: bool,
    /// gzip level (0–9) of the gradient volumes.
    #[arg(long, default_value_t = 1, value_name = "LEVEL", value_parser = clap::value_parser!(u32).range(0..=9))]
    compression: u32,
    /// Worker threads inside a case (0 = one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Folder for the merged outputs (index.html included, and the case reports when the shards
    /// wrote them).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Overwrite outputs already in --out.
    #[arg(long)]
    force: bool,
    /// Print summary.json on stdout at the end (and nothing else there), instead of the table.
    #[arg(long)]
    json: bool,
    /// Show every column of the end-of-run table, however narrow the terminal.
    #[arg(long)]
    wide: bool,
    /// The --out folders of the shards.
    #[arg(required = true, value_name = "SHARD_OUT_DIR")]
    shards: Vec<PathBuf>,
}

/// Prints the summary on stdout (the table of means per channel, or with `json` summary.json),
/// then what it says about failures and unpaired files on stderr; the exit code.
fn finish(summary: &Summary, out: &std::path::Path, json: bool, wide: bool) -> Result<ExitCode> {
    if json {
        print_out(&summary.to_json())?;
    } else {
        print_out(render(&summary_blocks(summary), &stdout_layout(wide)).as_bytes())?;
    }
    for f in &summary.failed {
        note!("failed: {}: {}", f.case, f.error);
    }
    for l in &summary.unpaired.labels {
        note!("unpaired label file (no prediction found): {l}");
    }
    for p in &summary.unpaired.predictions {
        note!("unpaired prediction file (no label file): {p}");
    }
    for s in &summary.unpaired.skipped {
        note!("skipped {}: {}", s.file, s.reason);
    }
    note!(
        "{} cases: {} ok, {} failed; results in {}",
        summary.cases.total,
        summary.cases.ok,
        summary.cases.failed,
        out.display()
    );
    Ok(if summary.cases.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

impl BatchArgs {
    /// The output folder.
    pub fn out(&self) -> &std::path::Path {
        &self.out
    }
}

pub fn run_batch(a: BatchArgs) -> Result<ExitCode> {
    super::init_threads(a.threads)?;
    let jobs = super::workers(a.jobs, "--jobs");
    let params = a.case.run_parameters(&a.loss, a.compare, a.pred_suffix, Some(&a.labels_dir))?;
    let opts = BatchOptions {
        labels_dir: a.labels_dir,
        pred_dir: a.pred_dir,
        out: a.out.clone(),
        params,
        shard: a.shard,
        jobs,
        resume: a.resume,
        force: a.force,
        grad_out_dir: a.grad_out_dir,
        compression: a.compression,
        case_reports: a.case_reports,
        command: super::command_line(),
    };
    let bar = Counter::new("cases", a.quiet);
    let mut progress = |done: usize, total: usize, failed: usize| {
        bar.update(done, total, if failed > 0 { format!("{failed} failed") } else { String::new() });
    };
    let outcome = run(&opts, &Flags, &mut progress);
    bar.done();
    let outcome = outcome?;
    finish(&outcome.summary, &a.out, a.json, a.wide)
}

pub fn run_merge(a: MergeArgs) -> Result<ExitCode> {
    let summary = merge(&a.out, &a.shards, a.force)?;
    finish(&summary, &a.out, a.json, a.wide)
}
