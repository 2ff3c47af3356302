//! Three orthogonal planes of a channel: its ground truth, its probability, and its gradient, as
//! pictures in the orientation of [`super::orientation`].
//!
//! The planes pass through a centre: the channel's foreground centroid (the mean voxel position of
//! its foreground, rounded), the voxel the user names, or — for a channel without foreground —
//! the volume's centre. A plane's voxels are gathered into a small case of their own (every
//! channel, for a softmax) and its gradient evaluated there with the coefficients of the whole
//! volume's loss: the same values the whole volume's gradient has on those voxels.

use rayon::prelude::*;
use serde::Serialize;

use super::orientation::{Orientation, PlaneLayout, View};
use crate::case::{Case, Labels, IGNORED};
use crate::loss::sums::probabilities;
use crate::loss::{Evaluation, GradientKernel};

/// Where the planes of a channel cross.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CentreSource {
    /// The channel's foreground centroid.
    ForegroundCentroid,
    /// Given by the user ([`super::ViewRequest::slice`]), at least in part; the other coordinates are
    /// the centroid's.
    Given,
    /// The channel has no foreground voxel: the volume's centre.
    VolumeCentre,
}

impl CentreSource {
    /// How a reader is told where the planes are.
    pub fn describe(self) -> &'static str {
        match self {
            CentreSource::ForegroundCentroid => "through the foreground centroid",
            CentreSource::Given => "at the voxel given",
            CentreSource::VolumeCentre => "through the volume centre (no foreground voxel)",
        }
    }
}

/// One plane as a picture: values row-major from the top-left, `width × height`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Plane {
    pub layout: PlaneLayout,
    /// The plane's index along the voxel axis normal to it.
    pub index: usize,
    pub width: usize,
    pub height: usize,
    /// Millimetres per picture column and row (the voxel sizes along those axes).
    pub pixel_mm: [f64; 2],
    /// Ground truth of the channel: 1 on its foreground, 0 on its background, 2 on a voxel of
    /// the ignore label.
    #[serde(skip)]
    pub truth: Vec<u8>,
    /// The channel's probability (after the activation) in 255ths, rounded: what a grey level
    /// shows, in a quarter of the memory.
    #[serde(skip)]
    pub probability: Vec<u8>,
    /// The gradient with respect to the file's values.
    #[serde(skip)]
    pub gradient: Vec<f32>,
    /// With an activation: dL/ds of the Dice-type part, with respect to the probability.
    #[serde(skip)]
    pub probability_gradient: Option<Vec<f32>>,
}

/// The planes of one channel.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ChannelSlices {
    /// The voxel `[x, y, z]` the planes pass through.
    pub centre: [usize; 3],
    pub source: CentreSource,
    /// Which of x, y, z were given (the others are the centroid's, or the volume centre's).
    pub given: [bool; 3],
    /// Whether the channel has a foreground voxel at all.
    pub has_foreground: bool,
    pub planes: Vec<Plane>,
}

/// Per class index, the number of voxels and the sums of their coordinates.
pub struct Centroids {
    count: Vec<u64>,
    sum: Vec<[u64; 3]>,
}

impl Centroids {
    /// Counts every voxel's class (one pass over the labels, a run of equal classes along the
    /// fastest axis at a time; integer sums, so the order of the rows does not matter).
    pub fn of(case: &Case) -> Centroids {
        let grid = case.grid;
        let class = &case.labels.class;
        let [fast, mid, slow] = grid.order;
        let (nf, nm) = (grid.shape[fast], grid.shape[mid]);
        let empty = || Centroids { count: vec![0; 256], sum: vec![[0; 3]; 256] };
        let parts: Vec<Centroids> = class
            .par_chunks(nf * nm)
            .enumerate()
            .fold(empty, |mut acc, (z, plane)| {
                for (y, row) in plane.chunks(nf).enumerate() {
                    let mut x0 = 0;
                    while x0 < row.len() {
                        let c = row[x0];
                        let run = row[x0..].iter().take_while(|&&v| v == c).count();
                        let (i, n) = (usize::from(c), run as u64);
                        acc.count[i] += n;
                        // Σ x over x0..x0+run, and the other coordinates times the run
                        acc.sum[i][fast] += n * x0 as u64 + n * (n - 1) / 2;
                        acc.sum[i][mid] += n * y as u64;
                        acc.sum[i][slow] += n * z as u64;
                        x0 += run;
                    }
                }
                acc
            })
            .collect();
        let mut all = empty();
        for p in parts {
            for i in 0..256 {
                all.count[i] += p.count[i];
                for a in 0..3 {
                    all.sum[i][a] += p.sum[i][a];
                }
            }
        }
        all
    }

