//! Keyword arguments into a [`Request`]: every loss parameter of the library's one table
//! ([`LossParam`]) under its library name (`weight` for the class weights, as MONAI and torch
//! name them), and the options of a run.

use dicegrad::analysis::precision::LossScale;
use dicegrad::analysis::views::ViewRequest;
use dicegrad::loss::{LossKind, LossParam, Preset};
use dicegrad::names::Named;
use dicegrad::Request;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

/// The Python name of a loss parameter: the library's, but `weight` for the class weights.
pub fn python_name(param: LossParam) -> &'static str {
    python_param(param.name())
}

/// The Python name of a parameter a message names: the library's, but `weight` for the class
/// weights (MONAI's and torch's name) and `batch` for pooling the Dice sums (MONAI's).
pub fn python_param(name: &str) -> &str {
    match name {
        "class_weights" => "weight",
        "batch_dice" => "batch",
        n => n,
    }
}

/// What a call asks for beyond the loss.
#[derive(Debug, Default)]
pub struct Call {
    pub request: Request,
    /// Pool the sums over the mini-batch (None: the preset's way).
    pub batch: Option<bool>,
    pub spatial_dims: Option<usize>,
    /// Worker threads (None: one per core).
    pub threads: Option<usize>,
    /// Draw the report's pictures (and measure what those of the volume show).
    pub pictures: bool,
    /// The class weights as given (`weight`): resolved against the channels by [`with_weights`].
    pub weight: Option<Weight>,
    /// The voxel size along each spatial axis.
    pub spacing: Option<Vec<f64>>,
}

/// `weight` as given: one number for every channel (MONAI allows it), or one per channel.
#[derive(Debug, Clone)]
pub enum Weight {
    All(f64),
    Each(Vec<f64>),
}

fn type_error(name: &str, want: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let got = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("{name} must be {want}, got {got}"))
}

fn boolean(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    match value.cast::<PyBool>() {
        Ok(b) => Ok(b.is_true()),
        // numpy booleans
        Err(_) if value.get_type().name().is_ok_and(|n| n == "bool" || n == "bool_") => value.is_truthy(),
        Err(_) => Err(type_error(name, "True or False", value)),
    }
}

fn number(name: &str, value: &Bound<'_, PyAny>) -> PyResult<f64> {
    if value.is_instance_of::<PyBool>() || value.is_instance_of::<PyString>() {
        return Err(type_error(name, "a number", value));
    }
    if value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>() {
        return value.extract::<f64>();
    }
    // numpy scalars, 0-d arrays, torch scalars
    value.call_method0("__float__").and_then(|v| v.extract::<f64>()).map_err(|_| type_error(name, "a number", value))
}

fn whole(name: &str, value: &Bound<'_, PyAny>) -> PyResult<i64> {
    if value.is_instance_of::<PyBool>() {
        return Err(type_error(name, "a whole number", value));
    }
    let index = value.call_method0("__index__").map_err(|_| type_error(name, "a whole number", value))?;
    index
        .extract::<i64>()
        .map_err(|_| PyValueError::new_err(format!("{name} must be a whole number within 64 bits, got {index}")))
}

fn count(name: &str, value: &Bound<'_, PyAny>, least: i64) -> PyResult<usize> {
    let v = whole(name, value)?;
    if v < least {
        return Err(PyValueError::new_err(format!("{name} must be at least {least}, got {v}")));
    }
    Ok(v as usize)
}

fn text(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    value.cast::<PyString>().map(|s| s.to_string()).map_err(|_| type_error(name, "a string", value))
}

