//! The `customer_keys` table: one wrapped data key per customer stream, created on the
//! first personal data sealed for it, destroyed (the row kept, the key gone) by erasure.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use sqlx::{PgConnection, SqliteConnection};

use super::{keyring, DataKey, Keys, PiiError};
use crate::db::Database;

const FETCH_PG: &str = "SELECT stream_id, wrapped FROM customer_keys \
                        WHERE stream_id IN (SELECT json_array_elements_text($1::json))";
const FETCH_LITE: &str = "SELECT stream_id, wrapped FROM customer_keys \
                          WHERE stream_id IN (SELECT value FROM json_each($1))";
const CREATE_PG: &str = "INSERT INTO customer_keys (stream_id, wrapped) \
     SELECT k ->> 0, k ->> 1 FROM json_array_elements($1::json) AS k \
     ON CONFLICT (stream_id) DO NOTHING";
const CREATE_LITE: &str = "INSERT INTO customer_keys (stream_id, wrapped) \
     SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1) WHERE true \
     ON CONFLICT (stream_id) DO NOTHING";

/// What the table holds for one stream.
#[derive(Debug)]
pub enum KeyState {
    Key(DataKey),
    /// Erased: no key, and none may be made again.
    Erased,
}

macro_rules! fetch_on {
    ($name:ident, $conn:ty, $sql:expr) => {
        /// The keys of `streams`, on a connection of the reader's own.
        pub async fn $name(conn: &mut $conn, streams: &[String]) -> Result<Keys, PiiError> {
            let mut keys = Keys::none();
            if streams.is_empty() {
                return Ok(keys);
            }
            let ring = keyring()?;
            let rows: Vec<(String, Option<String>)> = sqlx::query_as($sql)
                .bind(json(streams))
                .fetch_all(&mut *conn)
                .await?;
            for stream in streams {
                keys.insert(stream.clone(), None);
            }
            for (stream, wrapped) in rows {
                match wrapped {
                    Some(w) => {
                        let key = ring.unwrap(&stream, &decode(&stream, &w)?)?;
                        keys.insert(stream, Some(key));
                    }
                    None => keys.insert_erased(stream),
                }
            }
            Ok(keys)
        }
    };
}

fetch_on!(fetch_pg, PgConnection, FETCH_PG);
fetch_on!(fetch_lite, SqliteConnection, FETCH_LITE);

fn json(streams: &[String]) -> String {
    serde_json::to_string(streams).expect("strings serialize")
}

fn decode(stream: &str, wrapped: &str) -> Result<Vec<u8>, PiiError> {
    STANDARD_NO_PAD
        .decode(wrapped)
        .map_err(|_| PiiError::Tampered {
            stream: stream.to_string(),
        })
}

/// The keys of `streams`.
pub async fn fetch(db: &Database, streams: &[String]) -> Result<Keys, PiiError> {
    if streams.is_empty() {
        return Ok(Keys::none());
    }
    match db {
        Database::Postgres(pool) => fetch_pg(&mut *pool.acquire().await?, streams).await,
        Database::Sqlite(pool) => fetch_lite(&mut *pool.acquire().await?, streams).await,
    }
}

/// The keys of `streams`, made (and stored) now for those that have none; erased
/// streams get none. Two statements however many streams: the bulk paths (seeding,
/// sealing old events) call it per batch.
pub async fn get_or_create_many(db: &Database, streams: &[String]) -> Result<Keys, PiiError> {
    let existing = fetch(db, streams).await?;
    let missing: Vec<&String> = streams.iter().filter(|s| !existing.knows(s)).collect();
    if missing.is_empty() {
        return Ok(existing);
    }
    let ring = keyring()?;
    let made: Vec<(&String, String)> = missing
        .into_iter()
        .map(|s| {
            let (_, bytes) = DataKey::generate();
            (s, STANDARD_NO_PAD.encode(ring.wrap(s, &bytes)))
        })
        .collect();
    let rows = serde_json::to_string(&made).expect("strings serialize");
    match db {
        Database::Postgres(pool) => {
            sqlx::query(CREATE_PG).bind(rows).execute(pool).await?;
        }
        Database::Sqlite(pool) => {
            sqlx::query(CREATE_LITE).bind(rows).execute(pool).await?;
        }
    }
    // Another writer may have made some first: theirs are the keys.
    fetch(db, streams).await
}

/// The key of `stream`, made (and stored) now if it has none; `Erased` once erased.
pub async fn get_or_create(db: &Database, stream: &str) -> Result<KeyState, PiiError> {
    let stream = stream.to_string();
    let keys = get_or_create_many(db, std::slice::from_ref(&stream)).await?;
    Ok(match keys.key(&stream) {
        Some(key) => KeyState::Key(key.clone()),
        None => KeyState::Erased,
    })
}

/// Destroys the key of `stream` for good and marks it erased, so none is made again.
/// What was sealed with it can no longer be read by anyone.
pub async fn destroy(db: &Database, stream: &str) -> Result<(), PiiError> {
    crate::on_pool!(db, |pool| {
        sqlx::query(
            "INSERT INTO customer_keys (stream_id, wrapped, erased_at) \
             VALUES ($1, NULL, CURRENT_TIMESTAMP) \
             ON CONFLICT (stream_id) DO UPDATE SET wrapped = NULL, \
                 erased_at = coalesce(customer_keys.erased_at, excluded.erased_at)",
        )
        .bind(stream)
        .execute(pool)
        .await
        .map(|_| ())
    })?;
    Ok(())
}
