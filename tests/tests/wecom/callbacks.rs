//! The WeCom callback endpoint over real HTTP: URL verification with the documented
//! vectors, encrypted notices (the vendored documentation payloads and our own, one per
//! event type) that land once in the inbox and once in the event log and the portrait,
//! and requests that must be refused without writing anything; notices the engine cannot
//! apply, and notices that fail, kept and retried without holding the others up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::SubsecRound;
use domain::customer::{CustomerCommand, HandoverKind};
use domain::group::GroupCommand;
use domain::stamp::{stream_id, Stamped, TAG_LIBRARY_LOCAL_ID};
use domain::tags::TagLibraryCommand;
use domain::values::{TagGroupId, TagId};
use engine::auth::Role;
use engine::commands::{Actor, CommandMeta};
use harness::fake_wecom::{self, FakeWecom};
use harness::ids::{staff, tenant};
use harness::live::{token, TestApi};
use harness::{on_both_backends, TestDb};
use projections::on_pool;
use serde_json::{json, Value};
use uuid::Uuid;
use wecom::{inbox, signature, CallbackKeys, Notice};

pub(crate) const T: &str = "wecom-co";
const TOKEN: &str = "QDG6eK";
const AES_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
pub(crate) const CORP: &str = "ww5823bf96d3bd56c7";
/// 2026-03-01T00:00:00Z.
pub(crate) const T0: i64 = 1_772_323_200;

fn keys() -> CallbackKeys {
    CallbackKeys::new(TOKEN, AES_KEY, CORP).unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/wecom")
}

fn api_payloads() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/wecom/tests/payloads")
}

async fn configured(db: &TestDb) -> TestApi {
    let api = TestApi::start(db).await;
    inbox::configure(&api.engine.db, &tenant(T), TOKEN, AES_KEY, CORP)
        .await
        .unwrap();
    api
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How a test POST is wrapped and signed.
#[derive(Clone, Copy, PartialEq)]
enum Body {
    Xml,
    Json,
}

struct Sent {
    status: u16,
    body: String,
}

/// POSTs `plaintext` to `tenant`'s endpoint, encrypted with `keys` and signed with
/// `sign_token` (a fresh random prefix and nonce each time, as a WeCom retry has).
async fn post_with(
    api: &TestApi,
    tenant: &str,
    keys: &CallbackKeys,
    sign_token: &str,
    plaintext: &[u8],
    shape: Body,
    mangle: impl FnOnce(String) -> String,
) -> Sent {
    let encrypted = mangle(keys.encrypt(plaintext, rand::random()));
    let timestamp = "1772323200";
    let nonce = Uuid::new_v4().simple().to_string();
    let sig = signature(sign_token, timestamp, &nonce, &encrypted);
    let body = match shape {
        Body::Xml => format!(
            "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName>\
             <Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[2000001]]></AgentID></xml>"
        ),
        Body::Json => {
            json!({ "tousername": CORP, "encrypt": encrypted, "agentid": "2000001" }).to_string()
        }
    };
    let response = api
        .http
        .post(format!(
            "{}/wecom/callback/{tenant}?msg_signature={sig}&timestamp={timestamp}&nonce={nonce}",
            api.base
        ))
        .body(body)
        .send()
        .await
        .unwrap();
    Sent {
        status: response.status().as_u16(),
        body: response.text().await.unwrap(),
    }
}

async fn post(api: &TestApi, plaintext: &str) -> Sent {
    post_with(
        api,
        T,
        &keys(),
        TOKEN,
        plaintext.as_bytes(),
        Body::Xml,
        |e| e,
    )
    .await
}

pub(crate) async fn post_ok(api: &TestApi, plaintext: &str) {
    let sent = post(api, plaintext).await;
    assert_eq!(
        (sent.status, sent.body.as_str()),
        (200, "success"),
        "{plaintext}"
    );
}

/// Waits for the processor the endpoint started to conclude every stored notice.
pub(crate) async fn settled(api: &TestApi) {
    let started = Instant::now();
    loop {
        let pending: i64 = on_pool!(&api.engine.db, |pool| {
            sqlx::query_scalar("SELECT count(*) FROM wecom_inbox WHERE status = 'pending'")
                .fetch_one(pool)
                .await
        })
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "notices still pending"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    api.settle().await;
}

/// Every notice back to pending and processed again, as after a crash before the rows
/// were concluded.
async fn process_again(api: &TestApi) {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query("UPDATE wecom_inbox SET status = 'pending'")
            .execute(pool)
            .await
            .map(|_| ())
    })
    .unwrap();
    wecom::process_pending(&api.engine, &api.wecom, api.clock.now())
        .await
        .unwrap();
}

async fn assert_all_processed(api: &TestApi) {
    let rows = inbox_rows(api).await;
    assert!(
        rows.values().all(|(_, status, _)| status == "processed"),
        "{rows:?}"
    );
}

/// `(kind, status, error)` per inbox row, keyed by dedup key.
pub(crate) async fn inbox_rows(
    api: &TestApi,
) -> BTreeMap<String, (String, String, Option<String>)> {
    let rows: Vec<(String, String, String, Option<String>)> = on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT dedup_key, kind, status, error FROM wecom_inbox WHERE tenant_id = $1",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap();
    rows.into_iter()
        .map(|(k, kind, status, error)| (k, (kind, status, error)))
        .collect()
}

/// `(stream, event type, payload)` in log order.
pub(crate) async fn events(api: &TestApi) -> Vec<(String, String, Value)> {
    let rows: Vec<(String, String, String)> = on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(
            "SELECT aggregate_id, event_type, CAST(payload AS TEXT) FROM events \
             WHERE tenant_id = $1 ORDER BY position",
        )
        .bind(T)
        .fetch_all(pool)
        .await
    })
    .unwrap();
    rows.into_iter()
        .map(|(s, t, p)| (s, t, serde_json::from_str(&p).unwrap()))
        .collect()
}

pub(crate) fn types_of(events: &[(String, String, Value)], local: &str) -> Vec<String> {
    let stream = format!("{T}:{local}");
    events
        .iter()
        .filter(|(s, _, _)| *s == stream)
        .map(|(_, t, _)| t.clone())
        .collect()
}

pub(crate) fn contact(change: &str, staff: &str, customer: &str, time: i64, extra: &str) -> String {
    format!(
        "<xml>\n\t<ToUserName><![CDATA[{CORP}]]></ToUserName>\n\
         \t<FromUserName><![CDATA[sys]]></FromUserName> \n\
         \t<CreateTime>{time}</CreateTime>\n\t<MsgType><![CDATA[event]]></MsgType>\n\
         \t<Event><![CDATA[change_external_contact]]></Event>\n\
         \t<ChangeType><![CDATA[{change}]]></ChangeType>\n\
         \t<UserID><![CDATA[{staff}]]></UserID>\n\
         \t<ExternalUserID><![CDATA[{customer}]]></ExternalUserID>\n{extra}</xml>"
    )
}

fn chat(change: &str, chat_id: &str, time: i64, extra: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>{time}</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[{chat_id}]]></ChatId>\
         <ChangeType><![CDATA[{change}]]></ChangeType>{extra}</xml>"
    )
}

pub(crate) fn tag(change: &str, id: &str, tag_type: &str, time: i64) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>{time}</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[change_external_tag]]></Event><Id><![CDATA[{id}]]></Id>\
         <TagType><![CDATA[{tag_type}]]></TagType><ChangeType><![CDATA[{change}]]></ChangeType></xml>"
    )
}

fn meta(key: &str) -> CommandMeta {
    CommandMeta::new(tenant(T), Actor::operator("test"), Uuid::new_v4()).with_idempotency_key(key)
}

