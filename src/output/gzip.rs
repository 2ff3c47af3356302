//! gzip compression on every core, into a single standard gzip member (as pigz does): the data is
//! cut into 1 MiB pieces, each compressed independently to raw deflate blocks ending in a sync
//! flush, which concatenate into one valid deflate stream; an empty final block closes it, and the
//! CRC-32 of the whole is combined from the pieces'. Any gzip reader (zlib, Python, nibabel, the
//! `nifti` crate) reads the result; the cost is a slightly larger file, since pieces do not share
//! their dictionaries.

use std::io::{self, Write};

use flate2::{Compress, Compression, FlushCompress};
use rayon::prelude::*;

/// Bytes compressed as one independent piece.
const PIECE: usize = 1 << 20;

/// A gzip writer that compresses in parallel. Buffers `pieces_in_flight` pieces, compresses them
/// together, writes them in order.
pub struct ParallelGz<W: Write> {
    inner: W,
    level: Compression,
    buffer: Vec<u8>,
    crc: crc32fast::Hasher,
    total: u64,
    started: bool,
}

fn deflate_piece(level: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(level, false);
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 64);
    loop {
        let consumed = c.total_in() as usize;
        c.compress_vec(&data[consumed..], &mut out, FlushCompress::Sync).map_err(io::Error::other)?;
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        out.reserve(out.capacity().max(64 * 1024));
    }
}

impl<W: Write> ParallelGz<W> {
    pub fn new(inner: W, level: Compression) -> Self {
        ParallelGz { inner, level, buffer: Vec::new(), crc: crc32fast::Hasher::new(), total: 0, started: false }
    }

    fn pieces_in_flight() -> usize {
        2 * rayon::current_num_threads().max(1)
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.started {
            self.inner.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
            self.started = true;
        }
        Ok(())
    }

    /// Compresses and writes the buffered whole pieces (all of the buffer when `all`), so that the
    /// pieces — and the bytes of the file — do not depend on how the data was handed in or on the
    /// number of threads.
    fn flush_buffer(&mut self, all: bool) -> io::Result<()> {
        self.header()?;
        let take = if all { self.buffer.len() } else { self.buffer.len() / PIECE * PIECE };
        if take == 0 {
            return Ok(());
        }
        let level = self.level;
        let results: Vec<(io::Result<Vec<u8>>, crc32fast::Hasher)> = self.buffer[..take]
            .par_chunks(PIECE)
            .map(|piece| {
                let mut h = crc32fast::Hasher::new();
                h.update(piece);
                (deflate_piece(level, piece), h)
            })
            .collect();
        for (compressed, crc) in results {
            self.inner.write_all(&compressed?)?;
            self.crc.combine(&crc);
        }
        self.total += take as u64;
        self.buffer.drain(..take);
        Ok(())
    }

    /// Writes the end of the stream and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_buffer(true)?;
        let mut last = Vec::with_capacity(16);
        Compress::new(self.level, false)
            .compress_vec(&[], &mut last, FlushCompress::Finish)
            .map_err(io::Error::other)?;
        self.inner.write_all(&last)?;
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&(self.total as u32).to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        if self.buffer.len() >= PIECE * Self::pieces_in_flight() {
            self.flush_buffer(false)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn output_is_one_gzip_member_that_decodes_to_the_input() {
        let data: Vec<u8> = (0..5_300_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 % 7).collect();
        for level in [0, 1, 6] {
            let mut gz = ParallelGz::new(Vec::new(), Compression::new(level));
            for part in data.chunks(777_777) {
                gz.write_all(part).unwrap();
            }
            let bytes = gz.finish().unwrap();
            // a single-member decoder must see all of it (and check the CRC and size)
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "level {level}");
        }
    }

    #[test]
    fn bytes_do_not_depend_on_the_thread_count_or_the_write_sizes() {
        let data: Vec<u8> = (0..3_500_000u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
        let run = |threads: usize, part: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut gz = ParallelGz::new(Vec::new(), Compression::fast());
                for p in data.chunks(part) {
                    gz.write_all(p).unwrap();
                }
                gz.finish().unwrap()
            })
        };
        assert_eq!(run(1, 1000), run(3, 777_777));
    }

    #[test]
    fn empty_input_gives_a_valid_empty_stream() {
        let bytes = ParallelGz::new(Vec::new(), Compression::fast()).finish().unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut back).unwrap();
        assert!(back.is_empty());
    }
}
