//! A customer's portrait as it stood at an instant, folded from the log: the customer's
//! own stream, the tag library's (tag names as they were then), the streams of the
//! staff who served or tagged them (their names and stores then) and of the chat groups
//! they were in (names, owners and notices then), each up to the events that had
//! occurred by that instant, through the folds of the projections that own those rows
//! ([`PortraitSet`]; [`Departures`] for groups), so the answer is the rows the read
//! models held then.
//!
//! Cost: the customer's stream, the tag library and a few staff and group streams, read
//! whole by their keys; events after the instant are read and skipped (a stream is
//! ordered by sequence, and imports put older events after newer ones).

use chrono::{DateTime, Utc};
use domain::stamp::TAG_LIBRARY_LOCAL_ID;
use projections::departures::{Departures, GroupOwnerRow};
use projections::log::{parse_event, AnyEvent, Checkpoint, LoggedEvent};
use projections::model::ReadModel;
use projections::pii::Keys;
use projections::portrait::fold::PortraitSet;

use super::names::{mentions, DisplayNames, Mentioned};
use super::portrait::{PortraitParts, PortraitWants};
use super::sql::fetch_all;
use super::{
    scoped, Arg, CouponRecord, CustomerRecord, GroupRecord, ReadError, Reads, RelationRecord,
    Scope, Sql, TagRecord, TimelineRecord,
};

#[derive(sqlx::FromRow)]
struct StoredEvent {
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    payload: String,
    metadata: String,
}

/// A chat group's name, owner and notice, today's or as they were at an instant.
#[derive(sqlx::FromRow)]
struct GroupFacts {
    group_id: String,
    name: Option<String>,
    owner_staff_id: Option<String>,
    notice: Option<String>,
}

#[derive(serde::Deserialize)]
struct Occurred {
    occurred_at: DateTime<Utc>,
}

