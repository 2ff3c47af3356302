//! Headers of outputs: a copy of an input's header with only the data fields changed, or a fresh
//! header for a new volume (synthetic cases).
//!
//! An output is NIfTI-1 whenever NIfTI-1 can hold its shape (at most 7 dimensions, each at most
//! 32767 = i16::MAX) and its geometry (no double of a NIfTI-2 input that float32 turns into 0 or
//! infinity, such as a voxel size of 1e-50), so that outputs of NIfTI-1 inputs are the input's header byte for byte but
//! for the data fields. A larger dimension (possible in a NIfTI-2 input, or in an `.npz` with many
//! channels) is written as NIfTI-2: 540-byte header, 64-bit dimensions, data at byte 544, with the
//! input's geometry — the NIfTI-2 input's own fields in double precision, or a NIfTI-1 input's
//! fields widened exactly to double.
//!
//! The fields both versions hold (`SHARED`, `TEXT`) are converted one to one: dim_info,
//! intent (code, parameters, name), slice fields, pixdim (qfac and voxel sizes), units, qform and
//! sform (codes, quaternion, offsets, rows), descrip and aux_file. Doubles are rounded to float32
//! for a NIfTI-1 output; integers beyond a NIfTI-1 field's range are clamped to it.

use super::header::HeaderTemplate;
use super::header::{DataType, DATA_OFFSET, HEADER_LEN};
use super::nifti2::{swap_v2, HEADER2_LEN, MAGIC2};

/// Writes numbers into a header in its byte order.
struct FieldsMut<'a> {
    b: &'a mut [u8; HEADER_LEN],
    big: bool,
}

impl FieldsMut<'_> {
    fn i16(&mut self, off: usize, v: i16) {
        let bytes = if self.big { v.to_be_bytes() } else { v.to_le_bytes() };
        self.b[off..off + 2].copy_from_slice(&bytes);
    }
    fn i32(&mut self, off: usize, v: i32) {
        let bytes = if self.big { v.to_be_bytes() } else { v.to_le_bytes() };
        self.b[off..off + 4].copy_from_slice(&bytes);
    }
    fn f32(&mut self, off: usize, v: f32) {
        let bytes = if self.big { v.to_be_bytes() } else { v.to_le_bytes() };
        self.b[off..off + 4].copy_from_slice(&bytes);
    }
}

/// Whether a NIfTI-1 header can hold dimensions `dims`.
pub fn fits_nifti1(dims: &[usize]) -> bool {
    dims.len() <= 7 && dims.iter().all(|&d| d <= i16::MAX as usize)
}

/// Whether the double-precision geometry of a NIfTI-2 template survives rounding to float32
/// (always, for a NIfTI-1 template): no value that float32 turns into 0 or infinity.
pub fn geometry_fits_f32(template: &HeaderTemplate) -> bool {
    let Some(v2) = &template.nifti2 else { return true };
    SHARED.iter().filter(|(_, _, _, n2, _)| matches!(n2, F64)).all(|&(_, _, off2, n2, count)| {
        (0..count).all(|i| {
            let v = n2.get(&v2[..], off2 + i * n2.size(), false);
            v == 0.0 || (v.abs() >= f64::from(f32::MIN_POSITIVE) && v.abs() <= f64::from(f32::MAX))
        })
    })
}

/// The header of an output with `template`'s geometry, followed by the 4-byte extension flag
/// (no extensions), so that the voxel data follows it directly: NIfTI-1 (352 bytes) when
/// [`fits_nifti1`] and [`geometry_fits_f32`], else NIfTI-2 (544 bytes). Datatype `datatype`, dimensions `dims`, no scaling,
/// no display range, in the template's byte order (the order the data must be written in).
pub fn output_header(template: &HeaderTemplate, dims: &[usize], datatype: DataType) -> Vec<u8> {
    let mut out = if fits_nifti1(dims) && geometry_fits_f32(template) {
        typed_header(template, dims, datatype).to_vec()
    } else {
        nifti2_header(template, dims, datatype).to_vec()
    };
    out.extend_from_slice(&[0u8; 4]);
    out
}

