//! `scrm seed`: generates a fixture tenant and writes it into the configured store.
//!
//! PostgreSQL gets a bulk path: COPY in chunks, each its own transaction (a single
//! huge transaction would pause every catch-up reader, ADR 2). The rows are the same
//! seven columns the command path writes, with the same metadata; the database fills
//! in position, txid, tenant and recorded_at exactly as for a live append. SQLite gets
//! multi-row INSERTs in large transactions.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use domain::stamp::{stream_id, TAG_LIBRARY_LOCAL_ID};
use domain::tags::TagLibrary;
use domain::values::TenantId;
use fixtures::{EventRow, Options, Params, Summary};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use engine::commands::CommandService;
use engine::db::Database;

/// Rows per COPY statement (and per transaction) on PostgreSQL.
pub(crate) const COPY_CHUNK_ROWS: usize = 50_000;
/// Rows per INSERT statement and per transaction on SQLite.
const SQLITE_ROWS_PER_INSERT: usize = 500;
const SQLITE_ROWS_PER_TX: usize = 20_000;
/// Rows handed from the generator thread to the writer at a time.
const BATCH_ROWS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("tenant {0} already holds data; pass --append to add this seed's data beside it")]
    TenantExists(TenantId),
    #[error("tenant {tenant} already holds the data of seed {seed}; choose another --seed")]
    SeedAlreadyLoaded { tenant: TenantId, seed: u64 },
    #[error("database error while seeding")]
    Database(#[from] sqlx::Error),
    #[error("reading the tenant's tag library: {0}")]
    Library(String),
    #[error("the generator stopped unexpectedly")]
    Generator,
    #[error("sealing personal data: {0}")]
    Pii(#[from] projections::pii::PiiError),
}

/// What a seed run did.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub summary: Summary,
    pub rows: u64,
    pub elapsed: Duration,
}

impl SeedReport {
    pub fn events_per_second(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A bar on a terminal, a log line every few seconds otherwise.
    Auto,
    Silent,
}

async fn stream_exists(db: &Database, aggregate_type: &str, id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = match db {
        Database::Postgres(pool) => sqlx::query_scalar(
            "SELECT 1::bigint FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 LIMIT 1",
        )
        .bind(aggregate_type)
        .bind(id)
        .fetch_optional(pool)
        .await?,
        Database::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT 1 FROM events WHERE aggregate_type = ?1 AND aggregate_id = ?2 LIMIT 1",
            )
            .bind(aggregate_type)
            .bind(id)
            .fetch_optional(pool)
            .await?
        }
    };
    Ok(found.is_some())
}

async fn register_tenant(db: &Database, params: &Params) -> Result<(), sqlx::Error> {
    let new = engine::tenants::NewTenant {
        tenant: params.tenant.clone(),
        name: params.tenant.to_string(),
        time_zone: params.time_zone,
        group_capacity: params.group_capacity,
        locale: engine::tenants::ZH_CN,
    };
    engine::tenants::create(db, &new).await.map(drop)
}

/// Decides how a run fits the tenant's existing data: a fresh tenant, or a second seed
/// beside the first (prefixed ids, the existing tag library continued).
async fn plan_run(db: &Database, params: &Params, append: bool) -> Result<Options, SeedError> {
    let library_id = stream_id(&params.tenant, TAG_LIBRARY_LOCAL_ID);
    if !stream_exists(db, "TagLibrary", &library_id).await? {
        return Ok(Options::default());
    }
    if !append {
        return Err(SeedError::TenantExists(params.tenant.clone()));
    }
    let id_prefix = format!("s{}-", params.seed);
    let names = fixtures::ids::Names::new(&params.tenant, params.seed, &id_prefix);
    if stream_exists(db, "Staff", &stream_id(&params.tenant, &names.staff(0, 0))).await? {
        return Err(SeedError::SeedAlreadyLoaded {
            tenant: params.tenant.clone(),
            seed: params.seed,
        });
    }
    let (library, version) = CommandService::<TagLibrary>::new(db)
        .load(&library_id)
        .await
        .map_err(|e| SeedError::Library(e.to_string()))?;
    Ok(Options {
        id_prefix,
        existing_library: Some((library, version)),
    })
}

/// Generates `params` and writes it. Refuses a tenant that already holds data unless
/// `append` is set.
pub async fn seed(
    db: &Database,
    params: Params,
    append: bool,
    progress: Progress,
) -> Result<SeedReport, SeedError> {
    seed_as(db, params, append, progress, Sealing::Sealed).await
}

