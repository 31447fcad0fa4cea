use std::path::Path;

use serde_json::json;

use super::load::parse_mapping;
use super::*;

const MINIMAL: &str = r#"
source = "shop"
event = "order.paid"
recipient = "$.phone"
default_country_code = "968"
template = "order_confirmation"
language = "en"
idempotency_key = "$.id"

[[body]]
type = "text"
path = "$.name"
"#;

fn parse(src: &str) -> Result<Mapping, Vec<MappingProblem>> {
    parse_mapping(Path::new("mappings/test.toml"), src)
}

fn problems(src: &str) -> Vec<String> {
    match parse(src) {
        Ok(_) => panic!("expected problems"),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn shipped_mappings_load_and_their_examples_pass() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/mappings"));
    let set = load_dir(dir).unwrap_or_else(|p| {
        panic!(
            "{}",
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let names: Vec<&str> = set.mappings.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "appointment_booked",
            "appointment_reminder",
            "hubspot_deal_won",
            "order_paid",
            "order_shipped",
            "payment_failed",
            "subscription_renewed"
        ]
    );
    let failures = set.check_examples();
    assert!(
        failures.is_empty(),
        "{}",
        failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
    for m in &set.mappings {
        assert!(
            m.examples.len() >= 2,
            "{} needs at least two examples",
            m.name
        );
        assert!(
            m.examples
                .iter()
                .any(|e| matches!(e.expect, Expectation::Request(_))),
            "{} needs a send example",
            m.name
        );
    }
    assert!(validate_dir(dir).is_empty());
}

#[test]
fn minimal_mapping_renders_meta_template_request() {
    let m = parse(MINIMAL).unwrap();
    assert_eq!(m.name, "test");
    let event = json!({"event": "order.paid", "id": 7, "phone": "9123 4567", "name": "Aisha"});
    let Outcome::Send(intent) = m.render(&event) else {
        panic!("expected a send")
    };
    assert_eq!(intent.idempotency_key, "test:7");
    assert_eq!(intent.opt_in, None);
    assert_eq!(
        Mapping::request_body(&intent),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "96891234567",
            "type": "template",
            "template": {
                "name": "order_confirmation",
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Aisha"}]}]
            }
        })
    );
}

#[test]
fn bad_jsonpath_is_reported_with_file_line_and_field() {
    let src = MINIMAL.replace("path = \"$.name\"", "path = \"$.name[\"");
    let p = problems(&src);
    assert_eq!(
        p,
        ["mappings/test.toml:12: body[0].path: invalid JSONPath \"$.name[\": column 8: expected selector"]
    );
    let p = problems(&MINIMAL.replace("recipient = \"$.phone\"", "recipient = \"phone\""));
    assert!(
        p[0].starts_with("mappings/test.toml:4: recipient: invalid JSONPath"),
        "{p:?}"
    );
}

#[test]
fn unknown_key_is_reported_with_its_line() {
    let src = MINIMAL.replace("path = \"$.name\"", "path = \"$.name\"\nparameter = \"x\"");
    let p = problems(&src);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("mappings/test.toml:13: body[0].parameter: unknown key `parameter`"),
        "{p:?}"
    );
    let p = problems(&format!("templte = \"x\"\n{MINIMAL}"));
    assert!(
        p[0].starts_with("mappings/test.toml:1: templte: unknown key"),
        "{p:?}"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let src = r#"
source = "shop"
recipient = "$.phone["
default_country_code = "+968"
template = "Order Confirmation"
language = "en"
idempotency_key = "$.id"
colour = "blue"

[[body]]
type = "text"
path = "$.a["

[[body]]
type = "money"
path = "$.b"

[[body]]
type = "currency"
amount_path = "$.total"
code = "euro"
bogus = 1

[[button]]
index = 0
sub_type = "url"

[[example]]
event = '''
{"broken": }
'''
expect_skip = "x"
"#;
    let p = problems(src);
    let joined = p.join("\n");
    for expected in [
        "test.toml:3: recipient: invalid JSONPath",
        "test.toml:4: default_country_code: a country calling code",
        "test.toml:5: template: a template name",
        "test.toml:8: colour: unknown key",
        "test.toml:12: body[0].path: invalid JSONPath",
        "test.toml:15: body[1].type: unknown parameter type \"money\"",
        "test.toml:21: body[2].code: an ISO 4217 code",
        "test.toml:22: body[2].bogus: unknown key",
        "test.toml:24: button[0]: needs path (JSONPath into the event) or text",
        "test.toml:30: example[0].event: invalid JSON",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in\n{joined}"
        );
    }
    assert_eq!(p.len(), 10, "{joined}");
}

