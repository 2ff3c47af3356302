//! The library's errors as Python exceptions, their parameters written as a Python caller writes
//! them (`allow_non_finite=True`, `weight`): a problem with the arrays' values or the options is a
//! `ValueError`, as with any numpy function.

use dicegrad::error::{Naming, Param};
use dicegrad::Error;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::PyErr;

use crate::options::python_param;

/// Parameters as keyword arguments.
pub struct Keywords;

impl Naming for Keywords {
    fn param(&self, p: Param) -> String {
        python_param(p.name()).to_string()
    }

    fn setting(&self, p: Param, value: &str) -> String {
        let value = match value {
            "true" => "True".to_string(),
            "false" => "False".to_string(),
            v if v.parse::<f64>().is_ok() => v.to_string(),
            // a placeholder (label=K)
            v if !v.is_empty() && v.chars().all(|c| c.is_ascii_uppercase()) => v.to_string(),
            v => format!("'{v}'"),
        };
        format!("{}={value}", self.param(p))
    }
}

/// The exception for `e`.
pub fn to_py(e: &Error) -> PyErr {
    let message = e.render(&Keywords);
    match e {
        Error::Write { .. } | Error::Open { .. } => PyOSError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}
