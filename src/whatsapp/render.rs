//! Turns a WhatsApp message into the text a support agent reads in a ticket.
//!
//! Guarantees: the text is never empty; every message type, known or not, renders to something
//! readable (an unknown type says so, with Meta's error details); the customer's own words
//! (body, caption, order note) are kept verbatim.

use std::fmt::Write as _;

use serde_json::Value;

use super::model::{ContactCard, Interactive, Location, MediaRef, Message, Order, System};

/// A message as readable text, and the media to attach (to be resolved and downloaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// What the agent reads. Never empty.
    pub text: String,
    /// The media file of an image, video, audio, voice, sticker or document message.
    pub media: Option<MediaRef>,
}

/// Renders a message for a ticket.
pub fn render(message: &Message) -> Rendered {
    let mut lines: Vec<String> = Vec::new();

    if let Some(context) = &message.context {
        if context.frequently_forwarded == Some(true) {
            lines.push("(forwarded many times)".to_owned());
        } else if context.forwarded == Some(true) {
            lines.push("(forwarded)".to_owned());
        }
        if let Some(id) = non_empty(context.id.as_deref()) {
            lines.push(format!("↪ reply to {id}"));
        }
        if let Some(product) = &context.referred_product {
            let retailer_id = non_empty(product.product_retailer_id.as_deref()).unwrap_or("?");
            match non_empty(product.catalog_id.as_deref()) {
                Some(catalog) => {
                    lines.push(format!("About product {retailer_id} (catalog {catalog})"))
                }
                None => lines.push(format!("About product {retailer_id}")),
            }
        }
    }

    let (body, errors_shown) = body(message);
    lines.push(body);

    if let Some(referral) = &message.referral {
        let parts: Vec<&str> = [
            referral.headline.as_deref(),
            referral.source_url.as_deref(),
        ]
        .into_iter()
        .filter_map(non_empty)
        .collect();
        if parts.is_empty() {
            let source = non_empty(referral.source_type.as_deref()).unwrap_or("ad");
            let id = non_empty(referral.source_id.as_deref()).unwrap_or("unknown");
            lines.push(format!("Via ad: {source} {id}"));
        } else {
            lines.push(format!("Via ad: {}", parts.join(" ")));
        }
    }

    if !errors_shown {
        for error in &message.errors {
            lines.push(format!("[error {}: {}]", error.code, error.describe()));
        }
    }

    let text = lines
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    let text = if text.trim().is_empty() {
        format!("[empty {} message]", message.kind)
    } else {
        text
    };
    Rendered {
        text,
        media: message.media(),
    }
}

/// The main part of the text, and whether it already shows the message's errors.
fn body(message: &Message) -> (String, bool) {
    let typed = match message.kind.as_str() {
        "text" => message.text.as_ref().map(|text| {
            if text.body.trim().is_empty() {
                "[empty text message]".to_owned()
            } else {
                text.body.clone()
            }
        }),
        "image" | "video" | "audio" | "voice" | "sticker" | "document" => media_text(message),
        "location" => message.location.as_ref().map(location_text),
        "contacts" => (!message.contacts.is_empty()).then(|| contacts_text(&message.contacts)),
        "interactive" => message.interactive.as_ref().and_then(interactive_text),
        "button" => message.button.as_ref().map(|button| {
            let label = non_empty(button.text.as_deref())
                .or(non_empty(button.payload.as_deref()))
                .unwrap_or("(no text)");
            format!("Button: {label}")
        }),
        "reaction" => message.reaction.as_ref().map(|reaction| match reaction.emoji() {
            Some(emoji) => format!("Reacted {emoji} to message {}", reaction.message_id),
            None => format!("Removed reaction from message {}", reaction.message_id),
        }),
        "order" => message.order.as_ref().map(order_text),
        "system" => message.system.as_ref().map(system_text),
        "revoke" => Some(revoke_text(message)),
        "edit" => edit_text(message),
        _ => None,
    };
    match typed {
        Some(text) => (text, false),
        None => (unsupported_text(message), true),
    }
}

fn media_text(message: &Message) -> Option<String> {
    let (kind, media) = message.media_node()?;
    if let Some(caption) = media.caption.as_deref().filter(|c| !c.trim().is_empty()) {
        return Some(caption.to_owned());
    }
    let label = match kind {
        "audio" if media.voice == Some(true) => "[voice message]".to_owned(),
        "voice" => "[voice message]".to_owned(),
        "sticker" if media.animated == Some(true) => "[animated sticker]".to_owned(),
        "document" => match non_empty(media.filename.as_deref()) {
            Some(name) => format!("[document: {name}]"),
            None => "[document]".to_owned(),
        },
        other => format!("[{other}]"),
    };
    Some(label)
}

