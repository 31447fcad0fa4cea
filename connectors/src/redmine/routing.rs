//! Routing a Redmine issue: category, assignee, priority, tags and hand-over (see
//! [`TicketSystem::route`](crate::TicketSystem::route)).
//!
//! - One `GET /issues/{id}.json?include=journals` first; only what differs is written, fields
//!   and note together in one `PUT /issues/{id}.json` (all or nothing). The same routing applied
//!   twice writes nothing the second time.
//! - The department is an **issue category** of the configured project (a name or numeric id,
//!   names resolved through `GET /projects/{project}/issue_categories.json`, cached and read
//!   again when a name is not in it). Moving the issue to another project is not offered: the
//!   connector finds a conversation's issue and polls agents' replies in the configured project
//!   only.
//! - The assignee is a numeric user id, or a login (or e-mail address) resolved through `GET
//!   /users.json?name=…`, which Redmine allows administrators only: with another user's key give
//!   ids.
//! - Priorities are matched by name (`Low`, `Normal`, `High`, `Urgent`, any case) among the
//!   active issue priorities (`GET /enumerations/issue_priorities.json`, read once), which
//!   Redmine lists lowest first; `Immediate` is never chosen. Sites that renamed them get a
//!   permanent error naming the missing one.
//! - Redmine has no tags: they are listed in the routing note.
//! - A hand-over reopens a closed issue (status `reopen_status_id`, else the first open status),
//!   raises the priority to at least High, and writes a private note `wabridge: the customer
//!   asked for a person: <reason>` ending with [`ROUTING_MARKER`]. The note is skipped when no
//!   reopening is due and the issue's newest routing note says the same.
//! - Redmine silently ignores fields a user may not set (no permission, a workflow that forbids
//!   the status): after a write the issue is read again and anything that did not take is a
//!   permanent error.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::client::{Enumeration, Issue, Named};
use super::RedmineConnector;
use crate::routing_support::{non_blank, same_text};
use crate::{ConnectorError, Priority, TicketRef, TicketRouting};

/// The line that ends every routing note; the newest note holding it is the last one.
pub const ROUTING_MARKER: &str = "[wa:routing]";

/// The routing note: the hand-over's reason and/or the tags, then [`ROUTING_MARKER`]; `None`
/// when there is nothing to say.
pub fn routing_note(handover: Option<&str>, tags: &[String]) -> Option<String> {
    let mut lines = Vec::new();
    match handover.map(str::trim) {
        Some("") => lines.push("wabridge: the customer asked for a person.".to_owned()),
        Some(reason) => lines.push(format!(
            "wabridge: the customer asked for a person: {reason}"
        )),
        None => {}
    }
    if !tags.is_empty() {
        lines.push(format!("wabridge: tags: {}", tags.join(", ")));
    }
    if lines.is_empty() {
        return None;
    }
    lines.push(ROUTING_MARKER.to_owned());
    Some(lines.join("\n"))
}

fn numeric(value: &str) -> Option<u64> {
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse().ok())
        .flatten()
        .filter(|id| *id > 0)
}

fn issue_id(ticket: &TicketRef) -> Result<u64, ConnectorError> {
    numeric(ticket.0.trim()).ok_or_else(|| ConnectorError::Permanent {
        reason: "redmine: the ticket is not a Redmine issue number".to_owned(),
    })
}

/// The Redmine name of a routing priority.
fn priority_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Low => "Low",
        Priority::Normal => "Normal",
        Priority::High => "High",
        Priority::Urgent => "Urgent",
    }
}

/// Caches of the names routing resolves.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Category names (lowercase) → ids; `None` until first read.
    categories: Mutex<Option<HashMap<String, u64>>>,
    /// Logins (lowercase) → user ids.
    users: Mutex<HashMap<String, u64>>,
}

impl Names {
    fn category(&self, name: &str) -> Option<u64> {
        let categories = self.categories.lock().ok()?;
        categories.as_ref()?.get(&name.to_lowercase()).copied()
    }

