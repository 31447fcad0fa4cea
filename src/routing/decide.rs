//! The engine: one inbound message + state + time → [`Decision`].
//!
//! Order of evaluation:
//! 1. Facts: language (text script, else the conversation's, else the profile's, else the
//!    file's default), calling code, open or closed. A menu left unanswered for its
//!    `expire_minutes` is dropped.
//! 2. Rules, in file order. Every rule whose conditions hold matches (until one with
//!    `stop = true`). Department, assignee and priority each come from the first matching rule
//!    that sets them; tags from all of them; the bot's response (replies, menu, hand-over) from
//!    the first matching rule that has one.
//! 3. With a person (escalated): nothing is sent and the ticket is not moved; tags and priority
//!    still apply.
//! 4. Otherwise: the away message when closed (once per period, not right after an agent),
//!    then the first of: a choice in the waiting menu (an option or its exit key), a
//!    `[handover]` keyword, the first responding rule, and — when a menu waits and nothing
//!    else answered — the invalid-input hint (hand-over after `max_invalid`).

use chrono::{DateTime, Utc};

use super::menu::{Choice, Menu};
use super::rules::{Actions, MatchInput};
use super::text::{detect_language, fold, primary_subtag, words, Lang, RenderCtx};
use super::{
    BotReply, ConversationState, Decision, Escalation, Facts, Inbound, MatchedRule, MenuPosition,
    Routing, TicketActions,
};

pub(super) fn decide(
    routing: &Routing,
    inbound: &Inbound<'_>,
    state: &ConversationState,
    now: DateTime<Utc>,
) -> Decision {
    let text = inbound.text.filter(|t| !t.trim().is_empty());
    let folded = text.map(fold).unwrap_or_default();
    let words = words(&folded);
    let number: Option<String> = inbound
        .wa_id
        .map(|w| w.chars().filter(char::is_ascii_digit).collect::<String>())
        .filter(|d| !d.is_empty());
    let detected = text.and_then(detect_language);
    let (language, language_from) = if let Some(code) = detected {
        (code.to_owned(), "text")
    } else if let Some(code) = &state.language {
        (code.clone(), "conversation")
    } else if let Some(code) = inbound.profile_language.and_then(primary_subtag) {
        (code, "profile")
    } else {
        (routing.default_language.code().to_owned(), "default")
    };
    let open = routing.hours.as_ref().map(|h| h.is_open(now));
    let facts = Facts {
        kind: inbound.kind.to_owned(),
        text: inbound.text.map(str::to_owned),
        reply_id: inbound.reply_id.map(str::to_owned),
        language: language.clone(),
        language_from: language_from.to_owned(),
        calling_code: number
            .as_deref()
            .and_then(super::country::calling_code)
            .map(str::to_owned),
        open,
        local_time: routing.hours.as_ref().map(|h| {
            format!(
                "{} ({})",
                h.local(now).format("%Y-%m-%d %H:%M %A"),
                h.tz_name()
            )
        }),
        first_message: inbound.first_message,
    };

    let mut run = Run {
        routing,
        now,
        ctx: RenderCtx {
            lang: Lang::of(&language),
            values: &routing.values,
            hours: routing.hours.as_ref(),
            now,
        },
        next: state.clone(),
        text: text.map(str::to_owned),
        matched: Vec::new(),
        ticket: TicketActions::default(),
        replies: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(code) = detected {
        run.next.language = Some(code.to_owned());
    }
    run.drop_stale_menu();

    let input = MatchInput {
        folded: &folded,
        words: &words,
        kind: inbound.kind,
        reply_id: inbound.reply_id,
        number: number.as_deref(),
        language: &language,
        first_message: inbound.first_message,
        open,
    };
    let responder = run.evaluate_rules(&input);

    if let Some(escalation) = &state.escalation {
        run.stay_silent(escalation, responder);
    } else {
        run.away_message(open);
        run.respond(inbound.reply_id, &folded, &words, responder);
        run.settle_department();
    }

    Decision {
        file: routing.file.clone(),
        facts,
        matched: run.matched,
        ticket: run.ticket,
        replies: run.replies,
        state: run.next,
        notes: run.notes,
    }
}

/// The decision being built.
struct Run<'r> {
    routing: &'r Routing,
    now: DateTime<Utc>,
    ctx: RenderCtx<'r>,
    next: ConversationState,
    /// The message text, as sent.
    text: Option<String>,
    matched: Vec<MatchedRule>,
    ticket: TicketActions,
    replies: Vec<BotReply>,
    notes: Vec<String>,
}

