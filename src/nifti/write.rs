//! Writing float32 volumes (`.nii` or `.nii.gz`) in the geometry of an input, atomically and in
//! streaming fashion: values are produced block by block in file order and never held whole.
//! NIfTI-1 when it can hold the shape, else NIfTI-2 ([`super::template::output_header`]).

use std::io::Write;
use std::path::Path;

use flate2::Compression;

use super::header::{DataType, HeaderTemplate};
use super::template::output_header;
use crate::error::Result;
use crate::output::gzip::ParallelGz;
use crate::output::{io_error, write_atomic};

/// Values produced per block.
const BLOCK: usize = 1 << 18;

/// How to write a volume.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    /// gzip level 0–9 for `.gz` paths (1 = fastest).
    pub compression: u32,
    /// Overwrite an existing file.
    pub force: bool,
}

/// Whether a path asks for gzip compression (`.gz` suffix).
pub fn is_gzip_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

fn write_stream(path: &Path, opts: WriteOptions, body: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    write_atomic(path, opts.force, |w| {
        if is_gzip_path(path) {
            let mut gz = ParallelGz::new(w, Compression::new(opts.compression.min(9)));
            body(&mut gz)?;
            gz.finish().map_err(io_error(path))?;
            Ok(())
        } else {
            body(w)
        }
    })
}

/// Writes a float32 volume of shape `dims` with `template`'s geometry. `fill(start, out)` must put
/// the values with file-order indices `start..start + out.len()` into `out`.
pub fn write_f32(
    path: &Path,
    template: &HeaderTemplate,
    dims: &[usize],
    opts: WriteOptions,
    mut fill: impl FnMut(usize, &mut [f32]),
) -> Result<()> {
    let header = output_header(template, dims, DataType::F32);
    let total: usize = dims.iter().product();
    let big = template.big_endian;
    write_stream(path, opts, |w| {
        w.write_all(&header).map_err(io_error(path))?;
        let mut values = vec![0f32; BLOCK.min(total)];
        let mut bytes = Vec::with_capacity(values.len() * 4);
        let mut start = 0;
        while start < total {
            let len = BLOCK.min(total - start);
            fill(start, &mut values[..len]);
            bytes.clear();
            for v in &values[..len] {
                bytes.extend_from_slice(&if big { v.to_be_bytes() } else { v.to_le_bytes() });
            }
            w.write_all(&bytes).map_err(io_error(path))?;
            start += len;
        }
        Ok(())
    })
}

/// Writes a uint8 volume (label maps) of shape `dims` with `template`'s geometry.
pub fn write_u8(path: &Path, template: &HeaderTemplate, dims: &[usize], opts: WriteOptions, data: &[u8]) -> Result<()> {
    let header = output_header(template, dims, DataType::U8);
    write_stream(path, opts, |w| {
        w.write_all(&header).map_err(io_error(path))?;
        w.write_all(data).map_err(io_error(path))
    })
}
