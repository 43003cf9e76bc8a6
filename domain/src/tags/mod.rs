//! The tenant's tag library: tag groups (age band, occupation, style, member tier...)
//! and their tags. One stream per tenant. It decides which tags exist; the Customer
//! aggregate is told a tag's [`crate::customer::TagState`] by its caller.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::customer::TagState;
use crate::rules;
use crate::stamp::Stamped;
use crate::values::{TagGroupId, TagId};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TagLibraryCommand {
    CreateGroup {
        group: TagGroupId,
        name: String,
    },
    RenameGroup {
        group: TagGroupId,
        name: String,
    },
    DeleteGroup {
        group: TagGroupId,
    },
    CreateTag {
        tag: TagId,
        group: TagGroupId,
        name: String,
    },
    RenameTag {
        tag: TagId,
        name: String,
    },
    DeleteTag {
        tag: TagId,
    },
    /// Sets the display order of tag groups (WeCom's `order`: the larger comes first).
    /// Groups not listed keep theirs.
    OrderGroups {
        order: Vec<(TagGroupId, u32)>,
    },
    /// Sets the display order of tags within `group`. Tags not listed keep theirs.
    OrderTags {
        group: TagGroupId,
        order: Vec<(TagId, u32)>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TagLibraryEvent {
    TagGroupCreated {
        group: TagGroupId,
        name: String,
        at: DateTime<Utc>,
    },
    TagGroupRenamed {
        group: TagGroupId,
        name: String,
        at: DateTime<Utc>,
    },
    TagGroupDeleted {
        group: TagGroupId,
        at: DateTime<Utc>,
    },
    TagCreated {
        tag: TagId,
        group: TagGroupId,
        name: String,
        at: DateTime<Utc>,
    },
    TagRenamed {
        tag: TagId,
        name: String,
        at: DateTime<Utc>,
    },
    TagDeleted {
        tag: TagId,
        at: DateTime<Utc>,
    },
    /// Only the groups whose order changed.
    TagGroupsOrdered {
        order: Vec<(TagGroupId, u32)>,
        at: DateTime<Utc>,
    },
    /// Only the tags of `group` whose order changed.
    TagsOrdered {
        group: TagGroupId,
        order: Vec<(TagId, u32)>,
        at: DateTime<Utc>,
    },
}

impl TagLibraryEvent {
    pub fn name(&self) -> &'static str {
        match self {
            Self::TagGroupCreated { .. } => "TagGroupCreated",
            Self::TagGroupRenamed { .. } => "TagGroupRenamed",
            Self::TagGroupDeleted { .. } => "TagGroupDeleted",
            Self::TagCreated { .. } => "TagCreated",
            Self::TagRenamed { .. } => "TagRenamed",
            Self::TagDeleted { .. } => "TagDeleted",
            Self::TagGroupsOrdered { .. } => "TagGroupsOrdered",
            Self::TagsOrdered { .. } => "TagsOrdered",
        }
    }
}

crate::decide::published_event!(TagLibraryEvent);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagLibraryError {
    #[error("a tag or tag group needs a name")]
    EmptyName,
    #[error("name is {chars} characters long, at most {max} allowed")]
    NameTooLong { chars: usize, max: usize },
    #[error("the id is already used")]
    IdTaken,
    #[error("another active entry already has that name")]
    DuplicateName,
    #[error("no such tag group")]
    UnknownGroup,
    #[error("no such tag")]
    UnknownTag,
    #[error("the tag or tag group was deleted")]
    Deleted,
    #[error("the tenant already has {0} tags, the maximum")]
    TooManyTags(usize),
    #[error("the tag belongs to another group")]
    TagNotInGroup,
    #[error("an entry is listed twice in one order")]
    DuplicateEntry,
}

error_codes!(TagLibraryError {
    EmptyName => "EMPTY_NAME",
    NameTooLong { .. } => "NAME_TOO_LONG",
    IdTaken => "ID_TAKEN",
    DuplicateName => "DUPLICATE_NAME",
    UnknownGroup => "UNKNOWN_TAG_GROUP",
    UnknownTag => "UNKNOWN_TAG",
    Deleted => "DELETED",
    TooManyTags(_) => "TOO_MANY_TAGS",
    TagNotInGroup => "TAG_NOT_IN_GROUP",
    DuplicateEntry => "DUPLICATE_ENTRY",
});

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub deleted: bool,
    /// Display order; the larger comes first (WeCom's convention). 0 until ordered.
    pub order: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TagEntry {
    pub group: TagGroupId,
    pub name: String,
    pub deleted: bool,
    /// Display order within the group; the larger comes first. 0 until ordered.
    pub order: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TagLibrary {
    groups: BTreeMap<TagGroupId, Entry>,
    tags: BTreeMap<TagId, TagEntry>,
    active_tags: usize,
}

fn check_name(name: &str) -> Result<(), TagLibraryError> {
    if name.trim().is_empty() {
        return Err(TagLibraryError::EmptyName);
    }
    let chars = name.chars().count();
    if chars > rules::TAG_NAME_MAX_CHARS {
        return Err(TagLibraryError::NameTooLong {
            chars,
            max: rules::TAG_NAME_MAX_CHARS,
        });
    }
    Ok(())
}

fn no_duplicates<'a, T: Ord + 'a>(ids: impl Iterator<Item = &'a T>) -> Result<(), TagLibraryError> {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(TagLibraryError::DuplicateEntry);
        }
    }
    Ok(())
}

