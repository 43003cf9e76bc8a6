//! Limits async-graphql 7 does not have: at most [`MAX_ALIASES`] aliases in a document
//! (8.0 adds `limit_aliases`), so one request cannot fan a cheap field out hundreds of
//! times.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

pub const MAX_ALIASES: usize = 15;

#[derive(Debug, Default)]
pub struct AliasLimit;

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension)
    }
}

struct AliasLimitExtension;

fn count(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + count(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => count(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

#[async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let operations: usize = document
            .operations
            .iter()
            .map(|(_, op)| count(&op.node.selection_set.node))
            .sum();
        let fragments: usize = document
            .fragments
            .values()
            .map(|f| count(&f.node.selection_set.node))
            .sum();
        if operations + fragments > MAX_ALIASES {
            return Err(ServerError::new(
                format!("Too many aliases: at most {MAX_ALIASES} are allowed"),
                None,
            ));
        }
        Ok(document)
    }
}
