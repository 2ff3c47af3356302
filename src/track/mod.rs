//! Over training: the predictions a network made at successive checkpoints, each analysed as
//! `analyze` (a file) or `batch` (a folder of cases) analyses it, and the series of their figures
//! ([`crate::report::series`]).
//!
//! A track's folder holds `track.json` (what was asked: the steps, their predictions, the loss),
//! the steps' records — `steps.jsonl`, one complete case record per line, appended and flushed per
//! step, for files; `steps/<step>/`, a whole batch folder per step, for folders — and the outputs
//! derived from the records: `series.json`, `series.csv`, the pictures over steps and
//! `track.html`. A record is complete or absent, so an interrupted track continues with `resume`
//! where it stopped.

pub mod files;
pub mod folders;
pub mod outputs;
pub mod run;
pub mod steps;

pub use run::{track, Outcome, Predictions, TrackOptions};
