//! Personal data at the command side: sealed before any event is appended, opened
//! after any stream is loaded (projections::pii holds the cipher and the keys), and
//! erasure (docs/adr/0024-crypto-shredding.md).

use cqrs_es::{Aggregate, EventEnvelope};
use domain::pii::Personal;
pub use projections::pii::{keys, migrate, PiiError};
use projections::pii::{keys::KeyState, Keys};

use crate::db::Database;

/// Seals the personal data in `events` of `stream` with the stream's key, made now if
/// it has none; once the customer is erased, removes it instead.
pub async fn seal<E: Personal>(
    db: &Database,
    stream: &str,
    events: &mut [E],
) -> Result<(), PiiError> {
    if !events.iter_mut().any(|e| e.has_personal_data()) {
        return Ok(());
    }
    match keys::get_or_create(db, stream).await? {
        KeyState::Key(key) => {
            for e in events {
                projections::pii::seal(&key, stream, e);
            }
        }
        KeyState::Erased => {
            for e in events {
                e.strip_personal_data();
            }
        }
    }
    Ok(())
}

/// [`seal`] for envelopes of any streams.
pub async fn seal_envelopes<A>(
    db: &Database,
    envelopes: &mut [EventEnvelope<A>],
) -> Result<(), PiiError>
where
    A: Aggregate,
    A::Event: Personal,
{
    for e in envelopes {
        seal(
            db,
            &e.aggregate_id.clone(),
            std::slice::from_mut(&mut e.payload),
        )
        .await?;
    }
    Ok(())
}

/// Opens the sealed personal data of `envelopes` (of any streams), as every reader of
/// the log does ([`Keys::open`]).
pub async fn open_envelopes<A>(
    db: &Database,
    envelopes: &mut [EventEnvelope<A>],
) -> Result<(), PiiError>
where
    A: Aggregate,
    A::Event: Personal,
{
    let mut sealed: Vec<String> = Vec::new();
    for e in envelopes.iter_mut() {
        if has_sealed(&mut e.payload) {
            sealed.push(e.aggregate_id.clone());
        }
    }
    if sealed.is_empty() {
        return Ok(());
    }
    sealed.dedup();
    let keys = keys::fetch(db, &sealed).await?;
    for e in envelopes {
        keys.open(&e.aggregate_id, &mut e.payload)?;
    }
    Ok(())
}

/// Opens one event of `stream` read outside the command side (the timeline, the as-of
/// portrait).
pub async fn open_events<E: Personal>(
    db: &Database,
    stream: &str,
    events: &mut [E],
) -> Result<(), PiiError> {
    let any_sealed = events.iter_mut().any(has_sealed);
    let keys = if any_sealed {
        keys::fetch(db, &[stream.to_string()]).await?
    } else {
        Keys::none()
    };
    for e in events {
        keys.open(stream, e)?;
    }
    Ok(())
}

fn has_sealed(event: &mut impl Personal) -> bool {
    event
        .personal_fields()
        .iter()
        .any(|f| f.value().is_some_and(projections::pii::is_sealed))
}

/// Erases a customer's personal data (PIPL), in an order that a crash at any point
/// leaves safe and a retry finishes:
/// 1. what they are known by now is noted, to find it in stored answers;
/// 2. their key is destroyed: everything sealed with it is unreadable from here on;
/// 3. what their events hold in the clear (written before sealing) is removed;
/// 4. `CustomerErased` is recorded (the read models forget them as they apply it);
/// 5. stored mutation answers that show them, and WeCom calls about them, are cleared.
pub async fn erase_customer(
    engine: &crate::app::Engine,
    customer_id: &str,
    reason: String,
    command: (chrono::DateTime<chrono::Utc>, &crate::commands::CommandMeta),
) -> Result<crate::commands::Outcome, crate::commands::CommandError<domain::customer::CustomerError>>
{
    use crate::commands::CommandError;
    let (at, meta) = command;
    let stream = domain::stamp::stream_id(&meta.tenant, customer_id);
    let store = |e: PiiError| CommandError::Store(e.to_string());
    let (customer, _) = engine.customers.load(&stream).await?;
    if !customer.is_known() {
        return Err(CommandError::Rejected(
            domain::customer::CustomerError::UnknownCustomer,
        ));
    }
    let mut known_by: Vec<String> = customer
        .profile()
        .map(|p| p.name.clone())
        .into_iter()
        .chain(customer.phone().map(str::to_string))
        .chain(
            customer
                .relations()
                .flat_map(|(_, r)| [r.remark.clone(), r.description.clone()]),
        )
        .filter(|s| s.chars().count() >= 2)
        .collect();
    known_by.sort_unstable();
    known_by.dedup();
    keys::destroy(&engine.db, &stream).await.map_err(store)?;
    migrate::scrub_stream(&engine.db, &stream)
        .await
        .map_err(store)?;
    let outcome = engine
        .customers
        .execute(
            &stream,
            domain::Stamped::new(at, domain::customer::CustomerCommand::Erase { reason }),
            meta,
        )
        .await?;
    forget_elsewhere(&engine.db, meta.tenant.as_str(), customer_id, &known_by)
        .await
        .map_err(|e| CommandError::Store(e.to_string()))?;
    Ok(outcome)
}

/// Clears what other tables hold of an erased customer: stored answers of mutations
/// that show what they were known by, and the bodies of WeCom calls about them (a
/// call not yet sent is not sent: it carried their remark).
async fn forget_elsewhere(
    db: &Database,
    tenant: &str,
    customer_id: &str,
    known_by: &[String],
) -> Result<(), sqlx::Error> {
    const FIND_PG: &str = "strpos(response, $2) > 0";
    const FIND_LITE: &str = "instr(response, $2) > 0";
    const CALLS: &str = "UPDATE wecom_outbox SET request = '{}', \
         status = CASE WHEN status IN ('pending', 'sending') THEN 'failed' ELSE status END, \
         error = CASE WHEN status IN ('pending', 'sending') THEN 'customer erased' ELSE error END \
         WHERE tenant_id = $1 AND subject = $2";
    let find = match db {
        Database::Postgres(_) => FIND_PG,
        Database::Sqlite(_) => FIND_LITE,
    };
    let answers = format!("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND {find}");
    projections::on_pool!(db, |pool| {
        let mut tx = pool.begin().await?;
        for needle in known_by {
            sqlx::query(&answers)
                .bind(tenant)
                .bind(needle)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(CALLS)
            .bind(tenant)
            .bind(customer_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    })
}
