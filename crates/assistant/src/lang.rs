//! Languages. Each language is one data file, `lang/<code>.json`, compiled into the binary with
//! `include_str!` and registered by one line in [`LANGUAGE_FILES`]: the words that identify the
//! language, the cue phrases that score each intent, number, date and slot words, and every reply
//! text. Nothing in the code names an English or German word, so a third language is a new file
//! and one line. The files are parsed once, on first use, and checked: a malformed file is a bug
//! in the program (like a broken invariant) and stops it; `check_languages` lets a test or the
//! server's startup find that out first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::text::{collapse, words};
use crate::understand::Intent;

/// The languages: code and data file. A new language is a new file and one line here.
const LANGUAGE_FILES: &[(&str, &str)] = &[
    ("en", include_str!("../lang/en.json")),
    ("de", include_str!("../lang/de.json")),
];

/// Words a gap (`*`) in a cue pattern may skip.
pub(crate) const GAP_TOKENS_MAX: usize = 3;

/// Why a language file was refused.
#[derive(Debug, thiserror::Error)]
pub enum LangError {
    /// The file is not valid JSON of the expected shape.
    #[error("language file {code}: {source}")]
    Json {
        /// The language's code.
        code: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// The file's `code` differs from the code it is registered under.
    #[error("language file {code}: its code field says {found:?}")]
    CodeMismatch {
        /// The code it is registered under.
        code: &'static str,
        /// The code the file names.
        found: String,
    },
    /// A list has the wrong length (weekdays, months).
    #[error("language file {code}: {field} needs {expected} entries, has {found}")]
    Length {
        /// The language's code.
        code: &'static str,
        /// The field.
        field: &'static str,
        /// Entries it needs.
        expected: usize,
        /// Entries it has.
        found: usize,
    },
    /// A cue pattern or phrase cannot be used.
    #[error("language file {code}: pattern {pattern:?}: {reason}")]
    Pattern {
        /// The language's code.
        code: &'static str,
        /// The pattern.
        pattern: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A language the assistant speaks: an index into the registry (`LANGUAGE_FILES` in
/// `lang.rs`). Serialized as its code ("en").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lang(u8);

impl Lang {
    /// English (the first registered language, and the default).
    pub const EN: Lang = Lang(0);
    /// German.
    pub const DE: Lang = Lang(1);

    /// Returns every registered language, in registration order.
    pub fn all() -> impl Iterator<Item = Lang> {
        // The registry is a short constant list, far below u8::MAX entries.
        (0..LANGUAGE_FILES.len()).map(|i| Lang(i as u8))
    }

    /// Returns the language's code ("en", "de").
    pub fn code(self) -> &'static str {
        LANGUAGE_FILES[usize::from(self.0)].0
    }

    /// Returns the language with this code, if it is registered.
    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::all().find(|lang| lang.code() == code)
    }

    /// Returns the language's name in itself ("English", "Deutsch").
    pub fn name(self) -> &'static str {
        &self.data().name
    }

    pub(crate) fn data(self) -> &'static LangData {
        &languages()[usize::from(self.0)]
    }
}

impl Default for Lang {
    fn default() -> Self {
        Lang::EN
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Lang {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Lang {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Lang::from_code(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown language {code:?}")))
    }
}

/// Checks that every registered language file loads. The first use of any language does the
/// same and stops the program on an error; call this at startup to fail early with a message.
pub fn check_languages() -> Result<(), LangError> {
    for (code, json) in LANGUAGE_FILES {
        LangData::load(code, json)?;
    }
    Ok(())
}

fn languages() -> &'static [LangData] {
    static LANGUAGES: OnceLock<Vec<LangData>> = OnceLock::new();
    LANGUAGES.get_or_init(|| {
        LANGUAGE_FILES
            .iter()
            .map(|(code, json)| match LangData::load(code, json) {
                Ok(data) => data,
                // The files are compiled in; a broken one is a bug, caught by the tests.
                Err(error) => panic!("{error}"),
            })
            .collect()
    })
}

/// Iterates over the data of every language (for the catalog index and city aliases).
pub(crate) fn all_data() -> impl Iterator<Item = &'static LangData> {
    languages().iter()
}

/// The relative date phrases of the README's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relative {
    Today,
    Tomorrow,
    DayAfterTomorrow,
    ThisWeekend,
    NextWeekend,
    ThisWeek,
    NextWeek,
    ThisMonth,
    NextMonth,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DateWordsFile {
    today: Vec<String>,
    tomorrow: Vec<String>,
    day_after_tomorrow: Vec<String>,
    this_weekend: Vec<String>,
    next_weekend: Vec<String>,
    this_week: Vec<String>,
    next_week: Vec<String>,
    this_month: Vec<String>,
    next_month: Vec<String>,
}

/// How dates, times and money are written.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Format {
    /// A date and time, with `{weekday} {day} {month} {year} {hour} {minute}`.
    pub date_time: String,
    /// A clock time, with `{hour} {minute}`.
    pub time: String,
    /// Short weekday names, Monday first.
    pub weekdays: Vec<String>,
    /// Short month names, January first.
    pub months: Vec<String>,
    /// The decimal separator of money.
    pub decimal: String,
    /// The thousands separator of money.
    pub group: String,
    /// An amount, with `{amount} {currency}`.
    pub money: String,
}