async fn create_group(api: &TestApi, chat_id: &str, owner: &str) {
    api.engine
        .groups
        .execute(
            &stream_id(&tenant(T), chat_id),
            Stamped::new(
                chrono::DateTime::from_timestamp(T0 - 3600, 0).unwrap(),
                GroupCommand::Create {
                    owner: staff(owner),
                    name: "VIP".into(),
                    capacity: 500,
                },
            ),
            &meta(&format!("create-{chat_id}")),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_verification_answers_every_documented_vector() {
    let db = TestDb::postgres().await;
    let api = TestApi::start(&db).await;
    let vectors: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("crypto/vectors.json")).unwrap(),
    )
    .unwrap();
    let vectors = vectors["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 2);
    for v in vectors {
        let s = |k: &str| v[k].as_str().unwrap().to_string();
        inbox::configure(
            &api.engine.db,
            &tenant(T),
            &s("token"),
            &s("encoding_aes_key"),
            &s("receive_id"),
        )
        .await
        .unwrap();
        let echostr = v["echostr_url_encoded_in_source"]
            .as_str()
            .map_or_else(|| url_encode(&s("echostr")), str::to_string);
        let url = |sig: &str| {
            format!(
                "{}/wecom/callback/{T}?msg_signature={sig}&timestamp={}&nonce={}&echostr={echostr}",
                api.base,
                s("timestamp"),
                s("nonce")
            )
        };
        let response = api.http.get(url(&s("msg_signature"))).send().await.unwrap();
        assert_eq!(response.status(), 200, "{}", s("id"));
        assert_eq!(
            response.text().await.unwrap(),
            s("derived_plaintext"),
            "{}",
            s("id")
        );
        let forged = api
            .http
            .get(url("0000000000000000000000000000000000000000"))
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 401, "{}", s("id"));
    }
    let unknown = api
        .http
        .get(format!(
            "{}/wecom/callback/nobody?msg_signature=a&timestamp=1&nonce=2&echostr=x",
            api.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let no_echostr = api
        .http
        .get(format!(
            "{}/wecom/callback/{T}?msg_signature=a&timestamp=1&nonce=2",
            api.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(no_echostr.status(), 400);
}

/// Every vendored payload, in file order, on a tenant with one known group: each is
/// answered `success`, stored once per distinct notice, and concluded as expected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendored_payloads_are_acknowledged_stored_once_and_concluded() {
    let db = TestDb::postgres().await;
    let api = configured(&db).await;
    create_group(&api, "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ", "zhangsan").await;

    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [fixtures().join("callbacks"), api_payloads()] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        files.extend(names);
    }
    let mut keys_by_file = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        post_ok(&api, &text).await;
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        keys_by_file.insert(name, Notice::dedup_key(text.as_bytes()));
        // One at a time, so the outcome does not depend on when the processor runs.
        settled(&api).await;
    }
    let rows = inbox_rows(&api).await;
    let distinct: BTreeSet<&String> = keys_by_file.values().collect();
    assert_eq!(rows.len(), distinct.len());
    // The JSON renderings of two XML notices are the same notices.
    assert!(distinct.len() < files.len());

    let expected: &[(&str, &str, Option<&str>)] = &[
        ("change_external_chat.create.xml", "unhandled", None),
        (
            "change_external_chat.update.add_member.xml",
            "processed",
            None,
        ),
        (
            "change_external_contact.add_external_contact.xml",
            "processed",
            None,
        ),
        (
            "change_external_contact.add_half_external_contact.xml",
            "processed",
            None,
        ),
        (
            "change_external_contact.del_external_contact.xml",
            "processed",
            None,
        ),
        (
            "change_external_contact.del_follow_user.xml",
            "failed",
            Some("UNKNOWN_CUSTOMER"),
        ),
        (
            "change_external_contact.edit_external_contact.xml",
            "unhandled",
            None,
        ),
        ("change_external_tag.create.xml", "unhandled", None),
        ("change_contact.create_user.xml", "unhandled", None),
        (
            "change_external_chat.dismiss.xml",
            "failed",
            Some("UNKNOWN_GROUP"),
        ),
        (
            "change_external_chat.update.add_member.legacy.xml",
            "failed",
            Some("ALREADY_MEMBER"),
        ),
        (
            "change_external_chat.update.change_name.xml",
            "unhandled",
            None,
        ),
        (
            "change_external_chat.update.change_notice.xml",
            "unhandled",
            None,
        ),
        (
            "change_external_chat.update.change_owner.xml",
            "unhandled",
            None,
        ),
        (
            "change_external_chat.update.del_member.xml",
            "failed",
            Some("UNKNOWN_CUSTOMER"),
        ),
        (
            "change_external_contact.msg_audit_approved.xml",
            "unhandled",
            None,
        ),
        (
            "change_external_contact.transfer_fail.limit.xml",
            "failed",
            Some("NO_SUCH_HANDOVER"),
        ),
        (
            "change_external_contact.transfer_fail.xml",
            "failed",
            Some("NO_SUCH_HANDOVER"),
        ),
        (
            "change_external_tag.delete.xml",
            "failed",
            Some("UNKNOWN_TAG"),
        ),
        ("change_external_tag.shuffle.all.xml", "unhandled", None),
        ("change_external_tag.shuffle.xml", "unhandled", None),
        ("change_external_tag.update.xml", "unhandled", None),
        (
            "json.change_external_chat.update.del_member.json",
            "failed",
            Some("UNKNOWN_CUSTOMER"),
        ),
        (
            "json.third_party.change_external_tag.create.json",
            "unhandled",
            None,
        ),
        ("text_message.xml", "unhandled", None),
        (
            "third_party.change_external_chat.update.add_member.xml",
            "failed",
            Some("UNKNOWN_GROUP"),
        ),
        (
            "third_party.change_external_contact.add_external_contact.xml",
            "processed",
            None,
        ),
        (
            "third_party.change_external_tag.delete.xml",
            "failed",
            Some("UNKNOWN_TAG_GROUP"),
        ),
        ("third_party.suite_ticket.xml", "unhandled", None),
    ];
    for (file, status, code) in expected {
        let (kind, got, error) = &rows[&keys_by_file[*file]];
        assert_eq!(got, status, "{file} ({kind}): {error:?}");
        if let Some(code) = code {
            assert!(
                error.as_deref().unwrap_or_default().starts_with(code),
                "{file}: {error:?}"
            );
        }
        if *status == "unhandled" {
            assert!(error.is_some(), "{file}: an unhandled notice says why");
        }
    }
    // The redundant JSON renderings matched their XML twins.
    assert_eq!(
        keys_by_file["json.change_external_contact.del_follow_user.json"],
        keys_by_file["change_external_contact.del_follow_user.xml"]
    );

    let log = events(&api).await;
    assert_eq!(
        types_of(&log, "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"),
        ["FriendAdded", "FriendRemoved"]
    );
    // DELETE_BY_TRANSFER ends the relation as a transfer, not as churn.
    let removed = log
        .iter()
        .find(|(_, t, _)| t == "FriendRemoved")
        .map(|(_, _, p)| p.clone())
        .unwrap();
    assert_eq!(removed["FriendRemoved"]["by"], "Transfer", "{removed}");
    assert_eq!(
        types_of(&log, "wrx7HUARsKwGRaQBVKPBTcEyzdHA4HrQ"),
        ["GroupCreated", "MemberAdmitted", "MemberAdmitted"]
    );
    assert_eq!(
        types_of(&log, "woAJ2GCAAAXtWyujaWJHDDGi0mACH71w"),
        ["FriendAdded"]
    );
    // Every event the endpoint caused names the integration and the notice time.
    assert!(
        on_pool!(&api.engine.db, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM events WHERE tenant_id = $1 \
             AND CAST(metadata AS TEXT) LIKE '%integration:wecom%'",
            )
            .bind(T)
            .fetch_one(pool)
            .await
        })
        .unwrap()
            == 6
    );
}

