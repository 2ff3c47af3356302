//! The per-chunk loops of the reduction pass: the sums of one channel, and the argmax counts.
//!
//! The f64 sums are kept in [`LANES`] partial sums (lane = position in the chunk modulo `LANES`),
//! added pairwise at the end, so that the additions do not wait on each other; the order depends
//! only on the position in the chunk. For float32 values as stored and for activated f64
//! probabilities the sums and the argmax counts have an AVX2 build written with intrinsics (one
//! routine for both types, through `avx2::Value`), used when the processor has AVX2: the same
//! IEEE operations on the same lanes (products rounded before they are added — no fused
//! multiply-add), so that its results are bit-identical to the portable loop's (tests check it).

use super::Avx2;
use super::{fold_lanes, LANES};

/// Sums over the voxels of one channel.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ChannelSums {
    /// I = Σ s·g.
    pub intersection: f64,
    /// S = Σ s.
    pub pred_sum: f64,
    /// Q = Σ s².
    pub pred_sq_sum: f64,
    /// G = Σ g: the number of foreground voxels.
    pub label_count: u64,
    /// Voxels predicted as this class (argmax, or s ≥ 0.5) that are foreground.
    pub hard_tp: u64,
    /// Voxels predicted as this class.
    pub hard_pred: u64,
}

impl ChannelSums {
    /// Adds another's sums (pooling over cases).
    pub fn add(&mut self, o: &ChannelSums) {
        self.intersection += o.intersection;
        self.pred_sum += o.pred_sum;
        self.pred_sq_sum += o.pred_sq_sum;
        self.label_count += o.label_count;
        self.hard_tp += o.hard_tp;
        self.hard_pred += o.hard_pred;
    }

    /// Hard Dice 2·TP / (P + G); 1 when the class is absent from both.
    pub fn hard_dice(&self) -> f64 {
        let denom = self.hard_pred + self.label_count;
        if denom == 0 {
            1.0
        } else {
            2.0 * self.hard_tp as f64 / denom as f64
        }
    }
}

/// Sums of one channel's probabilities `p` against the voxels' classes: S, Q, I in f64 lanes;
/// G, and the hard counts at the threshold s ≥ 0.5 (`hard_pred`, `hard_tp`).
#[inline(always)]
fn channel_sums<T: Copy + Into<f64>>(fg: u8, p: &[T], class: &[u8]) -> ChannelSums {
    let mut acc = ChannelLanes::default();
    acc.add_from(0, fg, p, class);
    acc.finish()
}

/// Values the reduction pass reads: float32 as stored, or activated probabilities in f64.
#[cfg(target_arch = "x86_64")]
pub trait Reduce: Copy + Into<f64> + PartialOrd + avx2::Value {}
/// Values the reduction pass reads: float32 as stored, or activated probabilities in f64.
#[cfg(not(target_arch = "x86_64"))]
pub trait Reduce: Copy + Into<f64> + PartialOrd {}
impl Reduce for f32 {}
impl Reduce for f64 {}

/// The sums of one channel (`channel_sums`). Without `HARD` the hard counts are left at 0 (the
/// argmax gives them).
pub fn sums<T: Reduce, const HARD: bool>(fg: u8, p: &[T], class: &[u8]) -> ChannelSums {
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2::get() {
        return avx2::channel_sums::<T, HARD>(t, fg, p, class);
    }
    without_hard::<HARD>(channel_sums(fg, p, class))
}

/// Adds the argmax prediction of each voxel to the hard counts (`argmax_counts`).
///
/// Panics unless every channel holds a value for each voxel of `class`.
pub fn argmax<T: Reduce>(sums: &mut [ChannelSums], channels: &[&[T]], class: &[u8]) {
    assert!(
        channels.iter().all(|c| c.len() >= class.len()) && sums.len() >= channels.len(),
        "argmax: every channel needs a value for each voxel, and every channel its sums"
    );
    #[cfg(target_arch = "x86_64")]
    if let Some(t) = Avx2::get() {
        return avx2::argmax_counts(t, sums, channels, class);
    }
    argmax_counts(sums, channels, class)
}

/// The sums with the hard counts set to 0 unless `HARD`.
fn without_hard<const HARD: bool>(mut s: ChannelSums) -> ChannelSums {
    if !HARD {
        (s.hard_pred, s.hard_tp) = (0, 0);
    }
    s
}

/// Partial sums of one channel.
#[derive(Default)]
struct ChannelLanes {
    s: [f64; LANES],
    q: [f64; LANES],
    i: [f64; LANES],
    g: u64,
    hard_pred: u64,
    hard_tp: u64,
}