/// Every reply text. Placeholders are `{name}`; each text's placeholders are listed in the
/// README's data format section.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Replies {
    pub greeting: String,
    pub help: String,
    pub help_examples: Vec<String>,
    pub unknown: String,
    pub not_understood: String,
    pub ask_event: String,
    pub ask_event_among: String,
    pub ask_quantity: String,
    pub ask_ticket: String,
    pub no_events_match: String,
    pub login: String,
    pub confirm_pay: String,
    pub confirm_refund: String,
    pub confirm_refund_event: String,
    pub cancelled: String,
    pub nothing_to_confirm: String,
    pub started_over: String,
    pub past_event: String,
    pub no_hold: String,
    pub hold_expired: String,
    pub too_many: String,
    pub no_seat_numbers: String,
    pub event_line: String,
    pub events_found: String,
    pub events_none: String,
    pub event_offer: String,
    pub event_details: String,
    pub availability_left: String,
    pub availability_free: String,
    pub availability_taken: String,
    pub held: String,
    pub held_seats: String,
    pub not_enough_left: String,
    pub seats_taken: String,
    pub sold_out: String,
    pub paid: String,
    pub tickets_list: String,
    pub tickets_none: String,
    pub ticket_line: String,
    pub ticket_seat: String,
    pub orders_list: String,
    pub orders_none: String,
    pub order_line: String,
    pub refunded: String,
    pub refunded_one: String,
    pub refunded_other: String,
    /// The event allows no refund of ticket `{ticket}` (any more).
    pub refund_not_refundable: String,
    /// Ticket `{ticket}` was refunded already.
    pub refund_already_refunded: String,
    /// Ticket `{ticket}` was used at the door already.
    pub refund_checked_in: String,
    pub not_your_ticket: String,
    pub no_such_ticket: String,
    pub hold_cancelled: String,
    pub payment_declined: String,
    pub failed: String,
    pub more: String,
    pub tickets_one: String,
    pub tickets_other: String,
    pub status_valid: String,
    pub status_refunded: String,
    pub status_checked_in: String,
    pub list_and: String,
    pub choice_yes: String,
    pub choice_no: String,
    pub send_yes: String,
    pub send_no: String,
    pub choice_pay: String,
    pub send_pay: String,
    pub choice_cancel_hold: String,
    pub send_cancel_hold: String,
    pub choice_my_tickets: String,
    pub send_my_tickets: String,
    pub choice_book: String,
    pub send_book: String,
    pub choice_start_over: String,
    pub send_start_over: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LangFile {
    code: String,
    name: String,
    letters: String,
    stopwords: Vec<String>,
    words: Vec<String>,
    rewrites: BTreeMap<String, String>,
    catalog_words: BTreeMap<String, String>,
    city_aliases: BTreeMap<String, String>,
    generic_event_words: Vec<String>,
    numbers: BTreeMap<String, u32>,
    ordinals: BTreeMap<String, u32>,
    quantity_words: BTreeMap<String, u32>,
    one_words: Vec<String>,
    quantity_nouns: Vec<String>,
    seat_nouns: Vec<String>,
    ticket_nouns: Vec<String>,
    row_nouns: Vec<String>,
    number_markers: Vec<String>,
    quantity_before: Vec<String>,
    quantity_after: Vec<String>,
    best_available: Vec<String>,
    together: Vec<String>,
    list_connectors: Vec<String>,
    range_connectors: Vec<String>,
    range_openers: Vec<String>,
    date_fillers: Vec<String>,
    date_blockers: Vec<String>,
    time_words: Vec<String>,
    dates: DateWordsFile,
    weekdays: Vec<Vec<String>>,
    months: Vec<Vec<String>>,
    months_need_context: Vec<String>,
    month_context: Vec<String>,
    intents: BTreeMap<Intent, BTreeMap<String, f32>>,
    format: Format,
    replies: Replies,
}