fn location_text(location: &Location) -> String {
    let mut lines = Vec::new();
    let place: Vec<&str> = [location.name.as_deref(), location.address.as_deref()]
        .into_iter()
        .filter_map(non_empty)
        .collect();
    if place.is_empty() {
        lines.push("Location".to_owned());
    } else {
        lines.push(format!("Location: {}", place.join(", ")));
    }
    let (lat, lng) = (location.latitude, location.longitude);
    lines.push(format!("Coordinates: {lat}, {lng}"));
    lines.push(format!("Map: https://maps.google.com/?q={lat},{lng}"));
    if let Some(url) = non_empty(location.url.as_deref()) {
        lines.push(format!("Link: {url}"));
    }
    lines.join("\n")
}

fn contacts_text(cards: &[ContactCard]) -> String {
    let mut out = String::new();
    for (index, card) in cards.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let name = card
            .display_name()
            .unwrap_or_else(|| "(no name)".to_owned());
        let _ = write!(out, "Contact: {name}");
        if let Some(org) = &card.org {
            let parts: Vec<&str> = [
                org.company.as_deref(),
                org.department.as_deref(),
                org.title.as_deref(),
            ]
            .into_iter()
            .filter_map(non_empty)
            .collect();
            if !parts.is_empty() {
                let _ = write!(out, " ({})", parts.join(", "));
            }
        }
        for phone in &card.phones {
            let number = non_empty(phone.phone.as_deref())
                .or(non_empty(phone.wa_id.as_deref()))
                .unwrap_or("?");
            let _ = write!(out, "\n  Phone{}: {number}", label(phone.kind.as_deref()));
            if let Some(wa_id) = non_empty(phone.wa_id.as_deref()) {
                let _ = write!(out, " (WhatsApp +{wa_id})");
            }
        }
        for email in &card.emails {
            if let Some(address) = non_empty(email.email.as_deref()) {
                let _ = write!(out, "\n  Email{}: {address}", label(email.kind.as_deref()));
            }
        }
        for url in &card.urls {
            if let Some(address) = non_empty(url.url.as_deref()) {
                let _ = write!(out, "\n  Web{}: {address}", label(url.kind.as_deref()));
            }
        }
        if let Some(birthday) = non_empty(card.birthday.as_deref()) {
            let _ = write!(out, "\n  Birthday: {birthday}");
        }
    }
    out
}

/// ` (WORK)` for a type label, empty when none.
fn label(kind: Option<&str>) -> String {
    non_empty(kind)
        .map(|kind| format!(" ({kind})"))
        .unwrap_or_default()
}

fn interactive_text(interactive: &Interactive) -> Option<String> {
    if let Some(reply) = &interactive.button_reply {
        return Some(format!("Selected: {} ({})", reply.title, reply.id));
    }
    if let Some(reply) = &interactive.list_reply {
        return Some(match non_empty(reply.description.as_deref()) {
            Some(description) => {
                format!("Selected: {} ({}) — {description}", reply.title, reply.id)
            }
            None => format!("Selected: {} ({})", reply.title, reply.id),
        });
    }
    if let Some(reply) = &interactive.nfm_reply {
        let mut out = "Form submitted:".to_owned();
        match reply.response_json.as_deref() {
            Some(raw) => match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(fields)) => {
                    for (key, value) in &fields {
                        let _ = write!(out, "\n{key}: {}", scalar(value));
                    }
                }
                Ok(other) => {
                    let _ = write!(out, "\n{}", scalar(&other));
                }
                Err(_) => {
                    let _ = write!(out, "\n{raw}");
                }
            },
            None => {
                if let Some(body) = non_empty(reply.body.as_deref()) {
                    let _ = write!(out, " {body}");
                }
            }
        }
        return Some(out);
    }
    // An interactive type we do not model: show its node as key: value pairs.
    let node = interactive.extra.get(&interactive.kind)?;
    let mut out = format!("Interactive reply ({})", interactive.kind);
    match node {
        Value::Object(fields) => {
            for (key, value) in fields {
                let _ = write!(out, "\n{key}: {}", scalar(value));
            }
        }
        other => {
            let _ = write!(out, ": {}", scalar(other));
        }
    }
    Some(out)
}

