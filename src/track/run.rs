//! Running a track: every check that needs no voxel first (options, steps, folders, what `out`
//! holds), then the steps in step order — files by `jobs` workers, each step one case through the
//! pipeline, records appended in step order; folders one after the other, each a whole batch run
//! into `steps/<step>/` with `jobs` cases at once — then the series and its outputs.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use super::outputs::{self, MetaStep, TrackMeta, STEPS_JSONL};
use super::steps::{name_steps, Step};
use crate::batch::folders;
use crate::batch::pairing::CasePair;
use crate::batch::run::{isolated, BatchOptions};
use crate::error::{set, Error, Naming, Param, Result};
use crate::msg;
use crate::output::{remove_stale, resolved, FolderLock};
use crate::pipeline::load::{load, LoadOptions};
use crate::pipeline::{self, Request};
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
}

/// Progress of a track: steps done of all, and within a folder step its cases done of all.
pub struct Progress {
    pub steps_done: usize,
    pub steps: usize,
    pub cases: Option<(usize, usize)>,
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Write { path: path.to_path_buf(), source: e }
}

/// The steps, checked inputs and `track.json` of a track, before anything is written.
fn prepare(opts: &TrackOptions) -> Result<(Vec<Step>, TrackMeta)> {
    let load_options = LoadOptions { max_values: opts.params.max_values, affine_tol: opts.params.affine_tol };
    load_options.check()?;
    opts.params.loss.check_applies(&opts.params.compare)?;
    if opts.out.exists() && !opts.out.is_dir() {
        return Err(Error::parameter(Param::OUT, format!("{}: exists and is not a folder", opts.out.display())));
    }
    let (kind, labels, label, sources, param) = match &opts.predictions {
        Predictions::Files { labels, preds, label } => ("files", labels, *label, preds, Param::PRED),
        Predictions::Folders { labels_dir, pred_dirs } => ("folders", labels_dir, None, pred_dirs, Param::PRED_DIRS),
    };
    let steps = name_steps(sources, opts.steps.as_deref(), param)?;
    let out = resolved(&opts.out)?;
    let mut inputs = vec![(labels.clone(), if kind == "files" { Param::LABELS } else { Param::LABELS_DIR })];
    inputs.extend(steps.iter().map(|s| (s.source.clone(), param)));
    let mut found = Vec::new();
    for (path, p) in &inputs {
        let ok = if kind == "files" { path.is_file() } else { path.is_dir() };
        if !ok {
            let what = if path.exists() {
                if kind == "files" {
                    "is not a file"
                } else {
                    "is not a folder"
                }
            } else {
                "does not exist"
            };
            return Err(Error::parameter(*p, format!("{}: {what}", path.display())));
        }
        let real = resolved(path)?;
        if kind == "files" && real.starts_with(&out) {
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
    if kind == "folders" {
        folders::check_output(&opts.out, Param::OUT, &found)?;
    }
    let meta = TrackMeta {
        tool: crate::report::Tool::this().version.to_string(),
        kind: kind.to_string(),
        labels: found[0].0.clone(),
        label,
        steps: steps
            .iter()
            .zip(&found[1..])
            .map(|(s, f)| MetaStep { step: s.step, source: f.0.clone(), given: s.source.display().to_string() })
            .collect(),
        parameters: opts.params.clone(),
    };
    Ok((steps, meta))
}

/// Decides what the track does in `out` (locked, stale temporary files removed): continue the
/// track there (`resume`, same inputs and options), replace it (`force`), or start a new one.
/// Returns whether an earlier track is being continued.
fn plan(opts: &TrackOptions, meta: &TrackMeta) -> Result<bool> {
    remove_stale(&opts.out);
    let previous = outputs::read_meta(&opts.out)?;
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
            Ok(true)
        }
        (Some(_), false, false) => Err(Error::usage(msg![
            format!("{} already holds a track; pass ", opts.out.display()),
            set(Param::RESUME, true),
            " to continue it or ",
            set(Param::FORCE, true),
            " to start over",
        ])),
        (Some(_), false, true) => {
            outputs::remove_outputs(&opts.out)?;
            Ok(false)
        }
        (None, _, _) => {
            if outputs::all_outputs(&opts.out).iter().any(|p| p.exists()) && !opts.force {
                return Err(Error::parameter(
                    Param::OUT,
                    msg![
                        format!(
                            "{}: holds files a track writes (series.json, steps/, …) but no track.json; choose \
                             another folder, or pass ",
                            opts.out.display()
                        ),
                        set(Param::FORCE, true),
                        " to replace them",
                    ],
                ));
            }
            outputs::remove_outputs(&opts.out)?;
            Ok(false)
        }
    }
}

