//! The Python module `dicegrad._dicegrad`: the library's mini-batch route
//! ([`dicegrad::minibatch`]) on numpy arrays, which the package `dicegrad` (python/dicegrad/)
//! wraps with its documented signatures. The input arrives as float32 in C order (the package
//! converts other types once) and is read in place; the target may be any integer or float type.
//! The computation runs with the interpreter released.

mod errors;
mod options;

use dicegrad::case::labels::LabelValue;
use dicegrad::minibatch::shape::TargetForm;
use dicegrad::minibatch::{reduction, BatchReport, MiniBatch};
use dicegrad::parallel::{cores, max_workers};
use dicegrad::plot::png_files;
use dicegrad::Error;
use ndarray::ArrayViewD;
use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use errors::{to_py, Keywords};
use options::Call;

/// What to do with a mini-batch once read.
#[derive(Clone, Copy)]
enum Work {
    Gradient,
    Analyze,
    MimicWeights,
}

/// The PNG pictures of a report, for Python: (name, bytes).
type NamedBytes<'py> = Vec<(&'static str, Bound<'py, PyBytes>)>;

/// The PNG pictures of a report: (name, bytes).
type Pictures = Vec<(&'static str, Vec<u8>)>;

/// Sets of mimic weights: per set, the raw a_k and the normalised w_k (None when undetermined).
type WeightSets = Vec<(Vec<f64>, Option<Vec<f64>>)>;

enum Done {
    Gradient,
    /// The report as JSON, and the pictures of each report in it (with `pictures`).
    Analyze(Vec<u8>, Vec<Pictures>),
    /// Whether the sums were pooled, and per set of weights (one pooled, one per sample): the raw
    /// a_k, and the normalised w_k.
    MimicWeights(bool, WeightSets),
}

/// Runs `work` on the mini-batch of `input` and `target` as `call` says, on `call.threads`
/// threads (see [`pool`]); the gradient goes into `out`.
fn run<L: LabelValue>(
    input: ArrayViewD<'_, f32>,
    target: ArrayViewD<'_, L>,
    call: &Call,
    work: Work,
    out: &mut [f32],
) -> Result<Done, Error> {
    let go = || {
        let batch = MiniBatch::new(input, target, call.spatial_dims, call.request.label)?;
        let batch = match &call.spacing {
            Some(spacing) => batch.with_spacing(spacing)?,
            None => batch,
        };
        let one_hot = batch.shape.target == TargetForm::OneHot;
        let request = options::with_weights(call, batch.shape.channels, one_hot)?;
        let (reduced, _) = reduction(call.batch, &request)?;
        match work {
            Work::Gradient => batch.gradient_into(&request, reduced, out).map(|_| Done::Gradient),
            Work::Analyze => {
                let report = batch.analyze(&request, reduced, &Keywords)?;
                let pictures = if call.pictures { pictures(&report)? } else { Vec::new() };
                Ok(Done::Analyze(report.to_json(), pictures))
            }
            Work::MimicWeights => {
                let sets = batch.mimic_weights(&request, reduced)?;
                let pooled = reduced == dicegrad::BatchReduction::Pooled;
                Ok(Done::MimicWeights(pooled, sets.into_iter().map(|m| (m.a, m.weights)).collect()))
            }
        }
    };
    pool(call.threads)?.install(go)
}

/// The thread pools of this process, by size. Every computation runs in one of them, never in
/// rayon's global pool: a pool's threads do not survive `fork()` (a DataLoader worker, a
/// multiprocessing pool), so a child process finds the pools of its parent (another process id)
/// and starts its own. The lock is held only to look a pool up or put one in (never while threads
/// start or stop), and `LOCKED_BY` says which process took it last: a child forked while a parent's
/// thread held it finds it held for ever, and makes a pool of its own without it.
static POOLS: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

/// A pool kept: the process that made it, its size, the pool.
type Kept = (u32, usize, Arc<ThreadPool>);

/// The process that last took the lock of [`POOLS`].
static LOCKED_BY: AtomicU32 = AtomicU32::new(0);

/// The most pool sizes kept.
const KEPT: usize = 4;

/// The pools, locked; None when a parent process held the lock as this one was forked.
fn pools(pid: u32) -> Option<MutexGuard<'static, Vec<Kept>>> {
    let guard = match POOLS.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        // held by a thread of a parent, which this process does not have
        Err(TryLockError::WouldBlock) if LOCKED_BY.load(Ordering::SeqCst) != pid => return None,
        Err(TryLockError::WouldBlock) => POOLS.lock().unwrap_or_else(|e| e.into_inner()),
    };
    LOCKED_BY.store(pid, Ordering::SeqCst);
    Some(guard)
}

