//! A customer's portrait in one statement. A guide's app opens portraits all day, and a
//! portrait read part by part costs a statement per part; on PostgreSQL the parts the
//! request asks for are aggregated to JSON beside the customer row instead, which
//! measured at 1.5 to 2 times the throughput of six statements (BENCHMARKS.md).

use std::sync::Arc;

use domain::customer::CustomerEvent;

use super::cache::{Portrait, PortraitCache};
use super::customers::CUSTOMER_COLUMNS;
use super::sql::fetch_all;
use super::{
    scoped, Arg, CouponRecord, CustomerRecord, GroupRecord, ReadError, Reads, RelationRecord,
    Scope, Sql, TagRecord, TimelineRecord,
};

/// The parts of a portrait a request asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortraitWants {
    pub relations: bool,
    pub tags: bool,
    pub groups: bool,
    pub coupons: bool,
    /// The newest this many events of the customer's stream.
    pub timeline: Option<i64>,
}

/// Parts read with the customer; `None` where they were not asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PortraitParts {
    pub relations: Option<Vec<RelationRecord>>,
    pub tags: Option<Vec<TagRecord>>,
    pub groups: Option<Vec<GroupRecord>>,
    pub coupons: Option<Vec<CouponRecord>>,
    /// Newest first, at most `wants.timeline` of them.
    pub timeline: Option<Vec<TimelineRecord>>,
    pub timeline_limit: i64,
    /// The names the timeline's events mention, as of the portrait's instant (an as-of
    /// portrait); `None`: today's, read when the timeline is described.
    pub names: Option<super::DisplayNames>,
}

#[derive(sqlx::FromRow)]
struct PortraitRow {
    #[sqlx(flatten)]
    customer: CustomerRecord,
    relations: Option<String>,
    tags: Option<String>,
    groups: Option<String>,
    coupons: Option<String>,
    timeline: Option<String>,
}

#[derive(serde::Deserialize)]
struct TimelineJson {
    sequence: i64,
    event_type: String,
    payload: Box<serde_json::value::RawValue>,
    metadata: Box<serde_json::value::RawValue>,
}

const RELATIONS: &str = "(SELECT CAST(json_agg(p ORDER BY p.added_at, p.staff_id) AS TEXT) FROM \
    (SELECT x.staff_id, s.name AS staff_name, s.store_id, x.added_at, x.add_way, x.remark, \
    x.description FROM rm_customer_staff x LEFT JOIN rm_staff s ON s.tenant_id = x.tenant_id \
    AND s.staff_id = x.staff_id WHERE x.tenant_id = c.tenant_id \
    AND x.customer_id = c.customer_id) p)";
const TAGS: &str = "(SELECT CAST(json_agg(p ORDER BY p.tagged_at, p.tag_id, p.staff_id) AS TEXT) \
    FROM (SELECT x.tag_id, t.name, g.name AS group_name, x.staff_id, x.tagged_at \
    FROM rm_customer_tag x \
    LEFT JOIN rm_tag t ON t.tenant_id = x.tenant_id AND t.tag_id = x.tag_id \
    LEFT JOIN rm_tag_group g ON g.tenant_id = t.tenant_id AND g.group_id = t.group_id \
    WHERE x.tenant_id = c.tenant_id AND x.customer_id = c.customer_id) p)";
const GROUPS: &str = "(SELECT CAST(json_agg(p ORDER BY p.joined_at, p.group_id) AS TEXT) FROM \
    (SELECT x.group_id, o.name, o.owner_staff_id, o.notice, x.joined_at FROM rm_customer_group x \
    LEFT JOIN rm_group_owner o ON o.tenant_id = x.tenant_id AND o.group_id = x.group_id \
    WHERE x.tenant_id = c.tenant_id AND x.customer_id = c.customer_id) p)";
