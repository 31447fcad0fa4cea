//! Mapping files: admin-written TOML in `mappings/` that turns a CRM/shop event into an approved
//! WhatsApp template send ("when source X reports event Y, send template T to the customer's
//! phone with these parameters taken from the event").
//!
//! Guarantees:
//! - Everything is checked at load time: unknown keys, types, every JSONPath, parameter shapes,
//!   phone rules, example JSON. Each problem names the file, line and field
//!   (`mappings/order_paid.toml:14: body[1].path: invalid JSONPath …`), and all problems of all
//!   files are returned at once, so `wabridge validate` and start-up report the same list.
//! - Rendering is pure: [`Mapping::render`] maps one event to exactly one [`Outcome`]: a
//!   [`SendIntent`], a skip (event or condition does not apply) or invalid (the event lacks what
//!   the template needs). It never sends anything and never panics on odd input.
//! - Every shipped mapping carries `[[example]]` blocks that [`MappingSet::check_examples`] runs;
//!   `cargo test` runs them for the shipped files.
//!
//! The file format is documented for admins in `mappings/README.md`.

mod catalog;
mod example;
mod load;
mod path;
mod phone;
mod render;
mod spec;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use catalog::CatalogTemplate;
pub use phone::{normalise as normalise_phone, PhoneRules};

use path::JsonPathExpr;

/// One problem found in a mapping file. Displays as `file:line: field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingProblem {
    /// The mapping file (or directory) concerned.
    pub file: PathBuf,
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted field path, e.g. `body[1].path` or `example[0]`; empty for whole-file problems.
    pub field: String,
    /// What is wrong, in one line.
    pub message: String,
}

impl fmt::Display for MappingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A loaded, fully compiled mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The file it was loaded from.
    pub file: PathBuf,
    /// `name` from the file, or the file stem. Unique within a [`MappingSet`].
    pub name: String,
    /// Free text for admins.
    pub description: Option<String>,
    /// The event source this mapping listens to (the `{source}` of `POST /events/{source}`).
    pub source: String,
    /// The event type it handles, compared with the value at `event_path` (default `$.event`);
    /// `None` handles every event of the source.
    pub event: Option<String>,
    /// Template name as approved by Meta.
    pub template: String,
    /// Template language code (`en_US`, `ar`, …).
    pub language: String,
    template_line: usize,
    event_path: JsonPathExpr,
    conditions: Vec<Condition>,
    recipient: JsonPathExpr,
    phone: PhoneRules,
    idempotency_key: Vec<JsonPathExpr>,
    opt_in: Option<OptInRule>,
    header: Option<Param>,
    body: Vec<Param>,
    buttons: Vec<Button>,
    examples: Vec<Example>,
}

/// A `[[condition]]`: the mapping applies only when every condition holds.
#[derive(Debug, Clone)]
struct Condition {
    path: JsonPathExpr,
    test: ConditionTest,
}

/// How a condition judges the selected value.
#[derive(Debug, Clone)]
enum ConditionTest {
    /// Present and not null, false, 0 or "".
    Truthy,
    /// Equal to this value (numbers compare numerically).
    Equals(Value),
    /// Equal to one of these.
    OneOf(Vec<Value>),
    /// Present and equal to none of these.
    NotOneOf(Vec<Value>),
}

/// `[opt_in]`: an event field that proves the customer opted in to WhatsApp messages.
#[derive(Debug, Clone)]
struct OptInRule {
    path: JsonPathExpr,
    equals: Option<Value>,
    evidence: String,
}

/// Where a value comes from: the event or the mapping file.
#[derive(Debug, Clone)]
enum ValueSource {
    Path(JsonPathExpr),
    Literal(String),
}

/// A header or body parameter.
#[derive(Debug, Clone)]
struct Param {
    field: String,
    line: usize,
    name: Option<String>,
    kind: ParamKind,
}

/// Media kinds a header parameter may carry by link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaKind {
    Image,
    Document,
    Video,
}

impl MediaKind {
    fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Document => "document",
            MediaKind::Video => "video",
        }
    }
}

/// Parameter types of Meta's template send.
#[derive(Debug, Clone)]
enum ParamKind {
    Text(ValueSource),
    Currency {
        amount: JsonPathExpr,
        code: ValueSource,
        fallback: Option<JsonPathExpr>,
    },
    DateTime {
        value: ValueSource,
        format: Option<String>,
    },
    Media {
        kind: MediaKind,
        link: ValueSource,
    },
}

/// A `[[button]]` parameter.
#[derive(Debug, Clone)]
struct Button {
    field: String,
    line: usize,
    index: usize,
    kind: ButtonKind,
}