    fn set_categories(&self, list: Vec<Enumeration>) {
        if let Ok(mut cached) = self.categories.lock() {
            let map = list
                .into_iter()
                .map(|c| (c.name.trim().to_lowercase(), c.id))
                .collect();
            *cached = Some(map);
        }
    }

    fn user(&self, login: &str) -> Option<u64> {
        self.users.lock().ok()?.get(&login.to_lowercase()).copied()
    }

    fn set_user(&self, login: &str, id: u64) {
        if let Ok(mut users) = self.users.lock() {
            users.insert(login.to_lowercase(), id);
        }
    }
}

/// The fields a routing sets, to compare with the issue after the write.
#[derive(Debug, Default)]
struct Targets {
    category: Option<u64>,
    assignee: Option<u64>,
    priority: Option<u64>,
    status: Option<u64>,
}

impl Targets {
    fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        for (key, value) in [
            ("category_id", self.category),
            ("assigned_to_id", self.assignee),
            ("priority_id", self.priority),
            ("status_id", self.status),
        ] {
            if let Some(value) = value {
                fields.insert(key.into(), Value::from(value));
            }
        }
        fields
    }

    fn not_applied(&self, after: &Issue) -> Vec<&'static str> {
        let id = |named: &Option<Named>| named.as_ref().map(|n| n.id);
        let mut missing = Vec::new();
        if self.category.is_some() && id(&after.category) != self.category {
            missing.push("the category");
        }
        if self.assignee.is_some() && id(&after.assigned_to) != self.assignee {
            missing.push("the assignee");
        }
        if self.priority.is_some() && id(&after.priority) != self.priority {
            missing.push("the priority");
        }
        if self.status.is_some() && Some(after.status.id) != self.status {
            missing.push("the status");
        }
        missing
    }
}

