//! Loading: TOML text → spanned pieces → compiled [`Routing`], collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use toml::de::{DeValue, Deserializer};
use toml::Spanned;

use crate::tomlfile::{
    array_items, drop_unknown_keys, from_table, piece, problem, single_table, Ctx,
};

use super::country;
use super::example::{Example, Expect};
use super::hours::{parse_holiday, BusinessHours, Span, DAY_KEYS};
use super::menu::{Menu, MenuOption, MenuStyle};
use super::reply::{limits, ReplyDef, ReplyKind};
use super::rules::{Actions, Conditions, Handover, Rule, DEFAULT_HANDOVER_KEYWORDS};
use super::spec::{
    HandoverSpec, OneOrMany, RawAway, RawButton, RawDepartment, RawExample, RawExampleState,
    RawHandover, RawHead, RawHours, RawMenu, RawOption, RawReply, RawRow, RawRule, ACTION_KEYS,
    AWAY_KEYS, DEPARTMENT_KEYS, EXAMPLE_KEYS, HANDOVER_KEYS, HEAD_KEYS, HOURS_KEYS, MENU_KEYS,
    OPTION_KEYS, REPLY_KEYS, RULE_KEYS, SECTION_KEYS,
};
use super::text::{
    compile_regex, fold, Keyword, Lang, LocalStr, LocalText, RenderCtx, Template, Value,
    BUILT_IN_PLACEHOLDERS,
};
use super::{
    Away, ConversationState, Department, Escalation, MappingProblem, MenuPosition, Priority,
    Routing,
};

/// Meta's inbound message types, for `message_type` conditions.
const MESSAGE_TYPES: &[&str] = &[
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "interactive",
    "button",
    "reaction",
    "order",
    "system",
    "request_welcome",
    "unsupported",
];

/// Defaults of `[away]`.
const DEFAULT_AWAY_EVERY_HOURS: i64 = 24;
const DEFAULT_QUIET_AFTER_AGENT_MINUTES: i64 = 120;
/// Defaults of `[menu.<name>]`.
const DEFAULT_MAX_INVALID: i64 = 3;
const DEFAULT_EXPIRE_MINUTES: i64 = 30;
const DEFAULT_EXIT_KEY: &str = "0";
const DEFAULT_EXIT_LABEL: (&str, &str) = ("Talk to a person", "التحدث مع موظف");
const DEFAULT_LIST_BUTTON: (&str, &str) = ("Choose", "اختر");
const DEFAULT_INVALID: (&str, &str) = (
    "Sorry, I didn't understand that. Please choose one of the options.",
    "عذرًا، لم أفهم. يرجى اختيار أحد الخيارات.",
);

/// The entries of a table of named tables (`[menu.main]`): (name, field, key span, value).
fn named_tables<'i>(
    ctx: &mut Ctx<'_>,
    key: &str,
    value: Option<Spanned<DeValue<'i>>>,
) -> Vec<(String, String, Range<usize>, Spanned<DeValue<'i>>)> {
    let Some(value) = value else {
        return Vec::new();
    };
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(table) => table
            .into_iter()
            .map(|(name, item)| {
                let name_span = name.span();
                let name = name.into_inner().to_string();
                (name.clone(), format!("{key}.{name}"), name_span, item)
            })
            .collect(),
        _ => {
            ctx.push(
                Some(span),
                key,
                format!("expected tables: write each entry as [{key}.<name>]"),
            );
            Vec::new()
        }
    }
}

/// Names: lowercase letters, digits, `-` and `_`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Everything compiled so far that later pieces refer to.
struct Known {
    departments: BTreeSet<String>,
    replies: BTreeSet<String>,
    menus: BTreeSet<String>,
    values: BTreeMap<String, Value>,
    hours: Option<BusinessHours>,
}

