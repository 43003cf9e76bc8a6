//! The baseline: cqrs-es 0.5's own rebuild path, as its documentation shows it. A
//! `GenericQuery` over a `PostgresViewRepository` (one JSON document per customer)
//! fed by `QueryReplay::replay_all`, which dispatches one event at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use cqrs_es::persist::{GenericQuery, QueryReplay};
use cqrs_es::{EventEnvelope, View};
use domain::customer::{Customer, CustomerEvent};
use postgres_es::{PostgresEventRepository, PostgresViewRepository};
use serde::{Deserialize, Serialize};

use super::BenchError;
use engine::db::Database;

/// About what the relational portrait holds, as one JSON document.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct PortraitView {
    name: Option<String>,
    relations: BTreeMap<String, (String, BTreeSet<String>)>,
    coupons: BTreeMap<String, String>,
    groups: BTreeSet<String>,
    purchases: i64,
    total_fen: i64,
    last_activity: Option<chrono::DateTime<chrono::Utc>>,
}

impl View<Customer> for PortraitView {
    fn update(&mut self, event: &EventEnvelope<Customer>) {
        let e = &event.payload;
        self.last_activity = Some(self.last_activity.map_or(e.at(), |t| t.max(e.at())));
        match e {
            CustomerEvent::FriendAdded { staff, .. } => {
                self.relations.entry(staff.to_string()).or_default();
            }
            CustomerEvent::FriendRemoved { staff, .. } => {
                self.relations.remove(staff.as_str());
            }
            CustomerEvent::ProfileUpdated { name, .. } => self.name = Some(name.clone()),
            CustomerEvent::Tagged { staff, tag, .. } => {
                self.relations
                    .entry(staff.to_string())
                    .or_default()
                    .1
                    .insert(tag.to_string());
            }
            CustomerEvent::Untagged { staff, tag, .. } => {
                if let Some(r) = self.relations.get_mut(staff.as_str()) {
                    r.1.remove(tag.as_str());
                }
            }
            CustomerEvent::RemarkChanged { staff, remark, .. } => {
                self.relations.entry(staff.to_string()).or_default().0 = remark.clone();
            }
            CustomerEvent::CouponIssued { coupon, .. } => {
                self.coupons.insert(coupon.to_string(), "issued".into());
            }
            CustomerEvent::CouponRedeemed { coupon, .. } => {
                self.coupons.insert(coupon.to_string(), "redeemed".into());
            }
            CustomerEvent::CouponExpired { coupon, .. } => {
                self.coupons.insert(coupon.to_string(), "expired".into());
            }
            CustomerEvent::JoinedGroup { group, .. } => {
                self.groups.insert(group.to_string());
            }
            CustomerEvent::LeftGroup { group, .. } => {
                self.groups.remove(group.as_str());
            }
            CustomerEvent::PurchaseRecorded { amount, .. } => {
                self.purchases += 1;
                self.total_fen += amount.fen();
            }
            _ => {}
        }
    }
}

/// Replays every Customer event through the cqrs-es path. Returns (events, events/s).
pub async fn cqrs_es_replay(db: &Database) -> Result<(u64, f64), BenchError> {
    let Database::Postgres(pool) = db else {
        return Err(BenchError::NeedsPostgres);
    };
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_portrait_view \
         (view_id text PRIMARY KEY, version bigint NOT NULL, payload json NOT NULL)",
    )
    .execute(pool)
    .await?;
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Customer'")
            .fetch_one(pool)
            .await?;
    let views = Arc::new(PostgresViewRepository::<PortraitView, Customer>::new(
        "bench_portrait_view",
        pool.clone(),
    ));
    let replay = QueryReplay::new(
        PostgresEventRepository::new(pool.clone()),
        GenericQuery::new(views),
    );
    let started = Instant::now();
    replay
        .replay_all()
        .await
        .map_err(|e| BenchError::Child(format!("cqrs-es replay: {e}")))?;
    Ok((
        events as u64,
        events as f64 / started.elapsed().as_secs_f64(),
    ))
}
