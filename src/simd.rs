//! Loops compiled twice: for the baseline x86-64 (or any other target) and for AVX2, the second
//! run when the processor has AVX2. Both builds perform the same IEEE operations on the same values
//! in the same order (Rust never fuses a multiply and an add on its own), so their results are
//! bit-identical; AVX2 only lets the compiler process 4 f64 / 8 f32 values per instruction.

/// Defines a function whose body is compiled for the baseline and for AVX2, dispatching at run
/// time (`is_x86_feature_detected!` caches its answer). Arguments must be plain identifiers.
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
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the processor has AVX2 (checked just above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use avx2_or_portable;
