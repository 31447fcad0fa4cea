//! Small helpers the connectors' routing shares (see [`crate::TicketSystem::route`]).

use std::collections::HashMap;
use std::sync::Mutex;

/// Whether two texts are the same but for white space.
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// The value, trimmed, unless it is missing or blank.
pub(crate) fn non_blank(value: Option<&String>) -> Option<&str> {
    value.map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The value as a numeric id, when it is only digits.
pub(crate) fn numeric(value: &str) -> Option<u64> {
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse().ok())
        .flatten()
}

/// Group names and agent e-mail addresses resolved to ids (Zendesk, Freshdesk), kept for the
/// life of the connector; case-insensitive.
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Group names (lowercase) → ids; `None` until first read.
    groups: Mutex<Option<HashMap<String, u64>>>,
    /// Agent e-mail addresses (lowercase) → ids.
    agents: Mutex<HashMap<String, u64>>,
}

impl Names {
    /// The id of a group by name, if the cached list has it.
    pub(crate) fn group(&self, name: &str) -> Option<u64> {
        let groups = self.groups.lock().ok()?;
        groups.as_ref()?.get(&name.to_lowercase()).copied()
    }

    /// Replaces the cached group list.
    pub(crate) fn set_groups(&self, groups: Vec<(u64, String)>) {
        if let Ok(mut cached) = self.groups.lock() {
            let map = groups
                .into_iter()
                .map(|(id, name)| (name.trim().to_lowercase(), id))
                .collect();
            *cached = Some(map);
        }
    }

    /// The id of an agent by e-mail address, if resolved before.
    pub(crate) fn agent(&self, email: &str) -> Option<u64> {
        self.agents.lock().ok()?.get(&email.to_lowercase()).copied()
    }

    /// Remembers an agent's id.
    pub(crate) fn set_agent(&self, email: &str, id: u64) {
        if let Ok(mut agents) = self.agents.lock() {
            agents.insert(email.to_lowercase(), id);
        }
    }
}
