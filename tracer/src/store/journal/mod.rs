//! The recorder's journal: an SQLite database (WAL mode) of signal and exit reports,
//! indexed by target, sender, signal and time, with the gaps where events were lost.
//!
//! Each report is stored as the live view prints it (its JSON object and its text), next
//! to the columns queries select on. Repeats of one signal (everything but its time the
//! same) are stored once with their count and the time of the last one. The schema,
//! retention and durability rules are in docs/recorder.md; keep the two in step.
//!
//! By job: `schema` creates and checks the database, `files` guards the files and
//! directory it lives in, `writer` stores rows, gaps and sessions, `retention` trims
//! it, `reader` answers queries.

mod files;
mod reader;
mod retention;
mod schema;
mod writer;

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::kernel::sys;

pub use reader::QueryError;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};

use files::{check_header, open_file, parent_of, prepare_directory, type_name};

/// Where the recorder keeps its journal unless told otherwise.
pub const DEFAULT_JOURNAL: &str = "/var/lib/sigwho/journal";
/// Environment variable that replaces the default journal path.
pub const JOURNAL_ENV: &str = "SIGWHO_JOURNAL";

/// The journal to use: an explicit `--journal PATH` always wins, then
/// `$SIGWHO_JOURNAL` (when set and not empty), then /var/lib/sigwho/journal.
#[must_use]
pub fn resolve(explicit: Option<&Path>) -> PathBuf {
    resolve_with(explicit, std::env::var_os(JOURNAL_ENV))
}

fn resolve_with(explicit: Option<&Path>, env: Option<std::ffi::OsString>) -> PathBuf {
    match (explicit, env) {
        (Some(path), _) => path.to_owned(),
        (None, Some(path)) if !path.is_empty() => PathBuf::from(path),
        (None, _) => PathBuf::from(DEFAULT_JOURNAL),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "no journal at {0} (a journal exists only where `sigwho record` has run; see docs/recorder.md)"
    )]
    Missing(PathBuf),
    #[error("{0} is a symbolic link; sigwho never follows a link to or beside its journal")]
    Symlink(PathBuf),
    #[error("{path} is {what}, not a journal")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error(
        "the journal's directory {path} {problem}; keep the journal in a directory only root can write (the default /var/lib/sigwho is created 0700)"
    )]
    UnsafeDirectory { path: PathBuf, problem: String },
    #[error("the journal {path} belongs to uid {uid}, not to this user; refusing to write to it")]
    Owner { path: PathBuf, uid: u32 },
    #[error("cannot create the journal's directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot open the journal {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("another `sigwho record` is writing to the journal {0}")]
    Locked(PathBuf),
    #[error("{0} is empty: no recorder has finished creating a journal there")]
    Empty(PathBuf),
    #[error("{path} is not a sigwho journal: {why}")]
    Foreign { path: PathBuf, why: String },
    #[error(
        "the journal {path} is damaged ({why}); move it aside (a new recorder starts a new one)"
    )]
    Corrupt { path: PathBuf, why: String },
    #[error(
        "the journal {path} is in format {found}, written by a newer sigwho; this sigwho reads format {SCHEMA_VERSION}"
    )]
    Newer { path: PathBuf, found: i32 },
    #[error(
        "the journal {path} is in format {found}, from an older sigwho; this one reads only format {SCHEMA_VERSION}: move it aside (sqlite3 still opens it)"
    )]
    Older { path: PathBuf, found: i32 },
    #[error("the journal {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// What a stored event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Signal,
    Exit,
}

impl Kind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Signal => "signal",
            Kind::Exit => "exit",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        match text {
            "signal" => Some(Kind::Signal),
            "exit" => Some(Kind::Exit),
            _ => None,
        }
    }
}

/// A process as the journal identifies it: with the boot, pid and start time it is
/// one process, whatever became of its pid later.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcRef {
    pub pid: u32,
    /// Start in clock ticks since boot, as /proc/PID/stat counts it.
    pub start_ticks: Option<u64>,
    /// Start time as the report shows it (RFC 3339).
    pub start: Option<String>,
}

/// One report to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// When it happened, in nanoseconds since the Unix epoch (the first, for repeats).
    pub time_ns: i64,
    /// How many events the row stands for: 1, or the number of identical repeats.
    pub count: u64,
    /// When the last of them happened (`time_ns` for a single event).
    pub last_ns: i64,
    pub kind: Kind,
    /// The signal, or for an exit the signal that killed the process.
    pub signo: Option<i32>,
    /// The signalled process, or for an exit the process that exited.
    pub target: Option<ProcRef>,
    pub target_comm: Option<String>,
    pub sender: Option<ProcRef>,
    /// /`proc/sys/kernel/random/boot_id` of the boot it happened in.
    pub boot_id: String,
    /// The live view's JSON object (one line, no newline).
    pub json: String,
    /// The live view's text (lines ending in newlines).
    pub text: String,
}

impl Row {
    /// Roughly what the row costs on disk, with its index entries.
    #[must_use]
    pub fn approx_bytes(&self) -> u64 {
        (self.json.len() + self.text.len() + self.boot_id.len() + 160) as u64
    }
}

/// Events that were not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub time_ns: i64,
    pub count: u64,
    /// "`ring_buffer`", "queue", "`disk_full`" or "`write_error`" (see [`gap_reason_text`]).
    pub reason: String,
}