/// A pool of `threads` workers (None or 0: one per core; at most [`max_workers`]).
fn pool(threads: Option<usize>) -> Result<Arc<ThreadPool>, Error> {
    let n = match threads {
        None | Some(0) => cores(),
        Some(n) => n.min(max_workers()),
    };
    let pid = std::process::id();
    if let Some(mut kept) = pools(pid) {
        if kept.iter().any(|(p, _, _)| *p != pid) {
            // a parent's pools: their threads are not in this process, and dropping them would
            // signal threads that do not exist; they are let go
            for (_, _, old) in kept.drain(..) {
                std::mem::forget(old);
            }
        }
        if let Some((_, _, p)) = kept.iter().find(|(_, size, _)| *size == n) {
            return Ok(p.clone());
        }
    }
    let p = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::usage(format!("cannot start {n} threads: {e}")))?,
    );
    let evicted = pools(pid).and_then(|mut kept| {
        kept.push((pid, n, p.clone()));
        (kept.len() > KEPT).then(|| kept.remove(0))
    });
    // its threads stop outside the lock
    drop(evicted);
    Ok(p)
}

/// The pictures of each report of `report`: the one, or each sample's.
fn pictures(report: &BatchReport) -> Result<Vec<Pictures>, Error> {
    let here = std::path::Path::new("dicegrad.analyze");
    report
        .report
        .iter()
        .chain(&report.samples)
        .map(|r| Ok(png_files(r, here)?.into_iter().map(|(p, bytes)| (p.stem(), bytes)).collect()))
        .collect()
}

/// Reads the target as labels of type `L` if it is one, and runs.
fn with_target<'py, L: LabelValue + Element>(
    py: Python<'py>,
    input: &ArrayViewD<'_, f32>,
    target: &Bound<'py, PyUntypedArray>,
    call: &Call,
    work: Work,
    out: &mut [f32],
) -> Option<PyResult<Done>> {
    let t = target.extract::<PyReadonlyArrayDyn<'py, L>>().ok()?;
    let t = t.as_array();
    Some(py.detach(|| run(input.view(), t, call, work, out)).map_err(|e| to_py(&e)))
}

/// The target's element type decides which reading runs.
macro_rules! by_type {
    ($py:expr, $input:expr, $target:expr, $call:expr, $work:expr, $out:expr; $($t:ty),+) => {{
        let mut done = None;
        $( if done.is_none() {
            done = with_target::<$t>($py, $input, $target, $call, $work, $out);
        } )+
        done
    }};
}

fn dispatch<'py>(
    py: Python<'py>,
    input: PyReadonlyArrayDyn<'py, f32>,
    target: &Bound<'py, PyAny>,
    options: &Bound<'py, PyDict>,
    work: Work,
    out: &mut [f32],
) -> PyResult<Done> {
    let call = options::call(options)?;
    if !input.is_c_contiguous() {
        return Err(PyValueError::new_err("the input must be C-contiguous (the package passes it so)"));
    }
    let input = input.as_array();
    let target = target.cast::<PyUntypedArray>().map_err(|_| PyTypeError::new_err("the target must be an array"))?;
    by_type!(py, &input, target, &call, work, out; u8, i64, i32, f32, i16, u16, i8, u32, u64, f64).unwrap_or_else(
        || {
            Err(PyTypeError::new_err(format!(
                "the target holds {}; give integer labels or a one-hot array (integers, bool or floats)",
                target.dtype()
            )))
        },
    )
}

