//! What the report says about its inputs: for a file, what its header said; for an array, its
//! shape and type.

use serde::Serialize;

use crate::names::named_enum;

named_enum! {
    /// Where the channels of a prediction are.
    pub enum ChannelLayout: "channel layout" {
        /// `(X,Y,Z)`: one foreground channel (binary case, or one class of a multi-label map).
        Single = "single",
        /// `(X,Y,Z,C)`: channels in NIfTI dim 4.
        Dim4 = "dim4",
        /// `(X,Y,Z,1,C)`: channels in NIfTI dim 5 (the NIfTI convention for vector data).
        Dim5 = "dim5",
        /// `(C,X,Y,Z)`: an array with the channel axis first.
        ChannelsFirst = "channels_first",
    }
}

/// One input.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct InputInfo {
    /// The path as given (None for an array).
    pub path: Option<String>,
    /// The dimensions: `dim[1..=dim[0]]` of a NIfTI header, the shape of an array.
    pub dims: Vec<usize>,
    /// Datatype name (`uint8`, `float32`, ...).
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

impl InputInfo {
    /// The path, or what the input is when it has none.
    pub fn name(&self) -> &str {
        self.path.as_deref().unwrap_or("(array)")
    }
}

/// The prediction, with its channel interpretation.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct PredictionInfo {
    #[serde(flatten)]
    pub file: InputInfo,
    /// Number of channels C.
    pub channels: usize,
    /// Where the channels are.
    pub layout: ChannelLayout,
}

impl PredictionInfo {
    /// Whether the values are stored as integers (a segmentation rather than probabilities?).
    pub fn holds_integers(&self) -> bool {
        self.file.datatype.starts_with("int") || self.file.datatype.starts_with("uint")
    }
}

/// Both inputs.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Inputs {
    pub labels: InputInfo,
    pub prediction: PredictionInfo,
}

impl Inputs {
    /// Inputs given as arrays: labels of `dims` and type `label_type`, and a prediction
    /// `(C, X, Y, Z)` of float32 with `channels` channels, on a grid placed in the world by
    /// `geometry`.
    pub fn arrays(
        label_type: &'static str,
        dims: [usize; 3],
        channels: usize,
        geometry: &crate::case::Geometry,
    ) -> Inputs {
        let info = |dims: Vec<usize>, datatype| InputInfo {
            path: None,
            dims,
            datatype,
            voxel_size: geometry.voxel_size.map(|v| v as f32),
            spatial_unit: "unknown",
            affine: geometry.affine,
            scaling: [1.0, 0.0],
            gzip: false,
        };
        Inputs {
            labels: info(dims.to_vec(), label_type),
            prediction: PredictionInfo {
                file: info(vec![channels, dims[0], dims[1], dims[2]], "float32"),
                channels,
                layout: ChannelLayout::ChannelsFirst,
            },
        }
    }
}