/// Sets `slot` from `value` when nothing set it before; records what happened on `m`.
fn first_wins<T: Clone + std::fmt::Display + PartialEq>(
    slot: &mut Option<T>,
    value: Option<&T>,
    what: &str,
    m: &mut MatchedRule,
) {
    let Some(value) = value else { return };
    match slot {
        None => {
            *slot = Some(value.clone());
            m.applied.push(format!("{what} {value}"));
        }
        Some(earlier) if earlier == value => m.applied.push(format!("{what} {value}")),
        Some(earlier) => m.ignored.push(format!(
            "{what} {value}: an earlier rule already set {earlier}"
        )),
    }
}

/// Sets `slot` from a menu choice, which overrides what rules set.
fn choice_wins<T: Clone + std::fmt::Display + PartialEq>(
    slot: &mut Option<T>,
    value: Option<&T>,
    what: &str,
    m: &mut MatchedRule,
) {
    let Some(value) = value else { return };
    match slot.replace(value.clone()) {
        Some(earlier) if earlier != *value => m
            .applied
            .push(format!("{what} {value} (instead of {earlier} from a rule)")),
        _ => m.applied.push(format!("{what} {value}")),
    }
}

impl<'r> Run<'r> {
    fn add_tags(&mut self, tags: &[String]) {
        for tag in tags {
            if !self.ticket.tags.contains(tag) {
                self.ticket.tags.push(tag.clone());
            }
        }
    }

    /// Leaves a menu that expired or is no longer in the file.
    fn drop_stale_menu(&mut self) {
        let Some(position) = &self.next.menu else {
            return;
        };
        match self.routing.menus.get(&position.menu) {
            None => {
                self.notes.push(format!(
                    "menu {:?} is no longer in the file: left it",
                    position.menu
                ));
                self.next.menu = None;
            }
            Some(menu) if self.now - position.last_activity >= menu.expire => {
                self.notes.push(format!(
                    "menu {} expired (no answer for {} min since {}): left it",
                    menu.name,
                    menu.expire.num_minutes(),
                    position.last_activity.format("%Y-%m-%d %H:%M UTC")
                ));
                self.next.menu = None;
            }
            Some(_) => {}
        }
    }

    /// Runs the rules; returns the index in `matched` and the actions of the first rule with a
    /// response.
    fn evaluate_rules(&mut self, input: &MatchInput<'_>) -> Option<(usize, &'r Actions)> {
        let mut responder = None;
        for rule in &self.routing.rules {
            let Some(why) = rule.conditions.check(input) else {
                continue;
            };
            let mut m = MatchedRule {
                name: rule.name.clone(),
                line: rule.line,
                why,
                applied: Vec::new(),
                ignored: Vec::new(),
            };
            let a = &rule.actions;
            first_wins(
                &mut self.ticket.department,
                a.department.as_ref(),
                "department",
                &mut m,
            );
            first_wins(
                &mut self.ticket.assignee,
                a.assignee.as_ref(),
                "assignee",
                &mut m,
            );
            first_wins(
                &mut self.ticket.priority,
                a.priority.as_ref(),
                "priority",
                &mut m,
            );
            if !a.tags.is_empty() {
                self.add_tags(&a.tags);
                m.applied.push(format!("tags {}", a.tags.join(", ")));
            }
            if a.responds() {
                if responder.is_none() {
                    responder = Some((self.matched.len(), a));
                } else {
                    for what in a.describe_response() {
                        m.ignored
                            .push(format!("{what}: an earlier rule already answers"));
                    }
                }
            }
            self.matched.push(m);
            if rule.stop {
                self.notes.push(format!(
                    "rule {} has stop = true: later rules were not evaluated",
                    rule.name
                ));
                break;
            }
        }
        responder
    }

    fn ignore_response(&mut self, responder: Option<(usize, &Actions)>, because: &str) {
        if let Some((i, actions)) = responder {
            if let Some(m) = self.matched.get_mut(i) {
                for what in actions.describe_response() {
                    m.ignored.push(format!("{what}: {because}"));
                }
            }
        }
    }

