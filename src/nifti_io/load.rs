//! Loading a case: labels and prediction opened and checked against each other from their headers
//! alone, then decoded concurrently, each straight into its final in-memory form.
//!
//! Checks made here (each an [`Error`] naming the file and what to do): matching spatial grids, a
//! prediction layout of `(X,Y,Z)`, `(X,Y,Z,C)` or `(X,Y,Z,1,C)`, label values that are whole
//! numbers in range for the prediction, and prediction values that are finite (and within [0, 1]
//! when they are probabilities).

use std::path::Path;

use super::decode::{extend_f32, fill_f64};
use super::header::DataType;
use super::read::Source;
use crate::error::{Error, Result};
use crate::volume::{
    voxel_coords, voxel_count, Case, ChannelLayout, Geometry, InputInfo, LabelMap, Prediction, Shape3,
};

/// Largest number of channels a prediction may have (class indices are stored as `u8`).
pub const MAX_CHANNELS: usize = 256;

/// What the loader needs to know about the analysis.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Refuse files whose header claims more values than this.
    pub max_values: u64,
    /// `--label K`: a single-channel prediction is class K of a multi-label map.
    pub label: Option<i64>,
}

/// Both inputs opened, headers validated and checked against each other; no voxel data read yet.
pub struct OpenCase {
    labels: Source,
    pred: Source,
    shape: Shape3,
    /// Number of prediction channels C.
    pub channels: usize,
    /// Layout of the prediction channels.
    pub layout: ChannelLayout,
    options: LoadOptions,
}

fn spatial_and_extra(dims: &[usize]) -> (Shape3, Vec<usize>) {
    let get = |i: usize| dims.get(i).copied().unwrap_or(1);
    let mut extra: Vec<usize> = dims.iter().skip(3).copied().collect();
    while extra.last() == Some(&1) {
        extra.pop();
    }
    ([get(0), get(1), get(2)], extra)
}

fn info(src: &Source) -> InputInfo {
    let h = &src.header;
    InputInfo {
        path: src.path.display().to_string(),
        dims: h.dims.clone(),
        datatype: h.datatype.name(),
        voxel_size: h.voxel_size(),
        spatial_unit: h.spatial_unit(),
        affine: h.affine(),
        scaling: h.scaling.map_or([1.0, 0.0], |(s, i)| [s, i]),
        gzip: src.gzip,
    }
}

fn geometry(src: &Source, shape: Shape3) -> Geometry {
    Geometry { shape, header: src.header.template.clone(), info: info(src) }
}

fn bad_values(path: &Path, problem: String) -> Error {
    Error::BadValues { path: path.to_path_buf(), problem }
}

impl OpenCase {
    /// Opens both files and checks everything the headers can tell.
    pub fn open(labels_path: &Path, pred_path: &Path, options: LoadOptions) -> Result<Self> {
        let labels = Source::open(labels_path, options.max_values)?;
        let pred = Source::open(pred_path, options.max_values)?;
        let (lshape, lextra) = spatial_and_extra(&labels.header.dims);
        if !lextra.is_empty() {
            return Err(Error::BadHeader {
                path: labels_path.to_path_buf(),
                problem: format!(
                    "labels have dims {:?}; a label map must be 3D (X,Y,Z) with one integer label per \
                     voxel (one-hot volumes are not supported: take the argmax over channels)",
                    labels.header.dims
                ),
            });
        }
        let (pshape, pextra) = spatial_and_extra(&pred.header.dims);
        let (channels, layout) = match pextra.as_slice() {
            [] => (1, ChannelLayout::Single),
            [c] => (*c, ChannelLayout::Dim4),
            [1, c] => (*c, ChannelLayout::Dim5),
            _ => {
                return Err(Error::BadHeader {
                    path: pred_path.to_path_buf(),
                    problem: format!(
                        "prediction has dims {:?}; expected (X,Y,Z), (X,Y,Z,C) or (X,Y,Z,1,C) with one \
                         channel per label",
                        pred.header.dims
                    ),
                })
            }
        };
        if lshape != pshape {
            return Err(Error::ShapeMismatch {
                labels_path: labels_path.to_path_buf(),
                pred_path: pred_path.to_path_buf(),
                labels: format!("{lshape:?}"),
                pred: format!("{pshape:?}"),
            });
        }
        if channels > MAX_CHANNELS {
            return Err(Error::BadHeader {
                path: pred_path.to_path_buf(),
                problem: format!("prediction has {channels} channels; at most {MAX_CHANNELS} are supported"),
            });
        }
        if options.label.is_some() && channels > 1 {
            return Err(Error::usage(format!(
                "--label applies to a single-channel (X,Y,Z) prediction, but {} has {channels} channels \
                 (one per label 0..{}); drop --label",
                pred_path.display(),
                channels - 1
            )));
        }
        Ok(OpenCase { labels, pred, shape: lshape, channels, layout, options })
    }

