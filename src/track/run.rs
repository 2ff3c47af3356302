//! Running a track: every check that needs no voxel first (options, steps, inputs, the cases of
//! each folder, what `out` holds); then the first case, before anything is written, so that an
//! error of the track's configuration leaves an earlier track as it was; then the steps in step
//! order ([`super::files`], [`super::folders`]), and the series and its outputs.

use std::path::{Path, PathBuf};

use super::files::{file_step, run_files, Start};
use super::folders::{pairings, probe, run_folders};
use super::outputs::{self, Fingerprint, MetaStep, TrackMeta};
use super::steps::{name_steps, Step};
use crate::batch::folders;
use crate::error::{set, Error, Naming, Param, Result};
use crate::msg;
use crate::output::{remove_stale, resolved, FolderLock, LOCK_FILE};
use crate::pipeline::load::LoadOptions;
use crate::report::record::CaseRecord;
use crate::report::series::{Series, StepRecord};
use crate::report::summary::{ResolvedLosses, RunParameters};

/// The predictions of a track.
#[derive(Clone, Debug)]
pub enum Predictions {
    /// One prediction file per step, against one label file (`label`: the label value K of a
    /// single-channel prediction of one class).
    Files { labels: PathBuf, preds: Vec<PathBuf>, label: Option<i64> },
    /// One folder of predictions per step, each paired with the label folder as `batch` pairs.
    Folders { labels_dir: PathBuf, pred_dirs: Vec<PathBuf> },
}

/// How to run a track.
#[derive(Clone, Debug)]
pub struct TrackOptions {
    pub predictions: Predictions,
    /// The step of each prediction, in the order given (None: read from their names).
    pub steps: Option<Vec<u64>>,
    pub out: PathBuf,
    pub params: RunParameters,
    /// Steps (files) or cases (folders) analysed at once.
    pub jobs: usize,
    /// Continue the track recorded in `out`.
    pub resume: bool,
    /// Start over in an `out` that holds a track.
    pub force: bool,
    /// The command line that started the track, for its page.
    pub command: String,
}

/// What a finished track did.
pub struct Outcome {
    pub series: Series,
    /// Steps analysed by this invocation (not skipped when resuming).
    pub analysed: usize,
    /// Steps of the track continued whose prediction file changed since it was analysed (and
    /// was analysed again), or whose analysis had failed (and was tried again).
    pub redone: Vec<u64>,
}

/// Progress of a track: steps done of all, the step at hand, and within a folder step its cases
/// done of all.
pub struct Progress {
    pub steps_done: usize,
    pub steps: usize,
    pub step: u64,
    pub cases: Option<(usize, usize)>,
}

pub(super) fn write_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Write { path: path.to_path_buf(), source: e }
}

/// The kind of a track's steps, as `track.json` names it.
fn kind(opts: &TrackOptions) -> &'static str {
    match opts.predictions {
        Predictions::Files { .. } => "files",
        Predictions::Folders { .. } => "folders",
    }
}