impl ChannelLanes {
    /// Adds the values `p` (with their classes), the first of which is at position `first` of
    /// the chunk (a multiple of `LANES`).
    #[inline(always)]
    fn add_from<T: Copy + Into<f64>>(&mut self, first: usize, fg: u8, p: &[T], class: &[u8]) {
        debug_assert_eq!(first % LANES, 0);
        let n = p.len().min(class.len());
        let (pb, cb) = (p[..n].chunks_exact(LANES), class[..n].chunks_exact(LANES));
        let (p_rest, c_rest) = (pb.remainder(), cb.remainder());
        // Per-lane counts in 32 bits: each lane counts at most n / LANES values (a chunk's worth).
        assert!(n / LANES < u32::MAX as usize, "a block of at most 2^32 values per lane");
        let (mut g, mut hp, mut tp) = ([0u32; LANES], [0u32; LANES], [0u32; LANES]);
        let mut add = |l: usize, v: T, c: u8, s: &mut Self| {
            let (v, f): (f64, bool) = (v.into(), c == fg);
            s.s[l] += v;
            s.q[l] += v * v;
            s.i[l] += if f { v } else { 0.0 };
            let h = v >= 0.5;
            g[l] += u32::from(f);
            hp[l] += u32::from(h);
            tp[l] += u32::from(h & f);
        };
        for (vs, cs) in pb.zip(cb) {
            for l in 0..LANES {
                add(l, vs[l], cs[l], self);
            }
        }
        for (l, (&v, &c)) in p_rest.iter().zip(c_rest).enumerate() {
            add(l, v, c, self);
        }
        let total = |x: [u32; LANES]| x.iter().map(|&c| u64::from(c)).sum::<u64>();
        self.g += total(g);
        self.hard_pred += total(hp);
        self.hard_tp += total(tp);
    }

    fn finish(self) -> ChannelSums {
        ChannelSums {
            intersection: fold_lanes(self.i),
            pred_sum: fold_lanes(self.s),
            pred_sq_sum: fold_lanes(self.q),
            label_count: self.g,
            hard_tp: self.hard_tp,
            hard_pred: self.hard_pred,
        }
    }
}

