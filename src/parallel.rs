//! Deterministic data parallelism: a range of voxels is cut into fixed-size chunks (independent of
//! the number of threads), each chunk is processed on any thread, and the per-chunk results come
//! back in chunk order so that every reduction is done in the same order on every run.

use std::ops::Range;

use rayon::prelude::*;

/// Voxels per chunk. Fixed: results must not depend on the thread count.
pub const CHUNK: usize = 1 << 14;

/// Applies `f` to consecutive chunks of `0..n` in parallel; the results are in chunk order.
pub fn map_chunks<T: Send>(n: usize, f: impl Fn(Range<usize>) -> T + Sync + Send) -> Vec<T> {
    let chunks = n.div_ceil(CHUNK);
    (0..chunks).into_par_iter().map(|c| f(c * CHUNK..((c + 1) * CHUNK).min(n))).collect()
}