    /// Decodes labels and prediction (concurrently) and validates their values; with
    /// `probabilities`, prediction values outside [0, 1] are refused.
    pub fn read(self, probabilities: bool) -> Result<Case> {
        let OpenCase { labels, pred, shape, channels, layout, options } = self;
        let rule = match (channels, options.label) {
            (1, Some(k)) => LabelRule::Select(k),
            (1, None) => LabelRule::Binary,
            (c, _) => LabelRule::Channels(c),
        };
        let (labels, prediction) = std::thread::scope(|s| {
            let lab = s.spawn(move || read_labels(labels, shape, rule));
            let pred = read_prediction(pred, shape, channels, layout, probabilities);
            let lab = lab.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (lab, pred)
        });
        Ok(Case { labels: labels?, prediction: prediction? })
    }
}

/// Reads a label map on its own (for a prediction that is not a NIfTI file), for a prediction with
/// `channels` channels; `label` is `--label K` for one channel.
pub fn read_label_file(path: &Path, max_values: u64, channels: usize, label: Option<i64>) -> Result<LabelMap> {
    let src = Source::open(path, max_values)?;
    let (shape, extra) = spatial_and_extra(&src.header.dims);
    if !extra.is_empty() {
        return Err(Error::BadHeader {
            path: path.to_path_buf(),
            problem: format!("labels have dims {:?}; a label map must be 3D (X,Y,Z)", src.header.dims),
        });
    }
    let rule = match (channels, label) {
        (1, Some(k)) => LabelRule::Select(k),
        (1, None) => LabelRule::Binary,
        (c, _) => LabelRule::Channels(c),
    };
    read_labels(src, shape, rule)
}

/// How label values map to class indices.
#[derive(Clone, Copy, Debug)]
enum LabelRule {
    /// C channels: labels 0..C−1, class = label.
    Channels(usize),
    /// One channel, binary labels 0/1.
    Binary,
    /// One channel for label K of a multi-label map: class = (label == K).
    Select(i64),
}

impl LabelRule {
    fn class(self, v: f64) -> Option<u8> {
        match self {
            LabelRule::Channels(c) => (v >= 0.0 && v < c as f64).then_some(v as u8),
            LabelRule::Binary => (v == 0.0 || v == 1.0).then_some(v as u8),
            LabelRule::Select(k) => Some((v == k as f64) as u8),
        }
    }

    fn label_of(self) -> Vec<i64> {
        match self {
            LabelRule::Channels(c) => (0..c as i64).collect(),
            LabelRule::Binary => vec![1],
            LabelRule::Select(k) => vec![k],
        }
    }

    fn advice(self) -> String {
        match self {
            LabelRule::Channels(c) => format!(
                "the prediction has {c} channels, one per label 0..{}: check that labels and \
                 prediction belong together, or remap the labels to 0..{}",
                c - 1,
                c - 1
            ),
            LabelRule::Binary => "a single-channel prediction needs labels 0/1; pass --label K to \
                                  analyse class K of a multi-label map"
                .to_string(),
            LabelRule::Select(_) => String::new(),
        }
    }
}

/// First offending voxel and how many there are.
#[derive(Default)]
struct Offenders {
    count: u64,
    first: Option<(usize, f64)>,
}

impl Offenders {
    fn add(&mut self, index: usize, value: f64) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((index, value));
        }
    }
}

fn where_is(shape: Shape3, index: usize) -> String {
    let n = voxel_count(shape);
    let [x, y, z] = voxel_coords(shape, index % n);
    if index >= n {
        format!("voxel ({x}, {y}, {z}) of channel {}", index / n)
    } else {
        format!("voxel ({x}, {y}, {z})")
    }
}