/// A JSON value for people: strings without quotes, everything else as compact JSON.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn order_text(order: &Order) -> String {
    let mut out = match non_empty(order.catalog_id.as_deref()) {
        Some(catalog) => format!("Order from catalog {catalog}:"),
        None => "Order:".to_owned(),
    };
    let mut total = Some(0.0_f64);
    let mut total_currency: Option<&str> = None;
    for item in &order.product_items {
        let currency = non_empty(item.currency.as_deref());
        let _ = write!(out, "\n- {} × {}", item.quantity, item.product_retailer_id);
        if let Some(price) = &item.item_price {
            let _ = write!(out, " @ {price}");
            if let Some(currency) = currency {
                let _ = write!(out, " {currency}");
            }
        }
        let line_total = item
            .quantity
            .as_f64()
            .zip(item.item_price.as_ref().and_then(|p| p.as_f64()))
            .map(|(quantity, price)| quantity * price);
        let same_currency = match (total_currency, currency) {
            (None, _) => true,
            (Some(seen), Some(this)) => seen == this,
            (Some(_), None) => false,
        };
        total = match (total, line_total) {
            (Some(sum), Some(line)) if same_currency => Some(sum + line),
            _ => None,
        };
        if total_currency.is_none() {
            total_currency = currency;
        }
    }
    if let (Some(total), false) = (total, order.product_items.is_empty()) {
        let _ = write!(out, "\nTotal: {}", format_amount(total));
        if let Some(currency) = total_currency {
            let _ = write!(out, " {currency}");
        }
    }
    if let Some(text) = order.text.as_deref().filter(|t| !t.trim().is_empty()) {
        let _ = write!(out, "\n{text}");
    }
    out
}

/// `85`, `85.5`, `85.25`: at most two decimals, no trailing zeros.
fn format_amount(amount: f64) -> String {
    let fixed = format!("{amount:.2}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed.is_empty() || trimmed == "-" {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn system_text(system: &System) -> String {
    if let Some(body) = system.body.as_deref().filter(|b| !b.trim().is_empty()) {
        return body.to_owned();
    }
    let new_number = non_empty(system.wa_id.as_deref()).or(non_empty(system.new_wa_id.as_deref()));
    match (system.kind.as_deref(), new_number) {
        (Some("user_changed_number"), Some(number)) => {
            format!("The customer changed their number to +{number}")
        }
        (Some("user_changed_number"), None) => "The customer changed their number".to_owned(),
        (Some("customer_identity_changed"), _) => {
            "The customer's security code (identity) changed".to_owned()
        }
        (Some(kind), _) => format!("[system message: {kind}]"),
        (None, _) => "[system message]".to_owned(),
    }
}

/// `type: revoke`: the customer deleted a message (not in Meta's documented set; seen in pywa).
fn revoke_text(message: &Message) -> String {
    let original = message
        .extra
        .get("revoke")
        .and_then(|node| node.get("original_message_id"))
        .and_then(Value::as_str);
    match original {
        Some(id) => format!("[the customer deleted message {id}]"),
        None => "[the customer deleted a message]".to_owned(),
    }
}

/// `type: edit`: the customer edited a message; the node holds the new content.
fn edit_text(message: &Message) -> Option<String> {
    let node = message.extra.get("edit")?;
    let original = node
        .get("original_message_id")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let mut inner = node.get("message")?.clone();
    if let Value::Object(fields) = &mut inner {
        fields
            .entry("id")
            .or_insert_with(|| Value::String(original.to_owned()));
        fields
            .entry("timestamp")
            .or_insert_with(|| Value::String(message.timestamp.to_string()));
    }
    let edited: Message = serde_json::from_value(inner).ok()?;
    Some(format!(
        "[the customer edited message {original}]\n{}",
        render(&edited).text
    ))
}

fn unsupported_text(message: &Message) -> String {
    let subtype = message
        .extra
        .get(&message.kind)
        .and_then(|node| node.get("type"))
        .and_then(Value::as_str)
        .and_then(|t| non_empty(Some(t)));
    let mut out = format!("[unsupported message type '{}'", message.kind);
    if let Some(subtype) = subtype {
        let _ = write!(out, " ({subtype})");
    }
    let details: Vec<String> = message
        .errors
        .iter()
        .map(|error| format!("{} {}", error.code, error.describe()))
        .collect();
    if !details.is_empty() {
        let _ = write!(out, " — {}", details.join("; "));
    }
    out.push(']');
    out
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}
