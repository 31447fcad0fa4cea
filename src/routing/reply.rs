//! Bot replies: named `[reply.<name>]` definitions, WhatsApp's limits on interactive messages,
//! and the Graph API body of a [`BotReply`].

use serde_json::{json, Value as Json};

use super::text::{LocalStr, LocalText, RenderCtx};
use super::BotReply;

/// WhatsApp limits, checked at load time.
pub(crate) mod limits {
    /// Reply buttons per message.
    pub(crate) const BUTTONS: usize = 3;
    /// Characters of a reply button title.
    pub(crate) const BUTTON_TITLE: usize = 20;
    /// Rows of a list message, all sections together.
    pub(crate) const LIST_ROWS: usize = 10;
    /// Characters of a list row title.
    pub(crate) const ROW_TITLE: usize = 24;
    /// Characters of a list row description.
    pub(crate) const ROW_DESCRIPTION: usize = 72;
    /// Characters of the button that opens a list.
    pub(crate) const LIST_BUTTON: usize = 20;
    /// Characters of a list section title.
    pub(crate) const SECTION_TITLE: usize = 24;
    /// Characters of an interactive message body.
    pub(crate) const INTERACTIVE_BODY: usize = 1024;
    /// Characters of a text message.
    pub(crate) const TEXT_BODY: usize = 4096;
    /// Characters of a button or row id.
    pub(crate) const ID: usize = 200;
}

/// A `[reply.<name>]`.
#[derive(Debug, Clone)]
pub(crate) struct ReplyDef {
    pub(crate) text: LocalText,
    pub(crate) kind: ReplyKind,
}

/// Plain text, reply buttons or a list.
#[derive(Debug, Clone)]
pub(crate) enum ReplyKind {
    Text,
    Buttons(Vec<(String, LocalStr)>),
    List {
        button: LocalStr,
        section: Option<LocalStr>,
        rows: Vec<(String, LocalStr, Option<LocalStr>)>,
    },
}

impl ReplyDef {
    /// The reply in the context's language.
    pub(crate) fn render(&self, ctx: &RenderCtx<'_>) -> BotReply {
        let body = self.text.render(ctx);
        match &self.kind {
            ReplyKind::Text => BotReply::Text { body },
            ReplyKind::Buttons(buttons) => BotReply::Buttons {
                body,
                buttons: buttons
                    .iter()
                    .map(|(id, title)| (id.clone(), title.get(ctx.lang).to_owned()))
                    .collect(),
            },
            ReplyKind::List {
                button,
                section,
                rows,
            } => BotReply::List {
                body,
                button: button.get(ctx.lang).to_owned(),
                sections: vec![(
                    section
                        .as_ref()
                        .map(|s| s.get(ctx.lang).to_owned())
                        .unwrap_or_default(),
                    rows.iter()
                        .map(|(id, title, description)| {
                            (
                                id.clone(),
                                title.get(ctx.lang).to_owned(),
                                description.as_ref().map(|d| d.get(ctx.lang).to_owned()),
                            )
                        })
                        .collect(),
                )],
            },
        }
    }
}

impl BotReply {
    /// The message text.
    pub fn body(&self) -> &str {
        match self {
            BotReply::Text { body }
            | BotReply::Buttons { body, .. }
            | BotReply::List { body, .. } => body,
        }
    }

    /// Everything the customer reads: the body, then button / list titles, one per line.
    pub fn plain_text(&self) -> String {
        let mut out = self.body().to_owned();
        match self {
            BotReply::Text { .. } => {}
            BotReply::Buttons { buttons, .. } => {
                for (_, title) in buttons {
                    out.push('\n');
                    out.push_str(title);
                }
            }
            BotReply::List {
                button, sections, ..
            } => {
                out.push('\n');
                out.push_str(button);
                for (title, rows) in sections {
                    if !title.is_empty() {
                        out.push('\n');
                        out.push_str(title);
                    }
                    for (_, row, description) in rows {
                        out.push('\n');
                        out.push_str(row);
                        if let Some(d) = description {
                            out.push_str(" — ");
                            out.push_str(d);
                        }
                    }
                }
            }
        }
        out
    }

    /// The Graph API `POST /{phone-number-id}/messages` body sending this reply to `to`
    /// (digits).
    pub fn to_graph(&self, to: &str) -> Json {
        let mut message = json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
        });
        let (kind, content) = match self {
            BotReply::Text { body } => ("text", json!({"preview_url": false, "body": body})),
            BotReply::Buttons { body, buttons } => (
                "interactive",
                json!({
                    "type": "button",
                    "body": {"text": body},
                    "action": {"buttons": buttons.iter().map(|(id, title)| json!({
                        "type": "reply",
                        "reply": {"id": id, "title": title}
                    })).collect::<Vec<_>>()}
                }),
            ),
            BotReply::List {
                body,
                button,
                sections,
            } => (
                "interactive",
                json!({
                    "type": "list",
                    "body": {"text": body},
                    "action": {
                        "button": button,
                        "sections": sections.iter().map(|(title, rows)| {
                            let rows: Vec<Json> = rows.iter().map(|(id, title, description)| {
                                let mut row = json!({"id": id, "title": title});
                                if let Some(d) = description {
                                    row["description"] = json!(d);
                                }
                                row
                            }).collect();
                            let mut section = json!({"rows": rows});
                            if !title.is_empty() {
                                section["title"] = json!(title);
                            }
                            section
                        }).collect::<Vec<_>>()
                    }
                }),
            ),
        };
        message["type"] = json!(kind);
        message[kind] = content;
        message
    }
}
