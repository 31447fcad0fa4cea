//! The outbox worker: a template send decided by a mapping goes through the policy gate right
//! before it is sent (so an opt-out recorded after it was queued still wins), then to the Graph
//! API, and every decision lands in the audit log.
//!
//! Once in effect: a send that Meta accepted is recorded by idempotency key and never repeated;
//! a send written to Meta whose answer was lost (crash, timeout) keeps a `sending` marker and
//! goes to the dead letters as an unknown outcome instead of being resent blindly.

use chrono::Utc;
use serde_json::Value;
use sled::Transactional;

use crate::mapping::SendIntent;
use crate::policy::{self, ConsentEvent, Decision, Intent, ParamCounts, PolicyConfig};
use crate::queue::Failure;
use crate::store::{AuditEntry, StoreError};
use crate::whatsapp::sender::{Action, OutboundMessage, Recipient, SendError, SendRequest};

use super::{store_failure, Runner};

/// How long a deferred send (template paused or pending) waits before it is checked again.
const DEFER_RETRY: std::time::Duration = std::time::Duration::from_secs(600);

/// The parameter counts a send carries, per component.
fn param_counts(components: &[Value]) -> ParamCounts {
    let mut counts = ParamCounts::default();
    for component in components {
        let n = component["parameters"].as_array().map_or(0, Vec::len);
        match component["type"].as_str().unwrap_or("") {
            "header" => counts.header = n,
            "body" => counts.body = n,
            "button" => {
                let index = component["index"]
                    .as_str()
                    .and_then(|i| i.parse::<usize>().ok())
                    .or_else(|| component["index"].as_u64().map(|i| i as usize))
                    .unwrap_or(0);
                if counts.buttons.len() <= index {
                    counts.buttons.resize(index + 1, 0);
                }
                counts.buttons[index] = n;
            }
            _ => {}
        }
    }
    counts
}

impl Runner {
    /// The consent ledger and window of a conversation (empty when never seen).
    pub(super) fn contact_state(
        &self,
        conversation: &str,
    ) -> Result<policy::ContactState, Failure> {
        Ok(self
            .store
            .contact(conversation)
            .map_err(store_failure)?
            .unwrap_or_default())
    }

    /// One attempt of an outbound template send.
    pub(super) async fn send_outbound(
        &self,
        phone_number_id: &str,
        intent: &SendIntent,
        maybe_delivered: bool,
    ) -> Result<(), Failure> {
        let store = &self.store;
        let key = intent.idempotency_key.as_bytes();
        let contact_key = format!("{phone_number_id}:{}", intent.to);
        let subject = format!("template {} ({})", intent.template, intent.mapping);
        let audit = |decision: &str, reason: String| {
            let entry = AuditEntry::new(
                Utc::now(),
                Some(contact_key.clone()),
                &subject,
                decision,
                reason,
            );
            if let Err(err) = store.audit(&entry) {
                tracing::error!(error = %err, "Writing the audit log failed.");
            }
        };
        if store
            .sent
            .get(key)
            .map_err(|e| store_failure(e.into()))?
            .is_some()
        {
            return Ok(());
        }
        if maybe_delivered
            && store
                .sending
                .get(key)
                .map_err(|e| store_failure(e.into()))?
                .is_some()
        {
            let reason = "an earlier attempt reached Meta's API but its answer was not recorded \
                          (crash or timeout): not resent blindly; check the customer's chat, \
                          then replay the dead letter if the message did not arrive"
                .to_owned();
            audit("unknown_outcome", reason.clone());
            return Err(Failure::Permanent { reason });
        }

        // The policy gate, with the state as it is now.
        let now = Utc::now();
        let contact = self.contact_state(&contact_key)?;
        let catalog: Vec<policy::TemplateInfo> = store
            .templates()
            .map_err(store_failure)?
            .iter()
            .map(|t| t.info())
            .collect();
        let template = catalog
            .iter()
            .find(|t| t.name == intent.template && t.language == intent.language)
            .cloned()
            .unwrap_or_else(|| policy::TemplateInfo {
                name: intent.template.clone(),
                language: intent.language.clone(),
                category: policy::Category::Other(String::new()),
                status: policy::TemplateStatus::Other("NOT IN THE CATALOG".into()),
                body_params: 0,
                header_params: 0,
                button_params: Vec::new(),
            });
        let decision = policy::decide(
            &Intent::Template {
                template,
                params: param_counts(&intent.components),
                business_initiated: true,
            },
            &contact,
            now,
            &PolicyConfig {
                window_margin: self.consent.window_margin(),
            },
        );
        match decision {
            Decision::Allow => {}
            Decision::Block(reason) => {
                let text = reason.explain(&catalog);
                audit("block", text.clone());
                return Err(Failure::Permanent {
                    reason: format!("blocked by policy: {text}"),
                });
            }
            Decision::Defer { until, reason } => {
                audit("defer", reason.to_string());
                let wait = until
                    .and_then(|u| (u - now).to_std().ok())
                    .unwrap_or(DEFER_RETRY);
                return Err(Failure::Retry {
                    reason: format!("deferred by policy: {reason}"),
                    retry_after: Some(wait),
                });
            }
        }

        let request = SendRequest {
            phone_number_id: phone_number_id.to_owned(),
            to: Recipient::Phone(intent.to.clone()),
            message: OutboundMessage::Template {
                name: intent.template.clone(),
                language: intent.language.clone(),
                components: intent.components.clone(),
            },
            reply_to: None,
            callback_data: Some(intent.idempotency_key.chars().take(512).collect()),
        };
        self.send_once(&intent.idempotency_key, &contact_key, &subject, &request)
            .await
    }

