//! Admin-edited TOML files (mapping files, the routing file): every problem found at once,
//! each named by file, line and dotted field path (`rule[2].keywords[0]`), and the pieces of a
//! document deserialized one table at a time so one bad table does not hide the others.

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::mapping::MappingProblem;

pub(crate) fn problem(
    file: &Path,
    line: Option<usize>,
    field: &str,
    message: String,
) -> MappingProblem {
    MappingProblem {
        file: file.to_path_buf(),
        line,
        field: field.to_owned(),
        message,
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_at(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Problem collector for one file.
pub(crate) struct Ctx<'a> {
    pub(crate) file: &'a Path,
    pub(crate) src: &'a str,
    /// The whole document, to name the field an error span falls in.
    index: DeTable<'a>,
    pub(crate) problems: Vec<MappingProblem>,
}

impl<'a> Ctx<'a> {
    /// Parses `src` (read from `file`): the problem collector and the document, or every
    /// syntax error.
    pub(crate) fn parse(
        file: &'a Path,
        src: &'a str,
    ) -> Result<(Ctx<'a>, Spanned<DeTable<'a>>), Vec<MappingProblem>> {
        let (root, syntax) = DeTable::parse_recoverable(src);
        if !syntax.is_empty() {
            return Err(syntax
                .iter()
                .map(|e| {
                    problem(
                        file,
                        e.span().map(|s| line_at(src, s.start)),
                        "",
                        format!("TOML syntax: {}", e.message().trim()),
                    )
                })
                .collect());
        }
        let ctx = Ctx {
            file,
            src,
            index: root.get_ref().clone(),
            problems: Vec::new(),
        };
        Ok((ctx, root))
    }

    /// A problem at a known line.
    pub(crate) fn push_line(&mut self, line: usize, field: &str, message: impl Into<String>) {
        self.problems
            .push(problem(self.file, Some(line), field, message.into()));
    }

    pub(crate) fn push(
        &mut self,
        span: Option<Range<usize>>,
        field: &str,
        message: impl Into<String>,
    ) {
        let line = span.map(|s| line_at(self.src, s.start));
        self.problems
            .push(problem(self.file, line, field, message.into()));
    }

    pub(crate) fn at<T>(&mut self, spanned: &Spanned<T>, field: &str, message: impl Into<String>) {
        self.push(Some(spanned.span()), field, message);
    }

    /// Whether a problem was already reported for `field` or inside it.
    pub(crate) fn has_problem_in(&self, field: &str) -> bool {
        self.problems.iter().any(|p| {
            p.field == field
                || p.field.starts_with(&format!("{field}."))
                || p.field.starts_with(&format!("{field}["))
        })
    }

    pub(crate) fn line(&self, span: &Range<usize>) -> usize {
        line_at(self.src, span.start)
    }

    /// A serde error: place it at its span and name the field the span falls in.
    pub(crate) fn serde_error(&mut self, e: &toml::de::Error, fallback_field: &str) {
        let message = e.message().trim().to_owned();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match (missing, e.span()) {
            (Some(name), _) if fallback_field.is_empty() => name.to_owned(),
            (Some(name), _) => format!("{fallback_field}.{name}"),
            (None, Some(span)) => {
                locate(&self.index, span.start, "").unwrap_or_else(|| fallback_field.to_owned())
            }
            (None, None) => fallback_field.to_owned(),
        };
        let span = e
            .span()
            .filter(|s| !(fallback_field.is_empty() && s.start == 0 && s.end == 0));
        self.push(span, &field, message);
    }
}

/// The dotted field path (`rule[1].keywords[0]`) whose key or value contains byte `pos`.
fn locate(table: &DeTable<'_>, pos: usize, prefix: &str) -> Option<String> {
    for (key, value) in table.iter() {
        let name = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if key.span().contains(&pos) {
            return Some(name);
        }
        match value.get_ref() {
            DeValue::Table(inner) => {
                if let Some(found) = locate(inner, pos, &name) {
                    return Some(found);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item_name = format!("{name}[{i}]");
                    if let DeValue::Table(inner) = item.get_ref() {
                        if let Some(found) = locate(inner, pos, &item_name) {
                            return Some(found);
                        }
                    }
                    if item.span().contains(&pos) {
                        return Some(item_name);
                    }
                }
            }
            _ => {}
        }
        if value.span().contains(&pos) {
            return Some(name);
        }
    }
    None
}

/// Reports and removes keys not in `allowed`, so serde goes on to find the next problem.
pub(crate) fn drop_unknown_keys(
    ctx: &mut Ctx<'_>,
    table: &mut DeTable<'_>,
    allowed: &[&str],
    prefix: &str,
) {
    let unknown: Vec<(String, Range<usize>)> = table
        .keys()
        .filter(|k| !allowed.contains(&k.get_ref().as_ref()))
        .map(|k| (k.get_ref().to_string(), k.span()))
        .collect();
    for (key, span) in unknown {
        let field = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        ctx.push(
            Some(span),
            &field,
            format!(
                "unknown key `{key}`; expected one of: {}",
                allowed.join(", ")
            ),
        );
        table.remove(key.as_str());
    }
}

/// Deserializes one table on its own, after reporting unknown keys.
pub(crate) fn piece<T: DeserializeOwned>(
    ctx: &mut Ctx<'_>,
    field: &str,
    item: Spanned<DeValue<'_>>,
    allowed: &[&str],
) -> Option<(T, Range<usize>)> {
    let span = item.span();
    let DeValue::Table(mut table) = item.into_inner() else {
        ctx.push(Some(span), field, "expected a table");
        return None;
    };
    drop_unknown_keys(ctx, &mut table, allowed, field);
    from_table(ctx, field, span, table)
}

pub(crate) fn from_table<T: DeserializeOwned>(
    ctx: &mut Ctx<'_>,
    field: &str,
    span: Range<usize>,
    table: DeTable<'_>,
) -> Option<(T, Range<usize>)> {
    match T::deserialize(ValueDeserializer::from(Spanned::new(
        span.clone(),
        DeValue::Table(table),
    ))) {
        Ok(value) => Some((value, span)),
        Err(e) => {
            ctx.serde_error(&e, field);
            None
        }
    }
}

/// The entries of an array of tables (`[[rule]]`), each with its field name.
pub(crate) fn array_items<'i>(
    ctx: &mut Ctx<'_>,
    key: &str,
    value: Option<Spanned<DeValue<'i>>>,
) -> Vec<(String, Spanned<DeValue<'i>>)> {
    let Some(value) = value else {
        return Vec::new();
    };
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| (format!("{key}[{i}]"), item))
            .collect(),
        _ => {
            ctx.push(
                Some(span),
                key,
                format!("expected an array of tables: write each entry as [[{key}]]"),
            );
            Vec::new()
        }
    }
}

/// A single table (`[hours]`), rejecting `[[hours]]`.
pub(crate) fn single_table<'i>(
    ctx: &mut Ctx<'_>,
    key: &str,
    value: Option<Spanned<DeValue<'i>>>,
) -> Option<Spanned<DeValue<'i>>> {
    let value = value?;
    if matches!(value.get_ref(), DeValue::Table(_)) {
        Some(value)
    } else {
        ctx.at(&value, key, format!("expected one table: write [{key}]"));
        None
    }
}
