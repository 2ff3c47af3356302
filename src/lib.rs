//! dicegrad: the exact per-voxel gradient of the Dice loss on NIfTI segmentation volumes, and what
//! it looks like.
//!
//! With respect to probabilities the soft Dice gradient takes exactly two values per channel, a
//! scaled negative of the ground truth plus a constant: dL/ds = −a·g + c (Kervadec & de Bruijne
//! 2023, "On the dice loss gradient and the ways to mimic it"). This crate loads a label map and a
//! prediction, computes that gradient in closed form (through sigmoid or softmax when the file holds
//! logits), measures it (levels, fit, dynamic range, 16-bit float headroom, histograms) and writes
//! the results.
//!
//! Modules, in dependency order (each uses only those listed before it):
//! - [`error`]: the error type; every message names the file and what to do.
//! - [`volume`]: in-memory label maps, predictions and their geometry.
//! - `simd`: loops compiled for AVX2 and for the baseline, bit-identical.
//! - [`parallel`]: deterministic chunked parallelism (results independent of thread count).
//! - [`loss`]: pure math of the losses and their gradients.
//! - [`analysis`]: gradient statistics and histograms.
//! - [`synth`]: seeded synthetic cases.
//! - [`output`], [`nifti_io`]: atomic outputs; reading and writing NIfTI-1.
//! - [`report`]: the one report struct and its JSON / CSV / terminal writers.
//! - [`plot`]: pictures drawn from the report.
//! - [`pipeline`]: one case from loaded volumes to its report.
//! - [`batch`]: whole data sets — pairing, parallel runs, resume, shards and merge, summary.

pub mod analysis;
pub mod batch;
pub mod error;
pub mod loss;
pub mod nifti_io;
pub mod output;
pub mod parallel;
pub mod pipeline;
pub mod plot;
pub mod report;
mod simd;
pub mod synth;
pub mod volume;

pub use error::{Error, Result};
