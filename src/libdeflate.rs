//! libdeflate, the fastest DEFLATE decoder for data held whole in memory: a safe face over its C
//! library (the only foreign code of the crate).
//!
//! libdeflate decodes a whole DEFLATE stream (raw, or one gzip member with its CRC-32 and ISIZE
//! checked) in one call, into an output buffer that must be large enough for all of it. That fits
//! a volume: its header says how many bytes its data are before a byte of them is decoded. It
//! decodes about twice as fast as zlib-rs streaming (docs/performance.md). Streams it cannot take
//! whole — longer than the room given, damaged, cut short — are told apart only coarsely
//! ([`Failure`]); callers then read them again with the streaming decoder, which says exactly what
//! is wrong.

use std::mem::MaybeUninit;
use std::ptr::NonNull;

use libdeflate_sys as sys;

/// The most bytes one compressed byte can become in DEFLATE (a 258-byte match in under two bits,
/// rounded up): a stream of n bytes cannot decode to more than this many times n.
pub const MAX_RATIO: u64 = 1032;

/// Why a stream could not be decoded whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Damaged data: an invalid stream, or (gzip) a CRC-32 or ISIZE that does not match.
    BadData,
    /// The stream holds more than the room given.
    NoRoom,
}

/// A libdeflate decompressor (about 32 KB of tables), reusable for many streams on one thread.
pub struct Inflater(NonNull<sys::libdeflate_decompressor>);

// SAFETY: a decompressor holds only its own tables; libdeflate allows using it from any thread,
// one call at a time (which `&mut self` ensures).
unsafe impl Send for Inflater {}

impl Inflater {
    pub fn new() -> Inflater {
        // SAFETY: allocating a decompressor has no preconditions.
        let p = unsafe { sys::libdeflate_alloc_decompressor() };
        Inflater(
            NonNull::new(p)
                .unwrap_or_else(|| std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 1 << 15]>())),
        )
    }

    /// Decodes the raw DEFLATE stream at the start of `input` into the start of `out`. Returns the
    /// bytes of `input` the stream took and the bytes written, all initialised.
    pub fn raw(&mut self, input: &[u8], out: &mut [MaybeUninit<u8>]) -> Result<(usize, usize), Failure> {
        self.call(sys::libdeflate_deflate_decompress_ex, input, out)
    }

    /// Decodes the gzip member at the start of `input` (its header, its DEFLATE stream, its CRC-32
    /// and ISIZE, both checked) into the start of `out`. Returns the bytes of `input` the member
    /// took and the bytes written, all initialised.
    pub fn gzip_member(&mut self, input: &[u8], out: &mut [MaybeUninit<u8>]) -> Result<(usize, usize), Failure> {
        self.call(sys::libdeflate_gzip_decompress_ex, input, out)
    }

    fn call(&mut self, decode: Decode, input: &[u8], out: &mut [MaybeUninit<u8>]) -> Result<(usize, usize), Failure> {
        let (mut used, mut written) = (0usize, 0usize);
        let (i, o) = (input.as_ptr().cast(), out.as_mut_ptr().cast());
        // SAFETY: the pointers and lengths are those of live slices; libdeflate reads only within
        // `input` and writes only within `out` (never reading it), and reports how much of each
        // it used.
        let result = unsafe { decode(self.0.as_ptr(), i, input.len(), o, out.len(), &mut used, &mut written) };
        match result {
            sys::libdeflate_result_LIBDEFLATE_SUCCESS if used <= input.len() && written <= out.len() => {
                Ok((used, written))
            }
            sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Err(Failure::NoRoom),
            _ => Err(Failure::BadData),
        }
    }
}

/// libdeflate's `*_decompress_ex` functions (raw DEFLATE, gzip).
type Decode = unsafe extern "C" fn(
    *mut sys::libdeflate_decompressor,
    *const std::ffi::c_void,
    usize,
    *mut std::ffi::c_void,
    usize,
    *mut usize,
    *mut usize,
) -> sys::libdeflate_result;

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the pointer came from libdeflate_alloc_decompressor and is freed once.
        unsafe { sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Room for `n` bytes, set to zero, so that they can be read whatever the decoder wrote.
    fn room(n: usize) -> Vec<MaybeUninit<u8>> {
        vec![MaybeUninit::new(0); n]
    }

    fn init(b: &[MaybeUninit<u8>]) -> Vec<u8> {
        // SAFETY: every byte of a `room` is initialised.
        b.iter().map(|x| unsafe { x.assume_init() }).collect()
    }

    #[test]
    fn a_gzip_member_decodes_whole_with_what_it_took() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut gz = gzip(&data);
        let len = gz.len();
        gz.extend_from_slice(b"after");
        let mut out = room(data.len());
        let (used, written) = Inflater::new().gzip_member(&gz, &mut out).unwrap();
        assert_eq!((used, written), (len, data.len()));
        assert_eq!(init(&out[..written]), data);
    }

    #[test]
    fn too_little_room_and_damage_are_told_apart() {
        let data = vec![5u8; 10_000];
        let gz = gzip(&data);
        assert_eq!(Inflater::new().gzip_member(&gz, &mut room(9_999)), Err(Failure::NoRoom));
        let mut bad_crc = gz.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(Inflater::new().gzip_member(&bad_crc, &mut room(10_000)), Err(Failure::BadData));
        assert!(Inflater::new().gzip_member(&gz[..n - 3], &mut room(10_000)).is_err(), "cut short");
    }

    #[test]
    fn raw_deflate_reports_the_input_it_took() {
        let data = b"a raw deflate stream, a raw deflate stream".repeat(50);
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&data).unwrap();
        let mut raw = e.finish().unwrap();
        let len = raw.len();
        raw.extend_from_slice(&[1, 2, 3]);
        let mut out = room(data.len() + 10);
        let (used, written) = Inflater::new().raw(&raw, &mut out).unwrap();
        assert_eq!((used, written), (len, data.len()));
        assert_eq!(init(&out[..written]), data);
    }
}
