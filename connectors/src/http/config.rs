//! `[connectors.<name>] kind = "http"`: the generic HTTP connector's configuration, and its
//! compilation into the requests the connector sends (see the module docs of [`super`] for
//! the full reference with an example).

use std::collections::BTreeMap;

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Method;
use serde::Deserialize;

use super::template::{
    IdPath, Place, Template, Values, ACTIVITY, ATTACHMENT, CONTACT, CONTACT_ID, CONVERSATION,
    MESSAGE, NOTE, TICKET,
};
use crate::{ConfigProblem, Secret};

/// Default for [`HttpConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// The value every placeholder gets when templates are checked at load: quotes, a backslash,
/// a newline, braces and Arabic text, so a placeholder left outside a JSON string or a body
/// that only parses with tame values is caught before the first message.
const SAMPLE: &str = "sample \"value\" \\ {x}\nمرحبا";

/// Any system with a plain REST API, its requests described here (see the [module
/// docs](super) for the flows, every placeholder and an example).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The API's base address, `http` or `https`, e.g. `https://api.example.com/v2`; every
    /// request's `path` is appended to it.
    pub url: String,
    /// Timeout of one HTTP call, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The credential sent with every request. Leave it out only for an API that needs none.
    #[serde(default)]
    pub auth: Option<HttpAuth>,
    /// Extra headers sent with every request (e.g. an API version), name → value. Values are
    /// treated as secrets: never printed. `Accept: application/json` is sent unless set here.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// A real, harmless read that proves the address and the credential work (`wabridge
    /// check`), e.g. `{ path = "/me" }`. Its answer is not read.
    pub check: HttpRequest,
    /// The ticketing role: a ticket per conversation, every message an entry in it.
    #[serde(default)]
    pub ticket: Option<TicketRequests>,
    /// The CRM role: the contact upserted, every message an activity on its timeline.
    #[serde(default)]
    pub contact: Option<ContactRequests>,
}

/// `[connectors.<name>.auth]`: one of a bearer token, a header of your choice, or HTTP basic.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAuth {
    /// A token sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer: Option<Secret>,
    /// The name of a header that carries the credential, e.g. `X-Api-Key` (with `value`).
    #[serde(default)]
    pub header: Option<String>,
    /// The value of `header`, sent exactly as written (e.g. `Token abc…`).
    #[serde(default)]
    pub value: Option<Secret>,
    /// The user of HTTP basic authentication (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// The password (or API key) of HTTP basic authentication.
    #[serde(default)]
    pub password: Option<Secret>,
}

/// One request: `{ method = "POST", path = "/tickets", body = '''{…}''', id = "$.ticket.id" }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT` or `PATCH` (lookups and `check`: `GET` or `POST`). Default: `POST`
    /// when there is a body, else `GET`.
    #[serde(default)]
    pub method: Option<String>,
    /// The path (and query) after `url`, starting with `/`, with placeholders; their values
    /// are percent-encoded, e.g. `/contacts/by-phone/{contact.e164}`.
    pub path: String,
    /// A JSON body with placeholders, sent as `application/json`. Inside a JSON string a
    /// placeholder's value is escaped; outside one it becomes a whole JSON value (a number for
    /// a plain integer, else a string).
    #[serde(default)]
    pub body: Option<String>,
    /// A JSONPath reading an id (a string or a number) out of the JSON answer, e.g.
    /// `$.ticket.id`. Required for lookups, `ticket.create` and `contact.upsert`; not used
    /// elsewhere. In a lookup, selecting nothing (or `null`, or `""`) means "not found".
    #[serde(default)]
    pub id: Option<String>,
    /// Lookups only: a 404 answer means "not found" (for APIs that answer a lookup of a missing
    /// record with 404). Default `false`: a 404 is an error, so a mistyped path cannot make
    /// every message open a new ticket.
    #[serde(default)]
    pub empty_on_404: bool,
}

/// `[connectors.<name>.ticket]`: the ticketing role's requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRequests {
    /// Lookup of the conversation's ticket when wabridge has none recorded (e.g. by
    /// `{conversation.key}` stored in the ticket by `create`); `id` reads the ticket id.
    #[serde(default)]
    pub find: Option<HttpRequest>,
    /// Opens a ticket with the conversation's first message; `id` reads the new ticket's id.
    /// Must carry `{message.marker}`.
    pub create: HttpRequest,
    /// Adds a later message to `{ticket}`. Must carry `{message.marker}`.
    pub append: HttpRequest,
    /// Lookup used when an earlier attempt may have written the message: whether an entry
    /// carrying `{message.marker}` (or `{message.id}`) is already in `{ticket}`.
    #[serde(default)]
    pub exists: Option<HttpRequest>,
    /// Writes an internal note (`{note}`) in `{ticket}`; without it notes are not written.
    #[serde(default)]
    pub note: Option<HttpRequest>,
    /// Sends one file of the message to `{ticket}` (`{attachment.base64}` …), once per file;
    /// without it the entry's text names the files that were not forwarded.
    #[serde(default)]
    pub attach: Option<HttpRequest>,
}

