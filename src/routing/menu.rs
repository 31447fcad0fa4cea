//! Menus: a prompt with numbered options (as text, reply buttons or a list), an exit key that
//! hands over to a person, a hint on invalid input, and expiry after inactivity. The position in
//! a menu is part of the [`super::ConversationState`] the daemon persists.

use super::rules::Actions;
use super::text::{fold, LocalStr, LocalText, RenderCtx};
use super::BotReply;

/// How a menu is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MenuStyle {
    /// Text with one `key. label` line per option: works on every WhatsApp client.
    Text,
    /// Reply buttons (options + exit ≤ 3).
    Buttons,
    /// A list message (options + exit ≤ 10).
    List,
}

impl MenuStyle {
    pub(crate) fn parse(text: &str) -> Option<MenuStyle> {
        match text {
            "text" => Some(MenuStyle::Text),
            "buttons" => Some(MenuStyle::Buttons),
            "list" => Some(MenuStyle::List),
            _ => None,
        }
    }
}

/// A compiled `[menu.<name>]`.
#[derive(Debug, Clone)]
pub(crate) struct Menu {
    pub(crate) name: String,
    pub(crate) line: usize,
    pub(crate) text: LocalText,
    pub(crate) style: MenuStyle,
    pub(crate) list_button: LocalStr,
    pub(crate) exit_key: String,
    pub(crate) exit_label: LocalStr,
    pub(crate) exit_line: usize,
    pub(crate) invalid: LocalText,
    pub(crate) max_invalid: u32,
    pub(crate) expire: chrono::Duration,
    pub(crate) options: Vec<MenuOption>,
}

/// A `[[menu.<name>.option]]`.
#[derive(Debug, Clone)]
pub(crate) struct MenuOption {
    pub(crate) key: String,
    pub(crate) label: LocalStr,
    pub(crate) description: Option<LocalStr>,
    pub(crate) line: usize,
    pub(crate) actions: Actions,
}

/// What the customer's input means in a menu.
pub(crate) enum Choice<'a> {
    /// One of the options; the string says how it was recognised.
    Option(&'a MenuOption, String),
    /// The exit key: hand over to a person.
    Exit(String),
}

impl Menu {
    /// The interactive id of an option (`main:1`), echoed back as the reply id when tapped.
    pub(crate) fn id(&self, key: &str) -> String {
        format!("{}:{key}", self.name)
    }

    /// Recognises an option or the exit: by interactive reply id, by key (`1`, `١`, `1.`), or by
    /// the option's label typed out (`orders`, `الطلبات`), case- and diacritic-insensitively.
    pub(crate) fn choose(&self, reply_id: Option<&str>, folded: &str) -> Option<Choice<'_>> {
        if let Some(choice) = reply_id.and_then(|id| self.choose_id(id)) {
            return Some(choice);
        }
        if folded.is_empty() {
            return None;
        }
        if folded == fold(&self.exit_key) || self.exit_label.all().any(|l| fold(l) == folded) {
            return Some(Choice::Exit(format!("typed {folded:?}")));
        }
        self.options
            .iter()
            .find(|o| fold(&o.key) == folded || o.label.all().any(|l| fold(l) == folded))
            .map(|o| Choice::Option(o, format!("typed {folded:?}")))
    }

    /// Recognises a tapped button or list row of this menu by its id (`main:1`).
    pub(crate) fn choose_id(&self, id: &str) -> Option<Choice<'_>> {
        if id == self.id(&self.exit_key) {
            return Some(Choice::Exit(format!("tapped {id:?}")));
        }
        self.options
            .iter()
            .find(|o| self.id(&o.key) == id)
            .map(|o| Choice::Option(o, format!("tapped {id:?}")))
    }

    /// The menu message; with `hint`, the invalid-input hint comes first.
    pub(crate) fn prompt(&self, ctx: &RenderCtx<'_>, hint: bool) -> BotReply {
        let mut body = String::new();
        if hint {
            body.push_str(&self.invalid.render(ctx));
            body.push_str("\n\n");
        }
        body.push_str(&self.text.render(ctx));
        let lang = ctx.lang;
        match self.style {
            MenuStyle::Text => {
                body.push_str("\n\n");
                let lines: Vec<String> = self
                    .options
                    .iter()
                    .map(|o| format!("{}. {}", o.key, o.label.get(lang)))
                    .chain(std::iter::once(format!(
                        "{}. {}",
                        self.exit_key,
                        self.exit_label.get(lang)
                    )))
                    .collect();
                body.push_str(&lines.join("\n"));
                BotReply::Text { body }
            }
            MenuStyle::Buttons => BotReply::Buttons {
                body,
                buttons: self
                    .options
                    .iter()
                    .map(|o| (self.id(&o.key), o.label.get(lang).to_owned()))
                    .chain(std::iter::once((
                        self.id(&self.exit_key),
                        self.exit_label.get(lang).to_owned(),
                    )))
                    .collect(),
            },
            MenuStyle::List => BotReply::List {
                body,
                button: self.list_button.get(lang).to_owned(),
                sections: vec![(
                    String::new(),
                    self.options
                        .iter()
                        .map(|o| {
                            (
                                self.id(&o.key),
                                o.label.get(lang).to_owned(),
                                o.description.as_ref().map(|d| d.get(lang).to_owned()),
                            )
                        })
                        .chain(std::iter::once((
                            self.id(&self.exit_key),
                            self.exit_label.get(lang).to_owned(),
                            None,
                        )))
                        .collect(),
                )],
            },
        }
    }
}
