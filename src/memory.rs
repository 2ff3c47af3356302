//! Fresh memory faulted in on another core, ahead of the code that writes it.
//!
//! The first write to each 4 KiB page of a fresh allocation traps into the kernel, which finds a
//! page, zeroes it and maps it. On the machines measured (docs/performance.md) that costs about
//! 0.9 ms per MiB — as much as decoding the data that fills the page. A volume decoded into a
//! fresh buffer on one core spends close to half its time there. [`ahead_of`] has a second thread
//! ask the kernel for the pages (Linux `madvise(MADV_POPULATE_WRITE)`, which maps them without
//! touching their contents) while the first writes, so that the two costs overlap.
//!
//! A program that reads many volumes one after the other (`batch`, `track`) would fault in the
//! pages of every one of them, since the allocator returns large blocks to the system when they
//! are freed. A worker thread that reads volume after volume ([`keeping_spares`]) instead keeps
//! the buffers of the last volume it is done with as spares ([`keep_spare`]), and the next volume
//! of that size or smaller is read into them ([`take_spare`]): their pages are faulted in once per
//! worker, not once per case. Other threads keep nothing.
//!
//! Memory is promised no faster than the data can justify: the pages asked for ahead are at most
//! those the caller names (a bound it draws from what it knows, e.g. the compressed size), so
//! that a small file claiming a huge volume costs no memory before its data arrives.

use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

/// How far a decoder's fresh output is faulted in ahead of it, at most: this many times its
/// compressed input (predictions compress 4–10 times, labels more), plus [`LEAD_SLACK`].
const LEAD_RATIO: usize = 32;
const LEAD_SLACK: usize = 64 << 20;

/// The bytes of a decoder's fresh output to fault in ahead of it, for `compressed` bytes of
/// input: beyond them pages are faulted in as the decoder writes them, so that a small file
/// claiming a huge volume is not promised its memory before its data arrives.
pub fn decoder_lead(compressed: usize) -> usize {
    compressed.saturating_mul(LEAD_RATIO).saturating_add(LEAD_SLACK)
}

/// Pages asked for at a time.
const STEP: usize = 2 << 20;

/// A span of memory to fault in: addresses only, so that no reference to it outlives the call that
/// names it.
#[derive(Clone, Copy, Debug)]
pub struct Pages {
    start: usize,
    len: usize,
}

impl Pages {
    /// The first `ahead` bytes of `room` (a `Vec`'s spare room, say).
    pub fn of<T>(room: &mut [MaybeUninit<T>], ahead: usize) -> Pages {
        Pages { start: room.as_mut_ptr() as usize, len: std::mem::size_of_val(room).min(ahead) }
    }
}

/// Runs `work`, while another thread (when more than one core is used) faults in each span of
/// `pages` in turn, and stops as soon as `work` returns. That thread never reads or writes the
/// memory; it only asks the kernel to map it.
pub fn ahead_of<R>(pages: &[Pages], work: impl FnOnce() -> R) -> R {
    if rayon::current_num_threads() < 2 || !cfg!(target_os = "linux") || pages.iter().all(|p| p.len < STEP) {
        return work();
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for p in pages {
                let mut at = 0;
                while at < p.len && !done.load(Ordering::Relaxed) {
                    let n = STEP.min(p.len - at);
                    populate(p.start + at, n);
                    at += n;
                }
            }
        });
        let r = work();
        done.store(true, Ordering::Relaxed);
        r
    })
}

/// Asks the kernel to map the whole pages within `len` bytes from address `start` for writing.
#[cfg(target_os = "linux")]
fn populate(start: usize, len: usize) {
    const PAGE: usize = 4096;
    const MADV_POPULATE_WRITE: libc::c_int = 23; // Linux 5.14; older kernels refuse it, harmlessly
    let first = start.next_multiple_of(PAGE);
    let end = (start + len) / PAGE * PAGE;
    if end > first {
        // SAFETY: MADV_POPULATE_WRITE maps the pages of a range for writing without reading or
        // changing their contents, so it cannot race with the writer. On a range that is not (or
        // no longer) mapped it fails and does nothing; a failure (an old kernel, no memory to
        // spare) only leaves the faults to the writer.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, MADV_POPULATE_WRITE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn populate(_start: usize, _len: usize) {}

/// `len` bytes of `file` from `offset` on (fewer if it ends first), read into this thread's spare
/// (see [`take_spare`]), its fresh pages faulted in ahead of the read.
pub fn read_whole(file: &mut std::fs::File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let (mut bytes, fresh) = take_spare::<u8>(len as usize);
    let ahead = if fresh { usize::MAX } else { 0 };
    ahead_of(&[Pages::of(bytes.spare_capacity_mut(), ahead)], || {
        file.seek(SeekFrom::Start(offset))?;
        file.by_ref().take(len).read_to_end(&mut bytes)
    })?;
    Ok(bytes)
}

/// A buffer of `T` whose first `bytes` bytes `decode` fills from `compressed` (it says whether it
/// wrote all of them), taken from this thread's spare (see [`take_spare`]) or fresh, its fresh
/// pages faulted in ahead of the decoder up to [`decoder_lead`]; `None`, the buffer freed, when
/// `decode` fails. `bytes` must be a multiple of `T`'s size.
pub fn decode_whole<T: Plain>(
    compressed: &[u8],
    bytes: usize,
    decode: impl FnOnce(&[u8], &mut [MaybeUninit<u8>]) -> bool,
) -> Option<Vec<T>> {
    let size = std::mem::size_of::<T>();
    assert!(bytes.is_multiple_of(size), "{bytes} bytes of values of {size} bytes");
    let (mut buf, fresh) = take_spare::<T>(bytes / size);
    let room = &mut as_bytes_mut(buf.spare_capacity_mut())[..bytes];
    let pages = Pages::of(room, if fresh { decoder_lead(compressed.len()) } else { 0 });
    if !ahead_of(&[pages], || decode(compressed, room)) {
        return None;
    }
    // SAFETY: `decode` wrote all `bytes` bytes of the room: `bytes / size` whole values of `T`
    // (any bytes of which are a value).
    unsafe { buf.set_len(bytes / size) };
    Some(buf)
}

/// Plain number types, any bytes of which are a value (and which have no padding).
pub trait Plain: Copy + sealed::Sealed + 'static {
    /// The thread's spare buffer of this type.
    #[doc(hidden)]
    fn spare() -> &'static std::thread::LocalKey<RefCell<Vec<Self>>>;
}

thread_local! {
    static SPARE_U8: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static SPARE_F32: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The thread runs [`keeping_spares`].
    static KEEPING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a loop that reads volume after volume) with this thread keeping spares; they are
/// dropped when `f` ends, even by a panic.
pub fn keeping_spares<R>(f: impl FnOnce() -> R) -> R {
    struct Done(bool);
    impl Drop for Done {
        fn drop(&mut self) {
            KEEPING.set(self.0);
            if !self.0 {
                drop(SPARE_U8.take());
                drop(SPARE_F32.take());
            }
        }
    }
    let _done = Done(KEEPING.replace(true));
    f()
}

impl Plain for u8 {
    fn spare() -> &'static std::thread::LocalKey<RefCell<Vec<u8>>> {
        &SPARE_U8
    }
}

