//! Label maps reduced to class indices: which channel's foreground each voxel is. The same rules
//! and messages for labels read from a file and labels handed over as an array.
//!
//! Two label conventions of the frameworks live here besides one channel per label value:
//!
//! - An **ignore label** (nnU-Net v2's `"ignore"` label, the `ignore_index` of torch's
//!   cross-entropy): its voxels get the class [`IGNORED`], take no part in any sum of the loss nor
//!   in the statistics, and their gradient is 0 — as nnU-Net's `loss_mask` does
//!   (`get_tp_fp_fn_tn` multiplies tp, fp, fn by the mask; `DC_and_CE_loss` gives the
//!   cross-entropy `ignore_index`).
//! - **Regions** (nnU-Net's region-based training, BraTS: whole tumour = labels {1, 2, 3}, tumour
//!   core = {2, 3}, enhancing tumour = {3}): channel k's target is 1 where the label lies in its
//!   region. Regions overlap, so one class per voxel cannot say it: the voxels hold a code of
//!   their label value, and each channel has a 0/1 target array of its own ([`super::Labels::target`]).

use std::sync::Arc;

use super::scan::{where_is, Offenders};
use super::Grid;
use crate::error::{set, Error, Input, Param, Result};
use crate::msg;

/// Largest number of channels a prediction may have (class indices are stored as `u8`).
pub const MAX_CHANNELS: usize = 256;

/// The class of a voxel whose label is the ignore label: in no channel's target, in no sum.
pub const IGNORED: u8 = 255;

/// Overlapping regions of label values, one per channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regions {
    /// Per channel, the label values of its region (sorted, distinct, none of them 0).
    pub sets: Vec<Vec<i64>>,
    /// Every label value of some region, sorted: the voxels of `values[i]` hold the code i + 1
    /// (label 0 holds 0).
    values: Vec<i64>,
    /// The label value each region stands for in a label map (`regions_class_order`).
    order: Option<Vec<i64>>,
}

impl Regions {
    /// Regions from their label values, one region per channel, with the label each stands for
    /// (`order`, optional). Refused: no region, an empty one, label 0 (the background) in a
    /// region, more than 254 label values in all, an order of another length.
    pub fn new(sets: Vec<Vec<i64>>, order: Option<Vec<i64>>) -> Result<Regions> {
        let param = Param::REGIONS;
        if sets.is_empty() {
            return Err(Error::parameter(param, "names no region; give one region per channel, e.g. 1+2+3,2+3,3"));
        }
        let mut clean = Vec::with_capacity(sets.len());
        for (k, set) in sets.into_iter().enumerate() {
            let mut set = set;
            set.sort_unstable();
            set.dedup();
            if set.is_empty() {
                return Err(Error::parameter(param, format!("region {k} holds no label value; give at least one")));
            }
            if let Some(v) = set.iter().find(|&&v| v < 0) {
                return Err(Error::parameter(
                    param,
                    format!("region {k} holds the label value {v}; label values of a region are positive"),
                ));
            }
            if set.contains(&0) {
                return Err(Error::parameter(
                    param,
                    format!("region {k} holds label 0, the background; a region is made of foreground labels"),
                ));
            }
            clean.push(set);
        }
        if let Some((a, b)) = (0..clean.len())
            .flat_map(|a| (a + 1..clean.len()).map(move |b| (a, b)))
            .find(|&(a, b)| clean[a] == clean[b])
        {
            return Err(Error::parameter(
                param,
                format!("regions {a} and {b} are the same labels; give each channel a region of its own"),
            ));
        }
        let mut values: Vec<i64> = clean.iter().flatten().copied().collect();
        values.sort_unstable();
        values.dedup();
        if values.len() > 254 {
            return Err(Error::parameter(
                param,
                format!("name {} label values; at most 254 are supported", values.len()),
            ));
        }
        if let Some(o) = &order {
            if o.len() != clean.len() {
                return Err(Error::parameter(
                    param,
                    format!(
                        "come with {} class-order labels for {} regions; give one per region",
                        o.len(),
                        clean.len()
                    ),
                ));
            }
        }
        Ok(Regions { sets: clean, values, order })
    }

    /// The code of label value `v`: 0 for the background, i + 1 for `values[i]`.
    fn code(&self, v: f64) -> Option<u8> {
        if v == 0.0 {
            return Some(0);
        }
        self.values.iter().position(|&x| x as f64 == v).map(|i| (i + 1) as u8)
    }

    /// Whether the voxels of code `code` lie in region `k`.
    pub(crate) fn holds(&self, k: usize, code: u8) -> bool {
        let i = usize::from(code);
        (1..=self.values.len()).contains(&i) && self.sets[k].binary_search(&self.values[i - 1]).is_ok()
    }

