//! Sealing what was written before sealing existed, and scrubbing one erased stream.
//! Both rewrite payloads in place: the only rewrite of the log there is, because the
//! law requires that the data be gone, not merely unreachable.

use domain::customer::CustomerEvent;
use domain::pii::Personal;

use super::keys::get_or_create_many;
use super::{is_sealed, seal, PiiError};
use crate::db::Database;

/// What one run of [`seal_plaintext`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// Customer events read.
    pub scanned: u64,
    /// Events whose personal data was sealed (or, for erased customers, removed).
    pub rewritten: u64,
    pub chunks: u64,
}

type EventRow = (String, i64, String);

const CHUNK_PG: &str = "SELECT aggregate_id, sequence, payload::text FROM events \
     WHERE aggregate_type = 'Customer' AND (aggregate_id, sequence) > ($1, $2) \
     ORDER BY aggregate_id, sequence LIMIT $3";
const CHUNK_LITE: &str = "SELECT aggregate_id, sequence, payload FROM events \
     WHERE aggregate_type = 'Customer' AND (aggregate_id, sequence) > ($1, $2) \
     ORDER BY aggregate_id, sequence LIMIT $3";
const STREAM: &str = "SELECT aggregate_id, sequence, CAST(payload AS TEXT) FROM events \
     WHERE aggregate_type = 'Customer' AND aggregate_id = $1 ORDER BY sequence";
const UPDATE_PG: &str = "UPDATE events SET payload = $1::json \
     WHERE aggregate_type = 'Customer' AND aggregate_id = $2 AND sequence = $3";
const UPDATE_LITE: &str = "UPDATE events SET payload = $1 \
     WHERE aggregate_type = 'Customer' AND aggregate_id = $2 AND sequence = $3";

