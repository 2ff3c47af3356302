//! Safe output files: refuse to clobber an existing file unless asked to, refuse to write over an
//! input, and write every file atomically (a temporary file in the same folder, renamed into place
//! when complete) so that a failed or killed run never leaves a half-written output. [`gzip`]
//! compresses a stream on every core.

pub mod gzip;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The canonical form of a path that may not exist yet (its folder must exist).
fn canonical_target(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(parent.canonicalize().ok()?.join(path.file_name()?))
}

/// Checks, before any work is done, that `path` may be written: it is not one of `inputs`, and it
/// does not exist unless `force` is set.
pub fn check_output(path: &Path, inputs: &[&Path], force: bool) -> Result<()> {
    if let Some(target) = canonical_target(path) {
        for input in inputs {
            if input.canonicalize().ok().as_deref() == Some(target.as_path()) {
                return Err(Error::OutputIsInput { path: path.to_path_buf() });
            }
        }
    }
    if !force && path.symlink_metadata().is_ok() {
        return Err(Error::OutputExists { path: path.to_path_buf() });
    }
    if !folder_of(path).is_dir() {
        return Err(Error::usage(format!(
            "{}: the folder {} does not exist; create it first or choose another output path",
            path.display(),
            folder_of(path).display()
        )));
    }
    Ok(())
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn write_error(path: &Path, source: io::Error) -> Error {
    Error::Write { path: path.to_path_buf(), source }
}

/// A temporary file in `path`'s folder, readable by others once renamed (0644 on Unix, like any
/// newly written file), unlike the owner-only default of temporary files.
fn temp_beside(path: &Path, suffix: &str) -> Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".dicegrad-").suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    b.tempfile_in(folder_of(path)).map_err(|e| write_error(path, e))
}

fn persist(tmp: tempfile::NamedTempFile, path: &Path, force: bool) -> Result<()> {
    let result = if force { tmp.persist(path).map(drop) } else { tmp.persist_noclobber(path).map(drop) };
    result.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            Error::OutputExists { path: path.to_path_buf() }
        } else {
            write_error(path, e.error)
        }
    })
}

/// Writes `path` atomically from a function that streams its bytes. On any error the temporary
/// file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, force: bool, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut tmp = temp_beside(path, ".part")?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        fill(&mut w)?;
        w.flush().map_err(|e| write_error(path, e))?;
    }
    tmp.as_file().sync_all().map_err(|e| write_error(path, e))?;
    persist(tmp, path, force)
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, force: bool, bytes: &[u8]) -> Result<()> {
    write_atomic(path, force, |w| w.write_all(bytes).map_err(|e| write_error(path, e)))
}

/// Atomic write for libraries that insist on writing to a path themselves: `render` writes a
/// temporary file (whose name ends in `suffix`, e.g. `.png`, so that the format is recognised),
/// which is then renamed to `path`.
pub fn write_via_temp_path(
    path: &Path,
    force: bool,
    suffix: &str,
    render: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let tmp = temp_beside(path, suffix)?;
    render(tmp.path())?;
    File::open(tmp.path()).and_then(|f| f.sync_all()).map_err(|e| write_error(path, e))?;
    persist(tmp, path, force)
}

/// Maps an I/O error while writing `path` to [`Error::Write`].
pub fn io_error(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| write_error(path, e)
}
