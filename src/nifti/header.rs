//! NIfTI-1 header: parsing with validation, the voxel-to-world affine, and the header of outputs.
//!
//! The 348-byte layout is fixed by the standard (nifti1.h). Parsing keeps the raw bytes so that an
//! output can copy the input's geometry exactly and change only the data fields (datatype, bitpix,
//! scaling, vox_offset, dims of the output).

/// The header of an input, kept byte for byte so that outputs can carry the same geometry
/// (affine, sform/qform codes, voxel size, units, description) with only the data fields changed.
#[derive(Clone, Debug)]
pub struct HeaderTemplate {
    /// The 348 header bytes as read from the file.
    pub bytes: Box<[u8; 348]>,
    /// Byte order of the header and the data.
    pub big_endian: bool,
    /// The 540-byte header of a NIfTI-2 input (turned little-endian, like `bytes` then), kept so that
    /// outputs NIfTI-1 cannot hold are written with its own double-precision geometry; `bytes`
    /// then holds the same geometry as NIfTI-1 (see `super::template`).
    pub nifti2: Option<Box<[u8; 540]>>,
}

/// Size of a NIfTI-1 header.
pub const HEADER_LEN: usize = 348;
/// Data offset of a single-file NIfTI-1 volume written by this tool (header + 4-byte extender).
pub const DATA_OFFSET: usize = 352;

/// NIfTI datatypes that can hold labels or probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataType {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

impl DataType {
    /// The datatype for a NIfTI `datatype` code, or `Err(name)` for codes that cannot hold
    /// scalar numbers (complex, RGB, float128, unknown).
    pub fn from_code(code: i16) -> Result<Self, String> {
        Ok(match code {
            2 => Self::U8,
            256 => Self::I8,
            4 => Self::I16,
            512 => Self::U16,
            8 => Self::I32,
            768 => Self::U32,
            1024 => Self::I64,
            1280 => Self::U64,
            16 => Self::F32,
            64 => Self::F64,
            1 => return Err("binary (1 bit)".into()),
            32 => return Err("complex64".into()),
            128 => return Err("rgb24".into()),
            1536 => return Err("float128".into()),
            1792 => return Err("complex128".into()),
            2048 => return Err("complex256".into()),
            2304 => return Err("rgba32".into()),
            other => return Err(format!("unknown code {other}")),
        })
    }

    /// The NIfTI `datatype` code.
    pub fn code(self) -> i16 {
        match self {
            Self::U8 => 2,
            Self::I8 => 256,
            Self::I16 => 4,
            Self::U16 => 512,
            Self::I32 => 8,
            Self::U32 => 768,
            Self::I64 => 1024,
            Self::U64 => 1280,
            Self::F32 => 16,
            Self::F64 => 64,
        }
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::I64 | Self::U64 | Self::F64 => 8,
        }
    }

    /// Lower-case name as numpy / nibabel print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::U16 => "uint16",
            Self::I32 => "int32",
            Self::U32 => "uint32",
            Self::I64 => "int64",
            Self::U64 => "uint64",
            Self::F32 => "float32",
            Self::F64 => "float64",
        }
    }

    /// Whether the type is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }
}

/// A parsed and validated NIfTI-1 single-file header.
#[derive(Clone, Debug)]
pub struct Header {
    /// `dim[1..=dim[0]]`.
    pub dims: Vec<usize>,
    pub datatype: DataType,
    /// `pixdim[0..8]` as stored (`pixdim[0]` is qfac).
    pub pixdim: [f32; 8],
    /// Byte offset of the voxel data.
    pub vox_offset: u64,
    /// Byte order of the header and the data.
    pub big_endian: bool,
    /// `(slope, inter)` to apply, `None` when the file asks for no scaling (slope 0 or NaN, or 1/0).
    pub scaling: Option<(f64, f64)>,
    pub xyzt_units: u8,
    pub qform_code: i16,
    pub sform_code: i16,
    pub quatern: [f32; 3],
    pub qoffset: [f32; 3],
    pub srow: [[f32; 4]; 3],
    /// The raw bytes, kept for writing outputs in the same space.
    pub template: HeaderTemplate,
}

/// Reads numbers from the raw header in its byte order.
struct Fields<'a> {
    b: &'a [u8; HEADER_LEN],
    big: bool,
}

impl Fields<'_> {
    fn i16(&self, off: usize) -> i16 {
        let v = [self.b[off], self.b[off + 1]];
        if self.big {
            i16::from_be_bytes(v)
        } else {
            i16::from_le_bytes(v)
        }
    }
    fn f32(&self, off: usize) -> f32 {
        let v = [self.b[off], self.b[off + 1], self.b[off + 2], self.b[off + 3]];
        if self.big {
            f32::from_be_bytes(v)
        } else {
            f32::from_le_bytes(v)
        }
    }
}