/// The header of a float32 output with the template's geometry: datatype float32, bitpix 32,
/// `dims` as given, no scaling (slope 1, intercept 0), no display range, data at byte 352, no
/// extensions, same byte order. Everything else (pixdim, affine, codes, units, description) is
/// copied byte for byte. NIfTI-1: `dims` must fit ([`fits_nifti1`]); see [`output_header`].
pub fn float32_header(template: &HeaderTemplate, dims: &[usize]) -> [u8; HEADER_LEN] {
    typed_header(template, dims, DataType::F32)
}

/// Like [`float32_header`] for any datatype.
pub fn typed_header(template: &HeaderTemplate, dims: &[usize], datatype: DataType) -> [u8; HEADER_LEN] {
    debug_assert!(fits_nifti1(dims), "dims {dims:?} need NIfTI-2");
    let mut bytes = *template.bytes;
    let mut f = FieldsMut { b: &mut bytes, big: template.big_endian };
    f.i16(40, dims.len() as i16);
    for i in 0..7 {
        f.i16(42 + 2 * i, dims.get(i).map_or(1, |&d| d as i16));
    }
    f.i16(70, datatype.code());
    f.i16(72, (datatype.size() * 8) as i16);
    f.f32(108, DATA_OFFSET as f32);
    f.f32(112, 1.0);
    f.f32(116, 0.0);
    f.f32(124, 0.0);
    f.f32(128, 0.0);
    f.i32(140, 0);
    f.i32(144, 0);
    bytes
}

/// The NIfTI-2 header of an output (see [`output_header`]): the template's NIfTI-2 fields when it
/// came from a NIfTI-2 file, else its NIfTI-1 fields widened; the data fields set as for NIfTI-1
/// (datatype, bitpix, dim, vox_offset 544, slope 1, intercept 0, cal_max = cal_min = 0).
pub fn nifti2_header(template: &HeaderTemplate, dims: &[usize], datatype: DataType) -> [u8; HEADER2_LEN] {
    let mut b = match &template.nifti2 {
        Some(v2) => **v2,
        None => widen(template),
    };
    let mut put = |off: usize, le: &[u8]| b[off..off + le.len()].copy_from_slice(le);
    put(12, &datatype.code().to_le_bytes());
    put(14, &((datatype.size() * 8) as i16).to_le_bytes());
    put(16, &(dims.len().min(7) as i64).to_le_bytes());
    for i in 0..7 {
        put(24 + 8 * i, &(dims.get(i).map_or(1, |&d| d as i64)).to_le_bytes());
    }
    put(168, &((HEADER2_LEN + 4) as i64).to_le_bytes());
    put(176, &1f64.to_le_bytes());
    for off in [184, 192, 200] {
        put(off, &0f64.to_le_bytes());
    }
    if template.big_endian {
        swap_v2(&mut b);
    }
    b
}

/// A fresh little-endian header for a new volume: voxel size `voxel_size` (mm), and both qform and
/// sform (code 1, scanner anatomical) set to a diagonal affine with the given origin.
pub fn new_template(voxel_size: [f32; 3], origin: [f32; 3], description: &str) -> HeaderTemplate {
    let mut bytes = [0u8; HEADER_LEN];
    {
        let mut f = FieldsMut { b: &mut bytes, big: false };
        f.i32(0, HEADER_LEN as i32);
        f.f32(76, 1.0); // qfac
        for (i, v) in voxel_size.iter().enumerate() {
            f.f32(80 + 4 * i, *v);
        }
        f.i16(252, 1);
        f.i16(254, 1);
        for (i, v) in origin.iter().enumerate() {
            f.f32(268 + 4 * i, *v);
        }
        for r in 0..3 {
            f.f32(280 + 16 * r + 4 * r, voxel_size[r]);
            f.f32(280 + 16 * r + 12, origin[r]);
        }
    }
    bytes[123] = 2 | 8; // mm, seconds
    let d = description.as_bytes();
    let n = d.len().min(79);
    bytes[148..148 + n].copy_from_slice(&d[..n]);
    bytes[344..348].copy_from_slice(b"n+1\0");
    HeaderTemplate { bytes: Box::new(bytes), big_endian: false, nifti2: None }
}