    /// Escalated: no replies, no menu, the ticket stays where the person is.
    fn stay_silent(&mut self, escalation: &Escalation, responder: Option<(usize, &Actions)>) {
        self.notes.push(format!(
            "with a person since {} ({}): no bot replies until the ticket is resolved",
            escalation.since.format("%Y-%m-%d %H:%M UTC"),
            escalation.reason
        ));
        self.ignore_response(responder, "the conversation is with a person");
        self.next.menu = None;
        if let Some(department) = self.ticket.department.take() {
            self.notes.push(format!(
                "department {department} not applied: the conversation is with a person"
            ));
        }
        if let Some(assignee) = self.ticket.assignee.take() {
            self.notes.push(format!(
                "assignee {assignee} not applied: the conversation is with a person"
            ));
        }
    }

    /// The away message, when closed and due.
    fn away_message(&mut self, open: Option<bool>) {
        let (Some(false), Some(away)) = (open, &self.routing.away) else {
            return;
        };
        if let Some(at) = self.next.agent_replied_at {
            if self.now - at < away.quiet_after_agent {
                self.notes.push(format!(
                    "away message not sent: an agent replied at {} (quiet for {} min after an agent)",
                    at.format("%Y-%m-%d %H:%M UTC"),
                    away.quiet_after_agent.num_minutes()
                ));
                return;
            }
        }
        if let Some(at) = self.next.away_sent_at {
            if self.now - at < away.every {
                self.notes.push(format!(
                    "away message not sent: already sent at {} (at most once every {} h)",
                    at.format("%Y-%m-%d %H:%M UTC"),
                    away.every.num_hours()
                ));
                return;
            }
        }
        self.replies.push(BotReply::Text {
            body: away.text.render(&self.ctx),
        });
        self.next.away_sent_at = Some(self.now);
        self.notes
            .push("away message sent: outside business hours".to_owned());
    }

    /// Picks and applies the bot's response.
    fn respond(
        &mut self,
        reply_id: Option<&str>,
        folded: &str,
        words: &[&str],
        responder: Option<(usize, &Actions)>,
    ) {
        let menu: Option<&'r Menu> = self
            .next
            .menu
            .as_ref()
            .and_then(|p| self.routing.menus.get(&p.menu));
        let menu_is_waiting = |m: &Menu| menu.is_some_and(|w| w.name == m.name);
        // A tap on a menu message answers that menu even when it is no longer waiting (it
        // expired, or the customer scrolled back to an earlier menu).
        let choice = menu
            .and_then(|m| m.choose(reply_id, folded).map(|c| (m, c)))
            .or_else(|| {
                let id = reply_id?;
                self.routing
                    .menus
                    .values()
                    .find_map(|m| m.choose_id(id).map(|c| (m, c)))
            });
        if let Some((menu, choice)) = choice {
            let context = if menu_is_waiting(menu) {
                format!("menu {} is waiting", menu.name)
            } else {
                format!("a tap on an earlier message of menu {}", menu.name)
            };
            self.ignore_response(responder, "the menu choice answers");
            match choice {
                Choice::Option(option, how) => {
                    let mut m = MatchedRule {
                        name: format!("menu:{}:{}", menu.name, option.key),
                        line: option.line,
                        why: vec![format!("{context}; {how}")],
                        applied: Vec::new(),
                        ignored: Vec::new(),
                    };
                    let a = &option.actions;
                    choice_wins(
                        &mut self.ticket.department,
                        a.department.as_ref(),
                        "department",
                        &mut m,
                    );
                    choice_wins(
                        &mut self.ticket.assignee,
                        a.assignee.as_ref(),
                        "assignee",
                        &mut m,
                    );
                    choice_wins(
                        &mut self.ticket.priority,
                        a.priority.as_ref(),
                        "priority",
                        &mut m,
                    );
                    if !a.tags.is_empty() {
                        self.add_tags(&a.tags);
                        m.applied.push(format!("tags {}", a.tags.join(", ")));
                    }
                    m.applied.extend(a.describe_response());
                    self.matched.push(m);
                    self.next.menu = None;
                    self.apply_response(a);
                    if self.next.menu.is_none() && self.next.escalation.is_none() {
                        self.notes.push(format!("menu {} done", menu.name));
                    }
                }
                Choice::Exit(how) => {
                    self.matched.push(MatchedRule {
                        name: format!("menu:{}:{}", menu.name, menu.exit_key),
                        line: menu.exit_line,
                        why: vec![format!("{context}; {how}: its exit to a person")],
                        applied: vec!["handover".to_owned()],
                        ignored: Vec::new(),
                    });
                    self.hand_over(format!(
                        "customer chose {:?} (a person) in menu {}",
                        menu.exit_key, menu.name
                    ));
                }
            }
        } else if let Some(keyword) = self.routing.handover.keyword_in(words) {
            self.ignore_response(responder, "a hand-over keyword wins");
            self.matched.push(MatchedRule {
                name: "handover".to_owned(),
                line: self.routing.handover.line,
                why: vec![format!("keyword {:?}", keyword.source)],
                applied: vec!["handover".to_owned()],
                ignored: Vec::new(),
            });
            let reason = format!("customer asked for a person ({:?})", keyword.source);
            self.hand_over(reason);
        } else if let Some((i, actions)) = responder {
            if let Some(m) = self.matched.get_mut(i) {
                m.applied.extend(actions.describe_response());
            }
            let waiting = self.next.menu.clone();
            self.apply_response(actions);
            if let (Some(before), Some(now)) = (waiting, self.next.menu.as_mut()) {
                if before.entered_at == now.entered_at && before.menu == now.menu {
                    now.last_activity = self.now;
                    self.notes
                        .push(format!("menu {} is still waiting", now.menu));
                }
            }
        } else if let Some(menu) = menu {
            self.invalid_input(menu);
        }
    }

