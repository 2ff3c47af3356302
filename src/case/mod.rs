//! A case in memory: a label map reduced to class indices and a prediction of C channels of f32
//! values (probabilities or logits), on one voxel grid, with where that grid lies in the world.
//! Where the case came from (file names, headers) is not part of it: files are read into a case by
//! [`crate::pipeline`]; arrays a program already holds become one with [`Case::from_arrays`],
//! without a copy when their memory layout allows.
//!
//! Memory layout: channel k of the prediction is the contiguous block `[k·N, (k+1)·N)` of its
//! values (N voxels), and the class indices follow the same voxel order. Within a block, voxel
//! (x, y, z) is at `x·sx + y·sy + z·sz` ([`Grid`]): x fastest for NIfTI files (Fortran order), z
//! fastest for C-ordered arrays (numpy's default). The math never depends on the voxel order; the
//! order of additions, and so the last bits of a sum, does.

pub mod buffer;
pub mod labels;
pub mod scan;

use ndarray::{ArrayView3, ArrayView4};

use crate::error::{Error, Input, Result};
pub use buffer::Buffer;
pub use labels::IGNORED;
use labels::{check_label_option, ClassMapper, LabelRule, LabelValue};
use scan::ValueScan;

/// Spatial shape `[X, Y, Z]` (a 2D image has `Z = 1`).
pub type Shape3 = [usize; 3];

/// Number of voxels of a spatial shape.
pub fn voxel_count(shape: Shape3) -> usize {
    shape[0] * shape[1] * shape[2]
}

/// A voxel grid and the order of its voxels in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// `[X, Y, Z]`.
    pub shape: Shape3,
    /// The axes from fastest to slowest in memory.
    pub order: [usize; 3],
}

impl Grid {
    /// x fastest, then y, then z: NIfTI's (Fortran) order.
    pub fn fortran(shape: Shape3) -> Grid {
        Grid { shape, order: [0, 1, 2] }
    }

    /// z fastest, then y, then x: C order (numpy's default).
    pub fn c_order(shape: Shape3) -> Grid {
        Grid { shape, order: [2, 1, 0] }
    }

    /// Number of voxels N.
    pub fn voxels(&self) -> usize {
        voxel_count(self.shape)
    }

    /// The distance in memory between neighbours along each axis.
    pub fn strides(&self) -> [usize; 3] {
        let mut s = [0; 3];
        let mut step = 1;
        for &a in &self.order {
            s[a] = step;
            step *= self.shape[a];
        }
        s
    }

    /// `[x, y, z]` of the voxel at position `index` in memory.
    pub fn coords(&self, index: usize) -> [usize; 3] {
        let mut c = [0; 3];
        let mut rest = index;
        for &a in &self.order {
            c[a] = rest % self.shape[a];
            rest /= self.shape[a];
        }
        c
    }
}

/// Where the voxel grid lies in the world.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
    /// Voxel size along x, y, z (usually millimetres).
    pub voxel_size: [f64; 3],
    /// Voxel-to-world affine, row major.
    pub affine: [[f64; 4]; 4],
}

impl Default for Geometry {
    /// 1 mm voxels at the origin.
    fn default() -> Self {
        let mut affine = [[0.0; 4]; 4];
        for (i, row) in affine.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        Geometry { voxel_size: [1.0; 3], affine }
    }
}

/// The ground truth reduced to class indices: `class[i]` is the channel whose one-hot target is 1
/// at voxel `i` (for a single-channel prediction, 1 = foreground, 0 = background), or
/// [`IGNORED`]; for regions, the code of the voxel's label value, with a target per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Labels<'a> {
    pub class: Buffer<'a, u8>,
    /// How label values became class indices.
    pub rule: LabelRule,
    /// The ignore label: its voxels hold [`IGNORED`].
    pub ignore: Option<i64>,
    /// For regions, channel k's target per voxel: 1 in the region, 0 outside, [`IGNORED`].
    targets: Vec<Vec<u8>>,
    /// A name per channel (class or region names, from an nnU-Net `dataset.json`), when known.
    pub names: Option<Vec<String>>,
}

