//! Text folding for matching, keyword patterns, language detection and reply templates with
//! `{placeholders}`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regex::{Regex, RegexBuilder};

use super::hours::BusinessHours;
use crate::sync::consent::normalise;

/// Regex size limit: admins' patterns are small; this keeps a pathological one from loading.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Reply language. Arabic when the customer writes in Arabic script, else English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Ar,
}

impl Lang {
    /// `ar` → Arabic, anything else → English.
    pub(crate) fn of(code: &str) -> Lang {
        if code == "ar" {
            Lang::Ar
        } else {
            Lang::En
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ar => "ar",
        }
    }
}

/// Folds message text for matching: [`normalise`] (upper case, Arabic diacritics and tatweel
/// removed, surrounding punctuation trimmed, white space folded), then [`fold_chars`].
pub(crate) fn fold(text: &str) -> String {
    fold_chars(&normalise(text))
}

/// Character folding without case change or trimming, so it also applies to regex sources:
/// Arabic diacritics removed, أ إ آ ٱ → ا, ة → ه, ى ی → ي, ک → ك, Arabic-Indic and Persian
/// digits → 0-9, Latin letters with accents → base letter.
pub(crate) fn fold_chars(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' | '\u{0300}'..='\u{036F}' => {}
            'أ' | 'إ' | 'آ' | 'ٱ' => out.push('ا'),
            'ة' => out.push('ه'),
            'ى' | 'ی' => out.push('ي'),
            'ک' => out.push('ك'),
            '٠'..='٩' => out.push(digit(u32::from(c) - 0x0660)),
            '۰'..='۹' => out.push(digit(u32::from(c) - 0x06F0)),
            'Æ' => out.push_str("AE"),
            'æ' => out.push_str("ae"),
            'Œ' => out.push_str("OE"),
            'œ' => out.push_str("oe"),
            _ => out.push(latin_base(c)),
        }
    }
    out
}

fn digit(n: u32) -> char {
    char::from_digit(n, 10).unwrap_or('0')
}

/// The base letter of a Latin letter with a diacritic (Latin-1 and Latin Extended-A).
fn latin_base(c: char) -> char {
    match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => 'A',
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => 'C',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'Ď' | 'Đ' => 'D',
        'ď' | 'đ' => 'd',
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => 'E',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => 'G',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => 'I',
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'Ł' | 'Ľ' | 'Ĺ' | 'Ļ' => 'L',
        'ł' | 'ľ' | 'ĺ' | 'ļ' => 'l',
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => 'N',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => 'O',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'Ŕ' | 'Ŗ' | 'Ř' => 'R',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'Ś' | 'Ŝ' | 'Ş' | 'Š' => 'S',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'Ţ' | 'Ť' => 'T',
        'ţ' | 'ť' => 't',
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => 'U',
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'Ý' | 'Ÿ' | 'Ŷ' => 'Y',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'Ź' | 'Ż' | 'Ž' => 'Z',
        'ź' | 'ż' | 'ž' => 'z',
        other => other,
    }
}

fn is_arabic_letter(c: char) -> bool {
    matches!(c,
        '\u{0621}'..='\u{064A}'
        | '\u{0671}'..='\u{06D3}'
        | '\u{06FA}'..='\u{06FF}'
        | '\u{0750}'..='\u{077F}'
        | '\u{FB50}'..='\u{FDFF}'
        | '\u{FE70}'..='\u{FEFC}')
}

fn is_latin_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || (('\u{00C0}'..='\u{024F}').contains(&c) && c.is_alphabetic())
}

/// `ar` when the text is mostly Arabic-script letters, `en` when mostly Latin letters, `None`
/// when it has neither (digits, emoji, other scripts).
pub(crate) fn detect_language(text: &str) -> Option<&'static str> {
    let (mut arabic, mut latin) = (0usize, 0usize);
    for c in text.chars() {
        if is_arabic_letter(c) {
            arabic += 1;
        } else if is_latin_letter(c) {
            latin += 1;
        }
    }
    match (arabic, latin) {
        (0, 0) => None,
        (a, l) if a >= l => Some("ar"),
        _ => Some("en"),
    }
}

