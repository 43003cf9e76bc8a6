//! From stored notices to domain commands, after the endpoint has answered.
//!
//! [`plan`] is pure: it says which commands a notice maps to, which state it needs read
//! from WeCom's API first ([`Read`]), or why it maps to none. [`contact_steps`],
//! [`chat_steps`] and [`tag_steps`] are pure too: from what the API answered and the
//! engine's state, the commands that bring the engine to WeCom's state.
//! [`process_pending`] takes the inbox's due rows in arrival order, reads the API where
//! needed and executes the plans through the engine's command services. Every command
//! carries an idempotency key derived from the notice's dedup key, so processing a notice
//! again (two processors, a crash between the append and the row update) appends nothing.
//!
//! # Layout
//!
//! - `plan`: the notice's kind to a plan, and its `kind` column name.
//! - `contact`, `chat`, `tags`: the pure steps per aggregate from what WeCom answered.
//! - `reads`: the API reads a notice needs or is completed by, kept on the row.
//! - `execute`: one step through the engine's command services.
//! - `directory`: a `change_contact` step (staff through [`crate::directory`]).
//! - `pending`: the inbox loop ([`process_pending`], [`InboxTick`]) and retries.

mod chat;
mod contact;
mod directory;
mod execute;
mod pending;
mod plan;
mod reads;
mod tags;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use domain::customer::{CustomerCommand, RefusalReason};
use domain::group::GroupCommand;
use domain::tags::TagLibraryCommand;
use domain::values::{ExternalUserId, GroupId, StaffId};
use serde::{Deserialize, Serialize};

use super::client::{Contact, CorpTagGroup, GroupChat, TagFilter};

pub use chat::chat_steps;
pub use contact::{contact_steps, with_add_way};
pub(crate) use execute::{Run, StepResult};
pub use pending::{process_pending, retry_delay, InboxTick, Processed, MAX_ATTEMPTS};
pub use plan::{kind_name, plan, subject};
pub use tags::tag_steps;

/// One command (or two-stream step) a notice maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Customer {
        customer: ExternalUserId,
        /// Distinguishes several commands on one customer stream from one notice.
        part: Option<String>,
        command: CustomerCommand,
    },
    /// `del_external_contact` with `Source=DELETE_BY_TRANSFER`: the engine's pending
    /// handover from `staff` is accepted if there is one; otherwise the relation ends as a
    /// transfer (never as churn).
    TransferCompleted {
        customer: ExternalUserId,
        staff: StaffId,
    },
    /// `transfer_fail`: the engine's pending handover involving `staff` is refused.
    TransferFailed {
        customer: ExternalUserId,
        staff: StaffId,
        reason: RefusalReason,
    },
    /// A customer joined a group: the group admits, then the customer records it.
    Join {
        group: GroupId,
        customer: ExternalUserId,
        scene: u8,
    },
    /// A customer left a group.
    Leave {
        group: GroupId,
        customer: ExternalUserId,
        scene: u8,
    },
    Group {
        group: GroupId,
        /// Distinguishes several commands on one group stream from one notice.
        part: Option<String>,
        command: GroupCommand,
    },
    Tags {
        /// Distinguishes several commands on the library stream from one notice.
        part: Option<String>,
        command: TagLibraryCommand,
    },
    /// A `change_contact` notice: a member of staff or a department of the directory.
    Directory(DirectoryStep),
}

/// What a `change_contact` notice changes. A member of staff is brought in line the way
/// the directory sync does it, with the same idempotency keys (crate::directory).
#[derive(Debug, Clone, PartialEq)]
pub enum DirectoryStep {
    /// In the directory, in `department` (their main one): registered or moved to its
    /// store.
    Staff {
        staff: StaffId,
        name: Option<String>,
        department: i64,
        title: Option<String>,
    },
    /// Deleted or exited: departs.
    Gone {
        staff: StaffId,
    },
    /// Created or changed: the fields the notice carries.
    Department {
        id: i64,
        name: Option<String>,
        parent: Option<i64>,
        order: Option<i64>,
    },
    DepartmentDeleted {
        id: i64,
    },
}

/// Which change of a customer group a read is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatChange {
    Create,
    Owner,
    Name,
    Notice,
    /// Members joined or left, more than the notice lists: the whole member list is
    /// brought in line, leavers with this quit scene.
    Members {
        quit_scene: u8,
    },
}

/// State a thin notice needs read from WeCom's API before it maps to commands.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// `edit_external_contact`: the relation's remark, description and tags.
    Contact {
        staff: StaffId,
        customer: ExternalUserId,
    },
    /// Group creation and owner, name and notice changes.
    Chat { group: GroupId, change: ChatChange },
    /// Tag and tag-group creation, renames and reordering: that part of the library.
    Tags(TagFilter),
}

/// What the API answered for a notice, as kept in the inbox row's `fetched`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fetched {
    Contact(Contact),
    Chat(GroupChat),
    Tags(Vec<CorpTagGroup>),
    /// A friend-add's optional read gave no answer (why): the add went in without it.
    Unanswered(String),
}

/// What a notice maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Commands at the notice's time.
    Steps { at: DateTime<Utc>, steps: Vec<Step> },
    /// Commands at the notice's time, once `read` is answered.
    Fetch { at: DateTime<Utc>, read: Read },
    /// The engine has no command for it; the reason is stored on the row.
    Unhandled(String),
    /// The notice carries a value the domain cannot accept (an id it cannot parse).
    Invalid(String),
}
