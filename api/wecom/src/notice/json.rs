//! JSON bodies into [`Fields`].

use super::fields::{Fields, Value};
use super::ParseError;

impl Fields {
    pub(super) fn parse_json(body: &[u8]) -> Result<Self, ParseError> {
        use serde_json::Value as J;
        let root: J = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
        let J::Object(object) = root else {
            return Err(ParseError::Json("top level is not an object".to_owned()));
        };
        let mut fields = Fields::default();
        for (name, value) in object {
            let value = match value {
                J::Null => Value::Text(String::new()),
                J::Array(items) => json_list(items),
                J::Object(inner) => {
                    // The XML shape `<MemChangeList><Item>..</Item></MemChangeList>` rendered as
                    // JSON: {"MemChangeList": {"Item": [..]}}.
                    match inner
                        .into_iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("item"))
                    {
                        Some((_, J::Array(items))) => json_list(items),
                        Some((_, scalar)) => match json_scalar(scalar) {
                            Some(s) => Value::List(vec![s]),
                            None => Value::Nested,
                        },
                        None => Value::Nested,
                    }
                }
                scalar => json_scalar(scalar).map_or(Value::Nested, Value::Text),
            };
            fields.insert(&name, value)?;
        }
        Ok(fields)
    }
}

fn json_scalar(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Null => Some(String::new()),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => None,
    }
}

fn json_list(items: Vec<serde_json::Value>) -> Value {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match json_scalar(item) {
            Some(s) if !s.is_empty() => out.push(s),
            Some(_) => {}
            None => return Value::Nested,
        }
    }
    Value::List(out)
}
