//! Behaviour tests: text folding and matching, calling codes, business hours, away messages,
//! menus, escalation, rule semantics, loading errors and the shipped file's examples.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};

use super::text::{detect_language, fold, words, Keyword};
use super::*;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn lines(problems: &[MappingProblem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

fn shipped() -> Routing {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/routing.toml");
    load_file(&path).unwrap_or_else(|p| panic!("{}", lines(&p).join("\n")))
}

/// A small file exercising every feature; Asia/Muscat (UTC+4, no daylight saving).
const FIXTURE: &str = r#"
default_department = "general"

[department.general]
name = "General"
[department.orders]
name = "Orders"
targets = { zendesk = "360001" }
[department.sales]
name = "Sales"

[values]
address = "Way 1, Muscat"
address_ar = "سكة 1، مسقط"

[hours]
timezone = "Asia/Muscat"
sunday = "08:00-17:00"
monday = ["08:00-12:00", "16:00-20:00"]
wednesday = "20:00-02:00"
thursday = "09:00-24:00"
holidays = ["2026-05-05", "2026-05-20..2026-05-21"]

[away]
text = "Closed; back {next_open}."
text_ar = "مغلق؛ نعود {next_open}."
away_every_hours = 12
quiet_after_agent_minutes = 60

[handover]
keywords = ["agent", "human", "موظف"]
text = "A person will answer."
text_ar = "سيرد عليك موظف."
tags = ["handover"]
priority = "normal"

[reply.where]
text = "We are at {address}."
text_ar = "نحن في {address}."

[reply.pick]
text = "Pick one"
buttons = [{ id = "yes", title = "Yes", title_ar = "نعم" }, { id = "no", title = "No" }]

[reply.catalog]
text = "Our products"
list_button = "Browse"
section_title = "Products"
rows = [{ id = "p1", title = "Phones", description = "All phones" }, { id = "p2", title = "Laptops" }]

[menu.main]
text = "How can we help?"
text_ar = "كيف نساعدك؟"
max_invalid = 3
expire_minutes = 30

[[menu.main.option]]
key = "1"
label = "Orders"
label_ar = "الطلبات"
department = "orders"
menu = "orders"

[[menu.main.option]]
key = "2"
label = "Where are you"
reply = "where"

[menu.orders]
text = "Orders: what do you need?"
style = "buttons"
exit_label = "A person"

[[menu.orders.option]]
key = "1"
label = "Track an order"
tags = ["tracking"]
handover = "wants tracking"

[menu.shop]
text = "Shop"
style = "list"
list_button = "Open"

[[menu.shop.option]]
key = "a"
label = "Phones"
description = "Smart and not"
department = "sales"

[[rule]]
name = "vip"
country = ["1868"]
tags = ["vip"]
assignee = "vip@example.com"

[[rule]]
name = "oman"
country = ["968"]
tags = ["oman"]

[[rule]]
name = "gulf-not-oman"
country = ["971", "966"]
tags = ["gulf"]

[[rule]]
name = "nanp"
country = ["1"]
tags = ["nanp"]

[[rule]]
name = "order-number"
regex = ['order\s*#?\d+', 'طلب\s*\d+']
department = "orders"
tags = ["order-number"]

[[rule]]
name = "where"
keywords = ["where are you", "*موقع*", "أين"]
reply = "where"

[[rule]]
name = "sales"
keywords = ["price*", "buy", "سعر*", "*شراء"]
department = "sales"
tags = ["sales"]

[[rule]]
name = "arabic"
language = "ar"
tags = ["ar"]

[[rule]]
name = "photo"
message_type = ["image"]
tags = ["photo"]

[[rule]]
name = "tap-yes"
reply_id = ["yes", "promo:*"]
tags = ["tapped"]

[[rule]]
name = "buttons"
keywords = ["buttons"]
reply = "pick"

[[rule]]
name = "list"
keywords = ["catalog"]
reply = "catalog"

[[rule]]
name = "shop"
keywords = ["shop"]
menu = "shop"

[[rule]]
name = "complaint"
keywords = ["complaint", "شكوى"]
priority = "urgent"
handover = true

[[rule]]
name = "night"
hours = "closed"
tags = ["night"]

[[rule]]
name = "stopper"
keywords = ["stop here"]
tags = ["stopped"]
stop = true

[[rule]]
name = "greeting"
first_message = true
menu = "main"

[[rule]]
name = "menu"
keywords = ["menu", "hi", "مرحبا"]
menu = "main"

[[rule]]
name = "everything"
tags = ["seen"]
"#;

fn fixture() -> Routing {
    parse(Path::new("routing.toml"), FIXTURE).unwrap_or_else(|p| panic!("{}", lines(&p).join("\n")))
}

/// Sunday 2026-05-03 10:00 in Muscat: open.
const OPEN: &str = "2026-05-03T10:00:00+04:00";
/// Sunday 2026-05-03 21:00 in Muscat: closed; opens Monday 08:00.
const CLOSED: &str = "2026-05-03T21:00:00+04:00";

fn text(t: &str) -> Inbound<'_> {
    Inbound {
        text: Some(t),
        kind: "text",
        ..Default::default()
    }
}

fn decide_at(
    routing: &Routing,
    inbound: &Inbound<'_>,
    state: &ConversationState,
    when: &str,
) -> Decision {
    routing.decide(inbound, state, at(when))
}

fn names(d: &Decision) -> Vec<&str> {
    d.matched.iter().map(|m| m.name.as_str()).collect()
}

fn bodies(d: &Decision) -> Vec<String> {
    d.replies.iter().map(BotReply::plain_text).collect()
}

// --- text ------------------------------------------------------------------------------------

#[test]
fn folds_case_diacritics_arabic_letter_variants_and_digits() {
    for (input, folded) in [
        ("Opening Hours?", "OPENING HOURS"),
        ("أهلاً", "اهلا"),
        ("إسلام", "اسلام"),
        ("آخر", "اخر"),
        ("مدرسة", "مدرسه"),
        ("مستشفى", "مستشفي"),
        ("سَاعَاتُ العَمَلِ", "ساعات العمل"),
        ("مـــرحبا", "مرحبا"),
        ("١٢٣", "123"),
        ("۴۵", "45"),
        ("  Café   crème ", "CAFE CREME"),
        ("¿Qué?", "¿QUE"),
    ] {
        assert_eq!(fold(input), folded, "fold({input:?})");
    }
}

#[test]
fn keywords_match_whole_words_with_optional_wildcards() {
    for (keyword, message, expected) in [
        ("hours", "What are your opening HOURS?", true),
        ("hour", "What are your opening hours?", false),
        ("hi", "this is it", false),
        ("hi", "Hi!", true),
        ("opening hours", "opening-hours please", true),
        ("opening hours", "opening   hours", true),
        ("opening hours", "hours opening", false),
        ("agent", "agents", false),
        ("price*", "Prices?", true),
        ("café", "CAFE", true),
        ("ساعات العمل", "ساعاتُ العَمَل؟", true),
        ("موقع", "وين موقعكم", false),
        ("موقع*", "وين موقعكم", true),
        ("*موقع*", "الموقع", true),
        ("أين", "اين انتم", true),
        ("مدرسة", "المدرسه", false),
        ("*مدرسة", "المدرسه", true),
        ("مستشفى", "مستشفي", true),
        ("١", "1", true),
    ] {
        let k = Keyword::compile(keyword).unwrap();
        assert_eq!(
            k.is_in(&words(&fold(message))),
            expected,
            "{keyword:?} in {message:?}"
        );
    }
}

#[test]
fn detects_arabic_script_and_latin() {
    for (message, language) in [
        ("hello", Some("en")),
        ("مرحبا", Some("ar")),
        ("مرحبا hi", Some("ar")),
        ("order 123 شكرا", Some("en")),
        ("123", None),
        ("👍", None),
        ("Привет", None),
    ] {
        assert_eq!(detect_language(message), language, "{message:?}");
    }
}

#[test]
fn regex_matches_folded_text_case_insensitively() {
    let r = fixture();
    for (message, expected) in [
        ("ORDER #1234 is late", true),
        ("my order 55 please", true),
        ("order later", false),
        ("طلب ١٢٣", true),
        ("طلبي", false),
    ] {
        let d = decide_at(&r, &text(message), &ConversationState::default(), OPEN);
        assert_eq!(
            names(&d).contains(&"order-number"),
            expected,
            "{message:?}: {:?}",
            names(&d)
        );
    }
}

// --- countries -------------------------------------------------------------------------------

#[test]
fn calling_code_is_the_longest_assigned_prefix() {
    for (number, code) in [
        ("96891234567", Some("968")),
        ("966501234567", Some("966")),
        ("971501234567", Some("971")),
        ("12025550123", Some("1")),
        ("18685551234", Some("1")),
        ("447911123456", Some("44")),
        ("79161234567", Some("7")),
        ("+968 9123 4567", Some("968")),
        ("", None),
    ] {
        assert_eq!(country::calling_code(number), code, "{number:?}");
    }
    assert!(country::check_prefix("968").is_ok());
    assert!(country::check_prefix("1868").is_ok());
    let err = country::check_prefix("96").unwrap_err();
    assert!(err.contains("960, 961"), "{err}");
    assert!(country::check_prefix("abc").is_err());
}

#[test]
fn country_rules_match_by_calling_code_968_vs_96x_vs_1() {
    let r = fixture();
    for (number, tags) in [
        ("96891234567", vec!["oman", "seen"]),
        ("966501234567", vec!["gulf", "seen"]),
        ("12025550123", vec!["nanp", "seen"]),
        ("18685551234", vec!["vip", "nanp", "seen"]),
    ] {
        let inbound = Inbound {
            wa_id: Some(number),
            ..text("thanks")
        };
        let d = decide_at(&r, &inbound, &ConversationState::default(), OPEN);
        assert_eq!(d.ticket.tags, tags, "{number}");
    }
    let no_number = decide_at(&r, &text("thanks"), &ConversationState::default(), OPEN);
    assert_eq!(no_number.ticket.tags, vec!["seen"]);
}

// --- business hours --------------------------------------------------------------------------

#[test]
fn business_hours_across_midnight_time_zone_and_holidays() {
    let r = fixture();
    let hours = r.hours.as_ref().unwrap();
    for (time, open) in [
        // Sunday 08:00-17:00, in Muscat time (UTC+4).
        ("2026-05-03T04:00:00Z", true),
        ("2026-05-03T03:59:00Z", false),
        ("2026-05-03T16:59:00+04:00", true),
        ("2026-05-03T17:00:00+04:00", false),
        // Monday split hours.
        ("2026-05-04T11:59:00+04:00", true),
        ("2026-05-04T13:00:00+04:00", false),
        ("2026-05-04T16:00:00+04:00", true),
        // Tuesday 2026-05-05 would be closed anyway; Wednesday 20:00-02:00 runs past midnight.
        ("2026-05-06T19:59:00+04:00", false),
        ("2026-05-06T23:30:00+04:00", true),
        ("2026-05-07T01:59:00+04:00", true),
        ("2026-05-07T02:00:00+04:00", false),
        // Thursday 09:00-24:00.
        ("2026-05-07T23:59:00+04:00", true),
        ("2026-05-08T00:00:00+04:00", false),
        // Holiday range 2026-05-20 (Wed) .. 05-21 (Thu): the whole dates are closed, including
        // what Wednesday's late range would spill into Thursday.
        ("2026-05-20T21:00:00+04:00", false),
        ("2026-05-21T01:00:00+04:00", false),
        ("2026-05-21T10:00:00+04:00", false),
        ("2026-05-13T21:00:00+04:00", true),
        ("2026-05-14T10:00:00+04:00", true),
    ] {
        assert_eq!(hours.is_open(at(time)), open, "{time}");
    }
}

#[test]
fn holiday_closes_a_single_date_and_next_open_skips_it() {
    let r = fixture();
    let hours = r.hours.as_ref().unwrap();
    // Monday 2026-05-04 evening: closed after 20:00. Tuesday 05-05 is a holiday (and has no
    // hours anyway); Wednesday opens at 20:00.
    let d = decide_at(
        &r,
        &text("hello?"),
        &ConversationState::default(),
        "2026-05-04T21:00:00+04:00",
    );
    assert_eq!(d.facts.open, Some(false));
    assert_eq!(bodies(&d)[0], "Closed; back Wednesday 20:00.");
    assert_eq!(
        hours.describe_next_open(at("2026-05-03T21:00:00+04:00"), text::Lang::En),
        "tomorrow 08:00"
    );
    assert_eq!(
        hours.describe_next_open(at("2026-05-03T06:00:00+04:00"), text::Lang::Ar),
        "اليوم 08:00"
    );
    assert_eq!(
        hours.describe_next_open(at("2026-05-03T10:00:00+04:00"), text::Lang::En),
        "now"
    );
}

#[test]
fn weekly_hours_are_described_in_both_languages() {
    let shipped = shipped();
    let hours = shipped.hours.as_ref().unwrap();
    assert_eq!(
        hours.describe_week(text::Lang::En),
        "Sunday–Thursday: 08:00–17:00\nFriday, Saturday: closed"
    );
    assert_eq!(
        hours.describe_week(text::Lang::Ar),
        "الأحد–الخميس: 08:00–17:00\nالجمعة، السبت: مغلق"
    );
    let r = fixture();
    assert_eq!(
        r.hours.as_ref().unwrap().describe_week(text::Lang::En),
        "Sunday: 08:00–17:00\nMonday: 08:00–12:00, 16:00–20:00\nTuesday: closed\n\
         Wednesday: 20:00–02:00\nThursday: 09:00–24:00\nFriday, Saturday: closed"
    );
}

#[test]
fn daylight_saving_time_zones_use_local_time() {
    let src = "[hours]\ntimezone = \"Europe/London\"\nmonday = \"09:00-17:00\"\n\
               [[rule]]\nname = \"x\"\nhours = \"open\"\ntags = [\"open\"]\n";
    let r = parse(Path::new("dst.toml"), src).unwrap();
    let hours = r.hours.as_ref().unwrap();
    // Summer (BST, UTC+1) and winter (GMT).
    assert!(hours.is_open(at("2026-07-06T08:30:00Z")));
    assert!(!hours.is_open(at("2026-01-05T08:30:00Z")));
    assert!(hours.is_open(at("2026-01-05T09:30:00Z")));
}

// --- away message ----------------------------------------------------------------------------

#[test]
fn away_message_is_sent_once_per_period() {
    let r = fixture();
    let first = decide_at(&r, &text("thanks"), &ConversationState::default(), CLOSED);
    assert_eq!(bodies(&first), vec!["Closed; back tomorrow 08:00."]);
    assert_eq!(first.state.away_sent_at, Some(at(CLOSED)));

    let later = r.decide(
        &text("thanks"),
        &first.state,
        at(CLOSED) + Duration::hours(2),
    );
    assert!(later.replies.is_empty(), "{later}");
    assert!(later
        .notes
        .iter()
        .any(|n| n.contains("at most once every 12 h")));

    // A full period later, closed again (Monday 21:00).
    let next_day = r.decide(
        &text("thanks"),
        &first.state,
        at("2026-05-04T21:00:00+04:00"),
    );
    assert_eq!(bodies(&next_day).len(), 1);
    assert_eq!(
        next_day.state.away_sent_at,
        Some(at("2026-05-04T21:00:00+04:00"))
    );
}

#[test]
fn away_message_is_quiet_after_an_agent_replied() {
    let r = fixture();
    let mut state = ConversationState::default();
    state.agent_replied(at(CLOSED) - Duration::minutes(59));
    let quiet = decide_at(&r, &text("ok thanks"), &state, CLOSED);
    assert!(quiet.replies.is_empty(), "{quiet}");
    assert_eq!(quiet.state.away_sent_at, None);

    state.agent_replied(at(CLOSED) - Duration::minutes(60));
    let after = decide_at(&r, &text("ok thanks"), &state, CLOSED);
    assert_eq!(bodies(&after), vec!["Closed; back tomorrow 08:00."]);
}

#[test]
fn away_message_is_in_arabic_for_arabic_text_and_absent_when_open() {
    let r = fixture();
    let d = decide_at(&r, &text("شكرا"), &ConversationState::default(), CLOSED);
    assert_eq!(bodies(&d), vec!["مغلق؛ نعود غدًا 08:00."]);
    let open = decide_at(&r, &text("شكرا"), &ConversationState::default(), OPEN);
    assert!(open.replies.is_empty());
}

// --- menus -----------------------------------------------------------------------------------

#[test]
fn first_message_is_greeted_with_the_menu_and_later_ones_are_not() {
    let r = fixture();
    let first = Inbound {
        first_message: true,
        ..text("good morning")
    };
    let d = decide_at(&r, &first, &ConversationState::default(), OPEN);
    assert_eq!(names(&d), vec!["greeting", "everything"]);
    assert_eq!(
        bodies(&d),
        vec!["How can we help?\n\n1. Orders\n2. Where are you\n0. Talk to a person"]
    );
    assert_eq!(d.state.menu.as_ref().unwrap().menu, "main");

    let later = decide_at(
        &r,
        &text("good morning"),
        &ConversationState::default(),
        OPEN,
    );
    assert!(later.replies.is_empty());
    assert_eq!(later.state.menu, None);
}

#[test]
fn menu_flow_with_invalid_input_hint_then_handover_after_max_invalid() {
    let r = fixture();
    let mut state = ConversationState::default();
    let mut now = at(OPEN);
    let mut step = |message: &str, state: &mut ConversationState| {
        now += Duration::minutes(1);
        let d = r.decide(&text(message), state, now);
        *state = d.state.clone();
        d
    };
    let d = step("hi", &mut state);
    assert_eq!(state.menu.as_ref().unwrap().menu, "main");
    assert_eq!(d.replies.len(), 1);

    let d = step("banana", &mut state);
    assert_eq!(names(&d), vec!["everything", "menu:main:invalid"]);
    assert!(bodies(&d)[0].starts_with("Sorry, I didn't understand that."));
    assert!(bodies(&d)[0].contains("1. Orders"));
    assert_eq!(state.menu.as_ref().unwrap().invalid, 1);

    let d = step("what?", &mut state);
    assert_eq!(state.menu.as_ref().unwrap().invalid, 2);
    assert!(!d.hands_over());

    let d = step("hmm", &mut state);
    assert!(d.hands_over());
    assert_eq!(
        d.ticket.handover.as_deref(),
        Some("no valid choice in menu main after 3 tries")
    );
    assert_eq!(bodies(&d), vec!["A person will answer."]);
    assert!(state.escalated());
    assert_eq!(state.menu, None);

    let d = step("1", &mut state);
    assert!(d.replies.is_empty(), "{d}");
}

#[test]
fn menu_options_by_key_arabic_digit_label_or_tap_lead_to_sub_menus() {
    let r = fixture();
    let in_main = ConversationState {
        menu: Some(MenuPosition {
            menu: "main".into(),
            entered_at: at(OPEN) - Duration::minutes(1),
            last_activity: at(OPEN) - Duration::minutes(1),
            invalid: 1,
        }),
        ..Default::default()
    };
    for inbound in [
        text("1"),
        text("١"),
        text("1."),
        text("orders"),
        text("الطلبات"),
        Inbound {
            text: Some("Orders"),
            kind: "interactive",
            reply_id: Some("main:1"),
            ..Default::default()
        },
    ] {
        let d = decide_at(&r, &inbound, &in_main, OPEN);
        assert_eq!(names(&d).last(), Some(&"menu:main:1"), "{inbound:?}");
        assert_eq!(d.ticket.department.as_deref(), Some("orders"));
        let position = d.state.menu.as_ref().unwrap();
        assert_eq!((position.menu.as_str(), position.invalid), ("orders", 0));
        assert_eq!(
            d.replies,
            vec![BotReply::Buttons {
                body: "Orders: what do you need?".into(),
                buttons: vec![
                    ("orders:1".into(), "Track an order".into()),
                    ("orders:0".into(), "A person".into()),
                ],
            }]
        );
    }
    // An option with a reply ends the menu.
    let d = decide_at(&r, &text("2"), &in_main, OPEN);
    assert_eq!(bodies(&d), vec!["We are at Way 1, Muscat."]);
    assert_eq!(d.state.menu, None);
}

#[test]
fn a_list_menu_shows_rows_and_a_tapped_row_picks_the_option() {
    let r = fixture();
    let d = decide_at(&r, &text("shop"), &ConversationState::default(), OPEN);
    assert_eq!(
        d.replies,
        vec![BotReply::List {
            body: "Shop".into(),
            button: "Open".into(),
            sections: vec![(
                String::new(),
                vec![
                    (
                        "shop:a".into(),
                        "Phones".into(),
                        Some("Smart and not".into())
                    ),
                    ("shop:0".into(), "Talk to a person".into(), None),
                ]
            )],
        }]
    );
    let tap = Inbound {
        text: Some("Phones"),
        kind: "interactive",
        reply_id: Some("shop:a"),
        ..Default::default()
    };
    let picked = r.decide(&tap, &d.state, at(OPEN) + Duration::minutes(2));
    assert_eq!(picked.ticket.department.as_deref(), Some("sales"));
    assert_eq!(picked.state.menu, None);
}

#[test]
fn a_tap_on_an_earlier_menu_message_still_picks_its_option() {
    let r = fixture();
    let tap = Inbound {
        text: Some("Where are you"),
        kind: "interactive",
        reply_id: Some("main:2"),
        ..Default::default()
    };
    let d = decide_at(&r, &tap, &ConversationState::default(), OPEN);
    assert_eq!(names(&d), vec!["where", "everything", "menu:main:2"]);
    assert_eq!(
        d.matched[0].ignored,
        vec!["reply where: the menu choice answers"]
    );
    assert_eq!(
        d.matched[2].why,
        vec!["a tap on an earlier message of menu main; tapped \"main:2\""]
    );
    assert_eq!(bodies(&d), vec!["We are at Way 1, Muscat."]);
    let exit = Inbound {
        reply_id: Some("orders:0"),
        ..tap
    };
    assert!(decide_at(&r, &exit, &ConversationState::default(), OPEN).hands_over());
}

#[test]
fn menu_expires_after_inactivity() {
    let r = fixture();
    let shown = decide_at(&r, &text("menu"), &ConversationState::default(), OPEN);
    let just_before = r.decide(&text("2"), &shown.state, at(OPEN) + Duration::minutes(29));
    assert_eq!(names(&just_before).last(), Some(&"menu:main:2"));
    let expired = r.decide(&text("2"), &shown.state, at(OPEN) + Duration::minutes(30));
    assert_eq!(names(&expired), vec!["everything"]);
    assert!(expired.replies.is_empty());
    assert_eq!(expired.state.menu, None);
    assert!(expired
        .notes
        .iter()
        .any(|n| n.contains("menu main expired")));
}

#[test]
fn exit_to_a_person_works_from_every_state() {
    let r = fixture();
    let position = |menu: &str| MenuPosition {
        menu: menu.into(),
        entered_at: at(OPEN),
        last_activity: at(OPEN),
        invalid: 2,
    };
    let states = [
        ConversationState::default(),
        ConversationState {
            menu: Some(position("main")),
            ..Default::default()
        },
        ConversationState {
            menu: Some(position("orders")),
            ..Default::default()
        },
        ConversationState {
            menu: Some(position("shop")),
            ..Default::default()
        },
    ];
    for state in &states {
        let in_menu = state.menu.is_some();
        for message in [
            "0",
            "agent",
            "AGENT please",
            "I want a human",
            "موظف",
            "أبي موظف",
        ] {
            if message == "0" && !in_menu {
                continue;
            }
            let d = r.decide(&text(message), state, at(OPEN) + Duration::minutes(1));
            assert!(d.hands_over(), "{message:?} in {:?}", state.menu);
            assert!(d.state.escalated());
            assert_eq!(d.state.menu, None);
        }
    }
    // Outside a menu "0" is just text.
    let zero = decide_at(&r, &text("0"), &ConversationState::default(), OPEN);
    assert!(!zero.hands_over());
}

#[test]
fn menu_exit_by_tap_or_label() {
    let r = fixture();
    let shown = decide_at(&r, &text("shop"), &ConversationState::default(), OPEN);
    let tap = Inbound {
        text: Some("Talk to a person"),
        kind: "interactive",
        reply_id: Some("shop:0"),
        ..Default::default()
    };
    let d = r.decide(&tap, &shown.state, at(OPEN) + Duration::minutes(1));
    assert_eq!(names(&d).last(), Some(&"menu:shop:0"));
    assert!(d.hands_over());
    let typed = r.decide(&text("التحدث مع موظف"), &shown.state, at(OPEN));
    assert!(typed.hands_over());
}

#[test]
fn a_faq_rule_answers_inside_a_menu_and_the_menu_keeps_waiting() {
    let r = fixture();
    let shown = decide_at(&r, &text("menu"), &ConversationState::default(), OPEN);
    let later = at(OPEN) + Duration::minutes(5);
    let d = r.decide(&text("where are you located?"), &shown.state, later);
    assert_eq!(bodies(&d), vec!["We are at Way 1, Muscat."]);
    let position = d.state.menu.as_ref().unwrap();
    assert_eq!((position.menu.as_str(), position.invalid), ("main", 0));
    assert_eq!(position.last_activity, later);
}

#[test]
fn a_menu_removed_from_the_file_is_left() {
    let r = fixture();
    let state = ConversationState {
        menu: Some(MenuPosition {
            menu: "gone".into(),
            entered_at: at(OPEN),
            last_activity: at(OPEN),
            invalid: 0,
        }),
        ..Default::default()
    };
    let d = decide_at(&r, &text("1"), &state, OPEN);
    assert_eq!(d.state.menu, None);
    assert!(d.replies.is_empty());
}

// --- escalation ------------------------------------------------------------------------------

#[test]
fn escalation_stops_every_reply_until_cleared() {
    let r = fixture();
    let handed = decide_at(&r, &text("agent"), &ConversationState::default(), CLOSED);
    assert_eq!(names(&handed), vec!["night", "everything", "handover"]);
    // Closed: the away message comes first, then the hand-over text.
    assert_eq!(
        bodies(&handed),
        vec!["Closed; back tomorrow 08:00.", "A person will answer."]
    );
    assert_eq!(
        handed.ticket.handover.as_deref(),
        Some("customer asked for a person (\"agent\")")
    );
    assert_eq!(handed.ticket.priority, Some(Priority::Normal));
    let mut state = handed.state.clone();
    assert!(state.escalated());

    for message in ["hi", "where are you", "agent", "shop", "price please", "1"] {
        for (when, first) in [(OPEN, false), (CLOSED, true)] {
            let inbound = Inbound {
                first_message: first,
                ..text(message)
            };
            let d = r.decide(&inbound, &state, at(when) + Duration::days(1));
            assert!(d.replies.is_empty(), "{message:?} at {when}: {d}");
            assert!(!d.hands_over());
            assert!(d.state.escalated());
            assert_eq!(d.state.menu, None);
        }
    }
    // Rules still tag, but do not move the ticket away from the person.
    let d = r.decide(&text("price please"), &state, at(OPEN) + Duration::days(1));
    assert_eq!(d.ticket.tags, vec!["sales", "seen"]);
    assert_eq!(d.ticket.department, None);

    state.clear_escalation();
    let d = r.decide(&text("where are you"), &state, at(OPEN) + Duration::days(1));
    assert_eq!(bodies(&d), vec!["We are at Way 1, Muscat."]);
}

#[test]
fn a_rule_can_hand_over_with_its_priority() {
    let r = fixture();
    let d = decide_at(
        &r,
        &text("I have a complaint"),
        &ConversationState::default(),
        OPEN,
    );
    assert_eq!(d.ticket.handover.as_deref(), Some("rule complaint"));
    assert_eq!(d.ticket.priority, Some(Priority::Urgent));
    assert_eq!(d.ticket.tags, vec!["seen", "handover"]);
    assert_eq!(bodies(&d), vec!["A person will answer."]);
    let ar = decide_at(&r, &text("عندي شكوى"), &ConversationState::default(), OPEN);
    assert_eq!(bodies(&ar), vec!["سيرد عليك موظف."]);
}

#[test]
fn a_menu_option_can_hand_over() {
    let r = fixture();
    let state = ConversationState {
        menu: Some(MenuPosition {
            menu: "orders".into(),
            entered_at: at(OPEN),
            last_activity: at(OPEN),
            invalid: 0,
        }),
        ..Default::default()
    };
    let d = decide_at(&r, &text("1"), &state, OPEN);
    assert_eq!(d.ticket.handover.as_deref(), Some("wants tracking"));
    assert_eq!(d.ticket.tags, vec!["seen", "tracking", "handover"]);
}

// --- rule semantics --------------------------------------------------------------------------

#[test]
fn tags_come_from_every_matching_rule_and_the_first_setter_wins_each_field() {
    let r = fixture();
    let inbound = Inbound {
        wa_id: Some("18685551234"),
        ..text("Order #77: what is the price?")
    };
    let d = decide_at(&r, &inbound, &ConversationState::default(), CLOSED);
    assert_eq!(
        names(&d),
        vec![
            "vip",
            "nanp",
            "order-number",
            "sales",
            "night",
            "everything"
        ]
    );
    assert_eq!(
        d.ticket.tags,
        vec!["vip", "nanp", "order-number", "sales", "night", "seen"]
    );
    assert_eq!(d.ticket.department.as_deref(), Some("orders"));
    assert_eq!(d.ticket.assignee.as_deref(), Some("vip@example.com"));
    let sales = &d.matched[3];
    assert_eq!(
        sales.ignored,
        vec!["department sales: an earlier rule already set orders"]
    );
}

#[test]
fn the_first_responding_rule_answers_and_later_answers_are_reported_unused() {
    let r = fixture();
    let first = Inbound {
        first_message: true,
        ..text("hi, where are you?")
    };
    let d = decide_at(&r, &first, &ConversationState::default(), OPEN);
    assert_eq!(bodies(&d), vec!["We are at Way 1, Muscat."]);
    let greeting = d.matched.iter().find(|m| m.name == "greeting").unwrap();
    assert_eq!(
        greeting.ignored,
        vec!["menu main: an earlier rule already answers"]
    );
}

#[test]
fn stop_skips_later_rules() {
    let r = fixture();
    let d = decide_at(&r, &text("stop here"), &ConversationState::default(), OPEN);
    assert_eq!(names(&d), vec!["stopper"]);
    assert_eq!(d.ticket.tags, vec!["stopped"]);
}

#[test]
fn conditions_on_language_message_type_and_reply_id() {
    let r = fixture();
    let ar = decide_at(&r, &text("مرحبا"), &ConversationState::default(), OPEN);
    assert!(ar.ticket.tags.contains(&"ar".to_owned()));
    assert_eq!(ar.facts.language, "ar");
    assert!(bodies(&ar)[0].starts_with("كيف نساعدك؟"));

    let photo = Inbound {
        text: None,
        kind: "image",
        ..Default::default()
    };
    let d = decide_at(&r, &photo, &ConversationState::default(), OPEN);
    assert_eq!(d.ticket.tags, vec!["photo", "seen"]);

    for (id, tapped) in [("yes", true), ("promo:summer", true), ("no", false)] {
        let tap = Inbound {
            text: Some("x"),
            kind: "button",
            reply_id: Some(id),
            ..Default::default()
        };
        let d = decide_at(&r, &tap, &ConversationState::default(), OPEN);
        assert_eq!(d.ticket.tags.contains(&"tapped".to_owned()), tapped, "{id}");
    }
}

#[test]
fn language_falls_back_to_the_conversation_then_profile_then_default() {
    let r = fixture();
    let shown = decide_at(&r, &text("مرحبا"), &ConversationState::default(), OPEN);
    assert_eq!(shown.state.language.as_deref(), Some("ar"));
    let digit = r.decide(&text("2"), &shown.state, at(OPEN));
    assert_eq!(digit.facts.language_from, "conversation");
    assert_eq!(bodies(&digit), vec!["نحن في سكة 1، مسقط."]);

    let profile = Inbound {
        profile_language: Some("ar_OM"),
        ..text("2")
    };
    let d = decide_at(&r, &profile, &shown.state.clone(), OPEN);
    assert_eq!(d.facts.language_from, "conversation");
    let fresh = ConversationState {
        menu: shown.state.menu.clone(),
        ..Default::default()
    };
    let d = decide_at(&r, &profile, &fresh, OPEN);
    assert_eq!(
        (d.facts.language.as_str(), d.facts.language_from.as_str()),
        ("ar", "profile")
    );
    let d = decide_at(&r, &text("2"), &fresh, OPEN);
    assert_eq!(
        (d.facts.language.as_str(), d.facts.language_from.as_str()),
        ("en", "default")
    );
}

#[test]
fn department_defaults_once_and_is_only_reported_when_it_changes() {
    let r = fixture();
    let d = decide_at(&r, &text("thanks"), &ConversationState::default(), OPEN);
    assert_eq!(d.ticket.department.as_deref(), Some("general"));
    let again = decide_at(&r, &text("thanks"), &d.state, OPEN);
    assert_eq!(again.ticket.department, None);
    let moved = decide_at(&r, &text("order 12"), &d.state, OPEN);
    assert_eq!(moved.ticket.department.as_deref(), Some("orders"));
    assert_eq!(moved.state.department.as_deref(), Some("orders"));
    let same = decide_at(&r, &text("order 12"), &moved.state, OPEN);
    assert_eq!(same.ticket.department, None);
    assert_eq!(r.department("orders").unwrap().target("zendesk"), "360001");
    assert_eq!(r.department("orders").unwrap().target("rt"), "Orders");
}

#[test]
fn interactive_replies_render_and_become_graph_requests() {
    let r = fixture();
    let d = decide_at(&r, &text("buttons"), &ConversationState::default(), OPEN);
    let json = d.replies[0].to_graph("96891234567");
    assert_eq!(
        json,
        serde_json::json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "96891234567",
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": "Pick one"},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "no", "title": "No"}}
                ]}
            }
        })
    );
    let list = decide_at(&r, &text("catalog"), &ConversationState::default(), OPEN);
    let json = list.replies[0].to_graph("1");
    assert_eq!(json["interactive"]["action"]["button"], "Browse");
    assert_eq!(
        json["interactive"]["action"]["sections"][0]["title"],
        "Products"
    );
    assert_eq!(
        json["interactive"]["action"]["sections"][0]["rows"][0]["description"],
        "All phones"
    );
    let plain = BotReply::Text { body: "hi".into() }.to_graph("1");
    assert_eq!(plain["text"]["body"], "hi");
}