impl<'a> Labels<'a> {
    /// The labels of classes `class` made by `rule` (with `ignore`): for regions, each channel's
    /// target is made here from the codes.
    pub fn new(class: Buffer<'a, u8>, rule: LabelRule, ignore: Option<i64>) -> Labels<'a> {
        let targets =
            match rule.regions() {
                Some(r) => (0..r.sets.len())
                    .map(|k| {
                        use rayon::prelude::*;
                        let table: [u8; 256] = std::array::from_fn(|c| {
                            if c as u8 == IGNORED {
                                IGNORED
                            } else {
                                u8::from(r.holds(k, c as u8))
                            }
                        });
                        let mut t = vec![0u8; class.len()];
                        t.par_chunks_mut(crate::parallel::CHUNK)
                            .zip(class.par_chunks(crate::parallel::CHUNK))
                            .for_each(|(t, c)| t.iter_mut().zip(c).for_each(|(t, &c)| *t = table[usize::from(c)]));
                        t
                    })
                    .collect(),
                None => Vec::new(),
            };
        Labels { class, rule, ignore, targets, names: None }
    }

    /// The labels with a name per channel.
    pub fn named(self, names: Option<Vec<String>>) -> Labels<'a> {
        Labels { names, ..self }
    }

    /// The name of channel `k`, when the channels are named.
    pub fn name_of(&self, k: usize) -> Option<&str> {
        labels::name_in(&self.names, k)
    }

    /// Channel `k`'s target per voxel and the value that marks its foreground there: the class
    /// indices and k (1 for a single channel), or for regions the channel's own 0/1 target and 1.
    /// A voxel of the ignore label holds [`IGNORED`] in every target.
    pub fn target(&self, k: usize) -> (&[u8], u8) {
        match &self.rule {
            LabelRule::Regions(_) => (&self.targets[k], 1),
            LabelRule::Channels(c) => (&self.class, labels::channel_class(*c, k)),
            LabelRule::Binary | LabelRule::Select(_) => (&self.class, labels::channel_class(1, k)),
        }
    }

    /// Whether some voxel may be ignored (an ignore label was given).
    pub fn ignores(&self) -> bool {
        self.ignore.is_some()
    }

    /// The label value whose voxels are channel `k`'s foreground (for a region, the label it
    /// stands for in a label map; see [`Labels::region`]).
    pub fn label_of(&self, k: usize) -> i64 {
        match &self.rule {
            LabelRule::Channels(_) => k as i64,
            LabelRule::Binary => 1,
            LabelRule::Select(label) => *label,
            LabelRule::Regions(r) => r.label_of(k),
        }
    }

    /// The label values of channel `k`'s region, for a region-based prediction.
    pub fn region(&self, k: usize) -> Option<&[i64]> {
        self.rule.regions().map(|r| &r.sets[k][..])
    }

    /// The label value K when a single-channel prediction is one class of a multi-label map.
    pub fn selected(&self) -> Option<i64> {
        match self.rule {
            LabelRule::Select(label) => Some(label),
            _ => None,
        }
    }
}

/// The prediction: C channel-major blocks of N values.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction<'a> {
    pub values: Buffer<'a, f32>,
    /// Number of channels C.
    pub channels: usize,
    /// What the values are (finite, within [0, 1]), measured when they arrived.
    pub scan: ValueScan,
}

impl Case<'_> {
    /// Keeps the memory of the prediction's values, when the case owns it, for the next volume this
    /// thread reads (see [`crate::memory::keep_spare`]): a run over many cases then faults its
    /// pages in once.
    pub fn recycle(self) {
        if let Buffer::Owned { buf, .. } = self.prediction.values {
            crate::memory::keep_spare(buf);
        }
    }
}

impl Prediction<'_> {
    /// The values of channel `k`.
    pub fn channel(&self, k: usize) -> &[f32] {
        let n = self.values.len() / self.channels;
        &self.values[k * n..(k + 1) * n]
    }
}

/// A labelled case in memory.
#[derive(Clone, Debug, PartialEq)]
pub struct Case<'a> {
    pub grid: Grid,
    pub geometry: Geometry,
    pub labels: Labels<'a>,
    pub prediction: Prediction<'a>,
}

