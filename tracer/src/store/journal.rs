//! The recorder's journal: an SQLite database (WAL mode) of signal and exit reports,
//! indexed by target, sender, signal and time, with the gaps where events were lost.
//!
//! Each report is stored as the live view prints it (its JSON object and its text), next
//! to the columns queries select on. Repeats of one signal (everything but its time the
//! same) are stored once with their count and the time of the last one. The schema, retention and durability rules are in
//! docs/recorder.md; keep the two in step.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io::{self, Read},
    os::{
        fd::AsRawFd,
        unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    },
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, params_from_iter,
    types::Value,
};

use crate::cli::DEFAULT_JOURNAL;

/// `PRAGMA application_id` of a sigwho journal ("SgWh").
pub const APPLICATION_ID: i32 = 0x5367_5768;
/// `PRAGMA user_version`: the journal format this sigwho writes and reads.
pub const SCHEMA_VERSION: i32 = 2;
/// Environment variable that replaces the default journal path.
pub const JOURNAL_ENV: &str = "SIGWHO_JOURNAL";

/// How long a statement waits for another connection's lock before failing. Readers
/// and the recorder do not block each other in WAL mode; this covers checkpoints.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Free space in the database worth giving back to the file system (with an eighth of
/// the size limit, whichever is more).
const FREE_SLACK: u64 = 4 * 1024 * 1024;
/// Rows deleted per statement when trimming, so that no transaction grows large.
const TRIM_CHUNK: i64 = 2000;

/// The journal to use: an explicit `--journal PATH` always wins, then
/// `$SIGWHO_JOURNAL` (when set and not empty), then /var/lib/sigwho/journal.
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
    /// /proc/sys/kernel/random/boot_id of the boot it happened in.
    pub boot_id: String,
    /// The live view's JSON object (one line, no newline).
    pub json: String,
    /// The live view's text (lines ending in newlines).
    pub text: String,
}

impl Row {
    /// Roughly what the row costs on disk, with its index entries.
    pub fn approx_bytes(&self) -> u64 {
        (self.json.len() + self.text.len() + self.boot_id.len() + 160) as u64
    }
}

/// Events that were not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub time_ns: i64,
    pub count: u64,
    /// "ring_buffer", "queue", "disk_full" or "write_error" (see [`gap_reason_text`]).
    pub reason: String,
}

/// What a gap's reason means, for text output.
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
    // Dropped before `_lock`: closing the connection checkpoints the log while the lock
    // still keeps other recorders out (and POSIX locks die with any close of the file).
    conn: Connection,
    path: PathBuf,
    session: Option<i64>,
    /// The recorder's exclusive flock on the database file.
    _lock: Option<File>,
}

const SCHEMA: &str = "
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    last_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    signo INTEGER,
    target_pid INTEGER,
    target_start_ticks INTEGER,
    target_start TEXT,
    target_comm TEXT,
    sender_pid INTEGER,
    sender_start_ticks INTEGER,
    sender_start TEXT,
    boot_id TEXT NOT NULL,
    json TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (time_ns);
