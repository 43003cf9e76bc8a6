//! The tag library: groups of tags, and tags created, renamed and deleted.

use async_graphql::{Context, InputObject, Object};
use domain::stamp::TAG_LIBRARY_LOCAL_ID;
use domain::tags::TagLibraryCommand;
use domain::values::{TagGroupId, TagId};
use serde::Serialize;

use super::payload::ChangePayload;
use super::run::{derived_id, execute, keyed, once, parse};
use crate::errors::{ApiResult, Refusal};
use crate::guard::{RoleGuard, OPERATIONS};

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
    #[graphql(guard = "RoleGuard(OPERATIONS)")]
    async fn create_tag_group(
        &self,
        ctx: &Context<'_>,
        input: CreateTagGroupInput,
    ) -> ApiResult<ChangePayload> {
        once(ctx, "createTagGroup", input, |input, key| async move {
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
            let id = derived_id("tag-", &key);
            let tag = parse("name", TagId::parse(id.as_str()));
            let group = parse("groupId", TagGroupId::parse(input.group_id.as_str()));
            let (tag, group, name) = (tag?, group?, input.name);
            let command = TagLibraryCommand::CreateTag { tag, group, name };
            on_library(ctx, &key, "name", id, command).await
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
            let command = TagLibraryCommand::DeleteTag { tag };
            on_library(ctx, &key, "tagId", input.tag_id, command).await
        })
        .await
    }
}
