//! Storing: rows and gaps in one transaction, the recorder's session, the clock offsets
//! of each boot.

use rusqlite::{OptionalExtension, Transaction};

use super::{Gap, Journal, JournalError, Row, SessionUpdate, sql_error, to_i64};

impl Journal {
    /// Starts this recorder's row in `sessions`.
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails; nothing of the batch is stored then.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails; nothing of the batch is stored then.
    pub fn insert_batch(&mut self, rows: &[Row]) -> Result<(), JournalError> {
        self.write(rows, &[], SessionUpdate::default())
    }

    /// Records that `count` events around `time_ns` were not recorded.
    ///
    /// # Errors
    ///
    /// When SQLite fails.
    pub fn add_gap(&mut self, time_ns: i64, count: u64, reason: &str) -> Result<(), JournalError> {
        let gap = Gap {
            time_ns,
            count,
            reason: reason.to_owned(),
        };
        self.write(&[], &[gap], SessionUpdate::default())
    }
}

pub(super) fn insert_rows(tx: &Transaction<'_>, rows: &[Row]) -> rusqlite::Result<()> {
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

pub(super) fn insert_gaps(tx: &Transaction<'_>, gaps: &[Gap]) -> rusqlite::Result<()> {
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
