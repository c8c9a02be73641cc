//! The database's tables and ids: created in an empty file, checked in every other.

use std::{io, time::Duration};

use super::{Journal, JournalError};

/// `PRAGMA application_id` of a sigwho journal ("`SgWh`").
pub const APPLICATION_ID: i32 = 0x5367_5768;
/// `PRAGMA user_version`: the journal format this sigwho writes and reads.
pub const SCHEMA_VERSION: i32 = 2;

/// How long a statement waits for another connection's lock before failing. Readers
/// and the recorder do not block each other in WAL mode; this covers checkpoints.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) const SCHEMA: &str = "
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

impl Journal {
    pub(super) fn configure(&self, writer: bool) -> Result<(), JournalError> {
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

    /// Creates the schema in an empty database, or checks an existing one.
    pub(super) fn initialize(&mut self) -> Result<(), JournalError> {
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
    pub(super) fn validate(&self) -> Result<(), JournalError> {
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
}