/// Why a header was rejected: not NIfTI at all, or NIfTI with a problem.
#[derive(Debug)]
pub enum HeaderProblem {
    NotNifti(String),
    Invalid(String),
}

/// The fields of a NIfTI-1 or NIfTI-2 header, read in their byte order and widened to common
/// types, before validation.
pub(super) struct Raw {
    /// 348 (NIfTI-1) or 540 (NIfTI-2).
    pub header_len: usize,
    pub big_endian: bool,
    pub ndim: i64,
    /// dim[1..=7].
    pub dim: [i64; 7],
    pub datatype: i16,
    pub bitpix: i16,
    pub pixdim: [f64; 8],
    pub vox_offset: f64,
    pub slope: f64,
    pub inter: f64,
    pub xyzt_units: u8,
    pub qform_code: i16,
    pub sform_code: i16,
    pub quatern: [f64; 3],
    pub qoffset: [f64; 3],
    pub srow: [[f64; 4]; 3],
}

impl Raw {
    /// Checks the fields and builds the header; `template` is the NIfTI-1 header that outputs copy.
    pub(super) fn validate(self, template: HeaderTemplate) -> Result<Header, HeaderProblem> {
        use HeaderProblem::Invalid;
        let ndim = self.ndim;
        if !(1..=7).contains(&ndim) {
            return Err(Invalid(format!("dim[0] is {ndim}, must be 1 to 7; the header is damaged")));
        }
        let mut dims = Vec::with_capacity(ndim as usize);
        for (i, &d) in self.dim.iter().enumerate().take(ndim as usize) {
            if d < 1 {
                return Err(Invalid(format!("dim[{}] is {d}, must be at least 1; the header is damaged", i + 1)));
            }
            dims.push(d as usize);
        }
        let datatype = DataType::from_code(self.datatype).map_err(|name| {
            Invalid(format!(
                "datatype {name} cannot hold labels or probabilities; save the volume as an integer \
                 or float type"
            ))
        })?;
        if self.bitpix as usize != datatype.size() * 8 {
            return Err(Invalid(format!(
                "bitpix {} disagrees with datatype {} ({} bits); the header is damaged",
                self.bitpix,
                datatype.name(),
                datatype.size() * 8
            )));
        }
        for (i, p) in self.pixdim.iter().enumerate().skip(1).take(3) {
            if !p.is_finite() || *p < 0.0 {
                return Err(Invalid(format!(
                    "voxel size pixdim[{i}] is {p}; it must be a finite non-negative number, fix the header"
                )));
            }
        }
        let raw_offset = self.vox_offset;
        let first_data = (self.header_len + 4) as u64;
        let vox_offset = if raw_offset == 0.0 {
            first_data
        } else if raw_offset.is_finite() && raw_offset >= self.header_len as f64 && raw_offset.fract() == 0.0 {
            raw_offset as u64
        } else {
            return Err(Invalid(format!(
                "vox_offset {raw_offset} does not point past the {}-byte header; the header is damaged",
                self.header_len
            )));
        };
        let inter = if self.inter.is_finite() { self.inter } else { 0.0 };
        let slope = self.slope;
        let scaling = if !slope.is_finite() || slope == 0.0 || (slope == 1.0 && inter == 0.0) {
            None
        } else {
            Some((slope, inter))
        };
        Ok(Header {
            dims,
            datatype,
            big_endian: self.big_endian,
            pixdim: self.pixdim.map(|v| v as f32),
            vox_offset,
            scaling,
            xyzt_units: self.xyzt_units,
            qform_code: self.qform_code,
            sform_code: self.sform_code,
            quatern: self.quatern.map(|v| v as f32),
            qoffset: self.qoffset.map(|v| v as f32),
            srow: self.srow.map(|r| r.map(|v| v as f32)),
            template,
        })
    }
}

