//! The mass-message client (群发) against the fake WeCom: a guide's task created with
//! its partial failures, its results read page by page before and after the guide
//! confirms it, a customer already reached that day, and WeCom's refusals.

use harness::fake_wecom::{self, FakeWecom};
use serde_json::json;
use wecom::client::mass_message::SendStatus;
use wecom::client::{ClientError, Credentials, Secret, WecomApi};

const CORP: &str = "wwmass0001";

/// A client whose tenant's API is the fake.
fn client_of(fake: &FakeWecom) -> (WecomApi, Credentials) {
    let credentials = Credentials {
        corp_id: CORP.into(),
        secret: Secret::new(fake_wecom::CORP_SECRET),
        base_url: Some(fake.base.clone()),
    };
    (WecomApi::default(), credentials)
}

fn customers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("wm{i:04}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guides_mass_message_is_created_confirmed_and_reported_customer_by_customer() {
    let fake = FakeWecom::start(CORP).await;
    let (client, credentials) = client_of(&fake);
    let api = client.for_tenant("acme", &credentials);
    // Given five customers of guide g1, one no longer a friend and one already reached
    let audience = customers(5);
    fake.not_friends("g1", "wm0001");
    fake.received_today("wm0004");
    // when the task is created
    let image =
        json!({ "msgtype": "link", "link": { "title": "618", "url": "https://example.com/618" } });
    let task = api
        .add_msg_template("g1", &audience, "618 会员日，到店有礼", &[image])
        .await
        .unwrap();
    // then WeCom refuses the stranger and holds the rest unsent until g1 confirms
    assert_eq!(task.fail_list, vec!["wm0001".to_string()]);
    assert_eq!(
        fake.mass_message_texts()[&task.msgid],
        "618 会员日，到店有礼"
    );
    let read_all = |limit| {
        let api = &api;
        let msgid = task.msgid.clone();
        async move {
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let page = api
                    .groupmsg_send_result(&msgid, "g1", cursor.as_deref(), limit)
                    .await
                    .unwrap();
                assert!(page.results.len() <= limit);
                all.extend(
                    page.results
                        .into_iter()
                        .map(|r| (r.external_userid, r.status, r.send_time)),
                );
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return all,
                }
            }
        }
    };
    let before = read_all(2).await;
    assert_eq!(before.len(), 4);
    assert!(before
        .iter()
        .all(|(_, s, t)| *s == SendStatus::Unsent && *t == 0));
    // and once confirmed, each customer's outcome, read in pages of any size.
    fake.confirm_mass_message(&task.msgid, 1_750_000_000);
    let after = read_all(3).await;
    assert_eq!(after, read_all(1_000).await);
    let outcome: Vec<(&str, SendStatus)> = after.iter().map(|(c, s, _)| (c.as_str(), *s)).collect();
    assert_eq!(
        outcome,
        vec![
            ("wm0000", SendStatus::Sent),
            ("wm0002", SendStatus::Sent),
            ("wm0003", SendStatus::Sent),
            ("wm0004", SendStatus::AlreadyReceived),
        ]
    );
    assert_eq!(after[0].2, 1_750_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecoms_refusals_of_a_mass_message_are_errors_not_guesses() {
    let fake = FakeWecom::start(CORP).await;
    let (client, credentials) = client_of(&fake);
    let api = client.for_tenant("acme", &credentials);
    // More customers than one task takes
    let too_many = customers(wecom::client::mass_message::MAX_CUSTOMERS + 1);
    let refused = api.add_msg_template("g1", &too_many, "hi", &[]).await;
    assert!(
        matches!(refused, Err(ClientError::Api { errcode: 40058, .. })),
        "{refused:?}"
    );
    // nothing to send
    let empty = api.add_msg_template("g1", &customers(1), "", &[]).await;
    assert!(
        matches!(empty, Err(ClientError::Api { errcode: 41048, .. })),
        "{empty:?}"
    );
    // a task that does not exist, or is another guide's
    let task = api
        .add_msg_template("g1", &customers(1), "hi", &[])
        .await
        .unwrap();
    for (msgid, guide) in [("msg-none", "g1"), (task.msgid.as_str(), "g2")] {
        let unknown = api.groupmsg_send_result(msgid, guide, None, 10).await;
        assert!(
            matches!(unknown, Err(ClientError::Api { errcode: 41063, .. })),
            "{unknown:?}"
        );
    }
}