#[test]
fn state_round_trips_through_json_and_ignores_unknown_fields() {
    let r = fixture();
    let d = decide_at(&r, &text("menu"), &ConversationState::default(), OPEN);
    let json = serde_json::to_string(&d.state).unwrap();
    let back: ConversationState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d.state);
    let old: ConversationState =
        serde_json::from_str(r#"{"language": "ar", "from_the_future": 1}"#).unwrap();
    assert_eq!(old.language.as_deref(), Some("ar"));
    assert_eq!(
        serde_json::to_string(&ConversationState::default()).unwrap(),
        "{}"
    );
}

#[test]
fn decide_is_deterministic() {
    let r = fixture();
    let a = decide_at(&r, &text("hi"), &ConversationState::default(), CLOSED);
    let b = decide_at(&r, &text("hi"), &ConversationState::default(), CLOSED);
    assert_eq!(a, b);
}

#[test]
fn route_test_report_names_file_lines_reasons_actions_replies_and_state() {
    let r = fixture();
    let inbound = Inbound {
        first_message: true,
        wa_id: Some("96891234567"),
        ..text("hi")
    };
    let report = decide_at(&r, &inbound, &ConversationState::default(), CLOSED).to_string();
    for expected in [
        "text \"hi\"",
        "language en (from text), calling code 968, first message of the conversation",
        "2026-05-03 21:00 Sunday (Asia/Muscat): closed",
        "routing.toml:97 oman: number starts with calling code 968",
        "applied: tags oman",
        "greeting: first message of the conversation",
        "not applied: menu main: an earlier rule already answers",
        "department: general",
        "tags: oman, night, seen",
        "1. text:\n     Closed; back tomorrow 08:00.",
        "2. text:\n     How can we help?",
        "menu main waiting (invalid inputs: 0)",
        "away message sent",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
}

// --- loading ---------------------------------------------------------------------------------

#[test]
fn broken_file_lists_every_problem_with_file_line_and_field() {
    let src = r#"default_language = "fr"
colour = "blue"

[department.orders]
name = ""

[hours]
timezone = "Asia/Muskat"
sunday = "8-17"
holidays = ["2026-13-01"]

[away]
text = "Back {nextopen}"
away_every_hours = 0

[reply.pick]
text = "Pick"
buttons = [
  { id = "a", title = "A title that is far too long" },
  { id = "b", title = "B" },
  { id = "c", title = "C" },
  { id = "d", title = "D" },
]

[menu.main]
text = "Menu"
style = "buttons"

[[menu.main.option]]
key = "0"
label = "Zero"
reply = "nope"

[[rule]]
name = "Bad Name"
keywords = ["*"]
regex = "("
country = ["96"]
hours = "sometimes"
priority = "asap"
department = "sales"

[[rule]]
name = "empty"
language = "arabic"

[[example]]
text = "hi"
"#;
    let problems = parse(Path::new("mappings/routing.toml"), src).unwrap_err();
    assert_eq!(
        lines(&problems),
        vec![
            "mappings/routing.toml:1: default_language: \"en\" or \"ar\"",
            "mappings/routing.toml:2: colour: unknown key `colour`; expected one of: default_language, default_department, department, values, hours, away, handover, reply, menu, rule, example",
            "mappings/routing.toml:5: department.orders.name: must not be empty",
            "mappings/routing.toml:8: hours.timezone: unknown time zone \"Asia/Muskat\"; use an IANA name such as \"Asia/Muscat\"",
            "mappings/routing.toml:9: hours.sunday: \"8-17\": write a range as \"08:00-17:00\" (24-hour clock; \"22:00-02:00\" runs past midnight)",
            "mappings/routing.toml:10: hours.holidays[0]: \"2026-13-01\": write a date as \"2026-03-20\" or a range as \"2026-03-19..2026-03-22\"",
            "mappings/routing.toml:12: away: needs an [hours] section: the away message is sent outside business hours",
            "mappings/routing.toml:13: away.text: unknown placeholder {nextopen}; known: hours, next_open",
            "mappings/routing.toml:14: away.away_every_hours: must be between 1 and 720",
            "mappings/routing.toml:18: reply.pick.buttons: has 4 buttons; WhatsApp allows 1 to 3 reply buttons",
            "mappings/routing.toml:19: reply.pick.buttons[0].title: is 28 characters; WhatsApp allows at most 20 for a button title",
            "mappings/routing.toml:30: menu.main.option[0].key: key \"0\" is also used by menu.main.exit",
            "mappings/routing.toml:32: menu.main.option[0].reply: unknown reply \"nope\"; defined: pick",
            "mappings/routing.toml:35: rule[0].name: a rule name is lowercase letters, digits, `-` and `_`",
            "mappings/routing.toml:36: rule[0].keywords[0]: keyword \"*\" has a word with no letters or digits",
            "mappings/routing.toml:37: rule[0].regex: invalid regex: unclosed group",
            "mappings/routing.toml:38: rule[0].country: \"96\" is not a country calling code (codes starting with it: 960, 961, 962, 963, 964, 965, 966, 967, 968)",
            "mappings/routing.toml:39: rule[0].hours: \"sometimes\": expected \"open\" or \"closed\"",
            "mappings/routing.toml:39: rule[0].hours: needs an [hours] section to know when the business is open",
            "mappings/routing.toml:40: rule[0].priority: unknown priority \"asap\"; expected low, normal, high or urgent",
            "mappings/routing.toml:41: rule[0].department: unknown department \"sales\"; defined: orders",
            "mappings/routing.toml:45: rule[1].language: \"arabic\": a language is a lowercase code such as \"ar\" or \"en\"",
            "mappings/routing.toml:47: example[0]: expects nothing: give at least one expect_… key",
        ]
    );
}

#[test]
fn whatsapp_limits_are_checked_at_load() {
    let rows: Vec<String> = (0..11)
        .map(|i| format!("{{ id = \"r{i}\", title = \"Row {i}\" }}"))
        .collect();
    let long_body = "x".repeat(1100);
    let src = format!(
        r#"[reply.list]
text = "List"
list_button = "A list button that is too long"
rows = [{}]

[reply.row]
text = "Row"
list_button = "Open"
rows = [{{ id = "a", title = "A row title that is way too long", description = "{}" }}]

[reply.long]
text = "{long_body}"
buttons = [{{ id = "a", title = "A" }}]

[menu.big]
text = "Big"
style = "buttons"
[[menu.big.option]]
key = "1"
label = "One"
tags = ["x"]
[[menu.big.option]]
key = "2"
label = "Two is a very long label"
tags = ["x"]
[[menu.big.option]]
key = "3"
label = "Three"
tags = ["x"]
"#,
        rows.join(", "),
        "d".repeat(80)
    );
    let problems = parse(Path::new("limits.toml"), &src).unwrap_err();
    assert_eq!(
        lines(&problems),
        vec![
            "limits.toml:3: reply.list.list_button: is 30 characters; WhatsApp allows at most 20 for the list button",
            "limits.toml:4: reply.list.rows: has 11 rows; WhatsApp allows 1 to 10 rows in a list",
            "limits.toml:9: reply.row.rows[0].title: is 32 characters; WhatsApp allows at most 24 for a list row title",
            "limits.toml:9: reply.row.rows[0].description: is 80 characters; WhatsApp allows at most 72 for a list row description",
            "limits.toml:12: reply.long.text: renders to up to 1100 characters; WhatsApp allows at most 1024 for an interactive message body",
            "limits.toml:15: menu.big: 3 options and the exit make 4 reply buttons; WhatsApp allows at most 3",
            "limits.toml:24: menu.big.option[1].label: is 24 characters; WhatsApp allows at most 20 for a button title",
        ]
    );
}

#[test]
fn examples_report_failures_at_their_line() {
    let src = r#"[reply.hi]
text = "Hello there"

[[rule]]
name = "hi"
keywords = ["hi"]
reply = "hi"

[[example]]
name = "passes"
text = "hi"
expect_replies = ["Hello"]

[[example]]
name = "fails"
text = "hi"
expect_rules = ["other"]
expect_replies = ["Bye"]
expect_handover = true
"#;
    let r = parse(Path::new("ex.toml"), src).unwrap();
    assert_eq!(
        lines(&r.check_examples()),
        vec![
            "ex.toml:14: example[1]: example \"fails\" failed: matched [\"hi\"], expected [\"other\"]; \
             reply 1 is \"Hello there\", expected it to contain \"Bye\"; hand-over None, expected one"
        ]
    );
}

#[test]
fn a_file_without_handover_section_still_reaches_a_person() {
    let r = parse(Path::new("min.toml"), "").unwrap();
    for message in ["agent", "human", "person", "موظف"] {
        let d = decide_at(&r, &text(message), &ConversationState::default(), OPEN);
        assert!(d.hands_over(), "{message}");
        assert!(d.replies.is_empty());
    }
    let empty = parse(Path::new("x.toml"), "[handover]\nkeywords = []\n").unwrap_err();
    assert_eq!(
        lines(&empty),
        vec!["x.toml:1: handover.keywords: must list at least one word: customers must always be able to reach a person"]
    );
}

#[test]
fn toml_syntax_errors_have_lines() {
    let problems = parse(Path::new("s.toml"), "[[rule]]\nname = \"a\"\ntags = [\n").unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].to_string().starts_with("s.toml:"),
        "{}",
        problems[0]
    );
    assert!(problems[0].message.starts_with("TOML syntax:"));
}

