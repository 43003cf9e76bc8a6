//! Limits async-graphql 7 does not have: at most [`MAX_ALIASES`] aliases in a document
//! (8.0 adds `limit_aliases`) and at most [`MAX_ROOT_FIELDS`] root fields in an
//! operation, after identical sibling selections are merged, so one request cannot fan a
//! cheap field out hundreds of times (async-graphql resolves every copy of a field, and
//! 700 copies of one field without aliases ran 700 times).

use std::collections::HashMap;
use std::time::Instant;

use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::Positioned;
use async_graphql::{ServerError, ServerResult, Variables};

use crate::rate_limit::RateLimiter;
use engine::auth::Caller;

pub const MAX_ALIASES: usize = 15;
/// Root fields one operation may resolve, fragments included.
pub const MAX_ROOT_FIELDS: usize = 20;

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

/// Merges identical sibling selections, then refuses a document over the root-field or
/// the alias limit.
pub(crate) fn limit_document(document: &mut ExecutableDocument) -> ServerResult<()> {
    merge_document(document);
    if let Some(fields) = document
        .operations
        .iter()
        .map(|(_, op)| root_fields(document, &op.node.selection_set.node))
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
    Ok(())
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

/// What the gate learnt about a request, for its log line.
#[derive(Debug, Default)]
pub struct RequestStats {
    pub complexity: std::sync::atomic::AtomicUsize,
}

/// What a document costs a tenant's point budget: async-graphql's complexity rule as
/// this schema uses it (a field costs one plus its selection; a field with a `first`
/// argument costs `first` times its selection), counted on the document before it runs
/// and without a schema, so no extension is needed for it (see `gate`). The costliest
/// operation is charged. A test holds it equal to async-graphql's own count.
pub fn cost(document: &ExecutableDocument, variables: &Variables) -> usize {
    let mut fragments = HashMap::new();
    document
        .operations
        .iter()
        .map(|(_, op)| {
            set_cost(
                document,
                &op.node.selection_set.node,
                variables,
                &mut fragments,
            )
        })
        .max()
        .unwrap_or(0)
}

/// Each named fragment is costed once (a document that spreads fragments into
/// fragments cannot make this walk exponential); a cycle, which validation refuses
/// later, costs nothing here.
fn set_cost<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    variables: &Variables,
    fragments: &mut HashMap<&'a str, Option<usize>>,
) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            // async-graphql does not count `__typename`.
            Selection::Field(f) if f.node.name.node == "__typename" => 0,
            Selection::Field(f) => {
                let children = set_cost(document, &f.node.selection_set.node, variables, fragments);
                match f.node.get_argument("first") {
                    Some(first) => first_value(&first.node, variables).saturating_mul(children),
                    None => children.saturating_add(1),
                }
            }
            Selection::InlineFragment(f) => {
                set_cost(document, &f.node.selection_set.node, variables, fragments)
            }
            Selection::FragmentSpread(s) => {
                let name = s.node.fragment_name.node.as_str();
                match fragments.get(name) {
                    Some(known) => known.unwrap_or(0),
                    None => match document.fragments.get(&s.node.fragment_name.node) {
                        Some(f) => {
                            fragments.insert(name, None);
                            let cost = set_cost(
                                document,
                                &f.node.selection_set.node,
                                variables,
                                fragments,
                            );
                            fragments.insert(name, Some(cost));
                            cost
                        }
                        None => 0,
                    },
                }
            }
        })
        .fold(0usize, usize::saturating_add)
}

fn first_value(value: &async_graphql_value::Value, variables: &Variables) -> usize {
    use async_graphql_value::Value as Literal;
    let number = match value {
        Literal::Number(n) => n.as_i64(),
        Literal::Variable(name) => match variables.get(name) {
            Some(async_graphql::Value::Number(n)) => n.as_i64(),
            _ => None,
        },
        _ => None,
    };
    number.map_or(0, |n| usize::try_from(n.max(0)).unwrap_or(usize::MAX))
}

