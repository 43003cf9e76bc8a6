//! Limits async-graphql 7 does not have: at most [`MAX_ALIASES`] aliases in a document
//! (8.0 adds `limit_aliases`) and at most [`MAX_ROOT_FIELDS`] root fields in an
//! operation, after identical sibling selections are merged, so one request cannot fan a
//! cheap field out hundreds of times (async-graphql resolves every copy of a field, and
//! 700 copies of one field without aliases ran 700 times).

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::Positioned;
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

use crate::rate_limit::RateLimiter;
use engine::auth::Caller;

pub const MAX_ALIASES: usize = 15;
/// Root fields one operation may resolve, fragments included.
pub const MAX_ROOT_FIELDS: usize = 20;

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
        let mut document = next.run(ctx, query, variables).await?;
        merge_document(&mut document);
        if let Some(fields) = document
            .operations
            .iter()
            .map(|(_, op)| root_fields(&document, &op.node.selection_set.node))
            .max()
            .filter(|n| *n > MAX_ROOT_FIELDS)
        {
            return Err(ServerError::new(
                format!("Too many root fields: {fields}, at most {MAX_ROOT_FIELDS} are allowed"),
                None,
            ));
        }
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

/// Drops every selection identical to an earlier sibling (same response key, arguments,
/// directives and sub-selection), in operations and fragments. The spec merges such
/// fields into one response entry, so the answer is the same; only the work is not.
fn merge_document(document: &mut ExecutableDocument) {
    use async_graphql::parser::types::DocumentOperations;
    match &mut document.operations {
        DocumentOperations::Single(op) => merge(&mut op.node.selection_set.node),
        DocumentOperations::Multiple(ops) => {
            for op in ops.values_mut() {
                merge(&mut op.node.selection_set.node);
            }
        }
    }
    for fragment in document.fragments.values_mut() {
        merge(&mut fragment.node.selection_set.node);
    }
}

fn merge(set: &mut SelectionSet) {
    let mut seen = std::collections::HashSet::new();
    set.items.retain_mut(|item| {
        match &mut item.node {
            Selection::Field(f) => merge(&mut f.node.selection_set.node),
            Selection::InlineFragment(f) => merge(&mut f.node.selection_set.node),
            Selection::FragmentSpread(_) => {}
        }
        let mut key = String::new();
        write_selection(&mut key, &item.node);
        seen.insert(key)
    });
}

/// A selection written out without positions: equal text, equal selection.
fn write_selection(out: &mut String, selection: &Selection) {
    use std::fmt::Write;
    let directives = |out: &mut String, list: &[Positioned<Directive>]| {
        for d in list {
            let _ = write!(out, "@{}(", d.node.name.node);
            for (name, value) in &d.node.arguments {
                let _ = write!(out, "{}:{},", name.node, value.node);
            }
            out.push(')');
        }
    };
    match selection {
        Selection::Field(f) => {
            let f = &f.node;
            if let Some(alias) = &f.alias {
                let _ = write!(out, "{}:", alias.node);
            }
            let _ = write!(out, "{}(", f.name.node);
            for (name, value) in &f.arguments {
                let _ = write!(out, "{}:{},", name.node, value.node);
            }
            out.push(')');
            directives(out, &f.directives);
            write_set(out, &f.selection_set.node);
        }
        Selection::InlineFragment(f) => {
            let f = &f.node;
            out.push_str("...");
            if let Some(on) = &f.type_condition {
                let _ = write!(out, "on {}", on.node.on.node);
            }
            directives(out, &f.directives);
            write_set(out, &f.selection_set.node);
        }
        Selection::FragmentSpread(f) => {
            let _ = write!(out, "...{}", f.node.fragment_name.node);
            directives(out, &f.node.directives);
        }
    }
}

fn write_set(out: &mut String, set: &SelectionSet) {
    out.push('{');
    for item in &set.items {
        write_selection(out, &item.node);
        out.push(' ');
    }
    out.push('}');
}

/// The root fields an operation resolves, through inline fragments and (each named
/// fragment once) spreads.
fn root_fields(document: &ExecutableDocument, set: &SelectionSet) -> usize {
    fn walk<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        visited: &mut std::collections::HashSet<&'a str>,
    ) -> usize {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(_) => 1,
                Selection::InlineFragment(f) => walk(document, &f.node.selection_set.node, visited),
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    match document.fragments.get(&s.node.fragment_name.node) {
                        Some(f) if visited.insert(name) => {
                            walk(document, &f.node.selection_set.node, visited)
                        }
                        _ => 0,
                    }
                }
            })
            .sum()
    }
    walk(document, set, &mut std::collections::HashSet::new())
}

/// What validation learnt about a request, for its log line.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub complexity: std::sync::atomic::AtomicUsize,
}

/// Charges each validated request's complexity to its tenant's point bucket, so one
/// tenant's heavy documents cannot starve the others; refused with `RATE_LIMITED`.
#[derive(Debug, Default)]
pub struct TenantBudget;

impl ExtensionFactory for TenantBudget {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(TenantBudgetExtension)
    }
}

struct TenantBudgetExtension;

#[async_trait::async_trait]
impl Extension for TenantBudgetExtension {
    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if let Some(stats) = ctx.data_opt::<Arc<RequestStats>>() {
            stats
                .complexity
                .store(result.complexity, std::sync::atomic::Ordering::Relaxed);
        }
        let limiter = ctx.data_opt::<Arc<RateLimiter>>();
        let caller = ctx.data_opt::<Caller>();
        if let (Some(limiter), Some(caller)) = (limiter, caller) {
            let cost = result.complexity.max(1) as f64;
            if let Err(wait) =
                limiter
                    .tenants
                    .check(&caller.tenant.to_string(), cost, Instant::now())
            {
                return Err(vec![rate_limited(wait)]);
            }
        }
        Ok(result)
    }
}

/// The error of a request refused by a rate limit, with when to retry.
pub fn rate_limited(wait: std::time::Duration) -> ServerError {
    let mut error = ServerError::new("Rate limit exceeded; retry later", None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", "RATE_LIMITED");
    ext.set("retryAfterSeconds", wait.as_secs_f64().ceil() as u64);
    error.extensions = Some(ext);
    error
}

/// Parsed documents by their text. Clients send the same few documents all day, and
/// parsing one (async-graphql's pest grammar) cost more CPU than cloning the result in
/// the portrait benchmark. Only documents that parsed and passed the alias limit are kept.
#[derive(Debug, Default)]
pub struct DocumentCache {
    documents: Arc<std::sync::Mutex<HashMap<String, ExecutableDocument>>>,
}

/// Enough for every document of a set of client apps; past it the cache starts over
/// rather than tracking recency.
const CACHED_DOCUMENTS: usize = 256;

impl ExtensionFactory for DocumentCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DocumentCacheExtension {
            documents: self.documents.clone(),
        })
    }
}

struct DocumentCacheExtension {
    documents: Arc<std::sync::Mutex<HashMap<String, ExecutableDocument>>>,
}

#[async_trait::async_trait]
impl Extension for DocumentCacheExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let cached = {
            let documents = self.documents.lock().unwrap_or_else(|p| p.into_inner());
            documents.get(query).cloned()
        };
        if let Some(document) = cached {
            return Ok(document);
        }
        let document = next.run(ctx, query, variables).await?;
        let mut documents = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        if documents.len() >= CACHED_DOCUMENTS {
            documents.clear();
        }
        documents.insert(query.to_string(), document.clone());
        Ok(document)
    }
}
