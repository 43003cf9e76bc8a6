//! What WeCom's answers to the handover calls say, read without I/O: per customer and
//! per group, in the shapes of WeCom's documented examples (`fixtures/wecom/rest`).

use std::collections::BTreeMap;

use domain::customer::RefusalReason;
use serde_json::Value;

/// WeCom is over its frequency limit (45009: API calls; 45033: concurrent calls) or
/// busy (-1): the call was not carried out and is sent again later.
pub const TRY_AGAIN: [i64; 3] = [45009, 45033, -1];

/// How a customer's transfer ended, as `transfer_result` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concluded {
    /// Status 1: the successor took over.
    Accepted,
    /// Status 3, 4 or 5.
    Refused(RefusalReason),
}

/// What one status of `transfer_result` concludes; status 2 (waiting) concludes
/// nothing, nor does a status WeCom has not documented.
pub fn concluded(status: i64) -> Option<Concluded> {
    match status {
        1 => Some(Concluded::Accepted),
        3 => Some(Concluded::Refused(RefusalReason::CustomerRefused)),
        4 => Some(Concluded::Refused(RefusalReason::CustomerLimitExceeded)),
        5 => Some(Concluded::Refused(RefusalReason::NoTransferRecord)),
        _ => None,
    }
}

fn text<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(Value::as_str)
}

fn list<'a>(v: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    v.get(field).and_then(Value::as_array).into_iter().flatten()
}

/// The ids in a list of strings of a request (`external_userid`, `chat_id_list`,
/// `add_tag`, ...).
pub fn ids(request: &Value, field: &str) -> Vec<String> {
    list(request, field)
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// The customers a transfer call asked for (its `external_userid` list).
pub fn customers_asked(request: &Value) -> Vec<String> {
    ids(request, "external_userid")
}

/// The groups a group transfer call asked for (its `chat_id_list`).
pub fn groups_asked(request: &Value) -> Vec<String> {
    ids(request, "chat_id_list")
}

/// The customers WeCom would not start a transfer for, with its `errcode` for each.
/// A customer it did not mention was not refused.
pub fn customers_refused(answer: &Value) -> BTreeMap<String, i64> {
    list(answer, "customer")
        .filter_map(|c| {
            let errcode = c.get("errcode").and_then(Value::as_i64).unwrap_or(0);
            (errcode != 0).then(|| Some((text(c, "external_userid")?.to_string(), errcode)))?
        })
        .collect()
}

/// The groups WeCom did not move (`failed_chat_list`), with its `errcode` for each.
pub fn groups_failed(answer: &Value) -> BTreeMap<String, i64> {
    list(answer, "failed_chat_list")
        .filter_map(|c| {
            let errcode = c.get("errcode").and_then(Value::as_i64).unwrap_or(0);
            Some((text(c, "chat_id")?.to_string(), errcode))
        })
        .collect()
}

/// One page of `transfer_result`: each customer's status, and the cursor of the next
/// page (none on the last).
pub fn result_page(answer: &Value) -> (Vec<(String, i64)>, Option<String>) {
    let customers = list(answer, "customer")
        .filter_map(|c| {
            Some((
                text(c, "external_userid")?.to_string(),
                c.get("status").and_then(Value::as_i64)?,
            ))
        })
        .collect();
    let next = text(answer, "next_cursor")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    (customers, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example(name: &str) -> Value {
        // Vendored from ../shared/wecom/rest, so a clean clone tests them.
        let path = format!(
            "{}/../../fixtures/wecom/rest/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn a_transfer_answer_names_the_customers_wecom_refused() {
        // Given WeCom's documented answer to resigned/transfer_customer.
        let answer = example("resigned_transfer_customer.response.json");
        // Then only the customer with a non-zero errcode is refused, with that code.
        assert_eq!(
            customers_refused(&answer),
            BTreeMap::from([("woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA".to_string(), 40096)])
        );
        let asked = customers_asked(&example("resigned_transfer_customer.request.json"));
        assert_eq!(asked.len(), 2);
    }

    #[test]
    fn a_result_page_reads_every_status_and_the_next_cursor() {
        let (customers, next) = result_page(&example("transfer_result.response.json"));
        assert_eq!(
            customers,
            vec![
                ("woAJ2GCAAAXtWyujaWJHDDGi0mACCCC".to_string(), 1),
                ("woAJ2GCAAAXtWyujaWJHDDGi0mACBBBB".to_string(), 2),
                ("woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA".to_string(), 3),
            ]
        );
        assert_eq!(next.as_deref(), Some("NEXT_CURSOR"));
        assert_eq!(
            result_page(&json!({"customer": [], "next_cursor": ""})).1,
            None
        );
    }

    #[test]
    fn statuses_conclude_as_wecom_documents_them() {
        assert_eq!(concluded(1), Some(Concluded::Accepted));
        assert_eq!(concluded(2), None);
        assert_eq!(
            concluded(3),
            Some(Concluded::Refused(RefusalReason::CustomerRefused))
        );
        assert_eq!(
            concluded(4),
            Some(Concluded::Refused(RefusalReason::CustomerLimitExceeded))
        );
        assert_eq!(
            concluded(5),
            Some(Concluded::Refused(RefusalReason::NoTransferRecord))
        );
        assert_eq!(concluded(9), None);
    }

    #[test]
    fn a_group_answer_lists_the_groups_not_moved() {
        let failed = groups_failed(&example("groupchat_transfer.response.json"));
        assert_eq!(
            failed,
            BTreeMap::from([("wrOgQhDgAAcwMTB7YmDkbeBsgT_KAAAA".to_string(), 90500)])
        );
        let asked = groups_asked(&example("groupchat_transfer.request.json"));
        assert_eq!(asked.len(), 2);
    }
}
