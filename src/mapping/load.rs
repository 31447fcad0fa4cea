//! Loading: TOML text → spanned pieces → compiled [`Mapping`], collecting every problem.

use std::collections::BTreeMap;
use std::fs;
use std::ops::Range;
use std::path::Path;

use chrono::format::{Item, StrftimeItems};
use serde::Deserialize;
use serde_json::Value;
use toml::de::Deserializer;
use toml::Spanned;

use crate::tomlfile::{array_items, drop_unknown_keys, line_at, piece, problem, single_table, Ctx};

use super::path::JsonPathExpr;
use super::phone::PhoneRules;
use super::spec::{
    KeySpec, RawButton, RawCondition, RawExample, RawHead, RawOptIn, RawParam, BUTTON_KEYS,
    CONDITION_KEYS, EXAMPLE_KEYS, HEAD_KEYS, OPT_IN_KEYS, PARAM_KEYS, SECTION_KEYS,
};
use super::{
    Button, ButtonKind, Condition, ConditionTest, Example, Expectation, Mapping, MappingProblem,
    MappingSet, MediaKind, OptInRule, Param, ParamKind, ValueSource,
};

/// Default location of the event type in an event.
const DEFAULT_EVENT_PATH: &str = "$.event";

/// Loads every `*.toml` of `dir`; returns the mappings that loaded and all problems.
/// The routing file may sit beside the mapping files; it is not one of them.
pub const ROUTING_FILE: &str = "routing.toml";

pub(super) fn load_dir_partial(dir: &Path) -> (MappingSet, Vec<MappingProblem>) {
    let mut problems = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(problem(
                dir,
                None,
                "",
                format!("cannot read directory: {e}"),
            ));
            return (MappingSet::default(), problems);
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|ext| ext == "toml"))
        .filter(|p| p.file_name().is_none_or(|name| name != ROUTING_FILE))
        .collect();
    files.sort();
    let mut set = MappingSet::default();
    let mut names: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for file in files {
        match load_file(&file) {
            Ok(mapping) => {
                if let Some(first) = names.get(&mapping.name) {
                    problems.push(problem(
                        &file,
                        None,
                        "name",
                        format!(
                            "mapping name {:?} is already used by {}",
                            mapping.name,
                            first.display()
                        ),
                    ));
                } else {
                    names.insert(mapping.name.clone(), file.clone());
                    set.mappings.push(mapping);
                }
            }
            Err(mut file_problems) => problems.append(&mut file_problems),
        }
    }
    (set, problems)
}

/// Reads and compiles one file.
pub(super) fn load_file(path: &Path) -> Result<Mapping, Vec<MappingProblem>> {
    let src = fs::read_to_string(path)
        .map_err(|e| vec![problem(path, None, "", format!("cannot read file: {e}"))])?;
    parse_mapping(path, &src)
}

impl Ctx<'_> {
    /// Compiles a JSONPath, reporting a bad one at its place.
    fn path(&mut self, field: &str, text: &Spanned<String>) -> Option<JsonPathExpr> {
        match JsonPathExpr::compile(text.get_ref()) {
            Ok(p) => Some(p),
            Err(message) => {
                self.at(text, field, message);
                None
            }
        }
    }
}