/// Button sub-types that take a parameter.
#[derive(Debug, Clone)]
enum ButtonKind {
    /// Dynamic URL button: the parameter is the URL suffix.
    Url(ValueSource),
    /// Quick reply: the parameter is the payload echoed back when tapped.
    QuickReply(ValueSource),
}

/// What an `[[example]]` expects.
#[derive(Debug, Clone)]
enum Expectation {
    Request(Value),
    Skip(String),
    Invalid(String),
}

/// An `[[example]]` block, parsed at load time.
#[derive(Debug, Clone)]
struct Example {
    field: String,
    line: usize,
    name: Option<String>,
    event: Value,
    expect: Expectation,
    idempotency_key: Option<String>,
}

/// Evidence, taken from the event, that the customer opted in; the policy gate records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptInEvidence {
    /// The admin's description of where the opt-in happened (`[opt_in].evidence`).
    pub evidence: String,
    /// The JSONPath that proved it.
    pub path: String,
    /// The value found there.
    pub value: Value,
}

/// A template send decided by a mapping, before the policy gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendIntent {
    /// The mapping that produced it.
    pub mapping: String,
    /// Recipient: E.164 digits without `+`, as Meta's `to` takes them.
    pub to: String,
    /// Template name.
    pub template: String,
    /// Template language code.
    pub language: String,
    /// Meta `template.components`: header, body and button components, in that order.
    pub components: Vec<Value>,
    /// `"{mapping}:{values…}"`: the same event always gives the same key.
    pub idempotency_key: String,
    /// Present when the mapping has `[opt_in]` and the event proves it.
    pub opt_in: Option<OptInEvidence>,
}

/// What a mapping makes of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send this template.
    Send(SendIntent),
    /// The mapping does not apply (other event type, or a condition does not hold).
    Skip {
        /// Why, for logs and `wabridge mapping test`.
        reason: String,
    },
    /// The mapping applies but cannot produce a valid send (recipient missing or not a phone
    /// number, parameter missing or of the wrong type…). Recorded as a blocked send.
    Invalid {
        /// Every reason, joined by `; `. Never contains the phone number.
        reason: String,
    },
}

/// All mappings of a directory.
#[derive(Debug, Clone, Default)]
pub struct MappingSet {
    /// Mappings in file-name order.
    pub mappings: Vec<Mapping>,
}

impl MappingSet {
    /// Mappings listening to `source`, in file-name order.
    pub fn for_source<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a Mapping> + 'a {
        self.mappings.iter().filter(move |m| m.source == source)
    }

    /// Runs every `[[example]]` of every mapping; one problem per failing example.
    pub fn check_examples(&self) -> Vec<MappingProblem> {
        self.mappings
            .iter()
            .flat_map(Mapping::check_examples)
            .collect()
    }

    /// Checks template names, languages and parameter counts against the known template
    /// catalog. Call it when the catalog has been fetched; without one, skip it.
    pub fn check_against_catalog(&self, catalog: &[CatalogTemplate]) -> Vec<MappingProblem> {
        self.mappings
            .iter()
            .flat_map(|m| m.check_against_catalog(catalog))
            .collect()
    }

    /// [`MappingSet::check_against_catalog`] split into what makes a mapping wrong (its
    /// parameters do not fit an existing template: the daemon refuses to start) and what may
    /// still change (a template or translation not in the catalog yet: its sends dead-letter
    /// with the reason until it is created and approved).
    pub fn catalog_problems(
        &self,
        catalog: &[CatalogTemplate],
    ) -> (Vec<MappingProblem>, Vec<MappingProblem>) {
        self.check_against_catalog(catalog)
            .into_iter()
            .partition(|p| p.field != "template" && p.field != "language")
    }
}

/// Loads every `*.toml` file of `dir` but `routing.toml` (other files such as `README.md` are
/// skipped).
/// Returns every problem of every file at once, including duplicate mapping names.
pub fn load_dir(dir: &Path) -> Result<MappingSet, Vec<MappingProblem>> {
    let (set, problems) = load::load_dir_partial(dir);
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(problems)
    }
}

/// Loads and compiles one mapping file; every problem at once.
pub fn load_file(path: &Path) -> Result<Mapping, Vec<MappingProblem>> {
    load::load_file(path)
}

/// What `wabridge validate` runs: loads `dir` and runs the examples of every file that loaded,
/// returning all problems (empty when everything is fine).
pub fn validate_dir(dir: &Path) -> Vec<MappingProblem> {
    let (set, mut problems) = load::load_dir_partial(dir);
    problems.extend(set.check_examples());
    problems
}

#[cfg(test)]
mod tests;
