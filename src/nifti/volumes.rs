//! A label map or a prediction decoded from an opened NIfTI file, straight into its in-memory form
//! (class indices, float32 values), checked as the values arrive.

use super::decode::{beyond_f32, extend_f32, fill_f64};
use super::header::DataType;
use super::read::{grow_for, vec_for, Source, CHUNK_BYTES};
use crate::case::labels::{ClassMapper, LabelRule};
use crate::case::scan::ValueScan;
use crate::case::Grid;
use crate::error::{Input, Result};

/// The class indices of a label map on `grid` (read in the file's order, which is the grid's).
pub fn read_labels(src: Source, grid: &Grid, rule: LabelRule) -> Result<Vec<u8>> {
    let n = grid.voxels();
    let (dt, big, scaling) = (src.header.datatype, src.header.big_endian, src.header.scaling);
    let input = Input::File(src.path.clone());
    let mut class = vec_for(n, src.gzip);
    let mut values = Vec::with_capacity(CHUNK_BYTES);
    let mut mapper = ClassMapper::new(rule);
    // The usual label file, unsigned bytes as they are: a table from byte to class.
    let bytes_as_is = dt == DataType::U8 && scaling.is_none();
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
    Ok(class)
}

/// The values of a prediction as float32 (scaling applied), measured as they arrive; values the
/// file holds beyond float32's range are noted with their own value.
pub fn read_values(src: Source) -> Result<(Vec<f32>, ValueScan)> {
    let (dt, big, scaling) = (src.header.datatype, src.header.big_endian, src.header.scaling);
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
    Ok((data, scan))
}
