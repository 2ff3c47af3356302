//! |gradient| in fixed logarithmic bins, the same for every case, so that the histograms of a data
//! set add up exactly (the pooled histogram of `dicegrad batch`), and how they are stored in a
//! case record: only the bins in use, with the number of bins per factor 2 so that records written
//! with other bins are refused instead of being pooled bin by bin with these.

use serde::Serialize;

/// Counts of |gradient| in fixed logarithmic bins — [`LogHistogram::BINS_PER_OCTAVE`] per binary
/// order of magnitude, read off the float32 bits (the exponent and the top mantissa bits) — split
/// by ground truth, zeros apart. The bins are the same for every case, so that histograms of many
/// cases add up exactly.
///
/// With e the 8-bit exponent and q the top two mantissa bits, bin b = 4·e + q holds
///
///   e ≥ 1:  |v| in [2^(e−127)·(1 + q/4), 2^(e−127)·(1 + (q+1)/4))
///   e = 0:  |v| in [2^−126·q/4, 2^−126·(q+1)/4)        (float32 subnormals)
///
/// Stored (in `cases.jsonl` and `summary.json`) as the run of bins from the first to the last
/// non-empty one, with the number of bins per factor 2, so that a record written with other bins
/// is refused rather than added bin by bin to these.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(try_from = "StoredLogHistogram", into = "StoredLogHistogram")]
pub struct LogHistogram {
    /// Foreground counts, [`LogHistogram::BINS`] of them.
    pub foreground: Vec<u64>,
    /// Background counts, [`LogHistogram::BINS`] of them.
    pub background: Vec<u64>,
    /// Exact zeros on [background, foreground] voxels.
    pub zeros: [u64; 2],
}

/// Mantissa bits that split a binary order of magnitude.
const SUB_BITS: u32 = 2;

impl Default for LogHistogram {
    fn default() -> Self {
        Self::empty()
    }
}

impl LogHistogram {
    /// Bins per factor 2 of |v|.
    pub const BINS_PER_OCTAVE: usize = 1 << SUB_BITS;
    /// Number of bins (the float32 exponents, each split in [`Self::BINS_PER_OCTAVE`]).
    pub const BINS: usize = 256 * Self::BINS_PER_OCTAVE;

    pub fn empty() -> Self {
        LogHistogram { foreground: vec![0; Self::BINS], background: vec![0; Self::BINS], zeros: [0, 0] }
    }

    /// The bin of a non-zero value (its sign ignored).
    #[inline(always)]
    pub fn bin_of(v: f32) -> usize {
        ((v.to_bits() >> (23 - SUB_BITS)) as usize) & (Self::BINS - 1)
    }

    /// The range `[lower, upper)` of |v| that bin `b` holds.
    pub fn edges(b: usize) -> (f64, f64) {
        let (e, q) = ((b / Self::BINS_PER_OCTAVE) as i32, (b % Self::BINS_PER_OCTAVE) as f64);
        let n = Self::BINS_PER_OCTAVE as f64;
        if e == 0 {
            let unit = 2f64.powi(-126);
            (unit * q / n, unit * (q + 1.0) / n)
        } else {
            let unit = 2f64.powi(e - 127);
            (unit * (1.0 + q / n), unit * (1.0 + (q + 1.0) / n))
        }
    }

