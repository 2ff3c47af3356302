//! Mixed precision: what happens to the float32 gradient when a training run casts it to a 16-bit
//! float after multiplying it by a loss scale.
//!
//! Under PyTorch's CUDA autocast the softmax and the loss run in float32 (softmax is on autocast's
//! float32 list); what is cast to float16 is the gradient with respect to the network's output, the
//! logits, on its way back into the network's float16 layers. GradScaler multiplies the loss by a
//! scale S (2^16 at first, then halved after a step that overflows and doubled after 2000 steps
//! without one), so the values cast are S·g. Here g is the reported gradient (with respect to logits
//! through an activation; with respect to probabilities otherwise, where the figures describe that
//! gradient) and S the loss scale, rounded to float32 as GradScaler holds it; S·g is rounded to
//! float32 and then cast.
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
//!
//! The loss-scale window: every non-zero value is a normal, finite float16 when
//! 2^−14 / min|g| ≤ S ≤ 65504 / max|g| (bounds on the real numbers: rounding widens each by at
//! most half a unit in the last place). It is empty when max|g| / min|g| > 65504·2^14 ≈ 2^30: then
//! no single scale serves all values. For bfloat16 the bounds are 2^−126 and its largest finite
//! value, (2 − 2^−7)·2^127.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Param, Result};

pub use crate::simd::moments::{F16_NORMAL_MIN, F16_OVERFLOW, F16_ZERO_MAX};

/// The smallest normal float16, 2^−14.
pub const F16_SMALLEST_NORMAL: f64 = 6.103_515_625e-5;
/// The largest finite float16.
pub const F16_LARGEST: f64 = 65504.0;
/// The smallest normal bfloat16 (and float32), 2^−126.
pub const BF16_SMALLEST_NORMAL: f64 = 1.175_494_350_822_287_5e-38;
/// The largest finite bfloat16, (2 − 2^−7)·2^127.
pub const BF16_LARGEST: f64 = 3.389_531_389_251_535_5e38;

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

/// The fate of a gradient value `g` under the loss scale `s`: of float32(S·g) cast by `cast`. A
/// non-zero `g` whose product with S is 0 in float32 already is flushed to zero too.
#[inline]
pub fn at_scale(cast: fn(f32) -> Fate, g: f32, s: LossScale) -> Fate {
    if g == 0.0 {
        return Fate::Zero;
    }
    match cast(g * s.get()) {
        Fate::Zero => Fate::FlushedToZero,
        fate => fate,
    }
}

/// A loss scale S: a positive number that float32 holds as a positive finite value (to which it
/// is rounded, as GradScaler keeps its scale as a float32 tensor). The default is GradScaler's
/// initial scale, 2^16.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(try_from = "f64", into = "f64")]
pub struct LossScale(f32);

impl LossScale {
    /// GradScaler's initial scale, 2^16 (nnU-Net trains with it).
    pub const GRAD_SCALER_INITIAL: LossScale = LossScale(65536.0);

    /// The scale `s` rounded to float32; refused unless it is a positive finite number whose
    /// float32 rounding is positive and finite.
    pub fn new(s: f64) -> Result<LossScale> {
        let r = s as f32;
        if s.is_finite() && s > 0.0 && r.is_finite() && r > 0.0 {
            Ok(LossScale(r))
        } else {
            Err(Error::parameter(
                Param::LOSS_SCALE,
                format!(
                    "must be a positive finite number within float32's range (about 1.4e-45 to 3.4e38; \
                     GradScaler starts at 65536), got {}",
                    if s == 0.0 || (1e-4..1e16).contains(&s.abs()) { format!("{s}") } else { format!("{s:e}") }
                ),
            ))
        }
    }

    /// The scale as float32.
    pub fn get(self) -> f32 {
        self.0
    }
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale::GRAD_SCALER_INITIAL
    }
}

impl TryFrom<f64> for LossScale {
    type Error = Error;
    fn try_from(s: f64) -> Result<LossScale> {
        LossScale::new(s)
    }
}

impl From<LossScale> for f64 {
    fn from(s: LossScale) -> f64 {
        f64::from(s.0)
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
        self.add_n(fate, 1);
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
}

/// What a cast at the loss scale did to a set of values: the fates, and per side
/// `[background, foreground]` the sum of |g| over the values flushed to zero.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CastSums {
    pub counts: FateCounts,
    pub l1_flushed: [f64; 2],
}

impl CastSums {
    /// Adds `n` copies of the value `g` (magnitude `a`) of one side, of fate `fate`.
    #[inline]
    pub fn add_n(&mut self, fate: Fate, side: usize, a: f32, n: u64) {
        self.counts.add_n(fate, n);
        if fate == Fate::FlushedToZero {
            self.l1_flushed[side] += n as f64 * f64::from(a);
        }
    }