/// `[connectors.<name>.contact]`: the CRM role's requests.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRequests {
    /// Lookup of the contact before `upsert` (for APIs without an upsert); `id` reads the
    /// contact id. When it finds one, `upsert` is not sent.
    #[serde(default)]
    pub find: Option<HttpRequest>,
    /// Creates or updates the contact; `id` reads the contact id (`{contact_id}` later).
    pub upsert: HttpRequest,
    /// Logs one message on the contact's timeline. Must carry `{activity.marker}`.
    pub activity: HttpRequest,
    /// Lookup used when an earlier attempt may have logged the messages: whether an entry
    /// carrying `{activity.marker}` (or `{activity.id}`) is already on the timeline.
    #[serde(default)]
    pub exists: Option<HttpRequest>,
}

/// What a request is for, which decides its methods, `id` and `empty_on_404`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Reads an id, or finds nothing.
    Lookup,
    /// Writes and reads the new id.
    Create,
    /// Writes; the answer is not read.
    Write,
    /// Reads; the answer is not read.
    Check,
}

/// A request compiled at load: what the connector sends.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Its field path, e.g. `ticket.create` (names it in errors, never the URL).
    pub field: &'static str,
    pub method: Method,
    pub path: Template,
    pub body: Option<Template>,
    pub id: Option<IdPath>,
    pub empty_on_404: bool,
}

/// The ticketing role's compiled requests.
#[derive(Debug, Clone)]
pub(crate) struct TicketPlan {
    pub find: Option<Call>,
    pub create: Call,
    pub append: Call,
    pub exists: Option<Call>,
    pub note: Option<Call>,
    pub attach: Option<Call>,
}

/// The CRM role's compiled requests.
#[derive(Debug, Clone)]
pub(crate) struct ContactPlan {
    pub find: Option<Call>,
    pub upsert: Call,
    pub activity: Call,
    pub exists: Option<Call>,
}

/// Every compiled request.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub check: Call,
    pub ticket: Option<TicketPlan>,
    pub contact: Option<ContactPlan>,
}

