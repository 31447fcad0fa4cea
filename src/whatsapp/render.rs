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
        let parts: Vec<&str> = [referral.headline.as_deref(), referral.source_url.as_deref()]
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
        "location" => message.location.as_deref().map(location_text),
        "contacts" => (!message.contacts.is_empty()).then(|| contacts_text(&message.contacts)),
        "interactive" => message.interactive.as_deref().and_then(interactive_text),
        "button" => message.button.as_ref().map(|button| {
            let label = non_empty(button.text.as_deref())
                .or(non_empty(button.payload.as_deref()))
                .unwrap_or("(no text)");
            format!("Button: {label}")
        }),
        "reaction" => message
            .reaction
            .as_ref()
            .map(|reaction| match reaction.emoji() {
                Some(emoji) => format!("Reacted {emoji} to message {}", reaction.message_id),
                None => format!("Removed reaction from message {}", reaction.message_id),
            }),
        "order" => message.order.as_deref().map(order_text),
        "system" => message.system.as_deref().map(system_text),
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

#[cfg(test)]
mod tests {
    use super::super::model::{parse, Envelope, Event};
    use super::*;
    use serde_json::json;
    use std::path::Path;

    use super::super::model::tests::{fixture, FIXTURES};

    fn messages_of(envelope: &Envelope) -> Vec<Message> {
        envelope
            .events()
            .into_iter()
            .filter_map(|event| match event {
                Event::Message { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }

    /// The rendered text of a fixture's only message.
    fn text_of(name: &str) -> String {
        let found = messages_of(&fixture(name));
        assert_eq!(found.len(), 1, "{name}: expected exactly one message");
        render(&found[0]).text
    }

    /// A message from its JSON (inside a minimal webhook, so it goes through `parse`).
    fn message(value: serde_json::Value) -> Message {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1",
            "changes": [{"field": "messages", "value": {
                "metadata": {"phone_number_id": "P"}, "messages": [value]}}]}]});
        let envelope = parse(body.to_string().as_bytes()).expect("parses");
        messages_of(&envelope).remove(0)
    }

    #[test]
    fn every_fixture_message_renders_to_non_empty_text() {
        let mut empty = Vec::new();
        for dir in ["meta-openapi/webhooks", "pywa"] {
            let listing = std::fs::read_dir(Path::new(FIXTURES).join(dir)).expect("fixture dir");
            for entry in listing {
                let path = entry.expect("entry").path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let raw = std::fs::read(&path).expect("readable");
                let Ok(envelope) = parse(&raw) else { continue };
                for message in messages_of(&envelope) {
                    if render(&message).text.trim().is_empty() {
                        empty.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(empty.is_empty(), "empty renderings: {empty:?}");
    }

    #[test]
    fn text_body_is_verbatim() {
        assert_eq!(
            text_of("meta-openapi/webhooks/text-message.json"),
            "Does it come in another color?"
        );
        let odd = message(json!({"id": "m", "timestamp": "1", "type": "text",
            "text": {"body": "  two\n lines  "}}));
        assert_eq!(render(&odd).text, "  two\n lines  ");
        let blank = message(json!({"id": "m", "timestamp": "1", "type": "text",
            "text": {"body": ""}}));
        assert_eq!(render(&blank).text, "[empty text message]");
    }

    #[test]
    fn media_renders_caption_or_label_and_carries_the_media() {
        let found = messages_of(&fixture("meta-openapi/webhooks/image-message.json"));
        let rendered = render(&found[0]);
        assert_eq!(rendered.text, "Taj Mahal");
        assert_eq!(rendered.media.map(|m| m.kind).as_deref(), Some("image"));

        assert_eq!(text_of("pywa/message__image.json"), "[image]");
        assert_eq!(text_of("pywa/message__voice.json"), "[voice message]");
        assert_eq!(text_of("pywa/message__audio.json"), "(forwarded)\n[audio]");
        assert_eq!(text_of("pywa/message__static_sticker.json"), "[sticker]");
        assert_eq!(
            text_of("pywa/message__animated_sticker.json"),
            "[animated sticker]"
        );
        assert_eq!(text_of("pywa/message__video.json"), "(forwarded)\ncaption");

        let document = message(json!({"id": "m", "timestamp": "1", "type": "document",
            "document": {"id": "7", "mime_type": "application/pdf", "sha256": "x=",
                         "filename": "invoice.pdf"}}));
        let rendered = render(&document);
        assert_eq!(rendered.text, "[document: invoice.pdf]");
        assert_eq!(
            rendered.media.map(|m| m.filename).as_deref(),
            Some("invoice.pdf")
        );
    }

    #[test]
    fn location_has_place_coordinates_and_map_link() {
        let text = text_of("meta-openapi/webhooks/location-message.json");
        assert!(
            text.contains("Philz Coffee, 101 Forest Ave, Palo Alto, CA 94301"),
            "{text}"
        );
        assert!(text.contains("37.44221496582, -122.16165924072"), "{text}");
        assert!(
            text.contains("https://maps.google.com/?q=37.44221496582,-122.16165924072"),
            "{text}"
        );
        assert!(text.contains("https://philzcoffee.com/"), "{text}");

        let bare = text_of("pywa/message__current_location.json");
        assert!(
            bare.contains("https://maps.google.com/?q=12.25089,43.90539"),
            "{bare}"
        );
    }

    #[test]
    fn contacts_render_as_readable_lines() {
        let text = text_of("meta-openapi/webhooks/contact-sharing-message.json");
        assert_eq!(
            text,
            "Contact: Lucía Gómez (Google)\n  Phone (MOBILE): +1 (983) 555-2319 (WhatsApp +19835552319)"
        );
        let several = text_of("pywa/message__contacts.json");
        assert!(several.contains("Contact: Chandler Bing"), "{several}");
        assert!(
            several.contains("Contact: Monica\n  Phone (HOME): +1 666-666-6666"),
            "{several}"
        );
        assert!(several.contains("Contact: Rachel Green"), "{several}");

        let with_email = message(json!({"id": "m", "timestamp": "1", "type": "contacts",
            "contacts": [{"name": {"first_name": "Ana", "last_name": "Silva"},
                          "emails": [{"email": "ana@example.com", "type": "WORK"}],
                          "urls": [{"url": "https://ana.example"}]}]}));
        let text = render(&with_email).text;
        assert!(text.contains("Contact: Ana Silva"), "{text}");
        assert!(text.contains("Email (WORK): ana@example.com"), "{text}");
        assert!(text.contains("Web: https://ana.example"), "{text}");
    }

    #[test]
    fn interactive_replies_show_the_selection() {
        let text = text_of("meta-openapi/webhooks/interactive-button-reply-message.json");
        assert!(text.ends_with("Selected: Cancel (cancel-button)"), "{text}");
        assert!(text.starts_with("↪ reply to wamid."), "{text}");
        let list = text_of("meta-openapi/webhooks/interactive-list-reply-message.json");
        assert!(
            list.ends_with(
                "Selected: Priority Mail Express (priority_express) — Next Day to 2 Days"
            ),
            "{list}"
        );
        let plain = text_of("pywa/callback_selection__callback.json");
        assert!(
            plain.ends_with("Selected: title (callback_data)"),
            "{plain}"
        );
    }

    #[test]
    fn flow_reply_lists_the_answers() {
        let text = text_of("pywa/flow_completion__completion.json");
        assert!(text.contains("Form submitted:\n"), "{text}");
        assert!(text.contains("\ndelivery_rating: 4"), "{text}");
        assert!(text.contains("\ncomment_text: Comment Text"), "{text}");
    }

    #[test]
    fn unknown_interactive_type_shows_its_node() {
        let text = text_of("pywa/call_permission_update__accept.json");
        assert!(
            text.contains("Interactive reply (call_permission_reply)"),
            "{text}"
        );
        assert!(text.contains("response: accept"), "{text}");
    }

    #[test]
    fn interactive_without_node_is_unsupported() {
        let text = text_of("pywa/message__interactive_message_with_err.json");
        assert!(
            text.ends_with("[unsupported message type 'interactive']"),
            "{text}"
        );
    }

    #[test]
    fn template_button_shows_its_text() {
        let text = text_of("meta-openapi/webhooks/button-message.json");
        assert!(text.ends_with("Button: Unsubscribe"), "{text}");
    }

    #[test]
    fn reaction_and_unreaction() {
        assert_eq!(
            text_of("pywa/message__reaction.json"),
            "Reacted 😮 to message wamid.yzxyzx="
        );
        for name in [
            "pywa/message__unreaction_empty.json",
            "pywa/message__unreaction_no_emoji.json",
        ] {
            assert_eq!(text_of(name), "Removed reaction from message wamid.yzxyzx=");
        }
    }

    #[test]
    fn order_lists_items_and_total() {
        let text = text_of("meta-openapi/webhooks/order-message.json");
        assert_eq!(
            text,
            "Order from catalog 194836987003835:\n- 2 × di9ozbzfi4 @ 30 USD\n- 1 × nqryix03ez @ 25 USD\nTotal: 85 USD"
        );
        let mixed = message(json!({"id": "m", "timestamp": "1", "type": "order",
            "order": {"catalog_id": "C", "text": "Please deliver after 6pm",
                "product_items": [
                    {"product_retailer_id": "A", "quantity": "3", "item_price": "12.50", "currency": "EUR"},
                    {"product_retailer_id": "B", "quantity": 1, "item_price": 0.1, "currency": "EUR"}]}}));
        let text = render(&mixed).text;
        assert!(text.contains("- 3 × A @ 12.50 EUR"), "{text}");
        assert!(text.contains("Total: 37.6 EUR"), "{text}");
        assert!(text.ends_with("Please deliver after 6pm"), "{text}");

        let two_currencies = message(json!({"id": "m", "timestamp": "1", "type": "order",
            "order": {"product_items": [
                {"product_retailer_id": "A", "quantity": 1, "item_price": 1, "currency": "EUR"},
                {"product_retailer_id": "B", "quantity": 1, "item_price": 1, "currency": "USD"}]}}));
        assert!(!render(&two_currencies).text.contains("Total"));
    }

    #[test]
    fn system_message_shows_body_or_describes_type() {
        assert_eq!(
            text_of("meta-openapi/webhooks/system-message.json"),
            "User Sheena Nelson changed from 16505551234 to 12195555358"
        );
        let bare = message(json!({"id": "m", "timestamp": "1", "type": "system",
            "system": {"type": "user_changed_number", "new_wa_id": "4912345"}}));
        assert_eq!(
            render(&bare).text,
            "The customer changed their number to +4912345"
        );
    }

    #[test]
    fn unsupported_type_names_type_and_errors() {
        assert_eq!(
            text_of("meta-openapi/webhooks/unsupported-message.json"),
            "[unsupported message type 'unsupported' — 131051 Message type unknown: Message type is currently not supported.]"
        );
        let with_subtype = text_of("pywa/message__unsupported_with_type.json");
        assert!(
            with_subtype.starts_with("[unsupported message type 'unsupported' (pool) — 131051"),
            "{with_subtype}"
        );
        let unknown = message(json!({"id": "m", "timestamp": "1", "type": "hologram",
            "hologram": {"depth": 3}}));
        assert_eq!(
            render(&unknown).text,
            "[unsupported message type 'hologram']"
        );
    }

    #[test]
    fn context_prefixes_reply_and_forwarded() {
        assert_eq!(
            text_of("pywa/message__reply.json"),
            "↪ reply to wamid.xyzxyz==\nreplied text"
        );
        assert_eq!(
            text_of("pywa/message__forwarded.json"),
            "(forwarded)\nforwarded text"
        );
        assert_eq!(
            text_of("pywa/message__forwarded_many_times.json"),
            "(forwarded many times)\ntext forwarded many times"
        );
        let inquiry =
            text_of("meta-openapi/webhooks/text-message-with-context-product-inquiry.json");
        assert!(
            inquiry.contains(
                "About product di9ozbzfi4 (catalog 194836987003835)\nIs this still available?"
            ),
            "{inquiry}"
        );
    }

    #[test]
    fn ad_referral_is_named() {
        let text = text_of("meta-openapi/webhooks/text-message-from-click-to-whatsapp-ad.json");
        assert_eq!(
            text,
            "Hello! Can I get more info on this?\nVia ad: Chat with us https://fb.me/3cr4Wqqkv"
        );
    }

    #[test]
    fn message_errors_are_appended() {
        let failed_media = message(json!({"id": "m", "timestamp": "1", "type": "image",
            "image": {"id": "5", "mime_type": "image/png"},
            "errors": [{"code": 131052, "title": "Media download error",
                        "error_data": {"details": "Unable to download the media sent by the user."}}]}));
        let rendered = render(&failed_media);
        assert_eq!(
            rendered.text,
            "[image]\n[error 131052: Media download error: Unable to download the media sent by the user.]"
        );
        assert_eq!(
            rendered.media.map(|m| m.filename).as_deref(),
            Some("image-5.png")
        );
    }

    #[test]
    fn edit_and_revoke_are_described() {
        let edit = text_of("pywa/edited_message__image.json");
        assert!(
            edit.starts_with("[the customer edited message wamid."),
            "{edit}"
        );
        assert!(edit.contains("Updated image caption"), "{edit}");
        assert_eq!(
            text_of("pywa/deleted_message__revoke.json"),
            "[the customer deleted message <ORIGINAL_WHATSAPP_MESSAGE_ID>]"
        );
    }
}