impl Known {
    fn list(set: &BTreeSet<String>) -> String {
        if set.is_empty() {
            "none defined".to_owned()
        } else {
            format!(
                "defined: {}",
                set.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        }
    }

    /// A render context for length checks.
    fn render_ctx(&self, lang: Lang) -> RenderCtx<'_> {
        RenderCtx {
            lang,
            values: &self.values,
            hours: self.hours.as_ref(),
            now: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

/// Parses and compiles a routing file's text.
pub(super) fn parse_routing(file: &Path, src: &str) -> Result<Routing, Vec<MappingProblem>> {
    let (mut ctx, root) = Ctx::parse(file, src)?;
    let root_span = root.span();
    let mut table = root.into_inner();
    let allowed: Vec<&str> = HEAD_KEYS.iter().chain(SECTION_KEYS).copied().collect();
    drop_unknown_keys(&mut ctx, &mut table, &allowed, "");

    let departments_raw = named_tables(&mut ctx, "department", table.remove("department"));
    let values_raw = single_table(&mut ctx, "values", table.remove("values"));
    let hours_raw = single_table(&mut ctx, "hours", table.remove("hours"));
    let away_raw = single_table(&mut ctx, "away", table.remove("away"));
    let handover_raw = single_table(&mut ctx, "handover", table.remove("handover"));
    let replies_raw = named_tables(&mut ctx, "reply", table.remove("reply"));
    let menus_raw = named_tables(&mut ctx, "menu", table.remove("menu"));
    let rules_raw = array_items(&mut ctx, "rule", table.remove("rule"));
    let examples_raw = array_items(&mut ctx, "example", table.remove("example"));

    let head = match RawHead::deserialize(Deserializer::from(Spanned::new(root_span, table))) {
        Ok(head) => Some(head),
        Err(e) => {
            ctx.serde_error(&e, "");
            None
        }
    };

    let department_keys: BTreeSet<String> =
        departments_raw.iter().map(|(k, ..)| k.clone()).collect();
    let mut departments = BTreeMap::new();
    for (key, field, key_span, item) in departments_raw {
        if !is_name(&key) {
            ctx.push(
                Some(key_span),
                &field,
                "a department key is lowercase letters, digits, `-` and `_`",
            );
        }
        if let Some(department) = piece::<RawDepartment>(&mut ctx, &field, item, DEPARTMENT_KEYS)
            .and_then(|(raw, _)| compile_department(&mut ctx, &field, &key, raw))
        {
            departments.insert(key, department);
        }
    }
    let mut known = Known {
        departments: department_keys,
        replies: replies_raw.iter().map(|(n, ..)| n.clone()).collect(),
        menus: menus_raw.iter().map(|(n, ..)| n.clone()).collect(),
        values: values_raw
            .map(|v| compile_values(&mut ctx, v))
            .unwrap_or_default(),
        hours: None,
    };
    known.hours = hours_raw.and_then(|item| {
        piece::<RawHours>(&mut ctx, "hours", item, HOURS_KEYS)
            .and_then(|(raw, span)| compile_hours(&mut ctx, raw, span))
    });

    let (default_language, default_department) = match head {
        Some(head) => compile_head(&mut ctx, &known, head),
        None => (Lang::En, None),
    };

    let away = away_raw.and_then(|item| {
        piece::<RawAway>(&mut ctx, "away", item, AWAY_KEYS)
            .and_then(|(raw, span)| compile_away(&mut ctx, &known, raw, span))
    });
    let handover = match handover_raw {
        Some(item) => piece::<RawHandover>(&mut ctx, "handover", item, HANDOVER_KEYS)
            .and_then(|(raw, span)| compile_handover(&mut ctx, &known, raw, span)),
        None => default_handover(),
    };

    let mut replies = BTreeMap::new();
    for (name, field, name_span, item) in replies_raw {
        if !is_name(&name) {
            ctx.push(
                Some(name_span),
                &field,
                "a reply name is lowercase letters, digits, `-` and `_`",
            );
        }
        if let Some(reply) = piece::<RawReply>(&mut ctx, &field, item, REPLY_KEYS)
            .and_then(|(raw, _)| compile_reply(&mut ctx, &known, &field, raw))
        {
            replies.insert(name, reply);
        }
    }

    let mut menus = BTreeMap::new();
    for (name, field, name_span, item) in menus_raw {
        if !is_name(&name) {
            ctx.push(
                Some(name_span),
                &field,
                "a menu name is lowercase letters, digits, `-` and `_`",
            );
        }
        if let Some(menu) = compile_menu(&mut ctx, &known, &name, &field, item) {
            menus.insert(name, menu);
        }
    }

    let mut rules = Vec::new();
    let mut rule_names: BTreeMap<String, String> = BTreeMap::new();
    for (field, item) in rules_raw {
        let Some((raw, span)) = piece::<RawRule>(&mut ctx, &field, item, &rule_keys()) else {
            continue;
        };
        let name = raw.name.get_ref().clone();
        if let Some(first) = rule_names.get(&name) {
            ctx.at(
                &raw.name,
                &format!("{field}.name"),
                format!("rule name {name:?} is also used by {first}"),
            );
        } else {
            rule_names.insert(name, field.clone());
        }
        if let Some(rule) = compile_rule(&mut ctx, &known, &field, raw, span) {
            rules.push(rule);
        }
    }

    let mut examples = Vec::new();
    for (field, item) in examples_raw {
        if let Some(example) = piece::<RawExample>(&mut ctx, &field, item, EXAMPLE_KEYS)
            .and_then(|(raw, span)| compile_example(&mut ctx, &known, &field, raw, span))
        {
            examples.push(example);
        }
    }

    let mut problems = ctx.problems;
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(problems);
    }
    let Some(handover) = handover else {
        return Err(vec![problem(
            file,
            None,
            "",
            "routing file could not be compiled".to_owned(),
        )]);
    };
    Ok(Routing {
        file: file.to_path_buf(),
        default_language,
        default_department,
        departments,
        values: known.values,
        hours: known.hours,
        away,
        handover,
        replies,
        menus,
        rules,
        examples,
    })
}

fn rule_keys() -> Vec<&'static str> {
    RULE_KEYS.iter().chain(ACTION_KEYS).copied().collect()
}

fn option_keys() -> Vec<&'static str> {
    OPTION_KEYS.iter().chain(ACTION_KEYS).copied().collect()
}

fn compile_head(ctx: &mut Ctx<'_>, known: &Known, head: RawHead) -> (Lang, Option<String>) {
    let language = match &head.default_language {
        Some(l) if l.get_ref() == "ar" => Lang::Ar,
        Some(l) if l.get_ref() == "en" => Lang::En,
        Some(l) => {
            ctx.at(l, "default_language", "\"en\" or \"ar\"");
            Lang::En
        }
        None => Lang::En,
    };
    let department = head.default_department.and_then(|d| {
        if known.departments.contains(d.get_ref()) {
            Some(d.into_inner())
        } else {
            ctx.at(
                &d,
                "default_department",
                format!(
                    "unknown department {:?}; {}",
                    d.get_ref(),
                    Known::list(&known.departments)
                ),
            );
            None
        }
    });
    (language, department)
}

fn compile_department(
    ctx: &mut Ctx<'_>,
    field: &str,
    key: &str,
    raw: RawDepartment,
) -> Option<Department> {
    let before = ctx.problems.len();
    if raw.name.get_ref().trim().is_empty() {
        ctx.at(&raw.name, &format!("{field}.name"), "must not be empty");
    }
    let targets_span = raw.targets.as_ref().map(Spanned::span);
    let targets = raw.targets.map(Spanned::into_inner).unwrap_or_default();
    for (system, target) in &targets {
        if !is_name(system) || target.trim().is_empty() {
            ctx.push(
                targets_span.clone(),
                &format!("{field}.targets.{system}"),
                "targets maps a connector name (lowercase) to a non-empty queue, group or owner",
            );
        }
    }
    (ctx.problems.len() == before).then(|| Department {
        key: key.to_owned(),
        name: raw.name.into_inner(),
        targets,
    })
}

