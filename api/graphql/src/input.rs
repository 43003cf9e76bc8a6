//! A wall in front of the parser and the resolvers, for what a client sends.
//!
//! Nesting: async-graphql's pest grammar recurses once per level of `[`, `{` and `(` in
//! a document (selection sets, argument values, variable defaults, directive
//! arguments), without a limit, and `limit_recursive_depth` only looks at the parsed
//! result: a 4 KB document nesting a list 2,000 deep overflowed a tokio worker's stack
//! and took the process with it. Counting brackets in the raw bytes costs one pass and
//! no allocation, and refuses such a document before the parser sees it, on HTTP and on
//! WebSocket alike. (JSON variables are bounded by serde_json's recursion limit of 128.)
//!
//! Unknown variable types: async-graphql's validation panics on the default value of a
//! variable whose type the schema does not define; they are refused first.
//!
//! NUL characters: PostgreSQL refuses them in text, so a string holding one failed deep
//! in a command as an internal error. They are refused here, in the document's values
//! and in the variables, as the client's mistake.

use async_graphql::parser::types::{BaseType, ExecutableDocument, Selection, SelectionSet, Type};
use async_graphql::{ErrorExtensionValues, Name, ServerError, ServerResult, Value, Variables};

/// Deeper than any document our clients send (selections are limited to depth 10, and
/// the deepest input, a customer filter, adds 3), far below what overflows the stack.
pub const MAX_NESTING: usize = 64;

/// The longest document accepted, on every transport.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;

/// The deepest nesting of brackets outside strings and comments, counted up to `limit + 1`
/// (it stops there: the answer is then only "too deep").
pub fn nesting(document: &str, limit: usize) -> usize {
    let bytes = document.as_bytes();
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                // A block string ends at the next `"""` not escaped as `\"""`.
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' | b'(' => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    if deepest > limit {
                        return deepest;
                    }
                }
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// Why a document is refused before parsing, if it is.
pub fn check(document: &str) -> Result<(), ServerError> {
    if nesting(document, MAX_NESTING) > MAX_NESTING {
        return Err(bad_input(format!(
            "The query nests too deeply: at most {MAX_NESTING} levels of brackets"
        )));
    }
    if document.len() > MAX_QUERY_BYTES {
        return Err(bad_input(format!(
            "The query is too long: at most {MAX_QUERY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn bad_input(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", "BAD_USER_INPUT");
    error.extensions = Some(ext);
    error
}

/// Whether a value holds a NUL character in any string, key or enum name.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Enum(n) => n.contains('\0'),
        Value::List(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        Value::Null | Value::Number(_) | Value::Boolean(_) | Value::Binary(_) => false,
    }
}

/// The same for a value written in the document (variables name no strings).
fn literal_holds_nul(value: &async_graphql_value::Value) -> bool {
    use async_graphql_value::Value as Literal;
    match value {
        Literal::String(s) => s.contains('\0'),
        Literal::Enum(n) => n.contains('\0'),
        Literal::List(items) => items.iter().any(literal_holds_nul),
        Literal::Object(fields) => fields
            .iter()
            .any(|(k, v)| k.contains('\0') || literal_holds_nul(v)),
        Literal::Variable(_)
        | Literal::Null
        | Literal::Number(_)
        | Literal::Boolean(_)
        | Literal::Binary(_) => false,
    }
}

fn set_holds_nul(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(f) => {
            f.node
                .arguments
                .iter()
                .any(|(_, v)| literal_holds_nul(&v.node))
                || f.node.directives.iter().any(|d| {
                    d.node
                        .arguments
                        .iter()
                        .any(|(_, v)| literal_holds_nul(&v.node))
                })
                || set_holds_nul(&f.node.selection_set.node)
        }
        Selection::InlineFragment(f) => set_holds_nul(&f.node.selection_set.node),
        Selection::FragmentSpread(_) => false,
    })
}

fn document_holds_nul(document: &ExecutableDocument) -> bool {
    document.operations.iter().any(|(_, op)| {
        op.node.variable_definitions.iter().any(|v| {
            v.node
                .default_value
                .as_ref()
                .is_some_and(|d| holds_nul(&d.node))
        }) || set_holds_nul(&op.node.selection_set.node)
    }) || document
        .fragments
        .values()
        .any(|f| set_holds_nul(&f.node.selection_set.node))
}

