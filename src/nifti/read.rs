//! Opening a NIfTI-1 file and streaming its voxel data.
//!
//! The header is parsed and validated (and the value count checked against the limit) before a
//! single byte of voxel data is read or any buffer is sized from it. Voxel data is then streamed in
//! fixed-size byte chunks through the caller's decoder, so a volume exists in memory exactly once,
//! in its final type. `.nii.gz` is recognised by its gzip magic bytes, whatever the file name; all
//! gzip members are read and the stream is read to its end so that the CRC is always checked.
//! What may follow the last gzip member is decided in `super::gzip`.
//!
//! A `.nii.gz` whose data the caller wants whole (a float32 prediction, uint8 labels) is read
//! whole instead ([`Source::inflate_whole`]): the compressed file is read into memory (read, not
//! mapped: a file mapped while another program shortens it kills the reader with SIGBUS) and
//! decoded by libdeflate in one call into one buffer, header and data, about twice as fast as
//! streaming. Any stream that does not decode to exactly the bytes the header promises is then
//! streamed from that copy, as above, so that its error is the streaming decoder's.
//!
//! A compressed file that ends early is told apart from one that is damaged (the decoder reports
//! an unexpected end rather than invalid data), and the message says where it ends: inside the
//! header, inside the voxel data (with how many of the bytes the header describes arrived, always
//! fewer), or after all the voxel data, where only the gzip end (its CRC and length) is missing.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use super::gzip::{inflate_exact, is_cut_member, GzMembers};
use super::header::{Header, HeaderProblem, HEADER_LEN};
use super::nifti2::{parse_v2, HEADER2_LEN};
use crate::error::{Error, Input, Result};
use crate::memory::{bytes_of, decode_whole, keep_spare, read_whole, take_spare_or, Plain};

/// Bytes handed to the decoder at a time (a multiple of every datatype size).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Decompressed bytes accepted after the voxel data (extensions of other tools, padding).
const MAX_TRAILING: u64 = 64 << 20;

/// A vector for `total` values of a source: the thread's spare when it has the room (see
/// [`crate::memory`]), else allocated at once when the file's size proves it holds them
/// (uncompressed), or grown as decoded data arrives (see [`grow_for`]), so that a small compressed
/// file whose header claims a huge volume costs no more memory than it holds.
pub fn vec_for<T: Plain>(total: usize, gzip: bool) -> Vec<T> {
    take_spare_or(total, if gzip { total.min(1 << 20) } else { total })
}

/// Makes room for `incoming` more values in `v` (of `total`), at least doubling the capacity up to
/// `total`. Large blocks are grown in place by the system allocator (mremap), without copies.
pub fn grow_for<T>(v: &mut Vec<T>, incoming: usize, total: usize) {
    if v.capacity() - v.len() < incoming {
        let want = (v.len() + incoming).max(v.capacity() * 2).min(total.max(v.len() + incoming));
        v.reserve_exact(want - v.len());
    }
}

/// The most bytes before the voxel data (header and extensions) decoded whole with it: a volume with
/// larger extensions is streamed, its extensions skipped rather than held.
const MAX_PREFIX: u64 = 1 << 20;

/// An opened volume: header validated, reader positioned at the first voxel.
pub struct Source {
    pub path: PathBuf,
    pub header: Header,
    pub gzip: bool,
    reader: Box<dyn Read + Send>,
    /// For a `.nii.gz`: the file again (to be read whole), and the header's bytes as parsed.
    whole: Option<(File, Vec<u8>)>,
}

/// The voxel data of a source decoded whole, or the source, to be streamed.
pub enum Whole<T> {
    /// The stream decoded into one buffer: the file's first `vox_offset` bytes, then the values
    /// from index `start` on.
    Decoded {
        buf: Vec<T>,
        start: usize,
    },
    Stream(Box<Source>),
}

fn open_error(path: &Path, source: io::Error) -> Error {
    Error::Open { path: path.to_path_buf(), source }
}

/// Maps an I/O error met inside the stream (not an early end: see [`read_full`]) to the error a
/// user should see.
fn stream_error(path: &Path, gzip: bool, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData if gzip => {
            Error::CorruptGzip { path: path.to_path_buf(), detail: e.to_string() }
        }
        _ => open_error(path, e),
    }
}

