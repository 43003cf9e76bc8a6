//! Work the clock makes due on many customers at once (handovers nobody answered,
//! coupons past their date). Each due item becomes one system command whose idempotency
//! key is derived from the item, so two servers' sweeps, or a sweep repeated after a
//! crash, append nothing twice.

use chrono::{DateTime, Utc};
use domain::customer::{CustomerCommand, CustomerError};
use domain::stamp::{stream_id, Stamped};
use domain::values::TenantId;
use uuid::Uuid;

use crate::app::Engine;
use crate::commands::{Actor, Batched, CommandError, CommandMeta};

/// One customer's command that has come due.
#[derive(Debug, Clone)]
pub struct Due {
    pub tenant: String,
    pub customer: String,
    /// Names the item for good: the same on every sweep that finds it.
    pub key: String,
    pub command: CustomerCommand,
}

/// Sends every item of `due` as `actor`, in batches of WeCom's size. `settled` says
/// which refusals mean someone else already did it (the view the sweep read lags the
/// log). Returns how many appended.
pub async fn run(
    engine: &Engine,
    actor: &'static str,
    now: DateTime<Utc>,
    due: Vec<Due>,
    settled: fn(&CustomerError) -> bool,
) -> usize {
    let mut appended = 0;
    for chunk in due.chunks(domain::rules::WECOM_BATCH_SIZE) {
        let commands: Vec<Batched<CustomerCommand>> = chunk
            .iter()
            .filter_map(|item| {
                let tenant = TenantId::parse(item.tenant.as_str()).ok()?;
                let meta = CommandMeta::new(
                    tenant.clone(),
                    Actor::system(actor),
                    Uuid::new_v5(&Uuid::NAMESPACE_OID, item.key.as_bytes()),
                )
                .with_idempotency_key(item.key.clone());
                Some(Batched {
                    aggregate_id: stream_id(&tenant, &item.customer),
                    command: Stamped::new(now, item.command.clone()),
                    meta,
                })
            })
            .collect();
        for answer in engine.customers.execute_many(commands).await {
            match answer {
                Ok(outcome) => appended += usize::from(outcome.appended > 0),
                Err(CommandError::Rejected(refusal)) if settled(&refusal) => {}
                Err(error) => tracing::warn!(actor, %error, "a due command failed"),
            }
        }
    }
    appended
}
