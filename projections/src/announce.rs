//! What a projection's commit changed, told to every server process on PostgreSQL, so a
//! process that keeps read-model rows in memory (the API's portrait cache) drops them.
//!
//! The announcement is a `NOTIFY` sent inside the transaction that writes the rows:
//! PostgreSQL delivers it only if that transaction commits, after the commit, to every
//! listening connection, in commit order. Whichever process commits (a server's
//! projector, another server's, a `scrm rebuild` at a console), every cache hears of it.
//! SQLite has no such channel; nothing is cached there.

use crate::log::{AnyEvent, LoggedEvent};

/// The channel every announcement is sent on.
pub const CHANNEL: &str = "scrm_projected";

/// A payload stays under PostgreSQL's limit of 8,000 bytes.
const PAYLOAD_BYTES: usize = 7_000;

/// A batch touching more of one tenant's customers than this is announced as the whole
/// tenant: one line instead of a burst of notices that would cost more than the cache.
const CUSTOMERS_PER_TENANT: usize = 2_000;

/// Which of a batch's changes a projection's commits announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announces {
    /// Its rows are not cached anywhere.
    Nothing,
    /// A customer's event changes that customer's rows; any other aggregate's (staff,
    /// tag library, group) may change a name shown on any of the tenant's customers.
    Everything,
    /// Only other aggregates' events: its customer rows are not cached, but names it
    /// keeps (a group's) are shown on cached ones.
    OtherThanCustomers,
}

/// One change a cache must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One customer's rows (the customer's local id).
    Customer { tenant: String, customer: String },
    /// Every row of a tenant.
    Tenant(String),
    /// Every row.
    All,
}

impl Change {
    fn line(&self) -> String {
        match self {
            Self::Customer { tenant, customer } => format!("{tenant}\t{customer}"),
            Self::Tenant(tenant) => format!("{tenant}\t*"),
            Self::All => "*".to_string(),
        }
    }
}

/// What a batch of `events` changed, as `announces` says to tell it.
pub fn changes(events: &[LoggedEvent], announces: Announces) -> Vec<Change> {
    use std::collections::{BTreeMap, BTreeSet};
    if announces == Announces::Nothing {
        return Vec::new();
    }
    let mut customers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut tenants: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        match &e.event {
            AnyEvent::Customer(_) if announces == Announces::Everything => {
                customers.entry(&e.tenant).or_default().insert(&e.local_id);
            }
            AnyEvent::Customer(_) => {}
            _ => {
                tenants.insert(&e.tenant);
            }
        }
    }
    let mut out = Vec::new();
    for (tenant, ids) in customers {
        if tenants.contains(tenant) {
            continue;
        }
        if ids.len() > CUSTOMERS_PER_TENANT || ids.iter().any(|id| !plain(id)) {
            tenants.insert(tenant);
            continue;
        }
        out.extend(ids.into_iter().map(|id| Change::Customer {
            tenant: tenant.to_string(),
            customer: id.to_string(),
        }));
    }
    for tenant in tenants {
        out.push(if plain(tenant) {
            Change::Tenant(tenant.to_string())
        } else {
            Change::All
        });
    }
    out
}

/// Whether `text` can stand in a line of the payload as it is.
fn plain(text: &str) -> bool {
    !text.is_empty() && text != "*" && !text.contains(['\t', '\n'])
}

/// `changes` as payloads of whole lines, each under PostgreSQL's limit.
pub fn payloads(changes: &[Change]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for change in changes {
        let line = change.line();
        if !current.is_empty() && current.len() + 1 + line.len() > PAYLOAD_BYTES {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The changes a payload holds. A line that is not understood is taken as everything:
/// forgetting too much costs a read, forgetting too little shows a stale portrait.
pub fn parse(payload: &str) -> Vec<Change> {
    payload
        .lines()
        .map(|line| match line.split_once('\t') {
            Some((tenant, "*")) if plain(tenant) => Change::Tenant(tenant.to_string()),
            Some((tenant, customer)) if plain(tenant) && plain(customer) => Change::Customer {
                tenant: tenant.to_string(),
                customer: customer.to_string(),
            },
            _ => Change::All,
        })
        .collect()
}

/// Sends `changes` on [`CHANNEL`] within the transaction `conn` is in.
pub async fn pg(conn: &mut sqlx::PgConnection, changes: &[Change]) -> Result<(), sqlx::Error> {
    for payload in payloads(changes) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// SQLite: nothing listens (no process caches rows of an embedded database).
pub async fn lite(
    _conn: &mut sqlx::SqliteConnection,
    _changes: &[Change],
) -> Result<(), sqlx::Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_stay_under_the_limit() {
        let changes: Vec<Change> = (0..1_500)
            .map(|i| Change::Customer {
                tenant: "acme".into(),
                customer: format!("wm-customer-{i:05}"),
            })
            .chain([Change::Tenant("beta".into()), Change::All])
            .collect();
        let payloads = payloads(&changes);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_BYTES));
        let parsed: Vec<Change> = payloads.iter().flat_map(|p| parse(p)).collect();
        assert_eq!(parsed, changes);
    }

    #[test]
    fn a_line_not_understood_forgets_everything() {
        assert_eq!(parse("acme"), vec![Change::All]);
        assert_eq!(parse("\twm-1"), vec![Change::All]);
    }
}
