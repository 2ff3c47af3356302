//! nnU-Net v2 probability files: `.npz` archives holding `probabilities`, a float array of shape
//! (C, z, y, x) in C order — which is exactly the channel-major, x-fastest layout of a NIfTI
//! `(X,Y,Z,C)` volume, so the values are streamed straight into place. The geometry comes from the
//! matching label NIfTI (nnU-Net writes none into the `.npz`).
//!
//! The `.npy` format: magic `\x93NUMPY`, version, a header length (u16 for version 1, u32 for 2
//! and 3), a Python-literal dict with `descr` (`<f4`, `<f2`, `<f8`, big-endian `>`...),
//! `fortran_order` and `shape`, then the raw data.
//!
//! A deflated float32 little-endian entry (what `np.savez_compressed` writes) is decoded whole by
//! libdeflate, into one buffer, `.npy` header and data, when it decodes to exactly the size the
//! archive and the header state and matches its CRC-32; any other entry, or one that does not, is
//! streamed as below, so that what is wrong with it is said the same way.
//!
//! The entry is read to its end, so that the zip reader checks its CRC-32 (as numpy does): a
//! damaged archive is refused, and so is an entry holding more bytes than its shape describes.
//! Float64 values are converted to float32; a finite one beyond float32's range is named with its
//! value rather than as the infinity it would become. Messages speak of the archive and its array.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::case::scan::ValueScan;
use crate::case::{Buffer, Shape3};
use crate::error::{Error, Input, Result};
use crate::libdeflate::{Inflater, MAX_RATIO};
use crate::memory::{bytes_of, decode_whole, keep_spare, read_whole};

/// The array in the archive that holds the probabilities.
pub const KEY: &str = "probabilities";

/// What to do about a damaged archive.
const EXPORT_AGAIN: &str = "export the probabilities again (nnU-Net: --save_probabilities)";

/// An error about the archive at `path`; `problem` speaks of the archive and its `.npy` array
/// (never of NIfTI) and says what to do.
fn bad(path: &Path, problem: impl Into<String>) -> Error {
    Error::BadHeader { path: path.to_path_buf(), problem: problem.into().into() }
}

/// The parsed `.npy` header.
#[derive(Debug, PartialEq)]
struct NpyHeader {
    /// Bytes per value: 2, 4 or 8 (floats).
    size: usize,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
}