/// Parses and compiles a mapping file's text.
pub(super) fn parse_mapping(file: &Path, src: &str) -> Result<Mapping, Vec<MappingProblem>> {
    let (mut ctx, root) = Ctx::parse(file, src)?;
    let root_span = root.span();
    let mut table = root.into_inner();
    let allowed: Vec<&str> = HEAD_KEYS.iter().chain(SECTION_KEYS).copied().collect();
    drop_unknown_keys(&mut ctx, &mut table, &allowed, "");

    let conditions_raw = array_items(&mut ctx, "condition", table.remove("condition"));
    let opt_in_raw = single_table(&mut ctx, "opt_in", table.remove("opt_in"));
    let header_raw = single_table(&mut ctx, "header", table.remove("header"));
    let body_raw = array_items(&mut ctx, "body", table.remove("body"));
    let buttons_raw = array_items(&mut ctx, "button", table.remove("button"));
    let examples_raw = array_items(&mut ctx, "example", table.remove("example"));

    let head = match RawHead::deserialize(Deserializer::from(Spanned::new(root_span, table))) {
        Ok(head) => Some(compile_head(&mut ctx, head)),
        Err(e) => {
            ctx.serde_error(&e, "");
            None
        }
    };

    let conditions: Vec<Option<Condition>> = conditions_raw
        .into_iter()
        .map(|(field, item)| {
            piece::<RawCondition>(&mut ctx, &field, item, CONDITION_KEYS)
                .and_then(|(raw, _)| compile_condition(&mut ctx, &field, raw))
        })
        .collect();
    let opt_in = opt_in_raw.map(|item| {
        piece::<RawOptIn>(&mut ctx, "opt_in", item, OPT_IN_KEYS)
            .and_then(|(raw, _)| compile_opt_in(&mut ctx, raw))
    });
    let header = header_raw.map(|item| {
        piece::<RawParam>(&mut ctx, "header", item, PARAM_KEYS)
            .and_then(|(raw, span)| compile_param(&mut ctx, "header", span, raw, Place::Header))
    });
    let body: Vec<Option<Param>> = body_raw
        .into_iter()
        .map(|(field, item)| {
            piece::<RawParam>(&mut ctx, &field, item, PARAM_KEYS)
                .and_then(|(raw, span)| compile_param(&mut ctx, &field, span, raw, Place::Body))
        })
        .collect();
    let buttons: Vec<Option<Button>> = buttons_raw
        .into_iter()
        .map(|(field, item)| {
            piece::<RawButton>(&mut ctx, &field, item, BUTTON_KEYS)
                .and_then(|(raw, span)| compile_button(&mut ctx, &field, span, raw))
        })
        .collect();
    let examples: Vec<Option<Example>> = examples_raw
        .into_iter()
        .map(|(field, item)| {
            piece::<RawExample>(&mut ctx, &field, item, EXAMPLE_KEYS)
                .and_then(|(raw, span)| compile_example(&mut ctx, &field, span, raw))
        })
        .collect();

    let header = header.flatten();
    let body: Option<Vec<Param>> = body.into_iter().collect();
    let buttons: Option<Vec<Button>> = buttons.into_iter().collect();
    if let (Some(body), Some(buttons)) = (&body, &buttons) {
        check_param_set(&mut ctx, header.as_ref(), body, buttons);
    }
    let conditions: Option<Vec<Condition>> = conditions.into_iter().collect();
    let examples: Option<Vec<Example>> = examples.into_iter().collect();
    let opt_in = opt_in.map(|o| o.ok_or(())).transpose();

    let mut problems = ctx.problems;
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(problems);
    }
    match (head.flatten(), conditions, opt_in, body, buttons, examples) {
        (Some(head), Some(conditions), Ok(opt_in), Some(body), Some(buttons), Some(examples)) => {
            Ok(Mapping {
                file: file.to_path_buf(),
                name: head.name.unwrap_or_else(|| file_stem(file)),
                description: head.description,
                source: head.source,
                event: head.event,
                template: head.template,
                language: head.language,
                template_line: head.template_line,
                event_path: head.event_path,
                conditions,
                recipient: head.recipient,
                phone: head.phone,
                idempotency_key: head.idempotency_key,
                opt_in,
                header,
                body,
                buttons,
                examples,
            })
        }
        _ => Err(vec![problem(
            file,
            None,
            "",
            "mapping could not be compiled".to_owned(),
        )]),
    }
}

fn file_stem(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The compiled top-level keys.
struct Head {
    name: Option<String>,
    description: Option<String>,
    source: String,
    event: Option<String>,
    event_path: JsonPathExpr,
    recipient: JsonPathExpr,
    phone: PhoneRules,
    template: String,
    template_line: usize,
    language: String,
    idempotency_key: Vec<JsonPathExpr>,
}

fn is_identifier(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || extra.contains(&c))
}

