//! Funnels and coupon redemption for analysts, grouped by one dimension.

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
    /// The repurchase funnel by `by`. By campaign, a line counts the customers who were
    /// given a coupon of the campaign and, of those, who reached each stage on or after
    /// their first coupon of it: what the campaign brought back.
    pub async fn funnel(
        &self,
        by: FunnelDimension,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<FunnelLine>, ReadError> {
        let mut sql = if by == FunnelDimension::Campaign {
            let mut sql = Sql::new(
                "SELECT * FROM (SELECT k.campaign_id AS key, count(*) AS friends, \
                 count(CASE WHEN f.first_purchase_at >= k.issued_at THEN 1 END) AS first_purchase, \
                 count(CASE WHEN f.repurchase_at >= k.issued_at THEN 1 END) AS repurchase, \
                 count(CASE WHEN f.loyal_at >= k.issued_at THEN 1 END) AS loyal \
                 FROM (SELECT tenant_id, customer_id, campaign_id, min(issued_at) AS issued_at \
                 FROM rm_customer_coupon WHERE tenant_id = ",
            );
            sql.bind(Arg::Text(self.tenant.to_string())).push(
                " GROUP BY tenant_id, customer_id, campaign_id) k \
                 LEFT JOIN rm_funnel_customer f \
                 ON f.tenant_id = k.tenant_id AND f.customer_id = k.customer_id \
                 GROUP BY 1) x",
            );
            sql
        } else {
            let mut sql = Sql::new(&format!(
                "SELECT * FROM (SELECT {col} AS key, count(*) AS friends, \
                 count(f.first_purchase_at) AS first_purchase, count(f.repurchase_at) AS repurchase, \
                 count(f.loyal_at) AS loyal FROM rm_funnel_customer f WHERE f.tenant_id = ",
                col = by.column("f", "k")
            ));
            sql.bind(Arg::Text(self.tenant.to_string()))
                .push(" GROUP BY 1) x");
            sql
        };
        if let Some(after) = after {
            sql.push(" WHERE x.key > ").bind(Arg::Text(after));
        }
        sql.push(" ORDER BY x.key LIMIT ").bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql, FunnelLine, &mut *conn
        )))
    }

    /// Coupons issued, redeemed and expired, by `by`.
    pub async fn coupon_redemption(
        &self,
        by: FunnelDimension,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<RedemptionLine>, ReadError> {
        let join = if by == FunnelDimension::Campaign {
            ""
        } else {
            " JOIN rm_funnel_customer f ON f.tenant_id = k.tenant_id AND f.customer_id = k.customer_id"
        };
        let mut sql = Sql::new(&format!(
            "SELECT * FROM (SELECT {col} AS key, count(*) AS issued, \
             sum(CASE WHEN k.status = 'redeemed' THEN 1 ELSE 0 END) AS redeemed, \
             sum(CASE WHEN k.status = 'expired' THEN 1 ELSE 0 END) AS expired \
             FROM rm_customer_coupon k{join} WHERE k.tenant_id = ",
            col = by.column("f", "k")
        ));
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" GROUP BY 1) x");
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
