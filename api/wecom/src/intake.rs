//! From an authentic plaintext to the inbox row the endpoint stores: its key, kind,
//! subject and whether it waits for processing or is concluded at once. Pure.
//!
//! Every well-formed document is kept. A notice the engine cannot apply (an unknown
//! event, an older format without a field the parser needs) is stored as unhandled
//! with the reason and acknowledged like any other: refusing it would only make WeCom
//! retry three times and drop it, and operations would never see it came
//! (docs/adr/0008-wecom-inbox.md).

use crate::inbox::Status;
use crate::notice::{Notice, NoticeKind, ParseError, Received};
use crate::process::{kind_name, subject};

/// What the endpoint stores for one notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    /// [`Notice::dedup_key`].
    pub dedup_key: String,
    /// [`kind_name`], or what an unreadable body says it is.
    pub kind: String,
    /// [`subject`]: the stream whose notices apply in arrival order.
    pub subject: Option<String>,
    /// `Pending`, or `Unhandled` when no command can come of it.
    pub status: Status,
    /// Why it is unhandled.
    pub reason: Option<String>,
    /// The corp id the envelope names, for the endpoint to check.
    pub corp_id: Option<String>,
    /// The plaintext as WeCom sent it.
    pub payload: String,
}

impl Intake {
    /// `Err` only for a body that is no document at all ([`Notice::read`]).
    pub fn read(plaintext: &[u8]) -> Result<Self, ParseError> {
        let received = Notice::read(plaintext)?;
        let corp_id = received.corp_id().map(str::to_owned);
        let (kind, subject, status, reason) = match received {
            Received::Notice(notice) => {
                let (status, reason) = match notice.kind {
                    NoticeKind::Unknown { .. } => {
                        (Status::Unhandled, Some("unknown event type".to_owned()))
                    }
                    _ => (Status::Pending, None),
                };
                let subject = subject(&notice.kind).map(str::to_owned);
                (kind_name(&notice.kind), subject, status, reason)
            }
            Received::Unreadable(unreadable) => (
                unreadable.kind,
                None,
                Status::Unhandled,
                Some(format!(
                    "not a notice the engine reads (an older or newer format?): {}",
                    unreadable.error
                )),
            ),
        };
        Ok(Self {
            dedup_key: Notice::dedup_key(plaintext),
            kind,
            subject,
            status,
            reason,
            corp_id,
            payload: String::from_utf8_lossy(plaintext).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use domain::stamp::TAG_LIBRARY_LOCAL_ID;

    use super::*;

    const HEAD: &str = "<xml><ToUserName>ww1</ToUserName><FromUserName>sys</FromUserName>\
                        <CreateTime>1403610513</CreateTime><MsgType>event</MsgType>";

    fn read(body: &str) -> Intake {
        Intake::read(format!("{HEAD}{body}</xml>").as_bytes()).unwrap()
    }

    #[test]
    fn an_older_group_change_without_change_type_is_kept_unhandled_and_says_what_is_missing() {
        let intake = read("<Event>change_external_chat</Event><ChatId>wr1</ChatId>");
        assert_eq!(intake.kind, "change_external_chat");
        assert_eq!(intake.status, Status::Unhandled);
        assert_eq!(intake.subject, None);
        assert_eq!(intake.corp_id.as_deref(), Some("ww1"));
        let reason = intake.reason.unwrap();
        assert!(
            reason.contains("missing required field `ChangeType`"),
            "{reason}"
        );
    }

    #[test]
    fn an_unreadable_third_party_notice_names_its_corp_for_the_check() {
        let intake = Intake::read(
            b"<xml><SuiteId>s1</SuiteId><AuthCorpId>wwX</AuthCorpId>\
              <InfoType>change_external_chat</InfoType><TimeStamp>1</TimeStamp>\
              <ChatId>wr1</ChatId></xml>",
        )
        .unwrap();
        assert_eq!(
            (
                intake.kind.as_str(),
                intake.status,
                intake.corp_id.as_deref()
            ),
            ("change_external_chat", Status::Unhandled, Some("wwX"))
        );
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_unhandled_with_the_field_named() {
        let intake = read(
            "<Event>change_external_chat</Event><ChangeType>update</ChangeType>\
             <ChatId>wr1</ChatId><UpdateDetail>add_member</UpdateDetail>\
             <JoinScene>by QR code</JoinScene>",
        );
        assert_eq!(intake.kind, "change_external_chat/update");
        assert_eq!(intake.status, Status::Unhandled);
        assert!(intake.reason.unwrap().contains("`JoinScene`"));
    }

    #[test]
    fn notices_the_engine_reads_wait_for_processing_under_their_subject() {
        let add = read(
            "<Event>change_external_contact</Event><ChangeType>add_external_contact</ChangeType>\
             <UserID>zhangsan</UserID><ExternalUserID>woA</ExternalUserID>",
        );
        assert_eq!(
            (add.status, add.reason, add.subject.as_deref()),
            (Status::Pending, None, Some("woA"))
        );
        assert_eq!(add.kind, "change_external_contact/add_external_contact");
        let dismiss = read(
            "<Event>change_external_chat</Event><ChangeType>dismiss</ChangeType>\
             <ChatId>wr1</ChatId>",
        );
        assert_eq!(dismiss.subject.as_deref(), Some("wr1"));
        let shuffle =
            read("<Event>change_external_tag</Event><ChangeType>shuffle</ChangeType><Id>et1</Id>");
        assert_eq!(shuffle.subject.as_deref(), Some(TAG_LIBRARY_LOCAL_ID));
        let unknown = read("<Event>change_external_contact_v9</Event>");
        assert_eq!((unknown.status, unknown.subject), (Status::Unhandled, None));
    }

    #[test]
    fn a_body_that_is_no_document_is_still_an_error() {
        for body in [
            &b"this is not a notice"[..],
            b"<xml><A>x</B></xml>",
            b"{\"a\": ",
        ] {
            assert!(
                Intake::read(body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let twice = format!("{HEAD}<Event>a</Event><Event>b</Event></xml>");
        assert_eq!(
            Intake::read(twice.as_bytes()).unwrap_err(),
            ParseError::DuplicateField("Event".into())
        );
    }
}