/// A value of `param` as the library writes it, from a Python value of the parameter's kind.
fn param_text(param: LossParam, value: &Bound<'_, PyAny>) -> PyResult<String> {
    let info = param.info();
    let name = python_name(param);
    if info.switch {
        return Ok(boolean(name, value)?.to_string());
    }
    if let Some(choices) = &info.choices {
        let given = text(name, value)?;
        return Ok(spellings(&given).into_iter().find(|n| choices.contains(&n.as_str())).unwrap_or(given));
    }
    match info.syntax {
        "F" => Ok(number(name, value)?.to_string()),
        // one number per channel: a sequence, an array or a tensor
        _ => {
            if value.is_instance_of::<PyString>() {
                return Err(type_error(name, "a sequence of numbers, one per channel", value));
            }
            let items: Vec<Bound<'_, PyAny>> = value
                .try_iter()
                .map_err(|_| type_error(name, "a sequence of numbers, one per channel", value))?
                .collect::<PyResult<_>>()?;
            let numbers = items.iter().map(|v| number(name, v).map(|x| x.to_string())).collect::<PyResult<Vec<_>>>()?;
            Ok(numbers.join(","))
        }
    }
}

/// Spellings of a name as Python code may write it: as given, with `_` for `-` and the other way
/// round, and `dice_ce` for `dice+ce`.
fn spellings(name: &str) -> [String; 4] {
    [name.to_string(), name.replace('_', "-"), name.replace('-', "_"), name.replace(['_', '-'], "+")]
}

/// The loss family named `name` (in any of its [`spellings`]).
fn loss_kind(name: &str) -> PyResult<LossKind> {
    spellings(name)
        .iter()
        .find_map(|n| LossKind::from_name(n).ok())
        .ok_or_else(|| PyValueError::new_err(LossKind::from_name(name).unwrap_err().to_string()))
}

/// `weight`: a number, or a sequence of numbers (a list, tuple, array or tensor).
fn weight(value: &Bound<'_, PyAny>) -> PyResult<Weight> {
    const WANT: &str = "a number, or one number per channel (a list, tuple, array or tensor)";
    if value.is_instance_of::<PyString>() || value.is_instance_of::<PyDict>() {
        return Err(type_error("weight", WANT, value));
    }
    if let Ok(items) = value.try_iter() {
        let items: Vec<Bound<'_, PyAny>> = items.collect::<PyResult<_>>()?;
        if items.is_empty() {
            return Err(PyValueError::new_err("weight is empty; give one number per channel, or None"));
        }
        return items.iter().map(|v| number("weight", v)).collect::<PyResult<Vec<_>>>().map(Weight::Each);
    }
    // a number, a numpy scalar or a 0-d array
    number("weight", value).map(Weight::All).map_err(|_| type_error("weight", WANT, value))
}

/// The request of `call` with its `weight` resolved for `channels` channels, as MONAI reads it:
/// one number weighs every channel; C − 1 numbers, with the background left out of a Dice-type
/// loss without cross-entropy, weigh the foreground channels (MONAI `DiceLoss` takes them so). A
/// weight that MONAI's `DiceLoss` ignores — with one channel left in a Dice-type loss — is refused
/// rather than applied.
///
/// With a one-hot target, torch's `CrossEntropyLoss(weight)` (and MONAI's `DiceCELoss`, which
/// hands it the target) divides by the number of voxels, not by the sum of their class weights as
/// it does for labels (docs/math.md): weights with a cross-entropy part and a one-hot target are
/// refused, the labels asked for.
pub fn with_weights(call: &Call, channels: usize, one_hot: bool) -> dicegrad::Result<dicegrad::Request> {
    let mut request = call.request.clone();
    let Some(w) = &call.weight else { return Ok(request) };
    let spec = request.loss.resolve(channels);
    if one_hot && spec.loss.family().has_ce() {
        return Err(dicegrad::Error::usage(format!(
            "weight with a one-hot target: torch's CrossEntropyLoss (and MONAI's DiceCELoss) divides the class-weighted \
             cross-entropy of a one-hot target by the number of voxels, and that of labels by the sum of their weights, \
             which is what the {} loss computes; give the target as labels (B, *spatial), e.g. target.argmax(1)",
            spec.loss
        )));
    }
    let in_dice = if spec.include_background || channels == 1 { channels } else { channels - 1 };
    let dice_only =
        !spec.loss.family().has_ce() && spec.loss != LossKind::Mimic && spec.loss.reads(LossParam::ClassWeights);
    if dice_only && in_dice == 1 {
        return Err(dicegrad::Error::usage(format!(
            "weight: one channel is left in the {} loss, and MONAI's DiceLoss ignores its weight there (dicegrad would \
             scale the loss by it); drop weight, or give loss_weight to scale the loss",
            spec.loss
        )));
    }
    let values = match w {
        Weight::All(v) => vec![*v; channels],
        Weight::Each(v) if v.len() + 1 == channels && !spec.include_background && dice_only => {
            std::iter::once(1.0).chain(v.iter().copied()).collect()
        }
        Weight::Each(v) => v.clone(),
    };
    request.loss.overrides.class_weights = Some(Some(values));
    Ok(request)
}

