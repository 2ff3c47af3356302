//! Headers of outputs: a copy of an input's header with only the data fields changed, or a fresh
//! header for a new volume (synthetic cases).

use super::header::HeaderTemplate;
use super::header::{DataType, Raw, DATA_OFFSET, HEADER_LEN};

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

/// The header of a float32 output with the template's geometry: datatype float32, bitpix 32,
/// `dims` as given, no scaling (slope 1, intercept 0), no display range, data at byte 352, no
/// extensions, same byte order. Everything else (pixdim, affine, codes, units, description) is
/// copied byte for byte.
pub fn float32_header(template: &HeaderTemplate, dims: &[usize]) -> [u8; HEADER_LEN] {
    typed_header(template, dims, DataType::F32)
}

/// Like [`float32_header`] for any datatype.
pub fn typed_header(template: &HeaderTemplate, dims: &[usize], datatype: DataType) -> [u8; HEADER_LEN] {
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
    HeaderTemplate { bytes: Box::new(bytes), big_endian: false }
}

/// A little-endian NIfTI-1 header carrying the geometry of a NIfTI-2 header's fields (doubles
/// rounded to float32; `descrip` copied), for writing outputs of NIfTI-2 inputs.
pub(super) fn nifti1_from(raw: &Raw, descrip: &[u8]) -> HeaderTemplate {
    let mut bytes = [0u8; HEADER_LEN];
    {
        let mut f = FieldsMut { b: &mut bytes, big: false };
        f.i32(0, HEADER_LEN as i32);
        for (i, v) in raw.pixdim.iter().enumerate() {
            f.f32(76 + 4 * i, *v as f32);
        }
        f.i16(252, raw.qform_code);
        f.i16(254, raw.sform_code);
        for (i, v) in raw.quatern.iter().chain(&raw.qoffset).enumerate() {
            f.f32(256 + 4 * i, *v as f32);
        }
        for (r, row) in raw.srow.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                f.f32(280 + 16 * r + 4 * c, *v as f32);
            }
        }
    }
    bytes[123] = raw.xyzt_units;
    let n = descrip.iter().position(|&b| b == 0).unwrap_or(descrip.len()).min(79);
    bytes[148..148 + n].copy_from_slice(&descrip[..n]);
    bytes[344..348].copy_from_slice(b"n+1\0");
    HeaderTemplate { bytes: Box::new(bytes), big_endian: false }
}
