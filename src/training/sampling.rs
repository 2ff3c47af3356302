//! Where the patches of each mini-batch lie: nnU-Net v2's sampling (`nnUNetDataLoader3D`,
//! `nnUNetDataLoaderBase.get_bbox`), with a seeded generator of our own so that a seed gives the
//! same patches on every machine and in every version.
//!
//! For a volume of shape D and a patch of size P, per axis:
//!
//! ```text
//!   pad = max(P − D, 0),  lo = floor(−pad / 2),  hi = D + floor(pad / 2) + pad mod 2 − P
//! ```
//!
//! - A uniform patch has its lower corner uniform in [lo, hi] on each axis.
//! - The last B − round_half_even(B·(1 − F)) patches of each mini-batch of B are foreground
//!   patches (nnU-Net's `_oversample_last_XX_percent`): a class is drawn uniformly among the
//!   foreground classes present, then a voxel v uniformly among that class's sampled locations,
//!   and the lower corner is max(lo, v − ⌊P/2⌋) — not bounded above, so the patch may stick out of
//!   the far side of the volume. With no foreground class present the patch is uniform.
//! - nnU-Net samples the locations of each class once, at preprocessing: max(10 000,
//!   ⌈1 % of its voxels⌉) of them (all when there are fewer), uniformly without replacement. So
//!   does this (reservoir sampling, in memory order).

use super::Regime;
use crate::case::{Labels, IGNORED};

/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast, well-mixed 64-bit generator whose
/// sequence is fixed by its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n ≥ 1), without bias: draws falling in the incomplete last block of n are
    /// drawn again.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "a range of at least one value");
        let limit = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < limit {
                return x % n;
            }
        }
    }

    /// Uniform in lo..=hi.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }
}

/// The locations a foreground patch is centred on: per foreground class (class index ≥ 1) present
/// in the labels, a uniform sample of its voxels' flat indices.
#[derive(Clone, Debug, Default)]
pub struct ClassLocations {
    /// `(class, sampled flat indices)`, classes in increasing order.
    pub classes: Vec<(u8, Vec<usize>)>,
    /// With an ignore label: a sample of the annotated voxels (every voxel not of the ignore
    /// label), on which nnU-Net centres the patches it does not centre on a class
    /// (`get_bbox`: `not force_fg and self.has_ignore`). Empty otherwise.
    pub annotated: Vec<usize>,
}

impl ClassLocations {
    /// The locations of `labels`: per class (per region for a region-based prediction), and the
    /// annotated voxels when some may be ignored.
    pub fn of(labels: &Labels, rng: &mut Rng) -> ClassLocations {
        let mut found = match labels.rule.regions() {
            Some(_) => ClassLocations::of_regions(labels, rng),
            None => ClassLocations::sample(&labels.class, rng),
        };
        if labels.ignores() {
            let annotated: Vec<u8> = labels.class.iter().map(|&c| u8::from(c != IGNORED)).collect();
            found.annotated = ClassLocations::sample(&annotated, rng).classes.pop().map_or_else(Vec::new, |(_, at)| at);
        }
        found
    }
}

/// nnU-Net's number of locations kept for a class of `count` voxels.
pub fn kept(count: u64) -> u64 {
    count.min(10_000u64.max(count.div_ceil(100)))
}

impl ClassLocations {
    /// Samples the locations of every foreground class of `class` (one class index per voxel).
    pub fn sample(class: &[u8], rng: &mut Rng) -> ClassLocations {
        let mut counts = [0u64; 256];
        for &c in class {
            counts[usize::from(c)] += 1;
        }
        let mut slots: Vec<Vec<usize>> = vec![Vec::new(); 256];
        let mut seen = [0u64; 256];
        let keep: Vec<u64> = counts.iter().map(|&n| kept(n)).collect();
        for (i, &c) in class.iter().enumerate() {
            // the background and the ignore label are not foreground classes (nnU-Net samples
            // the foreground labels only)
            if c == 0 || c == IGNORED {
                continue;
            }
            let c = usize::from(c);
            let k = keep[c];
            if seen[c] < k {
                slots[c].push(i);
            } else {
                let j = rng.below(seen[c] + 1);
                if j < k {
                    slots[c][j as usize] = i;
                }
            }
            seen[c] += 1;
        }
        ClassLocations {
            classes: slots.into_iter().enumerate().filter(|(_, v)| !v.is_empty()).map(|(c, v)| (c as u8, v)).collect(),
            annotated: Vec::new(),
        }
    }
}

impl ClassLocations {
    /// The locations of the regions of `labels` (nnU-Net's region-based sampling: per region,
    /// the voxels whose label lies in it): region k in place of class k.
    pub fn of_regions(labels: &Labels, rng: &mut Rng) -> ClassLocations {
        let channels = labels.rule.regions().map_or(0, |r| r.sets.len());
        let mut classes = Vec::new();
        for k in 0..channels {
            let (target, _) = labels.target(k);
            if let Some((_, at)) = ClassLocations::sample(target, rng).classes.pop() {
                classes.push((k as u8, at));
            }
        }
        ClassLocations { classes, annotated: Vec::new() }
    }
}