impl HeaderTemplate {
    /// The template of an output that says what it holds: `descrip` (at most 79 bytes, cut at a
    /// character boundary) and the intent — code 0 (NIFTI_INTENT_NONE), parameters 0, and
    /// `intent_name` (at most 15 bytes) — in both versions' fields. Geometry is unchanged.
    pub fn describing(&self, descrip: &str, intent_name: &str) -> HeaderTemplate {
        let mut t = self.clone();
        let text = |s: &str, len: usize| -> Vec<u8> {
            let mut end = s.len().min(len - 1);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            let mut b = s.as_bytes()[..end].to_vec();
            b.resize(len, 0);
            b
        };
        let (d, n) = (text(descrip, 80), text(intent_name, 16));
        // intent_p1..3 and intent_code: zero in either byte order
        t.bytes[56..70].fill(0);
        t.bytes[148..228].copy_from_slice(&d);
        t.bytes[328..344].copy_from_slice(&n);
        if let Some(v2) = &mut t.nifti2 {
            v2[80..104].fill(0);
            v2[504..508].fill(0);
            v2[240..320].copy_from_slice(&d);
            v2[508..524].copy_from_slice(&n);
        }
        t
    }
}

/// How a number is stored in a header field.
#[derive(Clone, Copy)]
enum Num {
    U8,
    I16,
    I32,
    I64,
    F32,
    F64,
}

use Num::*;

impl Num {
    fn size(self) -> usize {
        match self {
            U8 => 1,
            I16 => 2,
            I32 | F32 => 4,
            I64 | F64 => 8,
        }
    }

    /// The value at `b[off..]` (byte order `big`), exactly, as a double.
    fn get(self, b: &[u8], off: usize, big: bool) -> f64 {
        let mut a = [0u8; 8];
        a[..self.size()].copy_from_slice(&b[off..off + self.size()]);
        if big {
            a[..self.size()].reverse();
        }
        match self {
            U8 => a[0] as f64,
            I16 => i16::from_le_bytes([a[0], a[1]]) as f64,
            I32 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
            I64 => i64::from_le_bytes(a) as f64,
            F32 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
            F64 => f64::from_le_bytes(a),
        }
    }

    /// Stores `v` little-endian at `b[off..]`: rounded to float32, or an integer clamped to the
    /// field's range.
    fn put(self, b: &mut [u8], off: usize, v: f64) {
        let le: Vec<u8> = match self {
            U8 => vec![v.clamp(0.0, u8::MAX as f64) as u8],
            I16 => (v.clamp(i16::MIN as f64, i16::MAX as f64) as i16).to_le_bytes().to_vec(),
            I32 => (v.clamp(i32::MIN as f64, i32::MAX as f64) as i32).to_le_bytes().to_vec(),
            I64 => (v as i64).to_le_bytes().to_vec(),
            F32 => (v as f32).to_le_bytes().to_vec(),
            F64 => v.to_le_bytes().to_vec(),
        };
        b[off..off + le.len()].copy_from_slice(&le);
    }
}