fn compile_head(ctx: &mut Ctx<'_>, raw: RawHead) -> Option<Head> {
    let before = ctx.problems.len();
    if let Some(name) = &raw.name {
        if !is_identifier(name.get_ref(), &['-', '.']) {
            ctx.at(
                name,
                "name",
                "use lowercase letters, digits, `_`, `-` and `.`",
            );
        }
    }
    if raw.source.get_ref().trim().is_empty() {
        ctx.at(&raw.source, "source", "must not be empty");
    }
    if let Some(event) = &raw.event {
        if event.get_ref().trim().is_empty() {
            ctx.at(
                event,
                "event",
                "must not be empty (leave it out to handle every event)",
            );
        }
    }
    let event_path = match &raw.event_path {
        Some(p) => ctx.path("event_path", p),
        None => JsonPathExpr::compile(DEFAULT_EVENT_PATH).ok(),
    };
    let recipient = ctx.path("recipient", &raw.recipient);
    if let Some(cc) = &raw.default_country_code {
        let digits = cc.get_ref();
        if !(1..=3).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            ctx.at(
                cc,
                "default_country_code",
                "a country calling code is 1 to 3 digits without `+` or `00`, e.g. \"968\"",
            );
        }
    }
    if let Some(n) = &raw.national_number_length {
        if !(4..=14).contains(n.get_ref()) {
            ctx.at(n, "national_number_length", "must be between 4 and 14");
        }
        if raw.default_country_code.is_none() {
            ctx.at(
                n,
                "national_number_length",
                "needs default_country_code (national numbers get that code)",
            );
        }
    }
    if !is_identifier(raw.template.get_ref(), &[]) {
        ctx.at(
            &raw.template,
            "template",
            "a template name is lowercase letters, digits and `_`",
        );
    }
    let language = raw.language.get_ref();
    if language.is_empty()
        || !language
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-')
    {
        ctx.at(
            &raw.language,
            "language",
            "a language code such as \"en_US\" or \"ar\"",
        );
    }
    let key_span = raw.idempotency_key.span();
    let key_texts = match raw.idempotency_key.into_inner() {
        KeySpec::One(one) => vec![one],
        KeySpec::Many(many) => many,
    };
    if key_texts.is_empty() {
        ctx.push(
            Some(key_span.clone()),
            "idempotency_key",
            "needs at least one JSONPath",
        );
    }
    let mut idempotency_key = Vec::new();
    for (i, text) in key_texts.iter().enumerate() {
        let field = if key_texts.len() == 1 {
            "idempotency_key".to_owned()
        } else {
            format!("idempotency_key[{i}]")
        };
        match JsonPathExpr::compile(text) {
            Ok(p) => idempotency_key.push(p),
            Err(message) => ctx.push(Some(key_span.clone()), &field, message),
        }
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(Head {
        name: raw.name.map(Spanned::into_inner),
        description: raw.description,
        source: raw.source.into_inner(),
        event: raw.event.map(Spanned::into_inner),
        event_path: event_path?,
        recipient: recipient?,
        phone: PhoneRules {
            default_country_code: raw.default_country_code.map(Spanned::into_inner),
            national_number_length: raw
                .national_number_length
                .map(|n| usize::from(*n.get_ref())),
        },
        template_line: ctx.line(&raw.template.span()),
        template: raw.template.into_inner(),
        language: raw.language.into_inner(),
        idempotency_key,
    })
}

/// Converts a TOML value given in a condition to JSON for comparison.
fn to_json(ctx: &mut Ctx<'_>, field: &str, value: &Spanned<toml::Value>) -> Option<Value> {
    match serde_json::to_value(value.get_ref()) {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.at(value, field, format!("cannot compare with this value: {e}"));
            None
        }
    }
}

fn to_json_list(
    ctx: &mut Ctx<'_>,
    field: &str,
    values: &Spanned<Vec<toml::Value>>,
) -> Option<Vec<Value>> {
    if values.get_ref().is_empty() {
        ctx.at(values, field, "must list at least one value");
        return None;
    }
    let converted: Result<Vec<Value>, _> =
        values.get_ref().iter().map(serde_json::to_value).collect();
    match converted {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.at(
                values,
                field,
                format!("cannot compare with these values: {e}"),
            );
            None
        }
    }
}