/// One patch: its lower corner (may be negative) on the volume's axes, and whether it was centred
/// on a foreground voxel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchPlace {
    pub corner: [i64; 3],
    pub foreground: bool,
}

impl PatchPlace {
    /// Whether a patch of `size` here sticks out of a volume of `shape` (and needs padding).
    pub fn sticks_out(&self, shape: [usize; 3], size: [usize; 3]) -> bool {
        (0..3).any(|d| self.corner[d] < 0 || self.corner[d] + size[d] as i64 > shape[d] as i64)
    }
}

/// The bounds [lo, hi] of a uniform patch's lower corner on each axis.
pub fn corner_bounds(shape: [usize; 3], patch: [usize; 3]) -> [(i64, i64); 3] {
    std::array::from_fn(|d| {
        let (n, p) = (shape[d] as i64, patch[d] as i64);
        let pad = (p - n).max(0);
        let lo = (-pad).div_euclid(2);
        let hi = n + pad / 2 + pad % 2 - p;
        (lo, hi)
    })
}

/// How many of a mini-batch's `batch` patches are foreground patches for a share `share`.
pub fn foreground_patches(batch: usize, share: f64) -> usize {
    let uniform = (batch as f64 * (1.0 - share)).round_ties_even() as usize;
    batch - uniform.min(batch)
}

/// Draws the patches of `regime`'s mini-batches on a volume of `shape`, in order (mini-batch by
/// mini-batch, patch by patch). `coords(i)` gives the coordinates of flat index i.
pub fn draw(
    shape: [usize; 3],
    regime: &Regime,
    locations: &ClassLocations,
    coords: impl Fn(usize) -> [usize; 3],
    rng: &mut Rng,
) -> Vec<PatchPlace> {
    let (patch, batches, batch, share) = (regime.patch_size, regime.batches, regime.batch_size, regime.fg_oversample);
    let bounds = corner_bounds(shape, patch);
    let first_fg = batch - foreground_patches(batch, share);
    let mut out = Vec::with_capacity(batches * batch);
    for _ in 0..batches {
        for j in 0..batch {
            let force = j >= first_fg && !locations.classes.is_empty();
            let place = if force {
                let (_, voxels) = &locations.classes[rng.below(locations.classes.len() as u64) as usize];
                let v = coords(voxels[rng.below(voxels.len() as u64) as usize]);
                PatchPlace {
                    corner: std::array::from_fn(|d| bounds[d].0.max(v[d] as i64 - (patch[d] / 2) as i64)),
                    foreground: true,
                }
            } else if !locations.annotated.is_empty() {
                // with an ignore label, centred on an annotated voxel (nnU-Net's get_bbox)
                let v = coords(locations.annotated[rng.below(locations.annotated.len() as u64) as usize]);
                PatchPlace {
                    corner: std::array::from_fn(|d| bounds[d].0.max(v[d] as i64 - (patch[d] / 2) as i64)),
                    foreground: false,
                }
            } else {
                PatchPlace { corner: std::array::from_fn(|d| rng.between(bounds[d].0, bounds[d].1)), foreground: false }
            };
            out.push(place);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_nnunet_get_bbox() {
        // a patch that fits: corners 0..=D−P; one larger than the volume: centred, the odd voxel
        // of padding on the far side (lo = floor(−3/2) = −2, hi = 5 + 1 + 1 − 8 = −1)
        assert_eq!(corner_bounds([10, 5, 8], [4, 8, 8]), [(0, 6), (-2, -1), (0, 0)]);
    }

    #[test]
    fn the_last_patches_of_a_batch_are_foreground_patches_as_in_nnunet() {
        // round(B·(1 − 0.33)) uniform patches: B = 2 → 1, B = 1 → 1 (none forced), B = 4 → 3
        assert_eq!([1, 2, 4, 12].map(|b| foreground_patches(b, 0.33)), [0, 1, 1, 4]);
        assert_eq!(foreground_patches(2, 1.0), 2);
        assert_eq!(foreground_patches(2, 0.0), 0);
        // ties to even as Python's round: 5·0.5 = 2.5 → 2 uniform
        assert_eq!(foreground_patches(5, 0.5), 3);
    }

    #[test]
    fn below_is_uniform_and_reproducible() {
        let mut a = Rng::new(7);
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[a.below(3) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (9_500..10_500).contains(&c)), "{counts:?}");
        let (mut x, mut y) = (Rng::new(42), Rng::new(42));
        assert!((0..100).all(|_| x.next_u64() == y.next_u64()));
    }

    #[test]
    fn locations_keep_at_least_ten_thousand_or_one_percent() {
        assert_eq!([5, 10_000, 20_000, 2_000_000].map(kept), [5, 10_000, 10_000, 20_000]);
        let class: Vec<u8> = (0..30_000).map(|i| if i % 2 == 0 { 1 } else { 2 * u8::from(i % 3 == 0) }).collect();
        let l = ClassLocations::sample(&class, &mut Rng::new(1));
        assert_eq!(l.classes.len(), 2);
        assert_eq!(l.classes[0].1.len(), 10_000);
        assert!(l.classes[0].1.iter().all(|&i| class[i] == 1));
        assert!(l.classes[1].1.iter().all(|&i| class[i] == 2));
    }
}
