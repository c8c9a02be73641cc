//! The journal's files: a 0700 directory only root may write, a 0600 file never reached
//! through a symlink, and cheap checks of a file's header before SQLite opens it.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io::{self, Read},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use super::JournalError;

/// The directory a journal path lives in.
pub(super) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

pub(super) fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

pub(super) fn file_len(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| m.len())
}

pub(super) fn euid() -> u32 {
    crate::kernel::sys::geteuid()
}

/// A file type in words, for errors.
pub(super) fn type_name(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Creates the journal's directory (0700) or checks the one that exists.
pub(super) fn prepare_directory(dir: &Path) -> Result<(), JournalError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| JournalError::CreateDir {
                    path: dir.to_owned(),
                    source,
                })?;
            fs::symlink_metadata(dir).map_err(|source| JournalError::CreateDir {
                path: dir.to_owned(),
                source,
            })?
        }
        Err(source) => {
            return Err(JournalError::CreateDir {
                path: dir.to_owned(),
                source,
            });
        }
    };
    if meta.file_type().is_symlink() {
        return Err(JournalError::Symlink(dir.to_owned()));
    }
    if !meta.is_dir() {
        return Err(JournalError::NotADirectory(dir.to_owned()));
    }
    let mode = meta.mode();
    let owner = meta.uid();
    if owner != euid() && owner != 0 {
        return Err(JournalError::UnsafeDirectory {
            path: dir.to_owned(),
            problem: format!("belongs to uid {owner}"),
        });
    }
    // Writable by others without the sticky bit: they could swap the journal.
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(JournalError::UnsafeDirectory {
            path: dir.to_owned(),
            problem: format!("is writable by other users (mode {:o})", mode & 0o7777),
        });
    }
    Ok(())
}

/// Opens (creating 0600) the journal file itself, never through a symlink.
pub(super) fn open_file(path: &Path) -> Result<File, JournalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // Non-blocking so that a FIFO planted there cannot hang the open.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(JournalError::Symlink(path.to_owned()));
        }
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {
            return Err(JournalError::NotAFile {
                path: path.to_owned(),
                what: "a directory",
            });
        }
        Err(source) => {
            return Err(JournalError::Open {
                path: path.to_owned(),
                source,
            });
        }
    };
    let meta = file.metadata().map_err(|source| JournalError::Open {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(JournalError::NotAFile {
            path: path.to_owned(),
            what: type_name(&meta),
        });
    }
    if meta.uid() != euid() {
        return Err(JournalError::Owner {
            path: path.to_owned(),
            uid: meta.uid(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|source| JournalError::Open {
                path: path.to_owned(),
                source,
            })?;
    }
    Ok(file)
}

/// The SQLite header's magic string.
pub(super) const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Cheap checks before SQLite sees the file: empty, not SQLite, or shorter than its
/// header says (a truncated copy). Length checks are skipped while the write-ahead log
/// holds pages, since the database file is then legitimately behind.
pub(super) fn check_header(path: &Path) -> Result<(), JournalError> {
    let open_error = |source| JournalError::Open {
        path: path.to_owned(),
        source,
    };
    let wal_before = file_len(&wal_path(path));
    let mut file = File::open(path).map_err(open_error)?;
    let len = file.metadata().map_err(open_error)?.len();
    if len == 0 {
        return Err(JournalError::Empty(path.to_owned()));
    }
    let mut header = [0u8; 100];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(open_error(e)),
        }
    }
    let looks_sqlite = header[..read.min(16)] == MAGIC[..read.min(16)];
    if !looks_sqlite {
        return Err(JournalError::Foreign {
            path: path.to_owned(),
            why: "it is not an SQLite database".to_owned(),
        });
    }
    if read < header.len() {
        return Err(JournalError::Corrupt {
            path: path.to_owned(),
            why: format!("truncated to {len} bytes"),
        });
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let wal_after = file_len(&wal_path(path));
    if page_size < 512 || !page_size.is_power_of_two() || wal_before > 0 || wal_after > 0 {
        return Ok(());
    }
    let pages = u64::from(be32(28));
    let valid = be32(24) == be32(92) && pages > 0;
    if len % page_size != 0 || (valid && len < pages * page_size) {
        return Err(JournalError::Corrupt {
            path: path.to_owned(),
            why: if valid {
                format!(
                    "truncated: the file has {len} bytes, its header says {}",
                    pages * page_size
                )
            } else {
                format!("truncated: {len} bytes is not a whole number of {page_size}-byte pages")
            },
        });
    }
    Ok(())
}