#[test]
fn load_dir_collects_problems_of_every_file_and_skips_readme() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "# not a mapping").unwrap();
    std::fs::write(dir.path().join("a.toml"), MINIMAL.replace("$.id", "$.id[")).unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        MINIMAL.replace("source", "sauce"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        format!("name = \"d\"\n{MINIMAL}"),
    )
    .unwrap();
    std::fs::write(dir.path().join("d.toml"), MINIMAL).unwrap();
    let p = load_dir(dir.path()).unwrap_err();
    let joined: Vec<String> = p.iter().map(ToString::to_string).collect();
    assert_eq!(p.len(), 4, "{joined:#?}");
    assert!(joined[0].contains("a.toml:8: idempotency_key: invalid JSONPath"));
    assert!(joined[1].contains("b.toml: source: missing field `source`"));
    assert!(joined[2].contains("b.toml:2: sauce: unknown key"));
    assert!(joined[3].contains("d.toml: name: mapping name \"d\" is already used by"));
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let p = problems("source = \"shop\"\nrecipient = \n");
    assert!(
        p[0].starts_with("mappings/test.toml:2: TOML syntax:"),
        "{p:?}"
    );
}

#[test]
fn named_and_positional_parameters() {
    let named = format!(
        "{MINIMAL}\n[[body]]\nname = \"order_number\"\ntype = \"text\"\npath = \"$.number\"\n"
    )
    .replacen(
        "type = \"text\"\npath = \"$.name\"",
        "name = \"customer_name\"\ntype = \"text\"\npath = \"$.name\"",
        1,
    );
    let m = parse(&named).unwrap();
    let event = json!({"event": "order.paid", "id": 1, "phone": "+96891234567", "name": "Aisha", "number": 10482});
    let Outcome::Send(intent) = m.render(&event) else {
        panic!("expected a send")
    };
    assert_eq!(
        intent.components,
        [json!({"type": "body", "parameters": [
            {"type": "text", "parameter_name": "customer_name", "text": "Aisha"},
            {"type": "text", "parameter_name": "order_number", "text": "10482"}
        ]})]
    );

    let mixed = format!(
        "{MINIMAL}\n[[body]]\nname = \"order_number\"\ntype = \"text\"\npath = \"$.number\"\n"
    );
    let p = problems(&mixed);
    assert_eq!(
        p,
        ["mappings/test.toml:10: body[0]: has no name while other parameters do: a template's parameters are all named or all positional"]
    );
}

