//! Every loop with two builds — one for the baseline processor, one for AVX2 — and the one place
//! that decides which runs.
//!
//! Both builds perform the same IEEE operations on the same values in the same order (Rust never
//! fuses a multiply and an add on its own; the intrinsics are chosen to match the portable code
//! operation for operation), so their results are bit-identical; AVX2 only processes 4 f64 / 8 f32
//! values per instruction. Tests compare the two builds on the same machine, whatever path the
//! dispatch chooses.
//!
//! Dispatch: [`Avx2::get`] hands out a token when the processor has AVX2 and the environment
//! variable `DICEGRAD_SIMD` is not `portable`; the AVX2 functions take the token, which makes
//! calling them safe. Setting `DICEGRAD_SIMD=portable` runs every loop's portable build (the test
//! suite runs once each way).
//!
//! - [`exp`]: the exponential of the activations (portable lanes, and four AVX2 registers).
//! - [`activation`]: sigmoid and the shifted exponential of the softmax on blocks.
//! - [`sums`]: the reduction pass's per-channel sums and argmax counts.
//! - [`moments`]: block statistics of a gradient (moments, extremes, float16 fates).
//!
//! Loops whose AVX2 build is the portable Rust compiled with AVX2 enabled (no intrinsics) are
//! defined where they are used, with the macro `avx2_or_portable!` of this module.

pub mod activation;
pub mod exp;
pub mod moments;
pub mod sums;

use std::sync::OnceLock;

/// Partial sums kept side by side within a block: values are added lane by lane (lane = position
/// modulo `LANES`), so that the additions do not wait on each other and vectorise; the lanes are
/// then added pairwise. The order depends only on the position in the block.
pub const LANES: usize = 8;

/// Adds up lane sums pairwise, in a fixed order.
#[inline]
pub fn fold_lanes(mut l: [f64; LANES]) -> f64 {
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            l[i] += l[i + w];
        }
    }
    l[0]
}

/// The environment variable that forces the portable builds (`DICEGRAD_SIMD=portable`).
pub const SWITCH: &str = "DICEGRAD_SIMD";

/// Proof that AVX2 instructions may run: the processor has them. Only [`Avx2::get`] and
/// [`Avx2::detect`] make one.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    /// The token when the AVX2 builds are to run: the processor has AVX2 and `DICEGRAD_SIMD` is not
    /// `portable`. Decided once per process.
    #[inline]
    pub fn get() -> Option<Avx2> {
        static CHOICE: OnceLock<Option<Avx2>> = OnceLock::new();
        *CHOICE.get_or_init(|| if portable_forced() { None } else { Avx2::detect() })
    }

    /// The token when the processor has AVX2, whatever the switch says (for tests that compare
    /// the two builds).
    pub fn detect() -> Option<Avx2> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some(Avx2(()));
        }
        None
    }
}

/// What `DICEGRAD_SIMD` asks for: `Ok(true)` for `portable`, `Ok(false)` when it is unset, empty
/// or `auto`; an error for any other value (a misspelt switch would otherwise leave the AVX2 builds
/// on without a word).
pub fn check_switch() -> Result<bool, String> {
    let v = match std::env::var(SWITCH) {
        Err(std::env::VarError::NotPresent) => return Ok(false),
        Err(_) => return Err(format!("{SWITCH}: not valid text; set it to portable (or auto, or leave it unset)")),
        Ok(v) => v,
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "portable" => Ok(true),
        "" | "auto" => Ok(false),
        _ => Err(format!("{SWITCH}={v}: unknown value; set it to portable (or auto, or leave it unset)")),
    }
}

/// Whether `DICEGRAD_SIMD=portable` is set (a value [`check_switch`] refuses counts as not set).
pub fn portable_forced() -> bool {
    check_switch().unwrap_or(false)
}

/// Defines a function whose body is compiled for the baseline and for AVX2, the AVX2 build running
/// when [`Avx2::get`] says so. Arguments must be plain identifiers.
macro_rules! avx2_or_portable {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if $crate::simd::Avx2::get().is_some() {
                    // SAFETY: the token exists only when the processor has AVX2.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use avx2_or_portable;