    /// Sends once per idempotency `key`: marks the send durably, sends, records the wamid,
    /// feeds Meta's refusals back into the ledger, audits the outcome.
    pub(super) async fn send_once(
        &self,
        key: &str,
        contact_key: &str,
        subject: &str,
        request: &SendRequest,
    ) -> Result<(), Failure> {
        let store = &self.store;
        let now = Utc::now();
        let audit = |decision: &str, reason: String, wamid: Option<&str>| {
            let mut entry = AuditEntry::new(
                Utc::now(),
                Some(contact_key.to_owned()),
                subject,
                decision,
                reason,
            );
            entry.wamid = wamid.map(str::to_owned);
            if let Err(err) = store.audit(&entry) {
                tracing::error!(error = %err, "Writing the audit log failed.");
            }
        };
        let key = key.as_bytes();
        // Written to Meta from here on: mark it durably first.
        store
            .sending
            .insert(key, now.to_rfc3339().as_bytes())
            .map_err(|e| store_failure(e.into()))?;
        store.durable().await.map_err(store_failure)?;
        let clear_marker = || {
            let _ = store.sending.remove(key);
        };
        match self.sender.send(request).await {
            Ok(sent) => {
                let recorded = (&store.sent, &store.sending).transaction(|(sent_tree, sending)| {
                    sent_tree.insert(key, sent.wamid.as_bytes())?;
                    sending.remove(key)?;
                    Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
                });
                if let Err(err) = recorded {
                    tracing::error!(error = %StoreError::from(err), "Recording a sent message failed.");
                }
                audit(
                    "sent",
                    format!("accepted by Meta as {}", sent.wamid),
                    Some(&sent.wamid),
                );
                self.log_sent(contact_key, &sent.wamid, timeline_text(request))
                    .await;
                Ok(())
            }
            Err(SendError::Retry {
                reason,
                retry_after,
            }) => {
                clear_marker();
                Err(Failure::Retry {
                    reason,
                    retry_after,
                })
            }
            Err(SendError::Rejected {
                code,
                reason,
                action,
            }) => {
                clear_marker();
                let feedback = match action {
                    Action::Undeliverable => Some(ConsentEvent::Undeliverable { at: now }),
                    Action::MarketingOptOut => Some(ConsentEvent::MarketingStop { at: now }),
                    Action::None
                    | Action::WindowClosed
                    | Action::PerUserMarketingLimit
                    | Action::TemplatePaused
                    | Action::TemplateDisabled
                    | Action::TemplateMissing
                    | Action::ParamMismatch
                    | Action::TokenInvalid
                    | Action::AccountProblem => None,
                };
                if let Some(event) = feedback {
                    store
                        .record_consent(contact_key, event)
                        .map_err(store_failure)?;
                }
                let reason = match code {
                    Some(code) => format!(
                        "Meta refused the send ({code}, {}): {reason}",
                        action.as_str()
                    ),
                    None => format!("Meta refused the send ({}): {reason}", action.as_str()),
                };
                audit("failed", reason.clone(), None);
                Err(Failure::Permanent { reason })
            }
            Err(SendError::UnknownOutcome { reason }) => {
                let reason = format!(
                    "outcome unknown ({reason}): not resent blindly; check the customer's chat, then replay if it did not arrive"
                );
                audit("unknown_outcome", reason.clone(), None);
                Err(Failure::Permanent { reason })
            }
        }
    }
}

/// How a message the business sent reads on a CRM timeline.
fn timeline_text(request: &SendRequest) -> String {
    match &request.message {
        OutboundMessage::Text { body, .. } => body.clone(),
        OutboundMessage::Template {
            name,
            language,
            components,
        } => {
            let values: Vec<String> = components
                .iter()
                .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| {
                    p["text"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| p["currency"]["fallback_value"].as_str().map(str::to_owned))
                        .or_else(|| p["date_time"]["fallback_value"].as_str().map(str::to_owned))
                })
                .collect();
            if values.is_empty() {
                format!("[template {name} ({language})]")
            } else {
                format!("[template {name} ({language})] {}", values.join(" · "))
            }
        }
        other => format!("[{}]", other.type_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parameters_per_component_and_button_index() {
        let components: Vec<Value> = serde_json::from_str(
            r#"[{"type":"header","parameters":[{"type":"image","image":{"link":"x"}}]},
                {"type":"body","parameters":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
                {"type":"button","sub_type":"url","index":"1","parameters":[{"type":"text","text":"t"}]}]"#,
        )
        .expect("json");
        let counts = param_counts(&components);
        assert_eq!((counts.header, counts.body), (1, 2));
        assert_eq!(counts.buttons, vec![0, 1]);
    }
}
