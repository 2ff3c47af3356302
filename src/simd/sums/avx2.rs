//! The channel sums and argmax counts with AVX2 intrinsics: the same IEEE operations on the same
//! lanes as the portable loops of the parent module, so the same bits.

use std::arch::x86_64::*;

use super::super::Avx2;
use super::{ChannelLanes, ChannelSums, LANES};

const _: () = assert!(LANES == 8, "the AVX2 loop keeps the 8 lanes in two registers");

/// The sum of eight 32-bit counts.
#[target_feature(enable = "avx2")]
fn total(r: __m256i) -> u64 {
    let mut out = [0u32; 8];
    // SAFETY: out holds 8 u32.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, r) };
    out.iter().map(|&x| u64::from(x)).sum()
}

/// Partial sums S, Q, I in f64 lanes 0–3 (first register of each pair) and 4–7 (second), and
/// the counts G, hard predictions, hard true positives in eight 32-bit lanes.
struct Lanes {
    sums: [[__m256d; 2]; 3],
    counts: [__m256i; 3],
}

impl Lanes {
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        Lanes { sums: [[_mm256_setzero_pd(); 2]; 3], counts: [_mm256_setzero_si256(); 3] }
    }

    /// Adds 8 values (`values`: lanes 0–3, 4–7) whose class tests (`fg`) and threshold
    /// tests (`hard`, if counted) are all-ones or all-zeros 32-bit lanes.
    #[target_feature(enable = "avx2")]
    fn add(&mut self, values: [__m256d; 2], fg: __m256i, hard: Option<__m256i>) {
        let [g, hp, tp] = &mut self.counts;
        *g = _mm256_sub_epi32(*g, fg);
        if let Some(hard) = hard {
            *hp = _mm256_sub_epi32(*hp, hard);
            *tp = _mm256_sub_epi32(*tp, _mm256_and_si256(hard, fg));
        }
        let masks = [
            _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(fg))),
            _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(fg))),
        ];
        let [s, q, i] = &mut self.sums;
        for h in 0..2 {
            let v = values[h];
            s[h] = _mm256_add_pd(s[h], v);
            q[h] = _mm256_add_pd(q[h], _mm256_mul_pd(v, v));
            i[h] = _mm256_add_pd(i[h], _mm256_and_pd(masks[h], v));
        }
    }

    /// The sums of the lanes, with the values from position `done` on (fewer than 8) added
    /// by the portable loop; the hard counts left at 0 unless `HARD`.
    #[target_feature(enable = "avx2")]
    fn finish<T: Copy + Into<f64>, const HARD: bool>(self, done: usize, fg: u8, p: &[T], class: &[u8]) -> ChannelSums {
        let lanes = |r: [__m256d; 2]| {
            let mut out = [0f64; LANES];
            // SAFETY: out holds 8 f64.
            unsafe {
                _mm256_storeu_pd(out.as_mut_ptr(), r[0]);
                _mm256_storeu_pd(out.as_mut_ptr().add(4), r[1]);
            }
            out
        };
        let [s, q, i] = self.sums;
        let [g, hard_pred, hard_tp] = self.counts.map(|c| total(c));
        let mut acc = ChannelLanes { s: lanes(s), q: lanes(q), i: lanes(i), g, hard_pred, hard_tp };
        let n = p.len().min(class.len());
        acc.add_from(done, fg, &p[done..n], &class[done..n]);
        super::without_hard::<HARD>(acc.finish())
    }
}

/// The channel sums, 8 values at a time (the class test done once on all 8).
pub(super) fn channel_sums<T: Value, const HARD: bool>(_: Avx2, fg: u8, p: &[T], class: &[u8]) -> ChannelSums {
    // SAFETY: the token proves the processor has AVX2.
    unsafe { channel_sums_avx2::<T, HARD>(fg, p, class) }
}

#[target_feature(enable = "avx2")]
fn channel_sums_avx2<T: Value, const HARD: bool>(fg: u8, p: &[T], class: &[u8]) -> ChannelSums {
    let n = p.len().min(class.len());
    let done = n / LANES * LANES;
    let mut lanes = Lanes::new();
    let fg32 = _mm256_set1_epi32(i32::from(fg));
    for j in (0..done).step_by(LANES) {
        // SAFETY: compiled for AVX2; j + 8 <= n, the length of both slices.
        let (values, hard, c8) = unsafe {
            let (values, hard) = T::values8::<HARD>(p.as_ptr().add(j));
            (values, hard, _mm_loadl_epi64(class.as_ptr().add(j) as *const __m128i))
        };
        lanes.add(values, _mm256_cmpeq_epi32(_mm256_cvtepu8_epi32(c8), fg32), hard);
    }
    lanes.finish::<T, HARD>(done, fg, p, class)
}

