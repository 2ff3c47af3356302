//! Safe output files: refuse to clobber an existing file unless asked to, refuse to write over an
//! input, and write every file atomically (a temporary file in the same folder, renamed into place
//! when complete) so that a failed or killed run never leaves a half-written output. [`gzip`]
//! compresses a stream on every core.
//!
//! Every temporary file is registered while it is being written, so that a program interrupted by
//! a signal can remove them all ([`interrupt`]): creating, renaming and removing take one lock, so
//! after `interrupt` no temporary file is left and none can appear or become an output.

pub mod gzip;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Files of this process: temporary files being written, and outputs completed.
struct Registry {
    unfinished: Vec<PathBuf>,
    /// How many outputs were completed, and the first [`KEPT_NAMES`] of them.
    written: usize,
    written_names: Vec<PathBuf>,
    /// Folders created for outputs, removed by [`interrupt`] when nothing was written into them.
    folders: Vec<PathBuf>,
    /// Set by [`interrupt`]: no temporary file may be created or renamed any more.
    closed: bool,
}

const KEPT_NAMES: usize = 16;

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    unfinished: Vec::new(),
    written: 0,
    written_names: Vec::new(),
    folders: Vec::new(),
    closed: false,
});

/// Creates `dir` (and its missing parents) for outputs; an interruption removes the folders it
/// created if they are still empty.
pub fn create_folder(dir: &Path) -> Result<()> {
    let mut r = registry();
    let mut missing: Vec<PathBuf> =
        dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).map(Path::to_path_buf).collect();
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    r.folders.append(&mut missing);
    Ok(())
}

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// What [`interrupt`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    /// Temporary files removed.
    pub removed: usize,
    /// Outputs this process completed before the interruption (count, and the first names).
    pub written: usize,
    pub written_names: Vec<PathBuf>,
}

/// Removes every temporary file being written and stops all further output: from this call on, no
/// temporary file can be created and none can be renamed into place (those calls wait forever).
/// For a signal handler that then ends the process.
pub fn interrupt() -> Interrupted {
    let mut r = registry();
    r.closed = true;
    let removed = r.unfinished.drain(..).filter(|p| std::fs::remove_file(p).is_ok()).count();
    // innermost first; a folder that holds anything stays
    for dir in &r.folders {
        let _ = std::fs::remove_dir(dir);
    }
    let found = Interrupted { removed, written: r.written, written_names: r.written_names.clone() };
    // held until the process ends: writers block instead of creating or completing files
    std::mem::forget(r);
    found
}

/// A temporary file registered for [`interrupt`]; removed when dropped unless persisted.
struct Staged {
    file: Option<tempfile::NamedTempFile>,
}

impl Staged {
    fn file(&self) -> &tempfile::NamedTempFile {
        self.file.as_ref().expect("a staged file until persisted")
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let mut r = registry();
            r.unfinished.retain(|p| p != file.path());
            drop(file);
        }
    }
}

/// `path` made absolute with symbolic links resolved, for a path that may not exist yet: its
/// longest existing ancestor resolved, the rest appended (`..` in the rest applied).
pub fn resolved(path: &Path) -> Result<PathBuf> {
    let absolute = std::path::absolute(path).map_err(|e| Error::Open { path: path.to_path_buf(), source: e })?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(p) => out.push(p),
                    _ => {}
                }
            }
            return Ok(out);
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return Ok(absolute),
        }
    }
}

