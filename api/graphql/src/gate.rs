//! What every request passes before it runs, decided once per request for HTTP and
//! WebSocket alike: the document's walls and limits (parsed once per distinct text), the
//! tenant's point budget, introspection for admins only, its own tenant-scoped
//! [`Reads`] (so a query over a socket gives its connection back when it answers,
//! instead of holding a read session for the socket's life), the caller's and the
//! tenant's share of requests running at once, and internal errors masked.
//!
//! Why not async-graphql extensions: with any extension registered, async-graphql
//! resolves every field through the extensions' `resolve` chain (a `ResolveInfo` with
//! two registry look-ups, and a boxed future per extension), although none of ours
//! looks at fields. A portrait resolves about 150 fields. So HTTP requests run on a
//! schema with no extensions and pass the [`Gate`] first; a socket's requests, whose
//! per-field cost does not matter, pass the same gate through one extension
//! ([`SocketGate`]).

use std::any::TypeId;
use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
};
use async_graphql::parser::types::{ExecutableDocument, ServiceDocument, TypeSystemDefinition};
use async_graphql::{IntrospectionMode, Request, Response, ServerError, ServerResult, Variables};

use super::rate_limit::RateLimiter;
use super::{input, limits, ApiState, RequestId, RequestStats, ScrmSchema};
use engine::auth::{Caller, Role};
use engine::reads::Reads;

/// The checks in front of the schema, and the schema behind them.
pub struct Gate {
    /// Built without extensions (see the module's comment).
    schema: ScrmSchema,
    state: Arc<ApiState>,
    documents: limits::DocumentCache,
    /// The schema's type names: a variable of another type is refused before validation.
    types: HashSet<String>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("types", &self.types.len())
            .finish_non_exhaustive()
    }
}

impl Gate {
    pub fn new(schema: ScrmSchema, state: Arc<ApiState>) -> Self {
        let types = type_names(&schema.sdl());
        Self {
            schema,
            state,
            documents: limits::DocumentCache::default(),
            types,
        }
    }

    /// Answers `request` from `caller` (none: only what needs no caller answers), with
    /// the document's cost recorded in `stats` for the request's log line.
    pub async fn execute(
        &self,
        request: Request,
        caller: Option<&Caller>,
        limiter: &Arc<RateLimiter>,
        stats: &RequestStats,
    ) -> Response {
        let request_id = request
            .data
            .get(&TypeId::of::<RequestId>())
            .and_then(|d| d.downcast_ref::<RequestId>())
            .map_or_else(uuid::Uuid::new_v4, |r| r.0);
        let (mut request, cost) = match self.prepare(caller, Some(limiter), request) {
            Ok(prepared) => prepared,
            Err(error) => return Response::from_errors(vec![error]),
        };
        stats
            .complexity
            .store(cost, std::sync::atomic::Ordering::Relaxed);
        if let Some(caller) = caller {
            request.data.insert(caller.clone());
        }
        // Job-starting mutations charge the limiter's bucket for heavy work.
        request.data.insert(limiter.clone());
        let reads = request
            .data
            .get(&TypeId::of::<Reads>())
            .and_then(|d| d.downcast_ref::<Reads>())
            .cloned();
        let permit = match caller {
            Some(caller) => match self.enter(caller).await {
                Ok(permit) => Some(permit),
                Err(error) => return Response::from_errors(vec![error]),
            },
            None => None,
        };
        let mut response = self.schema.execute(request).await;
        if let Some(reads) = reads {
            reads.release().await;
        }
        drop(permit);
        super::mask(&mut response, &request_id.to_string());
        response
    }

