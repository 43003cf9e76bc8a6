//! The reads of WeCom's API a notice needs (a thin notice) or is completed by (a
//! friend-add's way, a member list cut short). Each answer is kept on the inbox row
//! before anything is applied, so a notice processed again uses the same answer.

use chrono::{DateTime, Utc};
use domain::stamp::{stream_id, TAG_LIBRARY_LOCAL_ID};
use domain::values::{GroupId, TenantId};

use engine::app::Engine;

use super::chat::{chat_steps, truncated_members};
use super::contact::{contact_steps, unknown_add, with_add_way};
use super::pending::{not_applied, retry_later, Outcome};
use super::plan::{parse, THIN};
use super::tags::{tag_steps, tags_answered};
use super::{ChatChange, Fetched, Plan, Read, Step};
use crate::client::{ClientError, GroupChat, TenantApi, WecomApi};
use crate::inbox::{self, InboxError, PendingNotice, Status};
use crate::notice::NoticeKind;

/// A failure of the store (or of writing the answer down) while reading, cause kept.
pub(super) fn store_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> InboxError {
    InboxError::Commands(Box::new(e))
}

/// What an earlier run of the notice read from WeCom (or decided without it), if any.
fn earlier_read(row: &PendingNotice) -> Option<Fetched> {
    row.fetched
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
}

/// Reads what `read` asks for from WeCom.
async fn read_api(api: &TenantApi<'_>, read: &Read) -> Result<Fetched, ClientError> {
    Ok(match read {
        Read::Contact { customer, .. } => {
            Fetched::Contact(api.external_contact(customer.as_str()).await?)
        }
        Read::Chat { group, .. } => Fetched::Chat(api.group_chat(group.as_str()).await?),
        Read::Tags(filter) => Fetched::Tags(api.corp_tags(filter).await?),
    })
}

/// The steps of a notice that needs `read`: from the row's earlier read if it has one,
/// else from the API (kept on the row before anything is applied), against the
/// engine's current state.
pub(super) async fn fetched_steps(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    row: &PendingNotice,
    read: &Read,
    now: DateTime<Utc>,
) -> Result<Result<Vec<Step>, Outcome>, InboxError> {
    let fetched = match earlier_read(row) {
        Some(fetched) => fetched,
        None => {
            let credentials = inbox::config(&engine.db, tenant).await?.and_then(|c| c.api);
            let Some(credentials) = credentials else {
                return Ok(Err(Outcome::Concluded(
                    Status::Unhandled,
                    Some(format!(
                        "{}: {THIN}, and reading it needs WeCom API credentials, which \
                         this tenant has not configured (scrm wecom configure --corp-id, \
                         with the corp secret)",
                        row.kind
                    )),
                )));
            };
            let api = api.for_tenant(tenant.as_str(), &credentials);
            match read_api(&api, read).await {
                Ok(fetched) => {
                    let json = serde_json::to_string(&fetched).map_err(store_error)?;
                    inbox::save_fetched(&engine.db, &row.tenant_id, &row.dedup_key, &json).await?;
                    fetched
                }
                Err(error) => {
                    return Ok(Err(retry_later(row, format!("WECOM_API: {error}"), now)));
                }
            }
        }
    };
    let library = || async {
        engine
            .tags
            .load(&stream_id(tenant, TAG_LIBRARY_LOCAL_ID))
            .await
            .map(|(library, _)| library)
            .map_err(store_error)
    };
    let steps = match (read, &fetched) {
        (Read::Contact { staff, customer }, Fetched::Contact(contact)) => {
            let (state, _) = engine
                .customers
                .load(&stream_id(tenant, customer.as_str()))
                .await
                .map_err(store_error)?;
            contact_steps(
                staff,
                customer,
                state.relation(staff),
                &library().await?,
                contact,
            )
        }
        (Read::Chat { group, change }, Fetched::Chat(chat)) => {
            group_steps(engine, tenant, group, *change, chat).await?
        }
        (Read::Tags(filter), Fetched::Tags(groups)) => {
            if tags_answered(filter, groups) {
                tag_steps(&library().await?, groups)
            } else {
                Err(Plan::Unhandled(format!(
                    "{}: WeCom's enterprise tag list has no {filter:?} (a rule-group tag, \
                     or deleted since)",
                    row.kind
                )))
            }
        }
        _ => Err(Plan::Invalid(
            "the stored API answer is not for this notice".into(),
        )),
    };
    Ok(steps.map_err(not_applied))
}

