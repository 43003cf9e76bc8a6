//! Customers as a caller may see them: lists with filters and keyset pagination, one
//! customer, and the parts of a portrait.

use chrono::{DateTime, Utc};

use super::sql::fetch_all;
use super::{scoped, Arg, ReadError, Reads, Scope, Sql};

/// One row of `rm_customer`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CustomerRecord {
    pub customer_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    /// When their personal data was erased (PIPL), if it was.
    pub erased_at: Option<DateTime<Utc>>,
    pub first_added_at: Option<DateTime<Utc>>,
    pub first_staff_id: Option<String>,
    pub add_way: Option<i64>,
    pub channel_state: Option<String>,
    pub stage: String,
    pub purchases: i64,
    pub total_fen: i64,
    pub first_purchase_at: Option<DateTime<Utc>>,
    pub last_purchase_at: Option<DateTime<Utc>>,
    pub coupons_issued: i64,
    pub coupons_redeemed: i64,
    pub coupons_expired: i64,
    pub last_activity_at: DateTime<Utc>,
    pub version: i64,
}

pub(super) const CUSTOMER_COLUMNS: &str =
    "c.customer_id, c.name, c.phone, c.erased_at, c.first_added_at, \
    c.first_staff_id, c.add_way, c.channel_state, c.stage, c.purchases, c.total_fen, \
    c.first_purchase_at, c.last_purchase_at, c.coupons_issued, c.coupons_redeemed, \
    c.coupons_expired, c.last_activity_at, c.version";

#[derive(sqlx::FromRow)]
struct Count {
    n: i64,
}

#[derive(sqlx::FromRow)]
struct Id {
    id: String,
}

/// Narrows a customer list; every field is optional and they combine with AND. A
/// campaign's job keeps the filter it was started with.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CustomerFilter {
    pub tag: Option<String>,
    pub group: Option<String>,
    pub stages: Vec<String>,
    /// Last activity at or after this instant.
    pub active_since: Option<DateTime<Utc>>,
    /// Last activity before this instant (dormant customers).
    pub inactive_since: Option<DateTime<Utc>>,
    /// Holds (or does not hold) a coupon that is issued, unredeemed and not yet expired.
    pub has_unredeemed_coupon: Option<bool>,
    /// Served by this member of staff (within the caller's scope).
    pub served_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Deserialize)]
pub struct RelationRecord {
    pub staff_id: String,
    pub staff_name: Option<String>,
    pub store_id: Option<String>,
    pub added_at: DateTime<Utc>,
    pub add_way: i64,
    pub remark: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Deserialize)]
pub struct TagRecord {
    pub tag_id: String,
    pub name: Option<String>,
    pub group_name: Option<String>,
    pub staff_id: String,
    pub tagged_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Deserialize)]
pub struct GroupRecord {
    pub group_id: String,
    pub name: Option<String>,
    pub owner_staff_id: Option<String>,
    /// The group notice; `None` when the group is not known to the read model.
    pub notice: Option<String>,
    pub joined_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Deserialize)]
pub struct CouponRecord {
    pub coupon_id: String,
    pub campaign_id: String,
    pub value_fen: i64,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: String,
    pub closed_at: Option<DateTime<Utc>>,
}

/// One event of a customer's own stream.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TimelineRecord {
    pub sequence: i64,
    pub event_type: String,
    pub payload: String,
    pub metadata: String,
}

impl Reads {
    pub(super) fn scope_predicate(&self, sql: &mut Sql, scope: &Scope) {
        match scope {
            Scope::Tenant => {}
            Scope::Staff(staff) => {
                sql.push(
                    " AND c.customer_id IN (SELECT r.customer_id FROM rm_customer_staff r \
                     WHERE r.tenant_id = ",
                )
                .bind(Arg::Text(self.tenant.to_string()))
                .push(" AND r.staff_id = ")
                .bind(Arg::Text(staff.to_string()))
                .push(")");
            }
            Scope::Stores(stores) if stores.is_empty() => {
                sql.push(" AND 1 = 0");
            }
            Scope::Stores(stores) => {
                sql.push(
                    " AND c.customer_id IN (SELECT r.customer_id FROM rm_customer_staff r \
                     JOIN rm_staff s ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id \
                     WHERE r.tenant_id = ",
                )
                .bind(Arg::Text(self.tenant.to_string()))
                .push(" AND s.store_id IN ")
                .bind_list(stores.iter().map(|s| Arg::Text(s.to_string())))
                .push(")");
            }
        }
    }