/// The call the keyword arguments `options` describe (None values left out by the caller).
pub fn call(options: &Bound<'_, PyDict>) -> PyResult<Call> {
    let mut c = Call::default();
    for (key, value) in options.iter() {
        let key: String = key.extract()?;
        if value.is_none() {
            continue;
        }
        let loss_param = LossParam::ALL.iter().copied().find(|&p| python_name(p) == key);
        match (key.as_str(), loss_param) {
            (_, Some(LossParam::Loss)) => {
                let name = text("loss", &value)?;
                c.request.loss.overrides.loss = Some(loss_kind(&name)?);
            }
            (_, Some(LossParam::ClassWeights)) => c.weight = Some(weight(&value)?),
            (_, Some(p)) => {
                let v = param_text(p, &value)?;
                c.request
                    .loss
                    .overrides
                    .set(p, &v)
                    .map_err(|e| PyValueError::new_err(format!("{}: {e}", python_name(p))))?;
            }
            ("preset", None) => {
                let name = text("preset", &value)?;
                c.request.loss.preset =
                    Some(Preset::from_name(&name).map_err(|e| PyValueError::new_err(e.to_string()))?);
            }
            ("batch", None) => c.batch = Some(boolean("batch", &value)?),
            ("label", None) => c.request.label = Some(whole("label", &value)?),
            ("spatial_dims", None) => c.spatial_dims = Some(count("spatial_dims", &value, 1)?),
            ("threads", None) => c.threads = Some(count("threads", &value, 0)?),
            ("spacing", None) => {
                if value.is_instance_of::<PyString>() {
                    return Err(type_error("spacing", "one voxel size per spatial axis", &value));
                }
                let items: Vec<Bound<'_, PyAny>> = value
                    .try_iter()
                    .map_err(|_| type_error("spacing", "one voxel size per spatial axis", &value))?
                    .collect::<PyResult<_>>()?;
                c.spacing = Some(items.iter().map(|v| number("spacing", v)).collect::<PyResult<_>>()?);
            }
            ("pictures", None) => {
                c.pictures = boolean("pictures", &value)?;
                c.request.views = c.pictures.then(ViewRequest::default);
            }
            ("force_activation", None) => c.request.force_activation = boolean("force_activation", &value)?,
            ("allow_non_finite", None) => c.request.allow_non_finite = boolean("allow_non_finite", &value)?,
            ("loss_scale", None) => {
                let s = number("loss_scale", &value)?;
                c.request.loss_scale = LossScale::new(s).map_err(|e| crate::errors::to_py(&e))?;
            }
            ("compare", None) => {
                let names: Vec<String> = if value.is_instance_of::<PyString>() {
                    vec![text("compare", &value)?]
                } else {
                    value
                        .try_iter()
                        .map_err(|_| type_error("compare", "a loss name or a list of them", &value))?
                        .map(|v| v.and_then(|v| text("compare", &v)))
                        .collect::<PyResult<_>>()?
                };
                for n in names {
                    c.request.compare.push(loss_kind(&n)?);
                }
            }
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument '{key}'; see help(dicegrad.gradient) for the arguments"
                )))
            }
        }
    }
    Ok(c)
}

/// Every loss parameter: (Python name, help, default as the library writes it, choices).
pub fn parameters() -> Vec<(&'static str, String, String, Option<Vec<&'static str>>)> {
    LossParam::ALL
        .iter()
        .map(|&p| {
            let info = p.info();
            (python_name(p), info.help, info.default, info.choices)
        })
        .collect()
}
