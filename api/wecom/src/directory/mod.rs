//! The corp's WeCom directory as the engine's staff (issue 16; docs/adr/0014-wecom-directory.md).
//!
//! WeCom's departments are what operations map to stores: a member of staff works in
//! the store of their main department, the store operations mapped it to, or `dept-<id>`
//! while it is unmapped. [`change`] decides, from a staff member's stream and what the
//! directory says about them, the one command that brings the engine in line; it is the
//! same for the directory sync job and for `change_contact` notices, and so are the
//! idempotency keys ([`key`]): running either twice appends nothing.
//!
//! # Layout
//!
//! - `departments`: the tenant's departments and their store mapping (SQL).
//! - `sync`: the directory sync job ([`DirectorySync`]) and applying one change.

mod departments;
mod sync;

use std::collections::{BTreeMap, BTreeSet};

use domain::staff::{Staff, StaffCommand};
use domain::values::StoreId;

use crate::client::{Department, DirectoryUser};

pub use departments::{
    delete_department, map_department, mapping, replace_departments, upsert_department,
    DirectoryError,
};
pub use sync::{apply, Applied, DirectorySync, KIND};

/// What the directory says about one member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// In the directory and not exited (active, disabled or not yet activated: all
    /// still employed), working in `store`.
    Present {
        name: String,
        store: StoreId,
        title: String,
    },
    /// Exited (status 5), deleted, or absent from a full listing.
    Gone,
}

impl Listed {
    /// In `department`'s store, under `name` (the userid when WeCom gives none) with
    /// `title`.
    pub fn present(
        userid: &str,
        name: Option<&str>,
        department: i64,
        title: Option<&str>,
        mapped: &BTreeMap<i64, StoreId>,
    ) -> Self {
        Self::Present {
            name: name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(userid)
                .to_owned(),
            store: store_of(department, mapped),
            title: title.unwrap_or_default().to_owned(),
        }
    }
}

/// What a full listing says about `user`: present in their main department, or gone
/// when they exited (or WeCom names no department for them).
pub fn listed(user: &DirectoryUser, mapped: &BTreeMap<i64, StoreId>) -> Listed {
    match user.main_department() {
        Some(department) if user.status != DirectoryUser::EXITED => Listed::present(
            &user.userid,
            Some(&user.name),
            department,
            Some(&user.position),
            mapped,
        ),
        _ => Listed::Gone,
    }
}

/// The directory's root among a full department listing: the department whose parent
/// is not listed (WeCom's is 1, under 0).
pub fn root(departments: &[Department]) -> Option<i64> {
    let ids: BTreeSet<i64> = departments.iter().map(|d| d.id).collect();
    departments
        .iter()
        .filter(|d| !ids.contains(&d.parentid))
        .map(|d| d.id)
        .min()
}

/// What a full listing of `users` says about everyone: the staff the engine `known`
/// and WeCom no longer lists are gone.
pub fn full_listing(
    known: Vec<String>,
    users: &[DirectoryUser],
    mapped: &BTreeMap<i64, StoreId>,
) -> BTreeMap<String, Listed> {
    let mut everyone: BTreeMap<String, Listed> =
        known.into_iter().map(|id| (id, Listed::Gone)).collect();
    for user in users {
        everyone.insert(user.userid.clone(), listed(user, mapped));
    }
    everyone
}

/// The store of `department`: the one operations mapped it to, else `dept-<id>`, so
/// staff of an unmapped department still share a store and move together once it is
/// mapped.
pub fn store_of(department: i64, mapped: &BTreeMap<i64, StoreId>) -> StoreId {
    mapped
        .get(&department)
        .cloned()
        .unwrap_or_else(|| unmapped_store(department))
}

/// The store of an unmapped department's staff: `dept-<id>`.
pub fn unmapped_store(department: i64) -> StoreId {
    StoreId::parse(format!("dept-{department}")).expect("a department id makes a store id")
}

/// The command that brings `staff` in line with the directory, if any. Pure. A departed
/// member of staff is never registered or moved again: WeCom gives a returning
/// employee a new account.
pub fn change(staff: &Staff, listed: &Listed) -> Option<StaffCommand> {
    let departed = staff.departed_at().is_some();
    match listed {
        Listed::Present { name, store, title } if !staff.is_registered() => {
            Some(StaffCommand::Register {
                name: name.clone(),
                store: store.clone(),
                title: title.clone(),
            })
        }
        Listed::Present { store, .. } if !departed && staff.store() != Some(store) => {
            Some(StaffCommand::MoveToStore {
                store: store.clone(),
            })
        }
        Listed::Gone if staff.is_registered() && !departed => Some(StaffCommand::MarkDeparted),
        _ => None,
    }
}

/// The idempotency key of `command` on `userid`'s stream at `version`: derived from
/// what changes, so a second sync or a notice after the sync finds it used. A move
/// carries the version it was decided on, so moving back and forth again is a new
/// move and not the replay of an old one.
pub fn key(userid: &str, command: &StaffCommand, version: usize) -> String {
    match command {
        StaffCommand::Register { .. } => format!("wecom-directory:{userid}:register"),
        StaffCommand::MoveToStore { store } => {
            format!("wecom-directory:{userid}:move:{version}:{store}")
        }
        StaffCommand::MarkDeparted => format!("wecom-directory:{userid}:depart"),
        other => format!("wecom-directory:{userid}:{other:?}"),
    }
}

#[cfg(test)]
mod tests;
