//! Root mutations, one file per context, merged into one `Mutation`. Each takes one
//! input with an idempotency key (and, where it changes one stream, an optional expected
//! version) and returns a payload whose `userErrors` carry every business-rule
//! rejection. They all take the same path (`run`): authorize, check the key, build and
//! run the command, map the outcome.
//!
//! The SDL lists fields sorted by name, so merging does not change `schema.graphql`.

mod campaign;
mod channel;
mod customer;
mod directory;
mod erasure;
mod group;
mod handover;
mod jobs;
mod payload;
mod run;
mod staff;
mod tags;
mod tenant;
mod wecom;

use async_graphql::MergedObject;

#[derive(Debug, Default, MergedObject)]
pub struct Mutation(
    customer::CustomerMutation,
    campaign::CampaignMutation,
    channel::ChannelMutation,
    group::GroupMutation,
    tags::TagMutation,
    staff::StaffMutation,
    handover::HandoverMutation,
    jobs::JobMutation,
    directory::DirectoryMutation,
    wecom::WecomMutation,
    erasure::ErasureMutation,
    tenant::TenantMutation,
);