    /// The label value a region channel stands for in a label map (nnU-Net's
    /// `regions_class_order`): by default the smallest value of region k in no later region
    /// (the label painted last when regions are turned back into labels), else its smallest.
    pub(crate) fn label_of(&self, k: usize) -> i64 {
        if let Some(o) = &self.order {
            return o[k];
        }
        let later: Vec<i64> = self.sets[k + 1..].iter().flatten().copied().collect();
        self.sets[k].iter().copied().find(|v| !later.contains(v)).unwrap_or(self.sets[k][0])
    }
}

/// What the label values mean beyond one class per value: the ignore label, regions, and the
/// channels' names (as an nnU-Net `dataset.json` gives them, or the flags).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ClassSpec {
    /// The label value whose voxels take no part in the loss or the statistics.
    #[serde(default)]
    pub ignore_label: Option<i64>,
    /// Region-based prediction: per channel, the label values of its region.
    #[serde(default)]
    pub regions: Option<Vec<Vec<i64>>>,
    /// With regions: the label value each region stands for in a label map (nnU-Net's
    /// `regions_class_order`); None: the smallest of its values in no later region.
    #[serde(default)]
    pub regions_class_order: Option<Vec<i64>>,
    /// A name per class (label values 0, 1, …; region names in the channels' order for regions).
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// The dataset.json these came from was found beside the labels folder, not given.
    #[serde(skip)]
    pub found_beside: bool,
}

impl ClassSpec {
    /// The label rule for a prediction of `channels` channels (`label`: K of a one-class
    /// prediction), the ignore label checked against it, and the names' count against the
    /// channels.
    pub fn rule(&self, channels: usize, label: Option<i64>, prediction: &Input) -> Result<LabelRule> {
        let order = self.regions_class_order.clone();
        let regions = self.regions.clone().map(|sets| Regions::new(sets, order)).transpose()?.map(Arc::new);
        let rule = rule_for(channels, label, regions.as_ref(), self.ignore_label, prediction)?;
        if let (Some(names), None) = (&self.names, self.channel_names(channels, label)) {
            let mut m = msg![format!(
                "names {} classes but {prediction} has {channels} channel{}; give the dataset.json of the data set \
                 this prediction comes from",
                names.len(),
                if channels == 1 { "" } else { "s" }
            )];
            if self.found_beside {
                m.extend(msg![
                    " (this one was found beside the labels folder; ",
                    Param::NO_DATASET_JSON,
                    " leaves it out)"
                ]);
            }
            return Err(Error::parameter(Param::DATASET_JSON, m));
        }
        Ok(rule)
    }

    /// The names of the channels of a prediction of `channels` channels: one per class, or for
    /// one channel the name of its class (label 1, or label K with `label`); None without names or
    /// when they do not fit.
    pub fn channel_names(&self, channels: usize, label: Option<i64>) -> Option<Vec<String>> {
        let names = self.names.as_ref()?;
        if names.len() == channels {
            return Some(names.clone());
        }
        let k = match (channels, label) {
            (1, Some(k)) => usize::try_from(k).ok()?,
            (1, None) => 1,
            _ => return None,
        };
        names.get(k).map(|n| vec![n.clone()])
    }
}

/// How label values map to class indices.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelRule {
    /// C ≥ 2 channels: labels 0..C−1, class = label.
    Channels(usize),
    /// One channel, binary labels 0/1.
    Binary,
    /// One channel for label K of a multi-label map: class = (label == K).
    Select(i64),
    /// One channel per region: the voxels hold their label value's code (see [`Regions`]).
    Regions(Arc<Regions>),
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
    pub fn class(&self, v: f64) -> Option<u8> {
        match self {
            LabelRule::Channels(c) => (v >= 0.0 && v < *c as f64).then_some(v as u8),
            LabelRule::Binary => (v == 0.0 || v == 1.0).then_some(v as u8),
            LabelRule::Select(k) => Some((v == *k as f64) as u8),
            LabelRule::Regions(r) => r.code(v),
        }
    }

    /// The regions, for a region-based prediction.
    pub fn regions(&self) -> Option<&Regions> {
        match self {
            LabelRule::Regions(r) => Some(r),
            _ => None,
        }
    }

    fn advice(&self) -> crate::error::Msg {
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
            LabelRule::Regions(r) => {
                let all: Vec<String> = r.values.iter().map(i64::to_string).collect();
                msg![format!(
                    "the regions are made of the labels {}: every label must be 0, one of these, or the ignore label",
                    all.join(", ")
                )]
            }
        }
    }
}

