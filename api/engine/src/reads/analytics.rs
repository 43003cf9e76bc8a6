//! Funnels and coupon redemption for analysts, grouped by one dimension.

use chrono::{DateTime, Utc};

use super::sql::fetch_all;
use super::{scoped, Arg, ReadError, Reads, Sql};

/// What a funnel or a redemption report is grouped by. Customers are placed by their
/// acquisition: the guide who added them, that guide's store, the channel, the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelDimension {
    Store,
    Staff,
    Channel,
    Cohort,
    Campaign,
}

impl FunnelDimension {
    fn column(self, funnel: &str, coupon: &str) -> String {
        match self {
            Self::Store => format!("coalesce({funnel}.store_id, '')"),
            Self::Staff => format!("{funnel}.staff_id"),
            Self::Channel => format!("{funnel}.channel"),
            Self::Cohort => format!("{funnel}.cohort_month"),
            Self::Campaign => format!("{coupon}.campaign_id"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FunnelLine {
    pub key: String,
    pub friends: i64,
    pub first_purchase: i64,
    pub repurchase: i64,
    pub loyal: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RedemptionLine {
    pub key: String,
    pub issued: i64,
    pub redeemed: i64,
    pub expired: i64,
}

/// A projection's state as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionLine {
    pub name: String,
    pub code_version: i64,
    pub stored_version: Option<i64>,
    pub checkpoint: i64,
    pub events_applied: i64,
    pub events_behind: i64,
    pub seconds_behind: f64,
}

impl Reads {
    /// The repurchase funnel by `by`, as it stands or as it stood at `as_of`. By
    /// campaign, a line counts the customers who were given a coupon of the campaign
    /// and, of those, who reached each stage on or after their first coupon of it: what
    /// the campaign brought back.
    ///
    /// As of an instant, the funnel is read from the instants the projection keeps for
    /// each customer (acquired, first purchase, repurchase, loyal), each the time the
    /// event occurred: a customer counts where they stood then. That is one pass over
    /// the tenant's funnel rows, as today's funnel is, not a fold of the log.
    pub async fn funnel(
        &self,
        by: FunnelDimension,
        as_of: Option<DateTime<Utc>>,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<FunnelLine>, ReadError> {
        let mut sql = Sql::new("SELECT * FROM (SELECT ");
        if by == FunnelDimension::Campaign {
            sql.push("k.campaign_id AS key, count(*) AS friends");
            for (stage, column) in STAGES {
                sql.push(&format!(", count(CASE WHEN f.{column} >= k.issued_at"));
                reached_by(&mut sql, &format!("f.{column}"), as_of, " AND ");
                sql.push(&format!(" THEN 1 END) AS {stage}"));
            }
            sql.push(
                " FROM (SELECT tenant_id, customer_id, campaign_id, min(issued_at) AS issued_at \
                 FROM rm_customer_coupon WHERE tenant_id = ",
            )
            .bind(Arg::Text(self.tenant.to_string()));
            reached_by(&mut sql, "issued_at", as_of, " AND ");
            sql.push(
                " GROUP BY tenant_id, customer_id, campaign_id) k \
                 LEFT JOIN rm_funnel_customer f \
                 ON f.tenant_id = k.tenant_id AND f.customer_id = k.customer_id \
                 GROUP BY 1) x",
            );
        } else {
            sql.push(&format!(
                "{} AS key, count(*) AS friends",
                by.column("f", "k")
            ));
            for (stage, column) in STAGES {
                sql.push(", count(CASE WHEN ");
                reached_by(&mut sql, &format!("f.{column}"), as_of, "");
                sql.push(&format!(" THEN 1 END) AS {stage}"));
            }
            sql.push(" FROM rm_funnel_customer f WHERE f.tenant_id = ")
                .bind(Arg::Text(self.tenant.to_string()));
            reached_by(&mut sql, "f.acquired_at", as_of, " AND ");
            sql.push(" GROUP BY 1) x");
        }
        if let Some(after) = after {
            sql.push(" WHERE x.key > ").bind(Arg::Text(after));
        }
        sql.push(" ORDER BY x.key LIMIT ").bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql, FunnelLine, &mut *conn
        )))
    }

    /// Coupons issued, redeemed and expired, by `by`, as they stand or as they stood
    /// at `as_of` (a coupon redeemed or expired later was still open then).
    pub async fn coupon_redemption(
        &self,
        by: FunnelDimension,
        as_of: Option<DateTime<Utc>>,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<RedemptionLine>, ReadError> {
        let join = if by == FunnelDimension::Campaign {
            ""
        } else {
            " JOIN rm_funnel_customer f ON f.tenant_id = k.tenant_id AND f.customer_id = k.customer_id"
        };
        let mut sql = Sql::new(&format!(
            "SELECT * FROM (SELECT {col} AS key, count(*) AS issued",
            col = by.column("f", "k")
        ));
        for (status, column) in [("redeemed", "redeemed"), ("expired", "expired")] {
            sql.push(&format!(", sum(CASE WHEN k.status = '{status}'"));
            reached_by(&mut sql, "k.closed_at", as_of, " AND ");
            sql.push(&format!(" THEN 1 ELSE 0 END) AS {column}"));
        }
        sql.push(&format!(
            " FROM rm_customer_coupon k{join} WHERE k.tenant_id = "
        ))
        .bind(Arg::Text(self.tenant.to_string()));
        reached_by(&mut sql, "k.issued_at", as_of, " AND ");
        sql.push(" GROUP BY 1) x");
        if let Some(after) = after {
            sql.push(" WHERE x.key > ").bind(Arg::Text(after));
        }
        sql.push(" ORDER BY x.key LIMIT ").bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            RedemptionLine,
            &mut *conn
        )))
    }
}

