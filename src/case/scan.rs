//! What the values of a prediction are: finite or not, probabilities or not. Measured once, as the
//! values arrive (while a file is decoded, or over an array), and checked against the loss when it
//! is known: NaN or infinity is refused for every loss (a value of the file beyond float32's
//! range is named with its value, not as the infinity it becomes), values outside [0, 1] when
//! the loss reads probabilities.

use super::Grid;
use crate::error::{set, Error, Input, Msg, Param, Result};
use crate::msg;

/// The first offending value and how many there are.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Offenders {
    pub count: u64,
    /// Flat index (channel-major) and value of the first one.
    pub first: Option<(usize, f64)>,
}

impl Offenders {
    pub fn add(&mut self, index: usize, value: f64) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some((index, value));
        }
    }

    /// Adds those of a later part of the values.
    pub fn merge(&mut self, o: &Offenders) {
        self.count += o.count;
        if self.first.is_none() {
            self.first = o.first;
        }
    }
}

/// Where flat index `index` (channel-major) is, in words.
pub fn where_is(grid: &Grid, index: usize) -> String {
    let n = grid.voxels();
    let [x, y, z] = grid.coords(index % n);
    if index >= n {
        format!("voxel ({x}, {y}, {z}) of channel {}", index / n)
    } else {
        format!("voxel ({x}, {y}, {z})")
    }
}

/// How many voxels of `values` (C blocks of `voxels` values each) have channels that do not sum
/// to 1 within `tolerance`.
pub fn voxels_not_summing_to_one(values: &[f32], channels: usize, tolerance: f64) -> usize {
    let voxels = values.len() / channels.max(1);
    let mut off = 0;
    crate::parallel::fold_chunks(
        voxels,
        |r| {
            r.filter(|&i| {
                let sum: f64 = (0..channels).map(|c| f64::from(values[c * voxels + i])).sum();
                (sum - 1.0).abs() > tolerance
            })
            .count()
        },
        |n| off += n,
    );
    off
}

/// How far outside [0, 1] values may lie and still be taken for probabilities (resampled ones
/// overshoot a little).
pub const NEAR_UNIT: f32 = 1e-3;

/// The values of a prediction, measured: non-finite values, values outside [0, 1], and the range
/// of the finite ones.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValueScan {
    pub non_finite: Offenders,
    /// Values that are finite in the file but beyond float32's range, with their value in the file
    /// (they are read as ±∞, so they are among `non_finite` too). Noted by the file readers.
    pub beyond_f32: Offenders,
    pub outside_unit: Offenders,
    /// Smallest and largest finite value (+∞ and −∞ when there is none).
    pub min: f32,
    pub max: f32,
}

impl Default for ValueScan {
    fn default() -> Self {
        ValueScan {
            non_finite: Offenders::default(),
            beyond_f32: Offenders::default(),
            outside_unit: Offenders::default(),
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }
}

impl ValueScan {
    /// Adds `values`, the first of which has flat index `first`: block by block, each measured
    /// in one vectorised pass; value by value only for a block that holds a value that is not
    /// finite.
    pub fn add(&mut self, first: usize, values: &[f32]) {
        const BLOCK: usize = 1024;
        for (b, block) in values.chunks(BLOCK).enumerate() {
            let m = block_measure(block);
            if m.non_finite {
                self.add_each(first + b * BLOCK, block);
                continue;
            }
            self.min = self.min.min(m.min);
            self.max = self.max.max(m.max);
            if m.outside_unit > 0 && self.outside_unit.first.is_none() {
                let j = block.iter().position(|v| !(0.0..=1.0).contains(v)).expect("a value outside [0, 1]");
                self.outside_unit.first = Some((first + b * BLOCK + j, f64::from(block[j])));
            }
            self.outside_unit.count += m.outside_unit;
        }
    }

    /// [`add`](Self::add), value by value.
    fn add_each(&mut self, first: usize, values: &[f32]) {
        for (j, &v) in values.iter().enumerate() {
            if !v.is_finite() {
                self.non_finite.add(first + j, f64::from(v));
            } else {
                self.min = self.min.min(v);
                self.max = self.max.max(v);
                if !(0.0..=1.0).contains(&v) {
                    self.outside_unit.add(first + j, f64::from(v));
                }
            }
        }
    }