/// Not a NIfTI file, for `reason`; a zip archive (an `.npz` given where a volume is expected) is
/// named as such.
fn not_nifti(path: &Path, start: &[u8], reason: String) -> Error {
    let reason = if start.starts_with(b"PK\x03\x04") {
        "it is a zip archive (an .npz?); nnU-Net's probabilities are read as a prediction whose name ends in \
         .npz (rename it), labels and other volumes must be NIfTI"
            .to_string()
    } else {
        reason
    };
    Error::NotNifti { path: path.to_path_buf(), reason }
}

/// A compressed file that ends inside its header, after `got` of its `len` bytes.
fn header_cut(path: &Path, got: usize, len: usize) -> Error {
    Error::BadHeader {
        path: path.to_path_buf(),
        problem: format!(
            "truncated: the compressed file ends after {got} bytes, inside the {len}-byte NIfTI header; the file \
             is incomplete, export or copy it again"
        )
        .into(),
    }
}

/// Reads past the `n` bytes before the voxel data (of `expected` bytes) of the file at `path`:
/// when they are cut short, none of the voxel data arrives.
fn skip(reader: &mut dyn Read, n: u64, path: &Path, expected: u64, gzip: bool) -> Result<()> {
    let none_read = || Error::Truncated { path: path.to_path_buf(), expected, found: 0 };
    match io::copy(&mut reader.take(n), &mut io::sink()) {
        Ok(skipped) if skipped == n => Ok(()),
        Ok(_) => Err(none_read()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(none_read()),
        Err(e) => Err(stream_error(path, gzip, e)),
    }
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read, and whether the
/// stream was cut short (a gzip stream that ends before its end: the decoder's unexpected end).
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<(usize, bool)> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Ok((filled, false)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok((filled, true)),
            Err(e) => return Err(e),
        }
    }
    Ok((filled, false))
}