    /// Replies, then a menu or a hand-over.
    fn apply_response(&mut self, actions: &Actions) {
        for name in &actions.replies {
            if let Some(reply) = self.routing.replies.get(name) {
                self.replies.push(reply.render(&self.ctx));
            }
        }
        if let Some(name) = &actions.menu {
            if let Some(menu) = self.routing.menus.get(name) {
                self.replies.push(menu.prompt(&self.ctx, false));
                self.next.menu = Some(MenuPosition {
                    menu: menu.name.clone(),
                    entered_at: self.now,
                    last_activity: self.now,
                    invalid: 0,
                });
                self.notes.push(format!("menu {} shown", menu.name));
            }
        } else if let Some(reason) = &actions.handover {
            self.hand_over(reason.clone());
        }
    }

    /// Input that is none of the waiting menu's options.
    fn invalid_input(&mut self, menu: &'r Menu) {
        let count = self.next.menu.as_ref().map_or(0, |p| p.invalid) + 1;
        let what = match &self.text {
            Some(text) => format!("{text:?}"),
            None => "a message without text".to_owned(),
        };
        let mut m = MatchedRule {
            name: format!("menu:{}:invalid", menu.name),
            line: menu.line,
            why: vec![format!(
                "menu {} is waiting; {what} is none of its options ({count} of {} tries)",
                menu.name, menu.max_invalid
            )],
            applied: Vec::new(),
            ignored: Vec::new(),
        };
        if count >= menu.max_invalid {
            m.applied.push("handover".to_owned());
            self.matched.push(m);
            self.hand_over(format!(
                "no valid choice in menu {} after {count} tries",
                menu.name
            ));
        } else {
            m.applied.push("hint and menu again".to_owned());
            self.matched.push(m);
            if let Some(position) = self.next.menu.as_mut() {
                position.invalid = count;
                position.last_activity = self.now;
            }
            self.replies.push(menu.prompt(&self.ctx, true));
        }
    }

    /// Hands the conversation to a person.
    fn hand_over(&mut self, reason: String) {
        let handover = &self.routing.handover;
        if let Some(text) = &handover.text {
            self.replies.push(BotReply::Text {
                body: text.render(&self.ctx),
            });
        }
        self.add_tags(&handover.tags);
        if self.ticket.priority.is_none() {
            self.ticket.priority = handover.priority;
        }
        self.next.menu = None;
        self.next.escalation = Some(Escalation {
            since: self.now,
            reason: reason.clone(),
        });
        self.ticket.handover = Some(reason);
        self.notes.push(
            "handed over to a person: no bot replies until the ticket is resolved".to_owned(),
        );
    }

    /// Applies the default department to an unassigned conversation, and drops a department
    /// the conversation already has.
    fn settle_department(&mut self) {
        if self.ticket.department.is_none() && self.next.department.is_none() {
            if let Some(default) = &self.routing.default_department {
                self.ticket.department = Some(default.clone());
                self.notes.push(format!(
                    "department {default}: the file's default_department"
                ));
            }
        }
        if let Some(department) = &self.ticket.department {
            if self.next.department.as_ref() == Some(department) {
                self.notes
                    .push(format!("already in department {department}: not moved"));
                self.ticket.department = None;
            } else {
                self.next.department = Some(department.clone());
            }
        }
    }
}
