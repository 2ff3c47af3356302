//! A patch of the volume as a view: the runs of voxels it covers inside the volume (contiguous
//! along the axis that is fastest in memory), and how many of its voxels are padding. Its sums
//! are the sums over those runs plus the padding's: `n_pad` copies of the padding voxel's (a
//! voxel of label 0, see [`super`]).

use std::ops::Range;

use crate::case::{Case, Grid};
use crate::loss::sums::{probabilities, range_sums, ChannelSums, RangeSums};
use crate::loss::{CaseSums, GradientKernel, LossConfig};
use crate::parallel::with_buffer;

/// A patch placed on a grid.
#[derive(Clone, Debug)]
pub struct PatchView {
    /// Flat ranges of the voxels inside the volume, one per run.
    pub runs: Vec<Range<usize>>,
    /// Voxels inside the volume.
    pub inside: u64,
    /// Voxels outside it (padding).
    pub padding: u64,
}

impl PatchView {
    /// The patch of size `size` whose lower corner is `corner` on `grid`.
    pub fn new(grid: &Grid, corner: [i64; 3], size: [usize; 3]) -> PatchView {
        let span: [Range<usize>; 3] = std::array::from_fn(|d| {
            let lo = corner[d].clamp(0, grid.shape[d] as i64) as usize;
            let hi = (corner[d] + size[d] as i64).clamp(0, grid.shape[d] as i64) as usize;
            lo..hi.max(lo)
        });
        let total = size.iter().map(|&s| s as u64).product::<u64>();
        let inside = span.iter().map(|r| r.len() as u64).product::<u64>();
        let strides = grid.strides();
        let [a0, a1, a2] = grid.order;
        let mut runs = Vec::new();
        if inside > 0 {
            for k in span[a2].clone() {
                for j in span[a1].clone() {
                    let start = span[a0].start * strides[a0] + j * strides[a1] + k * strides[a2];
                    runs.push(start..start + span[a0].len());
                }
            }
        }
        PatchView { runs, inside, padding: total - inside }
    }
}

/// `n` copies of one voxel's sums.
fn times(s: &ChannelSums, n: u64) -> ChannelSums {
    let x = n as f64;
    ChannelSums {
        intersection: s.intersection * x,
        pred_sum: s.pred_sum * x,
        pred_sq_sum: s.pred_sq_sum * x,
        label_count: s.label_count * n,
        hard_tp: s.hard_tp * n,
        hard_pred: s.hard_pred * n,
    }
}

/// The sums of a patch: over its runs, then `padding` copies of the voxel `pad`'s (its label is
/// the padding label 0).
pub fn patch_sums(case: &Case, config: &LossConfig, view: &PatchView, pad: Option<usize>) -> CaseSums {
    let mut total =
        CaseSums { voxels: 0, channels: vec![ChannelSums::default(); config.channels], ..CaseSums::default() };
    let mut add = |part: RangeSums, n: u64| {
        for (t, p) in total.channels.iter_mut().zip(&part.channels) {
            t.add(&times(p, n));
        }
        total.voxels += part.voxels * n;
        total.ce_sum += part.ce.0 * n as f64;
        total.ce_norm += part.ce.1 * n as f64;
    };
    for r in &view.runs {
        add(range_sums(case, config, r.clone()), 1);
    }
    if view.padding > 0 {
        let i = pad.expect("a padding voxel whenever a patch needs padding");
        add(range_sums(case, config, i..i + 1), view.padding);
    }
    total
}

/// Per channel `(max |g|, min non-zero |g|)` of the gradient of `kernel` over a patch (its runs,
/// and the padding voxel when there is padding).
pub fn gradient_extremes(kernel: &GradientKernel, view: &PatchView, pad: Option<usize>) -> Vec<(f32, f32)> {
    let case = kernel.case();
    let c = case.prediction.channels;
    let act = kernel.config().spec.activation;
    let mut out = vec![(0f32, f32::INFINITY); c];
    let mut visit = |r: Range<usize>| {
        let len = r.len();
        with_buffer(c * len, |s: &mut [f64]| {
            with_buffer(c * len, |g: &mut [f32]| {
                probabilities(case, act, r.clone(), s);
                kernel.gradient(r.clone(), s, g);
                for (k, gk) in g.chunks_exact(len).enumerate() {
                    let (mx, mn) = magnitude_extremes(gk);
                    out[k] = (out[k].0.max(mx), out[k].1.min(mn));
                }
            })
        })
    };
    for r in &view.runs {
        visit(r.clone());
    }
    if view.padding > 0 {
        let i = pad.expect("a padding voxel whenever a patch needs padding");
        visit(i..i + 1);
    }
    out
}

/// `(max |v|, min non-zero |v|)` of `v` (+∞ for the second when every value is 0), in eight
/// lanes of compare-and-select that the compiler turns into vector instructions.
fn magnitude_extremes(v: &[f32]) -> (f32, f32) {
    const L: usize = 8;
    let (mut mx, mut mn) = ([0f32; L], [f32::INFINITY; L]);
    let mut blocks = v.chunks_exact(L);
    for b in &mut blocks {
        for l in 0..L {
            let a = b[l].abs();
            mx[l] = if a > mx[l] { a } else { mx[l] };
            let nz = if a > 0.0 { a } else { f32::INFINITY };
            mn[l] = if nz < mn[l] { nz } else { mn[l] };
        }
    }
    let mut out = (mx.iter().copied().fold(0f32, f32::max), mn.iter().copied().fold(f32::INFINITY, f32::min));
    for &x in blocks.remainder() {
        let a = x.abs();
        out.0 = out.0.max(a);
        if a > 0.0 {
            out.1 = out.1.min(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_extremes_skip_zeros_and_read_the_tail() {
        let v = [0.0, -3.0, 2.0, 0.0, 5e-9, -1.0, 0.5, 4.0, 0.0, -7.5, 1e-12];
        assert_eq!(magnitude_extremes(&v), (7.5, 1e-12));
        assert_eq!(magnitude_extremes(&[0.0; 9]), (0.0, f32::INFINITY));
        assert_eq!(magnitude_extremes(&[]), (0.0, f32::INFINITY));
    }

    #[test]
    fn a_patch_sticking_out_has_its_inside_runs_and_the_rest_as_padding() {
        let grid = Grid::fortran([4, 3, 2]);
        let v = PatchView::new(&grid, [2, -1, 0], [3, 2, 2]);
        // inside: x 2..4, y 0..1, z 0..2 → 2 runs of 2 voxels
        assert_eq!(v.runs, vec![2..4, 14..16]);
        assert_eq!((v.inside, v.padding), (4, 8));
        let c = PatchView::new(&Grid::c_order([4, 3, 2]), [1, 1, 0], [2, 2, 2]);
        // C order: z fastest (stride 1), y stride 2, x stride 6
        assert_eq!(c.runs, vec![8..10, 10..12, 14..16, 16..18]);
        assert_eq!(c.padding, 0);
    }
}
