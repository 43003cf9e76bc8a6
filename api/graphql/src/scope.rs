//! What a request may reach, decided once per request for HTTP and WebSocket alike: its
//! own tenant-scoped [`Reads`] (so a query over a socket gives its connection back when
//! it answers, instead of holding a read transaction for the socket's life),
//! introspection for admins only, permits of the caller's and the tenant's share of
//! requests running at once, and internal errors masked.

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
};
use async_graphql::{IntrospectionMode, Request, Response, ServerError, ServerResult};

use super::{limits, ApiState, RequestId};
use engine::auth::{Caller, Role};
use engine::reads::Reads;

#[derive(Debug, Default)]
pub struct RequestScope;

impl ExtensionFactory for RequestScope {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestScopeExtension)
    }
}

struct RequestScopeExtension;

/// The caller of a request: in its own data (HTTP) or in its socket's (WebSocket).
fn caller_of<'a>(ctx: &'a ExtensionContext<'_>, request: &'a Request) -> Option<&'a Caller> {
    request
        .data
        .get(&TypeId::of::<Caller>())
        .and_then(|d| d.downcast_ref::<Caller>())
        .or_else(|| ctx.data_opt::<Caller>())
}

#[async_trait::async_trait]
impl Extension for RequestScopeExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let state = ctx.data_opt::<Arc<ApiState>>();
        let caller = caller_of(ctx, &request).cloned();
        let open = state.is_some_and(|s| s.open_introspection);
        let introspect = caller
            .as_ref()
            .is_some_and(|c| c.role == Role::Admin || open);
        if !introspect && request.introspection_mode == IntrospectionMode::Enabled {
            request.introspection_mode = IntrospectionMode::Disabled;
        }
        if let (Some(caller), Some(state)) = (&caller, state) {
            request
                .data
                .insert(Reads::new(&state.engine.db, &caller.tenant));
        }
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let state = ctx.data_opt::<Arc<ApiState>>();
        let caller = ctx.data_opt::<Caller>();
        let permit = match (state, caller) {
            (Some(state), Some(caller)) => match state.in_flight.enter(caller).await {
                Some(permit) => Some(permit),
                None => {
                    tracing::warn!(
                        tenant = %caller.tenant,
                        caller = %caller.subject,
                        "too many requests running at once"
                    );
                    return Response::from_errors(vec![busy(state)]);
                }
            },
            _ => None,
        };
        let mut response = next.run(ctx, operation_name).await;
        if let Some(reads) = ctx.data_opt::<Reads>() {
            reads.release().await;
        }
        drop(permit);
        // Here, not only in the HTTP handler, so answers over a socket hide internal
        // errors as well.
        let request_id = ctx
            .data_opt::<RequestId>()
            .map_or_else(uuid::Uuid::new_v4, |r| r.0);
        super::mask(&mut response, &request_id.to_string());
        response
    }
}

fn busy(state: &ApiState) -> ServerError {
    limits::rate_limited(state.in_flight.limits().wait)
}
