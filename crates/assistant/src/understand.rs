//! Understanding one message: text → language, intent and slots. The pipeline: lex and normalize
//! (`text`), detect the language by scoring each language's words, rewrite shorthand and spell
//! out number words, split compounds and correct typos toward the language's words, then take
//! the slots out — dates (`dates`), clock times, ticket and seat numbers, flags (`slots`), the
//! city, venue and event referred to (`matching`), the quantity — and finally score the intents'
//! cue patterns over what is left (`intent`). Pure and deterministic: the same text, catalog and
//! time give the same answer.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::catalog::Catalog;
use crate::lang::{self, Lang, LangData};
use crate::text::{self, Kind, Token, collapse};
use crate::{dates, intent, matching, slots};

/// The most seat numbers one message may name; more are ignored.
pub const SEATS_PER_MESSAGE_MAX: usize = 20;
/// The most events an ambiguous reference lists in `event_choices`.
pub const EVENT_CHOICES_MAX: usize = 10;
/// The longest search text handed on, in characters.
pub const QUERY_CHARS_MAX: usize = 100;

/// What the user wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// A greeting with no request.
    Greet,
    /// Asks what the assistant can do.
    Help,
    /// Looks for events by text, city, venue or dates.
    Search,
    /// When, where, price of one event.
    EventDetails,
    /// How many are left, or whether given seats are free.
    Availability,
    /// Wants tickets (hold them).
    Book,
    /// Pay for the open hold.
    Pay,
    /// Lists the user's tickets.
    MyTickets,
    /// Lists the user's orders.
    MyOrders,
    /// Refund a ticket or the user's tickets for an event.
    Refund,
    /// Give up the open hold.
    CancelHold,
    /// Forget the conversation.
    StartOver,
    /// Yes to the question asked.
    Confirm,
    /// No to the question asked.
    Deny,
    /// Anything else.
    Unknown,
}

impl Intent {
    /// Every intent, in a fixed order (the tie-break order of the classifier).
    pub const ALL: [Intent; 15] = [
        Intent::StartOver,
        Intent::Refund,
        Intent::CancelHold,
        Intent::Pay,
        Intent::MyOrders,
        Intent::MyTickets,
        Intent::Availability,
        Intent::Book,
        Intent::EventDetails,
        Intent::Search,
        Intent::Help,
        Intent::Confirm,
        Intent::Deny,
        Intent::Greet,
        Intent::Unknown,
    ];

    /// Returns the intent's name as written in JSON ("event_details").
    pub fn name(self) -> &'static str {
        match self {
            Intent::Greet => "greet",
            Intent::Help => "help",
            Intent::Search => "search",
            Intent::EventDetails => "event_details",
            Intent::Availability => "availability",
            Intent::Book => "book",
            Intent::Pay => "pay",
            Intent::MyTickets => "my_tickets",
            Intent::MyOrders => "my_orders",
            Intent::Refund => "refund",
            Intent::CancelHold => "cancel_hold",
            Intent::StartOver => "start_over",
            Intent::Confirm => "confirm",
            Intent::Deny => "deny",
            Intent::Unknown => "unknown",
        }
    }

    /// Returns the position of the intent in [`Intent::ALL`].
    pub(crate) fn index(self) -> usize {
        Intent::ALL
            .iter()
            .position(|i| *i == self)
            .unwrap_or(Intent::ALL.len() - 1)
    }
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Dates as `YYYY-MM-DD` in JSON.
mod ymd {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::{Date, Month};

