//! Deterministic data parallelism: a range of voxels is cut into fixed-size chunks (independent of
//! the number of threads), each chunk is processed on any thread, and the per-chunk results are
//! folded in chunk order, so that every reduction is done in the same order on every run.
//! Chunks are processed in groups, so that only one group's partial results are held at a time.

use std::ops::Range;

use rayon::prelude::*;

/// Voxels per chunk. Fixed: results must not depend on the thread count.
pub const CHUNK: usize = 1 << 14;

/// The most workers a run starts per core: more only slow it down (and thousands of threads can
/// exhaust the system).
pub const PER_CORE: usize = 4;

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most workers a run starts: [`PER_CORE`] per core.
pub fn max_workers() -> usize {
    PER_CORE * cores()
}

/// Chunks processed in parallel before their results are folded.
const GROUP: usize = 64;

/// Applies `map` to consecutive chunks of `0..n` in parallel and feeds the results to `fold` in
/// chunk order.
pub fn fold_chunks<T: Send>(n: usize, map: impl Fn(Range<usize>) -> T + Sync + Send, mut fold: impl FnMut(T)) {
    let chunks = n.div_ceil(CHUNK);
    let mut start = 0;
    while start < chunks {
        let end = (start + GROUP).min(chunks);
        let results: Vec<T> = (start..end).into_par_iter().map(|c| map(c * CHUNK..((c + 1) * CHUNK).min(n))).collect();
        results.into_iter().for_each(&mut fold);
        start = end;
    }
}

/// The CRC-32 (gzip's and zip's) of `bytes`, over 1 MiB pieces in parallel, combined in order.
pub fn crc32(bytes: &[u8]) -> u32 {
    let pieces: Vec<crc32fast::Hasher> = bytes
        .par_chunks(1 << 20)
        .map(|p| {
            let mut h = crc32fast::Hasher::new();
            h.update(p);
            h
        })
        .collect();
    let mut all = crc32fast::Hasher::new();
    for p in &pieces {
        all.combine(p);
    }
    all.finalize()
}

pub use crate::simd::{fold_lanes, LANES};

crate::simd::avx2_or_portable! {
    /// Sum of `values` in f64 lanes (see [`LANES`]).
    fn lane_sum(values: &[f32]) -> f64 {
        let mut l = [0f64; LANES];
        let c = values.chunks_exact(LANES);
        let rest = c.remainder();
        for v in c {
            for (s, &x) in l.iter_mut().zip(v) {
                *s += f64::from(x);
            }
        }
        for (s, &x) in l.iter_mut().zip(rest) {
            *s += f64::from(x);
        }
        fold_lanes(l)
    }
}

/// One plain pass over `values`: their sum in f64, over the same fixed chunks and lanes as every
/// pass here. It reads each value once and does nothing else — the memory-bandwidth floor that
/// the benchmarks compare the real passes with.
pub fn plain_pass(values: &[f32]) -> f64 {
    let mut total = 0.0;
    fold_chunks(values.len(), |r| lane_sum(&values[r]), |s| total += s);
    total
}

/// Element types of the per-thread scratch buffers ([`with_buffer`]).
pub trait Scratch: Copy + Default + 'static {
    /// This thread's pool of spare buffers.
    fn pool() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Vec<Self>>>>;
}

macro_rules! scratch_type {
    ($t:ty) => {
        impl Scratch for $t {
            fn pool() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Vec<Self>>>> {
                thread_local!(static POOL: std::cell::RefCell<Vec<Vec<$t>>> = const { std::cell::RefCell::new(Vec::new()) });
                &POOL
            }
        }
    };
}
scratch_type!(f32);
scratch_type!(f64);

/// Runs `f` on a buffer of `len` values taken from this thread's pool and returns the buffer to
/// the pool afterwards, so that passes over chunks reuse a few buffers per thread instead of
/// allocating (and zeroing) new ones per chunk. The buffer holds whatever was left in it: `f` must
/// write each value before reading it.
pub fn with_buffer<T: Scratch, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let mut buf = T::pool().with(|p| p.borrow_mut().pop()).unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    let result = f(&mut buf[..len]);
    T::pool().with(|p| p.borrow_mut().push(buf));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_of_pieces_combined_is_the_crc_of_the_whole() {
        let bytes: Vec<u8> = (0..3_500_017u32).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
        let mut h = crc32fast::Hasher::new();
        h.update(&bytes);
        assert_eq!(crc32(&bytes), h.finalize());
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926); // the check value of CRC-32/ISO-HDLC
        assert_eq!(crc32(&[]), 0);
    }
}