fn compile_condition(ctx: &mut Ctx<'_>, field: &str, raw: RawCondition) -> Option<Condition> {
    let path = ctx.path(&format!("{field}.path"), &raw.path);
    let given = [
        raw.equals.is_some(),
        raw.one_of.is_some(),
        raw.not_one_of.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given > 1 {
        ctx.at(
            &raw.path,
            field,
            "give at most one of equals, one_of, not_one_of (add another [[condition]] to combine)",
        );
        return None;
    }
    let test = if let Some(v) = &raw.equals {
        ConditionTest::Equals(to_json(ctx, &format!("{field}.equals"), v)?)
    } else if let Some(list) = &raw.one_of {
        ConditionTest::OneOf(to_json_list(ctx, &format!("{field}.one_of"), list)?)
    } else if let Some(list) = &raw.not_one_of {
        ConditionTest::NotOneOf(to_json_list(ctx, &format!("{field}.not_one_of"), list)?)
    } else {
        ConditionTest::Truthy
    };
    Some(Condition { path: path?, test })
}

fn compile_opt_in(ctx: &mut Ctx<'_>, raw: RawOptIn) -> Option<OptInRule> {
    let path = ctx.path("opt_in.path", &raw.path);
    if raw.evidence.get_ref().trim().is_empty() {
        ctx.at(
            &raw.evidence,
            "opt_in.evidence",
            "say where the customer opted in, e.g. \"checkout checkbox\"",
        );
        return None;
    }
    let equals = match &raw.equals {
        Some(v) => Some(to_json(ctx, "opt_in.equals", v)?),
        None => None,
    };
    Some(OptInRule {
        path: path?,
        equals,
        evidence: raw.evidence.into_inner(),
    })
}

/// Where a parameter sits: headers take text or media, bodies take text, currency, date_time.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Header,
    Body,
}

/// Exactly one of a JSONPath key and a literal key.
fn value_source(
    ctx: &mut Ctx<'_>,
    field: &str,
    span: &Range<usize>,
    (path_key, path): (&str, &Option<Spanned<String>>),
    (literal_key, literal): (&str, &Option<Spanned<String>>),
) -> Option<ValueSource> {
    match (path, literal) {
        (Some(p), None) => ctx
            .path(&format!("{field}.{path_key}"), p)
            .map(ValueSource::Path),
        (None, Some(l)) => Some(ValueSource::Literal(l.get_ref().clone())),
        (Some(p), Some(_)) => {
            ctx.at(
                p,
                field,
                format!(
                    "give either {path_key} (from the event) or {literal_key} (fixed), not both"
                ),
            );
            None
        }
        (None, None) => {
            ctx.push(
                Some(span.clone()),
                field,
                format!(
                    "needs {path_key} (JSONPath into the event) or {literal_key} (fixed value)"
                ),
            );
            None
        }
    }
}

