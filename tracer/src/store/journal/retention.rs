//! Keeping the journal within --max-age and --max-size, and giving space back to the
//! file system.

use std::time::Duration;

use super::files::{file_len, wal_path};
use super::{Journal, JournalError, Trim, to_i64, to_u64};
/// Free space in the database worth giving back to the file system (with an eighth of
/// the size limit, whichever is more).
const FREE_SLACK: u64 = 4 * 1024 * 1024;
/// Rows deleted per statement when trimming, so that no transaction grows large.
const TRIM_CHUNK: i64 = 2000;

impl Journal {
    /// Sizes the write-ahead log for a journal of at most `max_bytes`: checkpoints come
    /// often enough, and a checkpointed log is cut back, so that the log stays a small
    /// part of the budget.
    ///
    /// # Errors
    ///
    /// When SQLite fails.
    pub fn set_budget(&self, max_bytes: u64) -> Result<(), JournalError> {
        let pages = (max_bytes / 4096 / 16).clamp(16, 1000);
        self.conn
            .execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {pages}; PRAGMA journal_size_limit = {};",
                pages * 4096
            ))
            .map_err(|e| self.err(e))
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
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails.
    pub fn checkpoint(&self) -> Result<(), JournalError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| self.err(e))
    }
}
