//! The server keeps at most its limit of client connections open; one past it waits
//! until a connection idle between requests gives up its place, or is answered 503
//! "busy" if none does in time, and a connection idle for the timeout is closed: what
//! bounds its memory under an overload (`server::connections`,
//! docs/adr/0027-connection-limit.md).

use std::time::Duration;

use harness::live::TestApi;
use harness::on_both_backends;
use server::connections::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: scrm\r\n\r\n";

/// Sends a health check on `stream` and reads its answer, or `None` if none came
/// within `patience`.
async fn health(stream: &mut TcpStream, patience: Duration) -> Option<String> {
    stream.write_all(HEALTH).await.unwrap();
    answer(stream, patience).await
}

/// Reads one answer to a health check from `stream`, or `None` if none came within
/// `patience`.
async fn answer(stream: &mut TcpStream, patience: Duration) -> Option<String> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = async {
        // "ok" is the body; the answer is whole once it has arrived.
        while !answer.ends_with(b"ok") {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the server closed the connection");
            answer.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(patience, read).await.ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

async fn connect(api: &TestApi) -> TcpStream {
    TcpStream::connect(api.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

async fn metric(api: &TestApi, name: &str) -> f64 {
    let text = api.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

on_both_backends! {
    async fn a_connection_past_the_limit_waits_while_the_others_work_and_takes_an_idle_ones_place(db: TestDb) {
        let api = TestApi::start_with(&db, |s| {
            s.connections = ConnectionLimits {
                max: 2,
                idle: Duration::from_secs(60),
                admit_within: Duration::from_secs(30),
            };
        })
        .await;
        let patience = Duration::from_secs(5);
        // Two requests in progress: their headers have not ended yet.
        let mut first = connect(&api).await;
        let mut second = connect(&api).await;
        first.write_all(b"GET /healthz HTTP/1.1\r\nhost: scrm\r\n").await.unwrap();
        second.write_all(b"GET /healthz HTTP/1.1\r\nhost: scrm\r\n").await.unwrap();

        // Both places are taken by connections at work: a third is not accepted, and
        // neither of them is cut to make room for it.
        let mut third = connect(&api).await;
        third.write_all(HEALTH).await.unwrap();
        assert_eq!(answer(&mut third, Duration::from_millis(700)).await, None);

        // The first request ends and is answered; its connection then sits idle
        // between requests, so it gives its place to the one waiting.
        first.write_all(b"\r\n").await.unwrap();
        let answered = answer(&mut first, patience).await.expect("the first request was answered");
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        let waited = answer(&mut third, patience).await.expect("the waiting connection was never answered");
        assert!(waited.starts_with("HTTP/1.1 200"), "{waited}");
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(patience, first.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0))), "the idle connection was not closed: {closed:?}");

        // The second, still at work all along, was not cut.
        second.write_all(b"\r\n").await.unwrap();
        let answered = answer(&mut second, patience).await.expect("the second request was answered");
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        drop((second, third));

        assert_eq!(metric(&api, "scrm_connections_max").await, 2.0);
        let open = metric(&api, "scrm_connections_open").await;
        assert!((1.0..=2.0).contains(&open), "{open} connections open");
    }
}

on_both_backends! {
    async fn an_idle_connection_is_closed_and_its_place_given_to_the_next(db: TestDb) {
        let idle = Duration::from_millis(300);
        let api = TestApi::start_with(&db, |s| {
            s.connections = ConnectionLimits { max: 1, idle, ..ConnectionLimits::default() };
        })
        .await;
        let mut first = connect(&api).await;
        assert!(health(&mut first, Duration::from_secs(5)).await.is_some());
        // Still talking within the timeout keeps it open.
        tokio::time::sleep(idle / 2).await;
        assert!(health(&mut first, Duration::from_secs(5)).await.is_some());

        // Silent past the timeout: the server closes it (the read ends).
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), first.read_to_end(&mut rest))
            .await
            .expect("the idle connection was never closed");
        assert!(closed.is_ok() && rest.is_empty(), "{closed:?} {rest:?}");
        assert!(started.elapsed() >= idle / 2, "closed before it was idle");

        // Its place is free: the next connection is accepted and answered.
        let mut next = connect(&api).await;
        assert!(health(&mut next, Duration::from_secs(5)).await.is_some());
    }
}

on_both_backends! {
    async fn a_connection_no_place_comes_free_for_is_answered_busy_and_the_next_one_served(db: TestDb) {
        let admit_within = Duration::from_millis(300);
        let api = TestApi::start_with(&db, |s| {
            s.connections = ConnectionLimits { max: 1, idle: Duration::from_secs(60), admit_within };
        })
        .await;
        let patience = Duration::from_secs(5);
        // The only place is taken by a request in progress.
        let mut working = connect(&api).await;
        working.write_all(b"GET /healthz HTTP/1.1\r\nhost: scrm\r\n").await.unwrap();

        // A GraphQL request past the limit: after waiting for a place, it is told the
        // server is busy, in GraphQL's shape, with when to come back, and is closed.
        let started = std::time::Instant::now();
        let mut refused = connect(&api).await;
        let query = r#"{"query":"{ __typename }"}"#;
        refused
            .write_all(format!(
                "POST /graphql HTTP/1.1\r\nhost: scrm\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\n\r\n{query}",
                query.len()
            ).as_bytes())
            .await
            .unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(patience, refused.read_to_end(&mut reply))
            .await
            .expect("the connection past the limit was neither answered nor closed")
            .unwrap();
        let reply = String::from_utf8_lossy(&reply);
        assert!(started.elapsed() >= admit_within, "refused before waiting for a place");
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        let head = reply.to_ascii_lowercase();
        assert!(head.contains("retry-after: 1\r\n"), "{reply}");
        assert!(head.contains("connection: close\r\n"), "{reply}");
        let body: serde_json::Value =
            serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BUSY", "{body}");
        assert!(body.get("data").is_none(), "{body}");

        // A liveness probe past the limit is still told the process is alive.
        let mut probe = connect(&api).await;
        let alive = health(&mut probe, patience).await.expect("the probe was not answered");
        assert!(alive.starts_with("HTTP/1.1 200"), "{alive}");

        // The request in progress was not cut; once it is answered and its connection
        // closed, the next connection takes the place and is served.
        working.write_all(b"\r\n").await.unwrap();
        let answered = answer(&mut working, patience).await.expect("the request in progress was cut");
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        drop(working);
        let mut next = connect(&api).await;
        let served = health(&mut next, patience).await.expect("the next connection was not served");
        assert!(served.starts_with("HTTP/1.1 200"), "{served}");
        drop(next);

        assert_eq!(metric(&api, "scrm_connections_refused_total").await, 2.0);
    }
}