fn parse_header(path: &Path, text: &str) -> Result<NpyHeader> {
    let field = |key: &str| -> Result<&str> {
        let at = text.find(&format!("'{key}'")).ok_or_else(|| {
            bad(
                path,
                format!("the .npy header of '{KEY}' has no '{key}' field; the archive is damaged, {EXPORT_AGAIN}"),
            )
        })?;
        let rest = &text[at + key.len() + 2..];
        Ok(rest.trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr")?;
    let descr = descr.trim_start_matches(['\'', '"']);
    // by characters, not bytes: the header text may hold anything
    let mut chars = descr.chars();
    let order = chars.next().unwrap_or('?');
    let kind: String = chars.take(2).collect();
    let size = match kind.as_str() {
        "f2" => 2,
        "f4" => 4,
        "f8" => 8,
        _ => {
            // the dtype as numpy writes it: the text up to its closing quote (at most a few characters)
            let dtype: String = descr.chars().take_while(|c| !matches!(c, '\'' | '"' | ',')).take(8).collect();
            return Err(bad(
                path,
                format!(
                    "'{KEY}' has dtype '{dtype}'; only float16/32/64 probabilities are supported, save them as \
                     floats"
                ),
            ));
        }
    };
    let fortran_order = field("fortran_order")?.starts_with("True");
    let shape_text = field("shape")?;
    let inner = shape_text.trim_start_matches('(').split(')').next().unwrap_or("");
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>().map_err(|_| {
                let problem = format!(
                    "the .npy header of '{KEY}' gives shape '{inner}', not a list of sizes; the archive is damaged, \
                     {EXPORT_AGAIN}"
                );
                bad(path, problem)
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(NpyHeader { size, big_endian: order == '>', fortran_order, shape })
}

/// IEEE half precision to f32.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((bits >> 10) & 0x1f) as i32;
    let frac = (bits & 0x3ff) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

fn decode(h: &NpyHeader, bytes: &[u8], out: &mut Vec<f32>) {
    match (h.size, h.big_endian) {
        (2, big) => out.extend(bytes.chunks_exact(2).map(|c| {
            let b = [c[0], c[1]];
            f16_to_f32(if big { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
        })),
        (4, false) => out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()))),
        (4, true) => out.extend(bytes.chunks_exact(4).map(|c| f32::from_be_bytes(c.try_into().unwrap()))),
        (_, false) => out.extend(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)),
        (_, true) => out.extend(bytes.chunks_exact(8).map(|c| f64::from_be_bytes(c.try_into().unwrap()) as f32)),
    }
}

/// An opened `.npz`: the `probabilities` array located and its header parsed.
pub struct NpzSource {
    path: std::path::PathBuf,
    archive: zip::ZipArchive<BufReader<File>>,
    header: NpyHeader,
    /// Bytes of the entry before the data (magic, version, length, header text).
    data_offset: usize,
}

impl NpzSource {
    /// Opens `path` and parses the header of its `probabilities` array.
    pub fn open(path: &Path) -> Result<NpzSource> {
        let meta = std::fs::metadata(path).map_err(|e| Error::Open { path: path.to_path_buf(), source: e })?;
        if !meta.is_file() {
            let kind = if meta.is_dir() { "a directory" } else { "a FIFO, socket or device" };
            return Err(bad(
                path,
                format!("not a regular file ({kind}); give the path of nnU-Net's .npz probabilities"),
            ));
        }
        let file = File::open(path).map_err(|e| Error::Open { path: path.to_path_buf(), source: e })?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
            bad(
                path,
                format!(
                    "not a readable .npz archive ({e}): the file is incomplete (cut short while copied or written) or \
                     not a zip archive; export or copy it again, or give a .nii / .nii.gz prediction"
                ),
            )
        })?;
        let (header, data_offset) = {
            let mut entry = archive.by_name(&format!("{KEY}.npy")).map_err(|e| match e {
                zip::result::ZipError::FileNotFound => bad(
                    path,
                    format!("the archive holds no '{KEY}' array (nnU-Net writes it with --save_probabilities)"),
                ),
                other => bad(path, format!("cannot read the archive's '{KEY}' array ({other}); {EXPORT_AGAIN}")),
            })?;
            let mut magic = [0u8; 8];
            let not_npy = || bad(path, format!("'{KEY}' in the archive is not a .npy array; {EXPORT_AGAIN}"));
            entry.read_exact(&mut magic).map_err(|_| not_npy())?;
            if &magic[..6] != b"\x93NUMPY" {
                return Err(not_npy());
            }
            let cut = || {
                bad(path, format!("the .npy header of '{KEY}' is cut short; the archive is damaged, {EXPORT_AGAIN}"))
            };
            let len_bytes = if magic[6] == 1 { 2 } else { 4 };
            let mut b = [0u8; 4];
            entry.read_exact(&mut b[..len_bytes]).map_err(|_| cut())?;
            let header_len = u32::from_le_bytes(b) as usize;
            if header_len > 1 << 16 {
                return Err(bad(
                    path,
                    format!(
                        "the .npy header of '{KEY}' claims {header_len} bytes, more than numpy writes; the archive is \
                         damaged, {EXPORT_AGAIN}"
                    ),
                ));
            }
            let mut text = vec![0u8; header_len];
            entry.read_exact(&mut text).map_err(|_| cut())?;
            (parse_header(path, &String::from_utf8_lossy(&text))?, 8 + len_bytes + header_len)
        };
        Ok(NpzSource { path: path.to_path_buf(), archive, header, data_offset })
    }

    /// `(channels, [X, Y, Z])` from the array's shape (C, z, y, x).
    pub fn layout(&self) -> Result<(usize, [usize; 3])> {
        match self.header.shape.as_slice() {
            [c, z, y, x] if [c, z, y, x].contains(&&0) => Err(bad(
                &self.path,
                format!(
                    "'{KEY}' has shape {:?}, with an empty axis; it holds no values, {EXPORT_AGAIN}",
                    self.header.shape
                ),
            )),
            [c, z, y, x] => Ok((*c, [*x, *y, *z])),
            other => Err(bad(
                &self.path,
                format!(
                    "'{KEY}' has shape {other:?}; expected (C, z, y, x), one channel per class (nnU-Net's probabilities \
                     of a 3D case)"
                ),
            )),
        }
    }

    /// Refuses an array that is not on the grid of shape `shape` (the labels', named `labels`).
    pub fn check_grid(&self, shape: Shape3, labels: &Input) -> Result<()> {
        let (_, grid) = self.layout()?;
        if grid == shape {
            return Ok(());
        }
        Err(Error::ShapeMismatch {
            labels: labels.clone(),
            pred: Input::File(self.path.clone()),
            labels_shape: format!("{shape:?}"),
            pred_shape: format!("{grid:?} (from (C, z, y, x) = {:?})", self.header.shape),
        })
    }

    /// The datatype of the values, as the report names it.
    pub fn datatype(&self) -> &'static str {
        match self.header.size {
            2 => "float16 (npz)",
            4 => "float32 (npz)",
            _ => "float64 (npz)",
        }
    }

    /// The array's shape as stored, (C, z, y, x).
    pub fn shape(&self) -> &[usize] {
        &self.header.shape
    }

    /// Reads the values for a case on the grid of shape `shape` (the labels', named `labels`),
    /// measured as they arrive. Refuses arrays of more than `max_values` values before reading
    /// them, and reads the entry to its end, so that the archive's CRC-32 of it is checked and an
    /// entry longer than its shape says is refused.
    pub fn read(mut self, shape: Shape3, labels: &Input, max_values: u64) -> Result<(Buffer<'static, f32>, ValueScan)> {
        let path = self.path.clone();
        self.check_grid(shape, labels)?;
        let h = &self.header;
        if h.fortran_order && h.shape.iter().filter(|&&d| d > 1).count() > 1 {
            return Err(bad(
                &path,
                "Fortran-ordered probabilities are not supported; save them in C order (numpy default)",
            ));
        }
        // counted in u128: a header may claim any sizes
        let values = h.shape.iter().fold(1u128, |p, &d| p.saturating_mul(d as u128));
        if values > max_values as u128 {
            return Err(Error::TooLarge { path, values, dims: format!("{:?}", h.shape), limit: max_values });
        }
        if let Some(whole) = self.inflate_whole(values as usize)? {
            return Ok(whole);
        }
        let mut entry = self.archive.by_name(&format!("{KEY}.npy")).map_err(|e| {
            bad(&path, format!("cannot read '{KEY}' from the archive ({e}); the archive is damaged, {EXPORT_AGAIN}"))
        })?;
        std::io::copy(&mut (&mut entry).take(self.data_offset as u64), &mut std::io::sink())
            .map_err(|e| read_error(&path, e))?;
        let (read, scan) = stream_values(&mut entry, &self.header, values as usize).map_err(|e| e.into_error(&path))?;
        // the end of the entry, where the zip reader checks the CRC-32
        match read_up_to(&mut entry, &mut [0u8; 1]) {
            Ok(0) => Ok((read.into(), scan)),
            Ok(_) => Err(bad(
                &path,
                format!(
                    "'{KEY}' holds more than the {} bytes of data its .npy header describes (shape {:?}); the \
                     archive is damaged or its header is wrong, {EXPORT_AGAIN}",
                    values as u64 * self.header.size as u64,
                    self.header.shape
                ),
            )),
            Err(e) => Err(read_error(&path, e)),
        }
    }
}