    pub fn merge(&mut self, o: &CastSums) {
        self.counts.merge(&o.counts);
        self.l1_flushed[0] += o.l1_flushed[0];
        self.l1_flushed[1] += o.l1_flushed[1];
    }

    fn flushed(&self) -> f64 {
        self.l1_flushed[0] + self.l1_flushed[1]
    }
}

/// What the mixed-precision figures of a set of gradient values are made of (one channel, or
/// several merged in channel order).
#[derive(Clone, Debug, PartialEq)]
pub struct PrecisionSums {
    pub scale: LossScale,
    /// Values (voxels × channels).
    pub values: u64,
    pub max_abs: f32,
    /// +∞ when every value is 0.
    pub min_nonzero_abs: f32,
    /// Σ |g| (f64 sum of the float32 magnitudes).
    pub l1: f64,
    pub float16: CastSums,
    pub bfloat16: CastSums,
}

impl PrecisionSums {
    /// Nothing yet, at scale `scale`.
    pub fn empty(scale: LossScale) -> PrecisionSums {
        PrecisionSums {
            scale,
            values: 0,
            max_abs: 0.0,
            min_nonzero_abs: f32::INFINITY,
            l1: 0.0,
            float16: CastSums::default(),
            bfloat16: CastSums::default(),
        }
    }

    /// Adds the values of `o` (taken at the same scale).
    pub fn merge(&mut self, o: &PrecisionSums) {
        self.values += o.values;
        self.max_abs = self.max_abs.max(o.max_abs);
        self.min_nonzero_abs = self.min_nonzero_abs.min(o.min_nonzero_abs);
        self.l1 += o.l1;
        self.float16.merge(&o.float16);
        self.bfloat16.merge(&o.bfloat16);
    }

    /// The figures.
    pub fn figures(&self) -> MixedPrecision {
        let min = self.min_nonzero_abs.is_finite().then_some(f64::from(self.min_nonzero_abs));
        let max = f64::from(self.max_abs);
        let at = |c: &CastSums| AtScale::of(self, c);
        MixedPrecision {
            loss_scale_window: ScaleWindow::of(min, max, F16_SMALLEST_NORMAL, F16_LARGEST),
            at_scale: at(&self.float16),
            bfloat16: Bfloat16 {
                loss_scale_window: ScaleWindow::of(min, max, BF16_SMALLEST_NORMAL, BF16_LARGEST),
                at_scale: at(&self.bfloat16),
            },
        }
    }
}

/// The loss scales S for which every non-zero value g of the gradient is a normal, finite 16-bit
/// float: `smallest_normal / min|g| ≤ S ≤ largest / max|g|`.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ScaleWindow {
    /// smallest normal / min |g| over the non-zero values (None when every value is 0: any scale).
    pub min: Option<f64>,
    /// largest finite / max |g| (None when every value is 0).
    pub max: Option<f64>,
    /// log2 of `min`.
    pub log2_min: Option<f64>,
    /// log2 of `max`.
    pub log2_max: Option<f64>,
    /// True when min > max: no scale keeps every non-zero value normal and finite.
    pub empty: bool,
}

impl ScaleWindow {
    /// The float16 window of a gradient whose non-zero magnitudes lie in [min_abs, max_abs]
    /// (`min_abs` None: every value is 0).
    pub fn float16(min_abs: Option<f64>, max_abs: f64) -> ScaleWindow {
        ScaleWindow::of(min_abs, max_abs, F16_SMALLEST_NORMAL, F16_LARGEST)
    }

    /// The scales that lie in every window of `windows` (windows of all-zero gradients, which
    /// allow any scale, aside): from the largest lower bound to the smallest upper one; None when
    /// no window bounds the scale.
    pub fn intersection<'a>(windows: impl IntoIterator<Item = &'a ScaleWindow>) -> Option<ScaleWindow> {
        let bounded = windows.into_iter().filter_map(|w| w.min.zip(w.max));
        let (lo, hi) = bounded.reduce(|(a, b), (c, d)| (a.max(c), b.min(d)))?;
        Some(ScaleWindow {
            min: Some(lo),
            max: Some(hi),
            log2_min: Some(lo.log2()),
            log2_max: Some(hi.log2()),
            empty: lo > hi,
        })
    }

    fn of(min_abs: Option<f64>, max_abs: f64, smallest_normal: f64, largest: f64) -> ScaleWindow {
        let Some(min_abs) = min_abs else {
            return ScaleWindow { min: None, max: None, log2_min: None, log2_max: None, empty: false };
        };
        let (lo, hi) = (smallest_normal / min_abs, largest / max_abs);
        ScaleWindow {
            min: Some(lo),
            max: Some(hi),
            log2_min: Some(lo.log2()),
            log2_max: Some(hi.log2()),
            empty: lo > hi,
        }
    }
}