fn compile_param(
    ctx: &mut Ctx<'_>,
    field: &str,
    span: Range<usize>,
    raw: RawParam,
    place: Place,
) -> Option<Param> {
    let before = ctx.problems.len();
    let kind_name = raw.kind.get_ref().as_str();
    let used: &[&str] = match kind_name {
        "text" => &["path", "text"],
        "currency" => &["amount_path", "code", "code_path", "fallback_path"],
        "date_time" => &["path", "text", "format"],
        "image" | "document" | "video" => &["path", "link"],
        other => {
            ctx.at(
                &raw.kind,
                &format!("{field}.type"),
                format!(
                    "unknown parameter type {other:?}; expected text, currency, date_time, image, document or video"
                ),
            );
            return None;
        }
    };
    let is_media = matches!(kind_name, "image" | "document" | "video");
    match place {
        Place::Header if matches!(kind_name, "currency" | "date_time") => ctx.at(
            &raw.kind,
            &format!("{field}.type"),
            format!("a header parameter is text, image, document or video, not {kind_name}"),
        ),
        Place::Body if is_media => ctx.at(
            &raw.kind,
            &format!("{field}.type"),
            format!(
                "{kind_name} goes in [header]; body parameters are text, currency or date_time"
            ),
        ),
        _ => {}
    }
    let present = [
        ("path", raw.path.as_ref().map(Spanned::span)),
        ("text", raw.text.as_ref().map(Spanned::span)),
        ("link", raw.link.as_ref().map(Spanned::span)),
        ("amount_path", raw.amount_path.as_ref().map(Spanned::span)),
        ("code", raw.code.as_ref().map(Spanned::span)),
        ("code_path", raw.code_path.as_ref().map(Spanned::span)),
        (
            "fallback_path",
            raw.fallback_path.as_ref().map(Spanned::span),
        ),
        ("format", raw.format.as_ref().map(Spanned::span)),
    ];
    for (key, key_span) in present {
        if let Some(key_span) = key_span {
            if !used.contains(&key) {
                ctx.push(
                    Some(key_span),
                    &format!("{field}.{key}"),
                    format!(
                        "not used by type {kind_name} (it takes {})",
                        used.join(", ")
                    ),
                );
            }
        }
    }
    let name = match &raw.name {
        Some(n) if is_media => {
            ctx.at(n, &format!("{field}.name"), "media parameters have no name");
            None
        }
        Some(n)
            if !is_identifier(n.get_ref(), &[])
                || n.get_ref().starts_with(|c: char| c.is_ascii_digit()) =>
        {
            ctx.at(
                n,
                &format!("{field}.name"),
                "a parameter name is lowercase letters, digits and `_`, not starting with a digit",
            );
            None
        }
        Some(n) => Some(n.get_ref().clone()),
        None => None,
    };
    let kind = match kind_name {
        "text" => value_source(ctx, field, &span, ("path", &raw.path), ("text", &raw.text))
            .map(ParamKind::Text),
        "currency" => {
            let amount = match &raw.amount_path {
                Some(p) => ctx.path(&format!("{field}.amount_path"), p),
                None => {
                    ctx.push(Some(span.clone()), field, "currency needs amount_path");
                    None
                }
            };
            if let Some(code) = &raw.code {
                if !is_currency_code(code.get_ref()) {
                    ctx.at(
                        code,
                        &format!("{field}.code"),
                        "an ISO 4217 code such as \"USD\"",
                    );
                }
            }
            let code = value_source(
                ctx,
                field,
                &span,
                ("code_path", &raw.code_path),
                ("code", &raw.code),
            );
            let fallback = match &raw.fallback_path {
                Some(p) => Some(ctx.path(&format!("{field}.fallback_path"), p)?),
                None => None,
            };
            match (amount, code) {
                (Some(amount), Some(code)) => Some(ParamKind::Currency {
                    amount,
                    code,
                    fallback,
                }),
                _ => None,
            }
        }
        "date_time" => {
            if let Some(format) = &raw.format {
                if format.get_ref().is_empty()
                    || StrftimeItems::new(format.get_ref()).any(|i| matches!(i, Item::Error))
                {
                    ctx.at(
                        format,
                        &format!("{field}.format"),
                        "not a valid strftime format (e.g. \"%A %-d %B, %H:%M\")",
                    );
                }
                if raw.path.is_none() {
                    ctx.at(
                        format,
                        &format!("{field}.format"),
                        "format applies to a path value",
                    );
                }
            }
            value_source(ctx, field, &span, ("path", &raw.path), ("text", &raw.text)).map(|value| {
                ParamKind::DateTime {
                    value,
                    format: raw.format.as_ref().map(|f| f.get_ref().clone()),
                }
            })
        }
        _ => {
            let kind = match kind_name {
                "image" => MediaKind::Image,
                "document" => MediaKind::Document,
                _ => MediaKind::Video,
            };
            if let Some(link) = &raw.link {
                if !is_http_url(link.get_ref()) {
                    ctx.at(
                        link,
                        &format!("{field}.link"),
                        "a media link is an https:// URL",
                    );
                }
            }
            value_source(ctx, field, &span, ("path", &raw.path), ("link", &raw.link))
                .map(|link| ParamKind::Media { kind, link })
        }
    };
    if ctx.problems.len() > before {
        return None;
    }
    Some(Param {
        field: field.to_owned(),
        line: ctx.line(&span),
        name,
        kind: kind?,
    })
}

pub(super) fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

pub(super) fn is_http_url(link: &str) -> bool {
    (link.starts_with("https://") || link.starts_with("http://")) && link.len() > "https://".len()
}

fn compile_button(
    ctx: &mut Ctx<'_>,
    field: &str,
    span: Range<usize>,
    raw: RawButton,
) -> Option<Button> {
    let before = ctx.problems.len();
    let index = *raw.index.get_ref();
    if !(0..=9).contains(&index) {
        ctx.at(
            &raw.index,
            &format!("{field}.index"),
            "a button index is 0 to 9",
        );
    }
    let kind = match raw.sub_type.get_ref().as_str() {
        "url" => {
            if let Some(p) = &raw.payload {
                ctx.at(
                    p,
                    &format!("{field}.payload"),
                    "a url button takes path or text (the URL suffix), not payload",
                );
            }
            value_source(ctx, field, &span, ("path", &raw.path), ("text", &raw.text))
                .map(ButtonKind::Url)
        }
        "quick_reply" => {
            if let Some(t) = &raw.text {
                ctx.at(
                    t,
                    &format!("{field}.text"),
                    "a quick_reply button takes path or payload, not text",
                );
            }
            value_source(
                ctx,
                field,
                &span,
                ("path", &raw.path),
                ("payload", &raw.payload),
            )
            .map(ButtonKind::QuickReply)
        }
        other => {
            ctx.at(
                &raw.sub_type,
                &format!("{field}.sub_type"),
                format!("unknown button sub_type {other:?}; expected url or quick_reply"),
            );
            None
        }
    };
    if ctx.problems.len() > before {
        return None;
    }
    Some(Button {
        field: field.to_owned(),
        line: ctx.line(&span),
        index: usize::try_from(index).ok()?,
        kind: kind?,
    })
}

