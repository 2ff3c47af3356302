//! The only code that touches files of volumes: NIfTI-1 and NIfTI-2 (`.nii`, `.nii.gz`), nnU-Net
//! `.npz` probabilities.
//!
//! Reading is done here rather than through the `nifti` crate's data path, which on this crate's
//! targets reads from byte 352 whatever `vox_offset` says, skips the gzip CRC, stops at the first
//! gzip member, holds two copies of a volume at peak and casts with `as`. Here a header is parsed
//! and validated (and its value count checked against a limit) before anything is allocated, data
//! is streamed once from `vox_offset` into its final type, and outputs are written atomically with
//! the input's header so that geometry is kept exactly.

pub mod decode;
pub mod header;
pub mod header2;
pub mod load;
pub mod npz;
pub mod pgzip;
pub mod read;
pub mod template;
pub mod write;

pub use header::{DataType, Header};
pub use load::{LoadOptions, OpenCase};
pub use read::Source;
pub use write::{write_f32, write_u8, WriteOptions};