    /// A page of customers in the caller's scope, most recently active first, after the
    /// keyset `after` (last activity, customer id).
    pub async fn customers(
        &self,
        scope: &Scope,
        filter: &CustomerFilter,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<CustomerRecord>, ReadError> {
        let sql = self.customers_sql(scope, filter, after, limit, now);
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            CustomerRecord,
            &mut *conn
        )))
    }

    /// The statement [`Reads::customers`] runs (tests EXPLAIN it). A guide's list walks
    /// the guide's relations in last-activity order ([`RelationRow`]'s second index)
    /// and reads the customer rows of one page; wider scopes read the customers.
    ///
    /// [`RelationRow`]: projections::portrait::rows::RelationRow
    pub fn customers_sql(
        &self,
        scope: &Scope,
        filter: &CustomerFilter,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Sql {
        let select = format!("SELECT {CUSTOMER_COLUMNS}");
        let (mut sql, keys) = match scope {
            Scope::Staff(staff) => {
                let mut sql = Sql::new(&format!(
                    "{select} FROM rm_customer_staff r JOIN rm_customer c \
                     ON c.tenant_id = r.tenant_id AND c.customer_id = r.customer_id \
                     WHERE r.tenant_id = "
                ));
                sql.bind(Arg::Text(self.tenant.to_string()))
                    .push(" AND r.staff_id = ")
                    .bind(Arg::Text(staff.to_string()));
                self.filters(&mut sql, filter, now, "r");
                (sql, "r")
            }
            _ => (self.filtered(&select, scope, filter, now), "c"),
        };
        if let Some((at, id)) = after {
            sql.push(&format!(" AND ({keys}.last_activity_at < "))
                .bind(Arg::Time(at))
                .push(&format!(" OR ({keys}.last_activity_at = "))
                .bind(Arg::Time(at))
                .push(&format!(" AND {keys}.customer_id < "))
                .bind(Arg::Text(id))
                .push("))");
        }
        sql.push(&format!(
            " ORDER BY {keys}.last_activity_at DESC, {keys}.customer_id DESC LIMIT "
        ))
        .bind(Arg::Int(limit));
        sql
    }

    /// How many customers in `scope` match `filter`: a campaign's audience, before it
    /// is sent.
    pub async fn customer_count(
        &self,
        scope: &Scope,
        filter: &CustomerFilter,
        now: DateTime<Utc>,
    ) -> Result<i64, ReadError> {
        let sql = self.filtered("SELECT count(*) AS n", scope, filter, now);
        let rows = scoped!(self, |conn| fetch_all!(sql, Count, &mut *conn));
        Ok(rows.first().map_or(0, |c| c.n))
    }

    /// The ids of the customers in `scope` that match `filter`, in id order after
    /// `after`: a campaign reads its audience page by page, whatever its size.
    pub async fn customer_ids(
        &self,
        scope: &Scope,
        filter: &CustomerFilter,
        now: DateTime<Utc>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, ReadError> {
        let mut sql = self.filtered("SELECT c.customer_id AS id", scope, filter, now);
        if let Some(after) = after {
            sql.push(" AND c.customer_id > ")
                .bind(Arg::Text(after.to_string()));
        }
        sql.push(" ORDER BY c.customer_id LIMIT ")
            .bind(Arg::Int(limit));
        let rows = scoped!(self, |conn| fetch_all!(sql, Id, &mut *conn));
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    /// `select` from the customers in `scope` that match `filter`, unordered.
    fn filtered(
        &self,
        select: &str,
        scope: &Scope,
        filter: &CustomerFilter,
        now: DateTime<Utc>,
    ) -> Sql {
        let mut sql = Sql::new(&format!("{select} FROM rm_customer c WHERE c.tenant_id = "));
        sql.bind(Arg::Text(self.tenant.to_string()));
        self.scope_predicate(&mut sql, scope);
        self.filters(&mut sql, filter, now, "c");
        sql
    }

    /// `filter` as predicates on the customer `c`; stage and last activity are read
    /// from `keys` (`c`, or a relation `r` that carries them).
    fn filters(&self, sql: &mut Sql, filter: &CustomerFilter, now: DateTime<Utc>, keys: &str) {
        if let Some(tag) = &filter.tag {
            sql.push(
                " AND EXISTS (SELECT 1 FROM rm_customer_tag t WHERE t.tenant_id = c.tenant_id \
                 AND t.customer_id = c.customer_id AND t.tag_id = ",
            )
            .bind(Arg::Text(tag.clone()))
            .push(")");
        }
        if let Some(group) = &filter.group {
            sql.push(
                " AND EXISTS (SELECT 1 FROM rm_customer_group g WHERE g.tenant_id = c.tenant_id \
                 AND g.customer_id = c.customer_id AND g.group_id = ",
            )
            .bind(Arg::Text(group.clone()))
            .push(")");
        }
        if let Some(staff) = &filter.served_by {
            sql.push(
                " AND EXISTS (SELECT 1 FROM rm_customer_staff r2 WHERE r2.tenant_id = c.tenant_id \
                 AND r2.customer_id = c.customer_id AND r2.staff_id = ",
            )
            .bind(Arg::Text(staff.clone()))
            .push(")");
        }
        if !filter.stages.is_empty() {
            sql.push(&format!(" AND {keys}.stage IN "))
                .bind_list(filter.stages.iter().cloned().map(Arg::Text));
        }
        if let Some(since) = filter.active_since {
            sql.push(&format!(" AND {keys}.last_activity_at >= "))
                .bind(Arg::Time(since));
        }
        if let Some(before) = filter.inactive_since {
            sql.push(&format!(" AND {keys}.last_activity_at < "))
                .bind(Arg::Time(before));
        }
        if let Some(has) = filter.has_unredeemed_coupon {
            sql.push(if has {
                " AND EXISTS"
            } else {
                " AND NOT EXISTS"
            })
            .push(
                " (SELECT 1 FROM rm_customer_coupon k WHERE k.tenant_id = c.tenant_id \
                 AND k.customer_id = c.customer_id AND k.status = 'issued' AND k.expires_at > ",
            )
            .bind(Arg::Time(now))
            .push(")");
        }
    }

    /// One customer, if it exists in the caller's scope.
    pub async fn customer(
        &self,
        scope: &Scope,
        customer_id: &str,
    ) -> Result<Option<CustomerRecord>, ReadError> {
        let mut sql = Sql::new(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM rm_customer c WHERE c.tenant_id = "
        ));
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND c.customer_id = ")
            .bind(Arg::Text(customer_id.to_string()));
        self.scope_predicate(&mut sql, scope);
        let rows = scoped!(self, |conn| fetch_all!(sql, CustomerRecord, &mut *conn));
        Ok(rows.into_iter().next())
    }

    fn by_customer(&self, select: &str, customer_id: &str, order: &str) -> Sql {
        let mut sql = Sql::new(select);
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND x.customer_id = ")
            .bind(Arg::Text(customer_id.to_string()))
            .push(order);
        sql
    }

    pub async fn relations(&self, customer_id: &str) -> Result<Vec<RelationRecord>, ReadError> {
        let sql = self.by_customer(
            "SELECT x.staff_id, s.name AS staff_name, s.store_id, x.added_at, x.add_way, \
             x.remark, x.description FROM rm_customer_staff x \
             LEFT JOIN rm_staff s ON s.tenant_id = x.tenant_id AND s.staff_id = x.staff_id \
             WHERE x.tenant_id = ",
            customer_id,
            " ORDER BY x.added_at, x.staff_id",
        );
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            RelationRecord,
            &mut *conn
        )))
    }

    pub async fn tags(&self, customer_id: &str) -> Result<Vec<TagRecord>, ReadError> {
        let sql = self.by_customer(
            "SELECT x.tag_id, t.name, g.name AS group_name, x.staff_id, x.tagged_at \
             FROM rm_customer_tag x \
             LEFT JOIN rm_tag t ON t.tenant_id = x.tenant_id AND t.tag_id = x.tag_id \
             LEFT JOIN rm_tag_group g ON g.tenant_id = t.tenant_id AND g.group_id = t.group_id \
             WHERE x.tenant_id = ",
            customer_id,
            " ORDER BY x.tagged_at, x.tag_id, x.staff_id",
        );
        Ok(scoped!(self, |conn| fetch_all!(sql, TagRecord, &mut *conn)))
    }

    pub async fn groups(&self, customer_id: &str) -> Result<Vec<GroupRecord>, ReadError> {
        let sql = self.by_customer(
            "SELECT x.group_id, o.name, o.owner_staff_id, o.notice, x.joined_at FROM rm_customer_group x \
             LEFT JOIN rm_group_owner o ON o.tenant_id = x.tenant_id AND o.group_id = x.group_id \
             WHERE x.tenant_id = ",
            customer_id,
            " ORDER BY x.joined_at, x.group_id",
        );
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            GroupRecord,
            &mut *conn
        )))
    }

    pub async fn coupons(&self, customer_id: &str) -> Result<Vec<CouponRecord>, ReadError> {
        let sql = self.by_customer(
            "SELECT x.coupon_id, x.campaign_id, x.value_fen, x.issued_at, x.expires_at, \
             x.status, x.closed_at FROM rm_customer_coupon x WHERE x.tenant_id = ",
            customer_id,
            " ORDER BY x.issued_at DESC, x.coupon_id",
        );
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            CouponRecord,
            &mut *conn
        )))
    }

    /// Up to `limit` events of the customer's stream, newest first, before `before`
    /// (a sequence number).
    pub async fn timeline(
        &self,
        customer_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TimelineRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT sequence, event_type, CAST(payload AS TEXT) AS payload, \
             CAST(metadata AS TEXT) AS metadata FROM events \
             WHERE aggregate_type = 'Customer' AND aggregate_id = ",
        );
        sql.bind(Arg::Text(format!("{}:{customer_id}", self.tenant)));
        sql.push(" AND tenant_id = ")
            .bind(Arg::Text(self.tenant.to_string()));
        if let Some(before) = before {
            sql.push(" AND sequence < ").bind(Arg::Int(before));
        }
        sql.push(" ORDER BY sequence DESC LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            TimelineRecord,
            &mut *conn
        )))
    }
}