impl Reads {
    /// The portrait of a customer the caller may see today, as it stood at `at`;
    /// `None` when the caller may not see them or they were not yet known then.
    pub async fn portrait_as_of(
        &self,
        scope: &Scope,
        customer_id: &str,
        at: DateTime<Utc>,
        wants: PortraitWants,
    ) -> Result<Option<(CustomerRecord, PortraitParts)>, ReadError> {
        if self.customer(scope, customer_id).await?.is_none() {
            return Ok(None);
        }
        let tenant = self.tenant.to_string();
        let mut set = PortraitSet::default();
        let customer_stream = self.stream("Customer", &[customer_id]).await?;
        let keys = self.keys(&customer_stream).await?;
        let mut timeline = Vec::new();
        let mut events_kept = Vec::new();
        let (mut staff, mut groups) = (Vec::new(), Vec::new());
        for stored in &customer_stream {
            if let Some(event) = self.happened(stored, at, &keys)? {
                if let AnyEvent::Customer(e) = &event.event {
                    let (s, _, g) = mentions(e);
                    staff.extend(s.into_iter().map(str::to_string));
                    groups.extend(g.map(str::to_string));
                }
                set.apply(&event);
                timeline.push(stored);
                events_kept.push(event);
            }
        }
        let key = (tenant.clone(), customer_id.to_string());
        if !set.customers.contains_key(&key) {
            return Ok(None);
        }
        // Everyone the stream names (servers, taggers, senders, handover parties), so
        // the timeline reads their names of that instant too.
        staff.sort_unstable();
        staff.dedup();
        groups.sort_unstable();
        groups.dedup();
        let staff: Vec<&str> = staff.iter().map(String::as_str).collect();
        let group_ids: Vec<&str> = groups.iter().map(String::as_str).collect();
        let mut others = self.stream("TagLibrary", &[TAG_LIBRARY_LOCAL_ID]).await?;
        others.extend(self.stream("Staff", &staff).await?);
        others.extend(self.stream("CustomerGroup", &group_ids).await?);
        // Groups' rows belong to the departures projection: its fold, fed only the
        // groups' streams, holds them as they were.
        let mut owners = Departures::default();
        for stored in &others {
            if let Some(event) = self.happened(stored, at, &Keys::none())? {
                if let AnyEvent::Group(_) = &event.event {
                    owners.apply(&event);
                } else {
                    set.apply(&event);
                }
            }
        }
        let then: Vec<GroupFacts> = owners
            .rows()
            .take_rows::<GroupOwnerRow>()
            .map(|g| GroupFacts {
                group_id: g.group_id,
                name: Some(g.name),
                owner_staff_id: Some(g.owner_staff_id),
                notice: Some(g.notice),
            })
            .collect();
        // A group whose stream says nothing by then (its creation imported with a later
        // time than a member's join) is shown as it is now, rather than nameless.
        let missing: Vec<&str> = group_ids
            .iter()
            .copied()
            .filter(|id| !then.iter().any(|g| g.group_id == *id))
            .collect();
        let mut groups_then = self.groups_now(&missing).await?;
        groups_then.extend(then);
        let portrait = &set.customers[&key];
        let c = &portrait.customer;
        let record = CustomerRecord {
            customer_id: c.customer_id.clone(),
            name: c.name.clone(),
            phone: c.phone.clone(),
            erased_at: c.erased_at,
            first_added_at: c.first_added_at,
            first_staff_id: c.first_staff_id.clone(),
            add_way: c.add_way,
            channel_state: c.channel_state.clone(),
            stage: c.stage.clone(),
            purchases: c.purchases,
            total_fen: c.total_fen,
            first_purchase_at: c.first_purchase_at,
            last_purchase_at: c.last_purchase_at,
            coupons_issued: c.coupons_issued,
            coupons_redeemed: c.coupons_redeemed,
            coupons_expired: c.coupons_expired,
            last_activity_at: c.last_activity_at,
            version: c.version,
        };
        let staff_row = |id: &str| set.staff.get(&(tenant.clone(), id.to_string()));
        let mut relations: Vec<RelationRecord> = portrait
            .relations
            .values()
            .map(|r| RelationRecord {
                staff_id: r.staff_id.clone(),
                staff_name: staff_row(&r.staff_id).map(|s| s.name.clone()),
                store_id: staff_row(&r.staff_id).map(|s| s.store_id.clone()),
                added_at: r.added_at,
                add_way: r.add_way,
                remark: r.remark.clone(),
                description: r.description.clone(),
            })
            .collect();
        relations.sort_by(|a, b| (a.added_at, &a.staff_id).cmp(&(b.added_at, &b.staff_id)));
        let mut tags: Vec<TagRecord> = portrait
            .tags
            .values()
            .map(|t| {
                let tag = set.tags.get(&(tenant.clone(), t.tag_id.clone()));
                let group =
                    tag.and_then(|g| set.tag_groups.get(&(tenant.clone(), g.group_id.clone())));
                TagRecord {
                    tag_id: t.tag_id.clone(),
                    name: tag.map(|t| t.name.clone()),
                    group_name: group.map(|g| g.name.clone()),
                    staff_id: t.staff_id.clone(),
                    tagged_at: t.tagged_at,
                }
            })
            .collect();
        tags.sort_by(|a, b| {
            (a.tagged_at, &a.tag_id, &a.staff_id).cmp(&(b.tagged_at, &b.tag_id, &b.staff_id))
        });
        let groups = if wants.groups {
            let mut groups: Vec<GroupRecord> = portrait
                .groups
                .values()
                .map(|g| {
                    let known = groups_then.iter().find(|n| n.group_id == g.group_id);
                    GroupRecord {
                        group_id: g.group_id.clone(),
                        name: known.and_then(|n| n.name.clone()),
                        owner_staff_id: known.and_then(|n| n.owner_staff_id.clone()),
                        notice: known.and_then(|n| n.notice.clone()),
                        joined_at: g.joined_at,
                    }
                })
                .collect();
            groups.sort_by(|a, b| (a.joined_at, &a.group_id).cmp(&(b.joined_at, &b.group_id)));
            Some(groups)
        } else {
            None
        };
        let mut coupons: Vec<CouponRecord> = portrait
            .coupons
            .values()
            .map(|c| CouponRecord {
                coupon_id: c.coupon_id.clone(),
                campaign_id: c.campaign_id.clone(),
                value_fen: c.value_fen,
                issued_at: c.issued_at,
                expires_at: c.expires_at,
                status: c.status.clone(),
                closed_at: c.closed_at,
            })
            .collect();
        coupons.sort_by(|a, b| (b.issued_at, &a.coupon_id).cmp(&(a.issued_at, &b.coupon_id)));
        let timeline = wants.timeline.map(|limit| {
            timeline
                .iter()
                .rev()
                .take(usize::try_from(limit.max(0)).unwrap_or(0))
                .map(|e| TimelineRecord {
                    sequence: e.sequence,
                    event_type: e.event_type.clone(),
                    payload: e.payload.clone(),
                    metadata: e.metadata.clone(),
                })
                .collect()
        });
        // Campaigns' names are operations' settings, not facts of the log: today's.
        let opened: Vec<&domain::customer::CustomerEvent> = events_kept
            .iter()
            .filter_map(|e| match &e.event {
                AnyEvent::Customer(e) => Some(e),
                _ => None,
            })
            .collect();
        let mentioned = Mentioned::of(opened);
        let campaigns = self
            .display_names(&Mentioned {
                campaigns: mentioned.campaigns,
                coupon_campaigns: mentioned.coupon_campaigns,
                ..Mentioned::default()
            })
            .await?;
        let names = DisplayNames {
            campaigns: campaigns.campaigns,
            coupon_campaigns: campaigns.coupon_campaigns,
            staff: set
                .staff
                .values()
                .map(|s| (s.staff_id.clone(), s.name.clone()))
                .collect(),
            tags: set
                .tags
                .values()
                .map(|t| (t.tag_id.clone(), t.name.clone()))
                .collect(),
            groups: groups_then
                .iter()
                .filter_map(|g| Some((g.group_id.clone(), g.name.clone()?)))
                .collect(),
        };
        let parts = PortraitParts {
            relations: wants.relations.then_some(relations),
            tags: wants.tags.then_some(tags),
            groups,
            coupons: wants.coupons.then_some(coupons),
            timeline,
            timeline_limit: wants.timeline.unwrap_or(0),
            names: Some(names),
        };
        Ok(Some((record, parts)))
    }

