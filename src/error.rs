//! The one error type of the library.
//!
//! Every variant names the file (or flag) at fault, says what is wrong with it in terms a user can
//! check, and ends with what to do. Messages are single lines: the binary prints `error: {message}`
//! and exits with code 2 (see [`Error::exit_code`]).

use std::io;
use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading inputs, computing, or writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read from disk.
    #[error("{}: cannot read: {source}; check the path and its permissions", path.display())]
    Open { path: PathBuf, source: io::Error },

    /// The path exists but is not a regular file (a directory, a FIFO, a device).
    #[error("{}: not a regular file ({kind}); give the path of a .nii or .nii.gz volume", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },

    /// The bytes are not a single-file NIfTI-1 or NIfTI-2 volume.
    #[error("{}: not a NIfTI volume: {reason}; give a .nii or .nii.gz file", path.display())]
    NotNifti { path: PathBuf, reason: String },

    /// The header is NIfTI but describes something this tool cannot or will not read.
    #[error("{}: {problem}", path.display())]
    BadHeader { path: PathBuf, problem: String },

    /// The header claims more values than `--max-voxels` allows; refused before allocating.
    #[error(
        "{}: the header claims {values} values (dims {dims}), above the limit of {limit} \
         (--max-voxels); if the volume is genuine, raise --max-voxels",
        path.display()
    )]
    TooLarge { path: PathBuf, values: u128, dims: String, limit: u64 },

    /// The voxel data ends before the header says it should.
    #[error(
        "{}: truncated: the header describes {expected} bytes of voxel data but only {found} could \
         be read; the file is incomplete, export or copy it again",
        path.display()
    )]
    Truncated { path: PathBuf, expected: u64, found: u64 },

    /// The compressed stream is damaged (bad deflate data or a failed CRC check).
    #[error("{}: corrupt gzip data ({detail}); the file is damaged, export or copy it again", path.display())]
    CorruptGzip { path: PathBuf, detail: String },

    /// Voxel values that are not acceptable for this input (NaN, out of range, not whole...).
    #[error("{}: {problem}", path.display())]
    BadValues { path: PathBuf, problem: String },

    /// Labels and prediction disagree on the spatial grid.
    #[error(
        "{} has spatial shape {labels} but {} has {pred}; both must be on the same voxel grid \
         (resample the prediction to the labels)",
        labels_path.display(),
        pred_path.display()
    )]
    ShapeMismatch { labels_path: PathBuf, pred_path: PathBuf, labels: String, pred: String },

    /// A combination of options that cannot be computed, or an invalid option value.
    #[error("{0}")]
    Usage(String),

    /// An output already exists and `--force` was not given.
    #[error("{}: already exists; pass --force to overwrite it or choose another output path", path.display())]
    OutputExists { path: PathBuf },

    /// An output path points at one of the inputs.
    #[error("{}: this output path is one of the inputs; choose another output path (inputs are never modified)", path.display())]
    OutputIsInput { path: PathBuf },

    /// Writing an output failed (disk full, no permission...). The temporary file is removed.
    #[error("{}: cannot write: {source}; check free space and permissions of the folder", path.display())]
    Write { path: PathBuf, source: io::Error },
}

impl Error {
    /// Process exit code for this error: 2 (bad input, bad usage, or an output that cannot be written).
    pub fn exit_code(&self) -> u8 {
        2
    }

    /// Shorthand for [`Error::Usage`].
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
}