CREATE INDEX events_by_target ON events (target_pid, target_start_ticks, time_ns);
CREATE INDEX events_by_comm ON events (target_comm, time_ns);
CREATE INDEX events_by_sender ON events (sender_pid, sender_start_ticks, time_ns);
CREATE INDEX events_by_signal ON events (signo, time_ns);
CREATE TABLE gaps (
    id INTEGER PRIMARY KEY,
    time_ns INTEGER NOT NULL,
    count INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX gaps_by_time ON gaps (time_ns);
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    started_ns INTEGER NOT NULL,
    last_write_ns INTEGER NOT NULL,
    stopped_ns INTEGER,
    recorded INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE boots (
    boot_id TEXT PRIMARY KEY,
    clock_offset_ns INTEGER NOT NULL,
    measured_ns INTEGER NOT NULL
);
";

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The directory a journal path lives in.
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn file_len(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| m.len())
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A file type in words, for errors.
fn type_name(meta: &fs::Metadata) -> &'static str {
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

impl Journal {
    /// Opens the journal for recording, creating it (and its directory, 0700) when
    /// missing. Refuses symlinks at the path and its directory, a directory that others
    /// can write, a file owned by someone else, and a second recorder.
    pub fn create_or_open(path: &Path) -> Result<Journal, JournalError> {
        let parent = parent_of(path);
        prepare_directory(&parent)?;
        let file = open_file(path)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = io::Error::last_os_error();
            return Err(if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                JournalError::Locked(path.to_owned())
            } else {
                JournalError::Open {
                    path: path.to_owned(),
                    source: error,
                }
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| sql_error(path, e))?;
        let mut journal = Journal {
            conn,
            path: path.to_owned(),
            session: None,
            _lock: Some(file),
        };
        journal.initialize()?;
        Ok(journal)
    }

    /// A journal with nothing behind it (in memory, no file, no lock): what a recorder
    /// holds for the moment between closing its journal and opening it again.
    pub fn placeholder() -> Result<Journal, JournalError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| sql_error(&path, e))?;
        Ok(Journal {
            conn,
            path,
            session: None,
            _lock: None,
        })
    }

    /// The recorder's open file (device and inode tell whether the path still names
    /// it); None for a read-only journal.
    pub fn file_metadata(&self) -> Option<fs::Metadata> {
        self._lock.as_ref().and_then(|file| file.metadata().ok())
    }

    /// Opens an existing journal for queries. Works while a recorder writes to it.
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
            _lock: None,
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

    fn configure(&self, writer: bool) -> Result<(), JournalError> {
        self.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.err(e))?;
        if writer {
            // NORMAL in WAL mode: a commit is in the log when it returns (a killed process
            // loses nothing committed); the log is synced at checkpoints (power loss may
            // lose the last commits, never the database).
            self.conn
                .execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn pragma_i64(&self, name: &str) -> Result<i64, JournalError> {
        self.conn
            .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .map_err(|e| self.err(e))
    }

    /// Creates the schema in an empty database, or checks an existing one.
    fn initialize(&mut self) -> Result<(), JournalError> {
        self.configure(true)?;
        let tables = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(|e| self.err(e))?;
        let application_id = self.pragma_i64("application_id")?;
        if tables == 0 && application_id == 0 {
            // All or nothing, in rollback-journal mode so that the header (application id,
            // format) is in the main file from the start; WAL afterwards. auto_vacuum must
            // be chosen before the first table exists.
            let sql = format!(
                "PRAGMA auto_vacuum = INCREMENTAL;
                 BEGIN IMMEDIATE;
                 {SCHEMA}
                 PRAGMA application_id = {APPLICATION_ID};
                 PRAGMA user_version = {SCHEMA_VERSION};
                 COMMIT;"
            );
            self.conn.execute_batch(&sql).map_err(|e| self.err(e))?;
        }
        self.validate()?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Open {
                path: self.path.clone(),
                source: io::Error::other(format!("cannot switch to WAL mode (got {mode})")),
            });
        }
        Ok(())
    }

    /// Checks the application id, the format version and the tables.
    fn validate(&self) -> Result<(), JournalError> {
        let application_id = self.pragma_i64("application_id")?;
        if application_id != i64::from(APPLICATION_ID) {
            let tables = self
                .conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| self.err(e))?;
            return Err(if application_id == 0 && tables == 0 {
                JournalError::Empty(self.path.clone())
            } else {
                JournalError::Foreign {
                    path: self.path.clone(),
                    why: if application_id == 0 {
                        "it is an SQLite database of another program".to_owned()
                    } else {
                        format!(
                            "it is an SQLite database of another program (application_id {application_id:#x})"
                        )
                    },
                }
            });
        }
        let version = self.pragma_i64("user_version")?;
        let found = i32::try_from(version).unwrap_or(i32::MAX);
        if found > SCHEMA_VERSION {
            return Err(JournalError::Newer {
                path: self.path.clone(),
                found,
            });
        }
        if found < SCHEMA_VERSION {
            return Err(JournalError::Older {
                path: self.path.clone(),
                found,
            });
        }
        let present = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'gaps', 'sessions', 'boots')",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err(e))?;
        if present != 4 {
            return Err(JournalError::Corrupt {
                path: self.path.clone(),
                why: "tables are missing".to_owned(),
            });
        }
        Ok(())
    }

    /// Sizes the write-ahead log for a journal of at most `max_bytes`: checkpoints come
    /// often enough, and a checkpointed log is cut back, so that the log stays a small
    /// part of the budget.
    pub fn set_budget(&self, max_bytes: u64) -> Result<(), JournalError> {
        let pages = (max_bytes / 4096 / 16).clamp(16, 1000);
        self.conn
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {pages}; PRAGMA journal_size_limit = {};",
                pages * 4096
            ))
            .map_err(|e| self.err(e))
    }

    /// Starts this recorder's row in `sessions`.
    pub fn begin_session(
        &mut self,
        pid: u32,
        version: &str,
        boot_id: &str,
        now_ns: i64,
    ) -> Result<(), JournalError> {
        self.conn
            .execute(
                "INSERT INTO sessions (pid, version, boot_id, started_ns, last_write_ns) VALUES (?1, ?2, ?3, ?4, ?4)",
                rusqlite::params![pid, version, boot_id, now_ns],
            )
            .map_err(|e| self.err(e))?;
        self.session = Some(self.conn.last_insert_rowid());
        Ok(())
    }

    /// The offset (wall clock minus boot clock, ns) that recorders in boot `boot_id`
    /// used to place kernel times on the wall clock, if one did.
    pub fn clock_offset(&self, boot_id: &str) -> Result<Option<i64>, JournalError> {
        self.conn
            .query_row(
                "SELECT clock_offset_ns FROM boots WHERE boot_id = ?1",
                [boot_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Remembers the offset this recorder uses for boot `boot_id`.
    pub fn set_clock_offset(
        &self,
        boot_id: &str,
        offset_ns: i64,
        now_ns: i64,
    ) -> Result<(), JournalError> {
        self.exec(
            "INSERT OR REPLACE INTO boots (boot_id, clock_offset_ns, measured_ns) VALUES (?1, ?2, ?3)",
            rusqlite::params![boot_id, offset_ns, now_ns],
        )
        .map(|_| ())
    }

    /// Marks this recorder's session stopped.
    pub fn end_session(&mut self, now_ns: i64) -> Result<(), JournalError> {
        if let Some(id) = self.session.take() {
            self.conn
                .execute(
                    "UPDATE sessions SET stopped_ns = ?1, last_write_ns = ?1 WHERE id = ?2",
                    rusqlite::params![now_ns, id],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Stores rows and gaps in one transaction (and counts them in the session).
    pub fn write(
        &mut self,
        rows: &[Row],
        gaps: &[Gap],
        session: SessionUpdate,
    ) -> Result<(), JournalError> {
        let path = self.path.clone();
        let session_id = self.session;
        let tx = self.conn.transaction().map_err(|e| sql_error(&path, e))?;
        insert_rows(&tx, rows).map_err(|e| sql_error(&path, e))?;
        insert_gaps(&tx, gaps).map_err(|e| sql_error(&path, e))?;
        if let Some(id) = session_id {
            tx.execute(
                "UPDATE sessions SET last_write_ns = ?1, recorded = recorded + ?2, dropped = dropped + ?3 WHERE id = ?4",
                rusqlite::params![
                    session.now_ns,
                    to_i64(session.recorded),
                    to_i64(session.dropped),
                    id
                ],
            )
            .map_err(|e| sql_error(&path, e))?;
        }
        tx.commit().map_err(|e| sql_error(&path, e))
    }

    /// Stores rows in one transaction.
    pub fn insert_batch(&mut self, rows: &[Row]) -> Result<(), JournalError> {
        self.write(rows, &[], SessionUpdate::default())
    }

    /// Records that `count` events around `time_ns` were not recorded.
    pub fn add_gap(&mut self, time_ns: i64, count: u64, reason: &str) -> Result<(), JournalError> {
        let gap = Gap {
            time_ns,
            count,
            reason: reason.to_owned(),
        };
        self.write(&[], &[gap], SessionUpdate::default())
    }

    /// Bytes the journal's files take: the database and its write-ahead log.
    pub fn size_on_disk(&self) -> u64 {
        file_len(&self.path) + file_len(&wal_path(&self.path))
    }

    /// Bytes of the database in use (pages not on the free list).
    fn live_bytes(&self) -> Result<u64, JournalError> {
        let pages = self.pragma_i64("page_count")?;
        let free = self.pragma_i64("freelist_count")?;
        let size = self.pragma_i64("page_size")?;
        Ok(to_u64((pages - free).max(0) * size))
    }

    /// Deletes events older than `max_age` before `now_ns`, then, when the journal nears
    /// `max_bytes`, the oldest events; then gives space back to the file system
    /// (incremental vacuum, log checkpoint and truncation) when the files are over the
    /// limit or much of the database is free.
    pub fn enforce_limits(
        &mut self,
        max_bytes: u64,
        max_age: Duration,
        now_ns: i64,
    ) -> Result<Trim, JournalError> {
        let mut trim = Trim {
            bytes_before: self.size_on_disk(),
            ..Trim::default()
        };
        let age_ns = i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX);
        let cutoff = now_ns.saturating_sub(age_ns);
        loop {
            let deleted = self.exec(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE time_ns < ?1 ORDER BY time_ns, id LIMIT ?2)",
                rusqlite::params![cutoff, TRIM_CHUNK],
            )?;
            trim.deleted_events += deleted;
            if deleted < to_u64(TRIM_CHUNK) {
                break;
            }
        }
        trim.deleted_gaps += self.exec(
            "DELETE FROM gaps WHERE time_ns < ?1",
            rusqlite::params![cutoff],
        )?;

        // Deleting is triggered a sixteenth below the limit and goes down to an eighth
        // below: each trim is a fraction of a second of work, and pages freed by it are
        // reused by the next inserts rather than given back and taken again.
        let wal = file_len(&wal_path(&self.path));
        let high = max_bytes - max_bytes / 16;
        let low = max_bytes - max_bytes / 8;
        if self.live_bytes()? + wal > high {
            loop {
                let live = self.live_bytes()?;
                if live <= low {
                    break;
                }
                // Ids grow with time and the oldest go first: the span is the count.
                let rows: i64 = self
                    .conn
                    .query_row(
                        "SELECT coalesce(max(id) - min(id) + 1, 0) FROM events",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(|e| self.err(e))?;
                if rows <= 0 {
                    break;
                }
                // As many rows as the excess is worth, by the average row, in chunks.
                let per_row = (live / to_u64(rows)).max(1);
                let wanted = to_i64((live - low).div_ceil(per_row)).clamp(1, TRIM_CHUNK);
                let deleted = self.exec(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY time_ns, id LIMIT ?1)",
                    rusqlite::params![wanted],
                )?;
                trim.deleted_events += deleted;
                if deleted == 0 {
                    break;
                }
            }
            // Gaps older than every event left say nothing about what the journal holds.
            trim.deleted_gaps += self.exec(
                "DELETE FROM gaps WHERE time_ns < (SELECT coalesce(min(time_ns), ?1) FROM events)",
                rusqlite::params![now_ns],
            )?;
        }
        // The file system gets space back when the files are over the limit (it was
        // lowered, or the log grew) or much of the database is free (events aged out).
        let free = to_u64(self.pragma_i64("freelist_count")? * self.pragma_i64("page_size")?);
        if self.size_on_disk() > max_bytes || free > (max_bytes / 8).max(FREE_SLACK) {
            self.shrink()?;
        } else if file_len(&wal_path(&self.path)) > max_bytes / 16 {
            self.checkpoint()?;
        }
        trim.bytes_after = self.size_on_disk();
        Ok(trim)
    }

    /// Returns free pages to the file system and empties the write-ahead log.
    pub fn shrink(&self) -> Result<(), JournalError> {
        // One result row per page freed: step until done.
        let mut stmt = self
            .conn
            .prepare("PRAGMA incremental_vacuum")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while rows.next().map_err(|e| self.err(e))?.is_some() {}
        drop(rows);
        drop(stmt);
        self.checkpoint()
    }

    /// Copies the write-ahead log into the database and truncates it (best effort while
    /// readers hold old snapshots).
    pub fn checkpoint(&self) -> Result<(), JournalError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }

    fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<u64, JournalError> {
        self.conn
            .execute(sql, params)
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// The processes that had `filter.target_pid` (every pid when none is given) and
    /// match the rest of the filter, oldest first.
    pub fn incarnations(&self, filter: &Filter) -> Result<Vec<Incarnation>, JournalError> {
        let (conditions, params) = where_clause(filter, None);
        let sql = format!(
            "SELECT boot_id, target_pid, target_start_ticks,
                    coalesce(max(CASE WHEN kind = 'signal' THEN target_start END), max(target_start)),
                    sum(CASE WHEN kind = 'signal' THEN count ELSE 0 END), sum(count),
                    min(time_ns), max(last_ns),
                    max(CASE WHEN kind = 'exit' THEN time_ns END)
             FROM events WHERE target_pid IS NOT NULL AND {conditions}
             GROUP BY boot_id, target_pid, target_start_ticks
             ORDER BY min(time_ns), target_pid"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(params), |r| {
                Ok(Incarnation {
                    boot_id: r.get(0)?,
                    pid: r.get(1)?,
                    start_ticks: r.get::<_, Option<i64>>(2)?.map(to_u64),
                    start: r.get(3)?,
                    signals: to_u64(r.get(4)?),
                    events: to_u64(r.get(5)?),
                    first_ns: r.get(6)?,
                    last_ns: r.get(7)?,
                    exit_ns: r.get(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Calls `each` with every matching event (only `within`'s when given) and every gap
    /// that overlaps the query, in time order. Stops at `each`'s first error.
    ///
    /// A gap overlaps when it lies within `since`..`until`, and, for one process, within
    /// its life (from its start, when known, to its exit, when recorded).
    pub fn for_each<E>(
        &self,
        filter: &Filter,
        within: Option<&Incarnation>,
        mut each: impl FnMut(Entry) -> Result<(), E>,
    ) -> Result<(), QueryError<E>> {
        let mut from = filter.since_ns;
        let mut to = filter.until_ns;
        if let Some(process) = within {
            let start = process.start.as_deref().and_then(|s| {
                crate::model::clock::parse_time(s, 0)
                    .ok()
                    .and_then(|ns| i64::try_from(ns).ok())
            });
            from = from.max(start);
            to = match (to, process.exit_ns) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let mut gaps = self
            .gaps(from, to)
            .map_err(QueryError::Journal)?
            .into_iter()
            .peekable();

        let (conditions, params) = where_clause(filter, within);
        let sql = format!(
            "SELECT id, time_ns, kind, json, text, count, last_ns FROM events WHERE {conditions} ORDER BY time_ns, id"
        );
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(|e| QueryError::Journal(self.err(e)))?;
        let mut rows = stmt
            .query(params_from_iter(params))
            .map_err(|e| QueryError::Journal(self.err(e)))?;
        while let Some(row) = rows.next().map_err(|e| QueryError::Journal(self.err(e)))? {
            let event = read_event(row).map_err(|e| QueryError::Journal(self.err(e)))?;
            while let Some(gap) = gaps.next_if(|g| g.time_ns <= event.time_ns) {
                each(Entry::Gap(gap)).map_err(QueryError::Output)?;
            }
            each(Entry::Event(event)).map_err(QueryError::Output)?;
        }
        for gap in gaps {
            each(Entry::Gap(gap)).map_err(QueryError::Output)?;
        }
        Ok(())
    }

    /// Every matching event and overlapping gap, in time order.
    pub fn query(&self, filter: &Filter) -> Result<Vec<Entry>, JournalError> {
        let mut out = Vec::new();
        self.for_each(filter, None, |entry| {
            out.push(entry);
            Ok::<(), std::convert::Infallible>(())
        })
        .map_err(|e| match e {
            QueryError::Journal(e) => e,
            QueryError::Output(never) => match never {},
        })?;
        Ok(out)
    }

    /// Gaps between `from` and `to` (inclusive), oldest first.
    pub fn gaps(&self, from: Option<i64>, to: Option<i64>) -> Result<Vec<Gap>, JournalError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT time_ns, count, reason FROM gaps WHERE time_ns >= ?1 AND time_ns <= ?2 ORDER BY time_ns, id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                rusqlite::params![from.unwrap_or(i64::MIN), to.unwrap_or(i64::MAX)],
                |r| {
                    Ok(Gap {
                        time_ns: r.get(0)?,
                        count: to_u64(r.get(1)?),
                        reason: r.get(2)?,
                    })
                },
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// A query's failure: the journal's, or the caller's output's.
#[derive(Debug)]
pub enum QueryError<E> {
    Journal(JournalError),
    Output(E),
}

fn read_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let kind: String = row.get(2)?;
    Ok(StoredEvent {
        id: row.get(0)?,
        time_ns: row.get(1)?,
        kind: Kind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown event kind {kind:?}").into(),
            )
        })?,
        json: row.get(3)?,
        text: row.get(4)?,
        count: to_u64(row.get(5)?),
        last_ns: row.get(6)?,
    })
}

/// The WHERE conditions (joined with AND; never empty) and their parameters.
fn where_clause(filter: &Filter, within: Option<&Incarnation>) -> (String, Vec<Value>) {
    let mut conditions: Vec<&str> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let mut add = |condition: &'static str, value: Value| {
        conditions.push(condition);
        params.push(value);
    };
    if let Some(process) = within {
        add("target_pid = ?", Value::Integer(i64::from(process.pid)));
        add("boot_id = ?", Value::Text(process.boot_id.clone()));
        add(
            "target_start_ticks IS ?",
            process
                .start_ticks
                .map_or(Value::Null, |t| Value::Integer(to_i64(t))),
        );
    } else if let Some(pid) = filter.target_pid {
        add("target_pid = ?", Value::Integer(i64::from(pid)));
    }
    if let Some(comm) = &filter.target_comm {
        add("target_comm = ?", Value::Text(comm.clone()));
    }
    if let Some(pid) = filter.sender_pid {
        add("sender_pid = ?", Value::Integer(i64::from(pid)));
    }
    if let Some(signo) = filter.signo {
        add("signo = ?", Value::Integer(i64::from(signo)));
    }
    if let Some(since) = filter.since_ns {
        add("time_ns >= ?", Value::Integer(since));
    }
    if let Some(until) = filter.until_ns {
        add("time_ns <= ?", Value::Integer(until));
    }
    let names_target = filter.target_pid.is_some() || filter.target_comm.is_some();
    if !names_target && filter.signo.is_none() {
        conditions.push("kind = 'signal'");
    }
    let text = if conditions.is_empty() {
        "1".to_owned()
    } else {
        conditions.join(" AND ")
    };
    (text, params)
}

fn insert_rows(tx: &Transaction<'_>, rows: &[Row]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (time_ns, kind, signo, target_pid, target_start_ticks, target_start,
                             target_comm, sender_pid, sender_start_ticks, sender_start, boot_id,
                             json, text, count, last_ns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for row in rows {
        let target = row.target.as_ref();
        let sender = row.sender.as_ref();
        stmt.execute(rusqlite::params![
            row.time_ns,
            row.kind.as_str(),
            row.signo,
            target.map(|t| t.pid),
            target.and_then(|t| t.start_ticks).map(to_i64),
            target.and_then(|t| t.start.as_deref()),
            row.target_comm,
            sender.map(|s| s.pid),
            sender.and_then(|s| s.start_ticks).map(to_i64),
            sender.and_then(|s| s.start.as_deref()),
            row.boot_id,
            row.json,
            row.text,
            to_i64(row.count),
            row.last_ns,
        ])?;
    }
    Ok(())
}

fn insert_gaps(tx: &Transaction<'_>, gaps: &[Gap]) -> rusqlite::Result<()> {
    if gaps.is_empty() {
        return Ok(());
    }
    let mut stmt =
        tx.prepare_cached("INSERT INTO gaps (time_ns, count, reason) VALUES (?1, ?2, ?3)")?;
    for gap in gaps {
        stmt.execute(rusqlite::params![
            gap.time_ns,
            to_i64(gap.count),
            gap.reason
        ])?;
    }
    Ok(())
}

/// An SQLite failure in words a user can act on.
fn sql_error(path: &Path, error: rusqlite::Error) -> JournalError {
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

/// Creates the journal's directory (0700) or checks the one that exists.
fn prepare_directory(dir: &Path) -> Result<(), JournalError> {
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
fn open_file(path: &Path) -> Result<File, JournalError> {
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
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Cheap checks before SQLite sees the file: empty, not SQLite, or shorter than its
/// header says (a truncated copy). Length checks are skipped while the write-ahead log
/// holds pages, since the database file is then legitimately behind.
fn check_header(path: &Path) -> Result<(), JournalError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const SECOND: i64 = 1_000_000_000;
    /// 2026-01-01T00:00:00Z.
    const T0: i64 = 1_767_225_600 * SECOND;

    /// A fresh directory under the temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "sigwho-journal-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            DirBuilder::new().mode(0o700).create(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn proc_ref(pid: u32, ticks: u64) -> ProcRef {
        ProcRef {
            pid,
            start_ticks: Some(ticks),
            start: Some(crate::model::clock::rfc3339_nanos(i128::from(
                T0 - 1000 * SECOND + to_i64(ticks) * SECOND / 100,
            ))),
        }
    }

    fn signal(time_ns: i64, signo: i32, target: ProcRef, sender: u32) -> Row {
        let json = serde_json::json!({
            "event": "signal",
            "time": crate::model::clock::rfc3339_nanos(i128::from(time_ns)),
            "signo": signo,
            "sender": {"pid": sender},
            "target": {"pid": target.pid, "start_time": target.start},
        })
        .to_string();
        Row {
            time_ns,
            count: 1,
            last_ns: time_ns,
            kind: Kind::Signal,
            signo: Some(signo),
            target_comm: Some("victim".to_owned()),
            target: Some(target),
            sender: Some(proc_ref(sender, 5)),
            boot_id: "boot-a".to_owned(),
            text: format!("signal {signo} at {time_ns}\n"),
            json,
        }
    }

    fn exit(time_ns: i64, target: ProcRef, signo: Option<i32>) -> Row {
        Row {
            time_ns,
            count: 1,
            last_ns: time_ns,
            kind: Kind::Exit,
            signo,
            target_comm: Some("victim".to_owned()),
            target: Some(target),
            sender: None,
            boot_id: "boot-a".to_owned(),
            json: format!("{{\"event\":\"exit\",\"time_ns\":{time_ns}}}"),
            text: format!("exit at {time_ns}\n"),
        }
    }

    fn events(entries: &[Entry]) -> Vec<i64> {
        entries
            .iter()
            .filter_map(|e| match e {
                Entry::Event(ev) => Some(ev.time_ns),
                Entry::Gap(_) => None,
            })
            .collect()
    }

    #[test]
    fn creates_a_private_wal_journal_with_its_ids() {
        let dir = TempDir::new();
        let path = dir.path("state/sub/journal");
        let journal = Journal::create_or_open(&path).unwrap();
        let dir_mode = fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o7777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(
            journal.pragma_i64("application_id").unwrap(),
            i64::from(APPLICATION_ID)
        );
        assert_eq!(
            journal.pragma_i64("user_version").unwrap(),
            i64::from(SCHEMA_VERSION)
        );
        assert_eq!(journal.pragma_i64("auto_vacuum").unwrap(), 2, "incremental");
        let mode: String = journal
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(journal.clock_offset("boot-a").unwrap(), None);
        journal.set_clock_offset("boot-a", 42, T0).unwrap();
        journal.set_clock_offset("boot-a", 43, T0).unwrap();
        assert_eq!(journal.clock_offset("boot-a").unwrap(), Some(43));
        drop(journal);
        // Reopening for recording and for reading both work.
        Journal::create_or_open(&path).unwrap();
        Journal::open_read_only(&path).unwrap();
    }

    #[test]
    fn a_second_recorder_is_refused() {
        let dir = TempDir::new();
        let path = dir.path("journal");
        let _first = Journal::create_or_open(&path).unwrap();
        let second = Journal::create_or_open(&path).err().unwrap();
        assert!(matches!(second, JournalError::Locked(_)), "{second}");
        // Readers are welcome.
        Journal::open_read_only(&path).unwrap();
    }

    #[test]
    fn filters_select_by_target_sender_signal_and_time() {
        let dir = TempDir::new();
        let path = dir.path("journal");
        let mut journal = Journal::create_or_open(&path).unwrap();
        let a = proc_ref(100, 1000);
        let b = proc_ref(200, 2000);
        let mut b_row = signal(T0 + 2 * SECOND, 9, b.clone(), 11);
        b_row.target_comm = Some("other".to_owned());
        journal
            .insert_batch(&[
                signal(T0 + SECOND, 15, a.clone(), 10),
                b_row,
                signal(T0 + 3 * SECOND, 10, a.clone(), 11),
                exit(T0 + 4 * SECOND, a.clone(), None),
            ])
            .unwrap();
        let reader = Journal::open_read_only(&path).unwrap();
        let q = |filter: Filter| events(&reader.query(&filter).unwrap());
        // No target named: signals only.
        assert_eq!(
            q(Filter::default()),
            [T0 + SECOND, T0 + 2 * SECOND, T0 + 3 * SECOND]
        );
        let by_pid = Filter {
            target_pid: Some(100),
            ..Filter::default()
        };
        assert_eq!(q(by_pid), [T0 + SECOND, T0 + 3 * SECOND, T0 + 4 * SECOND]);
        let by_comm = Filter {
            target_comm: Some("other".into()),
            ..Filter::default()
        };
        assert_eq!(q(by_comm), [T0 + 2 * SECOND]);
        let by_sender = Filter {
            sender_pid: Some(11),
            ..Filter::default()
        };
        assert_eq!(q(by_sender), [T0 + 2 * SECOND, T0 + 3 * SECOND]);
        let by_signal = Filter {
            signo: Some(15),
            ..Filter::default()
        };
        assert_eq!(q(by_signal), [T0 + SECOND]);
        let window = Filter {
            since_ns: Some(T0 + 2 * SECOND),
            until_ns: Some(T0 + 3 * SECOND),
            ..Filter::default()
        };
        assert_eq!(q(window), [T0 + 2 * SECOND, T0 + 3 * SECOND]);
        let nothing = Filter {
            target_pid: Some(100),
            sender_pid: Some(99),
            ..Filter::default()
        };
        assert!(q(nothing).is_empty());
        // The stored JSON and text come back as they went in.
        let all = reader.query(&Filter::default()).unwrap();
        let Entry::Event(first) = &all[0] else {
            panic!("{all:?}")
        };
        assert_eq!(first.kind, Kind::Signal);
        assert_eq!(first.text, format!("signal 15 at {}\n", T0 + SECOND));
        let json: serde_json::Value = serde_json::from_str(&first.json).unwrap();
        assert_eq!(json["signo"], 15);
    }

    #[test]
    fn a_reused_pid_is_two_incarnations() {
        let dir = TempDir::new();
        let path = dir.path("journal");
        let mut journal = Journal::create_or_open(&path).unwrap();
        let first = proc_ref(4242, 1000);
        let second = proc_ref(4242, 9000);
        journal
            .insert_batch(&[
                signal(T0 + SECOND, 15, first.clone(), 10),
                exit(T0 + 2 * SECOND, first.clone(), Some(15)),
                signal(T0 + 10 * SECOND, 1, second.clone(), 10),
                signal(T0 + 11 * SECOND, 9, second.clone(), 10),
            ])
            .unwrap();
        let filter = Filter {
            target_pid: Some(4242),
            ..Filter::default()
        };
        let found = journal.incarnations(&filter).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].start_ticks, Some(1000));
        assert_eq!(found[0].start, first.start);
        assert_eq!((found[0].signals, found[0].events), (1, 2));
        assert_eq!(found[0].exit_ns, Some(T0 + 2 * SECOND));
        assert_eq!(found[1].start_ticks, Some(9000));
        assert_eq!((found[1].signals, found[1].events), (2, 2));
        assert_eq!(found[1].exit_ns, None);
        let mut times = Vec::new();
        journal
            .for_each(&filter, Some(&found[1]), |entry| {
                if let Entry::Event(ev) = entry {
                    times.push(ev.time_ns);
                }
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(times, [T0 + 10 * SECOND, T0 + 11 * SECOND]);
        // The same pid and ticks in another boot is another process.
        let mut other_boot = signal(T0 + 20 * SECOND, 2, first.clone(), 10);
        other_boot.boot_id = "boot-b".to_owned();
        journal.insert_batch(&[other_boot]).unwrap();
        assert_eq!(journal.incarnations(&filter).unwrap().len(), 3);
    }

    #[test]
    fn a_row_of_repeats_counts_as_all_of_them() {
        let dir = TempDir::new();
        let path = dir.path("journal");
        let mut journal = Journal::create_or_open(&path).unwrap();
        let target = proc_ref(4242, 1000);
        let mut repeats = signal(T0 + SECOND, 10, target.clone(), 10);
        repeats.count = 5000;
        repeats.last_ns = T0 + 2 * SECOND;
        journal
            .insert_batch(&[repeats, signal(T0 + 3 * SECOND, 15, target, 10)])
            .unwrap();
        let filter = Filter {
            target_pid: Some(4242),
            ..Filter::default()
        };
        let found = journal.incarnations(&filter).unwrap();
        assert_eq!((found[0].signals, found[0].events), (5001, 5001));
        assert_eq!(
            (found[0].first_ns, found[0].last_ns),
            (T0 + SECOND, T0 + 3 * SECOND)
        );
        let stored: Vec<(u64, i64, i64)> = journal
            .query(&filter)
            .unwrap()
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Event(ev) => Some((ev.count, ev.time_ns, ev.last_ns)),
                Entry::Gap(_) => None,
            })
            .collect();
        assert_eq!(
            stored,
            [
                (5000, T0 + SECOND, T0 + 2 * SECOND),
                (1, T0 + 3 * SECOND, T0 + 3 * SECOND)
            ]
        );
    }

    #[test]
    fn gaps_come_in_time_order_where_they_overlap() {
        let dir = TempDir::new();
        let path = dir.path("journal");
        let mut journal = Journal::create_or_open(&path).unwrap();
        let a = proc_ref(100, 1000);
        journal
            .insert_batch(&[
                signal(T0 + SECOND, 15, a.clone(), 10),
                signal(T0 + 3 * SECOND, 15, a.clone(), 10),
                exit(T0 + 5 * SECOND, a.clone(), Some(15)),
            ])
            .unwrap();
        journal.add_gap(T0 + 2 * SECOND, 7, "ring_buffer").unwrap();
        journal.add_gap(T0 + 9 * SECOND, 3, "queue").unwrap();
        let kinds = |entries: &[Entry]| {
            entries
                .iter()
                .map(|e| match e {
                    Entry::Event(ev) => {
                        format!("{}@{}", ev.kind.as_str(), (ev.time_ns - T0) / SECOND)
                    }
                    Entry::Gap(g) => format!("gap{}@{}", g.count, (g.time_ns - T0) / SECOND),
                })
                .collect::<Vec<_>>()
        };
        let all = journal.query(&Filter::default()).unwrap();
        assert_eq!(kinds(&all), ["signal@1", "gap7@2", "signal@3", "gap3@9"]);
        let late = Filter {
            since_ns: Some(T0 + 4 * SECOND),
            ..Filter::default()
        };
        assert_eq!(kinds(&journal.query(&late).unwrap()), ["gap3@9"]);
        let early = Filter {
            until_ns: Some(T0 + 1500 * SECOND / 1000),
            ..Filter::default()
        };
        assert_eq!(kinds(&journal.query(&early).unwrap()), ["signal@1"]);
        // For one process: only the gaps during its life (the second one came after its exit).
        let filter = Filter {
            target_pid: Some(100),
            ..Filter::default()
        };
        let process = journal.incarnations(&filter).unwrap().remove(0);
        let mut seen = Vec::new();
        journal
            .for_each(&filter, Some(&process), |entry| {
                seen.push(entry);
                Ok::<(), ()>(())
            })
            .unwrap();
        assert_eq!(kinds(&seen), ["signal@1", "gap7@2", "signal@3", "exit@5"]);
    }

    fn big_row(i: i64) -> Row {
        let mut row = signal(T0 + i * SECOND, 15, proc_ref(1000 + (i % 50) as u32, 7), 10);
        row.json = format!(
            "{{\"event\":\"signal\",\"n\":{i},\"pad\":\"{}\"}}",
            "x".repeat(2000)
        );
        row.text = format!("{i}\n{}\n", "y".repeat(1000));
        row
    }

    #[test]
    fn retention_by_age_deletes_the_oldest() {
        let dir = TempDir::new();
        let path = dir.path("journal");
        let mut journal = Journal::create_or_open(&path).unwrap();
        let rows: Vec<Row> = (0..100).map(big_row).collect();
        journal.insert_batch(&rows).unwrap();
        journal.add_gap(T0 + 10 * SECOND, 1, "queue").unwrap();
        journal.add_gap(T0 + 90 * SECOND, 1, "queue").unwrap();
        // At T0 + 100 s, keep 30 s: events at 70..=99 s stay.
        let trim = journal
            .enforce_limits(u64::MAX, Duration::from_secs(30), T0 + 100 * SECOND)
            .unwrap();
        assert_eq!(trim.deleted_events, 70);
        assert_eq!(trim.deleted_gaps, 1);
        let left = events(&journal.query(&Filter::default()).unwrap());
        assert_eq!(left.first(), Some(&(T0 + 70 * SECOND)));
        assert_eq!(left.len(), 30);
    }

    #[test]
    fn retention_by_size_deletes_the_oldest_and_shrinks_the_file() {
        let dir = TempDir::new();
        let path = dir.path("journal");
        let mut journal = Journal::create_or_open(&path).unwrap();
        let max = 1024 * 1024;
        journal.set_budget(max).unwrap();
        for batch in 0..10 {
            let rows: Vec<Row> = (0..200).map(|i| big_row(batch * 200 + i)).collect();
            journal.insert_batch(&rows).unwrap();
        }
        journal.checkpoint().unwrap();
        let before = journal.size_on_disk();
        assert!(before > 4 * max, "{before} bytes written");
        let trim = journal
            .enforce_limits(max, Duration::from_secs(u64::MAX / 4), T0 + 3000 * SECOND)
            .unwrap();
        assert!(trim.deleted_events > 1500, "{trim:?}");
        assert_eq!(trim.bytes_before, before);
        assert!(trim.bytes_after <= max, "{trim:?}");
        assert_eq!(trim.bytes_after, journal.size_on_disk());
        assert!(file_len(&path) <= max, "the database file itself shrank");
        let left = events(&journal.query(&Filter::default()).unwrap());
        assert!(!left.is_empty());
        // The newest survive, contiguous up to the last one.
        assert_eq!(left.last(), Some(&(T0 + 1999 * SECOND)));
        let first = (left[0] - T0) / SECOND;
        assert_eq!(left.len() as i64, 2000 - first, "only the oldest went");
        // Within budget: nothing more to do.
        let again = journal
            .enforce_limits(max, Duration::from_secs(u64::MAX / 4), T0 + 3000 * SECOND)
            .unwrap();
        assert_eq!(again.deleted_events, 0);
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let dir = TempDir::new();
        // Missing.
        let missing = Journal::open_read_only(&dir.path("nothing")).err().unwrap();
        assert!(matches!(missing, JournalError::Missing(_)), "{missing}");
        // A directory.
        let err = Journal::open_read_only(&dir.0).err().unwrap();
        assert!(err.to_string().contains("is a directory"), "{err}");
        // Random bytes.
        let random = dir.path("random");
        let bytes: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        fs::write(&random, &bytes).unwrap();
        let err = Journal::open_read_only(&random).err().unwrap();
        assert!(
            err.to_string().contains("is not an SQLite database"),
            "{err}"
        );
        // An empty file.
        let empty = dir.path("empty");
        fs::write(&empty, b"").unwrap();
        let err = Journal::open_read_only(&empty).err().unwrap();
        assert!(matches!(err, JournalError::Empty(_)), "{err}");
        // Another program's SQLite database, for reading and for recording.
        let foreign = dir.path("foreign.db");
        let conn = Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(conn);
        fs::set_permissions(&foreign, fs::Permissions::from_mode(0o600)).unwrap();
        let err = Journal::open_read_only(&foreign).err().unwrap();
        assert!(err.to_string().contains("another program"), "{err}");
        let err = Journal::create_or_open(&foreign).err().unwrap();
        assert!(err.to_string().contains("another program"), "{err}");
        // A journal from a newer and an older sigwho.
        for (version, word) in [(SCHEMA_VERSION + 1, "newer"), (0, "older")] {
            let path = dir.path(&format!("v{version}"));
            Journal::create_or_open(&path).unwrap();
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!("PRAGMA user_version = {version}"))
                .unwrap();
            drop(conn);
            let err = Journal::open_read_only(&path).err().unwrap();
            assert!(err.to_string().contains(word), "{err}");
            let err = Journal::create_or_open(&path).err().unwrap();
            assert!(err.to_string().contains(word), "{err}");
        }
        // A truncated journal.
        let whole = dir.path("whole");
        let mut journal = Journal::create_or_open(&whole).unwrap();
        journal
            .insert_batch(&(0..50).map(big_row).collect::<Vec<_>>())
            .unwrap();
        drop(journal);
        assert_eq!(
            file_len(&wal_path(&whole)),
            0,
            "closing checkpointed the log"
        );
        let data = fs::read(&whole).unwrap();
        for cut in [50, 4096 + 100, data.len() / 2 / 4096 * 4096] {
            let truncated = dir.path(&format!("truncated-{cut}"));
            fs::write(&truncated, &data[..cut]).unwrap();
            let err = Journal::open_read_only(&truncated).err().unwrap();
            assert!(err.to_string().contains("truncated"), "{cut}: {err}");
        }
        // Every message is one line.
        for err in [missing, err] {
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn symlinks_are_refused() {
        let dir = TempDir::new();
        let real = dir.path("real");
        Journal::create_or_open(&real).unwrap();
        let link = dir.path("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = Journal::create_or_open(&link).err().unwrap();
        assert!(matches!(err, JournalError::Symlink(_)), "{err}");
        // A link to a directory where the journal would go.
        let real_dir = dir.path("real-dir");
        DirBuilder::new().mode(0o700).create(&real_dir).unwrap();
        let dir_link = dir.path("dir-link");
        std::os::unix::fs::symlink(&real_dir, &dir_link).unwrap();
        let err = Journal::create_or_open(&dir_link.join("journal"))
            .err()
            .unwrap();
        assert!(matches!(err, JournalError::Symlink(_)), "{err}");
        assert!(!real_dir.join("journal").exists());
        // A directory others can write.
        let open_dir = dir.path("open");
        DirBuilder::new().mode(0o777).create(&open_dir).unwrap();
        fs::set_permissions(&open_dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = Journal::create_or_open(&open_dir.join("journal"))
            .err()
            .unwrap();
        assert!(matches!(err, JournalError::UnsafeDirectory { .. }), "{err}");
    }

    #[test]
    fn an_explicit_path_beats_the_environment_which_beats_the_default() {
        let env = || Some(std::ffi::OsString::from("/e/j"));
        assert_eq!(
            resolve_with(Some(Path::new("/x/y")), env()),
            Path::new("/x/y")
        );
        // Even an explicit path equal to the built-in default wins over the environment.
        assert_eq!(
            resolve_with(Some(Path::new(DEFAULT_JOURNAL)), env()),
            Path::new(DEFAULT_JOURNAL)
        );
        assert_eq!(resolve_with(None, env()), Path::new("/e/j"));
        assert_eq!(
            resolve_with(None, Some("".into())),
            Path::new(DEFAULT_JOURNAL)
        );
        assert_eq!(resolve_with(None, None), Path::new(DEFAULT_JOURNAL));
    }
}
