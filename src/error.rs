//! The one error type of the library, and messages that name parameters.
//!
//! Every variant names the input (a file, or an array handed to the library) or the parameter at
//! fault, says what is wrong in terms a user can check, and ends with what to do. Messages are
//! single lines.
//!
//! A message that tells the user to change a parameter does not spell the parameter itself: it
//! holds it as a [`Param`], and whoever shows the message decides how a parameter is written — the
//! command line as one of its flags, a Python binding as a keyword argument. `Display` writes the
//! library's own names ([`FieldNames`]: `smooth_dr`, `activation=sigmoid`).

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A parameter a user sets, by its library name (the field of the request that holds it, in
/// snake case). Loss parameters come from [`crate::loss::LossParam`]; the options of runs are the
/// constants below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Param(&'static str);

impl Param {
    /// The preset a loss request starts from.
    pub const PRESET: Param = Param("preset");
    /// The label value K when a single-channel prediction is one class of a multi-label map.
    pub const LABEL: Param = Param("label");
    /// The label value whose voxels take no part in the loss (nnU-Net's `"ignore"` label).
    pub const IGNORE_LABEL: Param = Param("ignore_label");
    /// Overlapping regions of label values, one per channel (region-based training).
    pub const REGIONS: Param = Param("regions");
    /// An nnU-Net v2 dataset.json: class names, the ignore label, regions.
    pub const DATASET_JSON: Param = Param("dataset_json");
    /// Leave out the dataset.json found beside the labels folder.
    pub const NO_DATASET_JSON: Param = Param("no_dataset_json");
    /// The largest number of values (voxels × channels) a file may claim.
    pub const MAX_VALUES: Param = Param("max_values");
    /// The largest difference allowed between the affines of labels and prediction.
    pub const AFFINE_TOL: Param = Param("affine_tol");
    /// Overwrite existing outputs.
    pub const FORCE: Param = Param("force");
    /// Continue a batch run.
    pub const RESUME: Param = Param("resume");
    /// The folder of predictions of a batch.
    pub const PRED_DIR: Param = Param("pred_dir");
    /// The folder of label maps of a batch.
    pub const LABELS_DIR: Param = Param("labels_dir");
    /// The text after the case id in prediction file names.
    pub const PRED_SUFFIX: Param = Param("pred_suffix");
    /// The output folder of a batch.
    pub const OUT: Param = Param("out");
    /// The folder a batch writes gradient volumes into.
    pub const GRAD_OUT_DIR: Param = Param("grad_out_dir");
    /// Apply the activation even to values that look like probabilities.
    pub const FORCE_ACTIVATION: Param = Param("force_activation");
    /// Accept a loss or gradient that is not finite.
    pub const ALLOW_NON_FINITE: Param = Param("allow_non_finite");
    /// Losses compared with the main one.
    pub const COMPARE: Param = Param("compare");
    /// The patch size of a training regime.
    pub const PATCH_SIZE: Param = Param("patch_size");
    /// Patches per mini-batch.
    pub const BATCH_SIZE: Param = Param("batch_size");
    /// Mini-batches drawn.
    pub const PATCHES: Param = Param("patches");
    /// The share of foreground patches.
    pub const FG_OVERSAMPLE: Param = Param("fg_oversample");
    /// Pooling the Dice sums over a mini-batch.
    pub const BATCH_DICE: Param = Param("batch_dice");
    /// The loss scale S of the mixed-precision figures.
    pub const LOSS_SCALE: Param = Param("loss_scale");
    /// The voxel the pictures' planes pass through.
    pub const SLICE: Param = Param("slice");
    /// The step numbers of a track's predictions.
    pub const STEPS: Param = Param("steps");
    /// The prediction files of a track, one per step.
    pub const PRED: Param = Param("pred");
    /// The prediction folders of a track, one per step.
    pub const PRED_DIRS: Param = Param("pred_dirs");
    /// The label file of one case.
    pub const LABELS: Param = Param("labels");
    /// The spatial axes of a mini-batch's arrays (the library on arrays only; the files of the
    /// command line say theirs).
    pub const SPATIAL_DIMS: Param = Param("spatial_dims");
    /// The voxel size of a mini-batch's arrays (the library on arrays only).
    pub const SPACING: Param = Param("spacing");

    /// Every option of a run that is not a loss parameter (that messages may name).
    pub const RUN_OPTIONS: [Param; 29] = [
        Param::PRESET,
        Param::LABEL,
        Param::IGNORE_LABEL,
        Param::REGIONS,
        Param::DATASET_JSON,
        Param::NO_DATASET_JSON,
        Param::MAX_VALUES,
        Param::AFFINE_TOL,
        Param::FORCE,
        Param::RESUME,
        Param::PRED_DIR,
        Param::LABELS_DIR,
        Param::PRED_SUFFIX,
        Param::OUT,
        Param::GRAD_OUT_DIR,
        Param::FORCE_ACTIVATION,
        Param::ALLOW_NON_FINITE,
        Param::COMPARE,
        Param::PATCH_SIZE,
        Param::BATCH_SIZE,
        Param::PATCHES,
        Param::FG_OVERSAMPLE,
        Param::BATCH_DICE,
        Param::LOSS_SCALE,
        Param::SLICE,
        Param::STEPS,
        Param::PRED,
        Param::PRED_DIRS,
        Param::LABELS,
    ];

    /// A parameter of the given library name (loss parameters are made by [`crate::loss`]).
    pub(crate) const fn named(name: &'static str) -> Param {
        Param(name)
    }

    /// The library name, in snake case.
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// How the one who shows a message writes parameters.
pub trait Naming {
    /// A parameter on its own (`smooth_dr`).
    fn param(&self, p: Param) -> String;
    /// A parameter set to a value (`activation=sigmoid`); booleans are given as `true` /
    /// `false`.
    fn setting(&self, p: Param, value: &str) -> String;
}

/// The library's names: `smooth_dr`, `activation=sigmoid`.
pub struct FieldNames;

impl Naming for FieldNames {
    fn param(&self, p: Param) -> String {
        p.name().to_string()
    }
    fn setting(&self, p: Param, value: &str) -> String {
        format!("{}={value}", p.name())
    }
}

/// A piece of a message.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    /// A parameter, written by the [`Naming`] in use.
    Param(Param),
    /// A parameter set to a value.
    Set(Param, String),
}

impl From<&str> for Part {
    fn from(s: &str) -> Part {
        Part::Text(s.to_string())
    }
}

impl From<String> for Part {
    fn from(s: String) -> Part {
        Part::Text(s)
    }
}

impl From<Param> for Part {
    fn from(p: Param) -> Part {
        Part::Param(p)
    }
}

/// `p` set to `value`, as a piece of a message.
pub fn set(p: Param, value: impl fmt::Display) -> Part {
    Part::Set(p, value.to_string())
}

/// A message whose parameters are written when it is shown.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Msg(Vec<Part>);

impl Msg {
    pub fn new(parts: Vec<Part>) -> Msg {
        Msg(parts)
    }

    /// Appends the pieces of `other`.
    pub fn extend(&mut self, other: Msg) {
        self.0.extend(other.0);
    }

    /// The message with parameters written by `naming`.
    pub fn render(&self, naming: &dyn Naming) -> String {
        let mut s = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => s += t,
                Part::Param(p) => s += &naming.param(*p),
                Part::Set(p, v) => s += &naming.setting(*p, v),
            }
        }
        s
    }
}

