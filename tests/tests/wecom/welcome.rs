//! Welcome messages and channel codes through WeCom (issue 18): a friend-add notice
//! with a welcome code is answered once, inside WeCom's 20 seconds, however often WeCom
//! delivers it, and the log records what WeCom accepted (with the welcome's coupon); a
//! channel code is made and deleted in WeCom while the operator waits, its adds are
//! attributed to it by name in the portrait and the funnel, and they get its own
//! welcome. WeCom's refusals and a lost answer end as WeCom said, never twice.

use std::time::{Duration, Instant};

use engine::auth::Role;
use harness::fake_wecom::welcome::{ADD_CONTACT_WAY, CODE_INVALID, SEND_WELCOME};
use harness::fake_wecom::FakeWecom;
use harness::live::{error_code, token, TestApi};
use harness::on_both_backends;
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;
use wecom::OutboundSettings;

use super::callbacks::{
    base64_url, configured_with_api, contact, contact_answer, events, post_ok, settled, types_of,
    CORP, T, T0,
};

fn ops() -> String {
    token(T, Role::Operations, None, &[])
}

fn key() -> String {
    Uuid::new_v4().to_string()
}

/// An add of `customer` by zhangsan, through `state` if any, with `code`.
fn add(customer: &str, state: Option<&str>, code: &str) -> String {
    let state = state.map_or(String::new(), |s| {
        format!("\t<State><![CDATA[{s}]]></State>\n")
    });
    contact(
        "add_external_contact",
        "zhangsan",
        customer,
        T0,
        &format!("{state}\t<WelcomeCode><![CDATA[{code}]]></WelcomeCode>\n"),
    )
}

async fn mutate(api: &TestApi, who: &str, name: &str, input: Value, fields: &str) -> Value {
    let input_type = format!("{}{}Input", name[..1].to_uppercase(), &name[1..]);
    let query = format!("mutation($i: {input_type}!) {{ {name}(input: $i) {{ {fields} }} }}");
    let mut input = input;
    input["idempotencyKey"] = json!(key());
    api.gql(Some(who), &query, json!({ "i": input })).await
}

async fn set_welcome(api: &TestApi, welcome: Value) {
    let body = mutate(
        api,
        &ops(),
        "setWelcomeMessage",
        json!({ "welcome": welcome }),
        "userErrors { code message } welcomeMessage { text coupon { campaignId valueYuan validDays } }",
    )
    .await;
    assert_eq!(
        body["data"]["setWelcomeMessage"]["userErrors"],
        json!([]),
        "{body}"
    );
}

