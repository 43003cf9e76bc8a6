//! A relation brought in from WeCom by the first import (issue 16). WeCom already holds
//! it, so nothing is refused: what the stream lacks is recorded, what it has is left,
//! and text longer than the engine keeps is cut rather than losing the relation.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{Customer, CustomerEvent, ImportedRelation, Profile};
use crate::rules;

/// At most `max` characters of `text`.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

impl Customer {
    /// The events that bring the stream to WeCom's relation, all at `at` (the
    /// relation's `createtime`: WeCom says when the customer was added, not when a tag
    /// or remark was set, and none can be older than the relation). Pure.
    pub(super) fn import_relation(
        &self,
        imported: ImportedRelation,
        at: DateTime<Utc>,
    ) -> Vec<CustomerEvent> {
        let ImportedRelation {
            staff,
            add_way,
            channel_state,
            profile,
            remark,
            description,
            tags,
        } = imported;
        let mut events = Vec::new();
        let relation = self.relations.get(&staff);
        if relation.is_none() {
            events.push(CustomerEvent::FriendAdded {
                staff: staff.clone(),
                add_way,
                channel_state,
                at,
            });
        }
        if let Some(profile) = profile.filter(|p| !p.name.trim().is_empty()) {
            let profile = Profile {
                name: cut(&profile.name, rules::CUSTOMER_NAME_MAX_CHARS),
                ..profile
            };
            if self.profile.as_ref() != Some(&profile) {
                events.push(CustomerEvent::ProfileUpdated {
                    name: profile.name,
                    // The import knows no phone: the one recorded stays.
                    phone: self.phone.clone(),
                    at,
                    gender: profile.gender,
                    avatar: profile.avatar,
                });
            }
        }
        let remark = cut(&remark, rules::REMARK_MAX_CHARS);
        let description = cut(&description, rules::DESCRIPTION_MAX_CHARS);
        let (known_remark, known_description) =
            relation.map_or(("", ""), |r| (r.remark.as_str(), r.description.as_str()));
        // An empty remark in WeCom says nothing: it never erases one set since.
        let says_something = !remark.is_empty() || !description.is_empty();
        if says_something
            && (remark.as_str(), description.as_str()) != (known_remark, known_description)
        {
            events.push(CustomerEvent::RemarkChanged {
                staff: staff.clone(),
                remark,
                description,
                at,
            });
        }
        let known_tags = relation.map(|r| &r.tags);
        let wanted: BTreeSet<_> = tags.into_iter().collect();
        for tag in wanted {
            if !known_tags.is_some_and(|t| t.contains(&tag)) {
                events.push(CustomerEvent::Tagged {
                    staff: staff.clone(),
                    tag,
                    at,
                });
            }
        }
        events
    }
}