    pub fn format(date: Date) -> String {
        format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        )
    }

    pub fn parse(text: &str) -> Option<Date> {
        let mut parts = text.splitn(3, '-');
        let year: i32 = parts.next()?.parse().ok()?;
        let month: u8 = parts.next()?.parse().ok()?;
        let day: u8 = parts.next()?.parse().ok()?;
        if text.len() != 10 {
            return None;
        }
        Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
    }

    pub fn serialize<S: Serializer>(date: &Option<Date>, serializer: S) -> Result<S::Ok, S::Error> {
        match date {
            Some(date) => serializer.serialize_str(&format(*date)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Date>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        parse(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a YYYY-MM-DD date")))
    }
}

pub use ymd::format as format_date;

/// What a message says about the request, as the README's JSON: absent slots are omitted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slots {
    /// The catalog id of the one event meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<u64>,
    /// The ids (ascending) of the events an ambiguous reference could mean; never with `event`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_choices: Vec<u64>,
    /// The catalog's spelling of the city named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// The catalog's spelling of the venue named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
    /// The first day asked for (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ymd")]
    pub date_from: Option<Date>,
    /// The last day asked for (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "ymd")]
    pub date_to: Option<Date>,
    /// How many tickets, when stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u32>,
    /// Seat numbers named.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seats: Vec<u32>,
    /// "Best available".
    #[serde(default, skip_serializing_if = "is_false")]
    pub best_available: bool,
    /// "Together", "next to each other".
    #[serde(default, skip_serializing_if = "is_false")]
    pub together: bool,
    /// A ticket number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<u64>,
}

impl Slots {
    /// Returns whether no slot is set.
    pub fn is_empty(&self) -> bool {
        *self == Slots::default()
    }

    /// Returns whether the slots name an event (one, or a choice).
    pub fn has_event(&self) -> bool {
        self.event.is_some() || !self.event_choices.is_empty()
    }

    /// Returns whether the slots narrow a search (city, venue or dates).
    pub fn has_place_or_date(&self) -> bool {
        self.city.is_some() || self.venue.is_some() || self.date_from.is_some()
    }
}

/// What the engine took from one message besides intent and slots, for the dialogue policy.
/// Not part of the JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// Whether cue words (not only the slots) chose the intent.
    pub cued: bool,
    /// Whether the language was recognized from words (else it is the default).
    pub lang_sure: bool,
    /// A number the message states that is no date, seat, ticket or quantity ("2" answering
    /// "How many tickets?").
    pub number: Option<u32>,
    /// The words that referred to an event, for a search by text.
    pub reference: Option<String>,
    /// The quantity came from an article ("a ticket"), not a number.
    pub(crate) article_quantity: bool,
}

/// The engine's reading of one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Understanding {
    /// The language the message is in.
    pub lang: Lang,
    /// What the user wants.
    pub intent: Intent,
    /// What the message says about it.
    pub slots: Slots,
    /// Further hints for the dialogue policy (not serialized).
    #[serde(skip)]
    pub hints: Hints,
}

/// What a token turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Not (yet) part of a slot.
    Free,
    /// Part of a date expression.
    Date,
    /// A clock time and its words ("8 pm", "20 uhr").
    Time,
    /// A word that only introduces a number ("nr", "number").
    Marker,
    /// The quantity.
    Quantity,
    /// A seat number.
    Seat,
    /// A ticket number.
    Ticket,
    /// A row number (ignored).
    Row,
    /// Part of a "best available" or "together" phrase.
    Flag,
    /// Part of a city's name.
    City,
    /// Part of a venue's name.
    Venue,
    /// Part of an event's name.
    Event,
}

/// A token in the pipeline.
#[derive(Clone, Debug)]
pub(crate) struct Tok {
    /// The word after rewrites and spelling correction (cue matching reads this).
    pub text: String,
    /// The folded word as typed (catalog matching reads this).
    pub raw: String,
    /// What the lexer found.
    pub kind: Kind,
    /// What the token turned out to be.
    pub role: Role,
    /// Part of a phrase that must not be read as a date ("guten morgen").
    pub no_date: bool,
    /// The word always states a quantity ("zweimal").
    pub quantity_word: bool,
}

impl Tok {
    fn new(text: String, raw: String, kind: Kind) -> Tok {
        Tok {
            text,
            raw,
            kind,
            role: Role::Free,
            no_date: false,
            quantity_word: false,
        }
    }

    /// Returns the word, if the token is a word not yet taken by a slot.
    pub fn free_word(&self) -> Option<&str> {
        (self.role == Role::Free && self.kind == Kind::Word).then_some(self.text.as_str())
    }

    /// Returns the value, if the token is a number not yet taken by a slot.
    pub fn free_number(&self) -> Option<u32> {
        match self.kind {
            Kind::Number { value, .. } if self.role == Role::Free => Some(value),
            _ => None,
        }
    }
}