    /// Adds `n` copies of one value.
    #[inline]
    pub fn add_n(&mut self, v: f32, foreground: bool, n: u64) {
        if v == 0.0 {
            self.zeros[usize::from(foreground)] += n;
            return;
        }
        let b = Self::bin_of(v);
        if foreground {
            self.foreground[b] += n;
        } else {
            self.background[b] += n;
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, o: &LogHistogram) {
        for (a, b) in self.foreground.iter_mut().zip(&o.foreground) {
            *a += b;
        }
        for (a, b) in self.background.iter_mut().zip(&o.background) {
            *a += b;
        }
        self.zeros[0] += o.zeros[0];
        self.zeros[1] += o.zeros[1];
    }
}

/// A [`LogHistogram`] as written: its bins per factor 2, and the counts of bins `first ..
/// first + len` (the others are 0).
#[derive(Serialize, serde::Deserialize, schemars::JsonSchema)]
struct StoredLogHistogram {
    bins_per_octave: usize,
    first: usize,
    foreground: Vec<u64>,
    background: Vec<u64>,
    zeros: [u64; 2],
}

impl From<LogHistogram> for StoredLogHistogram {
    fn from(h: LogHistogram) -> Self {
        let used = |b: &usize| h.foreground[*b] + h.background[*b] > 0;
        let first = (0..LogHistogram::BINS).find(used).unwrap_or(0);
        let end = (0..LogHistogram::BINS).rev().find(used).map_or(first, |b| b + 1);
        StoredLogHistogram {
            bins_per_octave: LogHistogram::BINS_PER_OCTAVE,
            first,
            foreground: h.foreground[first..end].to_vec(),
            background: h.background[first..end].to_vec(),
            zeros: h.zeros,
        }
    }
}

impl TryFrom<StoredLogHistogram> for LogHistogram {
    type Error = String;
    fn try_from(s: StoredLogHistogram) -> Result<Self, String> {
        if s.bins_per_octave != LogHistogram::BINS_PER_OCTAVE {
            return Err(stale_bins_message(Some(s.bins_per_octave)));
        }
        let len = s.foreground.len();
        if s.background.len() != len || s.first + len > LogHistogram::BINS {
            return Err(format!(
                "a |gradient| histogram whose bins {}..{} (foreground) and {} background counts do not fit the {} bins",
                s.first,
                s.first + len,
                s.background.len(),
                LogHistogram::BINS
            ));
        }
        let mut h = LogHistogram::empty();
        h.foreground[s.first..s.first + len].copy_from_slice(&s.foreground);
        h.background[s.first..s.first + len].copy_from_slice(&s.background);
        h.zeros = s.zeros;
        Ok(h)
    }
}

/// Why a histogram stored with `found` bins per factor 2 (None: an older record with one bin per
/// factor 2 and no count of them) cannot be pooled with this version's.
pub fn stale_bins_message(found: Option<usize>) -> String {
    let found =
        found.map_or("one bin per factor 2 (an older dicegrad)".to_string(), |n| format!("{n} bins per factor 2"));
    format!(
        "its |gradient| histograms have {found}, this dicegrad pools {} per factor 2, and finer bins cannot be \
         rebuilt from coarser ones",
        LogHistogram::BINS_PER_OCTAVE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_falls_between_the_edges_of_its_log_bin() {
        for v in [1e-40f32, 3e-39, 1.17e-38, 1e-9, 1.4e-5, 1.6e-5, 1.9e-5, 0.3, 1.0, 1.24, 1.26, 1.99, 7e30] {
            for s in [v, -v] {
                let (lo, hi) = LogHistogram::edges(LogHistogram::bin_of(s));
                let a = f64::from(v);
                assert!(lo <= a && a < hi, "{s} in bin [{lo}, {hi})");
                assert!(hi / lo <= 1.25 + 1e-12 || lo == 0.0 || lo < 1.2e-38, "a bin spans at most a factor 1.25");
            }
        }
        // neighbouring bins meet: the upper edge of one is the lower edge of the next
        for b in 0..LogHistogram::BINS - 1 {
            assert_eq!(LogHistogram::edges(b).1, LogHistogram::edges(b + 1).0, "bin {b}");
        }
    }

    #[test]
    fn log_bins_sum_to_the_voxel_count_and_split_levels_a_factor_two_apart_holds_together() {
        // two levels 1.3 apart: one bin per factor 2 held both, these bins do not
        let mut h = LogHistogram::empty();
        h.add_n(-1.4e-5, true, 300);
        h.add_n(1.82e-5, false, 9000);
        h.add_n(0.0, false, 7);
        let total: u64 = h.foreground.iter().chain(&h.background).sum::<u64>() + h.zeros[0] + h.zeros[1];
        assert_eq!(total, 9307);
        let fg = h.foreground.iter().position(|&c| c > 0).unwrap();
        let bg = h.background.iter().position(|&c| c > 0).unwrap();
        assert_ne!(fg, bg);
        assert_eq!((h.foreground[fg], h.background[bg]), (300, 9000));
    }

    #[test]
    fn a_stored_log_histogram_reads_back_the_same() {
        let mut h = LogHistogram::empty();
        h.add_n(3e-4, true, 5);
        h.add_n(-2e-7, false, 11);
        h.add_n(0.0, true, 2);
        let text = serde_json::to_string(&h).unwrap();
        assert!(text.contains("\"bins_per_octave\":4"), "{text}");
        assert!(text.len() < 600, "only the bins in use are written: {text}");
        assert_eq!(serde_json::from_str::<LogHistogram>(&text).unwrap(), h);
        assert_eq!(
            serde_json::from_str::<LogHistogram>(&serde_json::to_string(&LogHistogram::empty()).unwrap()).unwrap(),
            LogHistogram::empty()
        );
    }

    #[test]
    fn a_log_histogram_with_other_bins_is_refused() {
        let old =
            format!("{{\"foreground\":{:?},\"background\":{:?},\"zeros\":[0,0]}}", vec![0u64; 256], vec![1u64; 256]);
        assert!(serde_json::from_str::<LogHistogram>(&old).is_err());
        let other = r#"{"bins_per_octave":8,"first":3,"foreground":[1],"background":[2],"zeros":[0,0]}"#;
        let e = serde_json::from_str::<LogHistogram>(other).unwrap_err().to_string();
        assert!(e.contains("8 bins per factor 2") && e.contains("pools 4"), "{e}");
        let beyond = r#"{"bins_per_octave":4,"first":1024,"foreground":[1],"background":[2],"zeros":[0,0]}"#;
        assert!(serde_json::from_str::<LogHistogram>(beyond).is_err());
    }
}