/// Checks, before any work is done, that `path` may be written: it is not one of `inputs`, not a
/// folder, device or pipe (an output replaces a regular file, never one of those, even with
/// `force`), and it does not exist unless `force` is set.
pub fn check_output(path: &Path, inputs: &[&Path], force: bool) -> Result<()> {
    if let Ok(m) = path.metadata() {
        if m.is_dir() {
            return Err(Error::usage(format!("{}: is a folder, not a file; give a file path", path.display())));
        }
        if !m.is_file() {
            return Err(Error::usage(format!(
                "{}: is not a regular file (a device, a pipe or a socket); outputs are written as files that \
                 replace what is there: give the path of a file",
                path.display()
            )));
        }
    }
    if let Ok(target) = resolved(path) {
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
fn temp_beside(path: &Path, suffix: &str) -> Result<Staged> {
    let mut b = tempfile::Builder::new();
    b.prefix(TEMP_PREFIX).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut r = registry();
    let file = b.tempfile_in(folder_of(path)).map_err(|e| write_error(path, e))?;
    r.unfinished.push(file.path().to_path_buf());
    Ok(Staged { file: Some(file) })
}

fn persist(mut staged: Staged, path: &Path, force: bool) -> Result<()> {
    let mut r = registry();
    let tmp = staged.file.take().expect("a staged file is persisted once");
    r.unfinished.retain(|p| p != tmp.path());
    let result = if force { tmp.persist(path).map(drop) } else { tmp.persist_noclobber(path).map(drop) };
    if result.is_ok() {
        r.written += 1;
        if r.written_names.len() < KEPT_NAMES {
            r.written_names.push(path.to_path_buf());
        }
    }
    result.map_err(|e| {
        if e.error.kind() == io::ErrorKind::AlreadyExists {
            Error::OutputExists { path: path.to_path_buf() }
        } else {
            write_error(path, e.error)
        }
    })
}

/// The name prefix of every temporary file (`.dicegrad-…`), by which [`remove_stale`] finds them.
pub const TEMP_PREFIX: &str = ".dicegrad-";

/// Removes the temporary files that a killed run left in `dir` (those not being written by this
/// process); returns how many. For folders that a run owns (it holds their lock).
pub fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let r = registry();
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| !r.unfinished.iter().any(|p| p.file_name() == Some(e.file_name().as_os_str())))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

/// Writes `path` atomically from a function that streams its bytes. On any error the temporary
/// file is removed and `path` is left as it was.
pub fn write_atomic(path: &Path, force: bool, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let mut tmp = temp_beside(path, ".part")?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.file.as_mut().expect("a staged file").as_file_mut());
        fill(&mut w)?;
        w.flush().map_err(|e| write_error(path, e))?;
    }
    tmp.file().as_file().sync_all().map_err(|e| write_error(path, e))?;
    persist(tmp, path, force)
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, force: bool, bytes: &[u8]) -> Result<()> {
    write_atomic(path, force, |w| w.write_all(bytes).map_err(|e| write_error(path, e)))
}

/// Maps an I/O error while writing `path` to [`Error::Write`].
pub fn io_error(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |e| write_error(path, e)
}

/// The lock file that a run holds in each folder it writes into.
pub const LOCK_FILE: &str = ".dicegrad.lock";

/// An advisory lock on a folder, held while a run writes into it (released when dropped, or when
/// the process ends however it ends). The lock file holds the holder's process id.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

fn open_lock(dir: &Path) -> Result<(File, PathBuf)> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| write_error(&path, e))?;
    Ok((file, path))
}

/// The error for a folder whose lock another run holds (named by the pid in the lock file).
fn busy(dir: &Path, file: &mut File) -> Error {
    let mut text = String::new();
    let _ = io::Read::read_to_string(file, &mut text);
    let holder = match text.trim().parse::<u32>() {
        Ok(pid) => format!("another dicegrad run (pid {pid})"),
        Err(_) => "another dicegrad run".to_string(),
    };
    Error::usage(format!("{}: in use by {holder}; wait for it to finish, or write to another folder", dir.display()))
}

impl FolderLock {
    /// Locks `dir` (which must exist) for this run alone, or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<FolderLock> {
        let (mut file, path) = open_lock(dir)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(busy(dir, &mut file)),
            Err(std::fs::TryLockError::Error(e)) => return Err(write_error(&path, e)),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0).and_then(|_| file.write_all(pid.as_bytes())).map_err(|e| write_error(&path, e))?;
        Ok(FolderLock { _file: file })
    }

    /// Locks `dir` (which must exist) for this run and others like it (shards writing gradient
    /// volumes into one folder), refusing a run that holds it alone. `alone` is called first if no
    /// other run holds the folder at all: the time for housekeeping such as removing stale
    /// temporary files, which a run sharing the folder could still be writing.
    pub fn shared(dir: &Path, alone: impl FnOnce()) -> Result<FolderLock> {
        let (mut file, path) = open_lock(dir)?;
        if file.try_lock().is_ok() {
            alone();
            file.unlock().map_err(|e| write_error(&path, e))?;
        }
        // another run's housekeeping holds the folder alone only for a moment
        for attempt in 0.. {
            match file.try_lock_shared() {
                Ok(()) => return Ok(FolderLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if attempt < 50 => {
                    std::thread::sleep(std::time::Duration::from_millis(100))
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(busy(dir, &mut file)),
                Err(std::fs::TryLockError::Error(e)) => return Err(write_error(&path, e)),
            }
        }
        unreachable!("the loop returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_does_not_exist_is_resolved_through_its_existing_ancestor() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().canonicalize().unwrap();
        assert_eq!(resolved(&d.path().join("a/b/../c")).unwrap(), base.join("a/c"));
        #[cfg(unix)]
        {
            std::fs::create_dir(d.path().join("real")).unwrap();
            std::os::unix::fs::symlink(d.path().join("real"), d.path().join("link")).unwrap();
            assert_eq!(resolved(&d.path().join("link/new")).unwrap(), base.join("real/new"));
        }
    }
}