    /// Every event of the tenant's streams of `aggregate_type` with these local ids, in
    /// stream order.
    async fn stream(
        &self,
        aggregate_type: &str,
        local_ids: &[&str],
    ) -> Result<Vec<StoredEvent>, ReadError> {
        if local_ids.is_empty() {
            return Ok(Vec::new());
        }
        if matches!(self.db, crate::db::Database::Sqlite(_)) {
            if let Some(events) = self.stream_in_one_row(aggregate_type, local_ids).await? {
                return Ok(events);
            }
        }
        let mut sql = Sql::new(
            "SELECT aggregate_type, aggregate_id, sequence, event_type, CAST(payload AS TEXT) AS payload, \
             CAST(metadata AS TEXT) AS metadata FROM events WHERE aggregate_type = ",
        );
        sql.bind(Arg::Text(aggregate_type.to_string()))
            .push(" AND aggregate_id IN ")
            .bind_list(
                local_ids
                    .iter()
                    .map(|id| Arg::Text(format!("{}:{id}", self.tenant))),
            )
            .push(" AND tenant_id = ")
            .bind(Arg::Text(self.tenant.to_string()))
            .push(" ORDER BY aggregate_id, sequence");
        Ok(scoped!(self, |conn| fetch_all!(
            sql,
            StoredEvent,
            &mut *conn
        )))
    }

    /// [`Self::stream`] on SQLite, as one row: sqlx hands each row of a SQLite query
    /// from the connection's thread to the caller's over a channel, and for a stream of
    /// 1,000 events those hand-offs (a thread wake-up each) were the largest share of
    /// the as-of portrait's time in a profile. The events are joined with separators
    /// that JSON text never holds unescaped (ASCII RS between events, US between
    /// fields); `None` (read row by row instead) if what comes back does not split
    /// into the streams asked for.
    async fn stream_in_one_row(
        &self,
        aggregate_type: &str,
        local_ids: &[&str],
    ) -> Result<Option<Vec<StoredEvent>>, ReadError> {
        #[derive(sqlx::FromRow)]
        struct Joined {
            events: Option<String>,
        }
        let streams: Vec<String> = local_ids
            .iter()
            .map(|id| format!("{}:{id}", self.tenant))
            .collect();
        let mut sql = Sql::new(
            "SELECT group_concat(aggregate_id || char(31) || sequence || char(31) || \
             event_type || char(31) || payload || char(31) || metadata, char(30) \
             ORDER BY aggregate_id, sequence) AS events FROM events WHERE aggregate_type = ",
        );
        sql.bind(Arg::Text(aggregate_type.to_string()))
            .push(" AND aggregate_id IN ")
            .bind_list(streams.iter().cloned().map(Arg::Text))
            .push(" AND tenant_id = ")
            .bind(Arg::Text(self.tenant.to_string()));
        let rows: Vec<Joined> = scoped!(self, |conn| fetch_all!(sql, Joined, &mut *conn));
        let Some(joined) = rows.into_iter().next().and_then(|r| r.events) else {
            return Ok(Some(Vec::new()));
        };
        Ok(split_events(aggregate_type, &streams, &joined))
    }

