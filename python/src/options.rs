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
    match param {
        LossParam::ClassWeights => "weight",
        p => p.name(),
    }
}

/// The Python name of a parameter a message names.
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
    value
        .call_method0("__index__")
        .and_then(|v| v.extract::<i64>())
        .map_err(|_| type_error(name, "a whole number", value))
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
    if info.choices.is_some() {
        return text(name, value);
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
                // underscores as Python writes names, dashes as the library does
                let kind = LossKind::from_name(&name)
                    .or_else(|_| LossKind::from_name(&name.replace('_', "-")))
                    .map_err(|e| PyValueError::new_err(e.to_string()))?;
                c.request.loss.overrides.loss = Some(kind);
            }
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
                    let kind = LossKind::from_name(&n)
                        .or_else(|_| LossKind::from_name(&n.replace('_', "-")))
                        .map_err(|e| PyValueError::new_err(format!("compare: {e}")))?;
                    c.request.compare.push(kind);
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