/// Understands one message against a catalog at `now_ms` (Unix milliseconds, UTC). Never
/// panics; the text should be at most [`crate::MESSAGE_CHARS_MAX`] characters (the first
/// [`text::INPUT_CHARS_MAX`] are read).
pub fn understand(text: &str, catalog: &Catalog, now_ms: i64) -> Understanding {
    let tokens = text::lex(text);
    let (lang, lang_sure) = detect_language(&tokens, catalog);
    let data = lang.data();
    let mut toks = prepare(tokens, data, catalog);
    let mut slots = Slots::default();
    let mut hints = Hints {
        lang_sure,
        ..Hints::default()
    };
    let today = dates::today(now_ms);
    dates::extract(&mut toks, data, today, &mut slots);
    slots::extract_numbers(&mut toks, data, &mut slots);
    slots::extract_flags(&mut toks, data, &mut slots);
    matching::extract(&mut toks, data, catalog, now_ms, &mut slots, &mut hints);
    slots::extract_quantity(&mut toks, data, &mut slots, &mut hints);
    let (intent, cued) = intent::classify(&toks, data, &slots, &hints);
    hints.cued = cued;
    if intent != Intent::Book && hints.article_quantity {
        slots.quantity = None;
    }
    if matches!(
        intent,
        Intent::Unknown | Intent::Greet | Intent::Help | Intent::StartOver
    ) {
        slots = Slots::default();
    }
    Understanding {
        lang,
        intent,
        slots,
        hints,
    }
}

/// Scores each language by the message's words it knows (a word several languages know counts
/// for each in part) and its accented letters; returns the best and whether any word decided.
fn detect_language(tokens: &[Token], catalog: &Catalog) -> (Lang, bool) {
    let langs: Vec<Lang> = Lang::all().collect();
    let mut scores = vec![0.0f32; langs.len()];
    let names = &catalog.index().words;
    for token in tokens {
        if token.kind != Kind::Word || names.contains(&token.text) {
            continue;
        }
        let knowing: Vec<usize> = langs
            .iter()
            .enumerate()
            .filter(|(_, lang)| {
                let data = lang.data();
                data.known(&token.text).is_some() || data.rewrites.contains_key(&token.text)
            })
            .map(|(i, _)| i)
            .collect();
        for i in &knowing {
            // At most a handful of languages.
            scores[*i] += 1.0 / knowing.len() as f32;
        }
        if knowing.is_empty() {
            // A typo of a language's word ("erstaten") counts half.
            let near: Vec<usize> = langs
                .iter()
                .enumerate()
                .filter(|(_, lang)| nearest_word(&token.text, lang.data()).is_some())
                .map(|(i, _)| i)
                .collect();
            for i in &near {
                scores[*i] += TYPO_DETECTION_WEIGHT / near.len() as f32;
            }
        }
        for (i, lang) in langs.iter().enumerate() {
            if token
                .accents
                .chars()
                .any(|c| lang.data().letters.contains(&c))
            {
                scores[i] += 0.5;
            }
        }
    }
    let mut best = 0;
    for i in 1..scores.len() {
        if scores[i] > scores[best] {
            best = i;
        }
    }
    let sure = scores[best] > 0.0
        && scores
            .iter()
            .enumerate()
            .all(|(i, s)| i == best || *s < scores[best]);
    (langs[best], sure)
}

/// Turns lexer tokens into pipeline tokens: rewrites shorthand, spells out number words, splits
/// compounds and corrects typos toward the language's words.
fn prepare(tokens: Vec<Token>, data: &LangData, catalog: &Catalog) -> Vec<Tok> {
    let mut rewritten: Vec<Tok> = Vec::with_capacity(tokens.len());
    for token in tokens {
        if token.kind != Kind::Word {
            rewritten.push(Tok::new(token.text.clone(), token.text, token.kind));
            continue;
        }
        let words = match data.rewrites.get(&token.text) {
            Some(replacement) => replacement.clone(),
            None => correct(&token.text, data, catalog),
        };
        for word in words {
            // A typo may land on shorthand ("wochenede" → "wochende" → "wochenende").
            let expanded = data
                .rewrites
                .get(&word)
                .cloned()
                .unwrap_or_else(|| vec![word]);
            for word in expanded {
                rewritten.push(Tok::new(word.clone(), word, Kind::Word));
            }
        }
    }
    rewritten.truncate(text::TOKENS_MAX);
    spell_numbers(rewritten, data)
}

