//! API.md #37: one log line per request with who, what, how costly, how long and how it
//! ended, and never a variable's value. The log subscriber is this test's own (on its
//! runtime's threads), not the process's: the other tests of the binary log elsewhere.

use std::io::Write;
use std::sync::{Arc, Mutex};

use engine::auth::Role;
use graphql::ids;
use harness::live::{token, TestApi};
use harness::world::{served, ONE_TENANT};
use harness::TestDb;
use projections::on_pool;
use serde_json::{json, Value};
use tracing::subscriber::NoSubscriber;
use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The request log line with this request id.
    fn request_line(&self, request_id: &str) -> Value {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| {
                l["fields"]["message"] == "graphql" && l["fields"]["request_id"] == request_id
            })
            .unwrap_or_else(|| panic!("no log line for request {request_id}"))
    }
}

const T: &str = "acme";
/// A phone number and a remark written by a guide: personal data that must stay out of logs.
const PHONE: &str = "13912345678";
const REMARK: &str = "VIP-喜欢金饰-13912345678";

async fn post(api: &TestApi, bearer: &str, body: Value) -> (String, Value) {
    let response = api
        .http
        .post(format!("{}/graphql", api.base))
        .bearer_auth(bearer)
        .json(&body)
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    (id, response.json().await.unwrap())
}

#[test]
fn each_request_logs_one_line_with_its_facts_and_no_personal_data() {
    let logs = Capture::default();
    // The binary's own configuration: JSON lines at info. Not installed for the whole
    // process, where the other tests of this binary would write to it too, but on every
    // thread of this test's runtime (the server's tasks run there) and on this one.
    let dispatch = Dispatch::new(
        tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("info,sqlx=warn"))
            .with_writer(logs.clone())
            .json()
            .finish(),
    );
    // A second registered dispatch, alive as long as ours. With exactly one, tracing takes
    // an event's interest from the default of whichever thread reaches it first; on
    // another test's thread that is none, and the event stays off for good
    // (tokio-rs/tracing#3611).
    let _second = Dispatch::new(NoSubscriber::default());
    // Also routes the `log` crate's records to the thread's subscriber, as `init` did.
    let _this_thread = dispatch.clone().set_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // For as long as the thread lives.
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .build()
        .unwrap();
    runtime.block_on(each_request_logs(logs));
}