/// The steps, checked inputs and `track.json` of a track, before anything is written.
fn prepare(opts: &TrackOptions) -> Result<(Vec<Step>, TrackMeta)> {
    let load_options = LoadOptions { max_values: opts.params.max_values, affine_tol: opts.params.affine_tol };
    load_options.check()?;
    opts.params.loss.check_applies(&opts.params.compare)?;
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(Error::parameter(
            Param::OUT,
            format!("{}: is a file, not a folder; give a folder", opts.out.display()),
        ));
    }
    let files = kind(opts) == "files";
    let (labels, label, sources, param) = match &opts.predictions {
        Predictions::Files { labels, preds, label } => (labels, *label, preds, Param::PRED),
        Predictions::Folders { labels_dir, pred_dirs } => (labels_dir, None, pred_dirs, Param::PRED_DIRS),
    };
    // a missing path, or a folder among files (or a file among folders), is said before its name is
    // read for a step
    if let Some(wrong) = sources.iter().find(|p| !p.exists() || p.is_dir() == files) {
        return Err(not_found(wrong, param, files));
    }
    let steps = name_steps(sources, opts.steps.as_deref(), param)?;
    let out = resolved(&opts.out)?;
    let mut inputs = vec![(labels.clone(), if files { Param::LABELS } else { Param::LABELS_DIR })];
    inputs.extend(steps.iter().map(|s| (s.source.clone(), param)));
    let mut found = Vec::new();
    for (path, p) in &inputs {
        if (files && !path.is_file()) || (!files && !path.is_dir()) {
            return Err(not_found(path, *p, files));
        }
        let real = resolved(path)?;
        if files && real.starts_with(&out) {
            return Err(Error::parameter(
                Param::OUT,
                msg![
                    format!("{} holds the input file {} (", opts.out.display(), path.display()),
                    *p,
                    "); a run never writes among its inputs: choose another folder",
                ],
            ));
        }
        found.push((real, path.as_path(), *p));
    }
    if !files {
        folders::check_output(&opts.out, Param::OUT, &found)?;
    }
    let meta = TrackMeta {
        tool: crate::report::Tool::this().version.to_string(),
        kind: kind(opts).to_string(),
        labels: found[0].0.clone(),
        label,
        steps: steps
            .iter()
            .zip(&found[1..])
            .map(|(s, f)| MetaStep {
                step: s.step,
                source: f.0.clone(),
                given: s.source.display().to_string(),
                file: files.then(|| Fingerprint::of(&s.source)).flatten(),
            })
            .collect(),
        parameters: opts.params.clone(),
    };
    Ok((steps, meta))
}

/// The error for an input that is missing or of the wrong kind (a folder given as a file).
fn not_found(path: &Path, p: Param, files: bool) -> Error {
    let m = match (path.exists(), files, path.is_dir()) {
        (false, _, _) => return Error::input_path(p, path, !files).expect("a missing path"),
        (true, true, true) if p == Param::PRED => msg![
            format!("{}: is a folder; give folders of predictions (one per step) with ", path.display()),
            Param::PRED_DIRS,
            " and the label folder with ",
            Param::LABELS_DIR,
        ],
        (true, true, _) => msg![format!("{}: is a folder, not a file; give a file", path.display())],
        (true, false, _) => msg![
            format!("{}: is a file, not a folder; give prediction files (one per step) with ", path.display()),
            Param::PRED,
            " and the label file with ",
            Param::LABELS,
        ],
    };
    Error::parameter(p, m)
}

/// What a track does in its folder, decided before anything is written there.
enum Plan {
    /// Start a track in a folder that holds none.
    Fresh,
    /// Continue the track the folder holds (its `track.json`).
    Resume(Box<TrackMeta>),
    /// Replace the track the folder holds (`force`).
    Replace,
}

/// Decides what the track does in `out` (locked, stale temporary files removed), or refuses: a
/// batch folder; a track there without `resume` or `force`; a track to continue whose inputs or
/// options differ; a folder `steps/` that is not a track's.
fn plan(opts: &TrackOptions, meta: &TrackMeta) -> Result<Plan> {
    remove_stale(&opts.out);
    let force_hint = |what: &str| {
        Error::usage(msg![
            format!("{}: {what}; choose another folder, or pass ", opts.out.display()),
            set(Param::FORCE, true),
            " to replace it",
        ])
    };
    let previous = match outputs::read_meta(&opts.out) {
        Ok(p) => p,
        Err(_) if opts.force => return Ok(Plan::Replace),
        Err(e) => {
            let mut m = e.message();
            m.extend(msg!["; pass ", set(Param::FORCE, true), " to replace what the folder holds"]);
            return Err(Error::usage(m));
        }
    };
    match (previous, opts.resume, opts.force) {
        (Some(prev), true, _) => {
            let differ = prev.differences(meta);
            if !differ.is_empty() {
                return Err(Error::usage(msg![
                    Param::RESUME,
                    format!(
                        ": {} holds a track whose {} differ; use the same inputs and options as that track, or ",
                        opts.out.display(),
                        differ.join(", ")
                    ),
                    set(Param::FORCE, true),
                    " to start over",
                ]));
            }
            Ok(Plan::Resume(Box::new(prev)))
        }
        (Some(_), false, false) => Err(Error::usage(msg![
            format!("{} already holds a track; pass ", opts.out.display()),
            set(Param::RESUME, true),
            " to continue it or ",
            set(Param::FORCE, true),
            " to start over",
        ])),
        (Some(_), false, true) => Ok(Plan::Replace),
        (None, _, _) => {
            if opts.out.join(crate::batch::outputs::RUN).exists() {
                return Err(Error::parameter(
                    Param::OUT,
                    format!(
                        "{}: holds a batch run (run.json); a track needs a folder of its own: choose another folder",
                        opts.out.display()
                    ),
                ));
            }
            if opts.out.join(outputs::STEPS_DIR).exists() && kind(opts) == "folders" {
                return Err(Error::parameter(
                    Param::OUT,
                    format!(
                        "{}: holds a folder steps/ that no track here wrote; choose another folder",
                        opts.out.display()
                    ),
                ));
            }
            if outputs::own_files(&opts.out).iter().any(|p| p.exists()) && !opts.force {
                return Err(force_hint("holds files a track writes (series.json, …) but no track.json"));
            }
            Ok(Plan::Fresh)
        }
    }
}

