//! The 16-bit float fates of gradient values, alone and times a loss scale, checked against the
//! `half` crate's conversions.

use dicegrad::analysis::precision::{bfloat16, float16, Fate};
use half::{bf16, f16};

fn fate_of(is_zero: bool, is_subnormal: bool, is_inf: bool, input_zero: bool) -> Fate {
    match (input_zero, is_zero, is_subnormal, is_inf) {
        (true, ..) => Fate::Zero,
        (false, true, _, _) => Fate::FlushedToZero,
        (false, _, true, _) => Fate::Subnormal,
        (false, _, _, true) => Fate::Overflow,
        _ => Fate::Normal,
    }
}

/// Values around every threshold, plus a sweep over many magnitudes.
fn probes() -> Vec<f32> {
    let mut v = vec![0.0, -0.0, 65504.0, 65519.0, 65520.0, 1e30, f32::MIN_POSITIVE, f32::from_bits(1)];
    for e in [-25, -24, -15, -14, -126, -127, -133, -134, -135] {
        let t = 2f64.powi(e) as f32;
        for x in [t, f32::from_bits(t.to_bits() + 1), f32::from_bits(t.to_bits() - 1)] {
            v.push(x);
        }
    }
    let edge = 2f32.powi(-14) - 2f32.powi(-25);
    v.extend([edge, f32::from_bits(edge.to_bits() - 1), f32::from_bits(edge.to_bits() + 1)]);
    let mut x = 1.0e-40f32;
    while x < 1e6 {
        v.push(x);
        v.push(-x * 1.37);
        x *= 1.113;
    }
    v
}

#[test]
fn float16_fate_matches_the_half_crate() {
    for x in probes() {
        let h = f16::from_f32(x);
        let want =
            fate_of(h.to_f32() == 0.0, h.classify() == std::num::FpCategory::Subnormal, h.is_infinite(), x == 0.0);
        assert_eq!(float16(x), want, "x = {x:e}");
    }
}

#[test]
fn bfloat16_fate_matches_the_half_crate() {
    for x in probes() {
        let h = bf16::from_f32(x);
        let want =
            fate_of(h.to_f32() == 0.0, h.classify() == std::num::FpCategory::Subnormal, h.is_infinite(), x == 0.0);
        assert_eq!(bfloat16(x), want, "x = {x:e}");
    }
}

#[test]
fn fates_at_a_loss_scale_are_those_of_the_float32_product_cast_by_the_half_crate() {
    use dicegrad::analysis::precision::{at_scale, LossScale};
    for s in [1.0, 1000.0, 65536.0, 2f64.powi(24), 1e-30, 1e30] {
        let scale = LossScale::new(s).unwrap();
        for x in probes() {
            let y = x * scale.get();
            let (h, b) = (f16::from_f32(y), bf16::from_f32(y));
            let sub = std::num::FpCategory::Subnormal;
            let want16 = fate_of(h.to_f32() == 0.0, h.classify() == sub, h.is_infinite(), x == 0.0);
            let want_bf = fate_of(b.to_f32() == 0.0, b.classify() == sub, b.is_infinite(), x == 0.0);
            assert_eq!(at_scale(float16, x, scale), want16, "x = {x:e}, S = {s}");
            assert_eq!(at_scale(bfloat16, x, scale), want_bf, "x = {x:e}, S = {s}");
        }
    }
}