impl From<String> for Msg {
    fn from(s: String) -> Msg {
        Msg(vec![Part::Text(s)])
    }
}

impl From<&str> for Msg {
    fn from(s: &str) -> Msg {
        Msg(vec![Part::from(s)])
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&FieldNames))
    }
}

/// A [`Msg`] from pieces: text (`&str`, `String`), a [`Param`], or [`set`]`(param, value)`.
#[macro_export]
macro_rules! msg {
    ($($part:expr),* $(,)?) => {
        $crate::error::Msg::new(vec![$($crate::error::Part::from($part)),*])
    };
}

/// Where an input came from: a file, or an array handed to the library.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    File(PathBuf),
    /// An in-memory array, by what it holds ("labels array", "prediction array", "input, sample
    /// 1").
    Array(std::borrow::Cow<'static, str>),
}

impl Input {
    /// An in-memory array named `what`.
    pub fn array(what: &'static str) -> Input {
        Input::Array(std::borrow::Cow::Borrowed(what))
    }

    /// The same input, as sample `b` of a mini-batch (an array's name gains ", sample b").
    fn in_sample(self, b: usize) -> Input {
        match self {
            Input::Array(what) => Input::Array(format!("{what}, sample {b}").into()),
            file => file,
        }
    }
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::File(p) => write!(f, "{}", p.display()),
            Input::Array(what) => f.write_str(what),
        }
    }
}

