//! Business hours: a time zone, weekly opening ranges (several per day, possibly past
//! midnight) and holidays. Pure: the time is always passed in.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::text::Lang;

/// Minutes in a day; an end of `24:00` is this.
const DAY_MINUTES: u32 = 24 * 60;

/// How far ahead `next_open` looks (long holidays included).
const LOOKAHEAD_DAYS: u64 = 400;

/// Week days in file order, Sunday first (`num_days_from_sunday`).
pub(crate) const DAY_KEYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

const DAY_NAMES_EN: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

const DAY_NAMES_AR: [&str; 7] = [
    "الأحد",
    "الاثنين",
    "الثلاثاء",
    "الأربعاء",
    "الخميس",
    "الجمعة",
    "السبت",
];

/// One opening range in local minutes since midnight. `end <= start` means it runs past
/// midnight into the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn wraps(self) -> bool {
        self.end <= self.start
    }

    /// Parses `08:00-17:00` (also with `–`); `24:00` is accepted as an end.
    pub(crate) fn parse(text: &str) -> Result<Span, String> {
        let hint =
            "write a range as \"08:00-17:00\" (24-hour clock; \"22:00-02:00\" runs past midnight)";
        let (a, b) = text
            .split_once(['-', '–'])
            .ok_or_else(|| format!("{text:?}: {hint}"))?;
        let start = parse_clock(a.trim(), false).ok_or_else(|| format!("{text:?}: {hint}"))?;
        let mut end = parse_clock(b.trim(), true).ok_or_else(|| format!("{text:?}: {hint}"))?;
        if end == 0 {
            end = DAY_MINUTES;
        }
        if start == end {
            return Err(format!("{text:?}: a range must not start where it ends"));
        }
        Ok(Span { start, end })
    }

    fn describe(self) -> String {
        format!("{}–{}", clock(self.start), clock(self.end))
    }
}