/// Adds the argmax prediction of each voxel (the first channel among equals) to the hard counts;
/// `channels[k]` holds channel k's values of the voxels of `class`.
#[inline(always)]
fn argmax_counts<T: Copy + PartialOrd>(sums: &mut [ChannelSums], channels: &[&[T]], class: &[u8]) {
    for (j, &cl) in class.iter().enumerate() {
        let mut best = 0;
        for k in 1..channels.len() {
            if channels[k][j] > channels[best][j] {
                best = k;
            }
        }
        sums[best].hard_pred += 1;
        sums[best].hard_tp += u64::from(cl == best as u8);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> (Vec<f32>, Vec<u8>) {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u32
        };
        // Multiples of 1/1000 in [0, 1], 0.5 among them (the threshold itself).
        let p = (0..n).map(|_| (next() % 1001) as f32 / 1000.0).collect();
        let c = (0..n).map(|_| (next() % 3) as u8).collect();
        (p, c)
    }

    /// The AVX2 build's sums when the processor has AVX2 (whatever the switch), else the
    /// portable ones.
    fn avx2_sums<T: Reduce, const HARD: bool>(fg: u8, p: &[T], class: &[u8]) -> ChannelSums {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = Avx2::detect() {
            return avx2::channel_sums::<T, HARD>(t, fg, p, class);
        }
        without_hard::<HARD>(channel_sums(fg, p, class))
    }

    /// The AVX2 build's argmax counts when the processor has AVX2, else the portable ones.
    fn avx2_argmax<T: Reduce>(sums: &mut [ChannelSums], channels: &[&[T]], class: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(t) = Avx2::detect() {
            return avx2::argmax_counts(t, sums, channels, class);
        }
        argmax_counts(sums, channels, class)
    }

    fn by_hand(fg: u8, p: &[f32], class: &[u8]) -> ChannelSums {
        let mut s = ChannelSums::default();
        for (&v, &c) in p.iter().zip(class) {
            let v = v as f64;
            s.pred_sum += v;
            s.pred_sq_sum += v * v;
            if c == fg {
                s.intersection += v;
                s.label_count += 1;
            }
            if v >= 0.5 {
                s.hard_pred += 1;
                s.hard_tp += u64::from(c == fg);
            }
        }
        s
    }

    #[test]
    fn avx2_sums_equal_the_portable_loop_bit_for_bit_and_a_plain_sum_closely() {
        for n in [0, 1, 7, 8, 9, 63, 1000, 16384] {
            let (p, class) = data(n, n as u64 + 1);
            let fast = avx2_sums::<f32, true>(1, &p, &class);
            assert_eq!(sums::<f32, true>(1, &p, &class), fast, "the dispatched build, n = {n}");
            assert_eq!(fast, channel_sums(1, &p, &class), "n = {n}");
            let soft = ChannelSums { hard_pred: 0, hard_tp: 0, ..fast };
            assert_eq!(avx2_sums::<f32, false>(1, &p, &class), soft, "without hard counts, n = {n}");
            // The same values as f64 (activated probabilities), every other one nudged off the
            // float32 grid (0.5 among those kept: the threshold itself).
            let wide: Vec<f64> =
                p.iter().enumerate().map(|(i, &v)| f64::from(v) * if i % 2 == 0 { 1.0 } else { 1.0 - 1e-12 }).collect();
            let (hard, all) = (avx2_sums::<f64, true>(1, &wide, &class), channel_sums(1, &wide, &class));
            assert_eq!(hard, all, "f64, n = {n}");
            assert_eq!(
                avx2_sums::<f64, false>(1, &wide, &class),
                ChannelSums { hard_pred: 0, hard_tp: 0, ..all },
                "f64 without hard counts, n = {n}"
            );
            let hand = by_hand(1, &p, &class);
            assert_eq!(
                (fast.label_count, fast.hard_pred, fast.hard_tp),
                (hand.label_count, hand.hard_pred, hand.hard_tp)
            );
            for (a, b) in [
                (fast.pred_sum, hand.pred_sum),
                (fast.pred_sq_sum, hand.pred_sq_sum),
                (fast.intersection, hand.intersection),
            ] {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "n = {n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn avx2_argmax_counts_equal_the_portable_loop_for_any_number_of_channels() {
        // 2–8 channels are counted in registers, more in memory.
        for c in [2, 3, 4, 7, 8, 9, 13] {
            let n = 1003;
            let (v, _) = data(c * n, c as u64);
            let (_, class) = data(n, 99);
            let class: Vec<u8> = class.iter().enumerate().map(|(i, &x)| (x as usize * 5 + i) as u8 % c as u8).collect();
            let chans: Vec<&[f32]> = v.chunks(n).collect();
            let wide: Vec<Vec<f64>> = chans.iter().map(|ch| ch.iter().map(|&x| f64::from(x)).collect()).collect();
            let wide: Vec<&[f64]> = wide.iter().map(Vec::as_slice).collect();
            let mut slow = vec![ChannelSums::default(); c];
            argmax_counts(&mut slow, &chans, &class);
            let (mut fast, mut fast64) = (vec![ChannelSums::default(); c], vec![ChannelSums::default(); c]);
            avx2_argmax(&mut fast, &chans, &class);
            avx2_argmax(&mut fast64, &wide, &class);
            let mut dispatched = vec![ChannelSums::default(); c];
            argmax(&mut dispatched, &chans, &class);
            assert_eq!(dispatched, slow, "{c} channels, the dispatched build");
            assert_eq!(fast, slow, "{c} channels");
            assert_eq!(fast64, slow, "{c} channels, f64");
            assert_eq!(slow.iter().map(|s| s.hard_pred).sum::<u64>(), n as u64);
            assert!(slow.iter().map(|s| s.hard_tp).sum::<u64>() > 0, "{c} channels: some hits");
        }
    }

    #[test]
    #[should_panic(expected = "every channel needs a value for each voxel")]
    fn argmax_refuses_channels_shorter_than_the_classes() {
        let short = [0.5f32; 7];
        argmax(&mut [ChannelSums::default(); 2], &[&short[..], &[0.25f32; 8][..]], &[0u8; 8]);
    }

    #[test]
    fn avx2_argmax_counts_equal_the_portable_loop_with_ties_to_the_first_channel() {
        for n in [0, 5, 8, 17, 4099] {
            let (a, class) = data(3 * n, 7);
            let mut chans: Vec<&[f32]> = a.chunks(n.max(1)).take(3).collect();
            let tied = vec![0.5f32; n];
            chans.push(&tied);
            let mut tied_twice = tied.clone();
            tied_twice.iter_mut().step_by(3).for_each(|v| *v = 0.25);
            chans.push(&tied_twice);
            if n == 0 {
                chans = vec![&[]; 5];
            }
            let class = &class[..n];
            let (mut fast, mut slow) = (vec![ChannelSums::default(); 5], vec![ChannelSums::default(); 5]);
            avx2_argmax(&mut fast, &chans, class);
            argmax_counts(&mut slow, &chans, class);
            assert_eq!(fast, slow, "n = {n}");
            // The same as f64 (activated probabilities).
            let wide: Vec<Vec<f64>> = chans.iter().map(|ch| ch.iter().map(|&v| f64::from(v)).collect()).collect();
            let wide: Vec<&[f64]> = wide.iter().map(Vec::as_slice).collect();
            let mut fast64 = vec![ChannelSums::default(); 5];
            avx2_argmax(&mut fast64, &wide, class);
            assert_eq!(fast64, slow, "f64, n = {n}");
            assert_eq!(fast.iter().map(|s| s.hard_pred).sum::<u64>(), n as u64);
        }
    }
}
