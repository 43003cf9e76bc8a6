//! Staff, the departure reassignment view and the tag library, for operations.

use chrono::{DateTime, Utc};

use super::sql::fetch_all;
use super::{scoped, Arg, ReadError, Reads, Sql};

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StaffRecord {
    pub staff_id: String,
    pub name: String,
    pub store_id: String,
    pub title: String,
    pub customer_limit: i64,
    pub departed_at: Option<DateTime<Utc>>,
    pub customers: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct StaffFilter {
    pub store: Option<String>,
    pub departed: Option<bool>,
}

/// A departed member of staff and what they still hold.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DepartureRecord {
    pub staff_id: String,
    pub name: String,
    pub store_id: String,
    pub departed_at: Option<DateTime<Utc>>,
    /// Customers still served by them.
    pub customers: i64,
    /// Customer groups they still own.
    pub groups: i64,
    pub handovers_waiting: i64,
    pub handovers_accepted: i64,
    pub handovers_refused: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HandoverRecord {
    pub customer_id: String,
    pub handover_id: String,
    pub from_staff_id: String,
    pub to_staff_id: String,
    pub kind: String,
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub auto_accept_at: DateTime<Utc>,
    pub concluded_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TagGroupRecord {
    pub group_id: String,
    pub name: String,
    pub sort_order: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LibraryTagRecord {
    pub group_id: String,
    pub tag_id: String,
    pub name: String,
    pub sort_order: i64,
}

impl Reads {
    pub async fn staff_members(
        &self,
        filter: &StaffFilter,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<StaffRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT s.staff_id, s.name, s.store_id, s.title, s.customer_limit, s.departed_at, \
             (SELECT count(*) FROM rm_customer_staff r WHERE r.tenant_id = s.tenant_id \
              AND r.staff_id = s.staff_id) AS customers \
             FROM rm_staff s WHERE s.tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()));
        if let Some(store) = &filter.store {
            sql.push(" AND s.store_id = ")
                .bind(Arg::Text(store.clone()));
        }
        match filter.departed {
            Some(true) => {
                sql.push(" AND s.departed_at IS NOT NULL");
            }
            Some(false) => {
                sql.push(" AND s.departed_at IS NULL");
            }
            None => {}
        }
        if let Some(after) = after {
            sql.push(" AND s.staff_id > ").bind(Arg::Text(after));
        }
        sql.push(" ORDER BY s.staff_id LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            StaffRecord,
            &mut *conn
        )))
    }

    pub async fn staff_member(&self, staff_id: &str) -> Result<Option<StaffRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT s.staff_id, s.name, s.store_id, s.title, s.customer_limit, s.departed_at, \
             (SELECT count(*) FROM rm_customer_staff r WHERE r.tenant_id = s.tenant_id \
              AND r.staff_id = s.staff_id) AS customers \
             FROM rm_staff s WHERE s.tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND s.staff_id = ")
            .bind(Arg::Text(staff_id.to_string()));
        let rows = scoped!(self, |conn| fetch_all!(sql, StaffRecord, &mut *conn));
        Ok(rows.into_iter().next())
    }

    /// The reassignment view: departed staff with the customers and groups they still
    /// hold and their handovers by status, ordered by staff id after `after`.
    pub async fn departures(
        &self,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<DepartureRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT d.staff_id, d.name, d.store_id, d.departed_at, \
             (SELECT count(*) FROM rm_staff_customer x WHERE x.tenant_id = d.tenant_id \
              AND x.staff_id = d.staff_id) AS customers, \
             (SELECT count(*) FROM rm_group_owner g WHERE g.tenant_id = d.tenant_id \
              AND g.owner_staff_id = d.staff_id AND NOT g.dismissed) AS groups, \
             (SELECT count(*) FROM rm_handover h WHERE h.tenant_id = d.tenant_id \
              AND h.from_staff_id = d.staff_id AND h.status = 'waiting') AS handovers_waiting, \
             (SELECT count(*) FROM rm_handover h WHERE h.tenant_id = d.tenant_id \
              AND h.from_staff_id = d.staff_id AND h.status = 'accepted') AS handovers_accepted, \
             (SELECT count(*) FROM rm_handover h WHERE h.tenant_id = d.tenant_id \
              AND h.from_staff_id = d.staff_id AND h.status LIKE 'refused%') AS handovers_refused \
             FROM rm_departure_staff d WHERE d.tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND d.departed_at IS NOT NULL");
        if let Some(after) = after {
            sql.push(" AND d.staff_id > ").bind(Arg::Text(after));
        }
        sql.push(" ORDER BY d.staff_id LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            DepartureRecord,
            &mut *conn
        )))
    }

    /// Handovers away from `staff_id`, by customer id after `after`.
    pub async fn handovers_from(
        &self,
        staff_id: &str,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<HandoverRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT customer_id, handover_id, from_staff_id, to_staff_id, kind, status, \
             requested_at, auto_accept_at, concluded_at FROM rm_handover WHERE tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND from_staff_id = ")
            .bind(Arg::Text(staff_id.to_string()));
        if let Some(after) = after {
            sql.push(" AND customer_id || '/' || handover_id > ")
                .bind(Arg::Text(after));
        }
        sql.push(" ORDER BY customer_id || '/' || handover_id LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            HandoverRecord,
            &mut *conn
        )))
    }

    /// Tag groups that are not deleted.
    pub async fn tag_groups(
        &self,
        after: Option<String>,
        limit: i64,
    ) -> Result<Vec<TagGroupRecord>, ReadError> {
        let mut sql = Sql::new(
            "SELECT g.group_id, g.name, g.sort_order FROM rm_tag_group g WHERE g.tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND NOT g.deleted");
        if let Some(after) = after {
            sql.push(" AND g.group_id > ").bind(Arg::Text(after));
        }
        sql.push(" ORDER BY g.group_id LIMIT ")
            .bind(Arg::Int(limit));
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            TagGroupRecord,
            &mut *conn
        )))
    }

    /// The live tags of these groups.
    pub async fn library_tags(
        &self,
        groups: &[String],
    ) -> Result<Vec<LibraryTagRecord>, ReadError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql =
            Sql::new("SELECT group_id, tag_id, name, sort_order FROM rm_tag WHERE tenant_id = ");
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND NOT deleted AND group_id IN ")
            .bind_list(groups.iter().cloned().map(Arg::Text))
            .push(" ORDER BY group_id, tag_id");
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            LibraryTagRecord,
            &mut *conn
        )))
    }

    /// Whether a tag exists in the library and is live: the fact tagging commands carry.
    pub async fn tag_state(&self, tag_id: &str) -> Result<Option<bool>, ReadError> {
        let mut sql = Sql::new("SELECT deleted FROM rm_tag WHERE tenant_id = ");
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND tag_id = ")
            .bind(Arg::Text(tag_id.to_string()));
        let rows = scoped!(self, |conn| fetch_all!(sql, (bool,), &mut *conn));
        Ok(rows.into_iter().next().map(|(deleted,)| !deleted))
    }
}
