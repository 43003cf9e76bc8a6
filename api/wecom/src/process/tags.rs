//! The enterprise tag library as WeCom's API describes it: the steps that bring the
//! engine's library to it. Pure.

use domain::tags::{TagLibrary, TagLibraryCommand};
use domain::values::{TagGroupId, TagId};

use super::plan::parse;
use super::{Plan, Step};
use crate::client::{CorpTagGroup, TagFilter};

/// WeCom's `order` as the library keeps it (WeCom documents it as a 32-bit unsigned value).
fn order(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The commands that bring the library to what WeCom answered for part of it: groups
/// and tags created or renamed, then their order. Entries WeCom marks deleted are left
/// to their own delete notices. Pure.
pub fn tag_steps(library: &TagLibrary, groups: &[CorpTagGroup]) -> Result<Vec<Step>, Plan> {
    let step = |part: String, command| Step::Tags {
        part: Some(part),
        command,
    };
    let mut steps = Vec::new();
    let mut group_order = Vec::new();
    for g in groups.iter().filter(|g| !g.deleted) {
        let group = parse(TagGroupId::parse(g.group_id.as_str()))?;
        let known = library.group(&group);
        match known {
            None => steps.push(step(
                format!("group:{group}:create"),
                TagLibraryCommand::CreateGroup {
                    group: group.clone(),
                    name: g.group_name.clone(),
                },
            )),
            Some(entry) if entry.name != g.group_name => steps.push(step(
                format!("group:{group}:name"),
                TagLibraryCommand::RenameGroup {
                    group: group.clone(),
                    name: g.group_name.clone(),
                },
            )),
            Some(_) => {}
        }
        if known.map_or(0, |e| e.order) != order(g.order) {
            group_order.push((group.clone(), order(g.order)));
        }
        let mut tag_order = Vec::new();
        for t in g.tag.iter().filter(|t| !t.deleted) {
            let tag = parse(TagId::parse(t.id.as_str()))?;
            let known = library.tag(&tag);
            match known {
                None => steps.push(step(
                    format!("tag:{tag}:create"),
                    TagLibraryCommand::CreateTag {
                        tag: tag.clone(),
                        group: group.clone(),
                        name: t.name.clone(),
                    },
                )),
                Some(entry) if entry.name != t.name => steps.push(step(
                    format!("tag:{tag}:name"),
                    TagLibraryCommand::RenameTag {
                        tag: tag.clone(),
                        name: t.name.clone(),
                    },
                )),
                Some(_) => {}
            }
            if known.map_or(0, |e| e.order) != order(t.order) {
                tag_order.push((tag, order(t.order)));
            }
        }
        if !tag_order.is_empty() {
            steps.push(step(
                format!("order:{group}"),
                TagLibraryCommand::OrderTags {
                    group,
                    order: tag_order,
                },
            ));
        }
    }
    if !group_order.is_empty() {
        steps.push(step(
            "order:groups".into(),
            TagLibraryCommand::OrderGroups { order: group_order },
        ));
    }
    Ok(steps)
}

/// Whether WeCom's answer for `filter` holds what was asked for: a tag or group that
/// is missing (a rule-group tag, or deleted since) has nothing to sync. Pure.
pub(super) fn tags_answered(filter: &TagFilter, groups: &[CorpTagGroup]) -> bool {
    match filter {
        TagFilter::All => true,
        TagFilter::Groups(ids) => ids
            .iter()
            .all(|id| groups.iter().any(|g| &g.group_id == id)),
        TagFilter::Tags(ids) => ids
            .iter()
            .all(|id| groups.iter().any(|g| g.tag.iter().any(|t| &t.id == id))),
    }
}
