//! What the shapes of a mini-batch's arrays say, as PyTorch and MONAI lay them out: the input
//! `(B, C, *spatial)` channel-first, or `(B, *spatial)` with one foreground channel (the binary
//! case); the target as labels `(B, *spatial)` or `(B, 1, *spatial)`, or one-hot `(B, C,
//! *spatial)`. One to three spatial axes; fewer than three are taken as the first axes of a
//! volume whose others have length 1.
//!
//! Only one reading of two shapes is ambiguous: a target of the input's shape `(B, N1, N2, …)`
//! with N1 > 1 (and at most three axes after B) is either a one-hot target over C = N1 channels,
//! or labels of a binary input whose first spatial axis is N1 long. `spatial_dims` settles it;
//! without it the shapes are refused, with both readings named — never guessed from the values,
//! which would read one training step's batch one way and the next another.

use crate::error::{Error, Param, Result};

/// The most spatial axes (a volume).
pub const MAX_SPATIAL: usize = 3;

/// How the target gives the classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetForm {
    /// Label values, `(B, *spatial)` or, with `channel_axis`, `(B, 1, *spatial)`.
    Labels { channel_axis: bool },
    /// One channel per class `(B, C, *spatial)`: 1 for the voxel's class, 0 for the others.
    OneHot,
}

/// The layout of a mini-batch: its sizes, and how its input and target hold them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchShape {
    /// The input's shape, as given.
    pub input: Vec<usize>,
    /// Samples, B.
    pub batch: usize,
    /// Channels of the prediction, C (1 for the binary case).
    pub channels: usize,
    /// The spatial axes (1 to 3), as given.
    pub spatial: Vec<usize>,
    /// Whether the input has a channel axis (false: `(B, *spatial)`, one foreground channel).
    pub channel_axis: bool,
    pub target: TargetForm,
}

impl BatchShape {
    /// The spatial axes as a volume's `(X, Y, Z)` (missing axes of length 1).
    pub fn volume(&self) -> [usize; 3] {
        let mut v = [1; 3];
        v[..self.spatial.len()].copy_from_slice(&self.spatial);
        v
    }

    /// Values of one sample's prediction, C·X·Y·Z.
    pub fn sample_values(&self) -> usize {
        self.channels * self.spatial.iter().product::<usize>()
    }
}

/// The readings of `input` and `target` shapes, as (channel axis, target form); each leaves 1 to 3
/// spatial axes. At most two: a target of the input's shape read as one-hot over channels, and
/// as labels of a binary input.
fn readings(input: &[usize], target: &[usize]) -> Vec<(bool, TargetForm)> {
    let mut found = Vec::new();
    let spatial_ok = |n: usize| (1..=MAX_SPATIAL).contains(&n);
    if input.len() >= 3 && spatial_ok(input.len() - 2) && target.first() == input.first() {
        let spatial = &input[2..];
        if target.len() == input.len() - 1 && &target[1..] == spatial {
            found.push((true, TargetForm::Labels { channel_axis: false }));
        } else if target.len() == input.len() && target[1] == 1 && &target[2..] == spatial {
            found.push((true, TargetForm::Labels { channel_axis: true }));
        } else if target == input {
            found.push((true, TargetForm::OneHot));
        }
    }
    if input.len() >= 2 && spatial_ok(input.len() - 1) && target.first() == input.first() {
        let spatial = &input[1..];
        if target == input {
            found.push((false, TargetForm::Labels { channel_axis: false }));
        } else if target.len() == input.len() + 1 && target[1] == 1 && &target[2..] == spatial {
            found.push((false, TargetForm::Labels { channel_axis: true }));
        }
    }
    found
}

fn shape_of(input: &[usize], (channel_axis, target): (bool, TargetForm)) -> BatchShape {
    let skip = if channel_axis { 2 } else { 1 };
    BatchShape {
        input: input.to_vec(),
        batch: input[0],
        channels: if channel_axis { input[1] } else { 1 },
        spatial: input[skip..].to_vec(),
        channel_axis,
        target,
    }
}