/// The primary subtag of a language tag, lowercased: `ar_OM` → `ar`.
pub(crate) fn primary_subtag(tag: &str) -> Option<String> {
    let primary = tag.split(['_', '-']).next()?.trim().to_ascii_lowercase();
    (!primary.is_empty() && primary.chars().all(|c| c.is_ascii_alphabetic())).then_some(primary)
}

/// The words of folded text: runs of letters and digits.
pub(crate) fn words(folded: &str) -> Vec<&str> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

/// One word of a keyword; `*` at either end lets the message's word go on that way.
#[derive(Debug, Clone)]
struct WordPattern {
    core: String,
    open_start: bool,
    open_end: bool,
}

impl WordPattern {
    fn matches(&self, word: &str) -> bool {
        match (self.open_start, self.open_end) {
            (false, false) => word == self.core,
            (false, true) => word.starts_with(self.core.as_str()),
            (true, false) => word.ends_with(self.core.as_str()),
            (true, true) => word.contains(self.core.as_str()),
        }
    }
}

/// A keyword as written by the admin, compiled to a sequence of word patterns on folded text.
#[derive(Debug, Clone)]
pub(crate) struct Keyword {
    /// As written in the file.
    pub(crate) source: String,
    words: Vec<WordPattern>,
}

impl Keyword {
    /// Compiles a keyword: its words must appear in this order as whole words, with only
    /// spaces or punctuation between them; `*` at the start or end of a word lets it continue
    /// (`موقع*` matches موقعكم, `*دوام*` matches الدوام).
    pub(crate) fn compile(source: &str) -> Result<Keyword, String> {
        let mut patterns = Vec::new();
        for word in source.split_whitespace() {
            let open_start = word.starts_with('*');
            let open_end = word.len() > 1 && word.ends_with('*');
            let core = fold(word.trim_matches('*'));
            let parts = words(&core);
            if parts.is_empty() {
                return Err(format!(
                    "keyword {source:?} has a word with no letters or digits"
                ));
            }
            let last = parts.len() - 1;
            for (i, part) in parts.iter().enumerate() {
                patterns.push(WordPattern {
                    core: (*part).to_owned(),
                    open_start: open_start && i == 0,
                    open_end: open_end && i == last,
                });
            }
        }
        if patterns.is_empty() {
            return Err("a keyword must not be empty".to_owned());
        }
        Ok(Keyword {
            source: source.to_owned(),
            words: patterns,
        })
    }

    /// Whether the keyword occurs in a message's [`words`].
    pub(crate) fn is_in(&self, words: &[&str]) -> bool {
        words.windows(self.words.len()).any(|window| {
            window
                .iter()
                .zip(&self.words)
                .all(|(word, pattern)| pattern.matches(word))
        })
    }
}

/// Compiles an admin's regex for folded text: its letters are folded the same way, and it is
/// case-insensitive.
pub(crate) fn compile_regex(source: &str) -> Result<Regex, String> {
    RegexBuilder::new(&fold_chars(source))
        .case_insensitive(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let last = text.lines().last().unwrap_or("").trim();
            format!("invalid regex: {}", last.trim_start_matches("error: "))
        })
}

/// One piece of a reply template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// `{name}`: a `[values]` entry.
    Value(String),
    /// `{hours}`: the weekly opening hours.
    Hours,
    /// `{next_open}`: when the business opens next.
    NextOpen,
}

/// Reply text with `{placeholders}`, checked at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template(Vec<Piece>);

/// Placeholder names built into every file.
pub(crate) const BUILT_IN_PLACEHOLDERS: &[&str] = &["hours", "next_open"];

/// Upper bound of a rendered `{next_open}`, for length checks at load time.
const NEXT_OPEN_MAX_CHARS: usize = 40;

