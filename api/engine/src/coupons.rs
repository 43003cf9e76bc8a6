//! Coupons expire on their date in a running server, not only in a replayed fixture:
//! a periodic sweep appends `CouponExpired` to each customer holding an issued coupon
//! past `expires_at`, so the portrait and the redemption report count it as expired.

use chrono::{DateTime, Utc};
use domain::customer::{CustomerCommand, CustomerError};
use domain::values::CouponId;
use projections::on_pool;

use crate::app::Engine;
use crate::jobs::{Jobs, Periodic};
use crate::lease::try_lease;
use crate::sweep::{self, Due};

/// Coupons one tick expires; the rest wait for the next tick.
const EXPIRIES_PER_TICK: i64 = 10_000;

/// Expires every issued coupon whose date passed by `now`. Returns how many. Tenant by
/// tenant, so the scan uses a tenant-leading index like every other read of the table.
pub async fn expire_due(engine: &Engine, now: DateTime<Utc>) -> Result<usize, sqlx::Error> {
    let tenants: Vec<(String,)> = on_pool!(&engine.db, |pool| {
        sqlx::query_as("SELECT tenant_id FROM tenants WHERE disabled_at IS NULL ORDER BY tenant_id")
            .fetch_all(pool)
            .await
    })?;
    let mut due: Vec<(String, String, String)> = Vec::new();
    for (tenant,) in tenants {
        let room = EXPIRIES_PER_TICK - due.len() as i64;
        if room <= 0 {
            break;
        }
        let found: Vec<(String, String, String)> = on_pool!(&engine.db, |pool| {
            sqlx::query_as(
                "SELECT tenant_id, customer_id, coupon_id FROM rm_customer_coupon \
                 WHERE tenant_id = $1 AND status = 'issued' AND expires_at <= $2 \
                 ORDER BY expires_at LIMIT $3",
            )
            .bind(&tenant)
            .bind(now)
            .bind(room)
            .fetch_all(pool)
            .await
        })?;
        due.extend(found);
    }
    let due = due
        .into_iter()
        .filter_map(|(tenant, customer, coupon)| {
            let key = format!("coupon-expiry:{tenant}:{customer}:{coupon}");
            Some(Due {
                command: CustomerCommand::ExpireCoupon {
                    coupon: CouponId::parse(coupon).ok()?,
                },
                tenant,
                customer,
                key,
            })
        })
        .collect();
    // Redeemed or expired since the view was read.
    let settled = |refusal: &CustomerError| {
        matches!(
            refusal,
            CustomerError::CouponAlreadyRedeemed(_) | CustomerError::CouponExpired(_)
        )
    };
    Ok(sweep::run(engine, "coupon-expiry", now, due, settled).await)
}

/// The coupon sweep on every tick of the job runner, one server at a time.
#[derive(Debug)]
pub struct CouponExpiry;

#[async_trait::async_trait]
impl Periodic for CouponExpiry {
    async fn tick(&self, jobs: &Jobs) {
        match try_lease(jobs.db(), "scrm-coupon-expiry").await {
            Ok(Some(lease)) => {
                match expire_due(jobs.engine(), jobs.clock().now()).await {
                    Ok(0) => {}
                    Ok(expired) => tracing::info!(expired, "coupons expired"),
                    Err(error) => tracing::error!(%error, "coupon expiry failed"),
                }
                lease.release().await;
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "could not take the coupon expiry's lease"),
        }
    }
}
