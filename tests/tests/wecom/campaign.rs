//! The campaign calls against the fake WeCom. Mass messages (群发): a guide's task
//! created with its partial failures, its results read page by page before and after
//! the guide confirms it, a customer already reached that day, and WeCom's refusals.
//! Moments (朋友圈): a post's job polled until done, the guides it could not reach, and
//! the customers each guide's published post reached.

use harness::fake_wecom::{self, FakeWecom};
use serde_json::json;
use wecom::client::mass_message::SendStatus;
use wecom::client::moment::MomentTask;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moment_is_created_by_a_job_and_reports_whom_each_guides_post_reached() {
    let fake = FakeWecom::start(CORP).await;
    let (client, credentials) = client_of(&fake);
    let api = client.for_tenant("acme", &credentials);
    // Given two guides with customers, and a third WeCom cannot give the post to
    fake.guide_customers("g1", &["wm0001", "wm0002", "wm0003"]);
    fake.guide_customers("g2", &["wm0009"]);
    fake.invalid_moment_sender("g3");
    let guides = ["g1", "g2", "g3"].map(String::from);
    // when the post is created
    let jobid = api
        .add_moment_task(&guides, &[], "新品到店", &[])
        .await
        .unwrap();
    // then the job runs, and once done names the post and the guide it could not reach
    assert_eq!(
        api.moment_task_result(&jobid).await.unwrap(),
        MomentTask::Running
    );
    let MomentTask::Done {
        moment_id,
        invalid_senders,
    } = api.moment_task_result(&jobid).await.unwrap()
    else {
        panic!("the job ends");
    };
    assert_eq!(invalid_senders, vec!["g3".to_string()]);
    // and a guide's customers are reached only once the guide published it.
    let reached = |guide: &'static str, limit| {
        let (api, moment_id) = (&api, moment_id.clone());
        async move {
            let (mut all, mut cursor) = (Vec::new(), None::<String>);
            loop {
                let page = api
                    .moment_customers(&moment_id, guide, cursor.as_deref(), limit)
                    .await
                    .unwrap();
                all.extend(page.customers);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => return all,
                }
            }
        }
    };
    assert!(reached("g1", 2).await.is_empty());
    fake.publish_moment(&moment_id, "g1");
    assert_eq!(reached("g1", 2).await, vec!["wm0001", "wm0002", "wm0003"]);
    assert!(reached("g2", 2).await.is_empty(), "g2 has not published");
    // An empty post and an unknown job are WeCom's refusals.
    let empty = api.add_moment_task(&guides, &[], "", &[]).await;
    assert!(
        matches!(empty, Err(ClientError::Api { errcode: 41048, .. })),
        "{empty:?}"
    );
    let unknown = api.moment_task_result("job-none").await;
    assert!(
        matches!(unknown, Err(ClientError::Api { errcode: 41063, .. })),
        "{unknown:?}"
    );
}