#[test]
fn unreadable_file_is_one_problem() {
    let problems = load_file(Path::new("/nonexistent/routing.toml")).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].message.starts_with("cannot read file"));
}

// --- the shipped file ------------------------------------------------------------------------

#[test]
fn shipped_file_loads_and_its_examples_pass() {
    let routing = shipped();
    let problems = routing.check_examples();
    assert!(problems.is_empty(), "{}", lines(&problems).join("\n"));
    assert!(routing.example_count() >= 20);
    let names: Vec<&str> = routing.departments().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec!["Appointments", "General", "Orders"]);
}

#[test]
fn shipped_file_answers_hours_and_location_in_both_languages() {
    let r = shipped();
    for (message, expected) in [
        (
            "what are your opening hours",
            "Sunday–Thursday: 08:00–17:00",
        ),
        ("What are your opening hours?", "Closed on public holidays"),
        ("ساعات العمل", "الأحد–الخميس: 08:00–17:00"),
        ("ساعات العمل؟", "مغلق في العطل الرسمية"),
        ("where are you", "Al Khuwair, Muscat"),
        ("Location?", "https://maps.google.com"),
        ("الموقع", "الخوير، مسقط"),
        ("وين موقعكم", "الخوير، مسقط"),
        ("وين موقعكم؟", "الخوير، مسقط"),
    ] {
        for first in [false, true] {
            let inbound = Inbound {
                first_message: first,
                ..text(message)
            };
            let d = decide_at(&r, &inbound, &ConversationState::default(), OPEN);
            assert_eq!(d.replies.len(), 1, "{message:?}: {d}");
            assert!(bodies(&d)[0].contains(expected), "{message:?}: {d}");
        }
    }
}

