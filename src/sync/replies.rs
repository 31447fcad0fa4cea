//! Agents' replies, from the ticket back to the customer on WhatsApp.
//!
//! Each destination that has replies (RT) is polled: new public replies since a stored cursor
//! become jobs (deduplicated by the reply's id) in the conversation's outbound queue. A reply
//! goes through the policy gate like every outbound message: free-form text only inside the
//! 24-hour window and never after an opt-out. A reply that may not be sent is not lost
//! silently: the ticket gets an internal note saying why and what to do instead.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use wabridge_connectors::{AgentReply, TicketRef};

use super::{store_failure, Runner};
use crate::policy::{self, Decision, Intent, Origin, PolicyConfig};
use crate::queue::Failure;
use crate::whatsapp::sender::{OutboundMessage, Recipient, SendRequest};

/// The business number and the recipient of a conversation key (`{phone_number_id}:{contact}`,
/// the contact a phone number or `u:` and a BSUID).
pub(super) fn recipient_of(conversation: &str) -> Result<(&str, Recipient), Failure> {
    let Some((phone_number_id, contact)) = conversation.split_once(':') else {
        return Err(Failure::Permanent {
            reason: format!("not a conversation key: {conversation}"),
        });
    };
    let to = match contact.strip_prefix("u:") {
        Some(bsuid) => Recipient::Bsuid(bsuid.to_owned()),
        None => Recipient::Phone(contact.to_owned()),
    };
    Ok((phone_number_id, to))
}

fn cursor_key(destination: &str) -> Vec<u8> {
    format!("replies:{destination}").into_bytes()
}

