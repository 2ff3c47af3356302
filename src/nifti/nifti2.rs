//! NIfTI-2 headers (540 bytes: 64-bit dimensions, double-precision geometry). They are read into
//! the same [`Header`] as NIfTI-1. The header is kept (in little-endian order) so that outputs
//! NIfTI-1 cannot hold are written as NIfTI-2 with the input's own fields; outputs NIfTI-1 can
//! hold are written as NIfTI-1 with the same geometry (see [`super::template`]: dimensions, voxel
//! size, qform/sform codes and parameters, units, intent, description), the double-precision
//! fields rounded to float32.
//!
//! Layout (nifti2.h): sizeof_hdr i32 @0, magic "n+2\0\r\n\x1a\n" @4, datatype i16 @12, bitpix i16
//! @14, dim `i64[8]` @16, intent_p1..3 f64 @80, pixdim `f64[8]` @104, vox_offset i64 @168,
//! scl_slope f64 @176, scl_inter f64 @184, cal_max, cal_min, slice_duration, toffset f64 @192..224,
//! slice_start, slice_end i64 @224, @232, descrip @240 (80), aux_file @320 (24), qform_code i32
//! @344, sform_code i32 @348, quatern_b,c,d f64 @352, qoffset_x,y,z f64 @376, srow_x,y,z `f64[4]`
//! @400, slice_code i32 @496, xyzt_units i32 @500, intent_code i32 @504, intent_name @508 (16),
//! dim_info @524, unused @525 (15).

use super::header::{Header, HeaderProblem, Raw};
use super::template::from_nifti2;

/// Size of a NIfTI-2 header.
pub const HEADER2_LEN: usize = 540;

/// The magic of a single-file NIfTI-2 volume.
pub const MAGIC2: &[u8; 8] = b"n+2\0\r\n\x1a\n";

/// The numeric fields of a NIfTI-2 header: (offset, bytes per value, count). Everything else is
/// text or single bytes.
const NUMERIC: [(usize, usize, usize); 10] = [
    (0, 4, 1),    // sizeof_hdr
    (12, 2, 2),   // datatype, bitpix
    (16, 8, 8),   // dim
    (80, 8, 3),   // intent_p1..3
    (104, 8, 8),  // pixdim
    (168, 8, 1),  // vox_offset
    (176, 8, 8),  // scl_slope, scl_inter, cal_max, cal_min, slice_duration, toffset, slice_start, slice_end
    (344, 4, 2),  // qform_code, sform_code
    (352, 8, 18), // quatern, qoffset, srow_x, srow_y, srow_z
    (496, 4, 3),  // slice_code, xyzt_units, intent_code
];

/// Reverses the byte order of every numeric field (little- to big-endian and back).
pub fn swap_v2(b: &mut [u8; HEADER2_LEN]) {
    for (off, size, count) in NUMERIC {
        for v in b[off..off + size * count].chunks_exact_mut(size) {
            v.reverse();
        }
    }
}

/// Reads numbers from a little-endian header.
struct Fields<'a>(&'a [u8; HEADER2_LEN]);

impl Fields<'_> {
    fn bytes<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&self.0[off..off + N]);
        a
    }
    fn i16(&self, off: usize) -> i16 {
        i16::from_le_bytes(self.bytes(off))
    }
    fn i32(&self, off: usize) -> i32 {
        i32::from_le_bytes(self.bytes(off))
    }
    fn i64(&self, off: usize) -> i64 {
        i64::from_le_bytes(self.bytes(off))
    }
    fn f64(&self, off: usize) -> f64 {
        f64::from_le_bytes(self.bytes(off))
    }
}

/// Parses and validates a single-file NIfTI-2 header (same checks as NIfTI-1).
pub fn parse_v2(bytes: &[u8; HEADER2_LEN]) -> Result<Header, HeaderProblem> {
    use HeaderProblem::*;
    let big = match i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) {
        540 => false,
        _ if i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) == 540 => true,
        other => return Err(NotNifti(format!("header size field is {other}, expected 540"))),
    };
    match &bytes[4..12] {
        m if m == MAGIC2 => {}
        b"ni2\0\r\n\x1a\n" => {
            return Err(Invalid(
                "two-file NIfTI-2 (.hdr/.img) is not supported; convert it to a single .nii or .nii.gz file".into(),
            ))
        }
        m => return Err(NotNifti(format!("magic is {:?}, expected \"n+2\"", String::from_utf8_lossy(m)))),
    }
    let mut le = *bytes;
    if big {
        swap_v2(&mut le);
    }
    let f = Fields(&le);
    let clamp16 = |v: i32| v.clamp(i16::MIN as i32, i16::MAX as i32) as i16;
    let mut srow = [[0f64; 4]; 3];
    for (r, row) in srow.iter_mut().enumerate() {
        for (c, v) in row.iter_mut().enumerate() {
            *v = f.f64(400 + 32 * r + 8 * c);
        }
    }
    let raw = Raw {
        header_len: HEADER2_LEN,
        big_endian: big,
        ndim: f.i64(16),
        dim: std::array::from_fn(|i| f.i64(24 + 8 * i)),
        datatype: f.i16(12),
        bitpix: f.i16(14),
        pixdim: std::array::from_fn(|i| f.f64(104 + 8 * i)),
        vox_offset: f.i64(168) as f64,
        slope: f.f64(176),
        inter: f.f64(184),
        xyzt_units: f.i32(500).clamp(0, 255) as u8,
        qform_code: clamp16(f.i32(344)),
        sform_code: clamp16(f.i32(348)),
        quatern: [f.f64(352), f.f64(360), f.f64(368)],
        qoffset: [f.f64(376), f.f64(384), f.f64(392)],
        srow,
    };
    raw.validate(from_nifti2(&le))
}
