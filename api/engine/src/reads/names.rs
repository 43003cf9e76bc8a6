//! The names a guide knows people and things by, for ids found in events: staff, tags,
//! chat groups and campaigns, in one statement.

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
    /// Campaigns' names by their jobs' ids (the ids deliveries and holdouts carry).
    pub campaigns: HashMap<String, String>,
    /// Coupon campaigns' names: those of the campaigns that measure them, as a coupon
    /// campaign is another system's id and operations name only their own campaigns.
    pub coupon_campaigns: HashMap<String, String>,
}

/// The ids a page of events names, each once, for [`Reads::display_names`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentioned<'a> {
    pub staff: Vec<&'a str>,
    pub tags: Vec<&'a str>,
    pub groups: Vec<&'a str>,
    pub campaigns: Vec<&'a str>,
    pub coupon_campaigns: Vec<&'a str>,
}

impl<'a> Mentioned<'a> {
    pub fn of(events: impl IntoIterator<Item = &'a CustomerEvent>) -> Self {
        use CustomerEvent as E;
        let mut m = Self::default();
        for event in events {
            let (staff, tag, group) = mentions(event);
            m.staff.extend(staff);
            m.tags.extend(tag);
            m.groups.extend(group);
            match event {
                E::MassMessageDelivered { message: id, .. }
                | E::MomentDelivered { moment: id, .. }
                | E::CampaignHeldOut { campaign: id, .. } => m.campaigns.push(id.as_str()),
                E::CouponIssued { campaign, .. } => m.coupon_campaigns.push(campaign.as_str()),
                _ => {}
            }
        }
        for ids in [
            &mut m.staff,
            &mut m.tags,
            &mut m.groups,
            &mut m.campaigns,
            &mut m.coupon_campaigns,
        ] {
            ids.sort_unstable();
            ids.dedup();
        }
        m
    }
}

#[derive(sqlx::FromRow)]
struct Named {
    kind: String,
    id: String,
    name: Option<String>,
    /// Orders the campaigns measuring one coupon campaign ('' for everything else).
    created: String,
}

impl Reads {
    /// The names of the staff, tags, chat groups and campaigns `ids` holds (deleted tags
    /// and departed staff included: an old event still names them).
    pub async fn display_names(&self, ids: &Mentioned<'_>) -> Result<DisplayNames, ReadError> {
        let mut sql = Sql::default();
        for (kind, table, column, ids) in [
            ("s", "rm_staff", "staff_id", &ids.staff),
            ("t", "rm_tag", "tag_id", &ids.tags),
            ("g", "rm_group_owner", "group_id", &ids.groups),
        ] {
            if ids.is_empty() {
                continue;
            }
            if !sql.text.is_empty() {
                sql.push(" UNION ALL ");
            }
            sql.push(&format!(
                "SELECT '{kind}' AS kind, {column} AS id, name, '' AS created FROM {table} \
                 WHERE tenant_id = "
            ))
            .bind(Arg::Text(self.tenant.to_string()))
            .push(&format!(" AND {column} IN "))
            .bind_list(ids.iter().map(|id| Arg::Text((*id).to_string())));
        }
        // A campaign's name is in its job's input, where operations gave it.
        let field = |name: &str| {
            if self.is_postgres() {
                format!("(CAST(input AS jsonb) ->> '{name}')")
            } else {
                format!("json_extract(input, '$.{name}')")
            }
        };
        for (kind, id, ids) in [
            ("c", "job_id".to_string(), &ids.campaigns),
            ("k", field("coupon_campaign"), &ids.coupon_campaigns),
        ] {
            if ids.is_empty() {
                continue;
            }
            if !sql.text.is_empty() {
                sql.push(" UNION ALL ");
            }
            sql.push(&format!(
                "SELECT '{kind}' AS kind, {id} AS id, {} AS name, \
                 CAST(created_at AS TEXT) AS created FROM jobs WHERE tenant_id = ",
                field("name")
            ))
            .bind(Arg::Text(self.tenant.to_string()))
            .push(" AND kind = ")
            .bind(Arg::Text(crate::campaign::KIND.to_string()))
            .push(&format!(" AND {id} IN "))
            .bind_list(ids.iter().map(|id| Arg::Text((*id).to_string())));
        }
        let mut names = DisplayNames::default();
        if sql.text.is_empty() {
            return Ok(names);
        }
        let mut rows = scoped!(self, |conn| fetch_all!(sql, Named, &mut *conn));
        // Several campaigns may measure one coupon campaign: the first one started,
        // which brought the coupon campaign in, names it.
        rows.sort_by(|a, b| a.created.cmp(&b.created));
        for row in rows {
            let Some(name) = row.name.filter(|n| !n.is_empty()) else {
                continue;
            };
            let map = match row.kind.as_str() {
                "s" => &mut names.staff,
                "t" => &mut names.tags,
                "g" => &mut names.groups,
                "c" => &mut names.campaigns,
                _ => &mut names.coupon_campaigns,
            };
            map.entry(row.id).or_insert(name);
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