/// One customer's life told by notices of every mapped type, checked in the log and in
/// the portrait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_life_in_notices_lands_in_the_log_and_the_portrait() {
    let db = TestDb::postgres().await;
    let api = configured(&db).await;
    let c = "woCUSTOMER0001";
    create_group(&api, "wrGROUP0001", "zhangsan").await;
    let library = stream_id(&tenant(T), TAG_LIBRARY_LOCAL_ID);
    let at = chrono::DateTime::from_timestamp(T0 - 3600, 0).unwrap();
    for (i, command) in [
        TagLibraryCommand::CreateGroup {
            group: TagGroupId::parse("etGROUP1").unwrap(),
            name: "Tier".into(),
        },
        TagLibraryCommand::CreateTag {
            tag: TagId::parse("etTAG1").unwrap(),
            group: TagGroupId::parse("etGROUP1").unwrap(),
            name: "Gold".into(),
        },
    ]
    .into_iter()
    .enumerate()
    {
        api.engine
            .tags
            .execute(
                &library,
                Stamped::new(at, command),
                &meta(&format!("tag-{i}")),
            )
            .await
            .unwrap();
    }

    post_ok(
        &api,
        &contact(
            "add_external_contact",
            "zhangsan",
            c,
            T0,
            "<State><![CDATA[store-qr]]></State><WelcomeCode><![CDATA[W1]]></WelcomeCode>",
        ),
    )
    .await;
    // A JSON-encrypted body carrying a JSON notice.
    let half = json!({
        "ToUserName": CORP, "FromUserName": "sys", "CreateTime": T0 + 1, "MsgType": "event",
        "Event": "change_external_contact", "ChangeType": "add_half_external_contact",
        "UserID": "lisi", "ExternalUserID": c,
    })
    .to_string();
    let sent = post_with(&api, T, &keys(), TOKEN, half.as_bytes(), Body::Json, |e| e).await;
    assert_eq!((sent.status, sent.body.as_str()), (200, "success"));
    post_ok(
        &api,
        &chat(
            "update",
            "wrGROUP0001",
            T0 + 2,
            &format!(
                "<UpdateDetail>add_member</UpdateDetail><JoinScene>3</JoinScene>\
                 <MemChangeCnt>2</MemChangeCnt><MemChangeList><Item>{c}</Item>\
                 <Item>wangwu</Item></MemChangeList>"
            ),
        ),
    )
    .await;
    post_ok(
        &api,
        &chat(
            "update",
            "wrGROUP0001",
            T0 + 3,
            &format!(
                "<UpdateDetail>del_member</UpdateDetail><QuitScene>0</QuitScene>\
                 <MemChangeCnt>1</MemChangeCnt><MemChangeList><Item>{c}</Item></MemChangeList>"
            ),
        ),
    )
    .await;
    post_ok(&api, &contact("del_follow_user", "lisi", c, T0 + 4, "")).await;
    settled(&api).await;

    // A handover the engine asked WeCom for; the successor's transfer fails...
    let customer_stream = stream_id(&tenant(T), c);
    let request = |n: u8| CustomerCommand::RequestHandover {
        handover: Uuid::from_u128(u128::from(n)),
        from: staff("zhangsan"),
        to: staff("zhaoliu"),
        kind: HandoverKind::OnJob,
        from_departed_at: None,
        successor_at_limit: false,
    };
    let at = |s: i64| chrono::DateTime::from_timestamp(T0 + s, 0).unwrap();
    api.engine
        .customers
        .execute(
            &customer_stream,
            Stamped::new(at(10), request(1)),
            &meta("h1"),
        )
        .await
        .unwrap();
    post_ok(
        &api,
        &contact(
            "transfer_fail",
            "zhaoliu",
            c,
            T0 + 20,
            "<FailReason><![CDATA[customer_refused]]></FailReason>",
        ),
    )
    .await;
    settled(&api).await;
    // ... and the second one completes: WeCom removes the relation by transfer.
    api.engine
        .customers
        .execute(
            &customer_stream,
            Stamped::new(at(30), request(2)),
            &meta("h2"),
        )
        .await
        .unwrap();
    post_ok(
        &api,
        &contact(
            "del_external_contact",
            "zhangsan",
            c,
            T0 + 40,
            "<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>",
        ),
    )
    .await;
    post_ok(&api, &tag("delete", "etTAG1", "tag", T0 + 50)).await;
    post_ok(&api, &tag("delete", "etGROUP1", "tag_group", T0 + 51)).await;
    post_ok(&api, &chat("dismiss", "wrGROUP0001", T0 + 60, "")).await;
    // The staff member deletes another customer: churn, not transfer.
    post_ok(
        &api,
        &contact("add_external_contact", "lisi", "woOTHER", T0 + 70, ""),
    )
    .await;
    post_ok(
        &api,
        &contact("del_external_contact", "lisi", "woOTHER", T0 + 71, ""),
    )
    .await;
    settled(&api).await;

    let rows = inbox_rows(&api).await;
    assert_eq!(rows.len(), 12);
    for (kind, status, error) in rows.values() {
        assert_eq!(status, "processed", "{kind}: {error:?}");
    }
    let log = events(&api).await;
    assert_eq!(
        types_of(&log, c),
        [
            "FriendAdded",
            "FriendAdded",
            "JoinedGroup",
            "LeftGroup",
            "FriendRemoved",
            "HandoverRequested",
            "HandoverRefused",
            "HandoverRequested",
            "HandoverAccepted",
            "FriendRemoved",
        ]
    );
    assert_eq!(
        types_of(&log, "wrGROUP0001"),
        [
            "GroupCreated",
            "MemberAdmitted",
            "MemberAdmitted",
            "MemberRemoved",
            "GroupDismissed"
        ]
    );
    assert_eq!(
        types_of(&log, TAG_LIBRARY_LOCAL_ID),
        [
            "TagGroupCreated",
            "TagCreated",
            "TagDeleted",
            "TagGroupDeleted"
        ]
    );
    assert_eq!(types_of(&log, "woOTHER"), ["FriendAdded", "FriendRemoved"]);
    let removals: Vec<(&str, &str)> = log
        .iter()
        .filter(|(_, t, _)| t == "FriendRemoved")
        .map(|(s, _, p)| {
            (
                s.as_str(),
                p["FriendRemoved"]["by"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let cs = customer_stream.as_str();
    let other = format!("{T}:woOTHER");
    assert_eq!(
        removals,
        [
            (cs, "Customer"),
            (cs, "Transfer"),
            (other.as_str(), "Staff")
        ]
    );
    // Commands are stamped with the notice's CreateTime, not the arrival time.
    let first = &log.iter().find(|(s, _, _)| s == cs).unwrap().2;
    assert_eq!(
        first["FriendAdded"]["at"], "2026-03-01T00:00:00Z",
        "{first}"
    );
    assert_eq!(first["FriendAdded"]["channel_state"], "store-qr");

    let id = base64_url(&format!("Customer:{c}"));
    let body = api
        .gql(
            Some(&token(T, Role::Operations, None, &[])),
            "query($id: ID!) { customer(id: $id) { externalUserId channel firstStaffId \
               staff(first: 10) { edges { node { staffId } } } } }",
            json!({ "id": id }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let portrait = &body["data"]["customer"];
    assert_eq!(portrait["externalUserId"], c, "{body}");
    assert_eq!(portrait["channel"], "store-qr", "{body}");
    assert_eq!(portrait["firstStaffId"], "zhangsan", "{body}");
    let staff_ids: Vec<&str> = portrait["staff"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["staffId"].as_str().unwrap())
        .collect();
    assert_eq!(staff_ids, ["zhaoliu"], "{body}");
}

pub(crate) fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_delivered_three_times_is_stored_and_applied_once() {
    let db = TestDb::postgres().await;
    let api = configured(&db).await;
    let notice = contact("add_external_contact", "zhangsan", "woDUP", T0, "");
    for _ in 0..3 {
        post_ok(&api, &notice).await;
    }
    settled(&api).await;
    // Redelivered after processing, too.
    post_ok(&api, &notice).await;
    settled(&api).await;
    let rows = inbox_rows(&api).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows.values().next().unwrap().1, "processed");
    assert_eq!(types_of(&events(&api).await, "woDUP"), ["FriendAdded"]);

    // Processing everything again (the periodic tick) appends nothing either.
    process_again(&api).await;
    assert_eq!(types_of(&events(&api).await, "woDUP"), ["FriendAdded"]);
    assert_eq!(
        inbox_rows(&api).await.values().next().unwrap().1,
        "processed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_notices_in_one_second_for_one_user_both_land() {
    let db = TestDb::postgres().await;
    let api = configured(&db).await;
    post_ok(
        &api,
        &contact("add_external_contact", "zhangsan", "woA", T0, ""),
    )
    .await;
    post_ok(
        &api,
        &contact("add_external_contact", "zhangsan", "woB", T0, ""),
    )
    .await;
    post_ok(
        &api,
        &contact("del_external_contact", "zhangsan", "woA", T0, ""),
    )
    .await;
    settled(&api).await;
    assert_eq!(inbox_rows(&api).await.len(), 3);
    let log = events(&api).await;
    assert_eq!(types_of(&log, "woA"), ["FriendAdded", "FriendRemoved"]);
    assert_eq!(types_of(&log, "woB"), ["FriendAdded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_foreign_and_broken_requests_are_refused_and_write_nothing() {
    let db = TestDb::postgres().await;
    let api = configured(&db).await;
    let notice = contact("add_external_contact", "zhangsan", "woFORGED", T0, "");
    let n = notice.as_bytes();

    let forged = post_with(&api, T, &keys(), "not-the-token", n, Body::Xml, |e| e).await;
    assert_eq!(forged.status, 401, "forged signature");

    let other_key =
        CallbackKeys::new(TOKEN, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", CORP).unwrap();
    let wrong_key = post_with(&api, T, &other_key, TOKEN, n, Body::Xml, |e| e).await;
    assert_eq!(wrong_key.status, 400, "wrong key");

    // Signed after truncation: the signature holds, the ciphertext does not.
    let truncated = post_with(&api, T, &keys(), TOKEN, n, Body::Xml, |e| {
        e[..e.len() - 8].to_string()
    })
    .await;
    assert_eq!(truncated.status, 400, "truncated ciphertext");

    let foreign = CallbackKeys::new(TOKEN, AES_KEY, "wwSOMEONEELSE").unwrap();
    let wrong_receiver = post_with(&api, T, &foreign, TOKEN, n, Body::Xml, |e| e).await;
    assert_eq!(wrong_receiver.status, 400, "wrong receive id");

    let unknown_tenant = post_with(&api, "nobody", &keys(), TOKEN, n, Body::Xml, |e| e).await;
    assert_eq!(unknown_tenant.status, 404);

    let garbage = post(&api, "this is not a notice").await;
    assert_eq!(garbage.status, 400, "authentic but unparsable plaintext");

    let base = format!("{}/wecom/callback/{T}", api.base);
    let no_query = api.http.post(&base).body("<xml/>").send().await.unwrap();
    assert_eq!(no_query.status(), 400);
    let malformed = api
        .http
        .post(format!("{base}?msg_signature=a&timestamp=1&nonce=2"))
        .body("<xml><Encrypt>")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let huge = api
        .http
        .post(format!("{base}?msg_signature=a&timestamp=1&nonce=2"))
        .body(vec![b'<'; server::callback::MAX_CALLBACK_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);

    for sent in [&forged, &wrong_key, &truncated, &wrong_receiver, &garbage] {
        assert_ne!(sent.body, "success");
    }
    settled(&api).await;
    assert!(inbox_rows(&api).await.is_empty());
    assert!(events(&api).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_event_type_is_acknowledged_and_kept_unhandled() {
    let db = TestDb::postgres().await;
    let api = configured(&db).await;
    let notice = format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName>sys</FromUserName>\
         <CreateTime>{T0}</CreateTime><MsgType>event</MsgType>\
         <Event><![CDATA[change_external_contact_v9]]></Event>\
         <ChangeType>teleport</ChangeType><UserID>zhangsan</UserID></xml>"
    );
    post_ok(&api, &notice).await;
    settled(&api).await;
    let rows = inbox_rows(&api).await;
    let (kind, status, error) = rows.values().next().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(kind, "change_external_contact_v9/teleport");
    assert_eq!(status, "unhandled");
    assert!(error.is_some());
    assert!(events(&api).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_verified_url_and_a_redelivered_notice_land_once() {
    let db = TestDb::sqlite().await;
    let api = configured(&db).await;
    let echostr = keys().encrypt(b"4242", [7; 16]);
    let sig = signature(TOKEN, "1", "n", &echostr);
    let response = api
        .http
        .get(format!(
            "{}/wecom/callback/{T}?msg_signature={sig}&timestamp=1&nonce=n&echostr={}",
            api.base,
            url_encode(&echostr)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "4242");

    let notice = contact("add_external_contact", "zhangsan", "woSQLITE", T0, "");
    for _ in 0..2 {
        post_ok(&api, &notice).await;
    }
    post_ok(
        &api,
        &contact("del_follow_user", "zhangsan", "woSQLITE", T0, ""),
    )
    .await;
    settled(&api).await;
    let rows = inbox_rows(&api).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.values().all(|(_, s, _)| s == "processed"), "{rows:?}");
    assert_eq!(
        types_of(&events(&api).await, "woSQLITE"),
        ["FriendAdded", "FriendRemoved"]
    );
}

// ------------------------------------------------------------------ API reads (thin notices)

/// A tenant whose callback has API credentials pointing at `fake`.
pub(crate) async fn configured_with_api(db: &TestDb, fake: &FakeWecom) -> TestApi {
    let api = TestApi::start(db).await;
    enable_api_reads(&api, fake).await;
    api
}

/// The tenant's callback with the corp id and the secret that lets the engine read
/// `fake`.
async fn enable_api_reads(api: &TestApi, fake: &FakeWecom) {
    fake.connect(&api.engine.db, &tenant(T), TOKEN, AES_KEY)
        .await;
}

/// The library Tier {Gold, Silver} and Style {Classic}, all at order 0, as the engine's
/// own commands made it.
pub(crate) async fn seed_library(api: &TestApi) {
    let library = stream_id(&tenant(T), TAG_LIBRARY_LOCAL_ID);
    let at = chrono::DateTime::from_timestamp(T0 - 3600, 0).unwrap();
    let g = |s: &str| TagGroupId::parse(s).unwrap();
    let t = |s: &str| TagId::parse(s).unwrap();
    let commands = [
        TagLibraryCommand::CreateGroup {
            group: g("egTIER"),
            name: "Tier".into(),
        },
        TagLibraryCommand::CreateTag {
            tag: t("etGOLD"),
            group: g("egTIER"),
            name: "Gold".into(),
        },
        TagLibraryCommand::CreateTag {
            tag: t("etSILVER"),
            group: g("egTIER"),
            name: "Silver".into(),
        },
        TagLibraryCommand::CreateGroup {
            group: g("egSTYLE"),
            name: "Style".into(),
        },
    ];
    for (i, command) in commands.into_iter().enumerate() {
        api.engine
            .tags
            .execute(
                &library,
                Stamped::new(at, command),
                &meta(&format!("lib-{i}")),
            )
            .await
            .unwrap();
    }
}

/// `woLI`, a friend of zhangsan (added by notice) whom zhangsan tagged Silver.
pub(crate) async fn seed_customer(api: &TestApi, customer: &str) {
    post_ok(
        api,
        &contact("add_external_contact", "zhangsan", customer, T0 - 60, ""),
    )
    .await;
    settled(api).await;
    api.engine
        .customers
        .execute(
            &stream_id(&tenant(T), customer),
            Stamped::new(
                chrono::DateTime::from_timestamp(T0 - 30, 0).unwrap(),
                CustomerCommand::Tag {
                    staff: staff("zhangsan"),
                    tag: TagId::parse("etSILVER").unwrap(),
                    tag_state: domain::customer::TagState::Active,
                },
            ),
            &meta(&format!("silver-{customer}")),
        )
        .await
        .unwrap();
}

pub(crate) fn contact_answer(customer: &str, remark: &str, tags: Value) -> Value {
    json!({
        "external_contact": {"external_userid": customer, "name": "Li Si", "type": 1},
        "follow_user": [{"userid": "zhangsan", "remark": remark,
            "description": "buys gold for her mother", "createtime": T0 - 60,
            "tags": tags, "add_way": 1, "state": "store-qr"}]
    })
}

pub(crate) async fn portrait(api: &TestApi, customer: &str) -> Value {
    let body = api
        .gql(
            Some(&token(T, Role::Operations, None, &[])),
            "query($id: ID!) { customer(id: $id) { \
               staff(first: 10) { nodes { staffId remark description } } \
               tags(first: 10) { nodes { tagId name groupName staffId } } \
               groups(first: 10) { nodes { groupId name ownerStaffId notice } } } }",
            json!({ "id": base64_url(&format!("Customer:{customer}")) }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["customer"].clone()
}

pub(crate) async fn tag_groups(api: &TestApi) -> Value {
    let body = api
        .gql(
            Some(&token(T, Role::Operations, None, &[])),
            "{ tagGroups(first: 10) { nodes { groupId name order \
               tags(first: 10) { nodes { tagId name order } } } } }",
            json!({}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["tagGroups"]["nodes"].clone()
}

/// The only inbox row: `(status, error)`.
async fn only_row(api: &TestApi, kind: &str) -> (String, Option<String>) {
    let rows = inbox_rows(api).await;
    let matching: Vec<_> = rows.values().filter(|(k, _, _)| k == kind).collect();
    assert_eq!(matching.len(), 1, "{rows:?}");
    (matching[0].1.clone(), matching[0].2.clone())
}

on_both_backends! {
    /// edit_external_contact: WeCom's remark, description and enterprise tags of the
    /// relation become the engine's, on the log and on the portrait.
    async fn an_edited_contact_takes_wecoms_remark_and_tags(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        seed_library(&api).await;
        seed_customer(&api, "woLI").await;
        fake.set_contact(
            "woLI",
            contact_answer(
                "woLI",
                "Ms Li (VIP)",
                json!([
                    {"group_name": "Tier", "tag_name": "Gold", "tag_id": "etGOLD", "type": 1},
                    {"group_name": "", "tag_name": "likes jade", "type": 2}
                ]),
            ),
        );
        post_ok(
            &api,
            &contact("edit_external_contact", "zhangsan", "woLI", T0, ""),
        )
        .await;
        settled(&api).await;

        let row = only_row(&api, "change_external_contact/edit_external_contact").await;
        assert_eq!(row, ("processed".into(), None));
        let log = events(&api).await;
        assert_eq!(
            types_of(&log, "woLI"),
            ["FriendAdded", "Tagged", "RemarkChanged", "Tagged", "Untagged"]
        );
        let (stream, _, remark) = log.iter().find(|(_, t, _)| t == "RemarkChanged").unwrap();
        // Sealed in the log with the customer's key (docs/adr/0024-crypto-shredding.md).
        let sealed = remark["RemarkChanged"]["remark"].as_str().unwrap();
        assert!(projections::pii::is_sealed(sealed), "{remark}");
        let keys = projections::pii::keys::fetch(&api.engine.db, std::slice::from_ref(stream))
            .await
            .unwrap();
        let key = keys.key(stream).unwrap();
        assert_eq!(key.open(stream, sealed).as_deref(), Some("Ms Li (VIP)"));
        assert_eq!(remark["RemarkChanged"]["at"], "2026-03-01T00:00:00Z");

        let p = portrait(&api, "woLI").await;
        assert_eq!(
            p["staff"]["nodes"],
            json!([{"staffId": "zhangsan", "remark": "Ms Li (VIP)",
                    "description": "buys gold for her mother"}])
        );
        assert_eq!(
            p["tags"]["nodes"],
            json!([{"tagId": "etGOLD", "name": "Gold", "groupName": "Tier",
                    "staffId": "zhangsan"}])
        );
        // One read for the add (its way), one for the edit.
        assert_eq!(fake.calls(fake_wecom::CONTACT), 2);
    }
}

on_both_backends! {
    /// change_external_chat/create: the group is registered with WeCom's owner, name,
    /// notice and members; the customer's portrait lists it.
    async fn a_created_group_is_registered_from_wecom(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = configured_with_api(&db, &fake).await;
        post_ok(
            &api,
            &contact("add_external_contact", "zhangsan", "woCUST", T0 - 60, ""),
        )
        .await;
        fake.set_chat(json!({
            "chat_id": "wrNEW", "name": "Gold club", "owner": "zhangsan",
            "create_time": T0, "notice": "Welcome",
            "member_list": [
                {"userid": "zhangsan", "type": 1, "join_time": T0, "join_scene": 1},
                {"userid": "lisi", "type": 1, "join_time": T0, "join_scene": 1},
                {"userid": "woCUST", "type": 2, "join_time": T0, "join_scene": 3}
            ],
            "admin_list": []
        }));
        post_ok(&api, &chat("create", "wrNEW", T0, "")).await;
        settled(&api).await;

        assert_eq!(
            only_row(&api, "change_external_chat/create").await,
            ("processed".into(), None)
        );
        let log = events(&api).await;
        assert_eq!(
            types_of(&log, "wrNEW"),
            ["GroupCreated", "NoticeChanged", "MemberAdmitted", "MemberAdmitted"]
        );
        let created = &log.iter().find(|(_, t, _)| t == "GroupCreated").unwrap().2;
        assert_eq!(created["GroupCreated"]["owner"], "zhangsan", "{created}");
        assert_eq!(created["GroupCreated"]["name"], "Gold club");
        assert_eq!(types_of(&log, "woCUST"), ["FriendAdded", "JoinedGroup"]);
        assert_eq!(
            portrait(&api, "woCUST").await["groups"]["nodes"],
            json!([{"groupId": "wrNEW", "name": "Gold club", "ownerStaffId": "zhangsan",
                    "notice": "Welcome"}])
        );
    }
}

/// A group the engine knows (owner zhangsan, name VIP) with the customer woCUST in it.
async fn known_group(api: &TestApi, fake: &FakeWecom) {
    post_ok(
        api,
        &contact("add_external_contact", "zhangsan", "woCUST", T0 - 60, ""),
    )
    .await;
    create_group(api, "wrKNOWN", "zhangsan").await;
    post_ok(
        api,
        &chat(
            "update",
            "wrKNOWN",
            T0 - 50,
            "<UpdateDetail>add_member</UpdateDetail><JoinScene>3</JoinScene>\
             <MemChangeCnt>2</MemChangeCnt><MemChangeList><Item>woCUST</Item>\
             <Item>lisi</Item></MemChangeList>",
        ),
    )
    .await;
    settled(api).await;
    fake.set_chat(json!({
        "chat_id": "wrKNOWN", "name": "VIP", "owner": "zhangsan", "notice": "",
        "member_list": [
            {"userid": "zhangsan", "type": 1, "join_scene": 1},
            {"userid": "lisi", "type": 1, "join_scene": 3},
            {"userid": "woCUST", "type": 2, "join_scene": 3}
        ]
    }));
}

fn update_chat(fake: &FakeWecom, change: impl FnOnce(&mut Value)) {
    let mut chat = json!({
        "chat_id": "wrKNOWN", "name": "VIP", "owner": "zhangsan", "notice": "",
        "member_list": [
            {"userid": "zhangsan", "type": 1, "join_scene": 1},
            {"userid": "lisi", "type": 1, "join_scene": 3},
            {"userid": "woCUST", "type": 2, "join_scene": 3}
        ]
    });
    change(&mut chat);
    fake.set_chat(chat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_owner_change_transfers_the_group_as_wecom_did() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    known_group(&api, &fake).await;
    // zhangsan handed the group to lisi and left it.
    update_chat(&fake, |c| {
        c["owner"] = json!("lisi");
        c["member_list"].as_array_mut().unwrap().remove(0);
    });
    post_ok(
        &api,
        &chat(
            "update",
            "wrKNOWN",
            T0,
            "<UpdateDetail>change_owner</UpdateDetail>",
        ),
    )
    .await;
    settled(&api).await;
    assert_eq!(
        only_row(&api, "change_external_chat/update/change_owner").await,
        ("processed".into(), None)
    );
    let log = events(&api).await;
    let transferred = log
        .iter()
        .find(|(_, t, _)| t == "OwnershipTransferred")
        .map(|(_, _, p)| p["OwnershipTransferred"].clone())
        .unwrap();
    assert_eq!(transferred["from"], "zhangsan");
    assert_eq!(transferred["to"], "lisi");
    assert_eq!(transferred["previous_owner_left"], true);
    assert_eq!(
        portrait(&api, "woCUST").await["groups"]["nodes"][0]["ownerStaffId"],
        "lisi"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_name_change_renames_the_group() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    known_group(&api, &fake).await;
    update_chat(&fake, |c| c["name"] = json!("Platinum club"));
    post_ok(
        &api,
        &chat(
            "update",
            "wrKNOWN",
            T0,
            "<UpdateDetail>change_name</UpdateDetail>",
        ),
    )
    .await;
    settled(&api).await;
    assert_eq!(
        only_row(&api, "change_external_chat/update/change_name").await,
        ("processed".into(), None)
    );
    assert_eq!(
        types_of(&events(&api).await, "wrKNOWN").last().unwrap(),
        "GroupRenamed"
    );
    assert_eq!(
        portrait(&api, "woCUST").await["groups"]["nodes"][0]["name"],
        "Platinum club"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_notice_change_shows_the_new_notice() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    known_group(&api, &fake).await;
    update_chat(&fake, |c| c["notice"] = json!("Gold 10% off on Sunday"));
    post_ok(
        &api,
        &chat(
            "update",
            "wrKNOWN",
            T0,
            "<UpdateDetail>change_notice</UpdateDetail>",
        ),
    )
    .await;
    settled(&api).await;
    assert_eq!(
        only_row(&api, "change_external_chat/update/change_notice").await,
        ("processed".into(), None)
    );
    let log = events(&api).await;
    let changed = log
        .iter()
        .find(|(_, t, _)| t == "NoticeChanged")
        .map(|(_, _, p)| p["NoticeChanged"]["notice"].clone())
        .unwrap();
    assert_eq!(changed, "Gold 10% off on Sunday");
    assert_eq!(
        portrait(&api, "woCUST").await["groups"]["nodes"][0]["notice"],
        "Gold 10% off on Sunday"
    );
}

pub(crate) fn wecom_library(gold: &str, tier: &str, orders: (i64, i64, i64)) -> Value {
    json!([
        {"group_id": "egTIER", "group_name": tier, "create_time": T0, "order": orders.0,
         "deleted": false, "tag": [
            {"id": "etGOLD", "name": gold, "create_time": T0, "order": orders.1, "deleted": false},
            {"id": "etSILVER", "name": "Silver", "create_time": T0, "order": orders.2,
             "deleted": false}]},
        {"group_id": "egSTYLE", "group_name": "Style", "create_time": T0, "order": 0,
         "deleted": false, "tag": []}
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_tag_enters_the_library_with_its_group_and_order() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    fake.set_tags(wecom_library("Gold", "Tier", (3, 2, 1)));
    post_ok(&api, &tag("create", "etGOLD", "tag", T0)).await;
    settled(&api).await;
    assert_eq!(
        only_row(&api, "change_external_tag/create").await,
        ("processed".into(), None)
    );
    // Asked for etGOLD: its group and it, not Silver.
    assert_eq!(
        types_of(&events(&api).await, TAG_LIBRARY_LOCAL_ID),
        [
            "TagGroupCreated",
            "TagCreated",
            "TagsOrdered",
            "TagGroupsOrdered"
        ]
    );
    assert_eq!(
        tag_groups(&api).await,
        json!([{"groupId": "egTIER", "name": "Tier", "order": 3,
                "tags": {"nodes": [{"tagId": "etGOLD", "name": "Gold", "order": 2}]}}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_updated_tag_or_group_is_renamed_everywhere() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    seed_library(&api).await;
    seed_customer(&api, "woLI").await;
    fake.set_tags(wecom_library("Gold+", "Level", (0, 0, 0)));
    post_ok(&api, &tag("update", "etGOLD", "tag", T0)).await;
    post_ok(&api, &tag("update", "egTIER", "tag_group", T0 + 1)).await;
    settled(&api).await;
    let rows = inbox_rows(&api).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.values().all(|(_, s, _)| s == "processed"), "{rows:?}");
    let log = events(&api).await;
    let library = types_of(&log, TAG_LIBRARY_LOCAL_ID);
    // The tag's read came with its group, already renamed: both follow at once, and the
    // group's own notice finds nothing left to change.
    assert_eq!(library[4..], ["TagGroupRenamed", "TagRenamed"]);
    // The customer's Silver tag shows the renamed group.
    assert_eq!(
        portrait(&api, "woLI").await["tags"]["nodes"],
        json!([{"tagId": "etSILVER", "name": "Silver", "groupName": "Level",
                "staffId": "zhangsan"}])
    );
    let groups = tag_groups(&api).await;
    let tier = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["groupId"] == "egTIER")
        .unwrap();
    assert_eq!(tier["name"], "Level");
    assert_eq!(tier["tags"]["nodes"][0]["name"], "Gold+");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shuffle_records_wecoms_order_of_tags_and_groups() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    seed_library(&api).await;
    fake.set_tags(wecom_library("Gold", "Tier", (7, 1, 5)));
    // The tags of one group, then (empty Id) the groups themselves.
    post_ok(&api, &tag("shuffle", "egTIER", "tag_group", T0)).await;
    settled(&api).await;
    let library = || async { types_of(&events(&api).await, TAG_LIBRARY_LOCAL_ID) };
    assert_eq!(library().await[4..], ["TagsOrdered", "TagGroupsOrdered"]);
    fake.set_tags(wecom_library("Gold", "Tier", (7, 1, 5)));
    let mut all = wecom_library("Gold", "Tier", (7, 1, 5));
    all[1]["order"] = json!(9);
    fake.set_tags(all);
    post_ok(&api, &tag("shuffle", "", "tag_group", T0 + 1)).await;
    settled(&api).await;
    assert_eq!(
        library().await[4..],
        ["TagsOrdered", "TagGroupsOrdered", "TagGroupsOrdered"]
    );
    let rows = inbox_rows(&api).await;
    assert!(rows.values().all(|(_, s, _)| s == "processed"), "{rows:?}");
    assert_eq!(
        tag_groups(&api).await,
        json!([
            {"groupId": "egSTYLE", "name": "Style", "order": 9, "tags": {"nodes": []}},
            {"groupId": "egTIER", "name": "Tier", "order": 7, "tags": {"nodes": [
                {"tagId": "etGOLD", "name": "Gold", "order": 1},
                {"tagId": "etSILVER", "name": "Silver", "order": 5}]}}
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_fetched_once_and_again_when_wecom_expires_it() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    seed_library(&api).await;
    fake.set_tags(wecom_library("Gold", "Tier", (0, 0, 0)));
    post_ok(&api, &tag("update", "etGOLD", "tag", T0)).await;
    post_ok(&api, &tag("update", "etSILVER", "tag", T0 + 1)).await;
    settled(&api).await;
    assert_eq!(fake.calls(fake_wecom::TAG_LIST), 2);
    assert_eq!(fake.calls(fake_wecom::GETTOKEN), 1, "the token is reused");

    fake.expire_token();
    post_ok(&api, &tag("update", "egTIER", "tag_group", T0 + 2)).await;
    settled(&api).await;
    // 42001, a new token, the same call again.
    assert_eq!(fake.calls(fake_wecom::TAG_LIST), 4);
    assert_eq!(fake.calls(fake_wecom::GETTOKEN), 2);
    let rows = inbox_rows(&api).await;
    assert!(rows.values().all(|(_, s, _)| s == "processed"), "{rows:?}");
}

/// `(status, attempts, error, next_attempt_at)` of an inbox row.
type Row = (
    String,
    i64,
    Option<String>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// The only row of `tenant_id` whose `column` (`kind`, `dedup_key`) is `value`.
async fn row_by(api: &TestApi, tenant_id: &str, column: &str, value: &str) -> Row {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_as(&format!(
            "SELECT status, CAST(attempts AS BIGINT), error, next_attempt_at FROM wecom_inbox \
             WHERE tenant_id = $1 AND {column} = $2"
        ))
        .bind(tenant_id)
        .bind(value)
        .fetch_one(pool)
        .await
    })
    .unwrap()
}

/// `(status, attempts, error)` of the only row of `kind`.
async fn attempts_of(api: &TestApi, kind: &str) -> (String, i64, Option<String>) {
    let (status, attempts, error, _) = row_by(api, T, "kind", kind).await;
    (status, attempts, error)
}

/// Waits for the endpoint's processor to try the notice once.
async fn tried(api: &TestApi, kind: &str) -> (String, i64, Option<String>) {
    let started = Instant::now();
    loop {
        let row = attempts_of(api, kind).await;
        if row.1 > 0 || row.0 != "pending" {
            return row;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_leaves_the_notice_pending_until_a_later_tick_applies_it_once() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    seed_library(&api).await;
    seed_customer(&api, "woLI").await;
    fake.set_contact("woLI", contact_answer("woLI", "VIP", json!([])));
    fake.fail(Some(fake_wecom::Failure::Status500));
    let kind = "change_external_contact/edit_external_contact";
    post_ok(
        &api,
        &contact("edit_external_contact", "zhangsan", "woLI", T0, ""),
    )
    .await;
    let (status, attempts, error) = tried(&api, kind).await;
    assert_eq!((status.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().contains("HTTP 500"));
    let before = types_of(&events(&api).await, "woLI");

    // A tick before the retry time does not call WeCom again (the add read once, the
    // edit once).
    let now = api.clock.now();
    wecom::process_pending(&api.engine, &api.wecom, now)
        .await
        .unwrap();
    assert_eq!(fake.calls(fake_wecom::CONTACT), 2);
    // WeCom errcodes count as failures too.
    fake.fail(Some(fake_wecom::Failure::Errcode(-1)));
    let later = now + chrono::Duration::minutes(1);
    let done = wecom::process_pending(&api.engine, &api.wecom, later)
        .await
        .unwrap();
    assert_eq!(done.deferred, 1);
    let (status, attempts, error) = attempts_of(&api, kind).await;
    assert_eq!((status.as_str(), attempts), ("pending", 2));
    assert!(error.unwrap().contains("-1"));

    // WeCom is back: the next due tick applies it, once.
    fake.fail(None);
    let done = wecom::process_pending(&api.engine, &api.wecom, later + chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(done.processed, 1);
    wecom::process_pending(&api.engine, &api.wecom, later + chrono::Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(attempts_of(&api, kind).await.0, "processed");
    let after = types_of(&events(&api).await, "woLI");
    assert_eq!(after[before.len()..], ["RemarkChanged", "Untagged"]);
    assert_eq!(fake.calls(fake_wecom::CONTACT), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_whose_api_reads_keep_failing_is_marked_failed_with_the_reason() {
    let db = TestDb::sqlite().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    fake.fail(Some(fake_wecom::Failure::Errcode(45009)));
    let kind = "change_external_chat/update/change_name";
    post_ok(
        &api,
        &chat(
            "update",
            "wrGONE",
            T0,
            "<UpdateDetail>change_name</UpdateDetail>",
        ),
    )
    .await;
    tried(&api, kind).await;
    let mut now = api.clock.now();
    for _ in 0..10 {
        now += chrono::Duration::hours(1);
        wecom::process_pending(&api.engine, &api.wecom, now)
            .await
            .unwrap();
    }
    let (status, attempts, error) = attempts_of(&api, kind).await;
    assert_eq!((status.as_str(), attempts), ("failed", 4));
    let error = error.unwrap();
    assert!(
        error.starts_with("WECOM_API") && error.contains("45009") && error.contains("5 attempts"),
        "{error}"
    );
    assert_eq!(
        fake.calls(fake_wecom::GROUP_CHAT) as i64,
        wecom::process::MAX_ATTEMPTS
    );
    assert!(events(&api).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_thin_notice_reads_the_api_once_and_appends_once() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    known_group(&api, &fake).await;
    update_chat(&fake, |c| c["name"] = json!("Platinum club"));
    let notice = chat(
        "update",
        "wrKNOWN",
        T0,
        "<UpdateDetail>change_name</UpdateDetail>",
    );
    for _ in 0..3 {
        post_ok(&api, &notice).await;
    }
    settled(&api).await;
    post_ok(&api, &notice).await;
    settled(&api).await;
    assert_eq!(fake.calls(fake_wecom::GROUP_CHAT), 1);
    let renames = |log: &[(String, String, Value)]| {
        log.iter().filter(|(_, t, _)| t == "GroupRenamed").count()
    };
    assert_eq!(renames(&events(&api).await), 1);

    // Processed again (a crash before the row was concluded): the kept read is used,
    // WeCom is not asked again and nothing is appended.
    update_chat(&fake, |c| c["name"] = json!("Changed again"));
    process_again(&api).await;
    assert_eq!(fake.calls(fake_wecom::GROUP_CHAT), 1);
    assert_eq!(renames(&events(&api).await), 1);
    assert_eq!(
        only_row(&api, "change_external_chat/update/change_name").await,
        ("processed".into(), None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_for_another_corp_is_refused_and_writes_nothing() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    let foreign =
        contact("add_external_contact", "zhangsan", "woX", T0, "").replace(CORP, "wwSOMEOTHERCORP");
    let sent = post(&api, &foreign).await;
    assert_eq!(sent.status, 400);
    let third_party = format!(
        "<xml><SuiteId>suite1</SuiteId><AuthCorpId>wwSOMEOTHERCORP</AuthCorpId>\
         <InfoType>change_external_contact</InfoType><TimeStamp>{T0}</TimeStamp>\
         <ChangeType>add_external_contact</ChangeType><UserID>zhangsan</UserID>\
         <ExternalUserID>woX</ExternalUserID></xml>"
    );
    assert_eq!(post(&api, &third_party).await.status, 400);
    // The tenant's own corp is accepted, in either envelope.
    post_ok(&api, &third_party.replace("wwSOMEOTHERCORP", CORP)).await;
    settled(&api).await;
    let rows = inbox_rows(&api).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(types_of(&events(&api).await, "woX"), ["FriendAdded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_api_credentials_a_thin_notice_stays_unhandled_and_says_why() {
    let db = TestDb::postgres().await;
    let api = configured(&db).await;
    post_ok(
        &api,
        &contact("edit_external_contact", "zhangsan", "woLI", T0, ""),
    )
    .await;
    settled(&api).await;
    let (status, error) = only_row(&api, "change_external_contact/edit_external_contact").await;
    assert_eq!(status, "unhandled");
    assert!(error.unwrap().contains("API credentials"));
}

/// The add notice has no add_way: the engine reads it from externalcontact/get, and a
/// WeCom that does not answer never holds a friend-add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_friend_add_takes_its_way_from_wecom_and_never_waits_for_it() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    let added = |log: &[(String, String, Value)], customer: &str| {
        log.iter()
            .find(|(id, t, _)| id.ends_with(customer) && t == "FriendAdded")
            .map(|(_, _, p)| p["FriendAdded"].clone())
            .unwrap_or_else(|| panic!("{customer} added: {log:?}"))
    };

    // WeCom answers: a QR-code add through the store's code.
    fake.set_contact("woLI", contact_answer("woLI", "", json!([])));
    post_ok(
        &api,
        &contact("add_external_contact", "zhangsan", "woLI", T0, ""),
    )
    .await;
    settled(&api).await;
    // WeCom is down: the add lands at once, its way unknown, and is not retried.
    fake.fail(Some(fake_wecom::Failure::Status500));
    post_ok(
        &api,
        &contact("add_external_contact", "zhangsan", "woWANG", T0 + 1, ""),
    )
    .await;
    settled(&api).await;
    assert_all_processed(&api).await;
    let log = events(&api).await;
    let li = added(&log, "woLI");
    assert_eq!(
        (li["add_way"].clone(), li["channel_state"].clone()),
        (json!(1), json!("store-qr"))
    );
    let wang = added(&log, "woWANG");
    assert_eq!(
        (wang["add_way"].clone(), wang["channel_state"].clone()),
        (json!(0), Value::Null)
    );

    // Processed again (WeCom back, answering differently), each add repeats its first
    // decision: nothing new is appended and WeCom is not asked again.
    fake.fail(None);
    fake.set_contact("woWANG", contact_answer("woWANG", "", json!([])));
    let calls = fake.calls(fake_wecom::CONTACT);
    // (The server's own tick may take them first: either way they end processed.)
    process_again(&api).await;
    settled(&api).await;
    assert_all_processed(&api).await;
    assert_eq!(events(&api).await.len(), log.len());
    assert_eq!(fake.calls(fake_wecom::CONTACT), calls);
}

/// WeCom may list fewer members than `MemChangeCnt` says changed: the engine then takes
/// the whole member list from `groupchat/get`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_change_cut_short_is_made_whole_from_wecoms_member_list() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured_with_api(&db, &fake).await;
    known_group(&api, &fake).await;
    for (i, customer) in ["woNEW1", "woNEW2"].into_iter().enumerate() {
        post_ok(
            &api,
            &contact(
                "add_external_contact",
                "zhangsan",
                customer,
                T0 - 40 + i as i64,
                "",
            ),
        )
        .await;
    }
    settled(&api).await;
    // Two joined and lisi left; the notice names one newcomer.
    update_chat(&fake, |c| {
        c["member_list"] = json!([
            {"userid": "zhangsan", "type": 1, "join_scene": 1},
            {"userid": "woCUST", "type": 2, "join_scene": 3},
            {"userid": "woNEW1", "type": 2, "join_scene": 3},
            {"userid": "woNEW2", "type": 2, "join_scene": 3}
        ])
    });
    post_ok(
        &api,
        &chat(
            "update",
            "wrKNOWN",
            T0,
            "<UpdateDetail>add_member</UpdateDetail><JoinScene>3</JoinScene>\
             <MemChangeCnt>2</MemChangeCnt><MemChangeList><Item>woNEW1</Item></MemChangeList>",
        ),
    )
    .await;
    settled(&api).await;

    assert_all_processed(&api).await;
    let log = events(&api).await;
    for customer in ["woNEW1", "woNEW2"] {
        assert_eq!(types_of(&log, customer).last().unwrap(), "JoinedGroup");
        assert_eq!(
            portrait(&api, customer).await["groups"]["nodes"][0]["groupId"],
            "wrKNOWN"
        );
    }
    assert_eq!(types_of(&log, "wrKNOWN").last().unwrap(), "MemberRemoved");
    assert_eq!(fake.calls(fake_wecom::GROUP_CHAT), 1);
}

/// Operations see which notices the engine could not apply and why, page by page, and
/// queue them again once the cause is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_list_unapplied_notices_and_queue_them_again() {
    let db = TestDb::postgres().await;
    let fake = FakeWecom::start(CORP).await;
    let api = configured(&db).await;
    seed_library(&api).await;
    seed_customer(&api, "woLI").await;
    fake.set_contact("woLI", contact_answer("woLI", "VIP", json!([])));
    api.clock.advance(chrono::Duration::seconds(1));
    post_ok(
        &api,
        &contact("edit_external_contact", "zhangsan", "woLI", T0, ""),
    )
    .await;
    settled(&api).await;

    const NOTICES: &str = "query($status: WecomNoticeStatus, $after: String) { \
        wecomNotices(first: 1, status: $status, after: $after) { \
          pageInfo { hasNextPage endCursor } edges { node { kind status error attempts } } } }";
    let list = |who: String, vars: Value| {
        let api = &api;
        async move {
            let body = api.gql(Some(&who), NOTICES, vars).await;
            (body["data"]["wecomNotices"].clone(), body["errors"].clone())
        }
    };
    let ops = token(T, Role::Operations, None, &[]);
    let (unhandled, errors) = list(ops.clone(), json!({ "status": "UNHANDLED" })).await;
    assert!(errors.is_null(), "{errors}");
    let node = &unhandled["edges"][0]["node"];
    assert_eq!(
        node["kind"],
        "change_external_contact/edit_external_contact"
    );
    assert!(node["error"].as_str().unwrap().contains("API credentials"));
    assert_eq!(unhandled["pageInfo"]["hasNextPage"], false);
    // All of them, newest first, a page at a time.
    let (first, _) = list(ops.clone(), json!({})).await;
    assert_eq!(first["edges"][0]["node"]["status"], "UNHANDLED");
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let (second, _) = list(
        ops.clone(),
        json!({ "after": first["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(
        second["edges"][0]["node"]["kind"],
        "change_external_contact/add_external_contact"
    );
    assert_eq!(second["edges"][0]["node"]["status"], "PROCESSED");
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    // Guides may not look; another tenant's operations see none of it.
    let (_, errors) = list(token(T, Role::Guide, Some("zhangsan"), &[]), json!({})).await;
    assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{errors}");
    let (elsewhere, errors) = list(token("globex", Role::Operations, None, &[]), json!({})).await;
    assert!(errors.is_null(), "{errors}");
    assert_eq!(elsewhere["edges"], json!([]));

    // The operator configures API reads and queues the unhandled notices again.
    enable_api_reads(&api, &fake).await;
    assert_eq!(
        inbox::retry(&api.engine.db, &tenant(T), inbox::Status::Unhandled)
            .await
            .unwrap(),
        1
    );
    // The server's next tick.
    wecom::process_pending(&api.engine, &api.wecom, api.clock.now())
        .await
        .unwrap();
    assert_eq!(
        only_row(&api, "change_external_contact/edit_external_contact").await,
        ("processed".into(), None)
    );
    // WeCom's remark, and no tags (Silver goes).
    assert_eq!(
        types_of(&events(&api).await, "woLI")[2..],
        ["RemarkChanged", "Untagged"]
    );
    assert!(
        inbox::retry(&api.engine.db, &tenant(T), inbox::Status::Processed)
            .await
            .is_err()
    );
}

on_both_backends! {
    /// The console's retry: operations queue chosen unhandled notices again, each key
    /// answered for itself. The notice is then applied with what WeCom answers; a
    /// processed one is refused (never applied twice), as are unknown keys, another
    /// tenant's notice and roles other than operations.
    async fn operations_retry_chosen_notices_and_the_processor_applies_them(db: TestDb) {
        let fake = FakeWecom::start(CORP).await;
        let api = configured(&db).await;
        seed_library(&api).await;
        seed_customer(&api, "woLI").await;
        fake.set_contact("woLI", contact_answer("woLI", "VIP", json!([])));
        api.clock.advance(chrono::Duration::seconds(1));
        post_ok(&api, &contact("edit_external_contact", "zhangsan", "woLI", T0, "")).await;
        settled(&api).await;
        let rows = inbox_rows(&api).await;
        let key_of = |kind: &str| {
            rows.iter()
                .find(|(_, (k, _, _))| k.ends_with(kind))
                .map(|(key, _)| key.clone())
                .unwrap()
        };
        let (edit, add) = (key_of("edit_external_contact"), key_of("add_external_contact"));
        assert_eq!(rows[&edit].1, "unhandled");
        assert_eq!(rows[&add].1, "processed");

        const RETRY: &str = "mutation($keys: [String!]!, $key: String!) { \
            retryWecomNotices(input: { dedupKeys: $keys, idempotencyKey: $key }) { \
              retried replayed userErrors { field code message } } }";
        let retry = |who: String, keys: Value, key: String| {
            let api = &api;
            async move {
                let body = api.gql(Some(&who), RETRY, json!({ "keys": keys, "key": key })).await;
                (body["data"]["retryWecomNotices"].clone(), body["errors"].clone())
            }
        };
        let ops = token(T, Role::Operations, None, &[]);
        let (_, errors) = retry(
            token(T, Role::StoreManager, Some("zhangsan"), &[]),
            json!([edit]),
            Uuid::new_v4().to_string(),
        )
        .await;
        assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN", "{errors}");
        let (elsewhere, errors) = retry(
            token(OTHER, Role::Operations, None, &[]),
            json!([edit]),
            Uuid::new_v4().to_string(),
        )
        .await;
        assert!(errors.is_null(), "{errors}");
        assert_eq!(elsewhere["retried"], json!([]));
        assert_eq!(elsewhere["userErrors"][0]["code"], "NOT_FOUND");
        assert_eq!(inbox_rows(&api).await[&edit].1, "unhandled");

        enable_api_reads(&api, &fake).await;
        let before = types_of(&events(&api).await, "woLI").len();
        let key = Uuid::new_v4().to_string();
        let keys = json!([add, edit, "no-such-notice"]);
        let (done, errors) = retry(ops.clone(), keys.clone(), key.clone()).await;
        assert!(errors.is_null(), "{errors}");
        assert_eq!(done["retried"], json!([edit]), "{done}");
        assert_eq!(done["replayed"], false);
        let refused: Vec<_> = done["userErrors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["field"].clone(), e["code"].clone()))
            .collect();
        assert_eq!(
            refused,
            [
                (json!(["input", "dedupKeys", "0"]), json!("CONFLICT")),
                (json!(["input", "dedupKeys", "2"]), json!("NOT_FOUND")),
            ]
        );
        assert_eq!(inbox_rows(&api).await[&edit].1, "pending");
        // Asked twice before the processor ran: the second finds it waiting.
        let (again, _) = retry(ops.clone(), json!([edit]), Uuid::new_v4().to_string()).await;
        assert_eq!(again["retried"], json!([]));
        assert_eq!(again["userErrors"][0]["code"], "CONFLICT");
        // The same request again is the stored answer, not a second retry.
        let (replay, _) = retry(ops.clone(), keys, key).await;
        assert_eq!(replay["retried"], json!([edit]));
        assert_eq!(replay["replayed"], true);

        // The server's next tick applies it with WeCom's answer: its remark, and no
        // tags (Silver goes); the processed add_external_contact is not applied again.
        let done = wecom::process_pending(&api.engine, &api.wecom, api.clock.now())
            .await
            .unwrap();
        assert_eq!(done.processed, 1);
        assert_eq!(
            only_row(&api, "change_external_contact/edit_external_contact").await,
            ("processed".into(), None)
        );
        let after = types_of(&events(&api).await, "woLI");
        assert_eq!(after[before..], ["RemarkChanged", "Untagged"]);
        let body = api
            .gql(
                Some(&ops),
                "{ wecomNotices(first: 5, status: PROCESSED) { nodes { dedupKey attempts } } }",
                json!({}),
            )
            .await;
        let nodes = body["data"]["wecomNotices"]["nodes"].as_array().unwrap().clone();
        assert_eq!(nodes.len(), 2, "{body}");
    }
}

// ------------------------------------------------------- what the engine cannot apply

on_both_backends! {
    /// A group change in an older format (no `ChangeType`) is authentic and well-formed:
    /// acknowledged once, kept as unhandled with what it lacks, and listed for
    /// operations, instead of being refused until WeCom drops it. Addressed to another
    /// corp, it is still refused.
    async fn an_older_group_change_without_change_type_is_kept_unhandled_and_listed(db: TestDb) {
        let api = TestApi::start(&db).await;
        let setup = inbox::Setup {
            token: TOKEN.into(),
            encoding_aes_key: AES_KEY.into(),
            receive_id: CORP.into(),
            corp_id: Some(CORP.into()),
            corp_secret: None,
            api_base_url: None,
        };
        inbox::configure_all(&api.engine.db, &tenant(T), &setup).await.unwrap();
        let older = format!(
            "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName>\
             <FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{T0}</CreateTime>\
             <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>\
             <ChatId><![CDATA[wrOLDFORMAT]]></ChatId></xml>"
        );
        post_ok(&api, &older).await;
        post_ok(&api, &older).await;
        let foreign = post(&api, &older.replace(CORP, "wwSOMEOTHERCORP")).await;
        assert_eq!(foreign.status, 400, "another corp's notice");
        settled(&api).await;

        let (status, error) = only_row(&api, "change_external_chat").await;
        assert_eq!(status, "unhandled");
        let error = error.expect("a reason");
        assert!(error.contains("missing required field `ChangeType`"), "{error}");
        assert_eq!(inbox_rows(&api).await.len(), 1);
        assert!(events(&api).await.is_empty());

        let body = api
            .gql(
                Some(&token(T, Role::Operations, None, &[])),
                "{ wecomNotices(first: 5, status: UNHANDLED) { edges { node { kind error } } } }",
                json!({}),
            )
            .await;
        assert!(body["errors"].is_null(), "{body}");
        let nodes = &body["data"]["wecomNotices"]["edges"];
        assert_eq!(nodes.as_array().map(Vec::len), Some(1), "{body}");
        assert_eq!(nodes[0]["node"]["kind"], "change_external_chat");
        assert_eq!(nodes[0]["node"]["error"], error.as_str());
    }
}

// ------------------------------------------------------------- failures in the inbox

/// The other tenant whose notices must not wait for this one's.
const OTHER: &str = "globex";

/// Stores `plaintext` in `tenant`'s inbox as the endpoint does, but without starting a
/// processor, so a test decides when the round runs. Returns its dedup key.
async fn plant(api: &TestApi, tenant_id: &str, plaintext: &str) -> String {
    let intake = wecom::intake::Intake::read(plaintext.as_bytes()).unwrap();
    // One second apart, so the arrival order is the order planted.
    api.clock.advance(chrono::Duration::seconds(1));
    let stored = inbox::store(&api.engine.db, &tenant(tenant_id), &intake, api.clock.now())
        .await
        .unwrap();
    assert!(stored, "{plaintext}");
    intake.dedup_key
}

async fn exec(api: &TestApi, sql: &str) {
    on_pool!(&api.engine.db, |pool| sqlx::query(sql)
        .execute(pool)
        .await
        .map(drop))
    .expect(sql);
}

/// Puts an event no code can read on `customer`'s stream: loading the customer, and so
/// every command on it, fails at the store.
async fn corrupt_stream(api: &TestApi, customer: &str) {
    exec(
        api,
        &format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) VALUES ('Customer', '{T}:{customer}', 1, \
             'Nonsense', '1.0', '{{\"Nonsense\": {{}}}}', '{{}}')"
        ),
    )
    .await;
}

async fn row(api: &TestApi, tenant_id: &str, dedup_key: &str) -> Row {
    row_by(api, tenant_id, "dedup_key", dedup_key).await
}

/// The event types of `tenant_id`'s stream `local`, in order.
async fn stream_types(api: &TestApi, tenant_id: &str, local: &str) -> Vec<String> {
    on_pool!(&api.engine.db, |pool| {
        sqlx::query_scalar(
            "SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY position",
        )
        .bind(format!("{tenant_id}:{local}"))
        .fetch_all(pool)
        .await
    })
    .unwrap()
}

on_both_backends! {
    /// A notice that fails at the store waits for a retry with backoff, recorded with
    /// its error, while the round goes on: another customer's and another tenant's
    /// notices are applied. The later notice of the same customer waits behind it, and
    /// once the cause is repaired the two apply in arrival order.
    async fn a_notice_failing_at_the_store_waits_alone_and_holds_back_only_its_customer(db: TestDb) {
        let api = TestApi::start(&db).await;
        corrupt_stream(&api, "woBAD").await;
        let add = |customer: &str| contact("add_external_contact", "zhangsan", customer, T0, "");
        let bad = plant(&api, T, &add("woBAD")).await;
        let behind = plant(
            &api,
            T,
            &contact("del_follow_user", "zhangsan", "woBAD", T0 + 1, ""),
        )
        .await;
        let good = plant(&api, T, &add("woGOOD")).await;
        let elsewhere = plant(&api, OTHER, &add("woOTHER")).await;

        // Whole seconds, as the row's retry time is stored to the microsecond at best.
        let now = api.clock.now().trunc_subsecs(0);
        let done = wecom::process_pending(&api.engine, &api.wecom, now)
            .await
            .unwrap();
        assert_eq!((done.processed, done.deferred, done.failed), (2, 1, 0), "{done:?}");
        assert_eq!(stream_types(&api, T, "woGOOD").await, ["FriendAdded"]);
        assert_eq!(stream_types(&api, OTHER, "woOTHER").await, ["FriendAdded"]);
        for (tenant_id, key) in [(T, &good), (OTHER, &elsewhere)] {
            assert_eq!(row(&api, tenant_id, key).await.0, "processed");
        }
        let (status, attempts, error, retry_at) = row(&api, T, &bad).await;
        assert_eq!((status.as_str(), attempts), ("pending", 1));
        let error = error.expect("the store's error");
        assert!(error.starts_with("STORE: ") && error.contains("Nonsense"), "{error}");
        assert_eq!(retry_at, Some(now + chrono::Duration::seconds(30)));
        assert_eq!(row(&api, T, &behind).await, ("pending".into(), 0, None, None));

        // Before the retry is due, neither the failed notice nor the one behind it runs.
        let early = wecom::process_pending(&api.engine, &api.wecom, now + chrono::Duration::seconds(10))
            .await
            .unwrap();
        assert_eq!(early, wecom::process::Processed::default());
        assert_eq!(row(&api, T, &behind).await.1, 0);

        // Repaired (the unreadable event removed), both apply, in the order they came.
        exec(&api, "DELETE FROM events WHERE event_type = 'Nonsense'").await;
        let done = wecom::process_pending(&api.engine, &api.wecom, now + chrono::Duration::seconds(30))
            .await
            .unwrap();
        assert_eq!(done.processed, 2, "{done:?}");
        assert_eq!(
            stream_types(&api, T, "woBAD").await,
            ["FriendAdded", "FriendRemoved"]
        );
    }
}

on_both_backends! {
    /// A notice that keeps failing at the store is marked failed with its error after
    /// the last try, and from then on holds nothing back: the notice behind it gets its
    /// own tries.
    async fn a_notice_that_keeps_failing_at_the_store_is_marked_failed_and_frees_its_customer(db: TestDb) {
        let api = TestApi::start(&db).await;
        corrupt_stream(&api, "woBAD").await;
        let bad = plant(
            &api,
            T,
            &contact("add_external_contact", "zhangsan", "woBAD", T0, ""),
        )
        .await;
        let behind = plant(
            &api,
            T,
            &contact("del_follow_user", "zhangsan", "woBAD", T0 + 1, ""),
        )
        .await;
        let mut now = api.clock.now();
        for _ in 1..wecom::process::MAX_ATTEMPTS {
            wecom::process_pending(&api.engine, &api.wecom, now)
                .await
                .unwrap();
            assert_eq!(row(&api, T, &bad).await.0, "pending");
            assert_eq!(row(&api, T, &behind).await.1, 0, "held back while the first waits");
            now += chrono::Duration::hours(1);
        }
        // The last try: the first gives up, and the one behind it runs in the same round.
        wecom::process_pending(&api.engine, &api.wecom, now)
            .await
            .unwrap();
        let (status, _, error, _) = row(&api, T, &bad).await;
        assert_eq!(status, "failed");
        let error = error.expect("the store's error");
        assert!(
            error.starts_with("STORE: ") && error.contains("gave up after 5 attempts"),
            "{error}"
        );
        let (status, attempts, error, _) = row(&api, T, &behind).await;
        assert_eq!((status.as_str(), attempts), ("pending", 1));
        assert!(error.unwrap().starts_with("STORE: "));
    }
}