impl Source {
    /// Opens `path`, parses and validates its header, and refuses volumes of more than
    /// `max_values` values before allocating anything for them.
    pub fn open(path: &Path, max_values: u64) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| open_error(path, e))?;
        if !meta.is_file() {
            let kind = if meta.is_dir() { "a directory" } else { "a FIFO, socket or device" };
            return Err(Error::NotAFile { path: path.to_path_buf(), kind });
        }
        let file = File::open(path).map_err(|e| open_error(path, e))?;
        let again = file.try_clone().map_err(|e| open_error(path, e))?;
        let file_len = meta.len();
        let mut buffered = BufReader::with_capacity(1 << 20, file);
        let magic = {
            use std::io::BufRead;
            let head = buffered.fill_buf().map_err(|e| open_error(path, e))?;
            [head.first().copied(), head.get(1).copied()]
        };
        let gzip = magic == [Some(0x1f), Some(0x8b)];
        let mut reader: Box<dyn Read + Send> =
            if gzip { Box::new(GzMembers::new(buffered)) } else { Box::new(buffered) };
        let mut raw = [0u8; HEADER_LEN];
        let (got, cut) = read_full(reader.as_mut(), &mut raw).map_err(|e| stream_error(path, gzip, e))?;
        if cut {
            return Err(header_cut(path, got, HEADER_LEN));
        }
        if got < HEADER_LEN {
            let reason = if got == 0 {
                "the file is empty".to_string()
            } else {
                format!("it holds {got} bytes, less than the 348 of a NIfTI-1 header")
            };
            return Err(not_nifti(path, &raw, reason));
        }
        let problem = |p| match p {
            HeaderProblem::NotNifti(reason) => not_nifti(path, &raw, reason),
            HeaderProblem::Invalid(problem) => Error::BadHeader { path: path.to_path_buf(), problem: problem.into() },
        };
        let size_field = [
            i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
            i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
        ];
        let (header, head) = if size_field.contains(&(HEADER2_LEN as i32)) {
            let mut raw2 = [0u8; HEADER2_LEN];
            raw2[..HEADER_LEN].copy_from_slice(&raw);
            let (more, cut) =
                read_full(reader.as_mut(), &mut raw2[HEADER_LEN..]).map_err(|e| stream_error(path, gzip, e))?;
            if cut {
                return Err(header_cut(path, HEADER_LEN + more, HEADER2_LEN));
            }
            if more < HEADER2_LEN - HEADER_LEN {
                let reason = format!("it holds {} bytes, less than the 540 of a NIfTI-2 header", HEADER_LEN + more);
                return Err(Error::NotNifti { path: path.to_path_buf(), reason });
            }
            (parse_v2(&raw2).map_err(problem)?, raw2.to_vec())
        } else {
            (Header::parse(&raw).map_err(problem)?, raw.to_vec())
        };
        let header_len = head.len();
        let values = header.value_count();
        if values > max_values as u128 {
            return Err(Error::TooLarge {
                path: path.to_path_buf(),
                values,
                dims: format!("{:?}", header.dims),
                limit: max_values,
            });
        }
        let expected = header.data_bytes();
        if !gzip && (file_len as u128) < header.vox_offset as u128 + expected {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                expected: expected as u64,
                found: file_len.saturating_sub(header.vox_offset),
            });
        }
        // the bytes between the header and the data (extensions)
        skip(reader.as_mut(), header.vox_offset - header_len as u64, path, expected as u64, gzip)?;
        let whole = gzip.then_some((again, head));
        Ok(Source { path: path.to_path_buf(), header, gzip, reader, whole })
    }

    /// Decodes a `.nii.gz` whole, into a buffer of `T` (whose size divides `vox_offset`) that
    /// holds the file's first `vox_offset` bytes and then its voxel data, when the stream decodes
    /// to exactly that (see [`inflate_exact`]). Otherwise — not compressed, an offset `T` does not
    /// divide, a file too small to hold what its header claims, a stream of any other length, or
    /// damaged — gives the source back, to be streamed (from the copy in memory once the file was
    /// read). While one core decodes, another faults in the buffer's pages ahead of it.
    pub fn inflate_whole<T: Plain>(mut self) -> Result<Whole<T>> {
        let size = std::mem::size_of::<T>();
        let Some((mut file, head)) = self.whole.take() else { return Ok(Whole::Stream(Box::new(self))) };
        let file_len = file.metadata().map_err(|e| open_error(&self.path, e))?.len();
        let bytes = self.header.vox_offset as u128 + self.header.data_bytes();
        let small_prefix = self.header.vox_offset <= MAX_PREFIX;
        if !small_prefix
            || !self.header.vox_offset.is_multiple_of(size as u64)
            || bytes > crate::libdeflate::MAX_RATIO.saturating_mul(file_len) as u128
        {
            return Ok(Whole::Stream(Box::new(self)));
        }
        let bytes = bytes as usize;
        let compressed = read_whole(&mut file, 0, file_len).map_err(|e| open_error(&self.path, e))?;
        let Some(buf) = decode_whole::<T>(&compressed, bytes, inflate_exact) else {
            return Ok(Whole::Stream(Box::new(self.streamed_from(compressed)?)));
        };
        keep_spare(compressed);
        if !bytes_of(&buf).starts_with(&head) {
            return Err(Error::BadHeader {
                path: self.path.clone(),
                problem: "the file changed while it was read (its header is no longer the one read a moment \
                          before); read it again once whatever writes it has finished"
                    .into(),
            });
        }
        Ok(Whole::Decoded { buf, start: self.header.vox_offset as usize / size })
    }

    /// This source, streamed from `compressed` (the whole file) from its first voxel on.
    fn streamed_from(mut self, compressed: Vec<u8>) -> Result<Source> {
        let mut reader = GzMembers::new(Cursor::new(compressed));
        let expected = self.header.data_bytes() as u64;
        skip(&mut reader, self.header.vox_offset, &self.path, expected, true)?;
        self.reader = Box::new(reader);
        Ok(self)
    }

    /// Streams the voxel data: calls `f(first_value_index, bytes)` for consecutive chunks whose
    /// length is a multiple of the datatype size. Fails with [`Error::Truncated`] when the data ends
    /// early (with fewer bytes found than expected), and (for gzip) reads on to the end of the
    /// stream so that a bad CRC is reported; a gzip stream that ends after all the voxel data but
    /// before its own end is [`Error::Truncated`] with as many bytes found as expected.
    pub fn for_each_chunk(mut self, mut f: impl FnMut(usize, &[u8]) -> Result<()>) -> Result<()> {
        let elem = self.header.datatype.size();
        let total = self.header.data_bytes() as u64;
        let mut buf = vec![0u8; CHUNK_BYTES.min(total as usize).max(elem)];
        let mut done: u64 = 0;
        while done < total {
            let want = (total - done).min(buf.len() as u64) as usize;
            // (a stream cut short always leaves the buffer short: `got < want`)
            let (got, _) = read_full(self.reader.as_mut(), &mut buf[..want])
                .map_err(|e| stream_error(&self.path, self.gzip, e))?;
            if got < want {
                return Err(Error::Truncated { path: self.path.clone(), expected: total, found: done + got as u64 });
            }
            f((done / elem as u64) as usize, &buf[..want])?;
            done += want as u64;
        }
        if self.gzip {
            // Drain the rest of the stream: the gzip trailer (and its CRC) is only checked at the end.
            // A stream that goes on far beyond the data is refused rather than inflated to its end.
            // All the voxel data has arrived: what fails now is the stream after it. A stream that
            // ends early here has lost only its end (found = expected says so).
            let extra = match io::copy(&mut (&mut self.reader).take(MAX_TRAILING + 1), &mut io::sink()) {
                Ok(extra) => extra,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !is_cut_member(&e) => {
                    return Err(Error::Truncated { path: self.path.clone(), expected: total, found: total })
                }
                Err(e) => {
                    let detail = format!("after the voxel data: {e}");
                    return Err(Error::CorruptGzip { path: self.path.clone(), detail });
                }
            };
            if extra > MAX_TRAILING {
                return Err(Error::BadValues {
                    input: Input::File(self.path.clone()),
                    problem: crate::msg![format!(
                        "the compressed stream holds more than {} MiB beyond the {total} bytes of voxel data \
                         its header describes; the header does not match the data, re-export the file",
                        MAX_TRAILING >> 20
                    )],
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nifti::template::new_template;
    use crate::nifti::{write_f32, WriteOptions};

    /// A 20×10×6 float32 volume written as `name` (gzip level 6 for `.gz`), and its values.
    fn volume(dir: &Path, name: &str) -> (PathBuf, Vec<f32>) {
        let path = dir.join(name);
        let values: Vec<f32> = (0..1200).map(|i| (i % 7) as f32 / 8.0).collect();
        let template = new_template([1.0; 3], [0.0; 3], "test");
        let w = WriteOptions { compression: 6, force: true };
        write_f32(&path, &template, &[20, 10, 6], w, |s, out| out.copy_from_slice(&values[s..s + out.len()])).unwrap();
        (path, values)
    }

    #[test]
    fn a_gzip_volume_is_decoded_whole_after_its_header_and_others_are_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let (gz, values) = volume(dir.path(), "v.nii.gz");
        match Source::open(&gz, 1 << 20).unwrap().inflate_whole::<f32>().unwrap() {
            Whole::Decoded { buf, start } => {
                assert_eq!(start, 352 / 4);
                assert_eq!(&buf[start..], &values[..]);
            }
            Whole::Stream(_) => panic!("a plain gzip member is decoded whole"),
        }
        let (plain, _) = volume(dir.path(), "v.nii");
        assert!(matches!(Source::open(&plain, 1 << 20).unwrap().inflate_whole::<f32>().unwrap(), Whole::Stream(_)));
        // a header CRC flag: streamed (and refused there, the CRC being absent)
        let mut bytes = std::fs::read(&gz).unwrap();
        bytes[3] |= 0x02;
        let flagged = dir.path().join("flagged.nii.gz");
        std::fs::write(&flagged, bytes).unwrap();
        if let Ok(src) = Source::open(&flagged, 1 << 20) {
            assert!(matches!(src.inflate_whole::<f32>().unwrap(), Whole::Stream(_)));
        }
    }
}