/// `HH:MM` → minutes; `24:00` only as an end.
fn parse_clock(text: &str, is_end: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    match (h, m) {
        (24, 0) if is_end => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Parses a holiday: `2026-03-20` or a range `2026-03-19..2026-03-22` (both days included).
pub(crate) fn parse_holiday(text: &str) -> Result<(NaiveDate, NaiveDate), String> {
    let date = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    let parsed = match text.split_once("..") {
        Some((a, b)) => date(a).zip(date(b)),
        None => date(text).map(|d| (d, d)),
    };
    match parsed {
        Some((first, last)) if first <= last => Ok((first, last)),
        Some(_) => Err(format!("{text:?}: the range ends before it starts")),
        None => Err(format!(
            "{text:?}: write a date as \"2026-03-20\" or a range as \"2026-03-19..2026-03-22\""
        )),
    }
}

/// Opening hours of the business.
#[derive(Debug, Clone)]
pub(crate) struct BusinessHours {
    tz: Tz,
    /// Ranges per week day, Sunday first, sorted by start.
    week: [Vec<Span>; 7],
    /// Closed date ranges, both ends included.
    holidays: Vec<(NaiveDate, NaiveDate)>,
}

impl BusinessHours {
    pub(crate) fn new(
        tz: Tz,
        mut week: [Vec<Span>; 7],
        holidays: Vec<(NaiveDate, NaiveDate)>,
    ) -> Self {
        for day in &mut week {
            day.sort_by_key(|s| s.start);
        }
        BusinessHours { tz, week, holidays }
    }

    /// The time zone's name.
    pub(crate) fn tz_name(&self) -> &'static str {
        self.tz.name()
    }

    /// `now` in the business's time zone.
    pub(crate) fn local(&self, now: DateTime<Utc>) -> DateTime<Tz> {
        now.with_timezone(&self.tz)
    }

    fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays
            .iter()
            .any(|(first, last)| *first <= date && date <= *last)
    }

    fn spans(&self, date: NaiveDate) -> &[Span] {
        let index = usize::try_from(date.weekday().num_days_from_sunday()).unwrap_or(0);
        self.week.get(index).map_or(&[], Vec::as_slice)
    }

    /// Whether the business is open at `now`. A holiday closes its whole local date, including
    /// the part of the previous evening's range that runs past midnight.
    pub(crate) fn is_open(&self, now: DateTime<Utc>) -> bool {
        let local = self.local(now);
        let date = local.date_naive();
        let minute = local.hour() * 60 + local.minute();
        if self.is_holiday(date) {
            return false;
        }
        let today = self.spans(date).iter().any(|s| {
            if s.wraps() {
                minute >= s.start
            } else {
                s.start <= minute && minute < s.end
            }
        });
        if today {
            return true;
        }
        let Some(yesterday) = date.pred_opt() else {
            return false;
        };
        !self.is_holiday(yesterday)
            && self
                .spans(yesterday)
                .iter()
                .any(|s| s.wraps() && minute < s.end)
    }

    /// When the business next opens: `now` if open, else the start of the next range on a day
    /// that is not a holiday. `None` when nothing opens within about a year.
    pub(crate) fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Tz>> {
        if self.is_open(now) {
            return Some(self.local(now));
        }
        let local = self.local(now);
        let today = local.date_naive();
        for offset in 0..=LOOKAHEAD_DAYS {
            let date = today.checked_add_days(Days::new(offset))?;
            if self.is_holiday(date) {
                continue;
            }
            for span in self.spans(date) {
                let time = NaiveTime::from_hms_opt(span.start / 60, span.start % 60, 0)?;
                let naive = date.and_time(time);
                let Some(at) = self.tz.from_local_datetime(&naive).earliest() else {
                    continue; // skipped by a daylight-saving change
                };
                if at > local {
                    return Some(at);
                }
            }
        }
        None
    }

    /// `today 08:00`, `tomorrow 08:00`, `Sunday 08:00`, `Sunday 2026-04-05 08:00`; `now` when
    /// open. In Arabic with Arabic words.
    pub(crate) fn describe_next_open(&self, now: DateTime<Utc>, lang: Lang) -> String {
        let local = self.local(now);
        let Some(at) = self.next_open(now) else {
            return match lang {
                Lang::En => "soon".to_owned(),
                Lang::Ar => "قريبًا".to_owned(),
            };
        };
        if self.is_open(now) {
            return match lang {
                Lang::En => "now".to_owned(),
                Lang::Ar => "الآن".to_owned(),
            };
        }
        let days = (at.date_naive() - local.date_naive()).num_days();
        let time = at.format("%H:%M");
        let day = usize::try_from(at.weekday().num_days_from_sunday()).unwrap_or(0);
        match (lang, days) {
            (Lang::En, 0) => format!("today {time}"),
            (Lang::Ar, 0) => format!("اليوم {time}"),
            (Lang::En, 1) => format!("tomorrow {time}"),
            (Lang::Ar, 1) => format!("غدًا {time}"),
            (Lang::En, 2..=6) => format!("{} {time}", DAY_NAMES_EN[day]),
            (Lang::Ar, 2..=6) => format!("{} {time}", DAY_NAMES_AR[day]),
            (Lang::En, _) => format!("{} {} {time}", DAY_NAMES_EN[day], at.format("%Y-%m-%d")),
            (Lang::Ar, _) => format!("{} {} {time}", DAY_NAMES_AR[day], at.format("%Y-%m-%d")),
        }
    }

    /// The weekly hours, one line per run of days with the same hours, starting with the first
    /// open day after a change (`Sunday–Thursday: 08:00–17:00` / `Friday, Saturday: closed`).
    pub(crate) fn describe_week(&self, lang: Lang) -> String {
        let same = |a: usize, b: usize| self.week[a % 7] == self.week[b % 7];
        if (1..7).all(|d| same(0, d)) {
            let hours = self.describe_day(0, lang);
            return match lang {
                Lang::En => format!("Every day: {hours}"),
                Lang::Ar => format!("يوميًا: {hours}"),
            };
        }
        let start = (0..7)
            .find(|&d| !self.week[d].is_empty() && !same(d, d + 6))
            .or_else(|| (0..7).find(|&d| !same(d, d + 6)))
            .unwrap_or(0);
        let names = match lang {
            Lang::En => DAY_NAMES_EN,
            Lang::Ar => DAY_NAMES_AR,
        };
        let mut lines = Vec::new();
        let mut first = start;
        for offset in 1..=7 {
            let day = start + offset;
            if offset < 7 && same(day, first) {
                continue;
            }
            let last = day - 1;
            let days = match last - first {
                0 => names[first % 7].to_owned(),
                1 => format!(
                    "{}{}{}",
                    names[first % 7],
                    if lang == Lang::Ar { "، " } else { ", " },
                    names[last % 7]
                ),
                _ => format!("{}–{}", names[first % 7], names[last % 7]),
            };
            lines.push(format!("{days}: {}", self.describe_day(first % 7, lang)));
            first = day;
        }
        lines.join("\n")
    }

    fn describe_day(&self, day: usize, lang: Lang) -> String {
        let spans = &self.week[day % 7];
        if spans.is_empty() {
            return match lang {
                Lang::En => "closed".to_owned(),
                Lang::Ar => "مغلق".to_owned(),
            };
        }
        let sep = if lang == Lang::Ar { "، " } else { ", " };
        spans
            .iter()
            .map(|s| s.describe())
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// Whether any day has a range.
    pub(crate) fn has_any_hours(&self) -> bool {
        self.week.iter().any(|d| !d.is_empty())
    }
}