/// Replaces number phrases ("two", "a pair", "zweimal") and ordinal words ("second") by
/// number tokens.
fn spell_numbers(toks: Vec<Tok>, data: &LangData) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        if toks[i].kind == Kind::Word {
            if let Some(&value) = data.ordinals.get(&toks[i].text) {
                let kind = Kind::Number {
                    value,
                    ordinal: true,
                    hash: false,
                    spelled: true,
                };
                out.push(Tok::new(toks[i].text.clone(), toks[i].raw.clone(), kind));
                i += 1;
                continue;
            }
            if let Some(&value) = data.quantity_words.get(&toks[i].text) {
                let mut tok = number_tok(&toks[i].text, value);
                tok.quantity_word = true;
                out.push(tok);
                i += 1;
                continue;
            }
            let found = data.numbers.iter().find(|(phrase, _)| {
                phrase.len() <= toks.len() - i
                    && phrase
                        .iter()
                        .zip(&toks[i..])
                        .all(|(w, t)| t.kind == Kind::Word && t.text == *w)
            });
            if let Some((phrase, value)) = found {
                let text = phrase.join(" ");
                out.push(number_tok(&text, *value));
                i += phrase.len();
                continue;
            }
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

fn number_tok(text: &str, value: u32) -> Tok {
    let kind = Kind::Number {
        value,
        ordinal: false,
        hash: false,
        spelled: true,
    };
    Tok::new(text.to_string(), text.to_string(), kind)
}

/// Returns whether the catalog or any language's catalog words or city aliases know the word.
fn catalog_knows(word: &str, catalog: &Catalog) -> bool {
    let words = &catalog.index().words;
    words.contains(word)
        || words.contains(&collapse(word))
        || lang::all_data()
            .any(|d| d.catalog_words.contains_key(word) || d.city_aliases.contains_key(word))
}

/// What a typo of a language's word counts for when detecting the language (a word counts 1).
const TYPO_DETECTION_WEIGHT: f32 = 0.5;

/// The typo budget for a word of this many characters.
pub(crate) fn typo_budget(chars: usize) -> usize {
    match chars {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    }
}

/// Returns the lexicon word nearest to `word` within the typo budget (same first letter), and
/// its distance.
fn nearest_word<'a>(word: &str, data: &'a LangData) -> Option<(usize, &'a str)> {
    let chars = word.chars().count();
    if chars < 4 || !word.chars().all(char::is_alphabetic) {
        return None;
    }
    let first = word.chars().next()?;
    let collapsed = collapse(word);
    let mut best: Option<(usize, &str)> = None;
    for candidate in data.fuzzy.get(&first).into_iter().flatten() {
        let candidate_chars = candidate.chars().count();
        let budget = typo_budget(candidate_chars).max(1);
        if candidate_chars.abs_diff(chars) > budget {
            continue;
        }
        let distance = strsim::osa_distance(&collapsed, &collapse(candidate));
        if distance <= budget && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best
}

/// Returns the word as the language knows it: itself, its lexicon form, its compound parts, or
/// the nearest lexicon word within the typo budget when no catalog word is as near.
fn correct(word: &str, data: &LangData, catalog: &Catalog) -> Vec<String> {
    if let Some(known) = data.known(word) {
        return vec![known.to_string()];
    }
    if !word.chars().all(char::is_alphabetic) || catalog_knows(word, catalog) {
        return vec![word.to_string()];
    }
    if let Some(parts) = split_compound(word, data, catalog) {
        return parts;
    }
    let Some((distance, candidate)) = nearest_word(word, data) else {
        return vec![word.to_string()];
    };
    let chars = word.chars().count();
    // A catalog word as near wins: "prinse" is the prince, not the price.
    let catalog_distance = catalog
        .index()
        .words
        .iter()
        .filter(|w| w.chars().count().abs_diff(chars) <= distance)
        .map(|w| strsim::osa_distance(word, w))
        .min();
    if catalog_distance.is_some_and(|d| d <= distance) {
        return vec![word.to_string()];
    }
    vec![candidate.to_string()]
}

/// Splits a compound ("kindertheater", "freitagabend", "neujahrsgala") into two known words,
/// when one of them is a catalog word or a date word (so ordinary words are left alone).
fn split_compound(word: &str, data: &LangData, catalog: &Catalog) -> Option<Vec<String>> {
    let chars: Vec<char> = word.chars().collect();
    if chars.len() < 7 {
        return None;
    }
    let is_date_word = |w: &str| {
        data.weekdays.contains_key(w)
            || data.months.contains_key(w)
            || data.relative.iter().any(|(p, _)| p.len() == 1 && p[0] == w)
    };
    let special = |w: &str| catalog_knows(w, catalog) || is_date_word(w);
    let known = |w: &str| data.known(w).is_some() || catalog_knows(w, catalog);
    for cut in (3..=chars.len() - 3).rev() {
        let head: String = chars[..cut].iter().collect();
        let tail: String = chars[cut..].iter().collect();
        let tails = [
            tail.clone(),
            tail.strip_prefix('s').unwrap_or("").to_string(),
        ];
        for tail in tails.iter().filter(|t| t.chars().count() >= 3) {
            if known(&head) && known(tail) && (special(&head) || special(tail)) {
                let head = data
                    .known(&head)
                    .map(str::to_string)
                    .unwrap_or(head.clone());
                let tail = data.known(tail).map(str::to_string).unwrap_or(tail.clone());
                return Some(vec![head, tail]);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const CATALOG: &str = include_str!("../eval/catalog.json");
    /// 2027-01-06T10:00:00Z, a Wednesday.
    pub(crate) const NOW_MS: i64 = 1_799_229_600_000;

    fn u(text: &str) -> Understanding {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        understand(text, &catalog, NOW_MS)
    }

    fn json(text: &str) -> String {
        let u = u(text);
        format!(
            "{} {} {}",
            u.lang,
            u.intent,
            serde_json::to_string(&u.slots).unwrap()
        )
    }

    /// Slots serialize to the README's JSON: absent slots omitted, dates as YYYY-MM-DD.
    #[test]
    fn slots_serialize_like_the_readme() {
        let slots = Slots {
            event: Some(1),
            quantity: Some(2),
            date_from: Date::from_calendar_date(2027, time::Month::March, 12).ok(),
            best_available: true,
            ..Slots::default()
        };
        let text = serde_json::to_string(&slots).unwrap();
        assert_eq!(
            text,
            r#"{"event":1,"date_from":"2027-03-12","quantity":2,"best_available":true}"#
        );
        assert_eq!(serde_json::from_str::<Slots>(&text).unwrap(), slots);
        assert_eq!(serde_json::to_string(&Slots::default()).unwrap(), "{}");
        assert!(serde_json::from_str::<Slots>(r#"{"evnt":1}"#).is_err());
        assert!(serde_json::from_str::<Slots>(r#"{"date_from":"2027-02-30"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&Intent::EventDetails).unwrap(),
            "\"event_details\""
        );
    }

    /// The README's examples come out as the README says.
    #[test]
    fn understands_readme_examples() {
        assert_eq!(
            json("two tickets for the beethoven nite please"),
            r#"en book {"event":1,"quantity":2}"#
        );
        assert_eq!(
            json("what's on in Düsseldorf in January?"),
            r#"en search {"city":"Düsseldorf","date_from":"2027-01-01","date_to":"2027-01-31"}"#
        );
        assert_eq!(
            json("seats left for the arena concert?"),
            r#"en availability {"event":2}"#
        );
        assert_eq!(json("refund my ticket 12"), r#"en refund {"ticket":12}"#);
        assert_eq!(json("what did I buy?"), r#"en my_tickets {}"#);
        assert_eq!(json("hallo!"), r#"de greet {}"#);
        assert_eq!(json("was kannst du?"), r#"de help {}"#);
        assert_eq!(
            json("is seat 48 free for beethoven night"),
            r#"en availability {"event":1,"seats":[48]}"#
        );
        assert_eq!(
            json("tickets for the beethoven night"),
            r#"en book {"event":1}"#
        );
        assert_eq!(json("book seat 48"), r#"en book {"seats":[48]}"#);
        assert_eq!(
            json("beethoven"),
            r#"en event_details {"event_choices":[1,4]}"#
        );
        assert_eq!(json("ja bitte"), r#"de confirm {}"#);
        assert_eq!(json("nein danke"), r#"de deny {}"#);
        assert_eq!(json("von vorne"), r#"de start_over {}"#);
        assert_eq!(
            json("Ticket Nr. 12 erstatten"),
            r#"de refund {"ticket":12}"#
        );
    }

    /// "duesseldorf", "dusseldorf" and "Düsseldorf" are one city; English names map too.
    #[test]
    fn folds_city_spellings() {
        for text in [
            "events in duesseldorf",
            "events in dusseldorf",
            "events in Düsseldorf",
            "events in DÜSSELDORF",
        ] {
            assert_eq!(u(text).slots.city.as_deref(), Some("Düsseldorf"), "{text}");
        }
        assert_eq!(
            u("what's on in cologne").slots.city.as_deref(),
            Some("Köln")
        );
        assert_eq!(u("was läuft in koeln").slots.city.as_deref(), Some("Köln"));
        assert_eq!(
            u("anything in munich?").slots.city.as_deref(),
            Some("München")
        );
    }

    /// Typos and partial names find the event; an ambiguous name gives choices.
    #[test]
    fn matches_events_fuzzily() {
        assert_eq!(u("when is beethovn night").slots.event, Some(1));
        assert_eq!(u("2 tickets for the arena one").slots.event, Some(2));
        assert_eq!(u("tickets for little prince").slots.event, Some(7));
        assert_eq!(u("karten für den kleinen prinzen").slots.event, Some(7));
        assert_eq!(u("when is the piano sonatas").slots.event, Some(4));
        assert_eq!(u("beethoven concert").slots.event_choices, [1, 4]);
        // A city narrows an ambiguous name.
        assert_eq!(u("beethoven in köln").slots.event, Some(4));
        // Function words inside a name belong to the reference.
        assert_eq!(
            u("when is jazz im park").hints.reference.as_deref(),
            Some("jazz im park")
        );
        // A generic word alone is no reference.
        assert!(!u("any concerts this weekend?").slots.has_event());
    }

    /// Number words give quantities only where a quantity is stated.
    #[test]
    fn reads_number_words() {
        assert_eq!(u("zwei Karten für Jazz im Park").slots.quantity, Some(2));
        assert_eq!(
            u("a pair of tickets for the arena concert").slots.quantity,
            Some(2)
        );
        assert_eq!(u("one ticket for jazz im park").slots.quantity, Some(1));
        assert_eq!(u("a ticket for jazz im park").slots.quantity, Some(1));
        assert_eq!(
            u("how much is a ticket for jazz im park").slots.quantity,
            None
        );
        assert_eq!(u("book the arena one").slots.quantity, None);
        assert_eq!(u("zweimal Beethoven Night bitte").slots.quantity, Some(2));
        assert_eq!(u("2").hints.number, Some(2));
    }

    /// Messages no one would send never panic and give sane answers.
    #[test]
    fn never_panics() {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        let long = "beethoven ".repeat(1_000);
        let inputs = [
            String::new(),
            " ".to_string(),
            "🎉🎫🎶".to_string(),
            "\u{0}\u{1}\u{7}\u{1b}[31m\r\n\t".to_string(),
            "x".repeat(10_000),
            long,
            "<script>alert('x')</script> <b>2 tickets</b>".to_string(),
            "#############".to_string(),
            "9999999999999999999999 tickets".to_string(),
            "-----".to_string(),
            "12.13.2027 31.02. 2027-13-45 0.0. 99:99".to_string(),
            "ticket #4294967295 seat 4294967295".to_string(),
            "seats 1-4294967295".to_string(),
            "ẞ İ ﬁ ǅ".to_string(),
            "\u{202E}evil\u{202C} \u{200B}".to_string(),
            "between and from to".to_string(),
            "between 31 and 1 feb".to_string(),
            "29.02. 29 february".to_string(),
            "&&&& + + #1".to_string(),
            "ａｂｃ １２３".to_string(),
        ];
        for input in &inputs {
            for now in [NOW_MS, 0, i64::MIN, i64::MAX, -1] {
                let understanding = understand(input, &catalog, now);
                assert!(understanding.slots.seats.len() <= SEATS_PER_MESSAGE_MAX);
            }
        }
        let empty = understand("", &catalog, NOW_MS);
        assert_eq!((empty.lang, empty.intent), (Lang::EN, Intent::Unknown));
    }
}