/// The low 32 bits of the four 64-bit lanes of `lo`, then of `hi`, as eight 32-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn pack_low_halves(lo: __m256i, hi: __m256i) -> __m256i {
    let pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    let [lo, hi] = [lo, hi].map(|a| _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(a, pick)));
    _mm256_set_m128i(hi, lo)
}

/// Values the loops read (float32 as stored, f64 activated), 8 at a time.
pub trait Value: Copy + PartialOrd + Into<f64> {
    /// 8 values as f64 (lanes 0–3, 4–7) and, if `HARD`, their threshold tests v ≥ 0.5 as
    /// all-ones or all-zeros 32-bit lanes.
    ///
    /// # Safety
    /// AVX2; 8 values readable at `p`. Called only from functions compiled for AVX2 (it is
    /// inlined into them).
    unsafe fn values8<const HARD: bool>(p: *const Self) -> ([__m256d; 2], Option<__m256i>);

    /// The channel of the maximum (the first among equals) of 8 voxels, in 32-bit lanes:
    /// channel k's values of the voxels are at `ptrs[k].add(j)`, … `.add(j + 7)`.
    ///
    /// # Safety
    /// AVX2; those values readable. Called only from functions compiled for AVX2 (it is
    /// inlined into them).
    unsafe fn arg8(ptrs: &[*const Self], j: usize) -> __m256i;
}

impl Value for f32 {
    /// The threshold tested in float32, where v ≥ 0.5 means the same as in f64.
    #[inline(always)]
    unsafe fn values8<const HARD: bool>(p: *const f32) -> ([__m256d; 2], Option<__m256i>) {
        // SAFETY: the caller's promise: AVX2, 8 values readable at p.
        unsafe {
            let v8 = _mm256_loadu_ps(p);
            let hard = HARD.then(|| _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(v8, _mm256_set1_ps(0.5))));
            ([_mm256_cvtps_pd(_mm256_castps256_ps128(v8)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v8))], hard)
        }
    }

    #[inline(always)]
    unsafe fn arg8(ptrs: &[*const f32], j: usize) -> __m256i {
        // SAFETY: the caller's promise.
        unsafe {
            let mut best = _mm256_loadu_ps(ptrs[0].add(j));
            let mut arg = _mm256_setzero_si256();
            for (k, p) in ptrs.iter().enumerate().skip(1) {
                let x = _mm256_loadu_ps(p.add(j));
                let gt = _mm256_cmp_ps::<_CMP_GT_OQ>(x, best);
                best = _mm256_blendv_ps(best, x, gt);
                arg = _mm256_blendv_epi8(arg, _mm256_set1_epi32(k as i32), _mm256_castps_si256(gt));
            }
            arg
        }
    }
}

impl Value for f64 {
    /// The threshold tests of each register of 4 packed into 32-bit lanes.
    #[inline(always)]
    unsafe fn values8<const HARD: bool>(p: *const f64) -> ([__m256d; 2], Option<__m256i>) {
        // SAFETY: the caller's promise: AVX2, 8 values readable at p.
        unsafe {
            let values = [_mm256_loadu_pd(p), _mm256_loadu_pd(p.add(4))];
            let hard = HARD.then(|| {
                let [t0, t1] = values.map(|v| _mm256_castpd_si256(_mm256_cmp_pd::<_CMP_GE_OQ>(v, _mm256_set1_pd(0.5))));
                pack_low_halves(t0, t1)
            });
            (values, hard)
        }
    }

    /// Two registers of 4 values, their channel numbers in 64-bit lanes, packed.
    #[inline(always)]
    unsafe fn arg8(ptrs: &[*const f64], j: usize) -> __m256i {
        // SAFETY: AVX2, as the caller promises.
        let mut args = unsafe { [_mm256_setzero_si256(); 2] };
        for (h, arg) in args.iter_mut().enumerate() {
            // SAFETY: the caller's promise.
            unsafe {
                let mut best = _mm256_loadu_pd(ptrs[0].add(j + 4 * h));
                for (k, p) in ptrs.iter().enumerate().skip(1) {
                    let x = _mm256_loadu_pd(p.add(j + 4 * h));
                    let gt = _mm256_cmp_pd::<_CMP_GT_OQ>(x, best);
                    best = _mm256_blendv_pd(best, x, gt);
                    *arg = _mm256_blendv_epi8(*arg, _mm256_set1_epi64x(k as i64), _mm256_castpd_si256(gt));
                }
            }
        }
        // SAFETY: AVX2, as promised.
        unsafe { pack_low_halves(args[0], args[1]) }
    }
}

