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
