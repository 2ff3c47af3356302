//! NIfTI-1 and NIfTI-2 files (`.nii`, `.nii.gz`): headers parsed and validated, voxel data streamed
//! into its in-memory form, volumes written atomically with an input's geometry.
//!
//! Reading is done here rather than through the `nifti` crate's data path, which on this crate's
//! targets reads from byte 352 whatever `vox_offset` says, skips the gzip CRC, stops at the first
//! gzip member, holds two copies of a volume at peak and casts with `as`. Here a header is parsed
//! and validated (and its value count checked against a limit) before anything is allocated, data
//! is streamed once from `vox_offset` into its final type, and outputs are written atomically with
//! the input's header so that geometry is kept exactly.

pub mod decode;
pub mod gzip;
pub mod header;
pub mod nifti2;
pub mod read;
pub mod template;
pub mod volumes;
pub mod write;

pub use header::{DataType, Header, HeaderTemplate};
pub use read::Source;
pub use write::{write_f32, write_u8, WriteOptions};