/// What a cast at the loss scale does to the values: shares of all values (zeros included), and
/// of the L1 mass Σ|g|.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AtScale {
    /// The loss scale S (as float32).
    pub scale: f64,
    /// Non-zero values whose S·g becomes 0.
    pub zero_share: f64,
    /// Values whose S·g becomes subnormal (fewer significant bits).
    pub subnormal_share: f64,
    /// Values whose S·g becomes infinite.
    pub overflow_share: f64,
    /// Σ|g| over the values flushed to zero / Σ|g| (0 when every value is 0): the part of the
    /// gradient's L1 mass the cast removes.
    pub l1_lost_share: f64,
}

impl AtScale {
    fn of(p: &PrecisionSums, c: &CastSums) -> AtScale {
        let share = |n: u64| if p.values == 0 { 0.0 } else { n as f64 / p.values as f64 };
        AtScale {
            scale: f64::from(p.scale),
            zero_share: share(c.counts.flushed_to_zero),
            subnormal_share: share(c.counts.subnormal),
            overflow_share: share(c.counts.overflow),
            l1_lost_share: if p.l1 > 0.0 { c.flushed() / p.l1 } else { 0.0 },
        }
    }
}

/// The bfloat16 figures.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Bfloat16 {
    pub loss_scale_window: ScaleWindow,
    pub at_scale: AtScale,
}

/// What casting the gradient times a loss scale to float16 (and bfloat16) does to it.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct MixedPrecision {
    /// The float16 loss-scale window.
    pub loss_scale_window: ScaleWindow,
    /// float16 at the loss scale.
    pub at_scale: AtScale,
    pub bfloat16: Bfloat16,
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

    #[test]
    fn the_format_limits_are_the_numbers_they_name() {
        assert_eq!(F16_SMALLEST_NORMAL, 2f64.powi(-14));
        assert_eq!(BF16_SMALLEST_NORMAL, 2f64.powi(-126));
        assert_eq!(BF16_LARGEST, f64::from(f32::from_bits(0x7f7f_0000)));
        assert_eq!(F16_LARGEST, (2.0 - 2f64.powi(-10)) * 2f64.powi(15));
    }

    #[test]
    fn a_scale_moves_a_value_across_the_thresholds() {
        let s = LossScale::new(65536.0).unwrap();
        assert_eq!(at_scale(float16, 1e-9, s), Fate::Normal);
        assert_eq!(at_scale(float16, 1e-11, s), Fate::Subnormal);
        assert_eq!(at_scale(float16, 1e-15, s), Fate::FlushedToZero);
        assert_eq!(at_scale(float16, 1.0, s), Fate::Overflow);
        assert_eq!(at_scale(float16, -0.0, s), Fate::Zero);
        // a product that is 0 already in float32 is flushed
        let tiny = LossScale::new(1e-30).unwrap();
        assert_eq!(at_scale(bfloat16, 1e-30, tiny), Fate::FlushedToZero);
    }

    #[test]
    fn loss_scales_are_positive_and_finite_in_float32() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, -f64::INFINITY, 1e39, 1e-46] {
            let e = LossScale::new(bad).unwrap_err().to_string();
            assert!(e.starts_with("loss_scale must be a positive finite number"), "{bad}: {e}");
        }
        assert_eq!(LossScale::new(1000.0).unwrap().get(), 1000.0);
        assert_eq!(LossScale::default().get(), 65536.0);
        assert_eq!(serde_json::to_string(&LossScale::default()).unwrap(), "65536.0");
        assert!(serde_json::from_str::<LossScale>("-2.0").is_err());
    }

    #[test]
    fn the_window_is_empty_when_the_magnitudes_span_more_than_float16_can_hold() {
        let w = ScaleWindow::of(Some(2f64.powi(-20)), 1.0, F16_SMALLEST_NORMAL, F16_LARGEST);
        assert_eq!((w.log2_min, w.empty), (Some(6.0), false));
        assert!((w.max.unwrap() - 65504.0).abs() == 0.0);
        let w = ScaleWindow::of(Some(2f64.powi(-40)), 1.0, F16_SMALLEST_NORMAL, F16_LARGEST);
        assert!(w.empty);
        let none = ScaleWindow::of(None, 0.0, F16_SMALLEST_NORMAL, F16_LARGEST);
        assert_eq!((none.min, none.empty), (None, false));
    }
}