impl From<PathBuf> for Input {
    fn from(p: PathBuf) -> Input {
        Input::File(p)
    }
}

impl From<&std::path::Path> for Input {
    fn from(p: &std::path::Path) -> Input {
        Input::File(p.to_path_buf())
    }
}

/// How the affines of labels and prediction differ.
#[derive(Debug)]
pub struct AffineMismatch {
    pub labels: Input,
    pub pred: Input,
    /// What differs, in words.
    pub how: String,
    /// The largest difference of an entry, written out.
    pub worst: String,
    /// Both affines, written out.
    pub affines: String,
    /// The largest difference allowed.
    pub tolerance: f64,
    /// Both affines are finite: a larger tolerance could accept them (else a header is broken).
    pub finite: bool,
}

/// Everything that can go wrong while reading inputs, computing, or writing outputs.
#[derive(Debug)]
pub enum Error {
    /// The file could not be opened or read from disk.
    Open { path: PathBuf, source: io::Error },
    /// The path exists but is not a regular file (a directory, a FIFO, a device).
    NotAFile { path: PathBuf, kind: &'static str },
    /// The bytes are not a single-file NIfTI-1 or NIfTI-2 volume (or not the archive expected).
    NotNifti { path: PathBuf, reason: String },
    /// The header is readable but describes something this tool cannot or will not read.
    BadHeader { path: PathBuf, problem: Msg },
    /// The header claims more values than the limit allows; refused before allocating.
    TooLarge { path: PathBuf, values: u128, dims: String, limit: u64 },
    /// The voxel data ends before the header says it should (`found < expected`), or, with
    /// `found == expected`, a compressed file holds all its voxel data but ends before the end of
    /// its gzip stream (the CRC and length that close it are missing).
    Truncated { path: PathBuf, expected: u64, found: u64 },
    /// The compressed stream is damaged (bad deflate data or a failed CRC check).
    CorruptGzip { path: PathBuf, detail: String },
    /// Values that are not acceptable for this input (NaN, out of range, not whole...).
    BadValues { input: Input, problem: Msg },
    /// The loss would apply its activation to values that already are probabilities: a
    /// configuration that is wrong for every case of a data set.
    Reactivation { input: Input, problem: Msg },
    /// The loss or its gradient is not finite (a 0/0, a log 0...).
    NonFinite { input: Input, problem: Msg },
    /// Labels and prediction disagree on the spatial grid.
    ShapeMismatch { labels: Input, pred: Input, labels_shape: String, pred_shape: String },
    /// Labels and prediction lie in different places in the world (their affines differ).
    SpaceMismatch(Box<AffineMismatch>),
    /// A parameter whose value cannot be used.
    Parameter { param: Param, problem: Msg },
    /// A combination of options or inputs that cannot be computed.
    Usage(Msg),
    /// An output already exists and overwriting was not asked for.
    OutputExists { path: PathBuf },
    /// An output path points at one of the inputs.
    OutputIsInput { path: PathBuf },
    /// Writing an output failed (disk full, no permission...). The temporary file is removed.
    Write { path: PathBuf, source: io::Error },
}

impl Error {
    /// Process exit code for this error: 2 (bad input, bad usage, or an output that cannot be written).
    pub fn exit_code(&self) -> u8 {
        2
    }