impl NpzSource {
    /// The `values` float32 values of a deflated little-endian entry, decoded whole (with its
    /// `.npy` header before them) and measured, when the entry decodes to exactly the size the
    /// archive states — its `.npy` header and `values` values — and matches its CRC-32; `None` for
    /// any other entry, to be streamed.
    fn inflate_whole(&mut self, values: usize) -> Result<Option<(Buffer<'static, f32>, ValueScan)>> {
        let h = &self.header;
        let bytes = self.data_offset + 4 * values;
        let (start, compressed_len, crc) = {
            let Ok(entry) = self.archive.by_name(&format!("{KEY}.npy")) else { return Ok(None) };
            let plain = h.size == 4 && !h.big_endian && cfg!(target_endian = "little");
            if !plain || !self.data_offset.is_multiple_of(4) || entry.compression() != zip::CompressionMethod::Deflated
            {
                return Ok(None);
            }
            if entry.size() != bytes as u64 || entry.compressed_size().saturating_mul(MAX_RATIO) < bytes as u64 {
                return Ok(None);
            }
            (entry.data_start(), entry.compressed_size(), entry.crc32())
        };
        let path = &self.path;
        let mut file = File::open(path).map_err(|e| Error::Open { path: path.clone(), source: e })?;
        let file_len = file.metadata().map_err(|e| Error::Open { path: path.clone(), source: e })?.len();
        if start.checked_add(compressed_len).is_none_or(|end| end > file_len) {
            // the archive's directory claims more than the file holds: streamed, and refused there
            return Ok(None);
        }
        let compressed =
            read_whole(&mut file, start, compressed_len).map_err(|e| Error::Open { path: path.clone(), source: e })?;
        let decoded = decode_whole::<f32>(&compressed, bytes, |input, room| {
            Inflater::new().raw(input, room).map(|(_, written)| written) == Ok(bytes)
        });
        keep_spare(compressed);
        let Some(buf) = decoded else { return Ok(None) };
        if crate::parallel::crc32(bytes_of(&buf)) != crc {
            return Ok(None);
        }
        let values = Buffer::after(buf, self.data_offset / 4);
        let scan = ValueScan::of(&values);
        Ok(Some((values, scan)))
    }
}

