//! A data directory is private to the user who runs cograph: it is created
//! 0700 and every file cograph puts in it is 0600 (the store and SQLite's
//! `-wal`/`-shm`, the lock file, `hub.json`, `hub.log`, the hub socket),
//! whatever the umask.
//!
//! A directory that already exists keeps its mode: `--data` may name a
//! directory the user made on purpose (a shared checkout, say), and
//! changing its mode behind their back would surprise more than it
//! protects. When it is readable or searchable by group or others, the
//! owner says so once at open (a warning on stderr). The files in it are
//! still 0600, so the program and the log stay private either way.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of a directory cograph creates.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file cograph creates in it.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents, each 0700. An existing directory
/// is left as it is.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Sets `path` to 0600 if it exists.
pub fn restrict(path: &Path) -> io::Result<()> {
    match std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Opens `path` for appending, created 0600 (and made 0600 if it was not).
pub fn open_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Creates (or truncates) `path` for writing, 0600.
pub fn create(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Warns when `dir` can be read or searched by group or others.
pub fn warn_if_shared(dir: &Path) {
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{mode:o}"),
            "the data directory is readable by other users; its files are 0600, but `chmod 700` it to hide even their names"
        );
    }
}
