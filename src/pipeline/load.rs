//! A case from files: NIfTI labels with a NIfTI or nnU-Net `.npz` prediction, opened and checked
//! against each other from their headers alone (grids, channel layout, affines), then decoded
//! concurrently, each straight into its final in-memory form.
//!
//! Checks made here (each an error naming the file and what to do): matching spatial grids, a
//! prediction layout of `(X,Y,Z)`, `(X,Y,Z,C)` or `(X,Y,Z,1,C)` (or `(C, z, y, x)` in an `.npz`),
//! affines equal within a tolerance ([`super::space`]), label values that are whole numbers in
//! range for the prediction. The prediction's values are measured as they arrive and checked
//! against the loss by [`super::analyze`].

use std::path::{Path, PathBuf};

use super::Request;
use crate::case::labels::{ClassSpec, LabelRule};
use crate::case::{Case, Geometry, Grid, Labels, Prediction, Shape3};
use crate::error::{AffineMismatch, Error, Input, Param, Result};
use crate::nifti::volumes::{read_labels, read_values};
use crate::nifti::{HeaderTemplate, Source};
use crate::npz::NpzSource;
use crate::report::{ChannelLayout, InputInfo, Inputs, PredictionInfo};

/// How to load a case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadOptions {
    /// Refuse files whose header claims more values (voxels × channels) than this.
    pub max_values: u64,
    /// The largest difference allowed between an entry of the labels' affine and the
    /// prediction's (in the files' spatial unit, usually mm).
    pub affine_tol: f64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { max_values: 2_000_000_000, affine_tol: 1e-3 }
    }
}

impl LoadOptions {
    /// Refuses a tolerance that is not a finite number ≥ 0.
    pub fn check(&self) -> Result<()> {
        let t = self.affine_tol;
        if t.is_finite() && t >= 0.0 {
            Ok(())
        } else {
            Err(Error::parameter(Param::AFFINE_TOL, format!("must be a finite number ≥ 0, got {t}")))
        }
    }
}

/// Opens and checks both files, checks the request's losses against the prediction's channels
/// (so that bad parameters are refused before any voxel data is read), and reads the case.
pub fn load(labels: &Path, pred: &Path, options: LoadOptions, request: &Request) -> Result<LoadedCase> {
    let open = OpenCase::open_with(labels, pred, options, request.label, &request.classes)?;
    request.configs(open.channels())?;
    open.read()
}

/// Where a case's gradient is written: the prediction's header (for an `.npz`, the labels') and
/// its dimensions in the file.
#[derive(Clone, Debug)]
pub struct GradientLayout {
    pub header: HeaderTemplate,
    pub dims: Vec<usize>,
}

/// A case read from files, with what the files were and where its gradient goes.
pub struct LoadedCase {
    pub case: Case<'static>,
    pub inputs: Inputs,
    pub layout: GradientLayout,
}

/// Whether a path names an nnU-Net probability archive (by its extension).
pub fn is_npz(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"))
}

enum PredSource {
    Nifti(Source),
    Npz(NpzSource),
}

/// Both inputs opened, headers validated and checked against each other; no voxel data read yet.
pub struct OpenCase {
    labels: Source,
    pred: PredSource,
    pred_path: PathBuf,
    grid: Grid,
    /// Number of prediction channels C.
    channels: usize,
    layout: ChannelLayout,
    /// How label values become classes (checked against the channels).
    rule: LabelRule,
    /// The ignore label.
    ignore: Option<i64>,
    /// The channels' names.
    names: Option<Vec<String>>,
    max_values: u64,
}

/// The spatial shape and the dimensions beyond it (trailing singletons dropped).
fn spatial_and_extra(dims: &[usize]) -> (Shape3, Vec<usize>) {
    let get = |i: usize| dims.get(i).copied().unwrap_or(1);
    let mut extra: Vec<usize> = dims.iter().skip(3).copied().collect();
    while extra.last() == Some(&1) {
        extra.pop();
    }
    ([get(0), get(1), get(2)], extra)
}

/// What the report says about a NIfTI input.
fn info(src: &Source) -> InputInfo {
    let h = &src.header;
    InputInfo {
        path: Some(src.path.display().to_string()),
        dims: h.dims.clone(),
        datatype: h.datatype.name(),
        voxel_size: h.voxel_size(),
        spatial_unit: h.spatial_unit(),
        affine: h.affine(),
        scaling: h.scaling.map_or([1.0, 0.0], |(s, i)| [s, i]),
        gzip: src.gzip,
    }
}

fn bad_header(path: &Path, problem: String) -> Error {
    Error::BadHeader { path: path.to_path_buf(), problem: problem.into() }
}

impl OpenCase {
    /// Opens both files and checks everything the headers can tell; `label` is the label value K
    /// when a single-channel prediction is one class of a multi-label map.
    pub fn open(labels_path: &Path, pred_path: &Path, options: LoadOptions, label: Option<i64>) -> Result<Self> {
        Self::open_with(labels_path, pred_path, options, label, &ClassSpec::default())
    }

