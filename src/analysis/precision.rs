//! What happens to a float32 gradient value when it is cast to a 16-bit float for mixed-precision
//! training: does it stay normal, become subnormal (lost precision), flush to zero, or overflow?
//!
//! Both casts round to nearest, ties to even, as `torch.Tensor.half()` / `.bfloat16()` do.
//!
//! float16 (1 sign, 5 exponent, 10 mantissa bits): smallest normal 2^−14, subnormal spacing 2^−24,
//! largest finite 65504. With round-to-nearest-even, |x| ≤ 2^−25 becomes 0; 2^−25 < |x| <
//! 2^−14 − 2^−25 becomes subnormal; |x| ≥ 65520 becomes infinite.
//!
//! bfloat16 (1 sign, 8 exponent, 7 mantissa bits): the exponent range of float32, so only values
//! that are already float32-subnormal (below 2^−126) can become subnormal or zero. Computed exactly
//! from the bits: round the low 16 bits away, ties to even, then read the exponent field.

use serde::Serialize;

/// The fate of one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Exactly zero already.
    Zero,
    /// Stays a normal number.
    Normal,
    /// Becomes a subnormal number (fewer significant bits).
    Subnormal,
    /// A non-zero value that becomes 0.
    FlushedToZero,
    /// Becomes ±infinity.
    Overflow,
}

pub use crate::simd::moments::{F16_NORMAL_MIN, F16_OVERFLOW, F16_ZERO_MAX};

/// Fate of `x` cast to float16.
pub fn float16(x: f32) -> Fate {
    let a = x.abs();
    if a == 0.0 {
        Fate::Zero
    } else if a <= F16_ZERO_MAX {
        Fate::FlushedToZero
    } else if a < F16_NORMAL_MIN {
        Fate::Subnormal
    } else if a >= F16_OVERFLOW {
        Fate::Overflow
    } else {
        Fate::Normal
    }
}

/// Fate of `x` cast to bfloat16.
pub fn bfloat16(x: f32) -> Fate {
    let bits = x.to_bits() & 0x7fff_ffff;
    if bits == 0 {
        return Fate::Zero;
    }
    let lsb = (bits >> 16) & 1;
    let rounded = (bits + 0x7fff + lsb) >> 16;
    let exponent = rounded >> 7;
    match (exponent, rounded & 0x7f) {
        (0, 0) => Fate::FlushedToZero,
        (0, _) => Fate::Subnormal,
        (0xff, _) => Fate::Overflow,
        _ => Fate::Normal,
    }
}

/// Counts of fates over a set of values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FateCounts {
    pub subnormal: u64,
    pub flushed_to_zero: u64,
    pub overflow: u64,
}

impl FateCounts {
    #[inline]
    pub fn add(&mut self, fate: Fate) {
        match fate {
            Fate::Subnormal => self.subnormal += 1,
            Fate::FlushedToZero => self.flushed_to_zero += 1,
            Fate::Overflow => self.overflow += 1,
            Fate::Zero | Fate::Normal => {}
        }
    }

    /// Adds `n` values of the same fate.
    #[inline]
    pub fn add_n(&mut self, fate: Fate, n: u64) {
        match fate {
            Fate::Subnormal => self.subnormal += n,
            Fate::FlushedToZero => self.flushed_to_zero += n,
            Fate::Overflow => self.overflow += n,
            Fate::Zero | Fate::Normal => {}
        }
    }

    pub fn merge(&mut self, o: &FateCounts) {
        self.subnormal += o.subnormal;
        self.flushed_to_zero += o.flushed_to_zero;
        self.overflow += o.overflow;
    }

    /// Shares of `total` values.
    pub fn shares(&self, total: u64) -> Headroom {
        let t = total.max(1) as f64;
        Headroom {
            flushed_to_zero: self.flushed_to_zero as f64 / t,
            subnormal: self.subnormal as f64 / t,
            lost: (self.flushed_to_zero + self.subnormal) as f64 / t,
            overflow: self.overflow as f64 / t,
        }
    }
}

/// Shares (0–1) of a channel's gradient values, over all its voxels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Headroom {
    /// Non-zero values that become exactly 0.
    pub flushed_to_zero: f64,
    /// Values that become subnormal (fewer than full significant bits).
    pub subnormal: f64,
    /// flushed_to_zero + subnormal: values that lose precision or vanish.
    pub lost: f64,
    /// Values that become infinite.
    pub overflow: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfloat16_keeps_small_normal_floats() {
        assert_eq!(bfloat16(1e-30), Fate::Normal);
        assert_eq!(bfloat16(f32::MIN_POSITIVE), Fate::Normal);
        assert_eq!(bfloat16(f32::MIN_POSITIVE / 4.0), Fate::Subnormal);
        assert_eq!(bfloat16(f32::from_bits(1)), Fate::FlushedToZero);
        assert_eq!(bfloat16(f32::MAX), Fate::Overflow);
        assert_eq!(bfloat16(-0.0), Fate::Zero);
    }
}