impl TagLibrary {
    /// What a customer command needs to know about `tag`.
    pub fn tag_state(&self, tag: &TagId) -> TagState {
        match self.tags.get(tag) {
            Some(t) if !t.deleted => TagState::Active,
            Some(_) => TagState::Deleted,
            None => TagState::Unknown,
        }
    }

    pub fn tag(&self, tag: &TagId) -> Option<&TagEntry> {
        self.tags.get(tag)
    }

    pub fn group(&self, group: &TagGroupId) -> Option<&Entry> {
        self.groups.get(group)
    }

    pub fn active_tags(&self) -> usize {
        self.active_tags
    }

    fn live_group(&self, group: &TagGroupId) -> Result<&Entry, TagLibraryError> {
        match self.groups.get(group) {
            None => Err(TagLibraryError::UnknownGroup),
            Some(g) if g.deleted => Err(TagLibraryError::Deleted),
            Some(g) => Ok(g),
        }
    }

    fn live_tag(&self, tag: &TagId) -> Result<&TagEntry, TagLibraryError> {
        match self.tags.get(tag) {
            None => Err(TagLibraryError::UnknownTag),
            Some(t) if t.deleted => Err(TagLibraryError::Deleted),
            Some(t) => Ok(t),
        }
    }

    fn group_name_taken(&self, name: &str, except: Option<&TagGroupId>) -> bool {
        self.groups
            .iter()
            .any(|(id, g)| !g.deleted && g.name == name && Some(id) != except)
    }

    fn tag_name_taken(&self, group: &TagGroupId, name: &str, except: Option<&TagId>) -> bool {
        self.tags
            .iter()
            .any(|(id, t)| !t.deleted && &t.group == group && t.name == name && Some(id) != except)
    }