/// The gradient of the loss with respect to every value of `input` (float32, C order), in its
/// shape: a new numpy array (numpy's allocation, which asks the system for huge pages), filled
/// with the interpreter released.
#[pyfunction]
fn gradient<'py>(
    py: Python<'py>,
    input: PyReadonlyArrayDyn<'py, f32>,
    target: &Bound<'py, PyAny>,
    options: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let out = PyArrayDyn::<f32>::zeros(py, input.shape(), false);
    {
        let mut values = out.readwrite();
        let values = values.as_slice_mut().expect("a new array is contiguous");
        dispatch(py, input, target, options, Work::Gradient, values)?;
    }
    Ok(out)
}

/// The report of the mini-batch, as JSON text, and with `pictures` the PNG pictures of each of
/// its reports.
#[pyfunction]
fn analyze<'py>(
    py: Python<'py>,
    input: PyReadonlyArrayDyn<'py, f32>,
    target: &Bound<'py, PyAny>,
    options: &Bound<'py, PyDict>,
) -> PyResult<(String, Vec<NamedBytes<'py>>)> {
    match dispatch(py, input, target, options, Work::Analyze, &mut [])? {
        Done::Analyze(json, pictures) => {
            let pictures = pictures
                .into_iter()
                .map(|p| p.into_iter().map(|(name, bytes)| (name, PyBytes::new(py, &bytes))).collect())
                .collect();
            Ok((String::from_utf8(json).expect("JSON is UTF-8"), pictures))
        }
        _ => unreachable!("asked for the report"),
    }
}

/// The mimic weights of the mini-batch's loss: whether pooled, and per set (one pooled, one per
/// sample) the raw a_k and the normalised w_k (None when undetermined).
#[pyfunction]
fn mimic_weights<'py>(
    py: Python<'py>,
    input: PyReadonlyArrayDyn<'py, f32>,
    target: &Bound<'py, PyAny>,
    options: &Bound<'py, PyDict>,
) -> PyResult<(bool, WeightSets)> {
    match dispatch(py, input, target, options, Work::MimicWeights, &mut [])? {
        Done::MimicWeights(pooled, sets) => Ok((pooled, sets)),
        _ => unreachable!("asked for the weights"),
    }
}

/// Every loss parameter: (Python name, help, default, choices).
#[pyfunction]
fn parameters() -> Vec<(&'static str, String, String, Option<Vec<&'static str>>)> {
    options::parameters()
}

#[pymodule]
fn _dicegrad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // numpy's C interface and the types read are looked up once, here at import: a lookup is a
    // one-time initialisation, which a process forked while another thread ran it would wait on
    // for ever
    let py = m.py();
    drop(numpy::PyArray1::<f32>::zeros(py, 0, false));
    for t in [
        numpy::dtype::<u8>(py),
        numpy::dtype::<i64>(py),
        numpy::dtype::<i32>(py),
        numpy::dtype::<f32>(py),
        numpy::dtype::<i16>(py),
        numpy::dtype::<u16>(py),
        numpy::dtype::<i8>(py),
        numpy::dtype::<u32>(py),
        numpy::dtype::<u64>(py),
        numpy::dtype::<f64>(py),
    ] {
        drop(t);
    }
    m.add_function(wrap_pyfunction!(gradient, m)?)?;
    m.add_function(wrap_pyfunction!(analyze, m)?)?;
    m.add_function(wrap_pyfunction!(mimic_weights, m)?)?;
    m.add_function(wrap_pyfunction!(parameters, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("max_threads", max_workers())?;
    Ok(())
}