/// The argmax counts, 8 voxels at a time: for up to 8 channels with the channel count known
/// to the compiler, the running maximum and all the counts in registers. Panics unless every
/// channel holds a value for each voxel of `class`.
pub(super) fn argmax_counts<T: Value>(_: Avx2, sums: &mut [ChannelSums], channels: &[&[T]], class: &[u8]) {
    // The loops read every channel up to the length of `class`.
    assert!(channels.iter().all(|c| c.len() >= class.len()), "every channel needs a value for each voxel");
    // SAFETY: the token proves the processor has AVX2; the reads stay within the channels (above).
    unsafe { argmax_counts_avx2(sums, channels, class) }
}

#[target_feature(enable = "avx2")]
fn argmax_counts_avx2<T: Value>(sums: &mut [ChannelSums], channels: &[&[T]], class: &[u8]) {
    match channels.len() {
        2 => counts_in_registers::<T, 2>(sums, channels, class),
        3 => counts_in_registers::<T, 3>(sums, channels, class),
        4 => counts_in_registers::<T, 4>(sums, channels, class),
        5 => counts_in_registers::<T, 5>(sums, channels, class),
        6 => counts_in_registers::<T, 6>(sums, channels, class),
        7 => counts_in_registers::<T, 7>(sums, channels, class),
        8 => counts_in_registers::<T, 8>(sums, channels, class),
        _ => counts_in_memory(sums, channels, class),
    }
}

/// The counts of `arg` (8 voxels' channels of the maximum) into `pred`, and of those equal
/// to the voxels' classes (the 8 bytes at `class`) into `tp`, channel by channel.
///
/// # Safety
/// As [`Value::arg8`]; `class` points to 8 readable bytes.
#[inline(always)]
unsafe fn count(arg: __m256i, class: *const u8, pred: &mut [__m256i], tp: &mut [__m256i]) {
    // SAFETY: the caller's promise: AVX2, 8 bytes readable at class.
    unsafe {
        let cl = _mm256_cvtepu8_epi32(_mm_loadl_epi64(class as *const __m128i));
        let hit = _mm256_cmpeq_epi32(arg, cl);
        for (k, (pred, tp)) in pred.iter_mut().zip(tp).enumerate() {
            let is_k = _mm256_cmpeq_epi32(arg, _mm256_set1_epi32(k as i32));
            *pred = _mm256_sub_epi32(*pred, is_k);
            *tp = _mm256_sub_epi32(*tp, _mm256_and_si256(is_k, hit));
        }
    }
}

#[target_feature(enable = "avx2")]
fn counts_in_registers<T: Value, const C: usize>(sums: &mut [ChannelSums], channels: &[&[T]], class: &[u8]) {
    let ptrs: [*const T; C] = std::array::from_fn(|k| channels[k].as_ptr());
    let (mut pred, mut tp) = ([_mm256_setzero_si256(); C], [_mm256_setzero_si256(); C]);
    for j in (0..class.len() / 8 * 8).step_by(8) {
        // SAFETY: compiled for AVX2; j + 8 <= the length of every channel slice and of class.
        unsafe { count(T::arg8(&ptrs, j), class.as_ptr().add(j), &mut pred, &mut tp) };
    }
    finish(sums, &pred, &tp, channels, class);
}

/// Any number of channels: the counts in memory.
#[target_feature(enable = "avx2")]
fn counts_in_memory<T: Value>(sums: &mut [ChannelSums], channels: &[&[T]], class: &[u8]) {
    let ptrs: Vec<*const T> = channels.iter().map(|ch| ch.as_ptr()).collect();
    let (mut pred, mut tp) = (vec![_mm256_setzero_si256(); ptrs.len()], vec![_mm256_setzero_si256(); ptrs.len()]);
    for j in (0..class.len() / 8 * 8).step_by(8) {
        // SAFETY: as in counts_in_registers.
        unsafe { count(T::arg8(&ptrs, j), class.as_ptr().add(j), &mut pred, &mut tp) };
    }
    finish(sums, &pred, &tp, channels, class);
}

/// Adds the lane counts to `sums`, and counts the voxels past the last whole group of 8 with
/// the portable loop.
#[target_feature(enable = "avx2")]
fn finish<T: Value>(sums: &mut [ChannelSums], pred: &[__m256i], tp: &[__m256i], channels: &[&[T]], class: &[u8]) {
    for (s, (&pred, &tp)) in sums.iter_mut().zip(pred.iter().zip(tp)) {
        s.hard_pred += total(pred);
        s.hard_tp += total(tp);
    }
    let (n, done) = (class.len(), class.len() / 8 * 8);
    let rest: Vec<&[T]> = channels.iter().map(|ch| &ch[done..n]).collect();
    super::argmax_counts(sums, &rest, &class[done..n]);
}