fn scope(parts: &[&[&'static str]]) -> Vec<&'static str> {
    parts.iter().flat_map(|part| part.iter().copied()).collect()
}

/// Compiles requests, collecting every problem.
struct Compiler<'a> {
    /// The base address, when it is valid (paths are only checked against a valid one).
    url: Option<&'a str>,
    problems: Vec<ConfigProblem>,
}

impl Compiler<'_> {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem::new(field, message));
    }

    /// Compiles `request` (at `field`) for `role`, with the placeholders of `available`;
    /// `marker` is the placeholder every entry it writes must carry.
    fn call(
        &mut self,
        field: &'static str,
        request: &HttpRequest,
        role: Role,
        available: &[&'static str],
        marker: Option<&'static str>,
    ) -> Option<Call> {
        let before = self.problems.len();

        let written = request.method.as_deref().map(str::trim);
        let method = match written {
            None if request.body.is_some() => Some(Method::POST),
            None => Some(Method::GET),
            Some(text) => Method::from_bytes(text.to_ascii_uppercase().as_bytes()).ok(),
        };
        let allowed: &[Method] = match role {
            Role::Lookup | Role::Check => &[Method::GET, Method::POST],
            Role::Create | Role::Write => &[Method::POST, Method::PUT, Method::PATCH],
        };
        let method = match method {
            Some(method) if allowed.contains(&method) => Some(method),
            _ => {
                let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                let shown = match written {
                    Some(text) => format!("`{text}`"),
                    None => "the default GET (a request without a body)".to_owned(),
                };
                self.problem(
                    format!("{field}.method"),
                    format!("{shown} is not allowed here; use {}", names.join(" or ")),
                );
                None
            }
        };

        let samples = Values::sample(available, SAMPLE);
        let path = if !request.path.trim_start().starts_with('/') {
            self.problem(
                format!("{field}.path"),
                "must start with `/` (it is appended to url), e.g. \"/tickets\"",
            );
            None
        } else {
            match Template::parse(request.path.trim(), Place::Path, available) {
                Ok(path) => {
                    let joined = match (self.url, path.render(&samples)) {
                        (Some(url), Ok(rendered)) => Some(join(url, &rendered)),
                        _ => None,
                    };
                    if let Some(Err(err)) = joined.as_deref().map(reqwest::Url::parse) {
                        self.problem(
                            format!("{field}.path"),
                            format!("does not make a valid URL with url ({err})"),
                        );
                    }
                    Some(path)
                }
                Err(err) => {
                    self.problem(format!("{field}.path"), err);
                    None
                }
            }
        };

        let body = match (&request.body, &method) {
            (Some(_), Some(method)) if *method == Method::GET => {
                self.problem(
                    format!("{field}.body"),
                    "a GET request carries no body: use method = \"POST\" or remove the body",
                );
                None
            }
            (Some(text), _) => match Template::parse(text, Place::Body, available) {
                Ok(body) => {
                    if let Ok(rendered) = body.render(&samples) {
                        if let Err(err) = serde_json::from_str::<serde_json::Value>(&rendered) {
                            self.problem(
                                format!("{field}.body"),
                                format!(
                                    "is not valid JSON once its placeholders are filled in \
                                     ({err}); write it as JSON with each placeholder inside a \
                                     string (\"{{message.text}}\") or as a whole value"
                                ),
                            );
                        }
                    }
                    Some(body)
                }
                Err(err) => {
                    self.problem(format!("{field}.body"), err);
                    None
                }
            },
            (None, _) => None,
        };

        let id = match (&request.id, role) {
            (Some(text), Role::Lookup | Role::Create) => match IdPath::compile(text) {
                Ok(id) => Some(id),
                Err(err) => {
                    self.problem(format!("{field}.id"), err);
                    None
                }
            },
            (None, Role::Lookup | Role::Create) => {
                self.problem(
                    format!("{field}.id"),
                    "required: a JSONPath to the id in the answer, e.g. \"$.id\"",
                );
                None
            }
            (Some(_), Role::Write | Role::Check) => {
                self.problem(
                    format!("{field}.id"),
                    "not used: the answer of this request is not read; remove it",
                );
                None
            }
            (None, Role::Write | Role::Check) => None,
        };

        if request.empty_on_404 && role != Role::Lookup {
            self.problem(
                format!("{field}.empty_on_404"),
                "only lookups (find, exists) may treat 404 as \"not found\"",
            );
        }

        if let (Some(marker), Some(path)) = (marker, &path) {
            let carried = path.uses(marker) || body.as_ref().is_some_and(|b| b.uses(marker));
            if !carried && (request.body.is_none() || body.is_some()) {
                self.problem(
                    field,
                    format!(
                        "must carry {{{marker}}} in its path or body: it is how a retry after a \
                         crash or timeout finds what an earlier attempt wrote (the `exists` \
                         lookup), and how people see which WhatsApp message an entry is"
                    ),
                );
            }
        }

        if self.problems.len() > before {
            return None;
        }
        Some(Call {
            field,
            method: method?,
            path: path?,
            body,
            id,
            empty_on_404: request.empty_on_404,
        })
    }

    fn optional(
        &mut self,
        field: &'static str,
        request: Option<&HttpRequest>,
        role: Role,
        available: &[&'static str],
        marker: Option<&'static str>,
    ) -> Option<Option<Call>> {
        match request {
            None => Some(None),
            Some(request) => self.call(field, request, role, available, marker).map(Some),
        }
    }

    fn ticket(&mut self, requests: &TicketRequests) -> Option<TicketPlan> {
        let message = scope(&[CONVERSATION, CONTACT, MESSAGE]);
        let in_ticket = scope(&[CONVERSATION, CONTACT, MESSAGE, &[TICKET]]);
        let attach = scope(&[CONVERSATION, CONTACT, MESSAGE, &[TICKET], ATTACHMENT]);
        let marker = Some("message.marker");
        let find = self.optional(
            "ticket.find",
            requests.find.as_ref(),
            Role::Lookup,
            &message,
            None,
        );
        let create = self.call(
            "ticket.create",
            &requests.create,
            Role::Create,
            &message,
            marker,
        );
        let append = self.call(
            "ticket.append",
            &requests.append,
            Role::Write,
            &in_ticket,
            marker,
        );
        let exists = self.optional(
            "ticket.exists",
            requests.exists.as_ref(),
            Role::Lookup,
            &in_ticket,
            None,
        );
        let note = self.optional(
            "ticket.note",
            requests.note.as_ref(),
            Role::Write,
            &[TICKET, NOTE],
            None,
        );
        let attach = self.optional(
            "ticket.attach",
            requests.attach.as_ref(),
            Role::Write,
            &attach,
            None,
        );
        Some(TicketPlan {
            find: find?,
            create: create?,
            append: append?,
            exists: exists?,
            note: note?,
            attach: attach?,
        })
    }

    fn contact(&mut self, requests: &ContactRequests) -> Option<ContactPlan> {
        let timeline = scope(&[CONVERSATION, CONTACT, &[CONTACT_ID], ACTIVITY]);
        let find = self.optional(
            "contact.find",
            requests.find.as_ref(),
            Role::Lookup,
            CONTACT,
            None,
        );
        let upsert = self.call(
            "contact.upsert",
            &requests.upsert,
            Role::Create,
            CONTACT,
            None,
        );
        let activity = self.call(
            "contact.activity",
            &requests.activity,
            Role::Write,
            &timeline,
            Some("activity.marker"),
        );
        let exists = self.optional(
            "contact.exists",
            requests.exists.as_ref(),
            Role::Lookup,
            &timeline,
            None,
        );
        Some(ContactPlan {
            find: find?,
            upsert: upsert?,
            activity: activity?,
            exists: exists?,
        })
    }
}

/// `url` and a rendered path: the base without its trailing `/`, then the path.
pub(crate) fn join(url: &str, path: &str) -> String {
    format!("{}{}", url.trim().trim_end_matches('/'), path)
}

impl HttpConfig {
    /// A configuration with `url` and `check`, no roles yet, defaults elsewhere.
    pub fn new(url: impl Into<String>, check: HttpRequest) -> Self {
        HttpConfig {
            url: url.into(),
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            auth: None,
            headers: BTreeMap::new(),
            check,
            ticket: None,
            contact: None,
        }
    }

    /// Checks the section without any I/O and returns every problem found: the address, the
    /// credential, the headers, and every request (methods, placeholders, bodies that must
    /// parse as JSON, JSONPaths, the idempotency marker).
    pub fn validate(&self) -> Vec<ConfigProblem> {
        match self.plan() {
            Ok(_) => Vec::new(),
            Err(problems) => problems,
        }
    }

    /// Configurations that work but may duplicate entries after a crash, or send no
    /// credential: printed at start-up (WARN), never an error.
    pub fn warnings(&self) -> Vec<ConfigProblem> {
        let mut warnings = Vec::new();
        if self.auth.is_none() {
            warnings.push(ConfigProblem::new(
                "auth",
                "not set: requests carry no credential",
            ));
        }
        if let Some(ticket) = &self.ticket {
            if ticket.exists.is_none() {
                warnings.push(ConfigProblem::new(
                    "ticket.exists",
                    "not set: if wabridge stops (or a call times out) after the system stored \
                     a message but before wabridge recorded it, the retry writes the message a \
                     second time",
                ));
            }
            if ticket.find.is_none() {
                warnings.push(ConfigProblem::new(
                    "ticket.find",
                    "not set: if wabridge stops after ticket.create succeeded but before it \
                     recorded the ticket, the retry opens a second ticket",
                ));
            }
        }
        if let Some(contact) = &self.contact {
            if contact.exists.is_none() {
                warnings.push(ConfigProblem::new(
                    "contact.exists",
                    "not set: if wabridge stops (or a call times out) after the system logged \
                     an activity but before wabridge recorded it, the retry logs it again",
                ));
            }
            let post = contact
                .upsert
                .method
                .as_deref()
                .map_or(contact.upsert.body.is_some(), |m| {
                    m.trim().eq_ignore_ascii_case("POST")
                });
            if contact.find.is_none() && post {
                warnings.push(ConfigProblem::new(
                    "contact.upsert",
                    "is a POST and contact.find is not set: unless the API deduplicates \
                     contacts itself, a retry may create a second contact",
                ));
            }
        }
        warnings
    }

    /// Compiles every request, or returns every problem of the section.
    pub(crate) fn plan(&self) -> Result<Plan, Vec<ConfigProblem>> {
        let mut compiler = Compiler {
            url: None,
            problems: Vec::new(),
        };
        if self.check_url(&mut compiler) {
            compiler.url = Some(&self.url);
        }
        if self.timeout_secs == 0 {
            compiler.problem("timeout_secs", "must be at least 1 second");
        }
        if let Some(auth) = &self.auth {
            auth.check(&mut compiler);
        }
        for (name, value) in &self.headers {
            if HeaderName::from_bytes(name.trim().as_bytes()).is_err() {
                compiler.problem(format!("headers.{name}"), "is not a valid header name");
            } else if HeaderValue::from_str(value.expose().trim()).is_err() {
                compiler.problem(
                    format!("headers.{name}"),
                    "the value has characters a header cannot carry (e.g. a line break)",
                );
            }
        }
        if self.ticket.is_none() && self.contact.is_none() {
            compiler.problem(
                "ticket",
                "configure at least one role: a [connectors.<name>.ticket] section \
                 (ticketing) and/or a [connectors.<name>.contact] section (CRM)",
            );
        }
        let check = compiler.call("check", &self.check, Role::Check, &[], None);
        let ticket = self.ticket.as_ref().map(|t| compiler.ticket(t));
        let contact = self.contact.as_ref().map(|c| compiler.contact(c));
        if !compiler.problems.is_empty() {
            return Err(compiler.problems);
        }
        // Each part is `None` only after it reported a problem: unreachable, but not a panic.
        let incomplete = || vec![ConfigProblem::new("check", "could not be compiled")];
        Ok(Plan {
            check: check.ok_or_else(incomplete)?,
            ticket: ticket.map(|t| t.ok_or_else(incomplete)).transpose()?,
            contact: contact.map(|c| c.ok_or_else(incomplete)).transpose()?,
        })
    }

    /// Checks `url`; whether it is valid.
    fn check_url(&self, compiler: &mut Compiler<'_>) -> bool {
        let before = compiler.problems.len();
        match reqwest::Url::parse(self.url.trim()) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                compiler.problem("url", "must start with http:// or https://")
            }
            Ok(url) if url.host_str().is_none() => compiler.problem("url", "must name a host"),
            Ok(url) if url.query().is_some() || url.fragment().is_some() => compiler.problem(
                "url",
                "must not carry a query or fragment (put queries in each request's path)",
            ),
            Ok(_) => {}
            Err(err) => compiler.problem(
                "url",
                format!("is not a valid URL ({err}); expected e.g. https://api.example.com"),
            ),
        }
        compiler.problems.len() == before
    }
}