/// The rule for a prediction of `channels` channels: regions when given (one per channel), else
/// one channel per label (or label K of one channel); and the ignore label checked against it —
/// it must name no class, and leave room for [`IGNORED`].
pub fn rule_for(
    channels: usize,
    label: Option<i64>,
    regions: Option<&Arc<Regions>>,
    ignore: Option<i64>,
    prediction: &Input,
) -> Result<LabelRule> {
    let rule = match regions {
        Some(r) => {
            if label.is_some() {
                return Err(Error::parameter(
                    Param::LABEL,
                    msg!["does not apply to regions (each channel is a region); drop ", Param::LABEL],
                ));
            }
            if r.sets.len() != channels {
                return Err(Error::parameter(
                    Param::REGIONS,
                    format!(
                        "names {} region{} but {prediction} has {channels} channel{}; give one region per channel, \
                         in the channels' order",
                        r.sets.len(),
                        if r.sets.len() == 1 { "" } else { "s" },
                        if channels == 1 { "" } else { "s" }
                    ),
                ));
            }
            LabelRule::Regions(Arc::clone(r))
        }
        None => {
            check_label_option(label, channels, prediction)?;
            LabelRule::for_prediction(channels, label)
        }
    };
    if let Some(v) = ignore {
        let param = Param::IGNORE_LABEL;
        let clash = match &rule {
            LabelRule::Channels(c) => (0..*c as i64).contains(&v),
            LabelRule::Binary => v == 0 || v == 1,
            LabelRule::Select(k) => v == *k,
            LabelRule::Regions(r) => v == 0 || r.values.contains(&v),
        };
        if clash {
            return Err(Error::parameter(
                param,
                format!(
                    "{v} is a label the loss trains on; the ignore label must be a value of its own (nnU-Net: the \
                     largest label value, after every class)"
                ),
            ));
        }
        if matches!(rule, LabelRule::Channels(c) if c >= MAX_CHANNELS) {
            return Err(Error::parameter(param, format!("needs at most {} channels", MAX_CHANNELS - 1)));
        }
    }
    Ok(rule)
}

/// The class whose voxels are channel `k`'s foreground when there is one class per voxel: `k` of
/// C ≥ 2 channels (one per class), 1 of a single channel.
#[inline]
pub fn channel_class(channels: usize, k: usize) -> u8 {
    if channels == 1 {
        1
    } else {
        k as u8
    }
}

/// Sets to 0 the values of `out` on voxels of the ignore label (`class` or a target: [`IGNORED`]).
pub fn zero_ignored(out: &mut [f32], class: &[u8]) {
    for (o, &c) in out.iter_mut().zip(class) {
        if c == IGNORED {
            *o = 0.0;
        }
    }
}

/// The name of channel `k` among `names`, if the channels are named.
pub fn name_in(names: &Option<Vec<String>>, k: usize) -> Option<&str> {
    names.as_ref().and_then(|n| n.get(k)).map(String::as_str)
}

/// The positions in a block of voxels of classes `class` that take part in the loss — every one
/// but the ignored — when some voxel of the block is ignored; None when none is.
pub fn kept(class: &[u8]) -> Option<Vec<u32>> {
    if !class.contains(&IGNORED) {
        return None;
    }
    Some(class.iter().enumerate().filter(|(_, &c)| c != IGNORED).map(|(i, _)| i as u32).collect())
}

/// The values of `v` at the positions `at`.
pub fn gather<T: Copy>(v: &[T], at: &[u32]) -> Vec<T> {
    at.iter().map(|&i| v[i as usize]).collect()
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
    /// The ignore label, whose voxels get [`IGNORED`].
    ignore: Option<i64>,
    /// Classes of the byte values, for unscaled uint8 labels.
    table: [Option<u8>; 256],
    not_whole: Offenders,
    out_of_range: Offenders,
}

impl ClassMapper {
    pub fn new(rule: LabelRule, ignore: Option<i64>) -> ClassMapper {
        ClassMapper {
            table: std::array::from_fn(|b| if ignore == Some(b as i64) { Some(IGNORED) } else { rule.class(b as f64) }),
            rule,
            ignore,
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
        } else if self.ignore.is_some_and(|g| g as f64 == v) {
            IGNORED
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
        let (rule, ignore) = (&self.rule, self.ignore);
        let found: Vec<ClassMapper> = class
            .par_chunks_mut(chunk)
            .zip(values.par_chunks(chunk))
            .enumerate()
            .map(|(i, (c, v))| {
                let mut m = ClassMapper::new(rule.clone(), ignore);
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
        let (rule, ignore) = (&self.rule, self.ignore);
        let found: Vec<ClassMapper> = bytes
            .par_chunks_mut(chunk)
            .enumerate()
            .map(|(i, c)| {
                let mut m = ClassMapper::new(rule.clone(), ignore);
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