/// How the seed writes personal data (docs/adr/0024-crypto-shredding.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// Sealed with each customer's key, as the engine writes it.
    Sealed,
    /// In the clear, as events were written before sealing existed: for measuring what
    /// sealing costs and for testing `scrm pii seal`.
    Plaintext,
}

/// [`seed`], writing personal data as `sealing` says.
pub async fn seed_as(
    db: &Database,
    params: Params,
    append: bool,
    progress: Progress,
    sealing: Sealing,
) -> Result<SeedReport, SeedError> {
    let options = plan_run(db, &params, append).await?;
    register_tenant(db, &params).await?;
    let started = Instant::now();

    let (tx, mut rx) = mpsc::channel::<Vec<EventRow>>(8);
    let generator = {
        let params = params.clone();
        tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            let summary = fixtures::generate(&params, options, &mut |emitted| {
                batch.extend(emitted.rows(&params.tenant));
                if batch.len() >= BATCH_ROWS {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS));
                    // A closed channel means the writer failed; it reports why.
                    let _ = tx.blocking_send(full);
                }
            });
            if !batch.is_empty() {
                let _ = tx.blocking_send(batch);
            }
            summary
        })
    };

    let bar = progress_bar(progress, params.customers * 12);
    let mut rows: u64 = 0;
    let mut last_log = Instant::now();
    let mut writer = Writer::new(db);
    while let Some(mut batch) = rx.recv().await {
        rows += batch.len() as u64;
        if sealing == Sealing::Sealed {
            seal(db, &mut batch).await?;
        }
        writer.push(batch).await?;
        bar.set_position(rows);
        if bar.is_hidden()
            && progress == Progress::Auto
            && last_log.elapsed() > Duration::from_secs(5)
        {
            let rate = rows as f64 / started.elapsed().as_secs_f64();
            tracing::info!(rows, rate = rate as u64, "seeding");
            last_log = Instant::now();
        }
    }
    writer.finish().await?;
    let summary = generator.await.map_err(|_| SeedError::Generator)?;
    bar.finish_and_clear();
    Ok(SeedReport {
        summary,
        rows,
        elapsed: started.elapsed(),
    })
}

/// Writes the departure scenario (one guide with a very large book, about to leave)
/// into a tenant of its own, by the same bulk path as [`seed`]. Returns the rows.
pub async fn seed_departure(
    db: &Database,
    scenario: &fixtures::departure::DepartureScenario,
) -> Result<u64, SeedError> {
    seed_departure_as(db, scenario, Sealing::Sealed).await
}

/// [`seed_departure`], writing personal data as `sealing` says (the handover benchmark
/// measures the job on both).
pub async fn seed_departure_as(
    db: &Database,
    scenario: &fixtures::departure::DepartureScenario,
    sealing: Sealing,
) -> Result<u64, SeedError> {
    let library_id = stream_id(&scenario.tenant, TAG_LIBRARY_LOCAL_ID);
    let leaver = stream_id(&scenario.tenant, fixtures::departure::leaver().as_str());
    if stream_exists(db, "TagLibrary", &library_id).await?
        || stream_exists(db, "Staff", &leaver).await?
    {
        return Err(SeedError::TenantExists(scenario.tenant.clone()));
    }
    let mut params = Params::for_scale(fixtures::Scale::Tiny, scenario.tenant.clone(), 0);
    params.group_capacity = domain::rules::DEFAULT_GROUP_CAPACITY;
    register_tenant(db, &params).await?;
    let mut rows = Vec::new();
    fixtures::departure::generate(scenario, &mut |e| rows.extend(e.rows(&scenario.tenant)));
    let count = rows.len() as u64;
    let mut writer = Writer::new(db);
    for chunk in rows.chunks(BATCH_ROWS) {
        let mut batch = chunk.to_vec();
        if sealing == Sealing::Sealed {
            seal(db, &mut batch).await?;
        }
        writer.push(batch).await?;
    }
    writer.finish().await?;
    Ok(count)
}

