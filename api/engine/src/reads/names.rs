//! The names a guide knows people and things by, for ids found in events: staff, tags
//! and chat groups, in one statement.

use std::collections::HashMap;

use domain::customer::CustomerEvent;

use super::sql::fetch_all;
use super::{scoped, Arg, ReadError, Reads, Sql};

/// Names by id; an id without a name here is shown as itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisplayNames {
    pub staff: HashMap<String, String>,
    pub tags: HashMap<String, String>,
    pub groups: HashMap<String, String>,
}

#[derive(sqlx::FromRow)]
struct Named {
    kind: String,
    id: String,
    name: Option<String>,
}

impl Reads {
    /// The names of these staff, tags and chat groups of the tenant (deleted tags and
    /// departed staff included: an old event still names them).
    pub async fn display_names(
        &self,
        staff: &[&str],
        tags: &[&str],
        groups: &[&str],
    ) -> Result<DisplayNames, ReadError> {
        let mut sql = Sql::default();
        for (kind, table, column, ids) in [
            ("s", "rm_staff", "staff_id", staff),
            ("t", "rm_tag", "tag_id", tags),
            ("g", "rm_group_owner", "group_id", groups),
        ] {
            if ids.is_empty() {
                continue;
            }
            if !sql.text.is_empty() {
                sql.push(" UNION ALL ");
            }
            sql.push(&format!(
                "SELECT '{kind}' AS kind, {column} AS id, name FROM {table} WHERE tenant_id = "
            ))
            .bind(Arg::Text(self.tenant.to_string()))
            .push(&format!(" AND {column} IN "))
            .bind_list(ids.iter().map(|id| Arg::Text((*id).to_string())));
        }
        let mut names = DisplayNames::default();
        if sql.text.is_empty() {
            return Ok(names);
        }
        let rows = scoped!(self, |conn| fetch_all!(sql, Named, &mut *conn));
        for row in rows {
            let Some(name) = row.name.filter(|n| !n.is_empty()) else {
                continue;
            };
            let map = match row.kind.as_str() {
                "s" => &mut names.staff,
                "t" => &mut names.tags,
                _ => &mut names.groups,
            };
            map.insert(row.id, name);
        }
        Ok(names)
    }
}

/// The staff, tag and group ids `event` names, for [`DisplayNames`].
pub fn mentions(event: &CustomerEvent) -> (Vec<&str>, Option<&str>, Option<&str>) {
    use CustomerEvent as E;
    match event {
        E::FriendAdded { staff, .. }
        | E::FriendRemoved { staff, .. }
        | E::RemarkChanged { staff, .. } => (vec![staff.as_str()], None, None),
        E::Tagged { staff, tag, .. } | E::Untagged { staff, tag, .. } => {
            (vec![staff.as_str()], Some(tag.as_str()), None)
        }
        E::JoinedGroup { group, .. } | E::LeftGroup { group, .. } => {
            (vec![], None, Some(group.as_str()))
        }
        E::PurchaseRecorded { staff, .. } | E::CouponIssued { staff, .. } => {
            (staff.iter().map(|s| s.as_str()).collect(), None, None)
        }
        E::MassMessageDelivered { sender, .. }
        | E::MomentDelivered { sender, .. }
        | E::WelcomeMessageSent { sender, .. } => (vec![sender.as_str()], None, None),
        E::HandoverRequested { from, to, .. }
        | E::HandoverAccepted { from, to, .. }
        | E::HandoverRefused { from, to, .. } => (vec![from.as_str(), to.as_str()], None, None),
        E::ProfileUpdated { .. }
        | E::CouponRedeemed { .. }
        | E::CouponExpired { .. }
        | E::CampaignHeldOut { .. }
        | E::CustomerErased { .. } => (vec![], None, None),
    }
}
