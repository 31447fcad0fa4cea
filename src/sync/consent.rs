//! What inbound traffic says about consent: a customer's message opens the 24-hour window, a
//! STOP keyword or button opts them out (at once, before anything else is sent), START opts
//! them back in, and Meta's `user_preferences` webhook stops or resumes marketing.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::policy::{ConsentEvent, OptOutSource};
use crate::whatsapp::model::{Message, UserPreferencesValue};

/// `[policy]`: consent keywords and the window's safety margin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Messages (or quick-reply payloads) that opt the customer out, compared without case,
    /// surrounding punctuation or Arabic diacritics.
    #[serde(default = "PolicySettings::default_opt_out_keywords")]
    pub opt_out_keywords: Vec<String>,
    /// Messages that opt the customer (back) in.
    #[serde(default = "PolicySettings::default_opt_in_keywords")]
    pub opt_in_keywords: Vec<String>,
    /// The confirmation sent after an opt-out (while the window is open).
    #[serde(default = "PolicySettings::default_opt_out_confirmation")]
    pub opt_out_confirmation: String,
    /// The same in Arabic, sent when the customer opted out in Arabic.
    #[serde(default = "PolicySettings::default_opt_out_confirmation_arabic")]
    pub opt_out_confirmation_arabic: String,
    /// Minutes before the 24-hour window's end after which free-form messages are no longer
    /// sent (clock skew, queueing).
    #[serde(default = "PolicySettings::default_window_margin_minutes")]
    pub window_margin_minutes: u64,
}

impl PolicySettings {
    fn default_opt_out_keywords() -> Vec<String> {
        [
            "STOP",
            "UNSUBSCRIBE",
            "STOP ALL",
            "OPT OUT",
            "OPTOUT",
            "إيقاف",
            "ايقاف",
            "إلغاء",
            "الغاء",
            "إلغاء الاشتراك",
            "الغاء الاشتراك",
        ]
        .map(String::from)
        .to_vec()
    }
    fn default_opt_in_keywords() -> Vec<String> {
        ["START", "SUBSCRIBE", "ابدأ", "اشتراك"]
            .map(String::from)
            .to_vec()
    }
    fn default_window_margin_minutes() -> u64 {
        5
    }
    fn default_opt_out_confirmation() -> String {
        "You will not receive more messages from us on WhatsApp. Reply START to subscribe again."
            .to_owned()
    }
    fn default_opt_out_confirmation_arabic() -> String {
        "لن تصلك رسائل أخرى منا على واتساب. أرسل «ابدأ» للاشتراك من جديد.".to_owned()
    }

    /// Pure checks: (field, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (field, list) in [
            ("opt_out_keywords", &self.opt_out_keywords),
            ("opt_in_keywords", &self.opt_in_keywords),
        ] {
            if list.iter().any(|k| normalise(k).is_empty()) {
                problems.push((field.to_owned(), "contains an empty keyword".to_owned()));
            }
        }
        let out: Vec<String> = self.opt_out_keywords.iter().map(|k| normalise(k)).collect();
        for keyword in &self.opt_in_keywords {
            if out.contains(&normalise(keyword)) {
                problems.push((
                    "opt_in_keywords".to_owned(),
                    format!("\"{keyword}\" is also an opt-out keyword"),
                ));
            }
        }
        for (field, text) in [
            ("opt_out_confirmation", &self.opt_out_confirmation),
            (
                "opt_out_confirmation_arabic",
                &self.opt_out_confirmation_arabic,
            ),
        ] {
            if text.trim().is_empty() {
                problems.push((field.to_owned(), "must not be empty".to_owned()));
            }
        }
        if self.window_margin_minutes >= 24 * 60 {
            problems.push((
                "window_margin_minutes".to_owned(),
                "must be less than 24 hours".to_owned(),
            ));
        }
        problems
    }

    /// The margin, as the policy gate takes it.
    pub fn window_margin(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::try_from(self.window_margin_minutes).unwrap_or(0))
    }
}

impl Default for PolicySettings {
    fn default() -> Self {
        PolicySettings {
            opt_out_keywords: Self::default_opt_out_keywords(),
            opt_in_keywords: Self::default_opt_in_keywords(),
            window_margin_minutes: Self::default_window_margin_minutes(),
            opt_out_confirmation: Self::default_opt_out_confirmation(),
            opt_out_confirmation_arabic: Self::default_opt_out_confirmation_arabic(),
        }
    }
}

/// Upper-case, without surrounding punctuation/space, Arabic diacritics (tashkeel, tatweel)
/// removed, inner white space folded.
pub fn normalise(text: &str) -> String {
    let kept: String = text
        .chars()
        .filter(|c| !matches!(*c, '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}'))
        .collect();
    kept.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation() || "!؟،.".contains(c))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// The consent event a customer message carries, if any.
