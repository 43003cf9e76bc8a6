//! The WeCom calls a guide's edits of a customer ask for (issue 16): a tag added or
//! removed (`externalcontact/mark_tag`) and a remark set (`externalcontact/remark`), in
//! the bodies WeCom documents. The call's subject is the customer, so the WeCom notice
//! that echoes the edit back can tell a write of ours still on its way
//! ([`outbox::pending_for`]).

use domain::customer::CustomerCommand;
use domain::values::TenantId;
use serde_json::json;

use crate::outbox::{self, Call};

pub const MARK_TAG: &str = "externalcontact/mark_tag";
pub const REMARK: &str = "externalcontact/remark";

/// The call `command` on `customer` asks WeCom to make, if any. `key` names the
/// request (its idempotency key), so a replay asks for the same call.
pub fn call_for(
    tenant: &TenantId,
    customer: &str,
    command: &CustomerCommand,
    key: &str,
) -> Option<Call> {
    let (api, request) = match command {
        CustomerCommand::Tag { staff, tag, .. } => (
            MARK_TAG,
            json!({ "userid": staff.as_str(), "external_userid": customer,
                    "add_tag": [tag.as_str()] }),
        ),
        CustomerCommand::Untag { staff, tag } => (
            MARK_TAG,
            json!({ "userid": staff.as_str(), "external_userid": customer,
                    "remove_tag": [tag.as_str()] }),
        ),
        CustomerCommand::ChangeRemark {
            staff,
            remark,
            description,
        } => (
            REMARK,
            json!({ "userid": staff.as_str(), "external_userid": customer,
                    "remark": remark, "description": description }),
        ),
        _ => return None,
    };
    Some(Call {
        tenant: tenant.clone(),
        call_id: outbox::call_id(&["customer-write", customer, key]),
        api: api.to_string(),
        subject: Some(customer.to_string()),
        request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::values::{StaffId, TagId};

    #[test]
    fn a_tag_is_marked_and_a_remark_set_in_the_documented_shapes() {
        let tenant = TenantId::parse("acme").unwrap();
        let staff = StaffId::parse("zhangsan").unwrap();
        let tag = TagId::parse("etGold").unwrap();
        let tagged = CustomerCommand::Tag {
            staff: staff.clone(),
            tag: tag.clone(),
            tag_state: domain::customer::TagState::Active,
        };
        let call = call_for(&tenant, "wmA", &tagged, "k1").unwrap();
        assert_eq!(call.api, MARK_TAG);
        assert_eq!(call.request["userid"], "zhangsan");
        assert_eq!(call.request["external_userid"], "wmA");
        assert_eq!(call.request["add_tag"], json!(["etGold"]));
        assert_eq!(call.subject.as_deref(), Some("wmA"));
        let untagged = CustomerCommand::Untag {
            staff: staff.clone(),
            tag,
        };
        assert_eq!(
            call_for(&tenant, "wmA", &untagged, "k2").unwrap().request["remove_tag"],
            json!(["etGold"])
        );
        let remark = CustomerCommand::ChangeRemark {
            staff,
            remark: "王女士".into(),
            description: "喜欢足金".into(),
        };
        let call = call_for(&tenant, "wmA", &remark, "k3").unwrap();
        assert_eq!(call.api, REMARK);
        assert_eq!(call.request["remark"], "王女士");
        // The same request asks for the same call; another for another.
        assert_eq!(
            call.call_id,
            call_for(&tenant, "wmA", &remark, "k3").unwrap().call_id
        );
        assert_ne!(
            call.call_id,
            call_for(&tenant, "wmA", &remark, "k4").unwrap().call_id
        );
    }
}
