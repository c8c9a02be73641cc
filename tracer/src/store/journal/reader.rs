//! Answering queries: the incarnations of a pid, matching events and overlapping gaps in
//! time order.

use rusqlite::{params_from_iter, types::Value};

use super::{
    Entry, Filter, Gap, Incarnation, Journal, JournalError, Kind, StoredEvent, to_i64, to_u64,
};

impl Journal {
    /// The processes that had `filter.target_pid` (every pid when none is given) and
    /// match the rest of the filter, oldest first.
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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
    ///
    /// # Errors
    ///
    /// [`QueryError::Journal`] when SQLite fails, [`QueryError::Output`] with `each`'s
    /// error.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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
    ///
    /// # Errors
    ///
    /// When SQLite fails.
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

pub(super) fn read_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
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
pub(super) fn where_clause(filter: &Filter, within: Option<&Incarnation>) -> (String, Vec<Value>) {
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