pub fn from_message(message: &Message, settings: &PolicySettings) -> Option<ConsentEvent> {
    let at = DateTime::<Utc>::from_timestamp(message.timestamp, 0)?;
    let matches = |text: &str, list: &[String]| {
        let text = normalise(text);
        !text.is_empty() && list.iter().any(|k| normalise(k) == text)
    };
    let (text, button) = match (&message.text, &message.button, &message.interactive) {
        (Some(text), _, _) => (Some(text.body.as_str()), false),
        (None, Some(button), _) => (button.payload.as_deref().or(button.text.as_deref()), true),
        (None, None, Some(interactive)) => (
            interactive
                .button_reply
                .as_ref()
                .map(|b| b.id.as_str())
                .or(interactive.list_reply.as_ref().map(|l| l.id.as_str())),
            true,
        ),
        (None, None, None) => (None, false),
    };
    let text = text?;
    if matches(text, &settings.opt_out_keywords) {
        let source = if button {
            OptOutSource::Button
        } else {
            OptOutSource::Keyword(normalise(text))
        };
        return Some(ConsentEvent::OptOut { at, source });
    }
    if matches(text, &settings.opt_in_keywords) {
        return Some(ConsentEvent::OptIn {
            at,
            source: "keyword".to_owned(),
            evidence: format!(
                "the customer sent \"{}\" (message {})",
                normalise(text),
                message.id
            ),
        });
    }
    None
}

/// The opt-out confirmation in the customer's language (Arabic when they wrote Arabic).
pub fn confirmation_text(message: &Message, settings: &PolicySettings) -> String {
    let wrote = message.text.as_ref().map(|t| t.body.as_str()).unwrap_or("");
    let arabic = wrote
        .chars()
        .any(|c| ('\u{0600}'..='\u{06FF}').contains(&c));
    if arabic {
        settings.opt_out_confirmation_arabic.clone()
    } else {
        settings.opt_out_confirmation.clone()
    }
}

/// Marketing stop/resume events of a `user_preferences` webhook, with the conversation key
/// (`{phone_number_id}:{wa_id}`) each concerns.
pub fn from_user_preferences(value: &UserPreferencesValue) -> Vec<(String, ConsentEvent)> {
    let Some(phone_number_id) = value.metadata.as_ref().map(|m| m.phone_number_id.clone()) else {
        return Vec::new();
    };
    value
        .user_preferences
        .iter()
        .filter(|p| {
            p.category
                .as_deref()
                .is_none_or(|c| c.eq_ignore_ascii_case("marketing_messages"))
        })
        .filter_map(|p| {
            let contact = p
                .wa_id
                .clone()
                .or_else(|| p.user_id.as_ref().map(|u| format!("u:{u}")))?;
            let at = p
                .timestamp
                .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
                .unwrap_or_else(Utc::now);
            let event = match p.value.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("stop") => ConsentEvent::MarketingStop { at },
                Some("resume") => ConsentEvent::MarketingResume { at },
                _ => return None,
            };
            Some((format!("{phone_number_id}:{contact}"), event))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::model::{self, Event};

    fn message(raw: serde_json::Value) -> Message {
        let webhook = crate::whatsapp::message_webhook("1", "96890000001", "A", raw);
        let body = serde_json::to_vec(&webhook).expect("json");
        match model::parse(&body).expect("parses").events().remove(0) {
            Event::Message { message, .. } => message,
            other => panic!("not a message: {other:?}"),
        }
    }

    fn text(body: &str) -> Message {
        message(
            serde_json::json!({"id": "wamid.1", "timestamp": "1764000000", "type": "text", "text": {"body": body}}),
        )
    }

    #[test]
    fn stop_in_any_case_or_arabic_with_diacritics_opts_out() {
        let settings = PolicySettings::default();
        for body in [
            "STOP",
            " stop! ",
            "Stop.",
            "إيقاف",
            "إِلْغَاء",
            "الغاء الاشتراك",
        ] {
            assert!(
                matches!(
                    from_message(&text(body), &settings),
                    Some(ConsentEvent::OptOut {
                        source: OptOutSource::Keyword(_),
                        ..
                    })
                ),
                "{body}"
            );
        }
        assert_eq!(
            from_message(&text("please stop sending me offers"), &settings),
            None
        );
        assert_eq!(from_message(&text("Hello"), &settings), None);
    }

    #[test]
    fn quick_reply_button_stop_is_a_button_opt_out_and_start_opts_in() {
        let settings = PolicySettings::default();
        let button = message(serde_json::json!({
            "id": "wamid.2", "timestamp": "1764000000", "type": "button",
            "button": {"payload": "STOP", "text": "Stop promotions"}
        }));
        assert!(matches!(
            from_message(&button, &settings),
            Some(ConsentEvent::OptOut {
                source: OptOutSource::Button,
                ..
            })
        ));
        assert!(matches!(
            from_message(&text("start"), &settings),
            Some(ConsentEvent::OptIn { .. })
        ));
    }

    #[test]
    fn user_preferences_stop_and_resume_marketing() {
        let raw = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/whatsapp/pywa/user_marketing_preferences__resume.json"
        ))
        .expect("fixture");
        let envelope = model::parse(&raw).expect("parses");
        let events: Vec<_> = envelope
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Update {
                    value: model::ChangeValue::UserPreferences(v),
                    ..
                } => Some(from_user_preferences(&v)),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(matches!(events[0].1, ConsentEvent::MarketingResume { .. }));
    }

    #[test]
    fn validation_rejects_a_keyword_in_both_lists() {
        let settings = PolicySettings {
            opt_in_keywords: vec!["stop".into()],
            ..PolicySettings::default()
        };
        assert_eq!(settings.validate().len(), 1);
    }
}