impl RedmineConnector {
    async fn category_id(&self, department: &str) -> Result<u64, ConnectorError> {
        if let Some(id) = numeric(department) {
            return Ok(id);
        }
        if let Some(id) = self.names.category(department) {
            return Ok(id);
        }
        self.names
            .set_categories(self.client.categories(self.project()).await?);
        self.names
            .category(department)
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!(
                    "redmine: routing: project `{}` has no issue category `{department}` \
                     (project Settings → Issue categories)",
                    self.project()
                ),
            })
    }

    async fn user_id(&self, assignee: &str) -> Result<u64, ConnectorError> {
        if let Some(id) = numeric(assignee) {
            return Ok(id);
        }
        if let Some(id) = self.names.user(assignee) {
            return Ok(id);
        }
        let id = self
            .client
            .user_with_login(assignee)
            .await?
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!(
                    "redmine: routing: Redmine has no active user with the login `{assignee}`"
                ),
            })?;
        self.names.set_user(assignee, id);
        Ok(id)
    }

    /// The active priorities, lowest first, read once.
    async fn priority_list(&self) -> Result<&[Enumeration], ConnectorError> {
        self.priorities
            .get_or_try_init(|| async {
                let mut list = self.client.priorities().await?;
                list.retain(|p| p.active && p.id != 0);
                Ok(list)
            })
            .await
            .map(Vec::as_slice)
    }

    /// The position (rank) and id of the priority named `name`.
    async fn priority(&self, name: &str) -> Result<(usize, u64), ConnectorError> {
        self.priority_list()
            .await?
            .iter()
            .enumerate()
            .find(|(_, p)| p.name.trim().eq_ignore_ascii_case(name))
            .map(|(rank, p)| (rank, p.id))
            .ok_or_else(|| ConnectorError::Permanent {
                reason: format!(
                    "redmine: routing: Redmine has no active issue priority named `{name}` \
                     (Administration → Enumerations)"
                ),
            })
    }

    async fn targets(
        &self,
        issue: &Issue,
        routing: &TicketRouting,
    ) -> Result<Targets, ConnectorError> {
        let current = |named: &Option<Named>| named.as_ref().map(|n| n.id);
        let mut targets = Targets::default();
        let wanted_priority = routing.priority.map(priority_name);
        if let Some(department) = non_blank(routing.department.as_ref()) {
            let id = self.category_id(department).await?;
            targets.category = Some(id).filter(|id| current(&issue.category) != Some(*id));
        }
        if let Some(assignee) = non_blank(routing.assignee.as_ref()) {
            let id = self.user_id(assignee).await?;
            targets.assignee = Some(id).filter(|id| current(&issue.assigned_to) != Some(*id));
        }
        let mut priority = match wanted_priority {
            Some(name) => Some(self.priority(name).await?),
            None => None,
        };
        if routing.handover.is_some() {
            let high = self.priority("High").await?;
            let base = match priority {
                Some(wanted) => Some(wanted),
                None => {
                    let list = self.priority_list().await?;
                    current(&issue.priority)
                        .and_then(|id| list.iter().position(|p| p.id == id).map(|rank| (rank, id)))
                }
            };
            priority = Some(match base {
                Some(base) if base.0 >= high.0 => base,
                _ => high,
            });
            if issue.status.is_closed {
                targets.status = Some(self.reopen_status().await?);
            }
        }
        targets.priority = priority
            .map(|(_, id)| id)
            .filter(|id| current(&issue.priority) != Some(*id));
        Ok(targets)
    }

    pub(super) async fn apply_routing(
        &self,
        ticket: &TicketRef,
        routing: &TicketRouting,
    ) -> Result<(), ConnectorError> {
        let id = issue_id(ticket)?;
        let issue =
            self.client
                .issue(id, true)
                .await?
                .ok_or_else(|| ConnectorError::Permanent {
                    reason: format!(
                    "redmine: routing: issue {id} does not exist, or the API key's user may not \
                     see it"
                ),
                })?;
        let targets = self.targets(&issue, routing).await?;
        let mut fields = targets.fields();
        let mut tags: Vec<String> = Vec::new();
        for tag in routing.tags.iter().map(|t| t.trim()) {
            if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        if let Some(note) = routing_note(routing.handover.as_deref(), &tags) {
            let last = issue
                .journals
                .iter()
                .rev()
                .find(|journal| journal.notes.contains(ROUTING_MARKER));
            let said = last.is_some_and(|journal| same_text(&journal.notes, &note));
            if targets.status.is_some() || !said {
                fields.insert("notes".into(), Value::from(note));
                fields.insert("private_notes".into(), Value::from(true));
            }
        }
        if fields.is_empty() {
            return Ok(());
        }
        self.client
            .update_issue(
                id,
                &json!({ "issue": fields }),
                "redmine: routing: updating the issue",
            )
            .await?;
        let changed = targets.category.is_some()
            || targets.assignee.is_some()
            || targets.priority.is_some()
            || targets.status.is_some();
        if changed {
            let after =
                self.client
                    .issue(id, false)
                    .await?
                    .ok_or_else(|| ConnectorError::Permanent {
                        reason: format!("redmine: routing: issue {id} vanished after the update"),
                    })?;
            let missing = targets.not_applied(&after);
            if !missing.is_empty() {
                return Err(ConnectorError::Permanent {
                    reason: format!(
                        "redmine: routing: Redmine did not apply {} to issue {id}: the API key's \
                         user needs the permissions to edit and assign issues and to change \
                         their priority, and a workflow that allows the status change",
                        missing.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    pub(super) async fn resolved(&self, ticket: &TicketRef) -> Result<bool, ConnectorError> {
        let id = issue_id(ticket)?;
        // An issue that is gone (deleted, or out of sight) holds no conversation.
        Ok(self
            .client
            .issue(id, false)
            .await?
            .is_none_or(|issue| issue.status.is_closed))
    }
}