/// The first variable type the schema does not define. async-graphql's validation
/// panics on a default value of such a type (found by `tests/tests/api/graphql_fuzz.rs`),
/// so it is refused before validation.
fn unknown_variable_type(
    document: &ExecutableDocument,
    defined: impl Fn(&str) -> bool,
) -> Option<String> {
    fn base(ty: &Type) -> &str {
        match &ty.base {
            BaseType::Named(name) => name.as_str(),
            BaseType::List(inner) => base(inner),
        }
    }
    document.operations.iter().find_map(|(_, op)| {
        op.node.variable_definitions.iter().find_map(|v| {
            let name = base(&v.node.var_type.node);
            (!defined(name)).then(|| name.to_string())
        })
    })
}

fn nul_refused() -> ServerError {
    bad_input("Strings may not contain NUL (U+0000) characters".to_string())
}

/// Refuses variables holding a NUL character; they are checked on every request, the
/// document only when it is first seen (see [`check_document`]).
pub(crate) fn check_variables(variables: &Variables) -> ServerResult<()> {
    if variables
        .iter()
        .any(|(name, v): (&Name, &Value)| name.contains('\0') || holds_nul(v))
    {
        return Err(nul_refused());
    }
    Ok(())
}

/// Refuses a parsed document with a NUL character in a value or a variable of a type
/// `defined` does not know.
pub(crate) fn check_document(
    document: &ExecutableDocument,
    defined: impl Fn(&str) -> bool,
) -> ServerResult<()> {
    if document_holds_nul(document) {
        return Err(nul_refused());
    }
    if let Some(unknown) = unknown_variable_type(document, defined) {
        return Err(bad_input(format!("Unknown type \"{unknown}\"")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deep(levels: usize) -> String {
        format!(
            "query {{ customers(filter: {{stages: {}1{}}}) {{ id }} }}",
            "[".repeat(levels),
            "]".repeat(levels)
        )
    }

    #[test]
    fn given_a_flat_document_when_scanned_then_its_depth_is_that_of_its_brackets() {
        assert_eq!(nesting("{ a { b(x: [1, {y: 2}]) } }", 64), 5);
        assert_eq!(nesting("", 64), 0);
    }

    #[test]
    fn given_brackets_in_strings_and_comments_when_scanned_then_they_do_not_count() {
        let doc = "{ a(s: \"[[[{{{\\\"[[[\", b: \"\"\"[[[ \\\"\"\" {{{ \"\"\") # [[[[[\n }";
        assert_eq!(nesting(doc, 64), 2);
    }

    #[test]
    fn given_a_value_nested_past_the_limit_when_checked_then_it_is_refused_as_bad_input() {
        let error = check(&deep(2_000)).unwrap_err();
        assert!(
            error.message.contains("nests too deeply"),
            "{}",
            error.message
        );
        assert!(check(&deep(40)).is_ok());
    }

    #[test]
    fn given_a_deep_document_when_scanned_then_the_scan_stops_just_past_the_limit() {
        assert_eq!(nesting(&"[".repeat(100_000), 64), 65);
    }

    #[test]
    fn given_a_nul_anywhere_in_a_value_when_checked_then_it_is_found() {
        let nul = Value::String("a\0b".into());
        assert!(holds_nul(&nul));
        assert!(holds_nul(&Value::List(vec![Value::Null, nul.clone()])));
        let mut fields = async_graphql::indexmap::IndexMap::new();
        fields.insert(Name::new("k"), Value::List(vec![nul]));
        assert!(holds_nul(&Value::Object(fields)));
        assert!(!holds_nul(&Value::String("金饰".into())));
    }

    #[test]
    fn given_an_unterminated_string_when_scanned_then_the_scan_ends_without_panicking() {
        assert_eq!(nesting("{ a(s: \"[[[", 64), 2);
        assert_eq!(nesting("{ a(s: \"\"\"[[[ \\", 64), 2);
        assert_eq!(nesting("\\", 64), 0);
    }
}