impl Plain for f32 {
    fn spare() -> &'static std::thread::LocalKey<RefCell<Vec<f32>>> {
        &SPARE_F32
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u8 {}
    impl Sealed for f32 {}
}

/// An empty vector with room for `len` values: this thread's spare (see [`keep_spare`]) when it
/// has the room, else a fresh one (and the spare is dropped). Says which: a fresh vector's pages
/// are not faulted in yet.
pub fn take_spare<T: Plain>(len: usize) -> (Vec<T>, bool) {
    let spare = T::spare().with(|s| std::mem::take(&mut *s.borrow_mut()));
    if spare.capacity() >= len {
        let mut v = spare;
        v.clear();
        return (v, false);
    }
    drop(spare);
    (Vec::with_capacity(len), true)
}

/// This thread's spare, emptied, when it has room for `len` values; else a fresh vector with room
/// for `fresh` values (and the spare is dropped).
pub fn take_spare_or<T: Plain>(len: usize, fresh: usize) -> Vec<T> {
    match take_spare::<T>(0) {
        (v, _) if v.capacity() >= len => v,
        _ => Vec::with_capacity(fresh),
    }
}

/// Keeps `v`, a volume's buffer this thread is done with, as the thread's spare (dropping the
/// previous one), for [`take_spare`] — within [`keeping_spares`]; elsewhere `v` is dropped.
pub fn keep_spare<T: Plain>(v: Vec<T>) {
    if KEEPING.get() {
        T::spare().with(|s| *s.borrow_mut() = v);
    }
}

/// The bytes of `buf` (a `Vec<T>`'s spare room, say) as bytes that may be written.
pub fn as_bytes_mut<T: Plain>(buf: &mut [MaybeUninit<T>]) -> &mut [MaybeUninit<u8>] {
    let len = std::mem::size_of_val(buf);
    // SAFETY: the same memory, of the same size, as bytes that may be uninitialised: any bit
    // pattern is a valid `MaybeUninit<u8>`, and bytes need no alignment.
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<MaybeUninit<u8>>(), len) }
}

/// The bytes that the values of `v` are made of.
pub fn bytes_of<T: Plain>(v: &[T]) -> &[u8] {
    // SAFETY: initialised values of a type without padding, as their bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_sees_its_own_writes_while_the_pages_are_faulted_in() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            let n = 9 << 20;
            let mut v: Vec<u32> = Vec::with_capacity(n);
            let pages = Pages::of(v.spare_capacity_mut(), usize::MAX);
            assert_eq!(pages.len, 4 * n);
            ahead_of(&[pages], || {
                for i in 0..n {
                    v.push(i as u32 ^ 0x5a5a);
                }
            });
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 ^ 0x5a5a));
        });
    }

    #[test]
    fn a_spare_serves_the_next_volume_it_has_room_for_on_its_thread() {
        std::thread::spawn(|| {
            // outside a loop over volumes nothing is kept
            keep_spare(Vec::<f32>::with_capacity(1000));
            assert!(take_spare::<f32>(10).1);
            keeping_spares(|| {
                let (v, fresh) = take_spare::<f32>(1000);
                assert!(fresh && v.capacity() >= 1000);
                let at = v.as_ptr();
                keep_spare(v);
                let (v, fresh) = take_spare::<f32>(900);
                assert!(!fresh && v.is_empty() && v.as_ptr() == at, "the spare is reused");
                keep_spare(v);
                let (v, fresh) = take_spare::<f32>(5000);
                assert!(fresh && v.capacity() >= 5000, "a larger volume gets a fresh buffer");
                // other threads have their own
                keep_spare(v);
                std::thread::spawn(|| assert!(take_spare::<f32>(10).1)).join().unwrap();
            });
            assert!(take_spare::<f32>(10).1, "the spares go when the loop ends");
        })
        .join()
        .unwrap();
    }
}