fn compile_values(ctx: &mut Ctx<'_>, item: Spanned<DeValue<'_>>) -> BTreeMap<String, Value> {
    let span = item.span();
    let DeValue::Table(table) = item.into_inner() else {
        return BTreeMap::new();
    };
    let Some((raw, _)) =
        from_table::<BTreeMap<String, Spanned<String>>>(ctx, "values", span, table)
    else {
        return BTreeMap::new();
    };
    let mut values = BTreeMap::new();
    for (name, text) in &raw {
        let field = format!("values.{name}");
        if let Some(base) = name.strip_suffix("_ar") {
            if !raw.contains_key(base) {
                ctx.at(
                    text,
                    &field,
                    format!("an Arabic value needs its English one: add {base} = \"…\""),
                );
            }
            continue;
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || name.starts_with(|c: char| c.is_ascii_digit())
        {
            ctx.at(
                text,
                &field,
                "a value name is lowercase letters, digits and `_`",
            );
            continue;
        }
        if BUILT_IN_PLACEHOLDERS.contains(&name.as_str()) {
            ctx.at(
                text,
                &field,
                format!("{{{name}}} is built in (from [hours]); choose another name"),
            );
            continue;
        }
        values.insert(
            name.clone(),
            Value {
                en: text.get_ref().clone(),
                ar: raw.get(&format!("{name}_ar")).map(|t| t.get_ref().clone()),
            },
        );
    }
    values
}

fn compile_hours(ctx: &mut Ctx<'_>, raw: RawHours, span: Range<usize>) -> Option<BusinessHours> {
    let before = ctx.problems.len();
    let tz = match raw.timezone.get_ref().parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            ctx.at(
                &raw.timezone,
                "hours.timezone",
                format!(
                    "unknown time zone {:?}; use an IANA name such as \"Asia/Muscat\"",
                    raw.timezone.get_ref()
                ),
            );
            None
        }
    };
    let days = [
        raw.sunday,
        raw.monday,
        raw.tuesday,
        raw.wednesday,
        raw.thursday,
        raw.friday,
        raw.saturday,
    ];
    let mut week: [Vec<Span>; 7] = Default::default();
    for ((day, key), spans) in days.into_iter().zip(DAY_KEYS).zip(week.iter_mut()) {
        let Some(day) = day else { continue };
        let field = format!("hours.{key}");
        let span_of_day = day.span();
        for text in day.into_inner().into_vec() {
            match Span::parse(&text) {
                Ok(s) => spans.push(s),
                Err(message) => ctx.push(Some(span_of_day.clone()), &field, message),
            }
        }
    }
    let mut holidays = Vec::new();
    for (i, text) in raw.holidays.unwrap_or_default().iter().enumerate() {
        match parse_holiday(text.get_ref()) {
            Ok(range) => holidays.push(range),
            Err(message) => ctx.at(text, &format!("hours.holidays[{i}]"), message),
        }
    }
    let hours = BusinessHours::new(tz?, week, holidays);
    if !hours.has_any_hours() {
        ctx.push(
            Some(span),
            "hours",
            "no opening hours on any day: give e.g. sunday = \"08:00-17:00\" (or leave [hours] out)",
        );
    }
    (ctx.problems.len() == before).then_some(hours)
}

/// Parses `text` (and `text_ar`) as templates.
fn local_text(
    ctx: &mut Ctx<'_>,
    known: &Known,
    field: &str,
    (key, en): (&str, &Spanned<String>),
    ar: Option<&Spanned<String>>,
) -> Option<LocalText> {
    let mut parse = |key: String, text: &Spanned<String>| -> Option<Template> {
        let field = format!("{field}.{key}");
        if text.get_ref().trim().is_empty() {
            ctx.at(text, &field, "must not be empty");
            return None;
        }
        match Template::parse(text.get_ref(), &known.values, known.hours.is_some()) {
            Ok(t) => Some(t),
            Err(message) => {
                ctx.at(text, &field, message);
                None
            }
        }
    };
    let en_t = parse(key.to_owned(), en);
    let ar_t = match ar {
        Some(ar) => Some(parse(format!("{key}_ar"), ar)?),
        None => None,
    };
    Some(LocalText {
        en: en_t?,
        ar: ar_t,
    })
}

/// A label and its Arabic version, each at most `max` characters.
fn local_str(
    ctx: &mut Ctx<'_>,
    field: &str,
    (key, en): (&str, &Spanned<String>),
    ar: Option<&Spanned<String>>,
    max: Option<(usize, &str)>,
) -> Option<LocalStr> {
    let before = ctx.problems.len();
    let checks =
        std::iter::once((key.to_owned(), en)).chain(ar.map(|ar| (format!("{key}_ar"), ar)));
    for (key, text) in checks {
        let field = format!("{field}.{key}");
        let chars = text.get_ref().chars().count();
        if text.get_ref().trim().is_empty() {
            ctx.at(text, &field, "must not be empty");
        } else if let Some((max, what)) = max {
            if chars > max {
                ctx.at(
                    text,
                    &field,
                    format!("is {chars} characters; WhatsApp allows at most {max} for {what}"),
                );
            }
        }
    }
    (ctx.problems.len() == before)
        .then(|| LocalStr::new(en.get_ref(), ar.map(|a| a.get_ref().as_str())))
}

