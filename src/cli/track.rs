//! `dicegrad track`: the predictions of successive checkpoints, analysed step by step, and the
//! series of their figures.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args};

use dicegrad::loss::LossKind;
use dicegrad::track::{track, Predictions, TrackOptions};
use dicegrad::{Error, Result};

use super::case_args::CaseArgs;
use super::flags::Flags;
use super::loss_args::{names_of, LossArgs};
use super::note;
use super::terminal::Counter;

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("predictions").required(true).args(["pred", "pred_dirs"])))]
pub struct TrackArgs {
    /// Ground-truth label map of the case (with --pred).
    #[arg(long, value_name = "PATH", requires = "pred", conflicts_with = "labels_dir")]
    labels: Option<PathBuf>,
    /// The prediction of each checkpoint (files like analyze's --pred), one per step; the step is
    /// the first number in each name (epoch_050.nii.gz: 50; fold_0_ep10: 10, the number that
    /// tells the names apart) unless --steps says.
    #[arg(long, value_name = "PATH", num_args = 1.., requires = "labels")]
    pred: Vec<PathBuf>,
    /// Folder of ground-truth label maps (with --pred-dirs).
    #[arg(long, value_name = "DIR", requires = "pred_dirs")]
    labels_dir: Option<PathBuf>,
    /// One folder of predictions per checkpoint, each paired with --labels-dir as batch pairs them
    /// and pooled over its cases; the step is the first number in each folder's name unless
    /// --steps says.
    #[arg(long, value_name = "DIR", num_args = 1.., requires = "labels_dir", conflicts_with_all = ["pred", "label"])]
    pred_dirs: Vec<PathBuf>,
    /// The step (epoch, iteration) of each prediction, in the order given.
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    steps: Option<Vec<u64>>,
    /// Output folder: track.json, steps.jsonl or steps/ (the records), series.csv, series.json,
    /// series.png/.svg, track.html.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    loss: LossArgs,
    #[command(flatten)]
    case: CaseArgs,
    /// Also compute these losses' gradients and compare them with the main one (at every step).
    #[arg(long, value_name = "LOSS,...", value_delimiter = ',', num_args = 1.., value_parser = names_of::<LossKind>())]
    compare: Vec<LossKind>,
    /// For 3D predictions of one class of a multi-label map: the label value K of that class.
    #[arg(long, value_name = "K", allow_negative_numbers = true)]
    label: Option<i64>,
    /// Text after the case id in prediction file names (with --pred-dirs).
    #[arg(long, default_value = "", value_name = "TEXT")]
    pred_suffix: String,
    /// Steps (with --pred) or cases of a step (with --pred-dirs) analysed at once (0 = one per
    /// core). Results do not depend on it.
    #[arg(long, default_value_t = 0, value_name = "N")]
    jobs: usize,
    /// Continue the track recorded in --out, skipping its finished steps.
    #[arg(long)]
    resume: bool,
    /// Start over in an --out folder that holds a track.
    #[arg(long)]
    force: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Worker threads inside a step (0 = one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    threads: usize,
}

impl TrackArgs {
    /// The output folder.
    pub fn out(&self) -> &std::path::Path {
        &self.out
    }
}

pub fn run(a: TrackArgs) -> Result<ExitCode> {
    super::init_threads(a.threads)?;
    let jobs = super::workers(a.jobs, "--jobs");
    let predictions =
        match (&a.labels, &a.labels_dir) {
            (Some(_), _) if a.pred.is_empty() => {
                return Err(Error::usage(
                    "--labels (one label file) goes with --pred (one prediction file per step); for folders of cases \
                 give --labels-dir with --pred-dirs",
                ))
            }
            (Some(labels), _) => Predictions::Files { labels: labels.clone(), preds: a.pred.clone(), label: a.label },
            (None, Some(_)) if a.pred_dirs.is_empty() => return Err(Error::usage(
                "--labels-dir (a folder of label files) goes with --pred-dirs (one folder of predictions per step); \
                 for one case give --labels with --pred",
            )),
            (None, Some(dir)) => Predictions::Folders { labels_dir: dir.clone(), pred_dirs: a.pred_dirs.clone() },
            (None, None) => return Err(Error::usage("give --labels with --pred, or --labels-dir with --pred-dirs")),
        };
    if matches!(predictions, Predictions::Files { .. }) && !a.pred_suffix.is_empty() {
        return Err(Error::usage("--pred-suffix names files in prediction folders: use it with --pred-dirs"));
    }
    let opts = TrackOptions {
        predictions,
        steps: a.steps,
        out: a.out.clone(),
        // a dataset.json lies beside the labels folder: that of a label file too
        params: a.case.run_parameters(
            &a.loss,
            a.compare,
            a.pred_suffix,
            a.labels_dir.as_deref().or(a.labels.as_deref().and_then(|l| l.parent())),
        )?,
        jobs,
        resume: a.resume,
        force: a.force,
        command: super::command_line(),
    };
    let bar = Counter::new("steps", a.quiet);
    let mut progress = |p: dicegrad::track::run::Progress| {
        let cases = p.cases.map_or(String::new(), |(d, n)| format!("step {}: {d}/{n} cases", p.step));
        bar.update(p.steps_done, p.steps, cases);
    };
    let folders = matches!(opts.predictions, Predictions::Folders { .. });
    let outcome = track(&opts, &Flags, &mut progress);
    bar.done();
    let outcome = outcome?;
    let series = &outcome.series;
    if !outcome.redone.is_empty() {
        let steps: Vec<String> = outcome.redone.iter().map(u64::to_string).collect();
        note!("analysed again (its file changed since, or its analysis had failed): step {}", steps.join(", "));
    }
    let failed_steps = series.steps.iter().filter(|s| !s.is_ok()).count();
    let failed_cases: usize = series.steps.iter().map(|s| s.cases.failed).sum();
    for s in &series.steps {
        for e in &s.errors {
            note!("failed: step {} ({}): {e}", s.step, s.source);
        }
        if !s.missing.is_empty() {
            note!(
                "step {} ({}): {} label file{} without a prediction, left out of the step: {}",
                s.step,
                s.source,
                s.missing.len(),
                if s.missing.len() == 1 { "" } else { "s" },
                s.missing.join(", ")
            );
        }
    }
    let partial = series.steps.iter().filter(|s| s.status == "partial").count();
    let cases = match failed_cases {
        0 => String::new(),
        _ if !folders => String::new(),
        1 => "; 1 case failed".to_string(),
        n => format!("; {n} cases failed"),
    };
    let cases = match partial {
        0 => cases,
        n => format!("{cases}; {n} over fewer cases than their folder's labels"),
    };
    note!(
        "{} steps: {} ok, {failed_steps} failed{cases}; results in {}",
        series.steps.len(),
        series.steps.len() - failed_steps - partial,
        a.out.display()
    );
    Ok(if failed_cases > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