fn progress_bar(progress: Progress, estimate: u64) -> ProgressBar {
    if progress == Progress::Silent || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(estimate);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} seeding [{elapsed_precise}] {wide_bar} {human_pos} events  {per_sec}  eta {eta}",
        )
        .expect("template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Seals the personal data of a batch's customer events with their keys, made for the
/// whole batch at once (docs/adr/0024-crypto-shredding.md).
async fn seal(db: &Database, batch: &mut [EventRow]) -> Result<(), SeedError> {
    let mut payloads: Vec<(&str, &mut String)> = batch
        .iter_mut()
        .filter(|r| r.aggregate_type == "Customer")
        .map(|r| (r.aggregate_id.as_str(), &mut r.payload))
        .collect();
    projections::pii::migrate::seal_payloads(db, &mut payloads).await?;
    Ok(())
}

/// Buffers rows and writes them in the backend's bulk form.
enum Writer<'a> {
    Postgres {
        pool: &'a sqlx::PgPool,
        buf: Vec<u8>,
        rows: usize,
    },
    Sqlite {
        pool: &'a sqlx::SqlitePool,
        rows: Vec<EventRow>,
    },
}

impl<'a> Writer<'a> {
    fn new(db: &'a Database) -> Self {
        match db {
            Database::Postgres(pool) => Writer::Postgres {
                pool,
                buf: Vec::with_capacity(32 << 20),
                rows: 0,
            },
            Database::Sqlite(pool) => Writer::Sqlite {
                pool,
                rows: Vec::new(),
            },
        }
    }

    async fn push(&mut self, batch: Vec<EventRow>) -> Result<(), sqlx::Error> {
        match self {
            Writer::Postgres { buf, rows, .. } => {
                for row in &batch {
                    copy_text_row(buf, row);
                }
                *rows += batch.len();
                if *rows >= COPY_CHUNK_ROWS {
                    self.flush().await?;
                }
            }
            Writer::Sqlite { rows, .. } => {
                rows.extend(batch);
                if rows.len() >= SQLITE_ROWS_PER_TX {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Writer::Postgres { pool, buf, rows } => {
                if *rows == 0 {
                    return Ok(());
                }
                copy_in(pool, buf).await?;
                buf.clear();
                *rows = 0;
            }
            Writer::Sqlite { pool, rows } => {
                let mut tx = pool.begin().await?;
                for chunk in rows.chunks(SQLITE_ROWS_PER_INSERT) {
                    let mut insert = sqlx::QueryBuilder::new(
                        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
                         event_version, payload, metadata) ",
                    );
                    insert.push_values(chunk, |mut b, row| {
                        b.push_bind(row.aggregate_type)
                            .push_bind(&row.aggregate_id)
                            .push_bind(row.sequence as i64)
                            .push_bind(&row.event_type)
                            .push_bind(&row.event_version)
                            .push_bind(&row.payload)
                            .push_bind(&row.metadata);
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                rows.clear();
            }
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<(), sqlx::Error> {
        self.flush().await
    }
}

/// Sends rows already in COPY text format as one COPY statement (one transaction).
pub(crate) async fn copy_in(pool: &sqlx::PgPool, text: &[u8]) -> Result<(), sqlx::Error> {
    projections::db::copy_in_text(
        pool,
        "COPY events (aggregate_type, aggregate_id, sequence, event_type, \
         event_version, payload, metadata) FROM STDIN",
        text,
    )
    .await
}

/// One row in COPY's text format: tab-separated, with backslash, tab, newline and
/// carriage return escaped.
pub(crate) fn copy_text_row(buf: &mut Vec<u8>, row: &EventRow) {
    let sequence = row.sequence.to_string();
    let fields: [&str; 7] = [
        row.aggregate_type,
        &row.aggregate_id,
        &sequence,
        &row.event_type,
        &row.event_version,
        &row.payload,
        &row.metadata,
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            buf.push(b'\t');
        }
        for &b in field.as_bytes() {
            match b {
                b'\\' => buf.extend_from_slice(b"\\\\"),
                b'\t' => buf.extend_from_slice(b"\\t"),
                b'\n' => buf.extend_from_slice(b"\\n"),
                b'\r' => buf.extend_from_slice(b"\\r"),
                _ => buf.push(b),
            }
        }
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_what_the_text_format_needs() {
        let row = EventRow {
            aggregate_type: "Customer",
            aggregate_id: "acme:wm1".into(),
            sequence: 3,
            event_type: "RemarkChanged".into(),
            event_version: "1.0".into(),
            payload: r#"{"remark":"a\"b\\c"}"#.into(),
            metadata: "{}".into(),
        };
        let mut buf = Vec::new();
        copy_text_row(&mut buf, &row);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "Customer\tacme:wm1\t3\tRemarkChanged\t1.0\t{\"remark\":\"a\\\\\"b\\\\\\\\c\"}\t{}\n"
        );
    }
}