async fn each_request_logs(logs: Capture) {
    let (_db, api) = served(TestDb::postgres().await, ONE_TENANT).await;
    let (staff, store, customer): (String, String, String) = on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT r.staff_id, s.store_id, r.customer_id FROM rm_customer_staff r \
             JOIN rm_staff s USING (tenant_id, staff_id) WHERE r.tenant_id = $1 \
             ORDER BY r.customer_id LIMIT 1",
        )
        .bind(T)
        .fetch_one(pool)
        .await
    })
    .unwrap();
    let id = ids::encode("Customer", &customer).to_string();
    let guide = token(T, Role::Guide, Some(&staff), &[&store]);

    let (request_id, body) = post(
        &api,
        &guide,
        json!({
            "operationName": "Remark",
            "query": "mutation Remark($input: SetRemarkInput!) { setRemark(input: $input) { \
                      userErrors { code } customer { id } } }",
            "variables": { "input": {
                "customerId": id, "remark": "VIP", "description": REMARK,
                "idempotencyKey": uuid::Uuid::new_v4().to_string() } },
        }),
    )
    .await;
    assert_eq!(body["data"]["setRemark"]["userErrors"], json!([]), "{body}");
    let line = request_line_eventually(&logs, &request_id).await;
    let fields = &line["fields"];
    assert_eq!(fields["operation"], "Remark");
    assert_eq!(fields["tenant"], T);
    assert_eq!(fields["caller"], staff.as_str());
    assert_eq!(fields["role"], "guide");
    assert!(fields["complexity"].as_u64().unwrap() > 0, "{line}");
    assert!(fields["duration_ms"].as_f64().unwrap() > 0.0, "{line}");
    assert_eq!(fields["errors"], 0);

    // Operations may read the phone; the answer has it, the log must not.
    on_pool!(&api.engine.db, |pool| {
        sqlx::query("UPDATE rm_customer SET phone = $1 WHERE tenant_id = $2 AND customer_id = $3")
            .bind(PHONE)
            .bind(T)
            .bind(&customer)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    })
    .unwrap();
    let ops = token(T, Role::Operations, None, &[]);
    let (request_id, body) = post(
        &api,
        &ops,
        json!({ "query": "query Look($id: ID!) { customer(id: $id) { phone } }",
                "variables": { "id": id } }),
    )
    .await;
    assert_eq!(body["data"]["customer"]["phone"], PHONE, "{body}");
    let line = request_line_eventually(&logs, &request_id).await;
    assert_eq!(line["fields"]["role"], "operations");

    // A failing request logs its code.
    let (request_id, _) = post(&api, "forged", json!({ "query": "{ viewer { role } }" })).await;
    let line = request_line_eventually(&logs, &request_id).await;
    assert!(
        line["fields"]["codes"]
            .as_str()
            .unwrap()
            .contains("UNAUTHENTICATED"),
        "{line}"
    );

    // Client mistakes (issue 14): a NUL in a string, an undefined variable, a bad
    // DateTime, an Int past 2^31. Each is the client's error, answered as such, logged
    // at most as a warning, and writes nothing.
    let events_before = event_count(&api).await;
    let key = || uuid::Uuid::new_v4().to_string();
    let mistakes = [
        json!({ "query": "mutation($i: SetRemarkInput!) { setRemark(input: $i) { userErrors { code } } }",
                "variables": { "i": { "customerId": id, "remark": "金\u{0}饰", "idempotencyKey": key() } } }),
        json!({ "query": "mutation { setRemark(input: {customerId: \"x\", remark: \"a\\u0000b\", \
                          idempotencyKey: \"k\"}) { userErrors { code } } }" }),
        json!({ "query": "query { customer(id: $nope) { name } }" }),
        json!({ "query": "query($id: ID!) { customer(id: $id) { name } }", "variables": {} }),
        json!({ "query": "mutation($i: IssueCouponInput!) { issueCoupon(input: $i) { userErrors { code } } }",
                "variables": { "i": { "customerId": id, "campaignId": "spring", "valueFen": 5000,
                                      "expiresAt": "next tuesday", "idempotencyKey": key() } } }),
        json!({ "query": "mutation($i: IssueCouponInput!) { issueCoupon(input: $i) { userErrors { code } } }",
                "variables": { "i": { "customerId": id, "campaignId": "spring", "valueFen": 2_147_483_648_i64,
                                      "expiresAt": "2030-01-01T00:00:00Z", "idempotencyKey": key() } } }),
        json!({ "query": "{ customers(first: 2147483648) { edges { cursor } } }" }),
    ];
    for mistake in mistakes {
        let (request_id, body) = post(&api, &guide, mistake.clone()).await;
        let codes: Vec<&str> = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{mistake}: {body}"))
            .iter()
            .filter_map(|e| e["extensions"]["code"].as_str())
            .collect();
        assert!(
            !codes.is_empty() && codes.iter().all(|c| *c == "BAD_USER_INPUT"),
            "{mistake}: {body}"
        );
        assert!(
            !body.to_string().contains("Internal error"),
            "{mistake}: {body}"
        );
        request_line_eventually(&logs, &request_id).await;
    }
    assert_eq!(
        event_count(&api).await,
        events_before,
        "a mistake wrote an event"
    );
    let errors: Vec<Value> = logs
        .text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["level"] == "ERROR")
        .collect();
    assert!(
        errors.is_empty(),
        "client mistakes logged as errors: {errors:?}"
    );

    let text = logs.text();
    assert!(!text.contains(PHONE), "a phone number reached the logs");
    assert!(!text.contains("喜欢金饰"), "a remark reached the logs");
    api.stop().await;
}

async fn request_line_eventually(logs: &Capture, request_id: &str) -> Value {
    // The line is written after the response is on its way.
    for _ in 0..100 {
        if logs.text().contains(request_id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    logs.request_line(request_id)
}

async fn event_count(api: &TestApi) -> i64 {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(pool)
            .await
    })
    .unwrap()
}
