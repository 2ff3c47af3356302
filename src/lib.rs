//! dicegrad: the exact per-voxel gradient of the Dice loss on segmentation volumes, and what it
//! looks like.
//!
//! With respect to probabilities the soft Dice gradient takes exactly two values per channel, a
//! scaled negative of the ground truth plus a constant: dL/ds = −a·g + c (Kervadec & de Bruijne
//! 2023, "On the dice loss gradient and the ways to mimic it"). This crate takes a label map and a
//! prediction, computes that gradient in closed form (through sigmoid or softmax when the
//! prediction holds logits) for Dice and the losses people train with, measures it (levels, fit,
//! dynamic range, 16-bit float headroom, histograms) and reports it.
//!
//! # On arrays
//!
//! Labels are an integer array `(X, Y, Z)`; the prediction is a float32 array `(C, X, Y, Z)` with
//! one channel per label value 0..C−1 (channel 0 = background), or one channel of foreground
//! probability for labels 0/1. [`analyze`] gives the report, [`gradient`] the gradient itself, in
//! the prediction's shape. The loss is MONAI's `DiceLoss()` unless the request says otherwise.
//!
//! ```
//! use dicegrad::loss::{Activation, LossKind, LossRequest};
//! use dicegrad::Request;
//! use ndarray::{Array3, Array4};
//!
//! // A 4×4×2 case: the label is 1 where x ≥ 2.
//! let labels = Array3::<u8>::from_shape_fn((4, 4, 2), |(x, _, _)| u8::from(x >= 2));
//! let probs = Array4::<f32>::from_shape_fn((1, 4, 4, 2), |(_, x, y, _)| if x >= 2 { 0.9 } else { 0.1 + 0.05 * y as f32 });
//!
//! let report = dicegrad::analyze(labels.view(), probs.view(), &Request::default())?;
//! let ch = &report.channels[0];
//! assert!(report.two_level_holds); // one value on foreground voxels, one on background voxels
//! assert_eq!(ch.gradient.level_ratio.closed_form, Some(1.0 - 2.0 / ch.soft_dice));
//!
//! let g = dicegrad::gradient(labels.view(), probs.view(), &Request::default())?;
//! assert_eq!(g.dim(), (1, 4, 4, 2));
//! assert_eq!(g[[0, 3, 0, 0]], ch.closed_form.foreground_level as f32);
//!
//! // Logits through a softmax, with the loss nnU-Net trains with.
//! let logits = Array4::<f32>::from_shape_fn((2, 4, 4, 2), |(k, x, y, _)| {
//!     if (x >= 2) == (k == 1) { 2.0 + 0.1 * y as f32 } else { -1.0 }
//! });
//! let mut request = Request::default();
//! request.loss = LossRequest { preset: Some(dicegrad::loss::Preset::Nnunet), ..LossRequest::default() };
//! let report = dicegrad::analyze(labels.view(), logits.view(), &request)?;
//! assert_eq!((report.parameters.spec.loss, report.parameters.spec.activation), (LossKind::DiceCe, Activation::Softmax));
//! assert!(!report.two_level_holds); // through a softmax the gradient spreads out
//! # Ok::<(), dicegrad::Error>(())
//! ```
//!
//! # Architecture
//!
//! Modules, in dependency order (each uses only those listed before it); docs/architecture.md
//! shows how data flows through them.
//! - [`error`]: the error type; messages name the input or parameter and say what to do.
//! - [`names`]: the names of choices (losses, presets, activations), one list per type.
//! - [`simd`]: loops with a portable and an AVX2 build, and the one switch between them.
//! - [`parallel`]: deterministic chunked parallelism (results independent of the thread count).
//! - [`memory`]: fresh memory faulted in on another core, ahead of the code that writes it.
//! - [`libdeflate`]: whole-buffer DEFLATE and gzip decoding (the C library libdeflate).
//! - [`case`]: a case in memory — class indices, prediction values, grid — from arrays or files.
//! - [`loss`]: pure math of the losses and their gradients; one file per family.
//! - [`analysis`]: measures of the gradient (statistics, histograms, comparisons).
//! - [`report`]: the report model and every text format (JSON, CSV, terminal table).
//! - [`output`]: atomic output files, parallel gzip.
//! - [`plot`]: pictures drawn from report data.
//! - [`nifti`], [`npz`]: reading and writing NIfTI volumes; reading nnU-Net probabilities.
//! - [`dataset`]: nnU-Net's `dataset.json` — class names, the ignore label, regions.
//! - [`pipeline`]: the one route from a case (files or arrays) to its report and gradient.
//! - [`minibatch`]: that route on a mini-batch as a training loop holds it (`(B, C, *spatial)`,
//!   labels or one-hot targets), for the Python package.
//! - [`arrays`]: that route on arrays ([`analyze`], [`gradient`], [`batch_gradient`] through
//!   [`minibatch`]).
//! - [`batch`]: whole data sets — pairing, parallel runs, resume, shards and merge.
//! - [`synth`]: seeded synthetic cases.

pub mod analysis;
pub mod arrays;
pub mod batch;
pub mod case;
pub mod dataset;
pub mod error;
pub mod libdeflate;
pub mod loss;
pub mod memory;
pub mod minibatch;
pub mod names;
pub mod nifti;
pub mod npz;
pub mod output;
pub mod parallel;
pub mod pipeline;
pub mod plot;
pub mod report;
pub mod simd;
pub mod synth;
pub mod track;
pub mod training;

pub use arrays::{analyze, batch_gradient, gradient};
pub use case::Case;
pub use error::{Error, Result};
pub use pipeline::{BatchReduction, Request};
pub use report::Report;
