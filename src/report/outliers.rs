//! Cases of a data set whose gradient is far from the rest's: the one definition that the
//! data-set pictures (labelled dots) and the data-set report (flagged rows) both read.
//!
//! Per channel, over the cases analysed successfully, each measure x is compared with the median
//! of the others' by the modified z-score of Iglewicz & Hoaglin (1993):
//!
//!   z = 0.6745 · (x − median) / MAD,     MAD = median |x − median|
//!
//! and a case is an outlier on that measure when |z| > 3.5. When the MAD is 0 (more than half of
//! the cases share one value) the mean absolute deviation stands in for it, scaled to the same
//! normal consistency (z = (x − median) / (1.2533 · meanAD)); when that is 0 too, every value is
//! the median and none is an outlier. With fewer than [`MIN_CASES`] cases no case is flagged: a
//! median of three says little about what is usual.
//!
//! The measures, each on a scale where "far" means a factor:
//! - `level_ratio`: log10 |foreground level / background level| (the closed form is
//!   1 − 2/Dice, so this follows the case's Dice);
//! - `window_low` / `window_high`: log2 of the bounds of the float16 loss-scale window (the loss
//!   scales for which every gradient value × S is a normal float16).

use serde::Serialize;

use super::record::{CaseRecord, ChannelRow};

/// The threshold on |modified z| above which a case is flagged.
pub const THRESHOLD: f64 = 3.5;

/// The fewest successful cases on a channel from which outliers are flagged.
pub const MIN_CASES: usize = 5;

/// A measure compared across cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// log10 |foreground level / background level|.
    LevelRatio,
    /// log2 of the smallest loss scale for which every value is a normal float16.
    WindowLow,
    /// log2 of the largest loss scale for which no value overflows float16.
    WindowHigh,
}

impl Measure {
    pub const ALL: [Measure; 3] = [Measure::LevelRatio, Measure::WindowLow, Measure::WindowHigh];

    /// The measure of a channel row, on its comparison scale (None when it has none).
    pub fn of(self, row: &ChannelRow) -> Option<f64> {
        let v = match self {
            Measure::LevelRatio => match (row.foreground_level, row.background_level) {
                (Some(f), Some(b)) if f != 0.0 && b != 0.0 => Some((f / b).abs().log10()),
                _ => None,
            },
            Measure::WindowLow => row.float16_window_log2_min,
            Measure::WindowHigh => row.float16_window_log2_max,
        };
        v.filter(|v| v.is_finite())
    }

    /// What the measure is, for a reader ("level ratio", "loss-scale window low end").
    pub fn describe(self) -> &'static str {
        match self {
            Measure::LevelRatio => "level ratio fg/bg (log10 |ratio|)",
            Measure::WindowLow => "float16 loss-scale window, low end (log2 S)",
            Measure::WindowHigh => "float16 loss-scale window, high end (log2 S)",
        }
    }
}

/// One case flagged on one channel and measure.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Outlier {
    pub case: String,
    pub channel: usize,
    pub measure: Measure,
    /// The case's value, on the measure's scale.
    pub value: f64,
    /// The median over the channel's cases.
    pub median: f64,
    /// The modified z-score.
    pub z: f64,
}

/// The median of values sorted ascending (not empty).
fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The modified z-scores of `values` (None for each when none can be flagged: too few values, or
/// all of them equal).
pub fn modified_z(values: &[f64]) -> Option<Vec<f64>> {
    if values.len() < MIN_CASES {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let med = median_sorted(&sorted);
    let mut dev: Vec<f64> = values.iter().map(|v| (v - med).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = median_sorted(&dev);
    let scale = if mad > 0.0 {
        mad / 0.6745
    } else {
        let mean_ad = dev.iter().sum::<f64>() / dev.len() as f64;
        if mean_ad == 0.0 {
            return None;
        }
        1.2533 * mean_ad
    };
    Some(values.iter().map(|v| (v - med) / scale).collect())
}

/// The outliers among the successful cases of `records`, per channel (in the order the channels
/// first appear) and measure (in [`Measure::ALL`] order), cases in record order.
pub fn outliers(records: &[CaseRecord]) -> Vec<Outlier> {
    let mut channels: Vec<usize> = Vec::new();
    for r in records.iter().filter(|r| r.is_ok()) {
        for c in &r.channels {
            if !channels.contains(&c.channel) {
                channels.push(c.channel);
            }
        }
    }
    let mut out = Vec::new();
    for &ch in &channels {
        for m in Measure::ALL {
            let points: Vec<(&str, f64)> = records
                .iter()
                .filter(|r| r.is_ok())
                .filter_map(|r| {
                    let row = r.channels.iter().find(|c| c.channel == ch)?;
                    Some((r.case.as_str(), m.of(row)?))
                })
                .collect();
            let values: Vec<f64> = points.iter().map(|p| p.1).collect();
            let Some(z) = modified_z(&values) else { continue };
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let median = median_sorted(&sorted);
            for ((case, value), z) in points.iter().zip(z) {
                if z.abs() > THRESHOLD {
                    out.push(Outlier { case: case.to_string(), channel: ch, measure: m, value: *value, median, z });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_z_matches_a_hand_count() {
        // median 3, |deviations| 2 1 0 1 97 -> sorted 0 1 1 2 97, MAD 1
        let z = modified_z(&[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
        assert!((z[4] - 0.6745 * 97.0).abs() < 1e-12);
        assert!((z[0] + 0.6745 * 2.0).abs() < 1e-12);
    }

    #[test]
    fn too_few_or_equal_values_flag_nothing() {
        assert!(modified_z(&[1.0, 2.0, 30.0, 4.0]).is_none());
        assert!(modified_z(&[2.0; 6]).is_none());
    }

    #[test]
    fn zero_mad_falls_back_to_the_mean_absolute_deviation() {
        // median 1, deviations 0 0 0 0 9 -> MAD 0, meanAD 1.8
        let z = modified_z(&[1.0, 1.0, 1.0, 1.0, 10.0]).unwrap();
        assert!((z[4] - 9.0 / (1.2533 * 1.8)).abs() < 1e-12);
        assert_eq!(z[0], 0.0);
    }
}
