//! nnU-Net v2 probability files: `.npz` archives holding `probabilities`, a float array of shape
//! (C, z, y, x) in C order — which is exactly the channel-major, x-fastest layout of a NIfTI
//! `(X,Y,Z,C)` volume, so the values are streamed straight into place. The geometry comes from the
//! matching label NIfTI (nnU-Net writes none into the `.npz`).
//!
//! The `.npy` format: magic `\x93NUMPY`, version, a header length (u16 for version 1, u32 for 2
//! and 3), a Python-literal dict with `descr` (`<f4`, `<f2`, `<f8`, big-endian `>`...),
//! `fortran_order` and `shape`, then the raw data.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::case::scan::ValueScan;
use crate::case::Shape3;
use crate::error::{Error, Input, Result};

/// The array in the archive that holds the probabilities.
pub const KEY: &str = "probabilities";

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
        let at = text.find(&format!("'{key}'")).ok_or_else(|| bad(path, format!("npy header has no '{key}'")))?;
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
                format!("'{KEY}' has dtype '{dtype}'; only float16/32/64 probabilities are supported"),
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
        .map(|s| s.parse::<usize>().map_err(|_| bad(path, format!("npy shape '{inner}' is not a list of sizes"))))
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
        let file = File::open(path).map_err(|e| Error::Open { path: path.to_path_buf(), source: e })?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
            bad(
                path,
                format!(
                    "not a readable .npz archive ({e}); give nnU-Net's probabilities (.npz) or a .nii / .nii.gz \
                     prediction"
                ),
            )
        })?;
        let (header, data_offset) = {
            let mut entry = archive.by_name(&format!("{KEY}.npy")).map_err(|_| {
                bad(path, format!("the archive holds no '{KEY}' array (nnU-Net writes it with --save_probabilities)"))
            })?;
            let mut magic = [0u8; 8];
            entry.read_exact(&mut magic).map_err(|_| bad(path, format!("'{KEY}' is not a .npy array")))?;
            if &magic[..6] != b"\x93NUMPY" {
                return Err(bad(path, format!("'{KEY}' is not a .npy array")));
            }
            let len_bytes = if magic[6] == 1 { 2 } else { 4 };
            let mut b = [0u8; 4];
            entry.read_exact(&mut b[..len_bytes]).map_err(|_| bad(path, "truncated .npy header"))?;
            let header_len = u32::from_le_bytes(b) as usize;
            if header_len > 1 << 16 {
                return Err(bad(path, "implausible .npy header length"));
            }
            let mut text = vec![0u8; header_len];
            entry.read_exact(&mut text).map_err(|_| bad(path, "truncated .npy header"))?;
            (parse_header(path, &String::from_utf8_lossy(&text))?, 8 + len_bytes + header_len)
        };
        Ok(NpzSource { path: path.to_path_buf(), archive, header, data_offset })
    }

    /// `(channels, [X, Y, Z])` from the array's shape (C, z, y, x).
    pub fn layout(&self) -> Result<(usize, [usize; 3])> {
        match self.header.shape.as_slice() {
            [c, z, y, x] if [c, z, y, x].contains(&&0) => Err(bad(
                &self.path,
                format!("'{KEY}' has shape {:?}, with an empty axis; it holds no values", self.header.shape),
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
    /// them.
    pub fn read(mut self, shape: Shape3, labels: &Input, max_values: u64) -> Result<(Vec<f32>, ValueScan)> {
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
        let total = values as u64;
        let size = h.size;
        let mut entry = self.archive.by_name(&format!("{KEY}.npy")).map_err(|e| bad(&path, e.to_string()))?;
        std::io::copy(&mut (&mut entry).take(self.data_offset as u64), &mut std::io::sink())
            .map_err(|e| bad(&path, e.to_string()))?;
        let mut data = Vec::with_capacity(total as usize);
        let mut scan = ValueScan::default();
        let mut buf = vec![0u8; (1 << 20) / size * size];
        let mut left = total as usize * size;
        while left > 0 {
            let want = left.min(buf.len());
            let mut got = 0;
            while got < want {
                let found = (total as usize * size - left + got) as u64;
                match entry.read(&mut buf[got..want]) {
                    Ok(0) => return Err(Error::Truncated { path, expected: total * size as u64, found }),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Err(Error::Truncated { path, expected: total * size as u64, found })
                    }
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(bad(
                            &path,
                            format!("cannot read the archive's data ({e}); the file is damaged, export it again"),
                        ))
                    }
                }
            }
            let start = data.len();
            decode(&self.header, &buf[..want], &mut data);
            scan.add(start, &data[start..]);
            left -= want;
        }
        Ok((data, scan))
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
        let e = src.read(grid, &Input::Array("labels"), 1 << 30).unwrap_err();
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
