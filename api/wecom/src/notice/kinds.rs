//! From the fields of a customer-contact, group, tag or directory event to its
//! [`NoticeKind`].

use super::{ChatUpdate, Fields, NoticeKind, ParseError, TagType, TransferFailReason};

pub(super) fn contact_kind(f: &Fields, event: &str) -> Result<NoticeKind, ParseError> {
    let change_type = f.required("ChangeType", event)?;
    let ctx = format!("{event}/{change_type}");
    let ids = || -> Result<(String, String), ParseError> {
        Ok((
            f.required("UserID", &ctx)?,
            f.required("ExternalUserID", &ctx)?,
        ))
    };
    Ok(match change_type.as_str() {
        "add_external_contact" | "add_half_external_contact" => {
            let (staff_id, external_user_id) = ids()?;
            NoticeKind::ContactAdded {
                staff_id,
                external_user_id,
                state: f.optional("State")?,
                welcome_code: f.optional("WelcomeCode")?,
                half: change_type == "add_half_external_contact",
            }
        }
        "edit_external_contact" => {
            let (staff_id, external_user_id) = ids()?;
            NoticeKind::ContactEdited {
                staff_id,
                external_user_id,
            }
        }
        "del_external_contact" => {
            let (staff_id, external_user_id) = ids()?;
            NoticeKind::ContactDeleted {
                staff_id,
                external_user_id,
                by_transfer: f.optional("Source")?.as_deref() == Some("DELETE_BY_TRANSFER"),
            }
        }
        "del_follow_user" => {
            let (staff_id, external_user_id) = ids()?;
            NoticeKind::FollowUserDeleted {
                staff_id,
                external_user_id,
            }
        }
        "transfer_fail" => {
            let (staff_id, external_user_id) = ids()?;
            let fail_reason = f.optional("FailReason")?.map(|r| match r.as_str() {
                "customer_refused" => TransferFailReason::CustomerRefused,
                "customer_limit_exceed" => TransferFailReason::CustomerLimitExceed,
                _ => TransferFailReason::Other(r),
            });
            NoticeKind::TransferFailed {
                staff_id,
                external_user_id,
                fail_reason,
            }
        }
        _ => NoticeKind::Unknown {
            event: event.to_owned(),
            change_type: Some(change_type),
        },
    })
}

pub(super) fn chat_kind(f: &Fields, event: &str) -> Result<NoticeKind, ParseError> {
    let change_type = f.required("ChangeType", event)?;
    let ctx = format!("{event}/{change_type}");
    Ok(match change_type.as_str() {
        "create" => NoticeKind::ChatCreated {
            chat_id: f.required("ChatId", &ctx)?,
        },
        "dismiss" => NoticeKind::ChatDismissed {
            chat_id: f.required("ChatId", &ctx)?,
        },
        "update" => {
            let chat_id = f.required("ChatId", &ctx)?;
            let detail = f.required("UpdateDetail", &ctx)?;
            let update = match detail.as_str() {
                "add_member" => ChatUpdate::AddMember {
                    join_scene: f.optional_number("JoinScene")?,
                    mem_change_cnt: f.optional_number("MemChangeCnt")?,
                    member_ids: f.list("MemChangeList")?,
                },
                "del_member" => ChatUpdate::DelMember {
                    quit_scene: f.optional_number("QuitScene")?,
                    mem_change_cnt: f.optional_number("MemChangeCnt")?,
                    member_ids: f.list("MemChangeList")?,
                },
                "change_owner" => ChatUpdate::ChangeOwner,
                "change_name" => ChatUpdate::ChangeName,
                "change_notice" => ChatUpdate::ChangeNotice,
                _ => ChatUpdate::Other(detail),
            };
            NoticeKind::ChatUpdated {
                chat_id,
                update,
                last_mem_ver: f.optional("LastMemVer")?,
                cur_mem_ver: f.optional("CurMemVer")?,
            }
        }
        _ => NoticeKind::Unknown {
            event: event.to_owned(),
            change_type: Some(change_type),
        },
    })
}

pub(super) fn tag_kind(f: &Fields, event: &str) -> Result<NoticeKind, ParseError> {
    let change_type = f.required("ChangeType", event)?;
    let ctx = format!("{event}/{change_type}");
    let strategy_id = f.optional("StrategyId")?;
    let id_and_type = || -> Result<(String, TagType), ParseError> {
        let id = f.required("Id", &ctx)?;
        let tag_type = match f.required("TagType", &ctx)?.as_str() {
            "tag" => TagType::Tag,
            "tag_group" => TagType::TagGroup,
            other => TagType::Other(other.to_owned()),
        };
        Ok((id, tag_type))
    };
    Ok(match change_type.as_str() {
        "create" => {
            let (id, tag_type) = id_and_type()?;
            NoticeKind::TagCreated {
                id,
                tag_type,
                strategy_id,
            }
        }
        "update" => {
            let (id, tag_type) = id_and_type()?;
            NoticeKind::TagUpdated {
                id,
                tag_type,
                strategy_id,
            }
        }
        "delete" => {
            let (id, tag_type) = id_and_type()?;
            NoticeKind::TagDeleted {
                id,
                tag_type,
                strategy_id,
            }
        }
        "shuffle" => NoticeKind::TagShuffled {
            group_id: f.optional("Id")?,
            strategy_id,
        },
        _ => NoticeKind::Unknown {
            event: event.to_owned(),
            change_type: Some(change_type),
        },
    })
}

/// `change_contact`: the corp's directory, staff (`*_user`) and departments (`*_party`).
pub(super) fn directory_kind(f: &Fields, event: &str) -> Result<NoticeKind, ParseError> {
    let change_type = f.required("ChangeType", event)?;
    let ctx = format!("{event}/{change_type}");
    Ok(match change_type.as_str() {
        "create_user" | "update_user" => NoticeKind::StaffChanged {
            user_id: f.required("UserID", &ctx)?,
            new_user_id: f.optional("NewUserID")?,
            name: f.optional("Name")?,
            departments: f
                .list("Department")?
                .iter()
                .map(|d| {
                    d.parse().map_err(|_| ParseError::InvalidField {
                        field: "Department",
                        reason: format!("`{d}` is not a department id"),
                    })
                })
                .collect::<Result<_, _>>()?,
            main_department: f.optional_number("MainDepartment")?,
            position: f.optional("Position")?,
            status: f.optional_number("Status")?,
            created: change_type == "create_user",
        },
        "delete_user" => NoticeKind::StaffDeleted {
            user_id: f.required("UserID", &ctx)?,
        },
        "create_party" | "update_party" => NoticeKind::DepartmentChanged {
            id: f.required_number("Id", &ctx)?,
            name: f.optional("Name")?,
            parent_id: f.optional_number("ParentId")?,
            order: f.optional_number("Order")?,
            created: change_type == "create_party",
        },
        "delete_party" => NoticeKind::DepartmentDeleted {
            id: f.required_number("Id", &ctx)?,
        },
        _ => NoticeKind::Unknown {
            event: event.to_owned(),
            change_type: Some(change_type),
        },
    })
}