impl Runner {
    /// Polls every destination for agents' replies until shutdown.
    pub async fn run_reply_poller(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            for (name, connector) in &self.connectors.ticketing {
                if let Err(err) = self.poll_replies(name, connector.as_ref()).await {
                    tracing::warn!(connector = %name, error = %err, "Polling agents' replies failed; retrying at the next round.");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.reply_poll) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn poll_replies(
        &self,
        destination: &str,
        connector: &dyn wabridge_connectors::TicketSystem,
    ) -> Result<(), String> {
        let store = &self.store;
        let cursor = store
            .meta
            .get(cursor_key(destination))
            .map_err(|e| e.to_string())?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        let (replies, next) = connector
            .replies_since(cursor.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        if replies.is_empty() && next == cursor {
            return Ok(());
        }
        let cursor = next.map(|next| (cursor_key(destination), next));
        self.queue_replies(destination, replies, cursor)
            .await
            .map_err(|e| e.to_string())
    }

    /// One attempt of an opt-out confirmation: sent only if the gate allows it (window open),
    /// otherwise just audited.
    pub(super) async fn send_confirmation(
        &self,
        conversation: &str,
        text: &str,
        message_id: &str,
    ) -> Result<(), Failure> {
        self.send_free_form(
            conversation,
            Origin::OptOutConfirmation,
            "opt-out confirmation",
            &format!("confirm:{message_id}"),
            OutboundMessage::Text {
                body: text.to_owned(),
                preview_url: false,
            },
            Some(message_id.to_owned()),
        )
        .await
        .map(|_| ())
    }

    /// One attempt of an agent's reply.
    pub(super) async fn send_reply(
        &self,
        destination: &str,
        conversation: &str,
        reply: &AgentReply,
    ) -> Result<(), Failure> {
        let (phone_number_id, to) = recipient_of(conversation)?;
        let store = &self.store;
        let key = format!("reply:{destination}:{}", reply.id);
        let now = Utc::now();
        let margin = self.consent.window_margin();
        let contact_state = self.contact_state(conversation)?;
        // A reply is free-form text, unless the agent asked for a template.
        let (subject, intent, message) = match parse_template_command(&reply.text) {
            None => (
                "agent reply",
                Intent::FreeForm {
                    origin: Origin::AgentReply,
                },
                OutboundMessage::Text {
                    body: reply.text.clone(),
                    preview_url: false,
                },
            ),
            Some(Err(problem)) => {
                self.note_blocked(destination, reply, conversation, "agent template", &format!(
                    "The /template command could not be read: {problem}. Write it as /template <name> lang=<code> 1=<value> 2=\"<value with spaces>\"."
                ))
                .await?;
                return Ok(());
            }
            Some(Ok(command)) => {
                let catalog = store.templates().map_err(store_failure)?;
                let found = catalog.iter().find(|t| {
                    t.name == command.name
                        && command.language.as_ref().is_none_or(|l| *l == t.language)
                });
                let info = found
                    .map(|t| t.info())
                    .unwrap_or_else(|| policy::TemplateInfo {
                        name: command.name.clone(),
                        language: command.language.clone().unwrap_or_default(),
                        category: policy::Category::Other(String::new()),
                        status: policy::TemplateStatus::Other("NOT IN THE CATALOG".into()),
                        body_params: 0,
                        header_params: 0,
                        button_params: Vec::new(),
                    });
                let language = command
                    .language
                    .clone()
                    .unwrap_or_else(|| info.language.clone());
                let parameters: Vec<serde_json::Value> = command
                    .body
                    .iter()
                    .map(|text| serde_json::json!({ "type": "text", "text": text }))
                    .collect();
                let components = if parameters.is_empty() {
                    Vec::new()
                } else {
                    vec![serde_json::json!({ "type": "body", "parameters": parameters })]
                };
                (
                    "agent template",
                    Intent::Template {
                        template: info,
                        params: policy::ParamCounts {
                            body: command.body.len(),
                            header: 0,
                            buttons: Vec::new(),
                        },
                        business_initiated: !contact_state.window_open(now, margin),
                    },
                    OutboundMessage::Template {
                        name: command.name,
                        language,
                        components,
                    },
                )
            }
        };
        let decision = policy::decide(
            &intent,
            &contact_state,
            now,
            &PolicyConfig {
                window_margin: margin,
            },
        );
        match decision {
            Decision::Allow => {}
            Decision::Block(reason) => {
                let catalog: Vec<policy::TemplateInfo> = store
                    .templates()
                    .unwrap_or_default()
                    .iter()
                    .map(|t| t.info())
                    .collect();
                let text = reason.explain(&catalog);
                self.note_blocked(destination, reply, conversation, subject, &text)
                    .await?;
                return Ok(());
            }
            Decision::Defer { reason, .. } => {
                return Err(Failure::Retry {
                    reason: reason.to_string(),
                    retry_after: Some(Duration::from_secs(60)),
                })
            }
        }
        let request = SendRequest {
            phone_number_id: phone_number_id.to_owned(),
            to,
            message,
            reply_to: None,
            callback_data: Some(key.chars().take(512).collect()),
        };
        self.send_once(&key, conversation, subject, &request)
            .await?;
        self.agent_answered(conversation, Utc::now());
        Ok(())
    }

    /// Tells the agent, inside the ticket, that a reply was not sent and why; audits it.
    async fn note_blocked(
        &self,
        destination: &str,
        reply: &AgentReply,
        conversation: &str,
        subject: &str,
        why: &str,
    ) -> Result<(), Failure> {
        if let Some(connector) = self.connectors.ticketing.get(destination) {
            connector
                .note(
                    &TicketRef(reply.ticket.0.clone()),
                    &format!(
                        "wabridge: this reply was NOT sent to the customer on WhatsApp. {why}"
                    ),
                )
                .await
                .map_err(|err| Failure::Retry {
                    reason: format!("writing the blocked-reply note: {err}"),
                    retry_after: None,
                })?;
        }
        let entry = crate::store::AuditEntry::new(
            Utc::now(),
            Some(conversation.to_owned()),
            subject,
            "block",
            why.to_owned(),
        );
        self.store.audit(&entry).map_err(store_failure)
    }
}

/// `/template <name> [lang=<code>] [1=<value>] [2="<value with spaces>"] …` in an agent's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateCommand {
    pub(crate) name: String,
    pub(crate) language: Option<String>,
    pub(crate) body: Vec<String>,
}

/// `None` when the reply is not a command; `Some(Err(why))` when it is one but unreadable.
pub(crate) fn parse_template_command(text: &str) -> Option<Result<TemplateCommand, String>> {
    let rest = text.trim().strip_prefix("/template")?;
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in rest.trim().chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Some(Err("a quote is not closed".into()));
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    let mut tokens = tokens.into_iter();
    let Some(name) = tokens.next().filter(|n| !n.contains('=')) else {
        return Some(Err("the template name is missing".into()));
    };
    let mut language = None;
    let mut numbered: Vec<(usize, String)> = Vec::new();
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            return Some(Err(format!("\"{token}\" is not key=value")));
        };
        match (key, key.parse::<usize>()) {
            ("lang", _) => language = Some(value.to_owned()),
            (_, Ok(n)) if n >= 1 => numbered.push((n, value.to_owned())),
            _ => return Some(Err(format!("unknown parameter \"{key}\""))),
        }
    }
    numbered.sort_by_key(|(n, _)| *n);
    if numbered.iter().enumerate().any(|(i, (n, _))| *n != i + 1) {
        return Some(Err(
            "parameters must be numbered 1, 2, 3… without gaps".into()
        ));
    }
    Some(Ok(TemplateCommand {
        name,
        language,
        body: numbered.into_iter().map(|(_, v)| v).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_template_command_with_quoted_values() {
        let command =
            parse_template_command("/template order_update lang=en 2=\"ships Monday\" 1=Aisha")
                .expect("a command")
                .expect("readable");
        assert_eq!(command.name, "order_update");
        assert_eq!(command.language.as_deref(), Some("en"));
        assert_eq!(
            command.body,
            vec!["Aisha".to_owned(), "ships Monday".to_owned()]
        );
    }

    #[test]
    fn plain_replies_are_not_commands_and_bad_commands_say_why() {
        assert!(parse_template_command("Thanks, /template is a word here").is_none());
        assert!(parse_template_command("/templates").is_none());
        assert!(matches!(parse_template_command("/template"), Some(Err(_))));
        assert!(matches!(
            parse_template_command("/template x 2=b"),
            Some(Err(_))
        ));
        assert!(matches!(
            parse_template_command("/template x 1=\"open"),
            Some(Err(_))
        ));
    }
}