    /// Notes that the value at flat index `index`, `value` in the file, is beyond float32's range
    /// (and was read as ±∞).
    pub fn add_beyond_f32(&mut self, index: usize, value: f64) {
        self.beyond_f32.add(index, value);
    }

    /// Whether every value lies within [`NEAR_UNIT`] of [0, 1]: probabilities, give or take the
    /// overshoot of resampling.
    pub fn nearly_probabilities(&self) -> bool {
        self.non_finite.count == 0 && self.min >= -NEAR_UNIT && self.max <= 1.0 + NEAR_UNIT
    }

    /// Adds the scan of the values that follow.
    pub fn merge(&mut self, o: &ValueScan) {
        self.non_finite.merge(&o.non_finite);
        self.beyond_f32.merge(&o.beyond_f32);
        self.outside_unit.merge(&o.outside_unit);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The scan of `values` (C blocks of a grid's voxels), over fixed chunks in parallel.
    pub fn of(values: &[f32]) -> ValueScan {
        let mut scan = ValueScan::default();
        crate::parallel::fold_chunks(
            values.len(),
            |r| {
                let mut s = ValueScan::default();
                s.add(r.start, &values[r]);
                s
            },
            |s| scan.merge(&s),
        );
        scan
    }

    /// Refuses values the loss cannot take: NaN or infinite ones, and with `probabilities`, values
    /// outside [0, 1]. The advice: for values stored as integers (`integer_type`, e.g. `uint8`)
    /// that they look like a segmentation; otherwise the activation for logits, which `channels`
    /// decides.
    pub fn check(
        &self,
        input: &Input,
        grid: &Grid,
        channels: usize,
        probabilities: bool,
        integer_type: Option<&str>,
    ) -> Result<()> {
        let bad = |problem: Msg| Error::BadValues { input: input.clone(), problem };
        if let Some((i, v)) = self.beyond_f32.first {
            let more = match self.beyond_f32.count - 1 {
                0 => String::new(),
                n => format!(" and {n} more values"),
            };
            return Err(bad(msg![format!(
                "holds {v:e} at {}{more}, beyond float32's range (±3.4e38): no network output is that large; \
                 dicegrad computes in float32, check the export (and the header's scl_slope / scl_inter)",
                where_is(grid, i)
            )]));
        }
        if let Some((i, v)) = self.non_finite.first {
            return Err(bad(msg![format!(
                "{} values are NaN or infinite (first: {} at {}); the prediction must be finite, check the \
                 network output or the export",
                self.non_finite.count,
                v as f32,
                where_is(grid, i)
            )]));
        }
        if let (true, Some((i, v))) = (probabilities, self.outside_unit.first) {
            let n = self.outside_unit.count;
            let values = if n == 1 { "1 value lies" } else { "values lie" };
            if self.nearly_probabilities() {
                return Err(bad(msg![format!(
                    "{} slightly outside [0, 1] (range {} to {}, first: {} at {}), within {NEAR_UNIT} of it, as \
                     probabilities resampled with some overshoot do: clip them to [0, 1] before analysing them",
                    if n == 1 { values.to_string() } else { format!("{n} {values}") },
                    self.min,
                    self.max,
                    v as f32,
                    where_is(grid, i),
                )]));
            }
            let mut m = msg![format!(
                "{} outside [0, 1] (range {} to {}, first: {} at {}), so these are not probabilities; ",
                if n == 1 { values.to_string() } else { format!("{n} {values}") },
                self.min,
                self.max,
                v as f32,
                where_is(grid, i),
            )];
            m.extend(match integer_type {
                Some(t) if self.max >= 100.0 => {
                    let scale = if self.max <= 100.0 {
                        100
                    } else if self.max <= 255.0 {
                        255
                    } else {
                        65535
                    };
                    msg![format!(
                        "the prediction is stored as {t} with values up to {}: probabilities scaled to 0–{scale}? \
                         give them as float32 in [0, 1], or set the header's scl_slope to 1/{scale} (nibabel: \
                         img.header.set_slope_inter(1/{scale}, 0)) so that they read as probabilities",
                        self.max
                    )]
                }
                Some(t) => msg![format!(
                    "the prediction is stored as {t}: is it a segmentation of class labels? give the network's \
                     probabilities or logits instead (for nnU-Net, the .npz it writes with --save_probabilities)"
                )],
                None if self.min >= 0.0 && self.max <= 255.0 && self.max > 1.5 => {
                    let scale = if self.max <= 100.0 { 100 } else { 255 };
                    msg![
                        format!(
                            "no value is negative, as few logits would be: probabilities scaled to 0–{scale}? divide \
                             them by {scale}; if the {} holds logits pass ",
                            match input {
                                Input::File(_) => "file",
                                Input::Array(_) => "array",
                            }
                        ),
                        set(Param::named("activation"), if channels > 1 { "softmax" } else { "sigmoid" }),
                    ]
                }
                None => msg![
                    format!(
                        "if the {} holds logits pass ",
                        match input {
                            Input::File(_) => "file",
                            Input::Array(_) => "array",
                        }
                    ),
                    set(Param::named("activation"), if channels > 1 { "softmax" } else { "sigmoid" }),
                ],
            });
            return Err(bad(m));
        }
        Ok(())
    }
}

/// What one pass over a block finds: its least and largest values (meaningful only when all are
/// finite), how many lie outside [0, 1], whether any is not finite.
struct BlockMeasure {
    min: f32,
    max: f32,
    outside_unit: u64,
    non_finite: bool,
}

crate::simd::avx2_or_portable! {
    /// [`BlockMeasure`] of `values`, in 8 independent lanes without branches, so that it
    /// vectorises.
    fn block_measure(values: &[f32]) -> BlockMeasure {
        const L: usize = 8;
        let (mut lo, mut hi, mut outside, mut non_finite) = ([f32::INFINITY; L], [f32::NEG_INFINITY; L], [0u32; L], [0u32; L]);
        let lanes = values.chunks_exact(L);
        let rest = lanes.remainder();
        let mut step = |l: usize, v: f32| {
            lo[l] = if v < lo[l] { v } else { lo[l] };
            hi[l] = if v > hi[l] { v } else { hi[l] };
            outside[l] += u32::from(!(0.0..=1.0).contains(&v));
            // every exponent bit set: infinite or NaN
            non_finite[l] |= u32::from(v.to_bits() & 0x7f80_0000 == 0x7f80_0000);
        };
        for chunk in lanes {
            for (l, &v) in chunk.iter().enumerate() {
                step(l, v);
            }
        }
        for (l, &v) in rest.iter().enumerate() {
            step(l, v);
        }
        BlockMeasure {
            min: lo.iter().copied().fold(f32::INFINITY, f32::min),
            max: hi.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            outside_unit: outside.iter().map(|&n| u64::from(n)).sum(),
            non_finite: non_finite.iter().any(|&n| n != 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_by_block_finds_what_value_by_value_finds() {
        let mut x: u64 = 7;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for case in 0..40 {
            let n = 1 + (next() % 9000) as usize;
            let mut values: Vec<f32> = (0..n).map(|_| (next() % 1000) as f32 / 999.0).collect();
            // a few values outside [0, 1], NaN or infinite, at random places
            for _ in 0..(case % 5) {
                let i = (next() as usize) % n;
                values[i] = match next() % 4 {
                    0 => f32::NAN,
                    1 => f32::INFINITY,
                    2 => -3.5,
                    _ => 1.25,
                };
            }
            let (mut fast, mut slow) = (ValueScan::default(), ValueScan::default());
            fast.add(100, &values);
            slow.add_each(100, &values);
            assert_eq!(fast.min.to_bits(), slow.min.to_bits(), "case {case}");
            assert_eq!(fast.max.to_bits(), slow.max.to_bits(), "case {case}");
            // (NaN is not equal to itself: compared as written)
            let seen = |s: &ValueScan| format!("{:?} {:?}", s.non_finite, s.outside_unit);
            assert_eq!(seen(&fast), seen(&slow), "case {case}");
        }
    }
}