/// Runs a track. `progress` is called after each step (and each case of a folder step); the
/// messages of failed steps and cases name parameters as `naming` does.
pub fn track(opts: &TrackOptions, naming: &(dyn Naming + Sync), progress: &mut dyn FnMut(Progress)) -> Result<Outcome> {
    let (steps, meta) = prepare(opts)?;
    let pairs = match &opts.predictions {
        Predictions::Folders { labels_dir, .. } => pairings(labels_dir, &steps, &opts.params.pred_suffix)?,
        Predictions::Files { .. } => Vec::new(),
    };
    let created = !opts.out.exists();
    std::fs::create_dir_all(&opts.out).map_err(write_error(&opts.out))?;
    let abandon = || {
        if created {
            let _ = std::fs::remove_file(opts.out.join(LOCK_FILE));
            let _ = std::fs::remove_dir(&opts.out);
        }
    };
    let lock = FolderLock::acquire(&opts.out).inspect_err(|_| abandon())?;
    let plan = match plan(opts, &meta) {
        Ok(p) => p,
        Err(e) => {
            drop(lock);
            abandon();
            return Err(e);
        }
    };
    // the first case, before anything is written
    let mut start = Start { kept: Vec::new(), head: None, recorded_before: false };
    let mut redone = Vec::new();
    match (&plan, &opts.predictions) {
        (Plan::Resume(prev), Predictions::Files { .. }) => {
            let records = outputs::read_step_records(&opts.out)?;
            (start.kept, redone) = still_valid(records, prev, &meta);
            start.recorded_before = true;
        }
        (Plan::Resume(_), Predictions::Folders { .. }) => start.recorded_before = true,
        (_, Predictions::Files { labels, label, .. }) => {
            let first = &steps[0];
            let r = file_step(labels, first, &opts.params, *label, naming)
                .and_then(|r| replaceable(r, matches!(plan, Plan::Replace), &opts.out));
            match r {
                Ok(r) => start.head = Some(r),
                Err(e) => {
                    drop(lock);
                    abandon();
                    return Err(stopped(e, first, None, &opts.out));
                }
            }
        }
        (_, Predictions::Folders { .. }) => {
            let r =
                probe(opts, &pairs[0], naming).and_then(|r| replaceable(r, matches!(plan, Plan::Replace), &opts.out));
            if let Err(e) = r {
                drop(lock);
                abandon();
                return Err(stopped(e, &steps[0], None, &opts.out));
            }
        }
    }
    match plan {
        Plan::Replace => outputs::remove_outputs(&opts.out)?,
        Plan::Fresh => outputs::remove_own_files(&opts.out)?,
        Plan::Resume(_) => {}
    }
    outputs::write_meta(&opts.out, &meta)?;
    let ran = match &opts.predictions {
        Predictions::Files { labels, label, .. } => run_files(opts, start, labels, *label, &steps, naming, progress)
            .map(|(records, analysed)| {
                let all: Vec<CaseRecord> = records.iter().map(|(_, r)| r.clone()).collect();
                let steps = records
                    .iter()
                    .map(|(s, r)| StepRecord::of_file(s.step, &s.source.display().to_string(), r))
                    .collect();
                (steps, opts.params.resolved(&all), analysed)
            }),
        Predictions::Folders { labels_dir, .. } => {
            run_folders(opts, start.recorded_before, labels_dir, &steps, naming, progress)
        }
    };
    let (records, resolved, analysed) = match ran {
        Ok(ran) => ran,
        Err(Halt::Other(e)) => return Err(e),
        Err(Halt::Step { error, step, kept }) => return Err(stopped(*error, step, kept, &opts.out)),
    };
    let labels = match &opts.predictions {
        Predictions::Files { labels, .. } => labels,
        Predictions::Folders { labels_dir, .. } => labels_dir,
    };
    let series = Series::build(&opts.params, resolved, labels.display().to_string(), meta.label, records);
    outputs::finalize(&opts.out, &series, &opts.command)?;
    Ok(Outcome { series, analysed, redone })
}