    /// [`OpenCase::open`] with what the label values mean beyond one class each (an ignore
    /// label, regions, names; checked against the prediction's channels).
    pub fn open_with(
        labels_path: &Path,
        pred_path: &Path,
        options: LoadOptions,
        label: Option<i64>,
        classes: &ClassSpec,
    ) -> Result<Self> {
        options.check()?;
        if let (Ok(l), Ok(p)) = (labels_path.canonicalize(), pred_path.canonicalize()) {
            if l == p {
                return Err(Error::usage(format!(
                    "{} is given as both the labels and the prediction; give the ground truth and the network's \
                     output",
                    labels_path.display()
                )));
            }
        }
        let labels = Source::open(labels_path, options.max_values)?;
        let (shape, extra) = spatial_and_extra(&labels.header.dims);
        if !extra.is_empty() {
            return Err(bad_header(
                labels_path,
                format!(
                    "labels have dims {:?}; a label map must be 3D (X,Y,Z) with one integer label per voxel \
                     (one-hot volumes are not supported: take the argmax over channels)",
                    labels.header.dims
                ),
            ));
        }
        let (pred, pshape, channels, layout) = if is_npz(pred_path) {
            let npz = NpzSource::open(pred_path)?;
            npz.check_grid(shape, &Input::File(labels_path.to_path_buf()))?;
            let (channels, grid) = npz.layout()?;
            (PredSource::Npz(npz), grid, channels, ChannelLayout::Dim4)
        } else {
            let src = Source::open(pred_path, options.max_values)?;
            let (pshape, extra) = spatial_and_extra(&src.header.dims);
            let (channels, layout) = match extra.as_slice() {
                [] => (1, ChannelLayout::Single),
                [c] => (*c, ChannelLayout::Dim4),
                [1, c] => (*c, ChannelLayout::Dim5),
                _ => {
                    return Err(bad_header(
                        pred_path,
                        format!(
                            "prediction has dims {:?}; expected (X,Y,Z), (X,Y,Z,C) or (X,Y,Z,1,C) with one \
                             channel per label",
                            src.header.dims
                        ),
                    ))
                }
            };
            (PredSource::Nifti(src), pshape, channels, layout)
        };
        let pred_input = Input::File(pred_path.to_path_buf());
        if shape != pshape {
            return Err(Error::ShapeMismatch {
                labels: Input::File(labels_path.to_path_buf()),
                pred: pred_input,
                labels_shape: format!("{shape:?}"),
                pred_shape: format!("{pshape:?}"),
            });
        }
        let rule = classes.rule(channels, label, &pred_input)?;
        let ignore = classes.ignore_label;
        if let PredSource::Nifti(src) = &pred {
            let (la, pa) = (labels.header.affine(), src.header.affine());
            if let Some(d) = super::space::difference(&la, &pa, options.affine_tol) {
                let mut how = d.how;
                for (whose, h) in [("labels'", &labels.header), ("prediction's", &src.header)] {
                    if h.sform_code <= 0 && h.qform_code <= 0 {
                        how += &format!(
                            "; the {whose} header sets neither sform nor qform, so its affine is its voxel sizes alone"
                        );
                    }
                }
                return Err(Error::SpaceMismatch(Box::new(AffineMismatch {
                    labels: Input::File(labels_path.to_path_buf()),
                    pred: pred_input,
                    how,
                    worst: super::space::short(d.worst),
                    affines: d.affines,
                    tolerance: options.affine_tol,
                    finite: d.finite,
                })));
            }
        }
        let grid = Grid::fortran(shape);
        let max_values = options.max_values;
        let names = classes.channel_names(channels, label);
        Ok(OpenCase {
            labels,
            pred,
            pred_path: pred_path.to_path_buf(),
            grid,
            channels,
            layout,
            rule,
            ignore,
            names,
            max_values,
        })
    }

    /// Number of prediction channels C.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes labels and prediction (concurrently).
    pub fn read(self) -> Result<LoadedCase> {
        let OpenCase { labels, pred, pred_path, grid, channels, layout, rule, ignore, names, max_values } = self;
        let labels_info = info(&labels);
        let header = labels.header.clone();
        let geometry = Geometry { voxel_size: header.voxel_size().map(f64::from), affine: labels_info.affine };
        let labels_input = Input::File(labels.path.clone());
        let (class, prediction) = std::thread::scope(|s| {
            let lab = s.spawn(|| read_labels(labels, &grid, rule.clone(), ignore));
            let pred = match pred {
                PredSource::Nifti(src) => {
                    let (info, template) = (info(&src), src.header.template.clone());
                    let dims = src.header.dims.clone();
                    read_values(src).map(|(v, scan)| (v, scan, info, GradientLayout { header: template, dims }))
                }
                PredSource::Npz(npz) => {
                    let mut info = labels_info.clone();
                    info.path = Some(pred_path.display().to_string());
                    info.dims = npz.shape().to_vec();
                    info.datatype = npz.datatype();
                    info.scaling = [1.0, 0.0];
                    info.gzip = false;
                    let mut dims = grid.shape.to_vec();
                    dims.push(channels);
                    let layout = GradientLayout { header: header.template.clone(), dims };
                    npz.read(grid.shape, &labels_input, max_values).map(|(v, scan)| (v, scan, info, layout))
                }
            };
            let lab = lab.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (lab, pred)
        });
        let (class, (values, scan, pred_info, gradient_layout)) = (class?, prediction?);
        Ok(LoadedCase {
            case: Case {
                grid,
                geometry,
                labels: Labels::new(class, rule, ignore).named(names),
                prediction: Prediction { values, channels, scan },
            },
            inputs: Inputs { labels: labels_info, prediction: PredictionInfo { file: pred_info, channels, layout } },
            layout: gradient_layout,
        })
    }
}