    /// Decides what `command`, arriving at `at`, makes happen. Pure.
    pub fn decide(
        &self,
        command: TagLibraryCommand,
        at: DateTime<Utc>,
    ) -> Result<Vec<TagLibraryEvent>, TagLibraryError> {
        use TagLibraryCommand as C;
        use TagLibraryEvent as E;
        match command {
            C::CreateGroup { group, name } => {
                check_name(&name)?;
                if self.groups.contains_key(&group) {
                    return Err(TagLibraryError::IdTaken);
                }
                if self.group_name_taken(&name, None) {
                    return Err(TagLibraryError::DuplicateName);
                }
                Ok(vec![E::TagGroupCreated { group, name, at }])
            }
            C::RenameGroup { group, name } => {
                check_name(&name)?;
                self.live_group(&group)?;
                if self.group_name_taken(&name, Some(&group)) {
                    return Err(TagLibraryError::DuplicateName);
                }
                Ok(vec![E::TagGroupRenamed { group, name, at }])
            }
            C::DeleteGroup { group } => {
                self.live_group(&group)?;
                // Deleting a group deletes its tags, each with its own event, so every
                // read model learns of each tag's deletion the same way.
                let mut events: Vec<E> = self
                    .tags
                    .iter()
                    .filter(|(_, t)| !t.deleted && t.group == group)
                    .map(|(tag, _)| E::TagDeleted {
                        tag: tag.clone(),
                        at,
                    })
                    .collect();
                events.push(E::TagGroupDeleted { group, at });
                Ok(events)
            }
            C::CreateTag { tag, group, name } => {
                check_name(&name)?;
                self.live_group(&group)?;
                if self.tags.contains_key(&tag) {
                    return Err(TagLibraryError::IdTaken);
                }
                if self.tag_name_taken(&group, &name, None) {
                    return Err(TagLibraryError::DuplicateName);
                }
                if self.active_tags >= rules::MAX_TAGS_PER_TENANT {
                    return Err(TagLibraryError::TooManyTags(self.active_tags));
                }
                Ok(vec![E::TagCreated {
                    tag,
                    group,
                    name,
                    at,
                }])
            }
            C::RenameTag { tag, name } => {
                check_name(&name)?;
                let entry = self.live_tag(&tag)?;
                if self.tag_name_taken(&entry.group, &name, Some(&tag)) {
                    return Err(TagLibraryError::DuplicateName);
                }
                Ok(vec![E::TagRenamed { tag, name, at }])
            }
            C::DeleteTag { tag } => {
                self.live_tag(&tag)?;
                Ok(vec![E::TagDeleted { tag, at }])
            }
            C::OrderGroups { order } => {
                no_duplicates(order.iter().map(|(g, _)| g))?;
                let mut changed = Vec::new();
                for (group, n) in order {
                    if self.live_group(&group)?.order != n {
                        changed.push((group, n));
                    }
                }
                // An order WeCom reports again (a redelivery, a shuffle elsewhere) is
                // no change and leaves no event.
                if changed.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![E::TagGroupsOrdered { order: changed, at }])
            }
            C::OrderTags { group, order } => {
                self.live_group(&group)?;
                no_duplicates(order.iter().map(|(t, _)| t))?;
                let mut changed = Vec::new();
                for (tag, n) in order {
                    let entry = self.live_tag(&tag)?;
                    if entry.group != group {
                        return Err(TagLibraryError::TagNotInGroup);
                    }
                    if entry.order != n {
                        changed.push((tag, n));
                    }
                }
                if changed.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![E::TagsOrdered {
                    group,
                    order: changed,
                    at,
                }])
            }
        }
    }
}

impl Aggregate for TagLibrary {
    /// Stored in `events.aggregate_type`. Never rename.
    const TYPE: &'static str = "TagLibrary";
    type Command = Stamped<TagLibraryCommand>;
    type Event = TagLibraryEvent;
    type Error = TagLibraryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), TagLibraryError> {
        crate::decide::handle(self, command, sink).await
    }

    fn apply(&mut self, event: TagLibraryEvent) {
        use TagLibraryEvent as E;
        match event {
            E::TagGroupCreated { group, name, .. } => {
                self.groups.insert(
                    group,
                    Entry {
                        name,
                        deleted: false,
                        order: 0,
                    },
                );
            }
            E::TagGroupRenamed { group, name, .. } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.name = name;
                }
            }
            E::TagGroupDeleted { group, .. } => {
                if let Some(g) = self.groups.get_mut(&group) {
                    g.deleted = true;
                }
            }
            E::TagCreated {
                tag, group, name, ..
            } => {
                self.active_tags += 1;
                self.tags.insert(
                    tag,
                    TagEntry {
                        group,
                        name,
                        deleted: false,
                        order: 0,
                    },
                );
            }
            E::TagRenamed { tag, name, .. } => {
                if let Some(t) = self.tags.get_mut(&tag) {
                    t.name = name;
                }
            }
            E::TagDeleted { tag, .. } => {
                if let Some(t) = self.tags.get_mut(&tag).filter(|t| !t.deleted) {
                    t.deleted = true;
                    self.active_tags -= 1;
                }
            }
            E::TagGroupsOrdered { order, .. } => {
                for (group, n) in order {
                    if let Some(g) = self.groups.get_mut(&group) {
                        g.order = n;
                    }
                }
            }
            E::TagsOrdered { order, .. } => {
                for (tag, n) in order {
                    if let Some(t) = self.tags.get_mut(&tag) {
                        t.order = n;
                    }
                }
            }
        }
    }
}