/// Numeric fields both versions hold: (NIfTI-1 offset, type, NIfTI-2 offset, type, count).
const SHARED: [(usize, Num, usize, Num, usize); 11] = [
    (39, U8, 524, U8, 1),     // dim_info
    (56, F32, 80, F64, 3),    // intent_p1, intent_p2, intent_p3
    (68, I16, 504, I32, 1),   // intent_code
    (74, I16, 224, I64, 1),   // slice_start
    (76, F32, 104, F64, 8),   // pixdim[0..8] (qfac, voxel sizes, ...)
    (120, I16, 232, I64, 1),  // slice_end
    (122, U8, 496, I32, 1),   // slice_code
    (123, U8, 500, I32, 1),   // xyzt_units
    (132, F32, 208, F64, 2),  // slice_duration, toffset
    (252, I16, 344, I32, 2),  // qform_code, sform_code
    (256, F32, 352, F64, 18), // quatern_b..d, qoffset_x..z, srow_x, srow_y, srow_z
];

/// Text fields both versions hold: (NIfTI-1 offset, NIfTI-2 offset, length): descrip, aux_file,
/// intent_name.
const TEXT: [(usize, usize, usize); 3] = [(148, 240, 80), (228, 320, 24), (328, 508, 16)];

/// Copies the shared fields from `from` (NIfTI-1 when `to_v2`, byte order `big`) into `to`
/// (little-endian).
fn convert(from: &[u8], big: bool, to: &mut [u8], to_v2: bool) {
    for (off1, n1, off2, n2, count) in SHARED {
        let (src, sn, dst, dn) = if to_v2 { (off1, n1, off2, n2) } else { (off2, n2, off1, n1) };
        for i in 0..count {
            dn.put(to, dst + i * dn.size(), sn.get(from, src + i * sn.size(), big));
        }
    }
    for (off1, off2, len) in TEXT {
        let (src, dst) = if to_v2 { (off1, off2) } else { (off2, off1) };
        to[dst..dst + len].copy_from_slice(&from[src..src + len]);
    }
}

/// A little-endian NIfTI-2 header with the geometry of a NIfTI-1 template (every float32 widened
/// exactly); data fields left for the caller.
fn widen(template: &HeaderTemplate) -> [u8; HEADER2_LEN] {
    let mut b = [0u8; HEADER2_LEN];
    b[0..4].copy_from_slice(&(HEADER2_LEN as i32).to_le_bytes());
    b[4..12].copy_from_slice(MAGIC2);
    convert(&template.bytes[..], template.big_endian, &mut b, true);
    b
}

