//! The `wabridge route test` report: `Display` for [`Decision`].

use std::fmt;

use super::{BotReply, Decision};

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        let facts = &self.facts;
        writeln!(f, "Message")?;
        match &facts.text {
            Some(text) => writeln!(f, "  {} {text:?}", facts.kind)?,
            None => writeln!(f, "  {} (no text)", facts.kind)?,
        }
        if let Some(id) = &facts.reply_id {
            writeln!(f, "  reply id {id:?}")?;
        }
        writeln!(
            f,
            "  language {} (from {}), calling code {}, {}",
            facts.language,
            facts.language_from,
            facts.calling_code.as_deref().unwrap_or("unknown"),
            if facts.first_message {
                "first message of the conversation"
            } else {
                "not the first message"
            }
        )?;
        match (&facts.local_time, facts.open) {
            (Some(time), Some(open)) => {
                writeln!(f, "  {time}: {}", if open { "open" } else { "closed" })?
            }
            _ => writeln!(f, "  no [hours]: always open")?,
        }

        writeln!(f, "\nMatched")?;
        if self.matched.is_empty() {
            writeln!(f, "  nothing")?;
        }
        for m in &self.matched {
            writeln!(f, "  {file}:{} {}: {}", m.line, m.name, m.why.join(", "))?;
            if !m.applied.is_empty() {
                writeln!(f, "      applied: {}", m.applied.join("; "))?;
            }
            for ignored in &m.ignored {
                writeln!(f, "      not applied: {ignored}")?;
            }
        }

        writeln!(f, "\nTicket")?;
        let t = &self.ticket;
        if t == &super::TicketActions::default() {
            writeln!(f, "  no change")?;
        }
        if let Some(d) = &t.department {
            writeln!(f, "  department: {d}")?;
        }
        if let Some(a) = &t.assignee {
            writeln!(f, "  assignee: {a}")?;
        }
        if let Some(p) = t.priority {
            writeln!(f, "  priority: {p}")?;
        }
        if !t.tags.is_empty() {
            writeln!(f, "  tags: {}", t.tags.join(", "))?;
        }
        if let Some(reason) = &t.handover {
            writeln!(f, "  hand over to a person: {reason}")?;
        }

        writeln!(f, "\nReplies")?;
        if self.replies.is_empty() {
            writeln!(f, "  none")?;
        }
        for (i, reply) in self.replies.iter().enumerate() {
            write_reply(f, i + 1, reply)?;
        }

        writeln!(f, "\nState after")?;
        let s = &self.state;
        match &s.menu {
            Some(p) => writeln!(
                f,
                "  menu {} waiting (invalid inputs: {})",
                p.menu, p.invalid
            )?,
            None => writeln!(f, "  no menu waiting")?,
        }
        match &s.escalation {
            Some(e) => writeln!(
                f,
                "  with a person since {} ({}): the bot stays silent",
                e.since.format("%Y-%m-%d %H:%M UTC"),
                e.reason
            )?,
            None => writeln!(f, "  bot active")?,
        }
        if let Some(d) = &s.department {
            writeln!(f, "  department {d}")?;
        }
        if let Some(at) = s.away_sent_at {
            writeln!(
                f,
                "  away message last sent {}",
                at.format("%Y-%m-%d %H:%M UTC")
            )?;
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nNotes")?;
            for note in &self.notes {
                writeln!(f, "  - {note}")?;
            }
        }
        Ok(())
    }
}

fn write_reply(f: &mut fmt::Formatter<'_>, n: usize, reply: &BotReply) -> fmt::Result {
    let indent = |text: &str| text.replace('\n', "\n     ");
    match reply {
        BotReply::Text { body } => writeln!(f, "  {n}. text:\n     {}", indent(body)),
        BotReply::Buttons { body, buttons } => {
            writeln!(f, "  {n}. buttons:\n     {}", indent(body))?;
            for (id, title) in buttons {
                writeln!(f, "     [{title}] (id {id})")?;
            }
            Ok(())
        }
        BotReply::List {
            body,
            button,
            sections,
        } => {
            writeln!(f, "  {n}. list:\n     {}", indent(body))?;
            writeln!(f, "     [{button}]")?;
            for (title, rows) in sections {
                if !title.is_empty() {
                    writeln!(f, "     {title}")?;
                }
                for (id, row, description) in rows {
                    match description {
                        Some(d) => writeln!(f, "     - {row}: {d} (id {id})")?,
                        None => writeln!(f, "     - {row} (id {id})")?,
                    }
                }
            }
            Ok(())
        }
    }
}