fn check_body(
    ctx: &mut Ctx<'_>,
    known: &Known,
    field: &str,
    at: &Range<usize>,
    chars: impl Fn(&RenderCtx<'_>) -> usize,
    max: usize,
    what: &str,
) {
    let longest = [Lang::En, Lang::Ar]
        .into_iter()
        .map(|lang| chars(&known.render_ctx(lang)))
        .max()
        .unwrap_or(0);
    if longest > max {
        ctx.push(
            Some(at.clone()),
            field,
            format!(
                "renders to up to {longest} characters; WhatsApp allows at most {max} for {what}"
            ),
        );
    }
}

fn compile_away(
    ctx: &mut Ctx<'_>,
    known: &Known,
    raw: RawAway,
    span: Range<usize>,
) -> Option<Away> {
    let before = ctx.problems.len();
    if known.hours.is_none() {
        ctx.push(
            Some(span),
            "away",
            "needs an [hours] section: the away message is sent outside business hours",
        );
    }
    let text = local_text(
        ctx,
        known,
        "away",
        ("text", &raw.text),
        raw.text_ar.as_ref(),
    );
    let every = positive(
        ctx,
        "away.away_every_hours",
        raw.away_every_hours.as_ref(),
        DEFAULT_AWAY_EVERY_HOURS,
        (1, 24 * 30),
    );
    let quiet = positive(
        ctx,
        "away.quiet_after_agent_minutes",
        raw.quiet_after_agent_minutes.as_ref(),
        DEFAULT_QUIET_AFTER_AGENT_MINUTES,
        (0, 60 * 24 * 7),
    );
    if let Some(text) = &text {
        check_body(
            ctx,
            known,
            "away.text",
            &raw.text.span(),
            |r| text.max_chars(r),
            limits::TEXT_BODY,
            "a text message",
        );
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(Away {
        text: text?,
        every: Duration::hours(every),
        quiet_after_agent: Duration::minutes(quiet),
    })
}

/// An integer setting within `min..=max`, or its default.
fn positive(
    ctx: &mut Ctx<'_>,
    field: &str,
    value: Option<&Spanned<i64>>,
    default: i64,
    (min, max): (i64, i64),
) -> i64 {
    match value {
        Some(v) if (min..=max).contains(v.get_ref()) => *v.get_ref(),
        Some(v) => {
            ctx.at(v, field, format!("must be between {min} and {max}"));
            default
        }
        None => default,
    }
}

fn keywords(ctx: &mut Ctx<'_>, field: &str, list: &[Spanned<String>]) -> Vec<Keyword> {
    list.iter()
        .enumerate()
        .filter_map(|(i, k)| match Keyword::compile(k.get_ref()) {
            Ok(k) => Some(k),
            Err(message) => {
                ctx.at(k, &format!("{field}[{i}]"), message);
                None
            }
        })
        .collect()
}

fn priority(ctx: &mut Ctx<'_>, field: &str, value: Option<&Spanned<String>>) -> Option<Priority> {
    let value = value?;
    let parsed = Priority::parse(value.get_ref());
    if parsed.is_none() {
        ctx.at(
            value,
            field,
            format!(
                "unknown priority {:?}; expected low, normal, high or urgent",
                value.get_ref()
            ),
        );
    }
    parsed
}

fn tags(ctx: &mut Ctx<'_>, field: &str, value: Option<Spanned<Vec<String>>>) -> Vec<String> {
    let Some(value) = value else {
        return Vec::new();
    };
    for tag in value.get_ref() {
        if tag.is_empty() || tag.chars().any(char::is_whitespace) {
            ctx.at(
                &value,
                field,
                format!("tag {tag:?}: a tag is one word without spaces (use `-` or `_`)"),
            );
        }
    }
    value.into_inner()
}

fn default_handover() -> Option<Handover> {
    Some(Handover {
        line: 0,
        keywords: DEFAULT_HANDOVER_KEYWORDS
            .iter()
            .filter_map(|k| Keyword::compile(k).ok())
            .collect(),
        text: None,
        tags: Vec::new(),
        priority: None,
    })
}

fn compile_handover(
    ctx: &mut Ctx<'_>,
    known: &Known,
    raw: RawHandover,
    span: Range<usize>,
) -> Option<Handover> {
    let before = ctx.problems.len();
    let keywords = match &raw.keywords {
        Some(list) if list.is_empty() => {
            ctx.push(
                Some(span.clone()),
                "handover.keywords",
                "must list at least one word: customers must always be able to reach a person",
            );
            Vec::new()
        }
        Some(list) => keywords(ctx, "handover.keywords", list),
        None => default_handover()?.keywords,
    };
    let text = match &raw.text {
        Some(text) => local_text(ctx, known, "handover", ("text", text), raw.text_ar.as_ref()),
        None => {
            if let Some(ar) = &raw.text_ar {
                ctx.at(ar, "handover.text_ar", "needs text (the English version)");
            }
            None
        }
    };
    let priority = priority(ctx, "handover.priority", raw.priority.as_ref());
    let tags = tags(ctx, "handover.tags", raw.tags);
    (ctx.problems.len() == before).then(|| Handover {
        line: ctx.line(&span),
        keywords,
        text,
        tags,
        priority,
    })
}

fn compile_reply(ctx: &mut Ctx<'_>, known: &Known, field: &str, raw: RawReply) -> Option<ReplyDef> {
    let before = ctx.problems.len();
    let text = local_text(ctx, known, field, ("text", &raw.text), raw.text_ar.as_ref());
    let kind = match (&raw.buttons, &raw.rows) {
        (Some(_), Some(rows)) => {
            ctx.at(
                rows,
                &format!("{field}.rows"),
                "give buttons or rows (a list), not both",
            );
            None
        }
        (Some(buttons), None) => reply_buttons(ctx, field, buttons),
        (None, Some(rows)) => reply_list(ctx, field, &raw, rows),
        (None, None) => {
            for (key, value) in [
                ("list_button", &raw.list_button),
                ("list_button_ar", &raw.list_button_ar),
                ("section_title", &raw.section_title),
                ("section_title_ar", &raw.section_title_ar),
            ] {
                if let Some(value) = value {
                    ctx.at(
                        value,
                        &format!("{field}.{key}"),
                        "only used with rows (a list)",
                    );
                }
            }
            Some(ReplyKind::Text)
        }
    };
    if let (Some(text), Some(kind)) = (&text, &kind) {
        let (max, what) = match kind {
            ReplyKind::Text => (limits::TEXT_BODY, "a text message"),
            _ => (limits::INTERACTIVE_BODY, "an interactive message body"),
        };
        check_body(
            ctx,
            known,
            &format!("{field}.text"),
            &raw.text.span(),
            |r| text.max_chars(r),
            max,
            what,
        );
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(ReplyDef {
        text: text?,
        kind: kind?,
    })
}

fn check_id(ctx: &mut Ctx<'_>, field: &str, id: &Spanned<String>, seen: &mut BTreeSet<String>) {
    let text = id.get_ref();
    if text.trim().is_empty() || text.chars().count() > limits::ID {
        ctx.at(
            id,
            field,
            format!("an id is 1 to {} characters", limits::ID),
        );
    } else if !seen.insert(text.clone()) {
        ctx.at(id, field, format!("id {text:?} is used twice"));
    }
}

fn reply_buttons(
    ctx: &mut Ctx<'_>,
    field: &str,
    buttons: &Spanned<Vec<Spanned<RawButton>>>,
) -> Option<ReplyKind> {
    let before = ctx.problems.len();
    let list = buttons.get_ref();
    if list.is_empty() || list.len() > limits::BUTTONS {
        ctx.at(
            buttons,
            &format!("{field}.buttons"),
            format!(
                "has {} buttons; WhatsApp allows 1 to {} reply buttons",
                list.len(),
                limits::BUTTONS
            ),
        );
    }
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, button) in list.iter().enumerate() {
        let b = button.get_ref();
        let field = format!("{field}.buttons[{i}]");
        check_id(ctx, &format!("{field}.id"), &b.id, &mut ids);
        if let Some(title) = local_str(
            ctx,
            &field,
            ("title", &b.title),
            b.title_ar.as_ref(),
            Some((limits::BUTTON_TITLE, "a button title")),
        ) {
            out.push((b.id.get_ref().clone(), title));
        }
    }
    (ctx.problems.len() == before).then_some(ReplyKind::Buttons(out))
}

fn reply_list(
    ctx: &mut Ctx<'_>,
    field: &str,
    raw: &RawReply,
    rows: &Spanned<Vec<Spanned<RawRow>>>,
) -> Option<ReplyKind> {
    let before = ctx.problems.len();
    let list = rows.get_ref();
    if list.is_empty() || list.len() > limits::LIST_ROWS {
        ctx.at(
            rows,
            &format!("{field}.rows"),
            format!(
                "has {} rows; WhatsApp allows 1 to {} rows in a list",
                list.len(),
                limits::LIST_ROWS
            ),
        );
    }
    let button = match &raw.list_button {
        Some(b) => local_str(
            ctx,
            field,
            ("list_button", b),
            raw.list_button_ar.as_ref(),
            Some((limits::LIST_BUTTON, "the list button")),
        ),
        None => {
            ctx.at(
                rows,
                &format!("{field}.list_button"),
                "a list needs list_button: the text of the button that opens it",
            );
            None
        }
    };
    let section = match &raw.section_title {
        Some(t) => Some(local_str(
            ctx,
            field,
            ("section_title", t),
            raw.section_title_ar.as_ref(),
            Some((limits::SECTION_TITLE, "a section title")),
        )?),
        None => None,
    };
    let mut ids = BTreeSet::new();
    let mut out = Vec::new();
    for (i, row) in list.iter().enumerate() {
        let r = row.get_ref();
        let field = format!("{field}.rows[{i}]");
        check_id(ctx, &format!("{field}.id"), &r.id, &mut ids);
        let title = local_str(
            ctx,
            &field,
            ("title", &r.title),
            r.title_ar.as_ref(),
            Some((limits::ROW_TITLE, "a list row title")),
        );
        let description = match &r.description {
            Some(d) => local_str(
                ctx,
                &field,
                ("description", d),
                r.description_ar.as_ref(),
                Some((limits::ROW_DESCRIPTION, "a list row description")),
            ),
            None => None,
        };
        if let Some(title) = title {
            out.push((r.id.get_ref().clone(), title, description));
        }
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(ReplyKind::List {
        button: button?,
        section,
        rows: out,
    })
}

/// Rule and option action keys, moved out of their raw structs.
struct RawActions {
    department: Option<Spanned<String>>,
    assignee: Option<Spanned<String>>,
    priority: Option<Spanned<String>>,
    tags: Option<Spanned<Vec<String>>>,
    reply: Option<Spanned<OneOrMany>>,
    menu: Option<Spanned<String>>,
    handover: Option<Spanned<HandoverSpec>>,
}

fn compile_actions(
    ctx: &mut Ctx<'_>,
    known: &Known,
    field: &str,
    raw: RawActions,
    default_reason: String,
) -> Actions {
    let department = raw.department.and_then(|d| {
        if known.departments.contains(d.get_ref()) {
            Some(d.into_inner())
        } else {
            ctx.at(
                &d,
                &format!("{field}.department"),
                format!(
                    "unknown department {:?}; {}",
                    d.get_ref(),
                    Known::list(&known.departments)
                ),
            );
            None
        }
    });
    let assignee = raw.assignee.and_then(|a| {
        if a.get_ref().trim().is_empty() {
            ctx.at(&a, &format!("{field}.assignee"), "must not be empty");
            None
        } else {
            Some(a.into_inner())
        }
    });
    let priority = priority(ctx, &format!("{field}.priority"), raw.priority.as_ref());
    let tags = tags(ctx, &format!("{field}.tags"), raw.tags);
    let replies = match raw.reply {
        Some(reply) => {
            let span = reply.span();
            let names = reply.into_inner().into_vec();
            if names.is_empty() {
                ctx.push(
                    Some(span.clone()),
                    &format!("{field}.reply"),
                    "must name at least one [reply.<name>]",
                );
            }
            for name in &names {
                if !known.replies.contains(name) {
                    ctx.push(
                        Some(span.clone()),
                        &format!("{field}.reply"),
                        format!("unknown reply {name:?}; {}", Known::list(&known.replies)),
                    );
                }
            }
            names
        }
        None => Vec::new(),
    };
    let menu = raw.menu.and_then(|m| {
        if known.menus.contains(m.get_ref()) {
            Some(m.into_inner())
        } else {
            ctx.at(
                &m,
                &format!("{field}.menu"),
                format!(
                    "unknown menu {:?}; {}",
                    m.get_ref(),
                    Known::list(&known.menus)
                ),
            );
            None
        }
    });
    let handover = raw.handover.and_then(|h| {
        let span = h.span();
        let reason = match h.into_inner() {
            HandoverSpec::Flag(true) => Some(default_reason),
            HandoverSpec::Flag(false) => None,
            HandoverSpec::Reason(reason) if reason.trim().is_empty() => {
                ctx.push(
                    Some(span.clone()),
                    &format!("{field}.handover"),
                    "give a reason, or handover = true",
                );
                None
            }
            HandoverSpec::Reason(reason) => Some(reason),
        };
        if reason.is_some() && menu.is_some() {
            ctx.push(
                Some(span),
                &format!("{field}.handover"),
                "shows a menu and hands over: choose one",
            );
        }
        reason
    });
    Actions {
        department,
        assignee,
        priority,
        tags,
        replies,
        menu,
        handover,
    }
}

fn compile_menu(
    ctx: &mut Ctx<'_>,
    known: &Known,
    name: &str,
    field: &str,
    item: Spanned<DeValue<'_>>,
) -> Option<Menu> {
    let before = ctx.problems.len();
    let span = item.span();
    let DeValue::Table(mut table) = item.into_inner() else {
        ctx.push(Some(span), field, "expected a table");
        return None;
    };
    drop_unknown_keys(ctx, &mut table, MENU_KEYS, field);
    let options_raw = array_items(ctx, &format!("{field}.option"), table.remove("option"));
    let (raw, span) = from_table::<RawMenu>(ctx, field, span, table)?;
    let line = ctx.line(&span);

    let text = local_text(ctx, known, field, ("text", &raw.text), raw.text_ar.as_ref());
    let style = match &raw.style {
        Some(s) => MenuStyle::parse(s.get_ref()).or_else(|| {
            ctx.at(
                s,
                &format!("{field}.style"),
                format!(
                    "unknown style {:?}; expected text, buttons or list",
                    s.get_ref()
                ),
            );
            None
        }),
        None => Some(MenuStyle::Text),
    };
    let label_limit = match style {
        Some(MenuStyle::Buttons) => Some((limits::BUTTON_TITLE, "a button title")),
        Some(MenuStyle::List) => Some((limits::ROW_TITLE, "a list row title")),
        _ => None,
    };
    let list_button = match &raw.list_button {
        Some(b) => {
            if style != Some(MenuStyle::List) {
                ctx.at(
                    b,
                    &format!("{field}.list_button"),
                    "only used with style = \"list\"",
                );
            }
            local_str(
                ctx,
                field,
                ("list_button", b),
                raw.list_button_ar.as_ref(),
                Some((limits::LIST_BUTTON, "the list button")),
            )
        }
        None => Some(LocalStr::new(
            DEFAULT_LIST_BUTTON.0,
            Some(DEFAULT_LIST_BUTTON.1),
        )),
    };
    let exit_key = match &raw.exit {
        Some(e) if fold(e.get_ref()).is_empty() => {
            ctx.at(
                e,
                &format!("{field}.exit"),
                "the exit key must not be empty: every menu has a way to a person",
            );
            None
        }
        Some(e) => Some(e.get_ref().trim().to_owned()),
        None => Some(DEFAULT_EXIT_KEY.to_owned()),
    };
    let exit_line = raw.exit.as_ref().map_or(line, |e| ctx.line(&e.span()));
    let exit_label = match &raw.exit_label {
        Some(l) => local_str(
            ctx,
            field,
            ("exit_label", l),
            raw.exit_label_ar.as_ref(),
            label_limit,
        ),
        None => Some(LocalStr::new(
            DEFAULT_EXIT_LABEL.0,
            Some(DEFAULT_EXIT_LABEL.1),
        )),
    };
    let invalid = match &raw.invalid {
        Some(i) => local_text(ctx, known, field, ("invalid", i), raw.invalid_ar.as_ref()),
        None => {
            let values = BTreeMap::new();
            let en = Template::parse(DEFAULT_INVALID.0, &values, false).ok();
            let ar = Template::parse(DEFAULT_INVALID.1, &values, false).ok();
            en.map(|en| LocalText { en, ar })
        }
    };
    let max_invalid = positive(
        ctx,
        &format!("{field}.max_invalid"),
        raw.max_invalid.as_ref(),
        DEFAULT_MAX_INVALID,
        (1, 20),
    );
    let expire = positive(
        ctx,
        &format!("{field}.expire_minutes"),
        raw.expire_minutes.as_ref(),
        DEFAULT_EXPIRE_MINUTES,
        (1, 60 * 24 * 7),
    );

    let mut options = Vec::new();
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    if let Some(exit) = &exit_key {
        keys.insert(fold(exit), format!("{field}.exit"));
    }
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    if let Some(exit_label) = &exit_label {
        for l in exit_label.all() {
            labels.insert(fold(l), format!("{field}.exit_label"));
        }
    }
    if options_raw.is_empty() {
        ctx.push(
            Some(span.clone()),
            field,
            format!("a menu needs at least one option: add [[{field}.option]]"),
        );
    }
    let count = options_raw.len() + 1;
    let most = match style {
        Some(MenuStyle::Buttons) => Some((limits::BUTTONS, "reply buttons")),
        Some(MenuStyle::List) => Some((limits::LIST_ROWS, "list rows")),
        _ => None,
    };
    if let Some((most, what)) = most {
        if count > most {
            ctx.push(
                Some(span.clone()),
                field,
                format!(
                    "{} options and the exit make {count} {what}; WhatsApp allows at most {most}",
                    options_raw.len()
                ),
            );
        }
    }
    for (option_field, item) in options_raw {
        let Some((raw_option, option_span)) =
            piece::<RawOption>(ctx, &option_field, item, &option_keys())
        else {
            continue;
        };
        let option_before = ctx.problems.len();
        let key = raw_option.key.get_ref().trim().to_owned();
        let folded_key = fold(&key);
        if folded_key.is_empty() || key.chars().count() > 24 {
            ctx.at(
                &raw_option.key,
                &format!("{option_field}.key"),
                "a key is what the customer types: 1 to 24 characters, e.g. \"1\"",
            );
        } else if let Some(first) = keys.insert(folded_key.clone(), option_field.clone()) {
            ctx.at(
                &raw_option.key,
                &format!("{option_field}.key"),
                format!("key {key:?} is also used by {first}"),
            );
        }
        let label = local_str(
            ctx,
            &option_field,
            ("label", &raw_option.label),
            raw_option.label_ar.as_ref(),
            label_limit,
        );
        if let Some(label) = &label {
            for l in label.all() {
                if let Some(first) = labels.insert(fold(l), option_field.clone()) {
                    ctx.at(
                        &raw_option.label,
                        &format!("{option_field}.label"),
                        format!("label {l:?} is also used by {first}"),
                    );
                }
            }
        }
        let description = match &raw_option.description {
            Some(d) => {
                if style != Some(MenuStyle::List) {
                    ctx.at(
                        d,
                        &format!("{option_field}.description"),
                        "only shown with style = \"list\"",
                    );
                }
                local_str(
                    ctx,
                    &option_field,
                    ("description", d),
                    raw_option.description_ar.as_ref(),
                    Some((limits::ROW_DESCRIPTION, "a list row description")),
                )
            }
            None => None,
        };
        let option_line = ctx.line(&option_span);
        let actions = compile_actions(
            ctx,
            known,
            &option_field,
            RawActions {
                department: raw_option.department,
                assignee: raw_option.assignee,
                priority: raw_option.priority,
                tags: raw_option.tags,
                reply: raw_option.reply,
                menu: raw_option.menu,
                handover: raw_option.handover,
            },
            format!("customer chose {key:?} in menu {name}"),
        );
        if actions.is_empty() && !ctx.has_problem_in(&option_field) {
            ctx.at(
                &raw_option.key,
                &option_field,
                "does nothing: give at least one of department, assignee, priority, tags, reply, menu, handover",
            );
        }
        if ctx.problems.len() == option_before {
            if let Some(label) = label {
                options.push(MenuOption {
                    key,
                    label,
                    description,
                    line: option_line,
                    actions,
                });
            }
        }
    }

    if ctx.problems.len() > before {
        return None;
    }
    let menu = Menu {
        name: name.to_owned(),
        line,
        text: text?,
        style: style?,
        list_button: list_button?,
        exit_key: exit_key?,
        exit_label: exit_label?,
        exit_line,
        invalid: invalid?,
        max_invalid: u32::try_from(max_invalid).unwrap_or(1),
        expire: Duration::minutes(expire),
        options,
    };
    let (max, what) = match menu.style {
        MenuStyle::Text => (limits::TEXT_BODY, "a text message"),
        _ => (limits::INTERACTIVE_BODY, "an interactive message body"),
    };
    check_body(
        ctx,
        known,
        &format!("{field}.text"),
        &raw.text.span(),
        |r| menu.prompt(r, true).body().chars().count(),
        max,
        what,
    );
    (ctx.problems.len() == before).then_some(menu)
}

fn compile_rule(
    ctx: &mut Ctx<'_>,
    known: &Known,
    field: &str,
    raw: RawRule,
    span: Range<usize>,
) -> Option<Rule> {
    let before = ctx.problems.len();
    let name = raw.name.get_ref().clone();
    if !is_name(&name) {
        ctx.at(
            &raw.name,
            &format!("{field}.name"),
            "a rule name is lowercase letters, digits, `-` and `_`",
        );
    }
    let mut conditions = Conditions::default();
    if let Some(list) = &raw.keywords {
        if list.is_empty() {
            ctx.push(
                Some(span.clone()),
                &format!("{field}.keywords"),
                "must list at least one keyword (or leave keywords out)",
            );
        }
        conditions.keywords = keywords(ctx, &format!("{field}.keywords"), list);
    }
    if let Some(regex) = raw.regex {
        let span = regex.span();
        for source in regex.into_inner().into_vec() {
            match compile_regex(&source) {
                Ok(r) => conditions.regexes.push((source, r)),
                Err(message) => ctx.push(Some(span.clone()), &format!("{field}.regex"), message),
            }
        }
    }
    if let Some(types) = raw.message_type {
        let span = types.span();
        for kind in types.into_inner().into_vec() {
            if MESSAGE_TYPES.contains(&kind.as_str()) {
                conditions.message_types.push(kind);
            } else {
                ctx.push(
                    Some(span.clone()),
                    &format!("{field}.message_type"),
                    format!(
                        "unknown message type {kind:?}; expected one of: {}",
                        MESSAGE_TYPES.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(ids) = raw.reply_id {
        let span = ids.span();
        for id in ids.into_inner().into_vec() {
            if id.trim_end_matches('*').is_empty() {
                ctx.push(
                    Some(span.clone()),
                    &format!("{field}.reply_id"),
                    "a reply id must not be empty",
                );
            } else {
                conditions.reply_ids.push(id);
            }
        }
    }
    if let Some(codes) = raw.country {
        let span = codes.span();
        for code in codes.into_inner().into_vec() {
            let code = code.trim_start_matches('+').to_owned();
            match country::check_prefix(&code) {
                Ok(()) => conditions.countries.push(code),
                Err(message) => ctx.push(Some(span.clone()), &format!("{field}.country"), message),
            }
        }
    }
    if let Some(languages) = raw.language {
        let span = languages.span();
        for language in languages.into_inner().into_vec() {
            if (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_lowercase())
            {
                conditions.languages.push(language);
            } else {
                ctx.push(
                    Some(span.clone()),
                    &format!("{field}.language"),
                    format!(
                        "{language:?}: a language is a lowercase code such as \"ar\" or \"en\""
                    ),
                );
            }
        }
    }
    conditions.first_message = raw.first_message.map(Spanned::into_inner);
    if let Some(hours) = &raw.hours {
        conditions.open = match hours.get_ref().as_str() {
            "open" => Some(true),
            "closed" => Some(false),
            other => {
                ctx.at(
                    hours,
                    &format!("{field}.hours"),
                    format!("{other:?}: expected \"open\" or \"closed\""),
                );
                None
            }
        };
        if known.hours.is_none() {
            ctx.at(
                hours,
                &format!("{field}.hours"),
                "needs an [hours] section to know when the business is open",
            );
        }
    }
    let actions = compile_actions(
        ctx,
        known,
        field,
        RawActions {
            department: raw.department,
            assignee: raw.assignee,
            priority: raw.priority,
            tags: raw.tags,
            reply: raw.reply,
            menu: raw.menu,
            handover: raw.handover,
        },
        format!("rule {name}"),
    );
    if actions.is_empty() && !ctx.has_problem_in(field) {
        ctx.at(
            &raw.name,
            field,
            "does nothing: give at least one of department, assignee, priority, tags, reply, menu, handover",
        );
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(Rule {
        name,
        line: ctx.line(&span),
        conditions,
        actions,
        stop: raw.stop.is_some_and(Spanned::into_inner),
    })
}

/// The default time of an example: the first opening time after this reference (a Monday).
fn reference_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn example_time(
    ctx: &mut Ctx<'_>,
    known: &Known,
    field: &str,
    raw: Option<&Spanned<toml::Value>>,
) -> Option<DateTime<Utc>> {
    let Some(at) = raw else {
        let reference = reference_time();
        return Some(
            known
                .hours
                .as_ref()
                .and_then(|h| h.next_open(reference))
                .map_or(reference, |t| t.with_timezone(&Utc)),
        );
    };
    let text = match at.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        _ => String::new(),
    };
    match DateTime::parse_from_rfc3339(&text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            ctx.at(
                at,
                &format!("{field}.at"),
                "an RFC 3339 time with its offset, e.g. \"2026-05-03T21:30:00+04:00\"",
            );
            None
        }
    }
}

fn example_state(
    ctx: &mut Ctx<'_>,
    known: &Known,
    field: &str,
    raw: Option<Spanned<RawExampleState>>,
    at: DateTime<Utc>,
) -> ConversationState {
    let Some(raw) = raw else {
        return ConversationState::default();
    };
    let span = raw.span();
    let raw = raw.into_inner();
    let field = format!("{field}.state");
    let mut state = ConversationState::default();
    let minutes = |m: i64| at - Duration::minutes(m.max(0));
    if let Some(menu) = raw.menu {
        if !known.menus.contains(&menu) {
            ctx.push(
                Some(span.clone()),
                &format!("{field}.menu"),
                format!("unknown menu {menu:?}; {}", Known::list(&known.menus)),
            );
        }
        let idle = minutes(raw.menu_idle_minutes.unwrap_or(1));
        state.menu = Some(MenuPosition {
            menu,
            entered_at: idle,
            last_activity: idle,
            invalid: raw.invalid.unwrap_or(0),
        });
    } else if raw.menu_idle_minutes.is_some() || raw.invalid.is_some() {
        ctx.push(
            Some(span.clone()),
            &field,
            "menu_idle_minutes and invalid need menu",
        );
    }
    if raw.escalated == Some(true) {
        state.escalation = Some(Escalation {
            since: minutes(60),
            reason: "handed over before the example".to_owned(),
        });
    }
    state.away_sent_at = raw.away_sent_minutes_ago.map(minutes);
    state.agent_replied_at = raw.agent_replied_minutes_ago.map(minutes);
    if let Some(department) = &raw.department {
        if !known.departments.contains(department) {
            ctx.push(
                Some(span),
                &format!("{field}.department"),
                format!(
                    "unknown department {department:?}; {}",
                    Known::list(&known.departments)
                ),
            );
        }
    }
    state.department = raw.department;
    state.language = raw.language;
    state
}

fn compile_example(
    ctx: &mut Ctx<'_>,
    known: &Known,
    field: &str,
    raw: RawExample,
    span: Range<usize>,
) -> Option<Example> {
    let before = ctx.problems.len();
    let kind = match &raw.message_type {
        Some(kind) if MESSAGE_TYPES.contains(&kind.get_ref().as_str()) => kind.get_ref().clone(),
        Some(kind) => {
            ctx.at(
                kind,
                &format!("{field}.message_type"),
                format!(
                    "unknown message type {:?}; expected one of: {}",
                    kind.get_ref(),
                    MESSAGE_TYPES.join(", ")
                ),
            );
            String::new()
        }
        None if raw.reply_id.is_some() => "interactive".to_owned(),
        None => "text".to_owned(),
    };
    if let Some(wa_id) = &raw.wa_id {
        if wa_id.get_ref().is_empty() || !wa_id.get_ref().bytes().all(|b| b.is_ascii_digit()) {
            ctx.at(
                wa_id,
                &format!("{field}.wa_id"),
                "the customer's number in digits, e.g. \"96891234567\"",
            );
        }
    }
    let at = example_time(ctx, known, field, raw.at.as_ref());
    let state = example_state(
        ctx,
        known,
        field,
        raw.state,
        at.unwrap_or_else(reference_time),
    );
    let priority = match &raw.expect_priority {
        Some(p) => Some(priority(ctx, &format!("{field}.expect_priority"), Some(p))?),
        None => None,
    };
    if let Some(department) = &raw.expect_department {
        if !known.departments.contains(department.get_ref()) {
            ctx.at(
                department,
                &format!("{field}.expect_department"),
                format!(
                    "unknown department {:?}; {}",
                    department.get_ref(),
                    Known::list(&known.departments)
                ),
            );
        }
    }
    if let Some(menu) = &raw.expect_menu {
        if !menu.get_ref().is_empty() && !known.menus.contains(menu.get_ref()) {
            ctx.at(
                menu,
                &format!("{field}.expect_menu"),
                format!(
                    "unknown menu {:?} (\"\" for no menu); {}",
                    menu.get_ref(),
                    Known::list(&known.menus)
                ),
            );
        }
    }
    let expect = Expect {
        rules: raw.expect_rules,
        department: raw.expect_department.map(Spanned::into_inner),
        assignee: raw.expect_assignee,
        priority,
        tags: raw.expect_tags,
        replies: raw.expect_replies,
        handover: raw.expect_handover,
        escalated: raw.expect_escalated,
        menu: raw.expect_menu.map(Spanned::into_inner),
    };
    if expect.is_empty() {
        ctx.push(
            Some(span.clone()),
            field,
            "expects nothing: give at least one expect_… key",
        );
    }
    if raw.text.is_none() && raw.reply_id.is_none() && raw.message_type.is_none() {
        ctx.push(
            Some(span.clone()),
            field,
            "give the message: text, reply_id or message_type",
        );
    }
    if ctx.problems.len() > before {
        return None;
    }
    Some(Example {
        field: field.to_owned(),
        line: ctx.line(&span),
        name: raw.name,
        text: raw.text,
        kind,
        reply_id: raw.reply_id,
        wa_id: raw.wa_id.map(Spanned::into_inner),
        profile_language: raw.profile_language,
        first_message: raw.first_message.unwrap_or(false),
        at: at?,
        state,
        expect,
    })
}