/// The layout of a mini-batch of `input` and `target` shapes; `spatial_dims` (1 to 3) picks
/// among readings, and must when both a one-hot target and a binary input's labels fit.
pub fn layout(input: &[usize], target: &[usize], spatial_dims: Option<usize>) -> Result<BatchShape> {
    if let Some(d) = spatial_dims {
        if !(1..=MAX_SPATIAL).contains(&d) {
            return Err(Error::parameter(
                Param::SPATIAL_DIMS,
                format!("must be 1, 2 or 3 (the spatial axes of the input), got {d}"),
            ));
        }
    }
    if input.len() < 2 {
        return Err(Error::usage(format!(
            "the input has shape {input:?}; give a mini-batch (B, C, *spatial) — one to three spatial axes — or (B, \
             *spatial) for one foreground channel"
        )));
    }
    if input.contains(&0) {
        return Err(Error::usage(format!("the input has shape {input:?}, with no values; give at least one")));
    }
    let mut found = readings(input, target);
    if let Some(d) = spatial_dims {
        found.retain(|&(channel_axis, _)| input.len() - if channel_axis { 2 } else { 1 } == d);
    }
    let reading = match found[..] {
        [one] => one,
        [] => return Err(mismatch(input, target, spatial_dims)),
        // a (B, 1, *spatial) input with a target of its shape reads either way alike: channel-first
        [first @ (_, TargetForm::Labels { .. }), _] => first,
        _ => {
            let n = input.len();
            return Err(Error::usage(crate::msg![
                format!(
                    "the input {input:?} and the target {target:?} have one shape, which reads two ways: a one-hot \
                     target over {} channels of {}-D images (",
                    input[1],
                    n - 2
                ),
                crate::error::set(Param::SPATIAL_DIMS, n - 2),
                format!("), or the labels of one foreground channel of {}-D images (", n - 1),
                crate::error::set(Param::SPATIAL_DIMS, n - 1),
                "); say which",
            ]));
        }
    };
    Ok(shape_of(input, reading))
}