impl Header {
    /// Parses and validates the first 348 bytes of a single-file NIfTI-1 volume.
    ///
    /// Rejects: a wrong `sizeof_hdr` or magic, NIfTI-2, two-file `.hdr/.img` pairs, `dim[0]` outside
    /// 1..=7, non-positive dimensions, non-numeric datatypes, `bitpix` disagreeing with `datatype`,
    /// a `vox_offset` inside the header, and non-finite or negative spatial `pixdim`.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, HeaderProblem> {
        use HeaderProblem::*;
        let le = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let be = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let big = match (le, be) {
            (348, _) => false,
            (_, 348) => true,
            _ => return Err(NotNifti(format!("header size field is {le}, expected 348"))),
        };
        let magic = &bytes[344..348];
        match magic {
            b"n+1\0" => {}
            b"ni1\0" => {
                return Err(Invalid(
                    "two-file NIfTI (.hdr/.img) is not supported; convert it to a single .nii or \
                     .nii.gz file"
                        .into(),
                ))
            }
            _ => return Err(NotNifti(format!("magic is {:?}, expected \"n+1\"", String::from_utf8_lossy(magic)))),
        }
        let f = Fields { b: bytes, big };
        let mut pixdim = [0f64; 8];
        for (i, p) in pixdim.iter_mut().enumerate() {
            *p = f.f32(76 + 4 * i) as f64;
        }
        let mut srow = [[0f64; 4]; 3];
        for (r, row) in srow.iter_mut().enumerate() {
            for (c, v) in row.iter_mut().enumerate() {
                *v = f.f32(280 + 16 * r + 4 * c) as f64;
            }
        }
        let raw = Raw {
            header_len: HEADER_LEN,
            big_endian: big,
            ndim: f.i16(40) as i64,
            dim: std::array::from_fn(|i| f.i16(42 + 2 * i) as i64),
            datatype: f.i16(70),
            bitpix: f.i16(72),
            pixdim,
            vox_offset: f.f32(108) as f64,
            slope: f.f32(112) as f64,
            inter: f.f32(116) as f64,
            xyzt_units: bytes[123],
            qform_code: f.i16(252),
            sform_code: f.i16(254),
            quatern: [f.f32(256) as f64, f.f32(260) as f64, f.f32(264) as f64],
            qoffset: [f.f32(268) as f64, f.f32(272) as f64, f.f32(276) as f64],
            srow,
        };
        raw.validate(HeaderTemplate { bytes: Box::new(*bytes), big_endian: big, nifti2: None })
    }

    /// Total number of values, `prod(dims)` (saturating: NIfTI-2 dimensions are 64-bit).
    pub fn value_count(&self) -> u128 {
        self.dims.iter().fold(1u128, |p, &d| p.saturating_mul(d as u128))
    }

    /// Bytes of voxel data the header describes (saturating).
    pub fn data_bytes(&self) -> u128 {
        self.value_count().saturating_mul(self.datatype.size() as u128)
    }

    /// Voxel size `pixdim[1..=3]` (1 for missing dimensions).
    pub fn voxel_size(&self) -> [f32; 3] {
        let mut v = [1.0; 3];
        for (i, s) in v.iter_mut().enumerate() {
            if i < self.dims.len() {
                *s = self.pixdim[i + 1];
            }
        }
        v
    }

    /// Name of the spatial unit in `xyzt_units`.
    pub fn spatial_unit(&self) -> &'static str {
        match self.xyzt_units & 0x07 {
            1 => "meter",
            2 => "mm",
            3 => "micron",
            _ => "unknown",
        }
    }

    /// The voxel-to-world affine as nibabel chooses it: sform when `sform_code > 0`, else qform
    /// when `qform_code > 0`, else a diagonal of the voxel sizes.
    ///
    /// qform (nifti1.h, method 2): with quaternion (b, c, d) and a = sqrt(1 − b² − c² − d²)
    /// (0 when negative), R = [[a²+b²−c²−d², 2(bc−ad), 2(bd+ac)], [2(bc+ad), a²+c²−b²−d², 2(cd−ab)],
    /// [2(bd−ac), 2(cd+ab), a²+d²−b²−c²]]; columns scaled by (pixdim1, pixdim2, qfac·pixdim3) with
    /// qfac = `pixdim[0]` (−1 or 1; 0 is read as 1); translation (qoffset_x, qoffset_y, qoffset_z).
    pub fn affine(&self) -> [[f64; 4]; 4] {
        let mut m = [[0.0; 4]; 4];
        m[3][3] = 1.0;
        if self.sform_code > 0 {
            for (r, row) in self.srow.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    m[r][c] = *v as f64;
                }
            }
            return m;
        }
        let vs = self.voxel_size().map(f64::from);
        if self.qform_code > 0 {
            let [b, c, d] = self.quatern.map(|v| v as f64);
            let a2 = 1.0 - (b * b + c * c + d * d);
            let (a, b, c, d) = if a2 < 1e-7 {
                let n = (b * b + c * c + d * d).sqrt();
                (0.0, b / n, c / n, d / n)
            } else {
                (a2.sqrt(), b, c, d)
            };
            let qfac = if self.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
            let r = [
                [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
                [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
                [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - b * b - c * c],
            ];
            let scale = [vs[0], vs[1], vs[2] * qfac];
            for row in 0..3 {
                for col in 0..3 {
                    m[row][col] = r[row][col] * scale[col];
                }
                m[row][3] = self.qoffset[row] as f64;
            }
            return m;
        }
        for (i, s) in vs.iter().enumerate() {
            m[i][i] = *s;
        }
        m
    }
}
