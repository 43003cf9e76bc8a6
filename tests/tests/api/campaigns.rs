//! Campaigns through WeCom (issue 18): operations start a mass message to a filtered
//! audience of a seeded tenant over HTTP; the job asks the fake WeCom server guide by
//! guide, and each customer ends as WeCom reports: delivered (in the customer's stream),
//! not a friend, already reached today, held out, skipped. A restart while WeCom's
//! answers are lost sends nothing twice; an outage is retried and recovers.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use engine::auth::Role;
use engine::campaign::ADD_MSG_TEMPLATE;
use harness::fake_wecom::{campaign as fake, Failure, FakeWecom};
use harness::ids::tenant;
use harness::live::{error_code, token, TestApi};
use harness::world::{seeded, ONE_TENANT};
use harness::{on_both_backends, TestDb};
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;

const T: &str = "acme";
/// The coupon campaign the tests' mass messages measure.
const COUPON: &str = "gold-care-618";
const CORP: &str = "ww5823bf96d3bd56c7";

async fn server(db: &TestDb) -> TestApi {
    TestApi::start_with(db, |s| {
        s.tick_every = Duration::from_millis(100);
        s.outbound.poll_every = chrono::Duration::zero();
    })
    .await
}

/// The seeded tenant with a server on it whose WeCom API is `fake`.
async fn world(db: TestDb, fake: &FakeWecom) -> (TestDb, TestApi) {
    let db = seeded(db, ONE_TENANT).await;
    let api = server(&db).await;
    fake.connect(
        &api.engine.db,
        &tenant(T),
        "QDG6eK",
        "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    )
    .await;
    (db, api)
}

fn ops() -> String {
    token(T, Role::Operations, None, &[])
}

const START: &str = "mutation($i: StartCampaignInput!) { startCampaign(input: $i) { \
    replayed userErrors { field code message } job { id status } } }";

async fn start(api: &TestApi, input: Value) -> Value {
    let body = api.gql(Some(&ops()), START, json!({ "i": input })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["startCampaign"].clone()
}

/// Starts a mass message to `audience` and returns its job's id.
async fn mass_message(api: &TestApi, text: &str, audience: Value, holdout: i32) -> String {
    let started = start(
        api,
        json!({
            "kind": "MASS_MESSAGE",
            "text": text,
            "audience": audience,
            "holdoutPerMille": holdout,
            "couponCampaignId": COUPON,
            "idempotencyKey": Uuid::new_v4().to_string(),
        }),
    )
    .await;
    assert_eq!(started["userErrors"], json!([]), "{started}");
    started["job"]["id"].as_str().unwrap().to_string()
}

const JOB: &str = "query($id: ID!) { job(id: $id) { status progressDone progressTotal \
    outcomes { code count } \
    wecomCalls(first: 100) { edges { node { api status attempts error answer } } } } }";

async fn job(api: &TestApi, id: &str) -> Value {
    let body = api.gql(Some(&ops()), JOB, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["job"].clone()
}

fn count(job: &Value, code: &str) -> i64 {
    job["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["code"] == code)
        .map(|o| o["count"].as_i64().unwrap())
        .sum()
}

fn calls(job: &Value) -> Vec<Value> {
    job["wecomCalls"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn all_calls(job: &Value, status: &str) -> bool {
    let calls = calls(job);
    !calls.is_empty() && calls.iter().all(|c| c["status"] == status)
}

async fn until(api: &TestApi, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let j = job(api, id).await;
        if done(&j) {
            return j;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never {what}: {j}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// How many mass-message deliveries of campaign `job` (its GraphQL id) each customer's
/// stream holds.
async fn deliveries(api: &TestApi, job: &str) -> Vec<(String, i64)> {
    delivered_in_log(api, job, "MassMessageDelivered").await
}

/// How many `event_type` deliveries of campaign `job` each customer's stream holds.
async fn delivered_in_log(api: &TestApi, job: &str, event_type: &str) -> Vec<(String, i64)> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(job)
        .unwrap();
    let job = String::from_utf8(decoded).unwrap();
    let job = job.trim_start_matches("Job:");
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT aggregate_id, count(*) FROM events WHERE tenant_id = $1 \
             AND event_type = $3 AND CAST(payload AS TEXT) LIKE $2 \
             GROUP BY aggregate_id ORDER BY aggregate_id",
        )
        .bind(T)
        .bind(format!("%{job}%"))
        .bind(event_type)
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

/// A customer of the buyers' audience and the guide WeCom would send them from (the one
/// they befriended first).
async fn buyer_and_guide(api: &TestApi, nth: i64) -> (String, String) {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT c.customer_id, (SELECT r.staff_id FROM rm_customer_staff r \
               WHERE r.tenant_id = c.tenant_id AND r.customer_id = c.customer_id \
               ORDER BY r.added_at, r.staff_id LIMIT 1) \
             FROM rm_customer c WHERE c.tenant_id = $1 AND c.stage <> 'friend' \
             AND c.stage <> 'lost' AND EXISTS (SELECT 1 FROM rm_customer_staff r \
               JOIN rm_staff s ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id \
               WHERE r.tenant_id = c.tenant_id AND r.customer_id = c.customer_id \
               AND s.departed_at IS NULL) \
             ORDER BY c.customer_id LIMIT 1 OFFSET $2",
        )
        .bind(T)
        .bind(nth)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

/// The outcome of `customer` in the tenant's first campaign.
async fn outcome_of(api: &TestApi, customer: &str) -> String {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar(
            "SELECT outcome FROM campaign_items WHERE tenant_id = $1 AND customer_id = $2 \
             ORDER BY send_at LIMIT 1",
        )
        .bind(T)
        .bind(customer)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

/// The first customer (by id) of any campaign with `outcome`.
async fn first_with(api: &TestApi, outcome: &str) -> String {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar(
            "SELECT min(customer_id) FROM campaign_items WHERE tenant_id = $1 AND outcome = $2",
        )
        .bind(T)
        .bind(outcome)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

/// The last customer (by id) of any campaign with `outcome`.
async fn last_with(api: &TestApi, outcome: &str) -> String {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar(
            "SELECT max(customer_id) FROM campaign_items WHERE tenant_id = $1 AND outcome = $2",
        )
        .bind(T)
        .bind(outcome)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

/// Runs customer mutation `field` on `customer` as one of their guides; its payload.
async fn act_for(api: &TestApi, customer: &str, field: &str, mut input: Value) -> Value {
    use base64::Engine as _;
    let (guide, store): (String, String) = on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT r.staff_id, s.store_id FROM rm_customer_staff r JOIN rm_staff s \
             ON s.tenant_id = r.tenant_id AND s.staff_id = r.staff_id \
             WHERE r.tenant_id = $1 AND r.customer_id = $2 ORDER BY r.staff_id LIMIT 1",
        )
        .bind(T)
        .bind(customer)
        .fetch_one(pool)
        .await
    })
    .unwrap();
    let id =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("Customer:{customer}"));
    input["customerId"] = json!(id);
    input["idempotencyKey"] = json!(Uuid::new_v4().to_string());
    if field == "recordPurchase" {
        input["storeId"] = json!(store);
    }
    let input_type = format!("{}{}Input", field[..1].to_uppercase(), &field[1..]);
    let doc = format!(
        "mutation($i: {input_type}!) {{ {field}(input: $i) {{ couponId userErrors {{ code message }} }} }}"
    );
    let guide_token = token(T, Role::Guide, Some(&guide), &[&store]);
    let body = api
        .gql(Some(&guide_token), &doc, json!({ "i": input }))
        .await;
    let payload = body["data"][field].clone();
    assert_eq!(payload["userErrors"], json!([]), "{body}");
    payload
}

const RESULTS: &str = "query($id: ID!) { campaignResults(id: $id) { channel text \
    couponCampaignId windowDays conversionUplift redemptionUplift job { status } \
    reached { customers buyers orders amountFen couponRedeemers conversionRate } \
    heldOut { customers buyers orders amountFen couponRedeemers conversionRate } } }";

async fn results(api: &TestApi, id: &str) -> Value {
    let analyst = token(T, Role::Analyst, None, &[]);
    let body = api.gql(Some(&analyst), RESULTS, json!({ "id": id })).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["campaignResults"].clone()
}

fn buyers() -> Value {
    json!({ "stages": ["FIRST_PURCHASE", "REPURCHASE", "LOYAL"] })
}

async fn audience_size(api: &TestApi, filter: &Value) -> i64 {
    let body = api
        .gql(
            Some(&ops()),
            "query($f: CustomerFilter) { audience(filter: $f) { size } }",
            json!({ "f": filter }),
        )
        .await;
    body["data"]["audience"]["size"].as_i64().unwrap()
}

on_both_backends! {
    citus;
    async fn a_mass_message_reaches_a_filtered_audience_through_wecom_once_a_day(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let (_db, api) = world(db, &fake).await;
        let size = audience_size(&api, &buyers()).await;
        assert!(size > 20, "{size}");
        // WeCom will find one customer is not their guide's friend.
        let (stranger, guide) = buyer_and_guide(&api, 0).await;
        fake.not_friends(&guide, &stranger);

        let id = mass_message(&api, "618 到店礼：凭此消息领取金饰保养券", buyers(), 200).await;
        // The calls may be answered before the job counts what they did.
        let j = until(&api, &id, "sent to WeCom", |j| {
            all_calls(j, "DONE") && count(j, "PLANNED") == 0 && count(j, "SENT") > 0
        })
        .await;
        // One task per sending guide, each holding that guide's customers.
        let tasks = fake.mass_message_tasks();
        assert_eq!(tasks.len(), calls(&j).len(), "{j}");
        let senders: BTreeSet<&String> = tasks.iter().map(|t| &t.1).collect();
        assert_eq!(senders.len(), tasks.len(), "one task per guide: {tasks:?}");
        assert!(calls(&j).iter().all(|c| c["api"] == ADD_MSG_TEMPLATE));
        // Unless the holdout's draw kept them back.
        let stranger_outcome = outcome_of(&api, &stranger).await;
        assert!(["NOT_FRIEND", "HELD_OUT"].contains(&stranger_outcome.as_str()));
        let not_friend = i64::from(stranger_outcome == "NOT_FRIEND");
        assert_eq!(count(&j, "NOT_FRIEND"), not_friend, "{j}");
        let in_tasks: usize = tasks.iter().map(|t| t.2).sum();
        assert_eq!(count(&j, "SENT"), in_tasks as i64, "{j}");
        // Nobody is reached until the guides confirm in the app.
        assert!(deliveries(&api, &id).await.is_empty());
        // Unfinished: running a poll, or queued for the next one.
        assert!(["RUNNING", "QUEUED"].contains(&j["status"].as_str().unwrap()), "{j}");

        // One customer of a task already got a mass message today from elsewhere.
        let busy = first_with(&api, "SENT").await;
        fake.received_today(&busy);
        fake.confirm_all_mass_messages(unix_now());
        let j = until(&api, &id, "delivered", |j| j["status"] == "SUCCEEDED").await;
        assert_eq!(outcome_of(&api, &busy).await, "ALREADY_RECEIVED");
        let delivered = count(&j, "DELIVERED");
        assert_eq!(delivered, in_tasks as i64 - 1, "all but the one reached elsewhere: {j}");
        assert_eq!(count(&j, "ALREADY_RECEIVED"), 1, "{j}");
        let held_out = count(&j, "HELD_OUT");
        assert!(held_out > 0 && held_out < size / 2, "{held_out} of {size}: {j}");
        let accounted: i64 = j["outcomes"].as_array().unwrap().iter()
            .map(|o| o["count"].as_i64().unwrap()).sum();
        assert_eq!(accounted, size, "every customer of the audience once: {j}");
        assert_eq!(j["progressDone"], j["progressTotal"], "{j}");
        // The log holds one delivery per customer reached, none for the rest.
        let logged = deliveries(&api, &id).await;
        assert_eq!(logged.len() as i64, delivered);
        assert!(logged.iter().all(|(_, n)| *n == 1), "{logged:?}");

        // What it brought back, from the read models: the arms as the job counted
        // them; within the window, one reached customer buys and redeems the
        // campaign's coupon, one held-out customer buys; a purchase after the window
        // counts for nothing.
        let reached = first_with(&api, "DELIVERED").await;
        let held = first_with(&api, "HELD_OUT").await;
        act_for(&api, &reached, "recordPurchase", json!({ "orderId": "o-618-1",
            "amountFen": 880_000 })).await;
        let coupon = act_for(&api, &reached, "issueCoupon", json!({ "campaignId": COUPON,
            "valueFen": 5_000, "expiresAt": "2099-01-01T00:00:00Z" })).await;
        let coupon = coupon["couponId"].as_str().unwrap().to_string();
        act_for(&api, &reached, "redeemCoupon", json!({ "couponId": coupon })).await;
        act_for(&api, &held, "recordPurchase", json!({ "orderId": "o-618-2",
            "amountFen": 120_000 })).await;
        api.clock.advance(chrono::Duration::days(8));
        let late = last_with(&api, "DELIVERED").await;
        act_for(&api, &late, "recordPurchase", json!({ "orderId": "o-618-3",
            "amountFen": 999_900 })).await;
        api.settle().await;
        let r = results(&api, &id).await;
        assert_eq!(r["reached"]["customers"], delivered, "{r}");
        assert_eq!(r["heldOut"]["customers"], held_out, "{r}");
        assert_eq!(r["reached"]["buyers"], 1, "{r}");
        assert_eq!(r["reached"]["amountFen"], "880000", "{r}");
        assert_eq!(r["reached"]["couponRedeemers"], 1, "{r}");
        assert_eq!(r["heldOut"]["buyers"], 1, "{r}");
        assert_eq!(r["heldOut"]["amountFen"], "120000", "{r}");
        let uplift = r["conversionUplift"].as_f64().unwrap();
        let expected = 1.0 / delivered as f64 - 1.0 / held_out as f64;
        assert!((uplift - expected).abs() < 1e-9, "{uplift} vs {expected}");
        assert_eq!(r["job"]["status"], "SUCCEEDED");
        // Rebuilt from the log, the results are the same.
        let results_model = projections::registry::find(projections::campaigns::NAME).unwrap();
        projections::rebuild::rebuild(&api.engine.db, results_model, false).await.unwrap();
        assert_eq!(results(&api, &id).await, r);
        api.clock.advance(-chrono::Duration::days(8));

        // A second campaign the same day skips everyone the first reached.
        let second = mass_message(&api, "第二条", json!({}), 0).await;
        let j2 = until(&api, &second, "sent to WeCom", |j| {
            all_calls(j, "DONE") && count(j, "PLANNED") == 0
        })
        .await;
        assert_eq!(count(&j2, "REACHED_TODAY"), delivered, "{j2}");
        assert_eq!(count(&j2, "DELIVERED"), 0, "{j2}");
        let reached_twice = fake.mass_message_tasks().len() - tasks.len();
        assert!(reached_twice > 0, "the rest of the tenant is sent");

        // Bad input loses nothing and says what to correct.
        let bad = start(&api, json!({ "kind": "MASS_MESSAGE", "text": " ",
            "idempotencyKey": Uuid::new_v4().to_string() })).await;
        assert_eq!(bad["userErrors"][0]["field"], json!(["input", "text"]), "{bad}");
        let bad = start(&api, json!({ "kind": "MASS_MESSAGE", "text": "hi",
            "holdoutPerMille": 900, "idempotencyKey": Uuid::new_v4().to_string() })).await;
        assert_eq!(bad["userErrors"][0]["field"], json!(["input", "holdoutPerMille"]), "{bad}");
        let guide_token = token(T, Role::Guide, Some(&guide), &[]);
        let body = api.gql(Some(&guide_token), START, json!({ "i": { "kind": "MOMENT",
            "text": "hi", "idempotencyKey": Uuid::new_v4().to_string() } })).await;
        assert_eq!(error_code(&body).as_deref(), Some("FORBIDDEN"), "{body}");
        api.stop().await;
    }
}

on_both_backends! {
    async fn a_restart_while_wecoms_answers_are_lost_sends_nothing_twice(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let (db, api) = world(db, &fake).await;
        // WeCom creates every task and every answer is lost on the way back.
        fake.lose_answers(usize::MAX);
        let id = mass_message(&api, "会员日：金价直降", buyers(), 0).await;
        let j = until(&api, &id, "sent with the answers lost", |j| all_calls(j, "SENDING")).await;
        let created = fake.mass_message_tasks().len();
        assert_eq!(created, calls(&j).len(), "{j}");
        // The server stops mid-campaign; another starts on the same storage.
        api.stop().await;
        fake.lose_answers(0);
        let api = server(&db).await;
        api.clock.advance(chrono::Duration::minutes(2));
        let j = until(&api, &id, "answered", |j| all_calls(j, "DONE")).await;
        // The new server found every task WeCom had made and made none again.
        assert_eq!(fake.mass_message_tasks().len(), created, "{j}");
        assert!(
            calls(&j).iter().all(|c| c["answer"].as_str().unwrap().contains("found_again")),
            "{j}"
        );
        assert_eq!(fake.calls(fake::ADD_MSG_TEMPLATE), created, "each task asked for once");
        fake.confirm_all_mass_messages(unix_now());
        let j = until(&api, &id, "delivered", |j| j["status"] == "SUCCEEDED").await;
        let logged = deliveries(&api, &id).await;
        assert_eq!(logged.len() as i64, count(&j, "DELIVERED"), "{j}");
        assert!(count(&j, "DELIVERED") > 0, "{j}");
        assert!(logged.iter().all(|(_, n)| *n == 1), "{logged:?}");
        api.stop().await;
    }
}

on_both_backends! {
    async fn a_wecom_outage_mid_campaign_is_retried_and_recovers(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let (_db, api) = world(db, &fake).await;
        // WeCom is over its frequency limit: nothing is created, the calls wait.
        fake.fail(Some(Failure::Errcode(45009)));
        let id = mass_message(&api, "新品到店", buyers(), 0).await;
        let j = until(&api, &id, "told to wait", |j| {
            all_calls(j, "PENDING")
                && calls(j).iter().all(|c| c["error"].as_str().unwrap_or("").contains("45009"))
        })
        .await;
        assert_eq!(fake.mass_message_tasks().len(), 0, "{j}");
        // Then WeCom's gateway fails outright: nobody knows whether a task was made.
        fake.fail(Some(Failure::Status500));
        api.clock.advance(chrono::Duration::minutes(1));
        until(&api, &id, "unanswered", |j| {
            calls(j).iter().all(|c| c["attempts"].as_i64().unwrap() >= 2)
        })
        .await;
        // WeCom is back: each task is made once.
        fake.fail(None);
        api.clock.advance(chrono::Duration::minutes(5));
        let j = until(&api, &id, "sent", |j| all_calls(j, "DONE") && count(j, "PLANNED") == 0)
            .await;
        let tasks = fake.mass_message_tasks().len();
        assert_eq!(tasks, calls(&j).len(), "{j}");
        // An outage while results are read leaves the job waiting, not failed.
        fake.fail(Some(Failure::Status500));
        fake.confirm_all_mass_messages(unix_now());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let j = job(&api, &id).await;
        assert_eq!(j["status"], "RUNNING", "{j}");
        assert_eq!(count(&j, "DELIVERED"), 0, "{j}");
        fake.fail(None);
        let j = until(&api, &id, "delivered", |j| j["status"] == "SUCCEEDED").await;
        assert_eq!(count(&j, "SENT"), 0, "{j}");
        assert_eq!(deliveries(&api, &id).await.len() as i64, count(&j, "DELIVERED"));
        assert_eq!(fake.mass_message_tasks().len(), tasks, "nothing made twice");
        api.stop().await;
    }
}

/// `(guide, customer)` of the campaign's customers with `outcome`.
async fn senders_with(api: &TestApi, outcome: &str) -> Vec<(String, String)> {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT sender_id, customer_id FROM campaign_items WHERE tenant_id = $1 \
             AND outcome = $2 ORDER BY sender_id, customer_id",
        )
        .bind(T)
        .bind(outcome)
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

on_both_backends! {
    async fn a_moment_reaches_the_customers_of_each_guide_who_publishes_it(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let (_db, api) = world(db, &fake).await;
        // WeCom cannot give one guide the post.
        let (_, outsider) = buyer_and_guide(&api, 0).await;
        fake.invalid_moment_sender(&outsider);
        let started = start(&api, json!({ "kind": "MOMENT", "text": "七夕新品：古法金手镯",
            "audience": buyers(), "link": { "title": "新品", "url": "https://example.com/q" },
            "idempotencyKey": Uuid::new_v4().to_string() })).await;
        assert_eq!(started["userErrors"], json!([]), "{started}");
        let id = started["job"]["id"].as_str().unwrap().to_string();
        let j = until(&api, &id, "posted", |j| all_calls(j, "DONE") && count(j, "PLANNED") == 0)
            .await;
        // One post per guide, naming only that guide.
        assert!(calls(&j).iter().all(|c| c["api"] == engine::campaign::ADD_MOMENT_TASK));
        assert_eq!(fake.calls(fake::ADD_MOMENT_TASK), calls(&j).len());
        let invalid = until(&api, &id, "the outsider's post refused", |j| {
            count(j, "INVALID_SENDER") > 0
        })
        .await;
        let sent = senders_with(&api, "SENT").await;
        let guides: BTreeSet<&String> = sent.iter().map(|(g, _)| g).collect();
        assert!(guides.len() >= 2, "{invalid}");
        assert!(!guides.contains(&outsider));
        // Every guide but the last publishes; each post reaches that guide's customers.
        let last = *guides.iter().last().unwrap();
        let moment_ids: Vec<String> = (1..=calls(&j).len()).map(|n| format!("mom{n:06}")).collect();
        let mut published = 0;
        for guide in &guides {
            let theirs: Vec<&str> =
                sent.iter().filter(|(g, _)| g == *guide).map(|(_, c)| c.as_str()).collect();
            fake.guide_customers(guide, &theirs);
            if *guide != last {
                published += theirs.len() as i64;
                for m in &moment_ids {
                    fake.publish_moment(m, guide);
                }
            }
        }
        let j = until(&api, &id, "delivered", |j| count(j, "DELIVERED") == published).await;
        assert_eq!(j["status"], "RUNNING", "the last guide has not published: {j}");
        let logged = delivered_in_log(&api, &id, "MomentDelivered").await;
        assert_eq!(logged.len() as i64, published);
        assert!(logged.iter().all(|(_, n)| *n == 1), "{logged:?}");
        // Three days on, the last guide's customers end unconfirmed.
        api.clock.advance(chrono::Duration::days(3) + chrono::Duration::minutes(1));
        let j = until(&api, &id, "closed", |j| j["status"] == "SUCCEEDED").await;
        let theirs = sent.iter().filter(|(g, _)| g == last).count() as i64;
        assert_eq!(count(&j, "UNCONFIRMED"), theirs, "{j}");
        assert_eq!(count(&j, "DELIVERED"), published, "{j}");
        api.stop().await;
    }
}

const CAMPAIGNS: &str = "query($after: String) { campaigns(first: 2, after: $after) { \
    pageInfo { hasNextPage endCursor } nodes { id text channel status sendAt } } }";

on_both_backends! {
    /// The console's list of campaigns: the tenant's campaign jobs only, newest first,
    /// page by page, each id the one `campaignResults` takes; for operations and
    /// analysts of that tenant alone.
    async fn campaigns_are_listed_newest_first_with_the_ids_their_results_take(db: TestDb) {
        let api = server(&db).await;
        let fake = FakeWecom::start(CORP).await;
        fake.connect(
            &api.engine.db,
            &tenant(T),
            "QDG6eK",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        )
        .await;
        // Scheduled a day ahead: the runner takes them but sends nothing yet.
        let send_at = (api.clock.now() + chrono::Duration::days(1)).to_rfc3339();
        let mut ids = Vec::new();
        for text in ["one", "two", "three"] {
            api.clock.advance(chrono::Duration::seconds(1));
            let started = start(&api, json!({
                "kind": "MASS_MESSAGE", "text": text, "sendAt": send_at,
                "idempotencyKey": Uuid::new_v4().to_string(),
            }))
            .await;
            assert_eq!(started["userErrors"], json!([]), "{started}");
            ids.push(started["job"]["id"].as_str().unwrap().to_string());
        }
        // Another kind of job is not a campaign.
        let analyst = token(T, Role::Analyst, None, &[]);
        let rebuild = api
            .gql(
                Some(&analyst),
                "mutation($i: StartRebuildInput!) { startRebuild(input: $i) { userErrors { code } } }",
                json!({ "i": { "idempotencyKey": Uuid::new_v4().to_string() } }),
            )
            .await;
        assert_eq!(rebuild["data"]["startRebuild"]["userErrors"], json!([]), "{rebuild}");

        let list = |who: String, after: Value| {
            let api = &api;
            async move {
                let body = api.gql(Some(&who), CAMPAIGNS, json!({ "after": after })).await;
                (body["data"]["campaigns"].clone(), body["errors"].clone())
            }
        };
        let (first, errors) = list(analyst.clone(), Value::Null).await;
        assert!(errors.is_null(), "{errors}");
        let texts = |page: &Value| {
            page["nodes"].as_array().unwrap().iter().map(|n| n["text"].clone()).collect::<Vec<_>>()
        };
        assert_eq!(texts(&first), [json!("three"), json!("two")]);
        assert_eq!(first["nodes"][0]["id"], ids[2].as_str());
        assert_eq!(first["nodes"][0]["channel"], "MASS_MESSAGE");
        let status = &first["nodes"][0]["status"];
        assert!(status == "QUEUED" || status == "RUNNING", "not sent yet: {status}");
        assert_eq!(first["pageInfo"]["hasNextPage"], true);
        let (second, _) = list(ops(), first["pageInfo"]["endCursor"].clone()).await;
        assert_eq!(texts(&second), [json!("one")]);
        assert_eq!(second["nodes"][0]["id"], ids[0].as_str());
        assert_eq!(second["pageInfo"]["hasNextPage"], false);
        let results = results(&api, ids[0].as_str()).await;
        assert_eq!(results["text"], "one", "{results}");

        for role in [Role::Guide, Role::StoreManager] {
            let (_, errors) = list(token(T, role, Some("g1"), &["s1"]), Value::Null).await;
            assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{errors}");
        }
        let (elsewhere, errors) = list(token("globex", Role::Operations, None, &[]), Value::Null).await;
        assert!(errors.is_null(), "{errors}");
        assert_eq!(elsewhere["nodes"], json!([]));
        api.stop().await;
    }
}