/// Header and body together: named or positional, not both; names unique; button indexes unique.
fn check_param_set(ctx: &mut Ctx<'_>, header: Option<&Param>, body: &[Param], buttons: &[Button]) {
    let texty: Vec<&Param> = header
        .into_iter()
        .chain(body)
        .filter(|p| !matches!(p.kind, ParamKind::Media { .. }))
        .collect();
    let named = texty.iter().filter(|p| p.name.is_some()).count();
    if named > 0 && named < texty.len() {
        for p in texty.iter().filter(|p| p.name.is_none()) {
            ctx.push_line(
                p.line,
                &p.field,
                "has no name while other parameters do: a template's parameters are all named or all positional",
            );
        }
    }
    let mut seen = BTreeMap::new();
    for p in &texty {
        if let Some(name) = &p.name {
            if let Some(first) = seen.insert(name.clone(), p.field.clone()) {
                ctx.push_line(
                    p.line,
                    &p.field,
                    format!("parameter name {name:?} is also used by {first}"),
                );
            }
        }
    }
    let mut indexes = BTreeMap::new();
    for b in buttons {
        if let Some(first) = indexes.insert(b.index, b.field.clone()) {
            ctx.push_line(
                b.line,
                &b.field,
                format!("index {} is also used by {first}", b.index),
            );
        }
    }
}

/// Line where the content of a TOML string starts (after `'''` and its trimmed newline).
fn content_line(src: &str, span: &Range<usize>) -> usize {
    let line = line_at(src, span.start);
    let text = src.get(span.start..).unwrap_or("");
    let after = if text.starts_with("'''") || text.starts_with("\"\"\"") {
        &text[3..]
    } else {
        return line;
    };
    if after.starts_with('\n') || after.starts_with("\r\n") {
        line + 1
    } else {
        line
    }
}

/// Parses JSON held in a TOML string, reporting errors at the line inside the file.
fn json_in_toml(ctx: &mut Ctx<'_>, field: &str, text: &Spanned<String>) -> Option<Value> {
    match serde_json::from_str(text.get_ref()) {
        Ok(v) => Some(v),
        Err(e) => {
            let line = content_line(ctx.src, &text.span()) + e.line().saturating_sub(1);
            ctx.problems.push(problem(
                ctx.file,
                Some(line),
                field,
                format!("invalid JSON: {e}"),
            ));
            None
        }
    }
}

fn compile_example(
    ctx: &mut Ctx<'_>,
    field: &str,
    span: Range<usize>,
    raw: RawExample,
) -> Option<Example> {
    let event = json_in_toml(ctx, &format!("{field}.event"), &raw.event);
    let given = [
        raw.expect_request.is_some(),
        raw.expect_skip.is_some(),
        raw.expect_invalid.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        ctx.push(
            Some(span.clone()),
            field,
            "give exactly one of expect_request, expect_skip, expect_invalid",
        );
        return None;
    }
    let expect = if let Some(request) = &raw.expect_request {
        Expectation::Request(json_in_toml(
            ctx,
            &format!("{field}.expect_request"),
            request,
        )?)
    } else if let Some(reason) = &raw.expect_skip {
        Expectation::Skip(reason.get_ref().clone())
    } else if let Some(reason) = &raw.expect_invalid {
        Expectation::Invalid(reason.get_ref().clone())
    } else {
        return None;
    };
    if raw.expect_idempotency_key.is_some() && !matches!(expect, Expectation::Request(_)) {
        ctx.push(
            Some(span.clone()),
            &format!("{field}.expect_idempotency_key"),
            "only meaningful with expect_request",
        );
    }
    Some(Example {
        field: field.to_owned(),
        line: ctx.line(&span),
        name: raw.name,
        event: event?,
        expect,
        idempotency_key: raw.expect_idempotency_key.map(Spanned::into_inner),
    })
}