/// `(outcome, customer)` of every welcome, by customer.
async fn welcome_rows(api: &TestApi) -> Vec<(String, String)> {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT customer_id, outcome FROM welcome_sends WHERE tenant_id = $1 \
             ORDER BY customer_id",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

/// Waits until no welcome is still being sent.
async fn welcomes_done(api: &TestApi) -> Vec<(String, String)> {
    let started = Instant::now();
    loop {
        let rows = welcome_rows(api).await;
        if rows.iter().all(|(_, outcome)| outcome != "SENDING") {
            return rows;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn payloads<'a>(
    events: &'a [(String, String, Value)],
    customer: &str,
    kind: &str,
) -> Vec<&'a Value> {
    let stream = format!("{T}:{customer}");
    events
        .iter()
        .filter(|(s, t, _)| *s == stream && t == kind)
        .map(|(_, _, p)| p)
        .collect()
}

on_both_backends! {
    async fn a_welcome_code_is_answered_once_within_wecoms_window_under_three_deliveries(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        set_welcome(&api, json!({
            "text": "您好，我是您的专属顾问，欢迎随时咨询",
            "link": { "title": "新客礼", "url": "https://example.com/gift" },
            "coupon": { "campaignId": "welcome-2026", "valueYuan": 20.0, "validDays": 30 },
        }))
        .await;
        fake.set_contact("woW1", contact_answer("woW1", "", json!([])));
        fake.give_welcome_code("WC1");

        // WeCom delivers the notice three times (it retries when unsure we got it).
        let notice = add("woW1", None, "WC1");
        for _ in 0..3 {
            post_ok(&api, &notice).await;
        }
        settled(&api).await;
        assert_eq!(welcomes_done(&api).await, [("woW1".to_string(), "SENT".to_string())]);

        assert_eq!(fake.calls(SEND_WELCOME), 1, "one call for one code");
        let sent = fake.welcomes();
        assert_eq!(sent.len(), 1);
        let (code, body, after) = &sent[0];
        assert_eq!(code, "WC1");
        assert_eq!(body["text"]["content"], "您好，我是您的专属顾问，欢迎随时咨询");
        assert_eq!(body["attachments"][0]["link"]["url"], "https://example.com/gift");
        assert!(*after < Duration::from_secs(20), "answered {after:?} after the add");

        api.settle().await;
        let log = events(&api).await;
        let types = types_of(&log, "woW1");
        assert_eq!(types.first().map(String::as_str), Some("FriendAdded"), "{types:?}");
        assert_eq!(types[types.len() - 2..], ["WelcomeMessageSent", "CouponIssued"], "{types:?}");
        let welcomed = payloads(&log, "woW1", "WelcomeMessageSent");
        assert_eq!(welcomed[0]["WelcomeMessageSent"]["sender"], "zhangsan");
        let coupon = payloads(&log, "woW1", "CouponIssued");
        assert_eq!(coupon[0]["CouponIssued"]["campaign"], "welcome-2026");
        assert_eq!(coupon[0]["CouponIssued"]["value"], 2000);

        // Processing the notice again (a crash before its row was concluded) sends
        // nothing more: the code's call exists.
        on_pool!(&api.engine.db, |pool| {
            sqlx::query("UPDATE wecom_inbox SET status = 'pending'").execute(pool).await.map(|_| ())
        })
        .unwrap();
        wecom::process_pending(&api.engine, &api.wecom, api.clock.now()).await.unwrap();
        assert_eq!(fake.calls(SEND_WELCOME), 1);
        assert_eq!(payloads(&events(&api).await, "woW1", "WelcomeMessageSent").len(), 1);

        // A code WeCom no longer honours: its answer is what is recorded, and the log
        // says nothing was sent.
        fake.set_contact("woW2", contact_answer("woW2", "", json!([])));
        post_ok(&api, &add("woW2", None, "WC-UNKNOWN")).await;
        settled(&api).await;
        let rows = welcomes_done(&api).await;
        assert_eq!(rows[1], ("woW2".to_string(), format!("WECOM_{CODE_INVALID}")));
        assert!(payloads(&events(&api).await, "woW2", "WelcomeMessageSent").is_empty());

        // Without a welcome set, a welcome code is left alone.
        set_welcome(&api, Value::Null).await;
        fake.set_contact("woW3", contact_answer("woW3", "", json!([])));
        fake.give_welcome_code("WC3");
        post_ok(&api, &add("woW3", None, "WC3")).await;
        settled(&api).await;
        assert_eq!(fake.calls(SEND_WELCOME), 2);
        assert_eq!(welcome_rows(&api).await.len(), 2);
    }
}

const CHANNEL_FIELDS: &str = "userErrors { code field message } \
    channelCode { id state name staffIds status qrCodeUrl error configId }";

async fn create_code(api: &TestApi, input: Value) -> Value {
    let body = mutate(api, &ops(), "createChannelCode", input, CHANNEL_FIELDS).await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["createChannelCode"].clone()
}

async fn channel_codes(api: &TestApi, include_disabled: bool) -> Vec<Value> {
    let body = api
        .gql(
            Some(&ops()),
            "query($all: Boolean!) { channelCodes(first: 10, includeDisabled: $all) { \
               nodes { state name status } } }",
            json!({ "all": include_disabled }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["channelCodes"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

on_both_backends! {
    async fn a_channel_code_is_made_in_wecom_attributes_its_adds_and_greets_with_its_own_welcome(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        set_welcome(&api, json!({ "text": "欢迎光临" })).await;

        let made = create_code(&api, json!({
            "name": "南京西路店门口", "state": "store-qr", "staffIds": ["zhangsan"],
            "welcome": { "text": "欢迎来到南京西路店，扫码有礼" },
        }))
        .await;
        assert_eq!(made["userErrors"], json!([]), "{made}");
        let code = &made["channelCode"];
        assert_eq!(code["status"], "ACTIVE", "{made}");
        let ways = fake.contact_ways();
        assert_eq!(ways.len(), 1);
        let (config_id, way) = ways.iter().next().unwrap();
        assert_eq!(code["configId"], json!(config_id));
        assert_eq!(code["qrCodeUrl"], way["qr_code"]);
        assert_eq!((way["state"].as_str(), way["type"].as_i64()), (Some("store-qr"), Some(1)));
        assert_eq!(way["user"], json!(["zhangsan"]));

        // A customer added through it: attributed to it, greeted with its welcome.
        fake.set_contact("woC1", contact_answer("woC1", "", json!([])));
        fake.give_welcome_code("WCC1");
        post_ok(&api, &add("woC1", Some("store-qr"), "WCC1")).await;
        settled(&api).await;
        welcomes_done(&api).await;
        let sent = fake.welcomes();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1["text"]["content"], "欢迎来到南京西路店，扫码有礼");
        let welcomed = payloads(&events(&api).await, "woC1", "WelcomeMessageSent")[0].clone();
        assert_eq!(welcomed["WelcomeMessageSent"]["channel"], "store-qr");
        api.settle().await;
        let portrait = api
            .gql(
                Some(&ops()),
                "query($id: ID!) { customer(id: $id) { channel channelName } }",
                json!({ "id": base64_url("Customer:woC1") }),
            )
            .await;
        assert_eq!(
            portrait["data"]["customer"],
            json!({ "channel": "store-qr", "channelName": "南京西路店门口" }),
            "{portrait}"
        );
        let analyst = token(T, Role::Analyst, None, &[]);
        let funnel = api
            .gql(
                Some(&analyst),
                "{ funnel(by: CHANNEL, first: 20) { nodes { key name friends } } }",
                json!({}),
            )
            .await;
        let lines = funnel["data"]["funnel"]["nodes"].as_array().unwrap().clone();
        assert!(
            lines.contains(&json!({ "key": "store-qr", "name": "南京西路店门口", "friends": 1 })),
            "{funnel}"
        );

        // Bad requests say what to correct and make nothing in WeCom.
        let long = create_code(&api, json!({ "name": "x", "state": "s".repeat(31), "staffIds": ["zhangsan"] })).await;
        assert_eq!(long["userErrors"][0]["code"], "INVALID_INPUT", "{long}");
        let taken = create_code(&api, json!({ "name": "again", "state": "store-qr", "staffIds": ["lisi"] })).await;
        assert_eq!(taken["userErrors"][0]["code"], "CONFLICT", "{taken}");
        let guide = token(T, Role::Guide, Some("zhangsan"), &[]);
        let forbidden = mutate(&api, &guide, "createChannelCode",
            json!({ "name": "mine", "staffIds": ["zhangsan"] }), CHANNEL_FIELDS).await;
        assert_eq!(error_code(&forbidden), Some("FORBIDDEN".into()), "{forbidden}");
        assert_eq!(fake.calls(ADD_CONTACT_WAY), 1);

        // WeCom refuses a code for a guide it has not verified: the code says why.
        fake.refuse_contact_ways_for("lisi");
        let refused = create_code(&api, json!({ "name": "李四的码", "staffIds": ["lisi"] })).await;
        assert_eq!(refused["channelCode"]["status"], "REFUSED", "{refused}");
        assert!(refused["channelCode"]["error"].as_str().unwrap().contains("40098"), "{refused}");

        // Disabled: deleted in WeCom, kept here, its customers still attributed.
        let disable = |id: Value| {
            let api = &api;
            async move {
                let body = mutate(api, &ops(), "disableChannelCode", json!({ "id": id }), CHANNEL_FIELDS).await;
                body["data"]["disableChannelCode"].clone()
            }
        };
        let disabled = disable(code["id"].clone()).await;
        assert_eq!(disabled["channelCode"]["status"], "DISABLED", "{disabled}");
        assert!(fake.contact_ways().is_empty());
        let listed: Vec<_> = channel_codes(&api, false).await.iter().map(|c| c["state"].clone()).collect();
        assert!(!listed.contains(&json!("store-qr")), "{listed:?}");
        assert_eq!(channel_codes(&api, true).await.len(), 2);
        let again = disable(code["id"].clone()).await;
        assert_eq!(again["userErrors"][0]["code"], "CONFLICT", "{again}");
        let portrait = api
            .gql(Some(&ops()), "query($id: ID!) { customer(id: $id) { channelName } }",
                json!({ "id": base64_url("Customer:woC1") }))
            .await;
        assert_eq!(portrait["data"]["customer"]["channelName"], "南京西路店门口");
    }
}

on_both_backends! {
    async fn a_channel_code_whose_answer_was_lost_is_found_in_wecom_not_made_twice(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        fake.lose_answers(1);
        let made = create_code(&api, json!({
            "name": "朋友圈海报", "state": "moments-poster", "staffIds": ["zhangsan", "lisi"],
        }))
        .await;
        assert_eq!(made["channelCode"]["status"], "CREATING", "{made}");
        assert_eq!(fake.contact_ways().len(), 1, "WeCom made it; its answer was lost");

        // The tick, once the call is due again, finds the code by its state.
        let later = api.clock.now() + chrono::Duration::minutes(10);
        let answered = wecom::outbound::send_due(&api.engine, &api.wecom, &OutboundSettings::default(), later)
            .await
            .unwrap();
        assert_eq!(answered, 1);
        assert_eq!(fake.calls(ADD_CONTACT_WAY), 1, "not made twice");
        let codes = channel_codes(&api, false).await;
        assert_eq!(codes, [json!({ "state": "moments-poster", "name": "朋友圈海报", "status": "ACTIVE" })]);
        let way = fake.contact_ways().into_values().next().unwrap();
        assert_eq!(way["type"], 2, "a code for two guides is a shared one");
    }
}