/// Why the data of the entry could not be read.
enum DataError {
    /// It ends after `found` of the `expected` bytes.
    Short {
        expected: u64,
        found: u64,
    },
    Read(std::io::Error),
}

impl DataError {
    fn into_error(self, path: &Path) -> Error {
        match self {
            DataError::Short { expected, found } => bad(
                path,
                format!(
                    "truncated: the '{KEY}' array's .npy header describes {expected} bytes of data but only {found} \
                     could be read from the archive; the archive is incomplete, {EXPORT_AGAIN}"
                ),
            ),
            DataError::Read(e) => read_error(path, e),
        }
    }
}

/// Decodes the `total` values of the entry's data (the reader at its first byte), measured as they
/// arrive; float64 values beyond float32's range are noted with their value.
fn stream_values(entry: &mut impl Read, h: &NpyHeader, total: usize) -> Result<(Vec<f32>, ValueScan), DataError> {
    let expected = total as u64 * h.size as u64;
    let mut data = crate::memory::take_spare_or(total, total);
    let mut scan = ValueScan::default();
    let mut buf = vec![0u8; (1 << 20) / h.size * h.size];
    let mut done = 0u64;
    while done < expected {
        let want = (expected - done).min(buf.len() as u64) as usize;
        let got = read_up_to(entry, &mut buf[..want]).map_err(DataError::Read)?;
        if got < want {
            return Err(DataError::Short { expected, found: done + got as u64 });
        }
        let start = data.len();
        decode(h, &buf[..want], &mut data);
        let infinities = scan.non_finite.count;
        scan.add(start, &data[start..]);
        if scan.non_finite.count > infinities {
            note_beyond_f32(h, &buf[..want], start, &mut scan);
        }
        done += want as u64;
    }
    Ok((data, scan))
}

/// Reads until `buf` is full or the entry ends; returns the number of bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The error for a failed read of the archive's entry: a CRC-32 mismatch (the zip reader's
/// "Invalid checksum", met at the end of the entry) or damaged compressed data.
fn read_error(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::InvalidData && e.to_string().to_lowercase().contains("checksum") {
        return bad(
            path,
            format!(
                "the archive is damaged: the data of '{KEY}' do not match the CRC-32 checksum stored with them; \
                 {EXPORT_AGAIN}"
            ),
        );
    }
    bad(path, format!("cannot read the archive's data ({e}); the archive is damaged, {EXPORT_AGAIN}"))
}

/// Notes the float64 values of `bytes` (the values from flat index `first`) that are finite but
/// beyond float32's range, so became ±∞ (other sizes cannot be).
fn note_beyond_f32(h: &NpyHeader, bytes: &[u8], first: usize, scan: &mut ValueScan) {
    if h.size != 8 {
        return;
    }
    for (j, c) in bytes.chunks_exact(8).enumerate() {
        let b: [u8; 8] = c.try_into().unwrap_or_default();
        let v = if h.big_endian { f64::from_be_bytes(b) } else { f64::from_le_bytes(b) };
        if v.is_finite() && (v as f32).is_infinite() {
            scan.add_beyond_f32(first + j, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numpy_headers() {
        let h =
            parse_header(Path::new("x"), "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5, 6, 7), }").unwrap();
        assert_eq!(h, NpyHeader { size: 4, big_endian: false, fortran_order: false, shape: vec![3, 5, 6, 7] });
        let h = parse_header(Path::new("x"), "{'descr': '>f2', 'fortran_order': True, 'shape': (2,), }").unwrap();
        assert_eq!((h.size, h.big_endian, h.fortran_order, h.shape), (2, true, true, vec![2]));
        assert!(parse_header(Path::new("x"), "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }").is_err());
        // found by fuzzing: a multi-byte character where the dtype should be
        assert!(parse_header(Path::new("x"), "{'descr': '\u{fffd}NUMPY', 'fortran_order': False, 'shape': (2,), }")
            .is_err());
        assert!(parse_header(Path::new("x"), "{'descr': '<\u{fffd}', 'shape': (2,), }").is_err());
    }

    #[test]
    fn a_shape_whose_product_overflows_is_too_large_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.npz");
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4294967296, 4294967296, 4), }";
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        npy.extend_from_slice(dict.as_bytes());
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        zip.start_file("probabilities.npy", zip::write::SimpleFileOptions::default()).unwrap();
        std::io::Write::write_all(&mut zip, &npy).unwrap();
        zip.finish().unwrap();
        let src = NpzSource::open(&path).unwrap();
        let (_, grid) = src.layout().unwrap();
        let e = src.read(grid, &Input::array("labels"), 1 << 30).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    }

    #[test]
    fn converts_half_precision() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0x3800), 0.5);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
    }
}
