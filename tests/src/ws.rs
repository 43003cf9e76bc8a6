//! A GraphQL client over a real WebSocket (`graphql-transport-ws`), for end-to-end
//! tests of the socket transport.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::live::TestApi;

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket speaking `graphql-transport-ws`, without initialising it.
pub async fn open(api: &TestApi) -> Ws {
    let url = format!("{}/graphql/ws", api.base.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    ws
}

pub async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// Sends `text` as it is (for messages a `Value` cannot or should not hold).
pub async fn send_text(ws: &mut Ws, text: String) {
    ws.send(Message::Text(text.into())).await.unwrap();
}

/// The next protocol message, answering pings; `None` once the socket is closed.
pub async fn receive(ws: &mut Ws, within: Duration) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(within, ws.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" {
                    send(ws, json!({ "type": "pong" })).await;
                    continue;
                }
                return Some(value);
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// A socket initialised with `token`, acknowledged.
pub async fn connect(api: &TestApi, token: &str) -> Ws {
    let mut ws = open(api).await;
    send(
        &mut ws,
        json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }),
    )
    .await;
    let ack = receive(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(
        ack.as_ref().map(|a| a["type"].clone()),
        Some(json!("connection_ack")),
        "{ack:?}"
    );
    ws
}

/// Runs one operation over the socket as subscription `id` and returns its first answer:
/// the `next` payload (`data`/`errors`), or the `error` message's errors as `{"errors":
/// [...]}`. `None` when the socket closed instead.
pub async fn request(ws: &mut Ws, id: &str, query: &str, variables: Value) -> Option<Value> {
    send(
        ws,
        json!({ "id": id, "type": "subscribe",
                "payload": { "query": query, "variables": variables } }),
    )
    .await;
    loop {
        let m = receive(ws, Duration::from_secs(15)).await?;
        if m["id"] != id {
            continue;
        }
        return match m["type"].as_str() {
            Some("next") => Some(m["payload"].clone()),
            Some("error") => Some(json!({ "errors": m["payload"] })),
            other => panic!("expected an answer to {id}, got {other:?}: {m}"),
        };
    }
}