/// Seals every customer event that still holds personal data in the clear, `chunk`
/// events at a time in stream order (stopping after `stop_after` chunks, if given).
/// Each chunk commits with the place it reached, so a run that stops resumes there; a
/// finished run starts again from the top, finding nothing to do (sealed fields are
/// left as they are).
pub async fn seal_plaintext(
    db: &Database,
    chunk: i64,
    stop_after: Option<u64>,
) -> Result<Sealed, PiiError> {
    let mut done = Sealed::default();
    let (mut stream, mut sequence) = cursor(db).await?;
    loop {
        let rows: Vec<EventRow> = match db {
            Database::Postgres(pool) => {
                sqlx::query_as(CHUNK_PG)
                    .bind(&stream)
                    .bind(sequence)
                    .bind(chunk)
                    .fetch_all(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(CHUNK_LITE)
                    .bind(&stream)
                    .bind(sequence)
                    .bind(chunk)
                    .fetch_all(pool)
                    .await?
            }
        };
        if stop_after.is_some_and(|n| done.chunks >= n) {
            return Ok(done);
        }
        let Some(last) = rows.last() else {
            save_cursor(db, None).await?;
            return Ok(done);
        };
        let (last_stream, last_sequence) = (last.0.clone(), last.1);
        done.scanned += rows.len() as u64;
        done.chunks += 1;
        let rewrites = seal_rows(db, rows).await?;
        done.rewritten += rewrites.len() as u64;
        write(db, &rewrites, Some((&last_stream, last_sequence))).await?;
        (stream, sequence) = (last_stream, last_sequence);
    }
}

/// The rewrites that seal the plaintext personal data of `rows` (stream, sequence,
/// payload): (payload, stream, sequence) of the rows that change.
async fn seal_rows(
    db: &Database,
    rows: Vec<EventRow>,
) -> Result<Vec<(String, String, i64)>, PiiError> {
    let mut rows: Vec<(String, i64, String)> =
        rows.into_iter().filter(|r| needs_sealing(&r.2)).collect();
    let mut changed = Vec::with_capacity(rows.len());
    {
        let mut payloads: Vec<(&str, &mut String)> =
            rows.iter_mut().map(|(id, _, p)| (id.as_str(), p)).collect();
        let rewritten = seal_payloads(db, &mut payloads).await?;
        changed.extend(rewritten);
    }
    Ok(rows
        .into_iter()
        .zip(changed)
        .filter(|(_, changed)| *changed)
        .map(|((id, seq, payload), _)| (payload, id, seq))
        .collect())
}

/// Seals, in place, the plaintext personal data in customer event payloads of the
/// given streams, with their keys (made now where missing; removed for erased
/// streams). Returns, per payload, whether it changed. The bulk writers (seeding, this
/// migration) call it per batch: two statements for the keys, however many streams.
pub async fn seal_payloads(
    db: &Database,
    payloads: &mut [(&str, &mut String)],
) -> Result<Vec<bool>, PiiError> {
    let mut streams: Vec<String> = payloads
        .iter()
        .filter(|(_, p)| needs_sealing(p))
        .map(|(s, _)| s.to_string())
        .collect();
    streams.sort_unstable();
    streams.dedup();
    let keys = get_or_create_many(db, &streams).await?;
    let mut changed = Vec::with_capacity(payloads.len());
    for (stream, payload) in payloads.iter_mut() {
        let rewritten = if needs_sealing(payload) {
            sealed_payload(payload, stream, keys.key(stream))?
        } else {
            None
        };
        changed.push(rewritten.is_some());
        if let Some(p) = rewritten {
            **payload = p;
        }
    }
    Ok(changed)
}

/// Removes, for good, whatever an erased customer's own events still hold of them in
/// the clear (written before sealing, and not yet sealed).
pub async fn scrub_stream(db: &Database, stream: &str) -> Result<u64, PiiError> {
    let rows: Vec<EventRow> = crate::on_pool!(db, |pool| {
        sqlx::query_as(STREAM).bind(stream).fetch_all(pool).await
    })?;
    let mut rewrites = Vec::new();
    for (id, seq, payload) in rows {
        if needs_sealing(&payload) {
            if let Some(rewritten) = sealed_payload(&payload, &id, None)? {
                rewrites.push((rewritten, id, seq));
            }
        }
    }
    write(db, &rewrites, None).await?;
    Ok(rewrites.len() as u64)
}

/// A cheap look before parsing: only these kinds carry personal data.
fn needs_sealing(payload: &str) -> bool {
    payload.contains("\"ProfileUpdated\"") || payload.contains("\"RemarkChanged\"")
}

/// The payload with its plaintext personal fields sealed with `key`, or removed when
/// there is none; `None` when nothing was in the clear.
fn sealed_payload(
    payload: &str,
    stream: &str,
    key: Option<&super::DataKey>,
) -> Result<Option<String>, PiiError> {
    let mut event: CustomerEvent =
        serde_json::from_str(payload).map_err(|_| PiiError::Tampered {
            stream: stream.to_string(),
        })?;
    let plain = event
        .personal_fields()
        .iter()
        .any(|f| f.value().is_some_and(|v| !is_sealed(v)));
    if !plain {
        return Ok(None);
    }
    match key {
        Some(key) => seal(key, stream, &mut event),
        None => {
            for mut f in event.personal_fields() {
                if f.value().is_some_and(|v| !is_sealed(v)) {
                    f.clear();
                }
            }
        }
    }
    Ok(Some(
        serde_json::to_string(&event).expect("events serialize"),
    ))
}

async fn write(
    db: &Database,
    rewrites: &[(String, String, i64)],
    reached: Option<(&str, i64)>,
) -> Result<(), PiiError> {
    macro_rules! run {
        ($pool:expr, $update:expr) => {{
            let mut tx = $pool.begin().await?;
            for (payload, id, seq) in rewrites {
                sqlx::query($update)
                    .bind(payload)
                    .bind(id)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some((stream, sequence)) = reached {
                sqlx::query(SAVE_CURSOR)
                    .bind(stream)
                    .bind(sequence)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }};
    }
    match db {
        Database::Postgres(pool) => run!(pool, UPDATE_PG),
        Database::Sqlite(pool) => run!(pool, UPDATE_LITE),
    }
    Ok(())
}

const SAVE_CURSOR: &str = "INSERT INTO pii_sealing (id, stream_id, sequence) VALUES (1, $1, $2) \
     ON CONFLICT (id) DO UPDATE SET stream_id = excluded.stream_id, sequence = excluded.sequence";

async fn cursor(db: &Database) -> Result<(String, i64), PiiError> {
    let row: Option<(String, i64)> = crate::on_pool!(db, |pool| {
        sqlx::query_as("SELECT stream_id, sequence FROM pii_sealing WHERE id = 1")
            .fetch_optional(pool)
            .await
    })?;
    Ok(row.unwrap_or_else(|| (String::new(), -1)))
}

/// Where the next run starts: `None` for the top.
async fn save_cursor(db: &Database, at: Option<(&str, i64)>) -> Result<(), PiiError> {
    let (stream, sequence) = at.unwrap_or(("", -1));
    crate::on_pool!(db, |pool| {
        sqlx::query(SAVE_CURSOR)
            .bind(stream)
            .bind(sequence)
            .execute(pool)
            .await
            .map(|_| ())
    })?;
    Ok(())
}