#[test]
fn currency_date_time_and_media_parameters() {
    let src = r#"
source = "billing"
recipient = "$.phone"
template = "receipt"
language = "en_US"
idempotency_key = ["$.id", "$.attempt"]

[header]
type = "video"
path = "$.video"

[[body]]
type = "currency"
amount_path = "$.amount"
code_path = "$.currency"

[[body]]
type = "date_time"
path = "$.at"
format = "%-d %b %Y %H:%M"

[[body]]
type = "text"
path = "$.note"
"#;
    let m = parse(src).unwrap();
    let event = json!({"id": "in_1", "attempt": 2, "phone": "+1 415 555 0100", "video": "https://v.example.com/a.mp4",
        "amount": 100.99, "currency": "usd", "at": "2025-02-25T15:33:00-05:00", "note": "line one\nline\ttwo     end"});
    let Outcome::Send(intent) = m.render(&event) else {
        panic!("expected a send: {:?}", m.render(&event))
    };
    assert_eq!(intent.idempotency_key, "test:in_1:2");
    assert_eq!(intent.to, "14155550100");
    assert_eq!(
        intent.components,
        [
            json!({"type": "header", "parameters": [{"type": "video", "video": {"link": "https://v.example.com/a.mp4"}}]}),
            json!({"type": "body", "parameters": [
                {"type": "currency", "currency": {"fallback_value": "USD 100.99", "code": "USD", "amount_1000": 100990}},
                {"type": "date_time", "date_time": {"fallback_value": "25 Feb 2025 15:33"}},
                {"type": "text", "text": "line one line two end"}
            ]})
        ]
    );
    // Every missing piece is listed, and the phone number never appears in the reason.
    let bad = json!({"id": "in_1", "attempt": 2, "phone": "+1 41", "video": "ftp://x",
        "amount": "lots", "currency": "usd", "at": "2025-02-25", "note": ""});
    let Outcome::Invalid { reason } = m.render(&bad) else {
        panic!("expected invalid")
    };
    assert!(
        reason.contains("recipient ($.phone) has 3 digits"),
        "{reason}"
    );
    assert!(
        reason.contains("header ($.video) is not an https:// URL"),
        "{reason}"
    );
    assert!(
        reason.contains("body[0] ($.amount) is lots, not an amount"),
        "{reason}"
    );
    assert!(
        reason.contains("body[1] ($.at) cannot be formatted"),
        "{reason}"
    );
    assert!(reason.contains("body[2] ($.note) is empty"), "{reason}");
    assert!(!reason.contains("+1 41"), "{reason}");
}

#[test]
fn conditions_and_opt_in() {
    let src = format!(
        "{MINIMAL}\n[[condition]]\npath = \"$.total\"\n\n[[condition]]\npath = \"$.status\"\nequals = \"paid\"\n\n[opt_in]\npath = \"$.consent\"\nevidence = \"checkout checkbox\"\n"
    );
    let m = parse(&src).unwrap();
    let mut event = json!({"event": "order.paid", "id": 1, "phone": "+96891234567", "name": "A",
        "total": 5, "status": "paid", "consent": true});
    let Outcome::Send(intent) = m.render(&event) else {
        panic!("expected a send")
    };
    assert_eq!(
        intent.opt_in,
        Some(OptInEvidence {
            evidence: "checkout checkbox".into(),
            path: "$.consent".into(),
            value: json!(true)
        })
    );
    event["consent"] = json!(false);
    let Outcome::Send(intent) = m.render(&event) else {
        panic!("expected a send")
    };
    assert_eq!(intent.opt_in, None);
    event["status"] = json!("pending");
    assert_eq!(
        m.render(&event),
        Outcome::Skip {
            reason: "condition[1] not met: $.status should equal \"paid\", found \"pending\""
                .into()
        }
    );
    event["total"] = json!(0);
    assert!(
        matches!(m.render(&event), Outcome::Skip { reason } if reason.starts_with("condition[0]"))
    );
}