#[test]
fn shipped_file_hands_over_and_then_stays_silent_until_resolved() {
    let r = shipped();
    for message in [
        "agent",
        "human",
        "person",
        "موظف",
        "I want to speak to a person",
    ] {
        let d = decide_at(&r, &text(message), &ConversationState::default(), OPEN);
        assert!(d.hands_over(), "{message}");
        let mut state = d.state;
        for later in [
            "hello",
            "what are your opening hours",
            "0",
            "1",
            "وين موقعكم",
            "agent",
        ] {
            let inbound = Inbound {
                first_message: false,
                ..text(later)
            };
            let d = r.decide(&inbound, &state, at(CLOSED));
            assert!(d.replies.is_empty(), "{later:?} after {message:?}: {d}");
        }
        state.clear_escalation();
        let d = decide_at(&r, &text("hello"), &state, OPEN);
        assert_eq!(d.replies.len(), 1);
    }
    // The menu's 0.
    let greeted = decide_at(
        &r,
        &Inbound {
            first_message: true,
            ..text("hi")
        },
        &ConversationState::default(),
        OPEN,
    );
    let zero = r.decide(&text("0"), &greeted.state, at(OPEN) + Duration::minutes(1));
    assert!(zero.hands_over());
    assert!(r
        .decide(&text("hello"), &zero.state, at(OPEN) + Duration::minutes(2))
        .replies
        .is_empty());
}