/// One element of a cue pattern.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum PatternToken {
    /// This word.
    Word(String),
    /// Zero to [`GAP_TOKENS_MAX`] tokens.
    Gap,
}

/// A cue pattern: every part must occur (in any order), each part as a contiguous sequence with
/// optional gaps. "cancel * ticket" is one part; "reservation & cancel" is two.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pattern {
    pub parts: Vec<Vec<PatternToken>>,
}

/// One cue: a pattern that adds `weight` to `intent`'s score when it matches.
#[derive(Clone, Debug)]
pub(crate) struct Cue {
    pub intent: Intent,
    pub pattern: Pattern,
    pub weight: f32,
}

/// A language's data, compiled for lookups.
pub(crate) struct LangData {
    pub name: String,
    /// Letters that hint at this language.
    pub letters: Vec<char>,
    /// Every word the data mentions (detection, and words never read as catalog typos).
    pub lexicon: BTreeSet<String>,
    /// Lexicon words by their digraph-collapsed form.
    pub collapsed: BTreeMap<String, String>,
    /// Lexicon words long enough for spelling correction, by first letter.
    pub fuzzy: BTreeMap<char, Vec<String>>,
    /// Function words (never part of an event reference).
    pub stopwords: BTreeSet<String>,
    pub rewrites: BTreeMap<String, Vec<String>>,
    pub catalog_words: BTreeMap<String, Vec<String>>,
    pub city_aliases: BTreeMap<String, String>,
    pub generic_event_words: BTreeSet<String>,
    /// Number phrases, longest first.
    pub numbers: Vec<(Vec<String>, u32)>,
    /// Ordinal words ("second", "zweite").
    pub ordinals: BTreeMap<String, u32>,
    /// Words that always state a quantity ("zweimal").
    pub quantity_words: BTreeMap<String, u32>,
    pub one_words: BTreeSet<String>,
    pub quantity_nouns: BTreeSet<String>,
    pub seat_nouns: BTreeSet<String>,
    pub ticket_nouns: BTreeSet<String>,
    pub row_nouns: BTreeSet<String>,
    pub number_markers: BTreeSet<String>,
    pub quantity_before: BTreeSet<String>,
    pub quantity_after: BTreeSet<String>,
    pub best_available: Vec<Vec<String>>,
    pub together: Vec<Vec<String>>,
    pub list_connectors: BTreeSet<String>,
    pub range_connectors: BTreeSet<String>,
    pub range_openers: BTreeSet<String>,
    pub date_fillers: BTreeSet<String>,
    pub date_blockers: Vec<Vec<String>>,
    pub time_words: BTreeSet<String>,
    /// Relative date phrases, longest first.
    pub relative: Vec<(Vec<String>, Relative)>,
    /// Weekday words: 0 = Monday.
    pub weekdays: BTreeMap<String, u8>,
    /// Month words: 1 = January.
    pub months: BTreeMap<String, u8>,
    pub months_need_context: BTreeSet<String>,
    pub month_context: BTreeSet<String>,
    pub cues: Vec<Cue>,
    pub format: Format,
    pub replies: Replies,
}

/// Normalizes a list of single words.
fn word_set(list: &[String]) -> BTreeSet<String> {
    list.iter().flat_map(|w| words(w)).collect()
}

fn phrases(list: &[String]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = list
        .iter()
        .map(|p| words(p))
        .filter(|p| !p.is_empty())
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.len()));
    out
}

fn parse_pattern(code: &'static str, text: &str) -> Result<Pattern, LangError> {
    let refuse = |reason| LangError::Pattern {
        code,
        pattern: text.to_string(),
        reason,
    };
    let mut parts = Vec::new();
    for part in text.split('&') {
        let mut tokens = Vec::new();
        for piece in part.split_whitespace() {
            if piece == "*" {
                tokens.push(PatternToken::Gap);
            } else if piece.starts_with('@') {
                // A placeholder for slot tokens: @event, @city, @venue, @date, @num, @time.
                tokens.push(PatternToken::Word(piece.to_string()));
            } else {
                tokens.extend(words(piece).into_iter().map(PatternToken::Word));
            }
        }
        if !matches!(tokens.first(), Some(PatternToken::Word(_)))
            || !matches!(tokens.last(), Some(PatternToken::Word(_)))
        {
            return Err(refuse("each part must start and end with a word"));
        }
        parts.push(tokens);
    }
    Ok(Pattern { parts })
}