#[test]
fn catalog_mismatch_is_detected() {
    let src =
        format!("{MINIMAL}\n[[button]]\nindex = 1\nsub_type = \"url\"\npath = \"$.tracking\"\n");
    let m = parse(&src).unwrap();
    let set = MappingSet { mappings: vec![m] };
    let ok = CatalogTemplate::from((
        "order_confirmation".to_owned(),
        "en".to_owned(),
        1,
        0,
        vec![0, 1],
    ));
    assert!(set.check_against_catalog(&[ok]).is_empty());

    let wrong = CatalogTemplate {
        name: "order_confirmation".into(),
        language: "en".into(),
        body_params: 3,
        header_params: 1,
        button_params: vec![1],
    };
    let p: Vec<String> = set
        .check_against_catalog(&[wrong])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        p,
        [
            "mappings/test.toml:6: header: template order_confirmation (en) takes 1 header parameter(s); the mapping gives 0",
            "mappings/test.toml:10: body: template order_confirmation (en) takes 3 body parameter(s); the mapping gives 1",
            "mappings/test.toml:14: button[0]: template order_confirmation (en) has 1 button(s); there is no index 1",
            "mappings/test.toml:6: button: template order_confirmation (en): button 0 needs a parameter (URL suffix); add a [[button]] with index = 0",
        ]
    );
    let other_language = CatalogTemplate::from((
        "order_confirmation".to_owned(),
        "ar".to_owned(),
        1,
        0,
        vec![],
    ));
    let p = set.check_against_catalog(&[other_language]);
    assert_eq!(p[0].field, "language");
    assert!(p[0]
        .message
        .contains("has no \"en\" translation (it has: ar)"));
    assert!(set.check_against_catalog(&[])[0]
        .message
        .contains("not in the template catalog"));
}

#[test]
fn example_mismatch_is_reported_with_a_diff() {
    let src = format!(
        r#"{MINIMAL}
[[example]]
name = "wrong expectations"
event = '''{{"event": "order.paid", "id": 1, "phone": "+96891234567", "name": "Aisha"}}'''
expect_request = '''
{{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "96891234567", "type": "template",
  "template": {{"name": "order_confirmation", "language": {{"code": "en_US"}},
  "components": [{{"type": "body", "parameters": [{{"type": "text", "text": "Aysha"}}, {{"type": "text", "text": "x"}}]}}]}}}}
'''
expect_idempotency_key = "test:2"

[[example]]
event = '''{{"event": "order.paid", "id": 1, "phone": "+96891234567", "name": "Aisha"}}'''
expect_skip = "condition"
"#
    );
    let m = parse(&src).unwrap();
    let p: Vec<String> = m.check_examples().iter().map(ToString::to_string).collect();
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(
        p[0],
        "mappings/test.toml:14: example[0]: example \"wrong expectations\" failed: request differs: \
         template.components[0].parameters: expected 2 items, got 1; \
         template.components[0].parameters[0].text: expected \"Aysha\", got \"Aisha\"; \
         template.language.code: expected \"en_US\", got \"en\"; \
         idempotency key: expected \"test:2\", got \"test:1\""
    );
    assert_eq!(
        p[1],
        "mappings/test.toml:24: example[1]: example failed: expected a skip containing \"condition\", got a send of template order_confirmation"
    );
}

#[test]
fn dry_run_prints_the_request_or_the_reason() {
    let m = parse(MINIMAL).unwrap();
    let out =
        m.dry_run(&json!({"event": "order.paid", "id": 3, "phone": "+96891234567", "name": "A"}));
    assert!(
        out.starts_with(
            "SEND (mapping test, idempotency key test:3)\nPOST /{phone-number-id}/messages\n{"
        ),
        "{out}"
    );
    assert!(out.contains("\"to\": \"96891234567\""), "{out}");
    let out = m.dry_run(&json!({"event": "order.paid", "id": 3, "name": "A"}));
    assert_eq!(
        out,
        "BLOCKED (mapping test): recipient ($.phone) is missing, not a phone number\n"
    );
    let out = m.dry_run(&json!({"event": "order.created"}));
    assert_eq!(
        out,
        "SKIP (mapping test): event type at $.event is \"order.created\"; this mapping handles \"order.paid\"\n"
    );
}

#[test]
fn header_must_be_a_single_table_and_media_only_in_header() {
    let src = format!("{MINIMAL}\n[[header]]\ntype = \"text\"\ntext = \"x\"\n");
    assert!(problems(&src)[0].contains("header: expected one table: write [header]"));
    let src =
        format!("{MINIMAL}\n[[body]]\ntype = \"image\"\nlink = \"https://x.example/a.png\"\n");
    assert!(problems(&src)[0].contains("body[1].type: image goes in [header]"));
}
