//! XML bodies into [`Fields`]: an event loop with a depth limit, no DTD.

use super::fields::{Fields, Value};
use super::ParseError;

impl Fields {
    /// An event loop rather than a DOM: a recursive-descent XML parser can be driven into a
    /// stack overflow by deep nesting, which aborts the process instead of returning an error.
    pub(super) fn parse_xml(body: &[u8]) -> Result<Self, ParseError> {
        use quick_xml::events::Event;

        let text =
            std::str::from_utf8(body).map_err(|e| ParseError::Xml(format!("not UTF-8: {e}")))?;
        let mut reader = quick_xml::Reader::from_str(text);
        let mut fields = Fields::default();
        // Depth 1 is the root, 2 a field, 3 a list item; deeper content is ignored.
        let mut depth = 0usize;
        let mut seen_root = false;
        let mut current: Option<OpenField> = None;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| ParseError::Xml(e.to_string()))?;
            match event {
                Event::Start(start) => {
                    depth += 1;
                    if depth > MAX_XML_DEPTH {
                        return Err(ParseError::Xml(format!(
                            "elements nested deeper than {MAX_XML_DEPTH}"
                        )));
                    }
                    open_element(&mut current, &mut seen_root, depth, local_name(&start)?)?;
                }
                Event::Empty(start) => {
                    open_element(&mut current, &mut seen_root, depth + 1, local_name(&start)?)?;
                    close_element(&mut current, &mut fields, depth + 1)?;
                }
                Event::End(_) => {
                    close_element(&mut current, &mut fields, depth)?;
                    depth = depth.saturating_sub(1);
                }
                Event::Text(t) => {
                    let t = t.unescape().map_err(|e| ParseError::Xml(e.to_string()))?;
                    add_text(&mut current, depth, &t)?;
                }
                Event::CData(c) => {
                    let c = c.decode().map_err(|e| ParseError::Xml(e.to_string()))?;
                    add_text(&mut current, depth, &c)?;
                }
                // Entity declarations are an attack surface (expansion bombs) and WeCom sends none.
                Event::DocType(_) => return Err(ParseError::Xml("DTD is not accepted".to_owned())),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => break,
            }
        }
        if !seen_root {
            return Err(ParseError::Xml("no root element".to_owned()));
        }
        if depth != 0 {
            return Err(ParseError::Xml("unexpected end of document".to_owned()));
        }
        Ok(fields)
    }
}

const MAX_XML_DEPTH: usize = 16;

/// A field element being read: its name, own text, and list items if it has child elements.
struct OpenField {
    name: String,
    text: String,
    items: Option<Vec<String>>,
}

fn local_name(start: &quick_xml::events::BytesStart<'_>) -> Result<String, ParseError> {
    std::str::from_utf8(start.local_name().as_ref())
        .map(str::to_owned)
        .map_err(|e| ParseError::Xml(format!("element name is not UTF-8: {e}")))
}

fn open_element(
    current: &mut Option<OpenField>,
    seen_root: &mut bool,
    depth: usize,
    name: String,
) -> Result<(), ParseError> {
    match depth {
        1 if *seen_root => Err(ParseError::Xml("more than one root element".to_owned())),
        1 => {
            *seen_root = true;
            Ok(())
        }
        2 => {
            *current = Some(OpenField {
                name,
                text: String::new(),
                items: None,
            });
            Ok(())
        }
        3 => {
            if let Some(field) = current {
                field.items.get_or_insert_with(Vec::new).push(String::new());
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn close_element(
    current: &mut Option<OpenField>,
    fields: &mut Fields,
    depth: usize,
) -> Result<(), ParseError> {
    if depth != 2 {
        return Ok(());
    }
    let Some(field) = current.take() else {
        return Ok(());
    };
    let value = match field.items {
        Some(items) => Value::List(
            items
                .into_iter()
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect(),
        ),
        None => Value::Text(field.text.trim().to_owned()),
    };
    fields.insert(&field.name, value)
}

fn add_text(current: &mut Option<OpenField>, depth: usize, text: &str) -> Result<(), ParseError> {
    match depth {
        0 if !text.trim().is_empty() => {
            Err(ParseError::Xml("text outside the root element".to_owned()))
        }
        2 => {
            if let Some(field) = current {
                field.text.push_str(text);
            }
            Ok(())
        }
        3 => {
            if let Some(item) = current
                .as_mut()
                .and_then(|f| f.items.as_mut())
                .and_then(|items| items.last_mut())
            {
                item.push_str(text);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
