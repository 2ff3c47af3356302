//! Opening a NIfTI-1 file and streaming its voxel data.
//!
//! The header is parsed and validated (and the value count checked against the limit) before a
//! single byte of voxel data is read or any buffer is sized from it. Voxel data is then streamed in
//! fixed-size byte chunks through the caller's decoder, so a volume exists in memory exactly once,
//! in its final type. `.nii.gz` is recognised by its gzip magic bytes, whatever the file name; all
//! gzip members are read and the stream is read to its end so that the CRC is always checked.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use super::header::{Header, HeaderProblem, HEADER_LEN};
use super::nifti2::{parse_v2, HEADER2_LEN};
use crate::error::{Error, Input, Result};

/// Bytes handed to the decoder at a time (a multiple of every datatype size).
pub const CHUNK_BYTES: usize = 1 << 20;

/// Decompressed bytes accepted after the voxel data (extensions of other tools, padding).
const MAX_TRAILING: u64 = 64 << 20;

/// A vector for `total` values of a source: allocated at once when the file's size proves it
/// holds them (uncompressed), else grown as decoded data arrives (see [`grow_for`]), so that a
/// small compressed file whose header claims a huge volume costs no more memory than it holds.
pub fn vec_for<T>(total: usize, gzip: bool) -> Vec<T> {
    Vec::with_capacity(if gzip { total.min(1 << 20) } else { total })
}

/// Makes room for `incoming` more values in `v` (of `total`), at least doubling the capacity up to
/// `total`. Large blocks are grown in place by the system allocator (mremap), without copies.
pub fn grow_for<T>(v: &mut Vec<T>, incoming: usize, total: usize) {
    if v.capacity() - v.len() < incoming {
        let want = (v.len() + incoming).max(v.capacity() * 2).min(total.max(v.len() + incoming));
        v.reserve_exact(want - v.len());
    }
}

/// An opened volume: header validated, reader positioned at the first voxel.
pub struct Source {
    pub path: PathBuf,
    pub header: Header,
    pub gzip: bool,
    reader: Box<dyn Read + Send>,
}

fn open_error(path: &Path, source: io::Error) -> Error {
    Error::Open { path: path.to_path_buf(), source }
}

/// Maps an I/O error met inside the data (or header) stream to the error a user should see.
fn stream_error(path: &Path, gzip: bool, e: io::Error, expected: u64, found: u64) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Truncated { path: path.to_path_buf(), expected, found },
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData if gzip => {
            Error::CorruptGzip { path: path.to_path_buf(), detail: e.to_string() }
        }
        _ => open_error(path, e),
    }
}

/// Reads until `buf` is full or the stream ends (a gzip stream cut short counts as an end);
/// returns the number of bytes read.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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
        let file_len = meta.len();
        let mut buffered = BufReader::with_capacity(1 << 20, file);
        let magic = {
            use std::io::BufRead;
            let head = buffered.fill_buf().map_err(|e| open_error(path, e))?;
            [head.first().copied(), head.get(1).copied()]
        };
        let gzip = magic == [Some(0x1f), Some(0x8b)];
        let mut reader: Box<dyn Read + Send> =
            if gzip { Box::new(MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
        let mut raw = [0u8; HEADER_LEN];
        let got = read_full(reader.as_mut(), &mut raw).map_err(|e| {
            if gzip {
                Error::CorruptGzip { path: path.to_path_buf(), detail: e.to_string() }
            } else {
                open_error(path, e)
            }
        })?;
        if got < HEADER_LEN {
            let reason = if got == 0 {
                "the file is empty".to_string()
            } else {
                format!("it holds {got} bytes, less than the 348 of a NIfTI-1 header")
            };
            return Err(Error::NotNifti { path: path.to_path_buf(), reason });
        }
        let problem = |p| match p {
            HeaderProblem::NotNifti(reason) => Error::NotNifti { path: path.to_path_buf(), reason },
            HeaderProblem::Invalid(problem) => Error::BadHeader { path: path.to_path_buf(), problem: problem.into() },
        };
        let size_field = [
            i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
            i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
        ];
        let (header, header_len) = if size_field.contains(&(HEADER2_LEN as i32)) {
            let mut raw2 = [0u8; HEADER2_LEN];
            raw2[..HEADER_LEN].copy_from_slice(&raw);
            let more =
                read_full(reader.as_mut(), &mut raw2[HEADER_LEN..]).map_err(|e| stream_error(path, gzip, e, 0, 0))?;
            if more < HEADER2_LEN - HEADER_LEN {
                let reason = format!("it holds {} bytes, less than the 540 of a NIfTI-2 header", HEADER_LEN + more);
                return Err(Error::NotNifti { path: path.to_path_buf(), reason });
            }
            (parse_v2(&raw2).map_err(problem)?, HEADER2_LEN)
        } else {
            (Header::parse(&raw).map_err(problem)?, HEADER_LEN)
        };
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
        let skip = header.vox_offset - header_len as u64;
        let skipped = io::copy(&mut reader.as_mut().take(skip), &mut io::sink())
            .map_err(|e| stream_error(path, gzip, e, expected as u64, 0))?;
        if skipped < skip {
            return Err(Error::Truncated { path: path.to_path_buf(), expected: expected as u64, found: 0 });
        }
        Ok(Source { path: path.to_path_buf(), header, gzip, reader })
    }

    /// Streams the voxel data: calls `f(first_value_index, bytes)` for consecutive chunks whose
    /// length is a multiple of the datatype size. Fails with [`Error::Truncated`] when the data ends
    /// early, and (for gzip) reads on to the end of the stream so that a bad CRC is reported.
    pub fn for_each_chunk(mut self, mut f: impl FnMut(usize, &[u8]) -> Result<()>) -> Result<()> {
        let elem = self.header.datatype.size();
        let total = self.header.data_bytes() as u64;
        let mut buf = vec![0u8; CHUNK_BYTES.min(total as usize).max(elem)];
        let mut done: u64 = 0;
        while done < total {
            let want = (total - done).min(buf.len() as u64) as usize;
            let got = read_full(self.reader.as_mut(), &mut buf[..want])
                .map_err(|e| stream_error(&self.path, self.gzip, e, total, done))?;
            if got < want {
                return Err(Error::Truncated { path: self.path.clone(), expected: total, found: done + got as u64 });
            }
            f((done / elem as u64) as usize, &buf[..want])?;
            done += want as u64;
        }
        if self.gzip {
            // Drain the rest of the stream: the gzip trailer (and its CRC) is only checked at the end.
            // A stream that goes on far beyond the data is refused rather than inflated to its end.
            // (all the voxel data has arrived: what fails now is the stream after it)
            let extra = io::copy(&mut (&mut self.reader).take(MAX_TRAILING + 1), &mut io::sink()).map_err(|e| {
                Error::CorruptGzip { path: self.path.clone(), detail: format!("after the voxel data: {e}") }
            })?;
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