    /// The same error, about sample `b` of a mini-batch: the arrays it names are named as that
    /// sample's.
    pub fn in_sample(self, b: usize) -> Error {
        use Error::*;
        match self {
            BadValues { input, problem } => BadValues { input: input.in_sample(b), problem },
            Reactivation { input, problem } => Reactivation { input: input.in_sample(b), problem },
            NonFinite { input, problem } => NonFinite { input: input.in_sample(b), problem },
            ShapeMismatch { labels, pred, labels_shape, pred_shape } => {
                ShapeMismatch { labels: labels.in_sample(b), pred: pred.in_sample(b), labels_shape, pred_shape }
            }
            other => other,
        }
    }

    /// A usage error from a message.
    pub fn usage(msg: impl Into<Msg>) -> Self {
        Error::Usage(msg.into())
    }

    /// An invalid value of `param`.
    pub fn parameter(param: Param, problem: impl Into<Msg>) -> Self {
        Error::Parameter { param, problem: problem.into() }
    }

    /// The error for an input path given as `param` that is missing, or a file where a folder is
    /// wanted (`folder`) or a folder where a file is; None when it is what is wanted. One wording
    /// for every command and every input.
    pub fn input_path(param: Param, path: &std::path::Path, folder: bool) -> Option<Error> {
        Some(Error::parameter(param, Error::path_problem(path, folder)?))
    }

    /// What is wrong with an input path that must be a folder (`folder`) or a file, in the words
    /// of [`Error::input_path`]; None when nothing is.
    pub fn path_problem(path: &std::path::Path, folder: bool) -> Option<String> {
        let shown = path.display();
        match (path.exists(), path.is_dir(), folder) {
            (false, _, _) => Some(format!("{shown}: does not exist; check the path")),
            (true, false, true) => Some(format!("{shown}: is a file, not a folder; give a folder")),
            (true, true, false) => Some(format!("{shown}: is a folder, not a file; give a file")),
            _ => None,
        }
    }

    /// The message, with parameters written by `naming`.
    pub fn render(&self, naming: &dyn Naming) -> String {
        self.message().render(naming)
    }

