//! Deterministic data parallelism: a range of voxels is cut into fixed-size chunks (independent of
//! the number of threads), each chunk is processed on any thread, and the per-chunk results are
//! folded in chunk order, so that every reduction is done in the same order on every run.
//! Chunks are processed in groups, so that only one group's partial results are held at a time.

use std::ops::Range;

use rayon::prelude::*;

/// Voxels per chunk. Fixed: results must not depend on the thread count.
pub const CHUNK: usize = 1 << 14;

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