/// The error for shapes that do not go together: what the input's shape asks of the target (as
/// `spatial_dims` reads it, if given).
fn mismatch(input: &[usize], target: &[usize], spatial_dims: Option<usize>) -> Error {
    let n = input.len();
    if n > 2 + MAX_SPATIAL {
        return Error::usage(format!(
            "the input has shape {input:?}: {} axes after B and C; give at most three spatial axes, (B, C, X, Y, Z)",
            n - 2
        ));
    }
    let list = |s: &[usize]| s.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ");
    let channel_first = || {
        let (b, c, sp) = (input[0], input[1], list(&input[2..]));
        format!(
            "for an input (B, C, *spatial) = {input:?} the target is labels ({b}, {sp}) or ({b}, 1, {sp}), or one-hot \
             ({b}, {c}, {sp})"
        )
    };
    let binary = || {
        let (b, sp) = (input[0], list(&input[1..]));
        format!("for an input (B, *spatial) = {input:?} (one foreground channel) the target is labels ({b}, {sp}) or ({b}, 1, {sp})")
    };
    let expect = match spatial_dims {
        Some(d) if d + 2 == n => channel_first(),
        Some(d) if d + 1 == n => binary(),
        Some(d) => {
            return Error::usage(crate::msg![
                crate::error::set(Param::SPATIAL_DIMS, d),
                format!(
                    " does not fit an input of shape {input:?}, which has {} spatial axes after B and C, or {} after B \
                     alone",
                    n.saturating_sub(2),
                    n - 1
                ),
            ])
        }
        None if n >= 3 => format!("{}; or {}", channel_first(), binary()),
        None => binary(),
    };
    let given = match spatial_dims {
        Some(d) => format!(" with spatial_dims={d}"),
        None => String::new(),
    };
    Error::usage(format!(
        "the target has shape {target:?} and the input {input:?}{given}: they do not make a mini-batch; {expect} (the \
         same B, and the same spatial axes)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[usize], target: &[usize], dims: Option<usize>) -> Result<BatchShape> {
        layout(input, target, dims)
    }

    #[test]
    fn channel_first_inputs_take_labels_with_or_without_a_channel_axis_or_one_hot() {
        let s = read(&[2, 4, 5, 6, 7], &[2, 5, 6, 7], None).unwrap();
        assert_eq!((s.batch, s.channels, s.volume(), s.channel_axis), (2, 4, [5, 6, 7], true));
        assert_eq!(s.target, TargetForm::Labels { channel_axis: false });
        let s = read(&[2, 4, 5, 6, 7], &[2, 1, 5, 6, 7], None).unwrap();
        assert_eq!(s.target, TargetForm::Labels { channel_axis: true });
        let s = read(&[2, 4, 5, 6, 7], &[2, 4, 5, 6, 7], None).unwrap();
        assert_eq!(s.target, TargetForm::OneHot);
    }

    #[test]
    fn two_dimensional_images_are_volumes_of_one_slice() {
        let s = read(&[3, 2, 8, 9], &[3, 8, 9], None).unwrap();
        assert_eq!((s.channels, s.spatial.clone(), s.volume()), (2, vec![8, 9], [8, 9, 1]));
        assert_eq!(s.sample_values(), 2 * 72);
    }

    #[test]
    fn a_target_of_the_inputs_shape_is_read_as_spatial_dims_says_and_refused_without_it() {
        // (B, X, Y, Z) binary labels, or (B, C, H, W) one-hot
        let e = read(&[2, 5, 6, 7], &[2, 5, 6, 7], None).unwrap_err().to_string();
        assert!(e.contains("a one-hot target over 5 channels of 2-D images (spatial_dims=2)"), "{e}");
        assert!(e.contains("the labels of one foreground channel of 3-D images (spatial_dims=3)"), "{e}");
        let told = read(&[2, 5, 6, 7], &[2, 5, 6, 7], Some(3)).unwrap();
        assert_eq!((told.channel_axis, told.channels, told.volume()), (false, 1, [5, 6, 7]));
        let told = read(&[2, 5, 6, 7], &[2, 5, 6, 7], Some(2)).unwrap();
        assert_eq!((told.channel_axis, told.channels, told.target), (true, 5, TargetForm::OneHot));
        // five axes leave no doubt: one-hot
        let s = read(&[2, 5, 6, 7, 8], &[2, 5, 6, 7, 8], None).unwrap();
        assert_eq!(s.target, TargetForm::OneHot);
        // a channel axis of 1 reads alike either way
        let s = read(&[2, 1, 6, 7], &[2, 1, 6, 7], None).unwrap();
        assert_eq!((s.channel_axis, s.channels), (true, 1));
    }

    #[test]
    fn binary_inputs_take_labels_with_a_channel_axis() {
        let s = read(&[2, 5, 6], &[2, 1, 5, 6], None).unwrap();
        assert_eq!((s.channel_axis, s.channels, s.volume()), (false, 1, [5, 6, 1]));
    }

    #[test]
    fn refuses_shapes_that_do_not_go_together() {
        let e = read(&[2, 4, 5, 6, 7], &[3, 5, 6, 7], None).unwrap_err().to_string();
        assert!(e.contains("the target has shape [3, 5, 6, 7]") && e.contains("(2, 5, 6, 7)"), "{e}");
        let e = read(&[2, 4, 5, 6, 7], &[2, 5, 6, 7], Some(2)).unwrap_err().to_string();
        assert!(e.contains("spatial_dims=2 does not fit an input of shape [2, 4, 5, 6, 7]"), "{e}");
        // the reading spatial_dims asks for, not the target's own shape
        let e = read(&[2, 3, 6, 5], &[2, 6, 5], Some(3)).unwrap_err().to_string();
        assert!(e.contains("(one foreground channel) the target is labels (2, 3, 6, 5) or (2, 1, 3, 6, 5)"), "{e}");
        let e = read(&[2, 4, 5, 6, 7, 8], &[2, 5, 6, 7, 8], None).unwrap_err().to_string();
        assert!(e.contains("4 axes after B and C; give at most three spatial axes"), "{e}");
        let e = read(&[7], &[7], None).unwrap_err().to_string();
        assert!(e.contains("give a mini-batch (B, C, *spatial)"), "{e}");
        let e = read(&[2, 0, 4], &[2, 0, 4], None).unwrap_err().to_string();
        assert!(e.contains("no values"), "{e}");
        let e = read(&[2, 4, 4, 4], &[2, 4, 4, 4], Some(4)).unwrap_err().to_string();
        assert!(e.contains("must be 1, 2 or 3"), "{e}");
    }
}