/// Runs a track. `progress` is called after each step (and each case of a folder step); the
/// messages of failed steps and cases name parameters as `naming` does.
pub fn track(opts: &TrackOptions, naming: &(dyn Naming + Sync), progress: &mut dyn FnMut(Progress)) -> Result<Outcome> {
    let (steps, meta) = prepare(opts)?;
    let created = !opts.out.exists();
    std::fs::create_dir_all(&opts.out).map_err(write_error(&opts.out))?;
    let lock = FolderLock::acquire(&opts.out);
    let lock = match lock.and_then(|l| plan(opts, &meta).map(|resuming| (l, resuming))) {
        Ok(l) => l,
        Err(e) => {
            if created {
                let _ = std::fs::remove_file(opts.out.join(crate::output::LOCK_FILE));
                let _ = std::fs::remove_dir(&opts.out);
            }
            return Err(e);
        }
    };
    let (_lock, resuming) = lock;
    outputs::write_meta(&opts.out, &meta)?;
    let (records, resolved, analysed) = match run_steps(opts, resuming, &steps, naming, progress) {
        Ok(ran) => ran,
        Err(Halt::Other(e)) => return Err(e),
        Err(Halt::Step { error, step, kept }) => {
            // a track stopped before its first step was recorded leaves nothing behind
            if kept.is_none() {
                let _ = outputs::remove_outputs(&opts.out);
                if created {
                    drop(_lock);
                    let _ = std::fs::remove_file(opts.out.join(crate::output::LOCK_FILE));
                    let _ = std::fs::remove_dir(&opts.out);
                }
            }
            return Err(stopped(error, step, kept, &opts.out));
        }
    };
    let labels = match &opts.predictions {
        Predictions::Files { labels, .. } => labels,
        Predictions::Folders { labels_dir, .. } => labels_dir,
    };
    let series = Series::build(&opts.params, resolved, labels.display().to_string(), meta.label, records);
    outputs::finalize(&opts.out, &series, &opts.command)?;
    Ok(Outcome { series, analysed })
}

/// Why the steps stopped: an error at a step that stops the whole track (probabilities the loss
/// would activate again), with the finished steps kept (None: nothing of the track was recorded);
/// or another error (an output that cannot be written).
enum Halt<'s> {
    Step { error: Error, step: &'s Step, kept: Option<usize> },
    Other(Error),
}

impl From<Error> for Halt<'_> {
    fn from(e: Error) -> Self {
        Halt::Other(e)
    }
}

/// The steps run: their records, the losses as resolved, and how many steps this invocation ran.
type Ran = (Vec<StepRecord>, Vec<ResolvedLosses>, usize);

fn run_steps<'s>(
    opts: &TrackOptions,
    resuming: bool,
    steps: &'s [Step],
    naming: &(dyn Naming + Sync),
    progress: &mut dyn FnMut(Progress),
) -> std::result::Result<Ran, Halt<'s>> {
    Ok(match &opts.predictions {
        Predictions::Files { labels, label, .. } => {
            let done = if resuming { outputs::read_step_records(&opts.out)? } else { Vec::new() };
            let (records, analysed) = run_files(opts, resuming, labels, *label, steps, done, naming, progress)?;
            let ok: Vec<CaseRecord> = records.iter().map(|(_, r)| r.clone()).collect();
            let resolved = opts.params.resolved(&ok);
            let steps =
                records.iter().map(|(s, r)| StepRecord::of_file(s.step, &s.source.display().to_string(), r)).collect();
            (steps, resolved, analysed)
        }
        Predictions::Folders { labels_dir, .. } => run_folders(opts, resuming, labels_dir, steps, naming, progress)?,
    })
}

/// The request of every step.
fn request(params: &RunParameters, label: Option<i64>) -> Request {
    Request {
        loss: params.loss.clone(),
        compare: params.compare.clone(),
        label,
        force_activation: params.force_activation,
        allow_non_finite: params.allow_non_finite,
        regime: None,
        loss_scale: params.loss_scale,
        views: None,
    }
}

/// The record of one file step: its case analysed through the pipeline (id: the step number).
fn file_step(
    labels: &Path,
    step: &Step,
    params: &RunParameters,
    label: Option<i64>,
    naming: &dyn Naming,
) -> Result<CaseRecord> {
    let pair = CasePair { id: step.step.to_string(), labels: labels.to_path_buf(), pred: step.source.clone() };
    isolated(&pair, naming, || {
        let request = request(params, label);
        let options = LoadOptions { max_values: params.max_values, affine_tol: params.affine_tol };
        let loaded = load(labels, &step.source, options, &request)?;
        let result = pipeline::analyze(&loaded.case, loaded.inputs, &request, naming)?;
        Ok(CaseRecord::ok(&pair.id, &result.report, result.sums))
    })
}

/// The error that stopped a track at step `step`, with `kept` finished steps in `out` (None: the
/// track stopped before it had recorded anything, and what it had begun was removed).
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

/// The record of every file step, in step order, and how many this invocation analysed.
type FileSteps<'s> = (Vec<(&'s Step, CaseRecord)>, usize);

