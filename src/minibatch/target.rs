//! A one-hot target turned into class indices: at every voxel one channel holds 1 and the others
//! 0 (MONAI's `to_onehot_y` output, as floats or integers). Anything else — soft labels, a voxel
//! with no class or two — is refused with where it was found.

use ndarray::{Array4, ArrayView5, Axis};

use crate::case::labels::LabelValue;
use crate::error::{Error, Input, Result};

/// The class index of every voxel of a one-hot `target` `(B, C, X, Y, Z)`, as labels `(B, X, Y,
/// Z)`: the channel holding 1.
pub fn decode<L: LabelValue>(target: ArrayView5<'_, L>) -> Result<Array4<u8>> {
    let (b, c, x, y, z) = target.dim();
    if c > usize::from(u8::MAX) + 1 {
        return Err(Error::usage(format!("the one-hot target has {c} channels; at most 256 classes are supported")));
    }
    let mut class = Array4::<u8>::zeros((b, x, y, z));
    // how many channels hold 1 at each voxel, and the first channel that holds neither 0 nor 1
    let mut ones = Array4::<u8>::zeros((b, x, y, z));
    for (k, channel) in target.axis_iter(Axis(1)).enumerate() {
        let mut bad = None;
        ndarray::Zip::indexed(&channel).and(&mut class).and(&mut ones).for_each(|i, &v, cl, n| {
            let v = v.to_f64();
            if v == 1.0 {
                *cl = k as u8;
                *n = n.saturating_add(1);
            } else if v != 0.0 && bad.is_none() {
                bad = Some((i, v));
            }
        });
        if let Some(((s, x, y, z), v)) = bad {
            // a float32 value as float32 writes it (0.7, not 0.699999988079071)
            let v = if f64::from(v as f32) == v { (v as f32).to_string() } else { v.to_string() };
            return Err(not_one_hot(format!(
                "channel {k} holds {v} at sample {s}, voxel ({x}, {y}, {z}): a one-hot target holds only 0 and 1 \
                 (soft labels are not supported)"
            )));
        }
    }
    if let Some(((s, x, y, z), &n)) = ones.indexed_iter().find(|(_, &n)| n != 1) {
        let count = ones.iter().filter(|&&m| m != 1).count();
        return Err(not_one_hot(format!(
            "{count} voxels hold 1 in {} channels (first: {n} at sample {s}, voxel ({x}, {y}, {z})): a one-hot target \
             holds exactly one 1 per voxel",
            if n == 0 { "none of the" } else { "several" }
        )));
    }
    Ok(class)
}

fn not_one_hot(problem: String) -> Error {
    Error::BadValues {
        input: Input::array("target"),
        problem: crate::msg![format!(
            "{problem}; give integer labels (B, *spatial) or (B, 1, *spatial), or a one-hot target (B, C, *spatial)"
        )],
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array5;

    use super::*;

    #[test]
    fn the_class_of_a_voxel_is_the_channel_holding_one() {
        let labels = Array4::from_shape_fn((2, 3, 2, 1), |(b, x, y, _)| ((b + x + y) % 3) as u8);
        let hot = Array5::from_shape_fn((2, 3, 3, 2, 1), |(b, k, x, y, z)| f32::from(labels[[b, x, y, z]] == k as u8));
        assert_eq!(decode(hot.view()).unwrap(), labels);
    }

    #[test]
    fn refuses_soft_labels_and_voxels_without_one_class() {
        let mut hot = Array5::<f32>::zeros((1, 2, 2, 2, 1));
        hot.slice_mut(ndarray::s![0, 0, .., .., ..]).fill(1.0);
        hot[[0, 0, 1, 0, 0]] = 0.7;
        let e = decode(hot.view()).unwrap_err().to_string();
        assert!(e.contains("channel 0 holds 0.7 at sample 0, voxel (1, 0, 0)") && e.contains("soft labels"), "{e}");
        hot[[0, 0, 1, 0, 0]] = 0.0;
        let e = decode(hot.view()).unwrap_err().to_string();
        assert!(e.contains("1 voxels hold 1 in none of the channels (first: 0 at sample 0, voxel (1, 0, 0))"), "{e}");
        hot[[0, 0, 1, 0, 0]] = 1.0;
        hot[[0, 1, 0, 1, 0]] = 1.0;
        let e = decode(hot.view()).unwrap_err().to_string();
        assert!(e.contains("1 voxels hold 1 in several channels (first: 2 at sample 0, voxel (0, 1, 0))"), "{e}");
    }
}