/// The template of a NIfTI-2 input: its header (`le`, already little-endian) kept for NIfTI-2
/// outputs, and a little-endian NIfTI-1 header with the same geometry (doubles rounded to
/// float32) for outputs that NIfTI-1 can hold.
pub(super) fn from_nifti2(le: &[u8; HEADER2_LEN]) -> HeaderTemplate {
    let mut bytes = [0u8; HEADER_LEN];
    bytes[0..4].copy_from_slice(&(HEADER_LEN as i32).to_le_bytes());
    convert(le, false, &mut bytes, false);
    bytes[344..348].copy_from_slice(b"n+1\0");
    HeaderTemplate { bytes: Box::new(bytes), big_endian: false, nifti2: Some(Box::new(*le)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nifti2_geometry_that_float32_cannot_hold_keeps_the_output_nifti2() {
        let mut v2 = widen(&new_template([1.0, 1.0, 1.0], [0.0; 3], ""));
        let t = from_nifti2(&v2);
        assert!(geometry_fits_f32(&t));
        assert_eq!(output_header(&t, &[4, 4, 4], DataType::F32).len(), DATA_OFFSET);
        // pixdim[1] (voxel size x) of 1e-50: 0 in float32
        v2[104 + 8..104 + 16].copy_from_slice(&1e-50f64.to_le_bytes());
        let t = from_nifti2(&v2);
        assert!(!geometry_fits_f32(&t));
        assert_eq!(output_header(&t, &[4, 4, 4], DataType::F32).len(), HEADER2_LEN + 4);
        // an srow entry of 1e40: infinite in float32
        let mut v2 = widen(&new_template([1.0, 1.0, 1.0], [0.0; 3], ""));
        v2[400..408].copy_from_slice(&1e40f64.to_le_bytes());
        assert!(!geometry_fits_f32(&from_nifti2(&v2)));
    }

    /// A NIfTI-1 template with every shared field set: geometry, intent, slice fields, text.
    fn full_template() -> HeaderTemplate {
        let mut t = new_template([0.5, 0.75, 2.5], [-10.0, 20.25, -30.5], "made by hand");
        let b = &mut t.bytes;
        b[39] = 0b11_10_01; // dim_info
        b[56..60].copy_from_slice(&0.125f32.to_le_bytes()); // intent_p1
        b[68..70].copy_from_slice(&1007i16.to_le_bytes()); // intent_code
        b[74..76].copy_from_slice(&3i16.to_le_bytes()); // slice_start
        b[120..122].copy_from_slice(&9i16.to_le_bytes()); // slice_end
        b[122] = 4; // slice_code
        b[132..136].copy_from_slice(&1.5f32.to_le_bytes()); // slice_duration
        b[228..235].copy_from_slice(b"aux.txt");
        b[328..333].copy_from_slice(b"probs");
        t
    }

    #[test]
    fn shapes_nifti1_cannot_hold_are_told_apart() {
        assert!(fits_nifti1(&[32767, 1, 1, 255]));
        assert!(!fits_nifti1(&[32768, 1, 1]));
        assert!(!fits_nifti1(&[1, 1, 1, 1, 1, 1, 1, 1]));
    }

    #[test]
    fn a_nifti1_template_widens_to_nifti2_and_back_exactly() {
        let t = full_template();
        let wide = widen(&t);
        assert_eq!(i32::from_le_bytes(wide[0..4].try_into().unwrap()), 540);
        assert_eq!(&wide[4..12], b"n+2\0\r\n\x1a\n");
        let f64_at = |off: usize| f64::from_le_bytes(wide[off..off + 8].try_into().unwrap());
        assert_eq!((f64_at(120), f64_at(128)), (0.75, 2.5), "pixdim[2], pixdim[3]");
        assert_eq!(f64_at(80), 0.125, "intent_p1");
        assert_eq!(i32::from_le_bytes(wide[504..508].try_into().unwrap()), 1007, "intent_code");
        assert_eq!(i64::from_le_bytes(wide[224..232].try_into().unwrap()), 3, "slice_start");
        assert_eq!((f64_at(400 + 24), f64_at(432 + 24)), (-10.0, 20.25), "srow_x[3], srow_y[3]");
        assert_eq!(&wide[240..252], b"made by hand");
        assert_eq!(&wide[508..513], b"probs");
        // and back: the same NIfTI-1 header, byte for byte
        assert_eq!(*from_nifti2(&wide).bytes, *t.bytes);
    }

    #[test]
    fn a_big_endian_template_gives_a_big_endian_nifti2_header() {
        let le = full_template();
        // the same header in big-endian order, written by nifti1.h's field sizes
        let mut be = le.clone();
        be.big_endian = true;
        let sizes: [(usize, usize, usize); 12] = [
            (0, 4, 1),
            (56, 4, 3),
            (68, 2, 1),
            (74, 2, 1),
            (76, 4, 8),
            (120, 2, 1),
            (132, 4, 2),
            (252, 2, 2),
            (256, 4, 18),
            (40, 2, 8),
            (70, 2, 2),
            (108, 4, 3),
        ];
        for (off, size, count) in sizes {
            for v in be.bytes[off..off + size * count].chunks_exact_mut(size) {
                v.reverse();
            }
        }
        let dims = [40000, 2, 1];
        let mut h = nifti2_header(&be, &dims, DataType::F32);
        assert_eq!(i32::from_be_bytes(h[0..4].try_into().unwrap()), 540);
        swap_v2(&mut h);
        assert_eq!(h, nifti2_header(&le, &dims, DataType::F32));
        assert_eq!(i64::from_le_bytes(h[24..32].try_into().unwrap()), 40000);
    }
}