impl<'a> Case<'a> {
    /// A case from its parts, in Fortran order at 1 mm (tests, synthetic data): `class` holds one
    /// class index per voxel (for one channel: 1 = foreground), `values` C channel-major blocks
    /// of N values.
    ///
    /// Panics if the lengths do not match the shape, or a class index names no channel (a
    /// programming error, not an input error).
    pub fn from_parts(shape: Shape3, class: Vec<u8>, channels: usize, values: Vec<f32>) -> Case<'static> {
        let n = voxel_count(shape);
        assert_eq!(class.len(), n, "one class index per voxel");
        assert_eq!(values.len(), n * channels, "C blocks of N values");
        let classes = if channels == 1 { 2 } else { channels };
        assert!(class.iter().all(|&c| usize::from(c) < classes), "class indices 0..{classes}");
        let rule = LabelRule::for_prediction(channels, None);
        let scan = ValueScan::of(&values);
        Case {
            grid: Grid::fortran(shape),
            geometry: Geometry::default(),
            labels: Labels::new(class.into(), rule, None),
            prediction: Prediction { values: values.into(), channels, scan },
        }
    }

    /// Voxels picked out of this case as a case of their own: `class` and `values` (C
    /// channel-major blocks) of voxels in a row, under this case's label rule and ignore label.
    pub fn gathered(&self, class: Vec<u8>, values: Vec<f32>) -> Case<'static> {
        let (n, channels) = (class.len(), self.prediction.channels);
        assert_eq!(values.len(), n * channels, "C blocks of N values");
        let scan = ValueScan::of(&values);
        Case {
            grid: Grid::fortran([n, 1, 1]),
            geometry: Geometry::default(),
            labels: Labels::new(class.into(), self.labels.rule.clone(), self.labels.ignore),
            prediction: Prediction { values: values.into(), channels, scan },
        }
    }

    /// A case from arrays: integer labels `(X, Y, Z)` and a prediction `(C, X, Y, Z)` with one
    /// channel per label value 0..C−1 (channel 0 = background), or one channel of foreground
    /// (labels 0/1, or label `K` with `label = Some(K)`).
    ///
    /// The prediction is used in place when each channel is one contiguous block in memory (a
    /// C-ordered array, or the Fortran-ordered `(X, Y, Z, C)` of a NIfTI volume seen as
    /// `(C, X, Y, Z)`); otherwise it is copied once. Labels are turned into class indices (a new
    /// array) in the prediction's voxel order. Label values are checked (whole numbers, in range)
    /// and the prediction's values measured (see [`ValueScan`]).
    pub fn from_arrays<L: LabelValue>(
        labels: ArrayView3<'_, L>,
        prediction: ArrayView4<'a, f32>,
        label: Option<i64>,
    ) -> Result<Case<'a>> {
        let (label_input, pred_input) = (Input::array("labels array"), Input::array("prediction array"));
        let dim = prediction.dim();
        let (channels, shape) = (dim.0, [dim.1, dim.2, dim.3]);
        let lshape: Shape3 = labels.dim().into();
        if lshape != shape {
            return Err(Error::ShapeMismatch {
                labels: label_input,
                pred: pred_input,
                labels_shape: format!("{lshape:?}"),
                pred_shape: format!("{shape:?} (from (C, X, Y, Z) = {:?})", [dim.0, dim.1, dim.2, dim.3]),
            });
        }
        if channels == 0 || voxel_count(shape) == 0 {
            return Err(Error::usage("the prediction array is empty; give at least one channel and one voxel"));
        }
        check_label_option(label, channels, &pred_input)?;
        let (grid, values) = match in_place(&prediction) {
            Some((grid, values)) => (grid, Buffer::Borrowed(values)),
            None => (Grid::c_order(shape), Buffer::from(prediction.iter().copied().collect::<Vec<_>>())),
        };
        let rule = LabelRule::for_prediction(channels, label);
        let mut mapper = ClassMapper::new(rule.clone(), None);
        let mut class = vec![0u8; grid.voxels()];
        let o = grid.order;
        let in_order = labels.permuted_axes([o[2], o[1], o[0]]);
        match in_order.as_slice() {
            Some(values) => mapper.map_all(0, values, &mut class),
            None => {
                for (i, (c, &v)) in class.iter_mut().zip(in_order.iter()).enumerate() {
                    *c = mapper.class_of(i, v.to_f64());
                }
            }
        }
        mapper.finish(&label_input, &grid)?;
        let scan = ValueScan::of(&values);
        Ok(Case {
            grid,
            geometry: Geometry::default(),
            labels: Labels::new(class.into(), rule, None),
            prediction: Prediction { values, channels, scan },
        })
    }

    /// The cases side by side along their first axis, as one case: the grid `(ΣX, Y, Z)` (C order),
    /// each class index and value copied once. Every sum over voxels of the result is the sum
    /// over the cases (the pooled sums of a mini-batch). None unless the cases have the same `Y`,
    /// `Z`, channels and label rule.
    pub fn side_by_side(cases: &[&Case]) -> Option<Case<'static>> {
        let first = cases.first()?;
        let [_, y, z] = first.grid.shape;
        let channels = first.prediction.channels;
        let same = |c: &&Case| {
            c.grid.shape[1..] == [y, z]
                && c.prediction.channels == channels
                && c.labels.rule == first.labels.rule
                && c.labels.ignore == first.labels.ignore
        };
        if !cases.iter().all(same) {
            return None;
        }
        let x: usize = cases.iter().map(|c| c.grid.shape[0]).sum();
        use ndarray::ShapeBuilder;
        fn logical<'d, T>(c: &Case, data: &'d [T]) -> ndarray::ArrayView3<'d, T> {
            let [sx, sy, sz] = c.grid.strides();
            ndarray::ArrayView3::from_shape(c.grid.shape.strides([sx, sy, sz]), data).expect("the grid's strides")
        }
        let mut class = Vec::with_capacity(x * y * z);
        for c in cases {
            class.extend(logical(c, &c.labels.class[..]).iter());
        }
        let mut values = Vec::with_capacity(channels * x * y * z);
        for k in 0..channels {
            for c in cases {
                values.extend(logical(c, c.prediction.channel(k)).iter());
            }
        }
        let scan = ValueScan::of(&values);
        Some(Case {
            grid: Grid::c_order([x, y, z]),
            geometry: first.geometry,
            labels: Labels::new(class.into(), first.labels.rule.clone(), first.labels.ignore)
                .named(first.labels.names.clone()),
            prediction: Prediction { values: values.into(), channels, scan },
        })
    }

    /// The case with its grid placed in the world by `geometry`.
    pub fn with_geometry(self, geometry: Geometry) -> Case<'a> {
        Case { geometry, ..self }
    }

    /// Number of voxels N.
    pub fn voxels(&self) -> usize {
        self.grid.voxels()
    }
}

/// The prediction's memory as channel-major blocks, and the voxel order within a block, when its
/// layout is one.
fn in_place<'a>(p: &ArrayView4<'a, f32>) -> Option<(Grid, &'a [f32])> {
    let dim = p.dim();
    let shape = [dim.1, dim.2, dim.3];
    let n = voxel_count(shape);
    let strides = p.strides();
    if strides.iter().any(|&s| s < 0) {
        return None;
    }
    // The spatial axes from fastest to slowest (axes of length 1 are anywhere).
    let mut order = [0usize, 1, 2];
    order.sort_by_key(|&a| (shape[a] > 1, strides[a + 1]));
    let grid = Grid { shape, order };
    let want = grid.strides();
    let spatial_ok = (0..3).all(|a| shape[a] == 1 || strides[a + 1] as usize == want[a]);
    let channel_ok = dim.0 == 1 || strides[0] as usize == n;
    if !(spatial_ok && channel_ok) {
        return None;
    }
    // The strides say the C·N values are one run in memory; ndarray hands it over as a slice.
    let whole = p.to_slice_memory_order()?;
    (whole.len() == dim.0 * n).then_some((grid, whole))
}