impl Template {
    /// Parses `text`; `{{` and `}}` are literal braces. `values` are the `[values]` names;
    /// `has_hours` tells whether `{hours}` / `{next_open}` can be filled.
    pub(crate) fn parse(
        text: &str,
        values: &BTreeMap<String, Value>,
        has_hours: bool,
    ) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for n in chars.by_ref() {
                        if n == '}' {
                            closed = true;
                            break;
                        }
                        name.push(n);
                    }
                    if !closed {
                        return Err(
                            "unclosed `{`: write {name} for a value, {{ for a literal brace"
                                .to_owned(),
                        );
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    let piece = match name.as_str() {
                        "hours" | "next_open" if !has_hours => {
                            return Err(format!("{{{name}}} needs an [hours] section"));
                        }
                        "hours" => Piece::Hours,
                        "next_open" => Piece::NextOpen,
                        other if values.contains_key(other) => Piece::Value(other.to_owned()),
                        other => {
                            let mut known: Vec<&str> = BUILT_IN_PLACEHOLDERS.to_vec();
                            known.extend(values.keys().map(String::as_str));
                            return Err(format!(
                                "unknown placeholder {{{other}}}; known: {}",
                                known.join(", ")
                            ));
                        }
                    };
                    pieces.push(piece);
                }
                '}' => {
                    return Err("stray `}`: write }} for a literal brace".to_owned());
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template(pieces))
    }

    /// The text with every placeholder filled.
    pub(crate) fn render(&self, ctx: &RenderCtx<'_>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Value(name) => {
                    if let Some(value) = ctx.values.get(name) {
                        out.push_str(value.get(ctx.lang));
                    }
                }
                Piece::Hours => {
                    if let Some(hours) = ctx.hours {
                        out.push_str(&hours.describe_week(ctx.lang));
                    }
                }
                Piece::NextOpen => {
                    if let Some(hours) = ctx.hours {
                        out.push_str(&hours.describe_next_open(ctx.now, ctx.lang));
                    }
                }
            }
        }
        out
    }

    /// Upper bound of the rendered length in characters (`{next_open}` counted generously).
    pub(crate) fn max_chars(&self, ctx: &RenderCtx<'_>) -> usize {
        let next_opens = self
            .0
            .iter()
            .filter(|p| matches!(p, Piece::NextOpen))
            .count();
        let without: Template = Template(
            self.0
                .iter()
                .filter(|p| !matches!(p, Piece::NextOpen))
                .cloned()
                .collect(),
        );
        without.render(ctx).chars().count() + next_opens * NEXT_OPEN_MAX_CHARS
    }
}

/// A `[values]` entry: English text and an optional Arabic one (`name_ar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) en: String,
    pub(crate) ar: Option<String>,
}

impl Value {
    pub(crate) fn get(&self, lang: Lang) -> &str {
        match (lang, &self.ar) {
            (Lang::Ar, Some(ar)) => ar,
            _ => &self.en,
        }
    }
}

/// Everything a template needs to render.
pub(crate) struct RenderCtx<'a> {
    pub(crate) lang: Lang,
    pub(crate) values: &'a BTreeMap<String, Value>,
    pub(crate) hours: Option<&'a BusinessHours>,
    pub(crate) now: DateTime<Utc>,
}

/// Text in English with an optional Arabic version (`text` + `text_ar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalText {
    pub(crate) en: Template,
    pub(crate) ar: Option<Template>,
}

impl LocalText {
    pub(crate) fn render(&self, ctx: &RenderCtx<'_>) -> String {
        match (ctx.lang, &self.ar) {
            (Lang::Ar, Some(ar)) => ar.render(ctx),
            _ => self.en.render(ctx),
        }
    }

    /// The longest rendering over both languages.
    pub(crate) fn max_chars(&self, ctx: &RenderCtx<'_>) -> usize {
        let en = self.en.max_chars(&RenderCtx {
            lang: Lang::En,
            ..*ctx
        });
        let ar = self.ar.as_ref().map_or(0, |ar| {
            ar.max_chars(&RenderCtx {
                lang: Lang::Ar,
                ..*ctx
            })
        });
        en.max(ar)
    }
}

/// A short plain label in English with an optional Arabic version (button and row titles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalStr {
    pub(crate) en: String,
    pub(crate) ar: Option<String>,
}

impl LocalStr {
    pub(crate) fn new(en: &str, ar: Option<&str>) -> LocalStr {
        LocalStr {
            en: en.to_owned(),
            ar: ar.map(str::to_owned),
        }
    }

    pub(crate) fn get(&self, lang: Lang) -> &str {
        match (lang, &self.ar) {
            (Lang::Ar, Some(ar)) => ar,
            _ => &self.en,
        }
    }

    /// Both versions, for matching typed labels and length checks.
    pub(crate) fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.en.as_str()).chain(self.ar.as_deref())
    }
}
