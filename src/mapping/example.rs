//! `[[example]]` blocks: each is an event plus the expected request, skip or invalid reason.

use serde_json::Value;

use super::{Expectation, Mapping, MappingProblem, Outcome};

/// At most this many differences are listed per failing example.
const MAX_DIFFS: usize = 12;

impl Mapping {
    /// Runs this mapping's `[[example]]` blocks; one problem per failing example, with a
    /// field-by-field diff for request mismatches.
    pub fn check_examples(&self) -> Vec<MappingProblem> {
        let mut problems = Vec::new();
        for example in &self.examples {
            let outcome = self.render(&example.event);
            let failure = match (&example.expect, &outcome) {
                (Expectation::Request(expected), Outcome::Send(intent)) => {
                    let actual = Self::request_body(intent);
                    let mut diffs = Vec::new();
                    diff("", expected, &actual, &mut diffs);
                    if let Some(key) = &example.idempotency_key {
                        if *key != intent.idempotency_key {
                            diffs.push(format!(
                                "idempotency key: expected {key:?}, got {:?}",
                                intent.idempotency_key
                            ));
                        }
                    }
                    if diffs.is_empty() {
                        None
                    } else {
                        let more = diffs.len().saturating_sub(MAX_DIFFS);
                        diffs.truncate(MAX_DIFFS);
                        if more > 0 {
                            diffs.push(format!("… and {more} more"));
                        }
                        Some(format!("request differs: {}", diffs.join("; ")))
                    }
                }
                (Expectation::Skip(want), Outcome::Skip { reason })
                | (Expectation::Invalid(want), Outcome::Invalid { reason }) => (!reason
                    .contains(want.as_str()))
                .then(|| format!("expected a reason containing {want:?}, got {reason:?}")),
                (expect, outcome) => Some(format!(
                    "expected {}, got {}",
                    describe_expectation(expect),
                    describe_outcome(outcome)
                )),
            };
            if let Some(message) = failure {
                let message = match &example.name {
                    Some(name) => format!("example {name:?} failed: {message}"),
                    None => format!("example failed: {message}"),
                };
                problems.push(MappingProblem {
                    file: self.file.clone(),
                    line: Some(example.line),
                    field: example.field.clone(),
                    message,
                });
            }
        }
        problems
    }
}

fn describe_expectation(expect: &Expectation) -> String {
    match expect {
        Expectation::Request(_) => "a request".to_owned(),
        Expectation::Skip(want) => format!("a skip containing {want:?}"),
        Expectation::Invalid(want) => format!("invalid containing {want:?}"),
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Send(intent) => format!("a send of template {}", intent.template),
        Outcome::Skip { reason } => format!("skip: {reason}"),
        Outcome::Invalid { reason } => format!("invalid: {reason}"),
    }
}

/// Appends one line per difference, named by its path (`template.components[1].index`).
pub(super) fn diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    let here = if path.is_empty() { "(request)" } else { path };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, ev) in e {
                let child = join(path, key);
                match a.get(key) {
                    Some(av) => diff(&child, ev, av, out),
                    None => out.push(format!("{child}: missing (expected {ev})")),
                }
            }
            for (key, av) in a {
                if !e.contains_key(key) {
                    out.push(format!("{}: unexpected {av}", join(path, key)));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                out.push(format!(
                    "{here}: expected {} items, got {}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        _ if expected != actual => out.push(format!("{here}: expected {expected}, got {actual}")),
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}
