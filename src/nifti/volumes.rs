//! A label map or a prediction decoded from an opened NIfTI file, straight into its in-memory form
//! (class indices, float32 values), checked as the values arrive.
//!
//! The usual files — float32 predictions in little-endian order, uint8 labels, both unscaled, in a
//! `.nii.gz` — are decoded whole ([`Source::inflate_whole`]) and checked after, in parallel, where
//! they landed; the values then start after the file's header bytes ([`Buffer::after`]). Every
//! other file is streamed and converted chunk by chunk.

use super::decode::{beyond_f32, extend_f32, fill_f64};
use super::header::DataType;
use super::read::{grow_for, vec_for, Source, Whole, CHUNK_BYTES};
use crate::case::labels::{ClassMapper, LabelRule};
use crate::case::scan::ValueScan;
use crate::case::{Buffer, Grid};
use crate::error::{Input, Result};

/// The class indices of a label map on `grid` (read in the file's order, which is the grid's).
/// Voxels of the ignore label `ignore` get [`crate::case::IGNORED`].
pub fn read_labels(src: Source, grid: &Grid, rule: LabelRule, ignore: Option<i64>) -> Result<Buffer<'static, u8>> {
    let n = grid.voxels();
    let (dt, big, scaling) = (src.header.datatype, src.header.big_endian, src.header.scaling);
    let input = Input::File(src.path.clone());
    let mut mapper = ClassMapper::new(rule, ignore);
    // The usual label file, unsigned bytes as they are: a table from byte to class.
    let bytes_as_is = dt == DataType::U8 && scaling.is_none();
    let src = match if bytes_as_is { src.inflate_whole::<u8>()? } else { Whole::Stream(Box::new(src)) } {
        Whole::Decoded { mut buf, start } => {
            mapper.map_bytes_in_place(0, &mut buf[start..]);
            mapper.finish(&input, grid)?;
            return Ok(Buffer::after(buf, start));
        }
        Whole::Stream(src) => *src,
    };
    let mut class = vec_for(n, src.gzip);
    let mut values = Vec::with_capacity(CHUNK_BYTES);
    src.for_each_chunk(|first, bytes| {
        if bytes_as_is {
            grow_for(&mut class, bytes.len(), n);
            mapper.push_bytes(first, bytes, &mut class);
            return Ok(());
        }
        fill_f64(dt, big, scaling, bytes, &mut values);
        grow_for(&mut class, values.len(), n);
        for (j, &v) in values.iter().enumerate() {
            mapper.push(first + j, v, &mut class);
        }
        Ok(())
    })?;
    mapper.finish(&input, grid)?;
    Ok(class.into())
}

/// The values of a prediction as float32 (scaling applied), measured as they arrive; values the
/// file holds beyond float32's range are noted with their own value.
pub fn read_values(src: Source) -> Result<(Buffer<'static, f32>, ValueScan)> {
    let (dt, big, scaling) = (src.header.datatype, src.header.big_endian, src.header.scaling);
    let as_is = dt == DataType::F32 && !big && scaling.is_none() && cfg!(target_endian = "little");
    let src = match if as_is { src.inflate_whole::<f32>()? } else { Whole::Stream(Box::new(src)) } {
        Whole::Decoded { buf, start } => {
            // float32 as stored: no value is beyond float32's range
            let scan = ValueScan::of(&buf[start..]);
            return Ok((Buffer::after(buf, start), scan));
        }
        Whole::Stream(src) => *src,
    };
    let total = src.header.value_count() as usize;
    let mut data: Vec<f32> = vec_for(total, src.gzip);
    let mut scan = ValueScan::default();
    src.for_each_chunk(|first, bytes| {
        let start = data.len();
        grow_for(&mut data, bytes.len() / dt.size(), total);
        extend_f32(dt, big, scaling, bytes, &mut data);
        let infinities = scan.non_finite.count;
        scan.add(first, &data[start..]);
        if scan.non_finite.count > infinities {
            beyond_f32(dt, big, scaling, bytes, |j, v| scan.add_beyond_f32(first + j, v));
        }
        Ok(())
    })?;
    Ok((data.into(), scan))
}