/// The funnel's stages after acquisition, and the instant each customer reached it.
const STAGES: [(&str, &str); 3] = [
    ("first_purchase", "first_purchase_at"),
    ("repurchase", "repurchase_at"),
    ("loyal", "loyal_at"),
];

/// `column` reached by `as_of` (or at all, without one), after `joiner` when there is
/// a condition to add: nothing is added for today's counts of a column always set.
fn reached_by(sql: &mut Sql, column: &str, as_of: Option<DateTime<Utc>>, joiner: &str) {
    match as_of {
        Some(at) => {
            sql.push(&format!("{joiner}{column} <= "))
                .bind(Arg::Time(at));
        }
        None if joiner.is_empty() => {
            sql.push(&format!("{column} IS NOT NULL"));
        }
        None => {}
    }
}

/// One arm of a campaign (the customers it reached, or those it held out) and what
/// they did within the window after it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CampaignArmRecord {
    pub arm: String,
    pub customers: i64,
    /// Customers with at least one order in the window.
    pub buyers: i64,
    pub orders: i64,
    pub amount_fen: i64,
    /// Customers who redeemed a coupon of the campaign's coupon campaign in the window.
    pub redeemers: i64,
}

impl Reads {
    /// Each arm of campaign `campaign` with the orders, amounts and redemptions of
    /// `coupon_campaign` in the `window_seconds` after each customer was reached (or
    /// held out). Counted in the database, whatever the audience's size.
    pub async fn campaign_arms(
        &self,
        campaign: &str,
        coupon_campaign: Option<&str>,
        window_seconds: i64,
    ) -> Result<Vec<CampaignArmRecord>, ReadError> {
        const IN_WINDOW: &str = "p.tenant_id = m.tenant_id AND p.customer_id = m.customer_id \
            AND p.at_s >= m.at_s AND p.at_s < m.at_s + ";
        let mut sql = Sql::new("SELECT m.arm AS arm, CAST(count(*) AS BIGINT) AS customers, ");
        sql.push(&format!(
            "CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM rm_customer_purchase p WHERE {IN_WINDOW}"
        ))
        .bind(Arg::Int(window_seconds))
        .push(") THEN 1 ELSE 0 END), 0) AS BIGINT) AS buyers, ")
        .push(&format!(
            "CAST(COALESCE(SUM((SELECT count(*) FROM rm_customer_purchase p WHERE {IN_WINDOW}"
        ))
        .bind(Arg::Int(window_seconds))
        .push(")), 0) AS BIGINT) AS orders, ")
        .push(&format!(
            "CAST(COALESCE(SUM((SELECT COALESCE(SUM(p.amount_fen), 0) FROM rm_customer_purchase p \
             WHERE {IN_WINDOW}"
        ))
        .bind(Arg::Int(window_seconds))
        .push(")), 0) AS BIGINT) AS amount_fen, ")
        .push(
            "CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM rm_campaign_coupon k \
             WHERE k.tenant_id = m.tenant_id AND k.customer_id = m.customer_id \
             AND k.coupon_campaign_id = ",
        )
        .bind(Arg::Text(coupon_campaign.unwrap_or_default().to_string()))
        .push(" AND k.redeemed_s >= m.at_s AND k.redeemed_s < m.at_s + ")
        .bind(Arg::Int(window_seconds))
        .push(") THEN 1 ELSE 0 END), 0) AS BIGINT) AS redeemers ")
        .push("FROM rm_campaign_member m WHERE m.tenant_id = ")
        .bind(Arg::Text(self.tenant.to_string()))
        .push(" AND m.campaign_id = ")
        .bind(Arg::Text(campaign.to_string()))
        .push(" GROUP BY m.arm ORDER BY m.arm");
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            CampaignArmRecord,
            &mut *conn
        )))
    }
}
