//! Typed in-memory volumes: a label map reduced to class indices, a prediction held once as f32,
//! and the geometry needed to write results back in the prediction's own layout.
//!
//! Memory layout follows NIfTI (Fortran order): the linear index of voxel (x, y, z) is
//! `x + X*(y + Y*z)`, and channel `k` of a multi-channel prediction is the contiguous block
//! `[k*N, (k+1)*N)` with `N = X*Y*Z`. Every kernel walks these slices in memory order.

use serde::Serialize;

/// Spatial shape `[X, Y, Z]` (a 2D image has `Z = 1`).
pub type Shape3 = [usize; 3];

/// Number of voxels of a spatial shape.
pub fn voxel_count(shape: Shape3) -> usize {
    shape[0] * shape[1] * shape[2]
}

/// `(x, y, z)` of a linear voxel index in Fortran order.
pub fn voxel_coords(shape: Shape3, index: usize) -> [usize; 3] {
    let x = index % shape[0];
    let rest = index / shape[0];
    [x, rest % shape[1], rest / shape[1]]
}

/// How the channels of a prediction are stored in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelLayout {
    /// `(X,Y,Z)`: one foreground probability (binary case, or one class with `--label K`).
    Single,
    /// `(X,Y,Z,C)`: channels in NIfTI dim 4.
    Dim4,
    /// `(X,Y,Z,1,C)`: channels in NIfTI dim 5 (the NIfTI convention for vector data).
    Dim5,
}

/// The NIfTI-1 header of an input, kept byte for byte so that outputs can carry the same geometry
/// (affine, sform/qform codes, voxel size, units, description) with only the data fields changed.
#[derive(Clone, Debug)]
pub struct HeaderTemplate {
    /// The 348 header bytes as read from the file.
    pub bytes: Box<[u8; 348]>,
    /// Byte order of the header and the data.
    pub big_endian: bool,
}

/// What was read from one input file, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct InputInfo {
    /// The path as given on the command line.
    pub path: String,
    /// The dimensions stored in the header, `dim[1..=dim[0]]`.
    pub dims: Vec<usize>,
    /// NIfTI datatype name (`uint8`, `float32`, ...).
    pub datatype: &'static str,
    /// Voxel size in the file's spatial units (`pixdim[1..=3]`, usually millimetres).
    pub voxel_size: [f32; 3],
    /// Spatial unit code name from `xyzt_units` (`mm`, `micron`, `meter`, `unknown`).
    pub spatial_unit: &'static str,
    /// Voxel-to-world affine (sform if its code is set, else qform, else the voxel size), row major.
    pub affine: [[f64; 4]; 4],
    /// `scl_slope`, `scl_inter` as applied (`[1, 0]` when the file asks for no scaling).
    pub scaling: [f64; 2],
    /// Whether the file was gzip-compressed.
    pub gzip: bool,
}

/// Geometry of a volume: spatial grid plus the header to copy onto outputs.
#[derive(Clone, Debug)]
pub struct Geometry {
    /// Spatial shape `[X, Y, Z]`.
    pub shape: Shape3,
    /// The header as read, for writing outputs in the same space.
    pub header: HeaderTemplate,
    /// What the report says about this file.
    pub info: InputInfo,
}

/// A ground-truth label map reduced to class indices: `class[i]` is the channel whose one-hot
/// target is 1 at voxel `i` (for a single-channel prediction, 1 = foreground, 0 = background).
#[derive(Clone, Debug)]
pub struct LabelMap {
    /// One class index per voxel, Fortran order.
    pub class: Vec<u8>,
    /// Spatial grid and file information.
    pub geometry: Geometry,
    /// The label value of each class index (`label_of[k]` for channel `k`).
    pub label_of: Vec<i64>,
}

/// A prediction map: C channels of f32 values (probabilities or logits), channel-major.
#[derive(Clone, Debug)]
pub struct Prediction {
    /// `C * N` values; channel `k` is `data[k*N..(k+1)*N]`.
    pub data: Vec<f32>,
    /// Number of channels C.
    pub channels: usize,
    /// How the channels are laid out in the file (used to write the gradient back).
    pub layout: ChannelLayout,
    /// Spatial grid and file information.
    pub geometry: Geometry,
}

impl Prediction {
    /// Number of spatial voxels N.
    pub fn voxels(&self) -> usize {
        voxel_count(self.geometry.shape)
    }

    /// The values of channel `k`.
    pub fn channel(&self, k: usize) -> &[f32] {
        let n = self.voxels();
        &self.data[k * n..(k + 1) * n]
    }
}

/// A labelled case in memory, with the spatial grids already checked to agree.
#[derive(Clone, Debug)]
pub struct Case {
    pub labels: LabelMap,
    pub prediction: Prediction,
}

impl Case {
    /// A case built in memory (tests, synthetic data): `class` holds one class index per voxel
    /// (for one channel: 1 = foreground), `data` C channel-major blocks of N values. The geometry is
    /// taken from `header`; the file information is filled with neutral values.
    ///
    /// Panics if the lengths do not match the shape (a programming error, not an input error).
    pub fn from_parts(shape: Shape3, class: Vec<u8>, channels: usize, data: Vec<f32>, header: HeaderTemplate) -> Case {
        let n = voxel_count(shape);
        assert_eq!(class.len(), n, "one class index per voxel");
        assert_eq!(data.len(), n * channels, "C blocks of N values");
        let info = |dims: Vec<usize>, datatype| InputInfo {
            path: "<memory>".to_string(),
            dims,
            datatype,
            voxel_size: [1.0; 3],
            spatial_unit: "unknown",
            affine: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
            scaling: [1.0, 0.0],
            gzip: false,
        };
        let mut pdims = shape.to_vec();
        if channels > 1 {
            pdims.push(channels);
        }
        let layout = if channels > 1 { ChannelLayout::Dim4 } else { ChannelLayout::Single };
        let label_of = if channels == 1 { vec![1] } else { (0..channels as i64).collect() };
        Case {
            labels: LabelMap {
                class,
                geometry: Geometry { shape, header: header.clone(), info: info(shape.to_vec(), "uint8") },
                label_of,
            },
            prediction: Prediction {
                data,
                channels,
                layout,
                geometry: Geometry { shape, header, info: info(pdims, "float32") },
            },
        }
    }

    /// Number of spatial voxels N.
    pub fn voxels(&self) -> usize {
        self.prediction.voxels()
    }
}