/// What a gap's reason means, for text output.
#[must_use]
pub fn gap_reason_text(reason: &str) -> &str {
    match reason {
        "ring_buffer" => "the kernel's ring buffer was full",
        "queue" => "the recorder's write queue was full",
        "disk_full" => "the disk was nearly full",
        "write_error" => "writing the journal failed",
        other => other,
    }
}

/// A stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: i64,
    pub time_ns: i64,
    /// Identical repeats the row stands for (1: a single event), the last at `last_ns`.
    pub count: u64,
    pub last_ns: i64,
    pub kind: Kind,
    pub json: String,
    pub text: String,
}

/// What a query yields, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Event(StoredEvent),
    Gap(Gap),
}

/// Which events a query wants. Every condition given must hold.
///
/// Exits are included when the query names a target (pid or comm) or a signal (then
/// the exits that signal caused); otherwise only signals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub target_pid: Option<u32>,
    pub target_comm: Option<String>,
    pub sender_pid: Option<u32>,
    pub signo: Option<i32>,
    /// Unix ns, inclusive.
    pub since_ns: Option<i64>,
    /// Unix ns, inclusive.
    pub until_ns: Option<i64>,
}

/// One process that had a given pid (`--target-pid`): pids are reused, and each
/// process is shown apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incarnation {
    pub boot_id: String,
    pub pid: u32,
    pub start_ticks: Option<u64>,
    /// RFC 3339, when known.
    pub start: Option<String>,
    /// Matching signal events.
    pub signals: u64,
    /// Matching events of any kind.
    pub events: u64,
    pub first_ns: i64,
    pub last_ns: i64,
    /// When it exited, if its exit is among the matching events.
    pub exit_ns: Option<i64>,
}

/// What [`Journal::enforce_limits`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trim {
    pub deleted_events: u64,
    pub deleted_gaps: u64,
    /// Journal files (database and write-ahead log) before and after, bytes.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// What a recorder session adds to its row in `sessions` with each write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionUpdate {
    pub now_ns: i64,
    pub recorded: u64,
    pub dropped: u64,
}

pub struct Journal {
    // Dropped before `lock`: closing the connection checkpoints the log while the lock
    // still keeps other recorders out (and POSIX locks die with any close of the file).
    conn: Connection,
    path: PathBuf,
    session: Option<i64>,
    /// The recorder's exclusive flock on the database file.
    lock: Option<File>,
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// An SQLite failure in words a user can act on.
pub(super) fn sql_error(path: &Path, error: rusqlite::Error) -> JournalError {
    let path = path.to_owned();
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => JournalError::Foreign {
            path,
            why: "it is not an SQLite database".to_owned(),
        },
        Some(ErrorCode::DatabaseCorrupt) => JournalError::Corrupt {
            path,
            why: error.to_string(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => JournalError::Open {
            path,
            source: io::Error::new(io::ErrorKind::PermissionDenied, error.to_string()),
        },
        _ => JournalError::Sqlite {
            path,
            source: error,
        },
    }
}

impl Journal {
    /// Opens the journal for recording, creating it (and its directory, 0700) when
    /// missing. Refuses symlinks at the path and its directory, a directory that others
    /// can write, a file owned by someone else, and a second recorder.
    ///
    /// # Errors
    ///
    /// When the path or its directory is unsafe (a symlink, writable by others, owned
    /// by another user), another recorder holds the journal, or the file is not a
    /// sigwho journal of this format.
    pub fn create_or_open(path: &Path) -> Result<Journal, JournalError> {
        let parent = parent_of(path);
        prepare_directory(&parent)?;
        let file = open_file(path)?;
        match sys::try_lock_exclusive(&file) {
            Ok(true) => {}
            Ok(false) => return Err(JournalError::Locked(path.to_owned())),
            Err(source) => {
                return Err(JournalError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_error(path, e))?;
        let mut journal = Journal {
            conn,
            path: path.to_owned(),
            session: None,
            lock: Some(file),
        };
        journal.initialize()?;
        Ok(journal)
    }

    /// A journal with nothing behind it (in memory, no file, no lock): what a recorder
    /// holds for the moment between closing its journal and opening it again.
    ///
    /// # Errors
    ///
    /// When SQLite cannot open an in-memory database.
    pub fn placeholder() -> Result<Journal, JournalError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sql_error(&path, e))?;
        Ok(Journal {
            conn,
            path,
            session: None,
            lock: None,
        })
    }

    /// The recorder's open file (device and inode tell whether the path still names
    /// it); None for a read-only journal.
    pub fn file_metadata(&self) -> Option<fs::Metadata> {
        self.lock.as_ref().and_then(|file| file.metadata().ok())
    }

    /// Opens an existing journal for queries. Works while a recorder writes to it.
    ///
    /// # Errors
    ///
    /// When there is no journal at `path`, or it is not a sigwho journal of this
    /// format.
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(JournalError::Missing(path.to_owned()));
            }
            Err(source) => {
                return Err(JournalError::Open {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if !meta.is_file() {
            return Err(JournalError::NotAFile {
                path: path.to_owned(),
                what: type_name(&meta),
            });
        }
        check_header(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_error(path, e))?;
        let journal = Journal {
            conn,
            path: path.to_owned(),
            session: None,
            lock: None,
        };
        journal.configure(false)?;
        journal.validate()?;
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for tests and tools that need plain SQL.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn err(&self, error: rusqlite::Error) -> JournalError {
        sql_error(&self.path, error)
    }

    fn pragma_i64(&self, name: &str) -> Result<i64, JournalError> {
        self.conn
            .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .map_err(|e| self.err(e))
    }

    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<u64, JournalError> {
        self.conn
            .execute(sql, params)
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests;