    /// The keys that open the sealed personal data of `events` (one customer's). Read
    /// on the engine's own connection: readers have no grant on the keys.
    async fn keys(&self, events: &[StoredEvent]) -> Result<Keys, ReadError> {
        let sealed: Vec<String> = events
            .iter()
            .filter(|e| e.payload.contains(projections::pii::SEALED_PREFIX))
            .map(|e| e.aggregate_id.clone())
            .take(1)
            .collect();
        projections::pii::keys::fetch(&self.db, &sealed)
            .await
            .map_err(|e| ReadError::BadEvent(e.to_string()))
    }

    /// The event, opened with `keys`, if it had occurred by `at`.
    fn happened(
        &self,
        stored: &StoredEvent,
        at: DateTime<Utc>,
        keys: &Keys,
    ) -> Result<Option<LoggedEvent>, ReadError> {
        let bad = |e: serde_json::Error| {
            ReadError::BadEvent(format!("{} #{}: {e}", stored.aggregate_id, stored.sequence))
        };
        let occurred: Occurred = serde_json::from_str(&stored.metadata).map_err(bad)?;
        if occurred.occurred_at > at {
            return Ok(None);
        }
        let local_id = domain::stamp::local_id(&stored.aggregate_id);
        let mut event = parse_event(&stored.aggregate_type, &stored.payload).map_err(bad)?;
        if let AnyEvent::Customer(e) = &mut event {
            keys.open(&stored.aggregate_id, e)
                .map_err(|e| ReadError::BadEvent(e.to_string()))?;
        }
        Ok(Some(LoggedEvent {
            checkpoint: Checkpoint::START,
            tenant: self.tenant.to_string(),
            local_id: local_id.to_string(),
            sequence: stored.sequence,
            event,
        }))
    }

    /// Today's name, owner and notice of these chat groups.
    async fn groups_now(&self, ids: &[&str]) -> Result<Vec<GroupFacts>, ReadError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(
            "SELECT group_id, name, owner_staff_id, notice FROM rm_group_owner \
             WHERE tenant_id = ",
        );
        sql.bind(Arg::Text(self.tenant.to_string()))
            .push(" AND group_id IN ")
            .bind_list(ids.iter().map(|id| Arg::Text((*id).to_string())));
        Ok(scoped!(self, |conn| fetch_all!(
            sql, GroupFacts, &mut *conn
        )))
    }
}

/// The events [`Reads::stream_in_one_row`] joined, if every one splits into a stream
/// asked for, a sequence, an event type (a Rust name) and two JSON texts.
fn split_events(
    aggregate_type: &str,
    streams: &[String],
    joined: &str,
) -> Option<Vec<StoredEvent>> {
    joined
        .split('\u{1e}')
        .map(|event| {
            let mut fields = event.splitn(5, '\u{1f}');
            let aggregate_id = fields.next().filter(|id| streams.iter().any(|s| s == id))?;
            let sequence = fields.next()?.parse().ok()?;
            let event_type = fields
                .next()
                .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()))?;
            Some(StoredEvent {
                aggregate_type: aggregate_type.to_string(),
                aggregate_id: aggregate_id.to_string(),
                sequence,
                event_type: event_type.to_string(),
                payload: fields.next()?.to_string(),
                metadata: fields.next()?.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::split_events;

    #[test]
    fn joined_events_split_back_only_into_the_streams_asked_for() {
        let streams = vec!["t:wm1".to_string(), "t:wm2".to_string()];
        let joined =
            "t:wm1\u{1f}1\u{1f}FriendAdded\u{1f}{\"a\":\"x\\u001ey\"}\u{1f}{\"m\":1}\u{1e}\
                      t:wm2\u{1f}2\u{1f}Tagged\u{1f}{}\u{1f}{}";
        let events = split_events("Customer", &streams, joined).expect("splits");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].aggregate_id, "t:wm1");
        assert_eq!(events[0].sequence, 1);
        assert_eq!(events[0].payload, "{\"a\":\"x\\u001ey\"}");
        assert_eq!(events[1].event_type, "Tagged");
        assert_eq!(events[1].metadata, "{}");
        // A stream not asked for, a bad sequence or a missing field: not trusted.
        for bad in [
            "t:wm3\u{1f}1\u{1f}Tagged\u{1f}{}\u{1f}{}",
            "t:wm1\u{1f}x\u{1f}Tagged\u{1f}{}\u{1f}{}",
            "t:wm1\u{1f}1\u{1f}Tagged\u{1f}{}",
            "t:wm1\u{1f}1\u{1f}Tag ged\u{1f}{}\u{1f}{}",
        ] {
            assert!(split_events("Customer", &streams, bad).is_none(), "{bad:?}");
        }
    }
}