/// Charges a document's cost to the caller's tenant, so one tenant's heavy documents
/// cannot starve the others; refused with `RATE_LIMITED`.
pub(crate) fn charge(limiter: &RateLimiter, caller: &Caller, cost: usize) -> ServerResult<()> {
    limiter
        .tenants
        .check(
            &caller.tenant.to_string(),
            cost.max(1) as f64,
            Instant::now(),
        )
        .map_err(rate_limited)
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
/// the portrait benchmark. Only documents that parsed and passed every check are kept.
#[derive(Debug, Default)]
pub(crate) struct DocumentCache {
    documents: std::sync::Mutex<HashMap<String, ExecutableDocument>>,
}

/// Enough for every document of a set of client apps; past it the cache starts over
/// rather than tracking recency.
const CACHED_DOCUMENTS: usize = 256;

impl DocumentCache {
    pub(crate) fn get(&self, query: &str) -> Option<ExecutableDocument> {
        let documents = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        documents.get(query).cloned()
    }

    pub(crate) fn keep(&self, query: &str, document: &ExecutableDocument) {
        let mut documents = self.documents.lock().unwrap_or_else(|p| p.into_inner());
        if documents.len() >= CACHED_DOCUMENTS {
            documents.clear();
        }
        documents.insert(query.to_string(), document.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use async_graphql::extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextValidation,
    };
    use async_graphql::{Schema, ServerError, ValidationResult, Variables};

    use crate::{Mutation, Query, Subscription};

    /// async-graphql's own complexity of the last validated document.
    struct Recorder(Arc<AtomicUsize>);

    impl ExtensionFactory for Recorder {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(Recorder(self.0.clone()))
        }
    }

    #[async_trait::async_trait]
    impl Extension for Recorder {
        async fn validation(
            &self,
            ctx: &ExtensionContext<'_>,
            next: NextValidation<'_>,
        ) -> Result<ValidationResult, Vec<ServerError>> {
            let result = next.run(ctx).await?;
            self.0.store(result.complexity, Ordering::SeqCst);
            Ok(result)
        }
    }

    #[tokio::test]
    async fn given_documents_of_every_shape_when_costed_then_the_cost_is_async_graphqls_complexity()
    {
        let recorded = Arc::new(AtomicUsize::new(usize::MAX));
        let schema = Schema::build(Query::default(), Mutation::default(), Subscription)
            .extension(Recorder(recorded.clone()))
            .finish();
        let portrait = "query P($id: ID!) { customer(id: $id) { name maskedPhone stage \
            purchases totalSpentYuan lastActivityAt tags(first: 10) { edges { node { name \
            groupName } } } groups(first: 5) { edges { node { name } } } coupons(first: 5) \
            { edges { node { campaignId status } } } timeline(first: 20) { edges { node { \
            occurredAt kind summary } } } } }";
        let list = "{ customers(first: 20, filter: {stages: [FIRST_PURCHASE, REPURCHASE, \
            LOYAL], hasUnredeemedCoupon: false}) { pageInfo { hasNextPage endCursor } edges \
            { node { id name maskedPhone stage lastActivityAt } } } }";
        let by_variable = "query L($n: Int!) { customers(first: $n) { edges { node { name \
            tags(first: 3) { edges { node { name } } } } } } }";
        let fragments = "query { a: customers(first: 7) { ...Page } b: tagGroups(first: 4) { \
            edges { node { ... on TagGroup { name } } } } __typename } \
            fragment Page on CustomerConnection { edges { node { ...Who } } } \
            fragment Who on Customer { name stage }";
        let zero = "{ customers(first: 0) { edges { node { name } } } }";
        let variables = Variables::from_json(serde_json::json!({ "id": "x", "n": 12 }));
        for document in [portrait, list, by_variable, fragments, zero] {
            recorded.store(usize::MAX, Ordering::SeqCst);
            let request = async_graphql::Request::new(document).variables(variables.clone());
            let response = schema.execute(request).await;
            let theirs = recorded.load(Ordering::SeqCst);
            assert_ne!(
                theirs,
                usize::MAX,
                "not validated: {document}: {:?}",
                response.errors
            );
            let parsed = async_graphql::parser::parse_query(document).unwrap();
            assert_eq!(super::cost(&parsed, &variables), theirs, "{document}");
        }
    }

    #[test]
    fn given_fragments_that_spread_each_other_when_costed_then_each_is_walked_once() {
        // Twenty levels of fragments each spreading the next twice: 2^20 paths, one
        // walk each. The cost saturates instead of overflowing.
        let mut document = String::from("{ ...F0 }");
        for level in 0..20 {
            let next = level + 1;
            document.push_str(&format!(
                " fragment F{level} on Query {{ a: customers(first: 1000) {{ ...F{next} }} \
                 b: customers(first: 999) {{ ...F{next} }} }}"
            ));
        }
        document.push_str(" fragment F20 on CustomerConnection { edges { cursor } }");
        let parsed = async_graphql::parser::parse_query(&document).unwrap();
        assert_eq!(super::cost(&parsed, &Variables::default()), usize::MAX);
        let cycle = async_graphql::parser::parse_query(
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A job(id: 1) { id } }",
        )
        .unwrap();
        assert_eq!(super::cost(&cycle, &Variables::default()), 2);
    }
}