/// The record of the first case when it may replace an earlier track (`replacing`): a first case
/// that fails (logits without their activation, a label file of another case) stops a forced
/// track before the earlier one is removed.
fn replaceable(r: CaseRecord, replacing: bool, out: &Path) -> Result<CaseRecord> {
    match (&r.error, replacing) {
        (Some(e), true) => Err(Error::usage(format!(
            "{e}; the earlier track in {} is left as it was: check the inputs and options",
            out.display()
        ))),
        _ => Ok(r),
    }
}

/// The records of a track being continued that still hold: those of steps whose prediction file
/// is unchanged since (size and modification time, as `track.json` kept them) and whose analysis
/// succeeded; and the steps whose record is dropped, to be analysed again.
fn still_valid(records: Vec<CaseRecord>, prev: &TrackMeta, now: &TrackMeta) -> (Vec<CaseRecord>, Vec<u64>) {
    let mut dropped = Vec::new();
    let kept = records
        .into_iter()
        .filter(|r| {
            let step = r.case.parse::<u64>().ok();
            let same = |m: &TrackMeta| m.steps.iter().find(|s| Some(s.step) == step).and_then(|s| s.file.clone());
            let holds = r.is_ok() && same(prev).is_some() && same(prev) == same(now);
            if !holds {
                dropped.extend(step);
            }
            holds
        })
        .collect();
    (kept, dropped)
}

/// Why the steps stopped: an error at a step that stops the whole track (probabilities the loss
/// would activate again), with the finished steps kept (None: nothing of the track was recorded);
/// or another error (an output that cannot be written).
pub enum Halt<'s> {
    Step { error: Box<Error>, step: &'s Step, kept: Option<usize> },
    Other(Error),
}

impl From<Error> for Halt<'_> {
    fn from(e: Error) -> Self {
        Halt::Other(e)
    }
}

/// The steps run: their records, the losses as resolved, and how many steps this invocation ran.
pub type Ran = (Vec<StepRecord>, Vec<ResolvedLosses>, usize);

/// The error that stopped a track at step `step`, with `kept` finished steps in `out` (None: the
/// track stopped before it wrote anything).
fn stopped(e: Error, step: &Step, kept: Option<usize>, out: &Path) -> Error {
    let mut m = msg![format!("step {} ({}): ", step.step, step.source.display())];
    m.extend(e.message());
    match kept {
        Some(kept) => {
            m.extend(msg![format!(
                "; the track stopped ({kept} finished step{} kept in {}; with other options, start over with ",
                if kept == 1 { "" } else { "s" },
                out.display()
            )]);
            m.extend(msg![set(Param::FORCE, true), ")"]);
        }
        None => m.extend(msg!["; the track stopped before writing anything"]),
    }
    Error::usage(m)
}