#[test]
fn shipped_menu_also_fits_whatsapp_limits_as_a_list() {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/routing.toml"),
    )
    .unwrap()
    .replace("style = \"text\" ", "style = \"list\" ");
    let r = parse(Path::new("routing.toml"), &src)
        .unwrap_or_else(|p| panic!("{}", lines(&p).join("\n")));
    let d = decide_at(
        &r,
        &Inbound {
            first_message: true,
            ..text("مرحبا")
        },
        &ConversationState::default(),
        OPEN,
    );
    let BotReply::List {
        button, sections, ..
    } = &d.replies[0]
    else {
        panic!("{d}");
    };
    assert_eq!(button, "اختر");
    assert_eq!(sections[0].1.len(), 4);
    assert_eq!(
        sections[0].1[3],
        ("main:0".into(), "التحدث مع موظف".into(), None)
    );
}

#[test]
fn unknown_keys_in_nested_tables_are_named() {
    let src = "[reply.x]\ntext = \"x\"\nbuttons = [{ id = \"a\", title = \"A\", colour = \"red\" }]\n\n[menu.m]\ntext = \"m\"\n[[menu.m.option]]\nkey = \"1\"\nlabel = \"One\"\ntag = [\"x\"]\n";
    let problems = parse(Path::new("n.toml"), src).unwrap_err();
    let got = lines(&problems);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("n.toml:3: reply.x.buttons[0].colour: unknown field `colour`"),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with(
            "n.toml:10: menu.m.option[0].tag: unknown key `tag`; expected one of: key, label"
        ),
        "{got:#?}"
    );
}
