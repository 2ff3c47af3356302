//! Raw voxel bytes to numbers: every supported datatype, both byte orders, NIfTI scaling.
//!
//! Scaling follows the NIfTI standard as nibabel applies it: `value = stored * scl_slope +
//! scl_inter` when `scl_slope` is finite and non-zero; a slope of 0 or NaN means no scaling (a
//! non-finite intercept is read as 0). Scaled values are computed in f64.
//!
//! Values are held as float32: a finite value beyond its range (|v| ≥ 2^128 − 2^103, about
//! 3.4e38, after rounding; float64 data or scaling) becomes ±∞, and [`beyond_f32`] finds those so
//! that they can be named with the value the file holds.

use super::header::DataType;

macro_rules! for_each_value {
    ($dt:expr, $big:expr, $bytes:expr, |$v:ident| $body:expr) => {{
        macro_rules! arm {
            ($t:ty) => {{
                const S: usize = std::mem::size_of::<$t>();
                if $big {
                    for c in $bytes.chunks_exact(S) {
                        let $v = <$t>::from_be_bytes(c.try_into().unwrap());
                        $body;
                    }
                } else {
                    for c in $bytes.chunks_exact(S) {
                        let $v = <$t>::from_le_bytes(c.try_into().unwrap());
                        $body;
                    }
                }
            }};
        }
        match $dt {
            DataType::U8 => arm!(u8),
            DataType::I8 => arm!(i8),
            DataType::I16 => arm!(i16),
            DataType::U16 => arm!(u16),
            DataType::I32 => arm!(i32),
            DataType::U32 => arm!(u32),
            DataType::I64 => arm!(i64),
            DataType::U64 => arm!(u64),
            DataType::F32 => arm!(f32),
            DataType::F64 => arm!(f64),
        }
    }};
}

/// Appends the values of `bytes` to `out` as f32, applying `scaling` (in f64) when given.
/// Unscaled float32 data is copied exactly; other types are rounded to the nearest f32.
pub fn extend_f32(dt: DataType, big: bool, scaling: Option<(f64, f64)>, bytes: &[u8], out: &mut Vec<f32>) {
    match scaling {
        None => for_each_value!(dt, big, bytes, |v| out.push(v as f32)),
        Some((slope, inter)) => for_each_value!(dt, big, bytes, |v| out.push((v as f64 * slope + inter) as f32)),
    }
}

/// Replaces the contents of `out` with the values of `bytes` as f64, applying `scaling` when given.
/// 64-bit integers beyond 2^53 lose precision, as in nibabel.
pub fn fill_f64(dt: DataType, big: bool, scaling: Option<(f64, f64)>, bytes: &[u8], out: &mut Vec<f64>) {
    out.clear();
    match scaling {
        None => for_each_value!(dt, big, bytes, |v| out.push(v as f64)),
        Some((slope, inter)) => {
            for_each_value!(dt, big, bytes, |v| out.push(v as f64 * slope + inter))
        }
    }
}

/// Calls `f(j, value)` for each value of `bytes` (the j-th) that is finite as the file gives it
/// (after `scaling`, in f64) but beyond float32's range, so that it becomes ±∞ in float32.
/// Only float64 values and scaled values can be; callers look only at chunks where an infinity
/// appeared.
pub fn beyond_f32(dt: DataType, big: bool, scaling: Option<(f64, f64)>, bytes: &[u8], mut f: impl FnMut(usize, f64)) {
    let mut wide = Vec::with_capacity(bytes.len() / dt.size());
    fill_f64(dt, big, scaling, bytes, &mut wide);
    for (j, &v) in wide.iter().enumerate() {
        if v.is_finite() && (v as f32).is_infinite() {
            f(j, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_int16_with_scaling() {
        let bytes = [0x01u8, 0x00, 0xff, 0xfe]; // 256, -2
        let mut out = Vec::new();
        extend_f32(DataType::I16, true, Some((0.5, 1.0)), &bytes, &mut out);
        assert_eq!(out, vec![129.0, 0.0]);
    }

    #[test]
    fn reads_little_endian_float64_without_scaling() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0.25f64.to_le_bytes());
        bytes.extend_from_slice(&(-3.5f64).to_le_bytes());
        let mut out = vec![7.0];
        fill_f64(DataType::F64, false, None, &bytes, &mut out);
        assert_eq!(out, vec![0.25, -3.5]);
    }

    #[test]
    fn finds_float64_and_scaled_values_beyond_float32() {
        let mut bytes = Vec::new();
        for v in [1e300, f64::INFINITY, 3.4e38, -4e38, f64::NAN] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let mut found = Vec::new();
        beyond_f32(DataType::F64, false, None, &bytes, |j, v| found.push((j, v)));
        assert_eq!(found, vec![(0, 1e300), (3, -4e38)]);
        found.clear();
        let stored: Vec<u8> = [1i16, 100].iter().flat_map(|v| v.to_le_bytes()).collect();
        beyond_f32(DataType::I16, false, Some((1e37, 0.0)), &stored, |j, v| found.push((j, v)));
        assert_eq!(found, vec![(1, 100.0 * 1e37)]);
    }

    #[test]
    fn reads_signed_bytes_as_negative_values() {
        let mut out = Vec::new();
        extend_f32(DataType::I8, false, None, &[0xfd], &mut out);
        assert_eq!(out, vec![-3.0]);
    }
}
