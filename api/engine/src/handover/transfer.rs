//! The WeCom calls a handover asks for, as the outbox stores them: the API and the body
//! WeCom's documentation gives (`fixtures/wecom/rest/*transfer*.request.json`).

use domain::values::StaffId;
use serde_json::{json, Value};

/// 离职继承 of customers: at most 100 a call.
pub const RESIGNED_CUSTOMERS: &str = "externalcontact/resigned/transfer_customer";
/// 在职继承 of customers: at most 100 a call.
pub const ON_JOB_CUSTOMERS: &str = "externalcontact/transfer_customer";
/// Where a resigned handover's outcome per customer is read.
pub const RESIGNED_RESULT: &str = "externalcontact/resigned/transfer_result";
/// Where an on-job handover's outcome per customer is read.
pub const ON_JOB_RESULT: &str = "externalcontact/transfer_result";
/// A departed owner's customer groups.
pub const RESIGNED_GROUPS: &str = "externalcontact/groupchat/transfer";
/// An employed owner's customer groups.
pub const ON_JOB_GROUPS: &str = "externalcontact/groupchat/onjob_transfer";

/// The body of a customers' transfer call.
pub fn customers_request(from: &StaffId, to: &StaffId, customers: &[String]) -> Value {
    json!({
        "handover_userid": from.as_str(),
        "takeover_userid": to.as_str(),
        "external_userid": customers,
    })
}

/// The body of a groups' transfer call.
pub fn groups_request(groups: &[&str], new_owner: &StaffId) -> Value {
    json!({ "chat_id_list": groups, "new_owner": new_owner.as_str() })
}

/// The result API that answers for a customers' transfer API.
pub fn result_api(transfer_api: &str) -> Option<&'static str> {
    match transfer_api {
        RESIGNED_CUSTOMERS => Some(RESIGNED_RESULT),
        ON_JOB_CUSTOMERS => Some(ON_JOB_RESULT),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customers_call_has_the_documented_fields() {
        let from = StaffId::parse("zhangsan").unwrap();
        let to = StaffId::parse("lisi").unwrap();
        let body = customers_request(&from, &to, &["wmA".into(), "wmB".into()]);
        assert_eq!(body["handover_userid"], "zhangsan");
        assert_eq!(body["takeover_userid"], "lisi");
        assert_eq!(body["external_userid"], json!(["wmA", "wmB"]));
        assert_eq!(result_api(RESIGNED_CUSTOMERS), Some(RESIGNED_RESULT));
        assert_eq!(result_api(RESIGNED_GROUPS), None);
    }
}