fn check_length<T>(
    code: &'static str,
    field: &'static str,
    list: &[T],
    expected: usize,
) -> Result<(), LangError> {
    if list.len() == expected {
        Ok(())
    } else {
        Err(LangError::Length {
            code,
            field,
            expected,
            found: list.len(),
        })
    }
}

impl LangData {
    fn load(code: &'static str, json: &str) -> Result<LangData, LangError> {
        let file: LangFile =
            serde_json::from_str(json).map_err(|source| LangError::Json { code, source })?;
        if file.code != code {
            return Err(LangError::CodeMismatch {
                code,
                found: file.code,
            });
        }
        check_length(code, "weekdays", &file.weekdays, 7)?;
        check_length(code, "months", &file.months, 12)?;
        check_length(code, "format.weekdays", &file.format.weekdays, 7)?;
        check_length(code, "format.months", &file.format.months, 12)?;

        let mut cues = Vec::new();
        for (intent, patterns) in &file.intents {
            for (text, weight) in patterns {
                let pattern = parse_pattern(code, text)?;
                cues.push(Cue {
                    intent: *intent,
                    pattern,
                    weight: *weight,
                });
            }
        }
        let d = &file.dates;
        let relative_lists = [
            (&d.today, Relative::Today),
            (&d.tomorrow, Relative::Tomorrow),
            (&d.day_after_tomorrow, Relative::DayAfterTomorrow),
            (&d.this_weekend, Relative::ThisWeekend),
            (&d.next_weekend, Relative::NextWeekend),
            (&d.this_week, Relative::ThisWeek),
            (&d.next_week, Relative::NextWeek),
            (&d.this_month, Relative::ThisMonth),
            (&d.next_month, Relative::NextMonth),
        ];
        let mut relative: Vec<(Vec<String>, Relative)> = relative_lists
            .iter()
            .flat_map(|(list, kind)| phrases(list).into_iter().map(move |p| (p, *kind)))
            .collect();
        relative.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let mut numbers: Vec<(Vec<String>, u32)> = file
            .numbers
            .iter()
            .map(|(phrase, value)| (words(phrase), *value))
            .filter(|(p, _)| !p.is_empty())
            .collect();
        numbers.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));

        let mut weekdays = BTreeMap::new();
        for (day, names) in file.weekdays.iter().enumerate() {
            for name in word_set(names) {
                // At most 7 entries, checked above.
                weekdays.insert(name, day as u8);
            }
        }
        let mut months = BTreeMap::new();
        for (month, names) in file.months.iter().enumerate() {
            for name in word_set(names) {
                months.insert(name, month as u8 + 1);
            }
        }
        let rewrites = file
            .rewrites
            .iter()
            .map(|(k, v)| (words(k).concat(), words(v)))
            .collect();
        let catalog_words = file
            .catalog_words
            .iter()
            .map(|(k, v)| (words(k).concat(), words(v)))
            .collect();
        let city_aliases = file
            .city_aliases
            .iter()
            .map(|(k, v)| (words(k).concat(), words(v).join(" ")))
            .collect();

        let mut data = LangData {
            name: file.name,
            letters: file.letters.chars().flat_map(char::to_lowercase).collect(),
            lexicon: BTreeSet::new(),
            collapsed: BTreeMap::new(),
            fuzzy: BTreeMap::new(),
            stopwords: word_set(&file.stopwords),
            rewrites,
            catalog_words,
            city_aliases,
            generic_event_words: word_set(&file.generic_event_words),
            numbers,
            ordinals: file
                .ordinals
                .iter()
                .map(|(k, v)| (words(k).concat(), *v))
                .collect(),
            quantity_words: file
                .quantity_words
                .iter()
                .map(|(k, v)| (words(k).concat(), *v))
                .collect(),
            one_words: word_set(&file.one_words),
            quantity_nouns: word_set(&file.quantity_nouns),
            seat_nouns: word_set(&file.seat_nouns),
            ticket_nouns: word_set(&file.ticket_nouns),
            row_nouns: word_set(&file.row_nouns),
            number_markers: word_set(&file.number_markers),
            quantity_before: word_set(&file.quantity_before),
            quantity_after: word_set(&file.quantity_after),
            best_available: phrases(&file.best_available),
            together: phrases(&file.together),
            list_connectors: word_set(&file.list_connectors),
            range_connectors: word_set(&file.range_connectors),
            range_openers: word_set(&file.range_openers),
            date_fillers: word_set(&file.date_fillers),
            date_blockers: phrases(&file.date_blockers),
            time_words: word_set(&file.time_words),
            relative,
            weekdays,
            months,
            months_need_context: word_set(&file.months_need_context),
            month_context: word_set(&file.month_context),
            cues,
            format: file.format,
            replies: file.replies,
        };
        data.build_lexicon(&file.words);
        Ok(data)
    }

    /// Gathers every word the data mentions into the lexicon and its lookup forms.
    fn build_lexicon(&mut self, general: &[String]) {
        let mut lexicon = word_set(general);
        let sets = [
            &self.stopwords,
            &self.generic_event_words,
            &self.one_words,
            &self.quantity_nouns,
            &self.seat_nouns,
            &self.ticket_nouns,
            &self.row_nouns,
            &self.number_markers,
            &self.quantity_before,
            &self.quantity_after,
            &self.list_connectors,
            &self.range_connectors,
            &self.range_openers,
            &self.date_fillers,
            &self.time_words,
            &self.months_need_context,
            &self.month_context,
        ];
        for set in sets {
            lexicon.extend(set.iter().cloned());
        }
        let phrase_lists = [&self.best_available, &self.together, &self.date_blockers];
        for list in phrase_lists {
            lexicon.extend(list.iter().flatten().cloned());
        }
        lexicon.extend(self.relative.iter().flat_map(|(p, _)| p.iter().cloned()));
        lexicon.extend(self.numbers.iter().flat_map(|(p, _)| p.iter().cloned()));
        lexicon.extend(self.quantity_words.keys().cloned());
        lexicon.extend(self.ordinals.keys().cloned());
        lexicon.extend(self.weekdays.keys().cloned());
        lexicon.extend(self.months.keys().cloned());
        lexicon.extend(self.rewrites.keys().cloned());
        lexicon.extend(self.rewrites.values().flatten().cloned());
        lexicon.extend(self.catalog_words.keys().cloned());
        lexicon.extend(self.city_aliases.keys().cloned());
        for cue in &self.cues {
            for part in &cue.pattern.parts {
                for token in part {
                    if let PatternToken::Word(word) = token {
                        lexicon.insert(word.clone());
                    }
                }
            }
        }
        // Digits and "&" are not words of any language.
        lexicon.retain(|w| w.chars().all(char::is_alphabetic));
        for word in &lexicon {
            self.collapsed
                .entry(collapse(word))
                .or_insert_with(|| word.clone());
            let mut chars = word.chars();
            if let (Some(first), true) = (chars.next(), word.chars().count() >= 4) {
                self.fuzzy.entry(first).or_default().push(word.clone());
            }
        }
        self.lexicon = lexicon;
    }

    /// Returns the lexicon word a token stands for, exactly or by its collapsed digraphs.
    pub fn known(&self, word: &str) -> Option<&str> {
        if let Some(found) = self.lexicon.get(word) {
            return Some(found);
        }
        self.collapsed.get(&collapse(word)).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every registered language file loads and its code matches its registration.
    #[test]
    fn every_language_loads() {
        check_languages().unwrap();
        for lang in Lang::all() {
            assert_eq!(Lang::from_code(lang.code()), Some(lang));
            assert!(!lang.data().cues.is_empty());
        }
        assert_eq!(Lang::EN.code(), "en");
        assert_eq!(Lang::DE.code(), "de");
    }

    /// Every intent has cues in every language (except `unknown`, which may have none).
    #[test]
    fn every_intent_has_cues() {
        for lang in Lang::all() {
            for intent in Intent::ALL {
                if intent == Intent::Unknown {
                    continue;
                }
                assert!(
                    lang.data().cues.iter().any(|c| c.intent == intent),
                    "{lang}: no cue for {intent:?}"
                );
            }
        }
    }

    /// A language serializes as its code and an unknown code is refused.
    #[test]
    fn lang_serializes_as_code() {
        assert_eq!(serde_json::to_string(&Lang::DE).unwrap(), "\"de\"");
        assert_eq!(serde_json::from_str::<Lang>("\"en\"").unwrap(), Lang::EN);
        assert!(serde_json::from_str::<Lang>("\"xx\"").is_err());
    }

    /// Patterns: gaps inside parts are allowed, a part must start and end with a word.
    #[test]
    fn parses_patterns() {
        let pattern = parse_pattern("en", "cancel * ticket & my").unwrap();
        assert_eq!(pattern.parts.len(), 2);
        assert_eq!(pattern.parts[0][1], PatternToken::Gap);
        assert!(parse_pattern("en", "* ticket").is_err());
        assert!(parse_pattern("en", "ticket &").is_err());
    }
}