const COUPONS: &str = "(SELECT CAST(json_agg(p ORDER BY p.issued_at DESC, p.coupon_id) AS TEXT) \
    FROM (SELECT x.coupon_id, x.campaign_id, x.value_fen, x.issued_at, x.expires_at, x.status, \
    x.closed_at FROM rm_customer_coupon x WHERE x.tenant_id = c.tenant_id \
    AND x.customer_id = c.customer_id) p)";

fn decode<T: serde::de::DeserializeOwned>(
    part: &str,
    json: Option<String>,
) -> Result<Vec<T>, ReadError> {
    match json {
        // json_agg over no rows is NULL.
        None => Ok(Vec::new()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| ReadError::BadEvent(format!("portrait {part}: {e}"))),
    }
}

impl Reads {
    /// One customer in the caller's scope with the parts `wants` names.
    pub async fn portrait(
        &self,
        scope: &Scope,
        customer_id: &str,
        wants: PortraitWants,
    ) -> Result<Option<(CustomerRecord, PortraitParts)>, ReadError> {
        if !self.is_postgres() {
            return self.portrait_by_parts(scope, customer_id, wants).await;
        }
        if let Some(cache) = self.portraits.as_ref().filter(|c| c.is_live()) {
            let portrait = self.portrait_cached(cache, customer_id, wants).await?;
            return Ok(portrait
                .filter(|p| super::cache::reaches(scope, p))
                .map(|p| (*p).clone()));
        }
        let sql = self.portrait_sql(scope, customer_id, wants);
        let rows = scoped!(self, |conn| fetch_all!(sql, PortraitRow, &mut *conn));
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        Self::assemble(row, wants).map(Some)
    }

    /// The portrait from `cache`, or read for the whole tenant and kept there; the
    /// caller's scope is checked on it afterwards. The relations are always read (they
    /// decide who may see the customer). The timeline is kept opened and with the names
    /// its events mention, so a portrait served from memory costs no statement.
    async fn portrait_cached(
        &self,
        cache: &PortraitCache,
        customer_id: &str,
        wants: PortraitWants,
    ) -> Result<Option<Arc<Portrait>>, ReadError> {
        let wants = PortraitWants {
            relations: true,
            ..wants
        };
        let tenant = self.tenant.as_str();
        let ticket = cache.ticket();
        if let Some(portrait) = cache.get(tenant, customer_id, wants) {
            return Ok(Some(portrait));
        }
        let sql = self.portrait_sql(&Scope::Tenant, customer_id, wants);
        let rows = scoped!(self, |conn| fetch_all!(sql, PortraitRow, &mut *conn));
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let (record, mut parts) = Self::assemble(row, wants)?;
        if let Some(timeline) = parts.timeline.as_mut() {
            parts.names = Some(self.open_and_name(customer_id, timeline).await?);
        }
        let portrait = Arc::new((record, parts));
        cache.put(ticket, tenant, customer_id, wants, portrait.clone());
        Ok(Some(portrait))
    }

    /// Opens the sealed personal data of `timeline`'s events in place and reads the
    /// names they mention.
    async fn open_and_name(
        &self,
        customer_id: &str,
        timeline: &mut [TimelineRecord],
    ) -> Result<super::DisplayNames, ReadError> {
        let mut events = Vec::with_capacity(timeline.len());
        for row in timeline.iter() {
            let event: CustomerEvent = serde_json::from_str(&row.payload).map_err(|e| {
                ReadError::BadEvent(format!("timeline event {}: {e}", row.sequence))
            })?;
            events.push(event);
        }
        self.open_customer_events(customer_id, &mut events).await?;
        for (row, event) in timeline.iter_mut().zip(&events) {
            row.payload = serde_json::to_string(event).map_err(|e| {
                ReadError::BadEvent(format!("timeline event {}: {e}", row.sequence))
            })?;
        }
        self.display_names(&super::Mentioned::of(&events)).await
    }