fn read_labels(src: Source, shape: Shape3, rule: LabelRule) -> Result<LabelMap> {
    let n = voxel_count(shape);
    let (dt, big, scaling) = (src.header.datatype, src.header.big_endian, src.header.scaling);
    let geometry = geometry(&src, shape);
    let path = src.path.clone();
    let gzip = src.gzip;
    let mut class = super::read::vec_for(n, gzip);
    let mut values = Vec::with_capacity(super::read::CHUNK_BYTES);
    let (mut not_whole, mut out_of_range) = (Offenders::default(), Offenders::default());
    // The usual label file, unsigned bytes as they are: a table from byte to class.
    let bytes_as_is = dt == DataType::U8 && scaling.is_none();
    let table: [Option<u8>; 256] = std::array::from_fn(|b| rule.class(b as f64));
    src.for_each_chunk(|first, bytes| {
        if bytes_as_is {
            super::read::grow_for(&mut class, bytes.len(), n);
            for (j, &b) in bytes.iter().enumerate() {
                let c = table[usize::from(b)];
                if c.is_none() {
                    out_of_range.add(first + j, f64::from(b));
                }
                class.push(c.unwrap_or(0));
            }
            return Ok(());
        }
        fill_f64(dt, big, scaling, bytes, &mut values);
        super::read::grow_for(&mut class, values.len(), n);
        for (j, &v) in values.iter().enumerate() {
            if v.fract() != 0.0 || !v.is_finite() {
                not_whole.add(first + j, v);
                class.push(0);
            } else if let Some(c) = rule.class(v) {
                class.push(c);
            } else {
                out_of_range.add(first + j, v);
                class.push(0);
            }
        }
        Ok(())
    })?;
    if let Some((i, v)) = not_whole.first {
        return Err(bad_values(
            &path,
            format!(
                "{} voxels hold label values that are not whole numbers (first: {v} at {}); labels \
                 must be integers (was an interpolated or probability map saved as labels?)",
                not_whole.count,
                where_is(shape, i)
            ),
        ));
    }
    if let Some((i, v)) = out_of_range.first {
        return Err(bad_values(
            &path,
            format!(
                "{} voxels hold label values out of range (first: {v} at {}); {}",
                out_of_range.count,
                where_is(shape, i),
                rule.advice()
            ),
        ));
    }
    Ok(LabelMap { class, geometry, label_of: rule.label_of() })
}

/// Checks prediction values as they are decoded: finite, and within [0, 1] for probabilities.
pub(crate) struct ValueCheck {
    probabilities: bool,
    non_finite: Offenders,
    outside: Offenders,
    lo: f32,
    hi: f32,
}

impl ValueCheck {
    pub(crate) fn new(probabilities: bool) -> Self {
        ValueCheck {
            probabilities,
            non_finite: Offenders::default(),
            outside: Offenders::default(),
            lo: f32::INFINITY,
            hi: f32::NEG_INFINITY,
        }
    }

    /// Scans `values`, whose first has flat index `first`.
    pub(crate) fn scan(&mut self, first: usize, values: &[f32]) {
        for (j, &v) in values.iter().enumerate() {
            if !v.is_finite() {
                self.non_finite.add(first + j, v as f64);
            } else {
                self.lo = self.lo.min(v);
                self.hi = self.hi.max(v);
                if self.probabilities && !(0.0..=1.0).contains(&v) {
                    self.outside.add(first + j, v as f64);
                }
            }
        }
    }

    /// The error for what was found, if anything.
    pub(crate) fn finish(self, path: &Path, shape: Shape3, channels: usize) -> Result<()> {
        if let Some((i, v)) = self.non_finite.first {
            return Err(bad_values(
                path,
                format!(
                    "{} values are NaN or infinite (first: {} at {}); the prediction must be finite, \
                     check the network output or the export",
                    self.non_finite.count,
                    v as f32,
                    where_is(shape, i)
                ),
            ));
        }
        if let Some((i, v)) = self.outside.first {
            let act = if channels > 1 { "softmax" } else { "sigmoid" };
            return Err(bad_values(
                path,
                format!(
                    "{} values lie outside [0, 1] (range {} to {}, first: {} at {}), so these are \
                     not probabilities; if the file holds logits pass --activation {act}",
                    self.outside.count,
                    self.lo,
                    self.hi,
                    v as f32,
                    where_is(shape, i)
                ),
            ));
        }
        Ok(())
    }
}

fn read_prediction(
    src: Source,
    shape: Shape3,
    channels: usize,
    layout: ChannelLayout,
    probabilities: bool,
) -> Result<Prediction> {
    let (dt, big, scaling) = (src.header.datatype, src.header.big_endian, src.header.scaling);
    let geometry = geometry(&src, shape);
    let path = src.path.clone();
    let total = voxel_count(shape) * channels;
    let mut data: Vec<f32> = super::read::vec_for(total, src.gzip);
    let mut check = ValueCheck::new(probabilities);
    src.for_each_chunk(|first, bytes| {
        let start = data.len();
        super::read::grow_for(&mut data, bytes.len() / dt.size(), total);
        extend_f32(dt, big, scaling, bytes, &mut data);
        check.scan(first, &data[start..]);
        Ok(())
    })?;
    check.finish(&path, shape, channels)?;
    Ok(Prediction { data, channels, layout, geometry })
}
