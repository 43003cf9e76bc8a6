//! The tag library: groups of tags, and tags created, renamed and deleted. In a tenant
//! that acts in WeCom, WeCom's library changes first (`add_corp_tag`, `edit_corp_tag`,
//! `del_corp_tag`) and the log records WeCom's answer: a new tag carries WeCom's id.
//! These calls are made while the mutation waits, not through the outbox: WeCom names
//! a new tag, and nothing can be recorded before its name is known. An answer lost to a
//! crash is made good by WeCom's own `change_external_tag` notice, which the inbox
//! applies like any other (and which changes nothing when the mutation got there
//! first).

use async_graphql::{Context, InputObject, Object};
use domain::stamp::TAG_LIBRARY_LOCAL_ID;
use domain::tags::TagLibraryCommand;
use domain::values::{TagGroupId, TagId};
use serde::Serialize;

use ::wecom::client::{ClientError, Credentials};
use ::wecom::outbound::answers::TRY_AGAIN;
use serde_json::{json, Value};

use super::payload::ChangePayload;
use super::run::{derived_id, execute, keyed, once, parse};
use crate::errors::{ApiError, ApiResult, Refusal};
use crate::guard::{caller, RoleGuard, OPERATIONS};
use crate::state;
use crate::user_error::{UserError, UserErrorCode};

const ADD_CORP_TAG: &str = "externalcontact/add_corp_tag";
const EDIT_CORP_TAG: &str = "externalcontact/edit_corp_tag";
const DEL_CORP_TAG: &str = "externalcontact/del_corp_tag";

#[derive(Debug, Default)]
pub struct TagMutation;

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct CreateTagGroupInput {
    pub name: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct CreateTagInput {
    pub group_id: String,
    pub name: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct RenameTagInput {
    pub tag_id: String,
    pub name: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, InputObject, Serialize)]
pub struct DeleteTagInput {
    pub tag_id: String,
    pub idempotency_key: String,
}

keyed!(
    CreateTagGroupInput,
    CreateTagInput,
    RenameTagInput,
    DeleteTagInput
);

/// The tenant's WeCom API when it acts in WeCom: then the library changes in WeCom
/// first, and the log records what WeCom answered (docs/adr/0013-wecom-outbox.md).
async fn in_wecom(ctx: &Context<'_>) -> Result<Option<Credentials>, Refusal> {
    let db = &state(ctx)?.engine.db;
    let config = ::wecom::inbox::config(db, &caller(ctx)?.tenant)
        .await
        .map_err(ApiError::internal)?;
    Ok(config.and_then(|c| c.api))
}

/// Asks WeCom to change its library. Its refusal is the caller's to correct (a name
/// taken, a tag it does not know); WeCom busy or unreachable is not.
async fn ask_wecom(
    ctx: &Context<'_>,
    credentials: &Credentials,
    api: &str,
    body: Value,
    field: &str,
) -> Result<Value, Refusal> {
    let state = state(ctx)?;
    let tenant = caller(ctx)?.tenant.as_str();
    match state
        .wecom
        .for_tenant(tenant, credentials)
        .post(api, &body)
        .await
    {
        Ok(answer) => Ok(answer),
        Err(ClientError::Api { errcode, errmsg }) if !TRY_AGAIN.contains(&errcode) => {
            Err(UserError::new(
                &["input", field],
                UserErrorCode::WecomRefused,
                format!("WeCom refused: {errcode} {errmsg}"),
            )
            .into())
        }
        Err(e) => Err(ApiError::WecomUnavailable(e.to_string()).into()),
    }
}

/// Executes a tag-library command (the library is one stream per tenant) that creates
/// or changes `id`.
async fn on_library(
    ctx: &Context<'_>,
    key: &str,
    field: &str,
    id: String,
    command: TagLibraryCommand,
) -> Result<ChangePayload, Refusal> {
    let outcome = execute(ctx, key, TAG_LIBRARY_LOCAL_ID, command, None, field).await?;
    Ok(ChangePayload::changed(id, &outcome))
}

#[Object]
impl TagMutation {
    /// Adds a group to the tag library.
    /// In a tenant that acts in WeCom a group is created in WeCom with its first tag
    /// (WeCom has no empty groups): this answers `INVALID_INPUT` there.
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn create_tag_group(
        &self,
        ctx: &Context<'_>,
        input: CreateTagGroupInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "createTagGroup", input, |input, key| async move {
            if in_wecom(ctx).await?.is_some() {
                return Err(UserError::new(
                    &["input", "name"],
                    UserErrorCode::InvalidInput,
                    "WeCom has no empty tag groups: create the group with its first tag in WeCom",
                )
                .into());
            }
            let id = derived_id("tg-", &key);
            let group = parse("name", TagGroupId::parse(id.as_str()))?;
            let name = input.name;
            let command = TagLibraryCommand::CreateGroup { group, name };
            on_library(ctx, &key, "name", id, command).await
        })
        .await
    }

    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn create_tag(
        &self,
        ctx: &Context<'_>,
        input: CreateTagInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "createTag", input, |input, key| async move {
            let group = parse("groupId", TagGroupId::parse(input.group_id.as_str()))?;
            let name = input.name;
            // In WeCom, WeCom names the tag: its id is WeCom's answer.
            let id = match in_wecom(ctx).await? {
                Some(credentials) => {
                    let body = json!({ "group_id": group.as_str(), "tag": [{ "name": name }] });
                    let answer = ask_wecom(ctx, &credentials, ADD_CORP_TAG, body, "name").await?;
                    answer["tag_group"]["tag"][0]["id"]
                        .as_str()
                        .ok_or_else(|| {
                            ApiError::WecomUnavailable("no tag id in the answer".into())
                        })?
                        .to_string()
                }
                None => derived_id("tag-", &key),
            };
            let tag = parse("name", TagId::parse(id.as_str()))?;
            let command = TagLibraryCommand::CreateTag { tag, group, name };
            match on_library(ctx, &key, "name", id.clone(), command).await {
                // WeCom's notice of this very tag was applied first: it is there.
                Err(Refusal::User(e)) if e.code == UserErrorCode::IdTaken => Ok(ChangePayload {
                    id: Some(id),
                    ..ChangePayload::default()
                }),
                other => other,
            }
        })
        .await
    }

    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn rename_tag(
        &self,
        ctx: &Context<'_>,
        input: RenameTagInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "renameTag", input, |input, key| async move {
            let tag = parse("tagId", TagId::parse(input.tag_id.as_str()))?;
            let name = input.name;
            if let Some(credentials) = in_wecom(ctx).await? {
                let body = json!({ "id": tag.as_str(), "name": name });
                ask_wecom(ctx, &credentials, EDIT_CORP_TAG, body, "name").await?;
            }
            let command = TagLibraryCommand::RenameTag { tag, name };
            on_library(ctx, &key, "name", input.tag_id, command).await
        })
        .await
    }

    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn delete_tag(
        &self,
        ctx: &Context<'_>,
        input: DeleteTagInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "deleteTag", input, |input, key| async move {
            let tag = parse("tagId", TagId::parse(input.tag_id.as_str()))?;
            if let Some(credentials) = in_wecom(ctx).await? {
                let body = json!({ "tag_id": [tag.as_str()] });
                ask_wecom(ctx, &credentials, DEL_CORP_TAG, body, "tagId").await?;
            }
            let command = TagLibraryCommand::DeleteTag { tag };
            on_library(ctx, &key, "tagId", input.tag_id, command).await
        })
        .await
    }
}