impl HttpAuth {
    fn check(&self, compiler: &mut Compiler<'_>) {
        let bearer = self.bearer.is_some();
        let header = self.header.is_some() || self.value.is_some();
        let basic = self.username.is_some() || self.password.is_some();
        match [bearer, header, basic].iter().filter(|set| **set).count() {
            0 => compiler.problem(
                "auth",
                "give one of: bearer = \"…\"; header = \"X-Api-Key\" and value = \"…\"; \
                 username = \"…\" and password = \"…\"",
            ),
            1 => {}
            _ => compiler.problem(
                "auth",
                "give only one of bearer, header + value, username + password",
            ),
        }
        let usable = |secret: &Secret| {
            !secret.is_empty() && HeaderValue::from_str(secret.expose().trim()).is_ok()
        };
        if let Some(token) = &self.bearer {
            if !usable(token) {
                compiler.problem(
                    "auth.bearer",
                    "must be the token, without line breaks (and without `Bearer `)",
                );
            }
        }
        if header {
            match &self.header {
                Some(name) if HeaderName::from_bytes(name.trim().as_bytes()).is_ok() => {}
                Some(_) => compiler.problem("auth.header", "is not a valid header name"),
                None => compiler.problem(
                    "auth.header",
                    "required with value: the header's name, e.g. \"X-Api-Key\"",
                ),
            }
            match &self.value {
                Some(value) if usable(value) => {}
                Some(_) => compiler.problem("auth.value", "must be non-empty, without line breaks"),
                None => compiler.problem("auth.value", "required with header: the credential"),
            }
        }
        if basic {
            match &self.username {
                Some(user) if !user.trim().is_empty() && !user.contains(':') => {}
                _ => compiler.problem(
                    "auth.username",
                    "required with password: a user name without `:`",
                ),
            }
            if self.password.as_ref().is_none_or(Secret::is_empty) {
                compiler.problem("auth.password", "required with username");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_needs_only_a_path() {
        let request: HttpRequest =
            serde_json::from_value(serde_json::json!({"path": "/me"})).expect("parses");
        assert_eq!(request.method, None);
        assert!(!request.empty_on_404);
    }

    #[test]
    fn rejects_unknown_keys_in_requests() {
        let typo = serde_json::from_value::<HttpRequest>(
            serde_json::json!({"path": "/me", "methd": "GET"}),
        );
        assert!(typo.is_err());
    }
}