    /// The rounded mean position of channel `k`'s foreground voxels under `labels` (None without
    /// any): the voxels of its class, or for a region those of every label in it.
    pub fn centroid(&self, labels: &Labels, k: usize) -> Option<[usize; 3]> {
        let classes: Vec<usize> = match labels.rule.regions() {
            Some(r) => (0..=u8::MAX).filter(|&c| r.holds(k, c)).map(usize::from).collect(),
            None => vec![usize::from(labels.target(k).1)],
        };
        let n: u64 = classes.iter().map(|&i| self.count[i]).sum();
        (n > 0).then(|| {
            std::array::from_fn(|a| {
                let sum: u64 = classes.iter().map(|&i| self.sum[i][a]).sum();
                (sum as f64 / n as f64).round() as usize
            })
        })
    }
}

/// The centre of channel `k`'s planes: the given coordinates (voxel indices, already checked
/// against the shape), the others from the foreground centroid or the volume's centre.
pub fn centre(case: &Case, centroids: &Centroids, k: usize, given: [Option<usize>; 3]) -> ([usize; 3], CentreSource) {
    let shape = case.grid.shape;
    let (base, source) = match centroids.centroid(&case.labels, k) {
        Some(c) => (c, CentreSource::ForegroundCentroid),
        None => (std::array::from_fn(|a| shape[a] / 2), CentreSource::VolumeCentre),
    };
    let c = std::array::from_fn(|a| given[a].unwrap_or(base[a]));
    let source = if given.iter().any(Option::is_some) { CentreSource::Given } else { source };
    (c, source)
}

/// The three planes of channel `k` through `centre`.
pub fn planes(case: &Case, eval: &Evaluation, k: usize, centre: [usize; 3], with_probability: bool) -> Vec<Plane> {
    let orientation = Orientation::of_affine(&case.geometry.affine);
    View::ALL.par_iter().map(|&v| plane(case, eval, k, centre, orientation.layout(v), with_probability)).collect()
}

fn plane(
    case: &Case,
    eval: &Evaluation,
    k: usize,
    centre: [usize; 3],
    layout: PlaneLayout,
    with_probability: bool,
) -> Plane {
    let shape = case.grid.shape;
    let (width, height) = layout.size(shape);
    let n = width * height;
    let strides = case.grid.strides();
    let c = case.prediction.channels;
    let mut class = Vec::with_capacity(n);
    let mut index = Vec::with_capacity(n);
    for row in 0..height {
        for col in 0..width {
            let v = layout.voxel(shape, centre, col, row);
            let i = v[0] * strides[0] + v[1] * strides[1] + v[2] * strides[2];
            index.push(i);
            class.push(case.labels.class[i]);
        }
    }
    let mut values = Vec::with_capacity(n * c);
    for ch in 0..c {
        let src = case.prediction.channel(ch);
        values.extend(index.iter().map(|&i| src[i]));
    }
    let mini = case.gathered(class, values);
    let kernel = GradientKernel::new(&mini, eval);
    let mut gradient = vec![0f32; n];
    kernel.fill(k * n, &mut gradient);
    let act = eval.config.spec.activation;
    let mut s = vec![0f64; n * c];
    probabilities(&mini, act, 0..n, &mut s);
    let sk = &s[k * n..(k + 1) * n];
    let (target, fg) = mini.labels.target(k);
    // 1 on the channel's foreground, 0 on its background, 2 on a voxel of the ignore label
    let truth: Vec<u8> = target.iter().map(|&cl| if cl == IGNORED { 2 } else { u8::from(cl == fg) }).collect();
    // dL/ds of a voxel of the ignore label is 0, as its gradient is
    let probability_gradient = with_probability.then(|| {
        sk.iter()
            .zip(&truth)
            .map(|(&p, &t)| if t == 2 { 0.0 } else { kernel.probability_gradient(k, t == 1, p) as f32 })
            .collect()
    });
    let spacing = case.geometry.voxel_size;
    Plane {
        layout,
        index: centre[layout.normal],
        width,
        height,
        pixel_mm: [spacing[layout.horizontal], spacing[layout.vertical]],
        truth,
        probability: sk.iter().map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8).collect(),
        gradient,
        probability_gradient,
    }
}
