//! Label maps reduced to class indices: which channel's foreground each voxel is. The same rules
//! and messages for labels read from a file and labels handed over as an array.

use super::scan::{where_is, Offenders};
use super::Grid;
use crate::error::{set, Error, Input, Param, Result};
use crate::msg;

/// Largest number of channels a prediction may have (class indices are stored as `u8`).
pub const MAX_CHANNELS: usize = 256;

/// How label values map to class indices.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LabelRule {
    /// C ≥ 2 channels: labels 0..C−1, class = label.
    Channels(usize),
    /// One channel, binary labels 0/1.
    Binary,
    /// One channel for label K of a multi-label map: class = (label == K).
    Select(i64),
}

impl LabelRule {
    /// The rule for a prediction of `channels` channels, with `label` K asked for a single channel.
    pub fn for_prediction(channels: usize, label: Option<i64>) -> LabelRule {
        match (channels, label) {
            (1, Some(k)) => LabelRule::Select(k),
            (1, None) => LabelRule::Binary,
            (c, _) => LabelRule::Channels(c),
        }
    }

    /// The class of label value `v`, if it has one.
    pub fn class(self, v: f64) -> Option<u8> {
        match self {
            LabelRule::Channels(c) => (v >= 0.0 && v < c as f64).then_some(v as u8),
            LabelRule::Binary => (v == 0.0 || v == 1.0).then_some(v as u8),
            LabelRule::Select(k) => Some((v == k as f64) as u8),
        }
    }

    fn advice(self) -> crate::error::Msg {
        match self {
            LabelRule::Channels(c) => msg![format!(
                "the prediction has {c} channels, one per label 0..{}: check that labels and prediction belong \
                 together, or remap the labels to 0..{}",
                c - 1,
                c - 1
            )],
            LabelRule::Binary => msg![
                "a single-channel prediction needs labels 0/1; pass ",
                set(Param::LABEL, "K"),
                " to analyse class K of a multi-label map",
            ],
            LabelRule::Select(_) => msg![],
        }
    }
}

/// Refuses a label for a prediction of several channels.
pub fn check_label_option(label: Option<i64>, channels: usize, prediction: &Input) -> Result<()> {
    if label.is_some() && channels > 1 {
        return Err(Error::parameter(
            Param::LABEL,
            msg![
                format!(
                    "applies to a single-channel (X,Y,Z) prediction, but {prediction} has {channels} channels (one \
                     per label 0..{}); drop ",
                    channels - 1
                ),
                Param::LABEL,
            ],
        ));
    }
    if channels > MAX_CHANNELS {
        return Err(Error::usage(format!(
            "{prediction}: the prediction has {channels} channels; at most {MAX_CHANNELS} are supported"
        )));
    }
    Ok(())
}

/// Label values as they arrive, turned into class indices, with the offenders counted.
pub struct ClassMapper {
    rule: LabelRule,
    /// Classes of the byte values, for unscaled uint8 labels.
    table: [Option<u8>; 256],
    not_whole: Offenders,
    out_of_range: Offenders,
}

impl ClassMapper {
    pub fn new(rule: LabelRule) -> ClassMapper {
        ClassMapper {
            rule,
            table: std::array::from_fn(|b| rule.class(b as f64)),
            not_whole: Offenders::default(),
            out_of_range: Offenders::default(),
        }
    }

    /// Appends the classes of byte labels, the first of which has index `first`.
    pub fn push_bytes(&mut self, first: usize, bytes: &[u8], class: &mut Vec<u8>) {
        for (j, &b) in bytes.iter().enumerate() {
            let c = self.table[usize::from(b)];
            if c.is_none() {
                self.out_of_range.add(first + j, f64::from(b));
            }
            class.push(c.unwrap_or(0));
        }
    }

    /// Appends the class of label value `v` at index `i`.
    #[inline]
    pub fn push(&mut self, i: usize, v: f64, class: &mut Vec<u8>) {
        class.push(self.class_of(i, v));
    }

