//! GraphQL subscriptions over WebSocket at `/graphql/ws` (`graphql-transport-ws`, and
//! the older `graphql-ws`). The socket authenticates once, in `connection_init`, with
//! the same credentials as HTTP (`{"authorization": "Bearer …"}`); a socket that has not
//! done so within [`INIT_DEADLINE`] is closed, and so is one whose credential stops
//! being valid (a revoked API key, an expired token), checked every [`RECHECK`].

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use tokio::sync::oneshot;

use crate::http::GraphqlHttp;
use engine::auth::Authenticator;
use graphql::SocketSlots;

/// How long a new socket has to send `connection_init`.
pub const INIT_DEADLINE: Duration = Duration::from_secs(10);
/// How often an open socket's credential is verified again.
pub const RECHECK: Duration = Duration::from_secs(5);
/// How long the server waits for the answer to its keep-alive ping.
const KEEPALIVE: Duration = Duration::from_secs(30);

pub async fn handle(
    State(http): State<Arc<GraphqlHttp>>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .max_message_size(crate::http::MAX_BODY_BYTES)
        .max_frame_size(crate::http::MAX_BODY_BYTES)
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve(http, socket, protocol))
}

async fn serve(http: Arc<GraphqlHttp>, socket: WebSocket, protocol: GraphQLProtocol) {
    let (credential_tx, credential_rx) = oneshot::channel::<String>();
    let auth = http.auth.clone();
    let limits = http.limits.clone();
    let init = move |payload: serde_json::Value| async move {
        let header = ["authorization", "Authorization"]
            .iter()
            .find_map(|k| payload.get(*k)?.as_str())
            .map(str::to_string);
        let caller = match auth.authenticate(header.as_deref()).await {
            Ok(caller) => caller,
            Err(error) => {
                tracing::warn!(%error, "subscription socket: authentication failed");
                return Err(async_graphql::Error::new("authentication required"));
            }
        };
        tracing::info!(tenant = %caller.tenant, caller = %caller.subject, "subscription socket opened");
        let mut data = Data::default();
        data.insert(SocketSlots::default());
        data.insert(limits);
        data.insert(caller);
        let _ = credential_tx.send(header.unwrap_or_default());
        Ok(data)
    };
    let serve = GraphQLWebSocket::new(socket, http.schema.clone(), protocol)
        .on_connection_init(init)
        .keepalive_timeout(KEEPALIVE)
        .serve();
    tokio::select! {
        () = serve => {}
        reason = watch(credential_rx, http.auth.clone(), RECHECK) => {
            // Dropping the socket closes it, with every subscription on it.
            tracing::info!(reason, "subscription socket closed by the server");
        }
    }
}

/// Returns (and so closes the socket) when no credential arrives in time or the one
/// that arrived stops being valid; otherwise never.
async fn watch(
    credential: oneshot::Receiver<String>,
    auth: Authenticator,
    every: Duration,
) -> &'static str {
    let header = match tokio::time::timeout(INIT_DEADLINE, credential).await {
        Ok(Ok(header)) => header,
        Ok(Err(_)) => return "authentication failed",
        Err(_) => return "no connection_init in time",
    };
    loop {
        tokio::time::sleep(every).await;
        if let Err(error) = auth.authenticate(Some(&header)).await {
            tracing::warn!(%error, "subscription socket: credential no longer valid");
            return "credential no longer valid";
        }
    }
}