/// Analyses the file steps not among `done` (records of a track being continued) with `jobs`
/// workers, appending each record to `steps.jsonl` in step order; the records of every step.
#[allow(clippy::too_many_arguments)]
fn run_files<'s>(
    opts: &TrackOptions,
    resuming: bool,
    labels: &Path,
    label: Option<i64>,
    steps: &'s [Step],
    done: Vec<CaseRecord>,
    naming: &(dyn Naming + Sync),
    progress: &mut dyn FnMut(Progress),
) -> std::result::Result<FileSteps<'s>, Halt<'s>> {
    let mut have: BTreeMap<String, CaseRecord> = done.into_iter().map(|r| (r.case.clone(), r)).collect();
    // the records kept are those of this track's steps, rewritten whole (a cut line is dropped)
    let mut kept: Vec<(&Step, CaseRecord)> =
        steps.iter().filter_map(|s| Some((s, have.remove(&s.step.to_string())?))).collect();
    let path = opts.out.join(STEPS_JSONL);
    let lines: String = kept.iter().map(|(_, r)| serde_json::to_string(r).expect("records serialise") + "\n").collect();
    crate::output::write_bytes(&path, true, lines.as_bytes())?;
    let mut jsonl = OpenOptions::new().append(true).open(&path).map_err(write_error(&path))?;
    let todo: Vec<&Step> = steps.iter().filter(|s| !kept.iter().any(|(k, _)| k.step == s.step)).collect();
    let total = steps.len();
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Result<CaseRecord>)>();
    let mut fresh = Vec::new();
    std::thread::scope(|s| -> std::result::Result<(), Halt<'s>> {
        for _ in 0..opts.jobs.max(1).min(todo.len()) {
            let (tx, next, todo) = (tx.clone(), &next, &todo);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(step) = todo.get(i) else { break };
                if tx.send((i, file_step(labels, step, &opts.params, label, naming))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        for (i, record) in rx {
            pending.insert(i, record);
            while let Some(r) = pending.remove(&fresh.len()) {
                let step = todo[fresh.len()];
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        next.store(todo.len(), Ordering::SeqCst);
                        let n = kept.len() + fresh.len();
                        return Err(Halt::Step { error: e, step, kept: (n > 0 || resuming).then_some(n) });
                    }
                };
                let line = serde_json::to_string(&r).expect("records serialise") + "\n";
                jsonl.write_all(line.as_bytes()).and_then(|_| jsonl.flush()).map_err(write_error(&path))?;
                fresh.push((step, r));
                progress(Progress { steps_done: kept.len() + fresh.len(), steps: total, cases: None });
            }
        }
        Ok(())
    })?;
    let analysed = fresh.len();
    kept.extend(fresh);
    kept.sort_by_key(|(s, _)| s.step);
    Ok((kept, analysed))
}

/// Analyses each folder step as a batch run into `steps/<step>/` (continuing one that was
/// interrupted); the records of every step, the losses as resolved, and how many steps ran.
fn run_folders<'s>(
    opts: &TrackOptions,
    resuming: bool,
    labels_dir: &Path,
    steps: &'s [Step],
    naming: &(dyn Naming + Sync),
    progress: &mut dyn FnMut(Progress),
) -> std::result::Result<Ran, Halt<'s>> {
    let mut records = Vec::with_capacity(steps.len());
    let mut resolved: Vec<ResolvedLosses> = Vec::new();
    let mut analysed = 0;
    for (i, step) in steps.iter().enumerate() {
        let folder = outputs::step_folder(step.step);
        let batch = BatchOptions {
            labels_dir: labels_dir.to_path_buf(),
            pred_dir: step.source.clone(),
            out: opts.out.join(&folder),
            params: opts.params.clone(),
            shard: None,
            jobs: opts.jobs,
            resume: true,
            force: false,
            grad_out_dir: None,
            compression: 1,
            case_reports: false,
            command: opts.command.clone(),
        };
        let mut cases = |done: usize, total: usize, _failed: usize| {
            progress(Progress { steps_done: i, steps: steps.len(), cases: Some((done, total)) })
        };
        let fresh = i == 0 && !resuming && !batch.out.join(crate::batch::outputs::RUN).exists();
        let outcome = crate::batch::run::run(&batch, naming, &mut cases).map_err(|error| Halt::Step {
            error,
            step,
            kept: (!fresh).then_some(i),
        })?;
        analysed += usize::from(outcome.analysed > 0);
        let cases = crate::batch::outputs::read_records(&batch.out)?;
        let s = &outcome.summary;
        for r in &s.resolved {
            if !resolved.iter().any(|x| x.prediction_channels == r.prediction_channels) {
                resolved.push(r.clone());
            }
        }
        let source = step.source.display().to_string();
        records.push(StepRecord::of_folder(step.step, &source, &folder, &opts.params, s, &cases));
        progress(Progress { steps_done: i + 1, steps: steps.len(), cases: None });
    }
    resolved.sort_by_key(|r| r.prediction_channels);
    Ok((records, resolved, analysed))
}