/// A read that completes what a notice says but must not hold it up: the row's earlier
/// decision, else WeCom's answer, else why there is none (no API credentials, an
/// unreachable API, an error; no retry). The decision is kept on the row before
/// anything is applied, so a notice processed again repeats the very same commands
/// (their idempotency keys would refuse different ones).
async fn optional_read(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    row: &PendingNotice,
    read: &Read,
) -> Result<Fetched, InboxError> {
    if let Some(fetched) = earlier_read(row) {
        return Ok(fetched);
    }
    let credentials = inbox::config(&engine.db, tenant).await?.and_then(|c| c.api);
    let fetched = match credentials {
        None => Fetched::Unanswered("no WeCom API credentials".into()),
        Some(credentials) => {
            let api = api.for_tenant(tenant.as_str(), &credentials);
            read_api(&api, read).await.unwrap_or_else(|error| {
                tracing::warn!(tenant = %tenant, kind = %row.kind, %error,
                    "wecom notice applied as it came, without WeCom's answer");
                Fetched::Unanswered(error.to_string())
            })
        }
    };
    let json = serde_json::to_string(&fetched).map_err(store_error)?;
    inbox::save_fetched(&engine.db, &row.tenant_id, &row.dedup_key, &json).await?;
    Ok(fetched)
}

/// A friend-add with the way WeCom says the customer was added, when it says.
pub(super) async fn enrich_add(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    row: &PendingNotice,
    steps: Vec<Step>,
) -> Result<Vec<Step>, InboxError> {
    let Some((staff, customer)) = unknown_add(&steps) else {
        return Ok(steps);
    };
    let read = Read::Contact { staff, customer };
    Ok(
        match optional_read(engine, api, tenant, row, &read).await? {
            Fetched::Contact(contact) => with_add_way(steps, &contact),
            _ => steps,
        },
    )
}

/// A member change cut short, made whole from the group's member list as WeCom answers
/// it; without an answer, the members the notice lists.
pub(super) async fn enrich_members(
    engine: &Engine,
    api: &WecomApi,
    tenant: &TenantId,
    row: &PendingNotice,
    kind: &NoticeKind,
    steps: Vec<Step>,
) -> Result<Result<Vec<Step>, Plan>, InboxError> {
    let Some((chat_id, quit_scene)) = truncated_members(kind) else {
        return Ok(Ok(steps));
    };
    let group = match parse(GroupId::parse(chat_id)) {
        Ok(group) => group,
        Err(plan) => return Ok(Err(plan)),
    };
    let quit_scene = match u8::try_from(quit_scene.unwrap_or(0)) {
        Ok(scene) => scene,
        Err(_) => return Ok(Err(Plan::Invalid("quit scene out of range".into()))),
    };
    let change = ChatChange::Members { quit_scene };
    let read = Read::Chat {
        group: group.clone(),
        change,
    };
    let Fetched::Chat(chat) = optional_read(engine, api, tenant, row, &read).await? else {
        return Ok(Ok(steps));
    };
    group_steps(engine, tenant, &group, change, &chat).await
}

/// [`chat_steps`] against the group as the engine has it now.
async fn group_steps(
    engine: &Engine,
    tenant: &TenantId,
    group: &GroupId,
    change: ChatChange,
    chat: &GroupChat,
) -> Result<Result<Vec<Step>, Plan>, InboxError> {
    let (state, _) = engine
        .groups
        .load(&stream_id(tenant, group.as_str()))
        .await
        .map_err(store_error)?;
    let capacity = engine::tenants::group_capacity(&engine.db, tenant).await?;
    Ok(chat_steps(group, &state, capacity, change, chat))
}