    /// The message as pieces.
    pub fn message(&self) -> Msg {
        use Error::*;
        match self {
            Open { path, source } => {
                msg![format!("{}: cannot read: {source}; check the path and its permissions", path.display())]
            }
            NotAFile { path, kind } => msg![format!(
                "{}: not a regular file ({kind}); give the path of a .nii or .nii.gz volume",
                path.display()
            )],
            NotNifti { path, reason } => {
                msg![format!("{}: not a NIfTI volume: {reason}; give a .nii or .nii.gz file", path.display())]
            }
            BadHeader { path, problem } => prefixed(format!("{}: ", path.display()), problem),
            TooLarge { path, values, dims, limit } => msg![
                format!(
                    "{}: the header claims {values} values (dims {dims}), above the limit of {limit} (",
                    path.display()
                ),
                Param::MAX_VALUES,
                "); if the volume is genuine, raise ",
                Param::MAX_VALUES,
            ],
            Truncated { path, expected, found } if found < expected => msg![format!(
                "{}: truncated: the header describes {expected} bytes of voxel data but only {found} could be \
                 read; the file is incomplete, export or copy it again",
                path.display()
            )],
            Truncated { path, expected, .. } => msg![format!(
                "{}: truncated: the compressed file is cut short after its {expected} bytes of voxel data (its \
                 end, with the gzip checksum and length, is missing), so the data cannot be verified; the file \
                 is incomplete, export or copy it again",
                path.display()
            )],
            CorruptGzip { path, detail } => msg![format!(
                "{}: corrupt gzip data ({detail}); the file is damaged, export or copy it again",
                path.display()
            )],
            BadValues { input, problem } | Reactivation { input, problem } | NonFinite { input, problem } => {
                prefixed(format!("{input}: "), problem)
            }
            ShapeMismatch { labels, pred, labels_shape, pred_shape } => msg![format!(
                "{labels} has spatial shape {labels_shape} but {pred} has {pred_shape}; both must be on the same \
                 voxel grid (resample the prediction to the labels)"
            )],
            SpaceMismatch(m) => {
                let AffineMismatch { labels, pred, how, worst, affines, tolerance, finite } = m.as_ref();
                if !finite {
                    return msg![format!(
                        "{labels} and {pred} cannot be placed in the world: {how} ({affines}); fix the header's sform \
                         or qform (re-export the file)"
                    )];
                }
                msg![
                    format!(
                        "{labels} and {pred} are not in the same space: {how}; their affines differ by up to \
                         {worst}, more than "
                    ),
                    set(Param::AFFINE_TOL, tolerance),
                    format!(" ({affines}); resample or reorient the prediction to the labels, or raise "),
                    Param::AFFINE_TOL,
                    " if the difference is only rounding",
                ]
            }
            Parameter { param, problem } => {
                let mut m = prefixed(*param, &msg![" "]);
                m.extend(problem.clone());
                m
            }
            Usage(m) => m.clone(),
            OutputExists { path } => msg![
                format!("{}: already exists; pass ", path.display()),
                set(Param::FORCE, true),
                " to overwrite it or choose another output path",
            ],
            OutputIsInput { path } => msg![format!(
                "{}: this output path is one of the inputs; choose another output path (inputs are never modified)",
                path.display()
            )],
            Write { path, source } if path.as_os_str() == "<stdout>" => {
                msg![format!("cannot write the result to stdout: {source}; check where it is redirected")]
            }
            Write { path, source } => msg![format!(
                "{}: cannot write: {source}; check free space and permissions of the folder",
                path.display()
            )],
        }
    }
}

/// `head` followed by the pieces of `m`.
fn prefixed(head: impl Into<Part>, m: &Msg) -> Msg {
    let mut parts = vec![head.into()];
    parts.extend(m.0.iter().cloned());
    Msg(parts)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&FieldNames))
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Open { source, .. } | Error::Write { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another way of writing parameters: upper case in angle brackets.
    struct Shouting;
    impl Naming for Shouting {
        fn param(&self, p: Param) -> String {
            format!("<{}>", p.name().to_uppercase())
        }
        fn setting(&self, p: Param, value: &str) -> String {
            format!("{} := {value}", self.param(p))
        }
    }

    #[test]
    fn messages_write_parameters_as_the_caller_names_them() {
        let e = Error::TooLarge { path: "a.nii".into(), values: 10, dims: "[10]".into(), limit: 5 };
        assert_eq!(
            e.to_string(),
            "a.nii: the header claims 10 values (dims [10]), above the limit of 5 (max_values); if the volume is \
             genuine, raise max_values"
        );
        assert!(e.render(&Shouting).ends_with("(<MAX_VALUES>); if the volume is genuine, raise <MAX_VALUES>"));
        let e = Error::parameter(Param::AFFINE_TOL, msg!["must be ≥ 0; or set ", set(Param::FORCE, true)]);
        assert_eq!(e.to_string(), "affine_tol must be ≥ 0; or set force=true");
        assert_eq!(e.render(&Shouting), "<AFFINE_TOL> must be ≥ 0; or set <FORCE> := true");
    }
}