    /// The class of label value `v` at index `i` (0 for an offender, which is counted).
    #[inline(always)]
    pub fn class_of(&mut self, i: usize, v: f64) -> u8 {
        // a whole number 0..255 of a class: from the table
        if (0.0..256.0).contains(&v) && f64::from(v as u8) == v {
            if let Some(c) = self.table[v as usize] {
                return c;
            }
        }
        self.offender(i, v)
    }

    #[cold]
    fn offender(&mut self, i: usize, v: f64) -> u8 {
        if v.fract() != 0.0 || !v.is_finite() {
            self.not_whole.add(i, v);
            0
        } else if let Some(c) = self.rule.class(v) {
            c
        } else {
            self.out_of_range.add(i, v);
            0
        }
    }

    /// Adds what `later` found (on the labels that follow this mapper's).
    pub fn merge(&mut self, later: &ClassMapper) {
        self.not_whole.merge(&later.not_whole);
        self.out_of_range.merge(&later.out_of_range);
    }

    /// The class of every label of `values` into `class`, the first of which has index `first`:
    /// over fixed chunks in parallel, offenders gathered in order.
    pub fn map_all<L: LabelValue>(&mut self, first: usize, values: &[L], class: &mut [u8]) {
        use rayon::prelude::*;
        let chunk = crate::parallel::CHUNK;
        let rule = self.rule;
        let found: Vec<ClassMapper> = class
            .par_chunks_mut(chunk)
            .zip(values.par_chunks(chunk))
            .enumerate()
            .map(|(i, (c, v))| {
                let mut m = ClassMapper::new(rule);
                for (j, (c, &v)) in c.iter_mut().zip(v).enumerate() {
                    *c = m.class_of(first + i * chunk + j, v.to_f64());
                }
                m
            })
            .collect();
        for m in &found {
            self.merge(m);
        }
    }

    /// Replaces every byte label of `bytes` (the first of which has index `first`) by its class:
    /// over fixed chunks in parallel, offenders gathered in order.
    pub fn map_bytes_in_place(&mut self, first: usize, bytes: &mut [u8]) {
        use rayon::prelude::*;
        let chunk = crate::parallel::CHUNK;
        let rule = self.rule;
        let found: Vec<ClassMapper> = bytes
            .par_chunks_mut(chunk)
            .enumerate()
            .map(|(i, c)| {
                let mut m = ClassMapper::new(rule);
                for (j, b) in c.iter_mut().enumerate() {
                    *b = match m.table[usize::from(*b)] {
                        Some(class) => class,
                        None => {
                            m.out_of_range.add(first + i * chunk + j, f64::from(*b));
                            0
                        }
                    };
                }
                m
            })
            .collect();
        for m in &found {
            self.merge(m);
        }
    }

    /// The error for what was found, if anything.
    pub fn finish(self, input: &Input, grid: &Grid) -> Result<()> {
        let bad = |problem| Error::BadValues { input: input.clone(), problem };
        if let Some((i, v)) = self.not_whole.first {
            return Err(bad(msg![format!(
                "{} voxels hold label values that are not whole numbers (first: {v} at {}); labels must be \
                 integers (was an interpolated or probability map saved as labels?)",
                self.not_whole.count,
                where_is(grid, i)
            )]));
        }
        if let Some((i, v)) = self.out_of_range.first {
            let mut m = msg![format!(
                "{} voxels hold label values out of range (first: {v} at {}); ",
                self.out_of_range.count,
                where_is(grid, i),
            )];
            m.extend(self.rule.advice());
            return Err(bad(m));
        }
        Ok(())
    }
}

/// Integer label values (or floats holding whole numbers) that arrays of labels may hold.
pub trait LabelValue: Copy + Send + Sync + 'static {
    /// The numpy name of the type.
    const NAME: &'static str;
    /// The value as f64 (64-bit integers beyond 2^53 lose precision, as in nibabel).
    fn to_f64(self) -> f64;
}

macro_rules! label_value {
    ($($t:ty => $name:literal),*) => {
        $(impl LabelValue for $t {
            const NAME: &'static str = $name;
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
        })*
    };
}
label_value!(u8 => "uint8", i8 => "int8", u16 => "uint16", i16 => "int16", u32 => "uint32", i32 => "int32",
    u64 => "uint64", i64 => "int64", f32 => "float32", f64 => "float64");