    /// The PostgreSQL statement of [`Reads::portrait`] (tests EXPLAIN it).
    pub fn portrait_sql(&self, scope: &Scope, customer_id: &str, wants: PortraitWants) -> Sql {
        let mut sql = Sql::new(&format!("SELECT {CUSTOMER_COLUMNS}"));
        for (wanted, part, name) in [
            (wants.relations, RELATIONS, "relations"),
            (wants.tags, TAGS, "tags"),
            (wants.groups, GROUPS, "groups"),
            (wants.coupons, COUPONS, "coupons"),
        ] {
            let expr = if wanted { part } else { "CAST(NULL AS TEXT)" };
            sql.push(&format!(", {expr} AS {name}"));
        }
        match wants.timeline {
            Some(limit) => {
                sql.push(
                    ", (SELECT CAST(json_agg(p ORDER BY p.sequence DESC) AS TEXT) FROM \
                     (SELECT sequence, event_type, payload, metadata FROM events \
                     WHERE aggregate_type = 'Customer' AND aggregate_id = ",
                )
                .bind(Arg::Text(format!("{}:{customer_id}", self.tenant)))
                .push(" AND tenant_id = ")
                .bind(Arg::Text(self.tenant.to_string()))
                .push(" ORDER BY sequence DESC LIMIT ")
                .bind(Arg::Int(limit))
                .push(") p) AS timeline");
            }
            None => {
                sql.push(", CAST(NULL AS TEXT) AS timeline");
            }
        }
        sql.push(" FROM rm_customer c WHERE c.tenant_id = ")
            .bind(Arg::Text(self.tenant.to_string()))
            .push(" AND c.customer_id = ")
            .bind(Arg::Text(customer_id.to_string()));
        self.scope_predicate(&mut sql, scope);
        sql
    }

    fn assemble(
        row: PortraitRow,
        wants: PortraitWants,
    ) -> Result<(CustomerRecord, PortraitParts), ReadError> {
        let timeline = match wants.timeline {
            Some(_) => Some(
                decode::<TimelineJson>("timeline", row.timeline)?
                    .into_iter()
                    .map(|t| TimelineRecord {
                        sequence: t.sequence,
                        event_type: t.event_type,
                        payload: t.payload.get().to_string(),
                        metadata: t.metadata.get().to_string(),
                    })
                    .collect(),
            ),
            None => None,
        };
        let parts = PortraitParts {
            relations: wants
                .relations
                .then(|| decode("relations", row.relations))
                .transpose()?,
            tags: wants.tags.then(|| decode("tags", row.tags)).transpose()?,
            groups: wants
                .groups
                .then(|| decode("groups", row.groups))
                .transpose()?,
            coupons: wants
                .coupons
                .then(|| decode("coupons", row.coupons))
                .transpose()?,
            timeline,
            timeline_limit: wants.timeline.unwrap_or(0),
            names: None,
        };
        Ok((row.customer, parts))
    }

    /// The same portrait a statement per part (SQLite, whose JSON functions differ).
    async fn portrait_by_parts(
        &self,
        scope: &Scope,
        customer_id: &str,
        wants: PortraitWants,
    ) -> Result<Option<(CustomerRecord, PortraitParts)>, ReadError> {
        let Some(customer) = self.customer(scope, customer_id).await? else {
            return Ok(None);
        };
        let id = customer_id;
        let parts = PortraitParts {
            relations: if wants.relations {
                Some(self.relations(id).await?)
            } else {
                None
            },
            tags: if wants.tags {
                Some(self.tags(id).await?)
            } else {
                None
            },
            groups: if wants.groups {
                Some(self.groups(id).await?)
            } else {
                None
            },
            coupons: if wants.coupons {
                Some(self.coupons(id).await?)
            } else {
                None
            },
            timeline: match wants.timeline {
                Some(limit) => Some(self.timeline(id, None, limit).await?),
                None => None,
            },
            timeline_limit: wants.timeline.unwrap_or(0),
            names: None,
        };
        Ok(Some((customer, parts)))
    }
}
