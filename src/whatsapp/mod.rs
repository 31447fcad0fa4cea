//! The WhatsApp Cloud API: webhook model, signature, Graph API client.

pub mod fake;
pub mod graph;
pub mod model;
pub mod ratelimit;
pub mod render;
pub mod sender;
pub mod signature;
pub mod templates;

/// A `messages` webhook carrying one customer message, shaped as Meta sends it: used by
/// `wabridge simulate` and by the tests. `message` is the message object without `from`
/// (`id`, `timestamp`, `type` and the type's node).
pub fn message_webhook(
    phone_number_id: &str,
    from: &str,
    name: &str,
    mut message: serde_json::Value,
) -> serde_json::Value {
    if let Some(object) = message.as_object_mut() {
        object.insert("from".into(), serde_json::Value::from(from));
    }
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "0",
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550000000", "phone_number_id": phone_number_id },
                    "contacts": [{ "profile": { "name": name }, "wa_id": from }],
                    "messages": [message]
                }
            }]
        }]
    })
}
