//! A JSONPath compiled once at load time (RFC 9535 syntax, evaluated by `jsonpath-rust`).

use jsonpath_rust::parser::model::JpQuery;
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

/// A compiled JSONPath plus the text the admin wrote (for messages).
#[derive(Debug, Clone)]
pub(crate) struct JsonPathExpr {
    text: String,
    query: JpQuery,
}

impl JsonPathExpr {
    /// Compiles `text`; the error is one readable line (no multi-line parser art).
    pub(crate) fn compile(text: &str) -> Result<Self, String> {
        if !text.starts_with('$') {
            return Err(format!(
                "invalid JSONPath {text:?}: a path starts with `$` (the event root), e.g. \"$.order.id\""
            ));
        }
        parse_json_path(text)
            .map(|query| Self {
                text: text.to_owned(),
                query,
            })
            .map_err(|e| format!("invalid JSONPath {text:?}: {}", one_line(&e.to_string())))
    }

    /// The path as written in the mapping file.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The first value the path selects, `None` when it selects nothing.
    pub(crate) fn first<'a>(&self, event: &'a Value) -> Result<Option<&'a Value>, String> {
        js_path_process(&self.query, event)
            .map(|found| found.into_iter().next().map(|r| r.val))
            .map_err(|e| format!("{}: {}", self.text, one_line(&e.to_string())))
    }
}

/// Turns pest's multi-line report ("--> 1:9 … = expected selector") into "column 9: expected selector".
fn one_line(message: &str) -> String {
    let column = message
        .split("--> ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|pos| pos.split(':').nth(1))
        .map(str::trim);
    let expected = message
        .lines()
        .rev()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("= "));
    match (column, expected) {
        (Some(col), Some(what)) => format!("column {col}: {what}"),
        _ => message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_and_selects_first_value() {
        let p = JsonPathExpr::compile("$.order.items[*].sku").unwrap();
        let v = json!({"order": {"items": [{"sku": "A"}, {"sku": "B"}]}});
        assert_eq!(p.first(&v).unwrap(), Some(&json!("A")));
        assert_eq!(
            JsonPathExpr::compile("$.nope").unwrap().first(&v).unwrap(),
            None
        );
    }

    #[test]
    fn parse_errors_are_one_line_with_column() {
        let e = JsonPathExpr::compile("$.order[").unwrap_err();
        assert_eq!(
            e,
            "invalid JSONPath \"$.order[\": column 9: expected selector"
        );
        assert!(JsonPathExpr::compile("order.id")
            .unwrap_err()
            .contains("starts with `$`"));
    }
}