    /// Checks `request` and charges its cost to the caller's tenant; returns it parsed,
    /// with its introspection mode and the caller's [`Reads`], and its cost.
    fn prepare(
        &self,
        caller: Option<&Caller>,
        limiter: Option<&RateLimiter>,
        mut request: Request,
    ) -> ServerResult<(Request, usize)> {
        // Introspection is for admins (everyone authenticated in the demo's open mode).
        let open = self.state.open_introspection;
        let introspect = caller.is_some_and(|c| c.role == Role::Admin || open);
        if !introspect && request.introspection_mode == IntrospectionMode::Enabled {
            request.introspection_mode = IntrospectionMode::Disabled;
        }
        let document = self.document(&request.query, &request.variables)?;
        let cost = limits::cost(&document, &request.variables);
        if let (Some(limiter), Some(caller)) = (limiter, caller) {
            limits::charge(limiter, caller, cost)?;
        }
        request.set_parsed_query(document);
        if let Some(caller) = caller {
            request.data.insert(
                Reads::new(&self.state.engine.db, &caller.tenant)
                    .with_cache(self.state.engine.portraits.clone()),
            );
            request
                .data
                .insert(crate::timeline::TenantLanguage::default());
        }
        Ok((request, cost))
    }

    /// The parsed document of `query`, checked: from the cache when this text passed
    /// before (only the variables are new).
    fn document(&self, query: &str, variables: &Variables) -> ServerResult<ExecutableDocument> {
        input::check(query)?;
        input::check_variables(variables)?;
        if let Some(document) = self.documents.get(query) {
            return Ok(document);
        }
        let mut document = async_graphql::parser::parse_query(query)?;
        limits::limit_document(&mut document)?;
        input::check_document(&document, |name| self.types.contains(name))?;
        self.documents.keep(query, &document);
        Ok(document)
    }

    async fn enter(&self, caller: &Caller) -> Result<crate::in_flight::Permit<'_>, ServerError> {
        match self.state.in_flight.enter(caller).await {
            Some(permit) => Ok(permit),
            None => {
                tracing::warn!(
                    tenant = %caller.tenant,
                    caller = %caller.subject,
                    "too many requests running at once"
                );
                Err(limits::rate_limited(self.state.in_flight.limits().wait))
            }
        }
    }
}

/// Every type the SDL defines, and the built-in scalars it leaves out.
fn type_names(sdl: &str) -> HashSet<String> {
    let mut names: HashSet<String> = ["String", "Int", "Float", "Boolean", "ID"]
        .into_iter()
        .map(str::to_string)
        .collect();
    let parsed: Option<ServiceDocument> = async_graphql::parser::parse_schema(sdl).ok();
    for definition in parsed.iter().flat_map(|d| &d.definitions) {
        if let TypeSystemDefinition::Type(ty) = definition {
            names.insert(ty.node.name.node.to_string());
        }
    }
    names
}

/// The [`Gate`] for a socket's requests, as the one extension of the socket's schema.
#[derive(Debug)]
pub struct SocketGate(pub Arc<Gate>);

impl ExtensionFactory for SocketGate {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(SocketGateExtension(self.0.clone()))
    }
}

struct SocketGateExtension(Arc<Gate>);

/// The caller of a request: in its own data or in its socket's.
fn caller_of<'a>(ctx: &'a ExtensionContext<'_>, request: &'a Request) -> Option<&'a Caller> {
    request
        .data
        .get(&TypeId::of::<Caller>())
        .and_then(|d| d.downcast_ref::<Caller>())
        .or_else(|| ctx.data_opt::<Caller>())
}

#[async_trait::async_trait]
impl Extension for SocketGateExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let caller = caller_of(ctx, &request).cloned();
        let limiter = ctx.data_opt::<Arc<RateLimiter>>().map(Arc::as_ref);
        let (request, _cost) = self.0.prepare(caller.as_ref(), limiter, request)?;
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let permit = match ctx.data_opt::<Caller>() {
            Some(caller) => match self.0.enter(caller).await {
                Ok(permit) => Some(permit),
                Err(error) => return Response::from_errors(vec![error]),
            },
            None => None,
        };
        let mut response = next.run(ctx, operation_name).await;
        if let Some(reads) = ctx.data_opt::<Reads>() {
            reads.release().await;
        }
        drop(permit);
        let request_id = ctx
            .data_opt::<RequestId>()
            .map_or_else(uuid::Uuid::new_v4, |r| r.0);
        super::mask(&mut response, &request_id.to_string());
        response
    }
}
