//! Normalization and lexing. A message is lower-cased and its accents are folded ("Düsseldorf",
//! "DUSSELDORF" and "dusseldorf" read alike; "ß" reads "ss"), apostrophes are dropped ("what's"
//! reads "whats") and it is split into tokens: words, numbers ("12", "#12", "12th", "12."), dates
//! written with digits ("12.03.", "12.3.2027", "2027-03-12"), clock times ("19:30") and dashes
//! (ranges such as "3-5"). Every later stage works on these tokens; the language data files are
//! normalized by the same functions, so the data may be written with accents and apostrophes.

/// Characters of a message that are looked at; the rest is ignored. Callers refuse messages
/// longer than [`crate::MESSAGE_CHARS_MAX`]; this bounds the work for a caller that does not.
pub const INPUT_CHARS_MAX: usize = 4_000;
/// Tokens kept per message; later ones are ignored (bounds every per-token loop).
pub const TOKENS_MAX: usize = 120;
/// Characters kept of one word; a longer word is cut (no real word is this long).
pub const WORD_CHARS_MAX: usize = 32;
/// Digits a number may have to be read as a number (fits `u32`).
const NUMBER_DIGITS_MAX: usize = 9;

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A word (letters; "&" and "+" read as the word "&").
    Word,
    /// A number written with digits or spelled out.
    Number {
        /// The value.
        value: u32,
        /// Followed by "st", "nd", "rd", "th" or a dot ("12th", "12.").
        ordinal: bool,
        /// Written after "#" ("#12").
        hash: bool,
        /// Spelled out ("two", "zwei").
        spelled: bool,
    },
    /// A date written with digits, day first ("12.03.", "12.3.2027") or ISO ("2027-03-12").
    Date {
        /// Day of the month as written (not yet checked against the month).
        day: u8,
        /// Month as written, 1–12.
        month: u8,
        /// The year, when written.
        year: Option<i32>,
    },
    /// A clock time ("19:30").
    Time,
    /// A dash between two tokens ("3-5", "Beethoven-Nacht").
    Dash,
}

/// One token of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    /// The normalized text: lower case, accents folded.
    pub text: String,
    /// What the token is.
    pub kind: Kind,
    /// The accented letters the original had, before folding ("ü" for "Düsseldorf"): a hint
    /// at the language.
    pub accents: String,
}

/// Character classes after folding.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Dot,
    Dash,
    Colon,
    Hash,
    Amp,
    Space,
}

/// One folded character and the accented letter it came from, if any.
#[derive(Clone, Copy)]
struct Folded {
    c: char,
    accent: Option<char>,
}

/// Returns the plain letters for an accented lower-case letter, or "" for any other character.
fn fold_letter(c: char) -> &'static str {
    match c {
        'ä' => "a",
        'ö' => "o",
        'ü' => "u",
        'ß' => "ss",
        'à' | 'á' | 'â' | 'ã' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'č' => "c",
        'ď' | 'đ' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'ğ' => "g",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ø' | 'ō' | 'ő' => "o",
        'œ' => "oe",
        'ř' => "r",
        'ś' | 'š' | 'ş' => "s",
        'ť' => "t",
        'ù' | 'ú' | 'û' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => "",
    }
}

/// Whether a character is dropped without splitting a word (apostrophes, combining accents,
/// zero-width characters).
fn is_joiner(c: char) -> bool {
    matches!(
        c,
        '\'' | '’' | '‘' | '`' | '´' | 'ʼ' | '\u{200B}'..='\u{200D}' | '\u{FEFF}'
    ) || ('\u{0300}'..='\u{036F}').contains(&c)
}

/// Folds a message into lower-case plain characters, at most [`INPUT_CHARS_MAX`] of them.
fn fold(text: &str) -> Vec<Folded> {
    let mut out = Vec::with_capacity(text.len().min(INPUT_CHARS_MAX));
    for original in text.chars().take(INPUT_CHARS_MAX) {
        if is_joiner(original) {
            continue;
        }
        for c in original.to_lowercase() {
            if is_joiner(c) {
                continue;
            }
            let plain = fold_letter(c);
            if plain.is_empty() {
                out.push(Folded { c, accent: None });
            } else {
                out.extend(plain.chars().map(|p| Folded {
                    c: p,
                    accent: Some(c),
                }));
            }
        }
    }
    out
}

fn class(c: char) -> Class {
    match c {
        '0'..='9' => Class::Digit,
        '.' => Class::Dot,
        '-' | '–' | '—' | '‐' | '‑' => Class::Dash,
        ':' => Class::Colon,
        '#' => Class::Hash,
        '&' | '+' => Class::Amp,
        c if c.is_alphabetic() => Class::Letter,
        _ => Class::Space,
    }
}

/// The lexer's cursor over folded characters.
struct Lexer {
    chars: Vec<Folded>,
    at: usize,
    tokens: Vec<Token>,
}

impl Lexer {
    fn class_at(&self, i: usize) -> Option<Class> {
        self.chars.get(i).map(|f| class(f.c))
    }

    /// Returns the end of the run of characters of `wanted` class starting at `start`.
    fn run_end(&self, start: usize, wanted: Class) -> usize {
        let mut end = start;
        while self.class_at(end) == Some(wanted) {
            end += 1;
        }
        end
    }

    fn digits(&self, start: usize, end: usize) -> Option<u32> {
        if end - start > NUMBER_DIGITS_MAX || end == start {
            return None;
        }
        let text: String = self.chars[start..end].iter().map(|f| f.c).collect();
        text.parse().ok()
    }

    fn push(&mut self, text: String, kind: Kind, accents: String) {
        self.tokens.push(Token {
            text,
            kind,
            accents,
        });
    }

    fn word(&mut self) {
        let end = self.run_end(self.at, Class::Letter);
        let text: String = self.chars[self.at..end]
            .iter()
            .take(WORD_CHARS_MAX)
            .map(|f| f.c)
            .collect();
        let mut accents = String::new();
        for accent in self.chars[self.at..end].iter().filter_map(|f| f.accent) {
            if !accents.contains(accent) {
                accents.push(accent);
            }
        }
        self.at = end;
        self.push(text, Kind::Word, accents);
    }

    /// Reads "2027-03-12" at the cursor, when it is there.
    fn iso_date(&mut self, year_end: usize) -> bool {
        if year_end - self.at != 4 || self.class_at(year_end) != Some(Class::Dash) {
            return false;
        }
        let month_end = self.run_end(year_end + 1, Class::Digit);
        if !(1..=2).contains(&(month_end - year_end - 1))
            || self.class_at(month_end) != Some(Class::Dash)
        {
            return false;
        }
        let day_end = self.run_end(month_end + 1, Class::Digit);
        if !(1..=2).contains(&(day_end - month_end - 1))
            || self.class_at(day_end) == Some(Class::Digit)
        {
            return false;
        }
        let (Some(year), Some(month), Some(day)) = (
            self.digits(self.at, year_end),
            self.digits(year_end + 1, month_end),
            self.digits(month_end + 1, day_end),
        ) else {
            return false;
        };
        let text: String = self.chars[self.at..day_end].iter().map(|f| f.c).collect();
        self.at = day_end;
        // Both fit in u8: at most two digits each.
        let kind = Kind::Date {
            day: day as u8,
            month: month as u8,
            year: Some(year as i32),
        };
        self.push(text, kind, String::new());
        true
    }

    /// Reads "12.03.", "12.3.2027" or "12.03" at the cursor, when it is there.
    fn dotted_date(&mut self, day_end: usize) -> bool {
        if !(1..=2).contains(&(day_end - self.at)) || self.class_at(day_end) != Some(Class::Dot) {
            return false;
        }
        let month_end = self.run_end(day_end + 1, Class::Digit);
        if !(1..=2).contains(&(month_end - day_end - 1)) {
            return false;
        }
        let (Some(day), Some(month)) = (
            self.digits(self.at, day_end),
            self.digits(day_end + 1, month_end),
        ) else {
            return false;
        };
        if !(1..=31).contains(&day) || !(1..=12).contains(&month) {
            return false;
        }
        let mut end = month_end;
        let mut year = None;
        if self.class_at(month_end) == Some(Class::Dot) {
            end = month_end + 1;
            let year_end = self.run_end(end, Class::Digit);
            if year_end - end == 4 {
                year = self.digits(end, year_end).map(|y| y as i32);
                end = year_end;
            } else if year_end - end == 2 {
                year = self.digits(end, year_end).map(|y| 2000 + y as i32);
                end = year_end;
            }
        }
        let text: String = self.chars[self.at..end].iter().map(|f| f.c).collect();
        self.at = end;
        self.push(
            text,
            Kind::Date {
                day: day as u8,
                month: month as u8,
                year,
            },
            String::new(),
        );
        true
    }

    fn number(&mut self, hash: bool) {
        let end = self.run_end(self.at, Class::Digit);
        if !hash && (self.iso_date(end) || self.dotted_date(end)) {
            return;
        }
        if !hash
            && self.class_at(end) == Some(Class::Colon)
            && self.class_at(end + 1) == Some(Class::Digit)
        {
            let minutes_end = self.run_end(end + 1, Class::Digit);
            let text: String = self.chars[self.at..minutes_end]
                .iter()
                .map(|f| f.c)
                .collect();
            self.at = minutes_end;
            self.push(text, Kind::Time, String::new());
            return;
        }
        let value = self.digits(self.at, end);
        let text: String = self.chars[self.at..end]
            .iter()
            .take(WORD_CHARS_MAX)
            .map(|f| f.c)
            .collect();
        self.at = end;
        let Some(value) = value else {
            // Too long to be a count, a seat or a day: kept as an opaque word.
            self.push(text, Kind::Word, String::new());
            return;
        };
        let mut ordinal = false;
        if self.class_at(end) == Some(Class::Letter) {
            let suffix_end = self.run_end(end, Class::Letter);
            let suffix: String = self.chars[end..suffix_end].iter().map(|f| f.c).collect();
            if matches!(suffix.as_str(), "st" | "nd" | "rd" | "th") {
                ordinal = true;
                self.at = suffix_end;
            }
        } else if self.class_at(end) == Some(Class::Dot)
            && self.class_at(end + 1) != Some(Class::Digit)
        {
            ordinal = true;
            self.at = end + 1;
        }
        self.push(
            text,
            Kind::Number {
                value,
                ordinal,
                hash,
                spelled: false,
            },
            String::new(),
        );
    }

    fn run(mut self) -> Vec<Token> {
        while self.at < self.chars.len() && self.tokens.len() < TOKENS_MAX {
            match class(self.chars[self.at].c) {
                Class::Letter => self.word(),
                Class::Digit => self.number(false),
                Class::Hash if self.class_at(self.at + 1) == Some(Class::Digit) => {
                    self.at += 1;
                    self.number(true);
                }
                Class::Dash => {
                    self.at += 1;
                    if self.tokens.last().is_some_and(|t| t.kind != Kind::Dash) {
                        self.push("-".to_string(), Kind::Dash, String::new());
                    }
                }
                Class::Amp => {
                    self.at += 1;
                    self.push("&".to_string(), Kind::Word, String::new());
                }
                Class::Dot | Class::Colon | Class::Hash | Class::Space => self.at += 1,
            }
        }
        self.tokens.truncate(TOKENS_MAX);
        // A dash at the end joins nothing.
        if self.tokens.last().is_some_and(|t| t.kind == Kind::Dash) {
            self.tokens.pop();
        }
        self.tokens
    }
}

/// Splits a message into tokens (at most [`TOKENS_MAX`]).
pub(crate) fn lex(text: &str) -> Vec<Token> {
    Lexer {
        chars: fold(text),
        at: 0,
        tokens: Vec::new(),
    }
    .run()
}

/// Returns the normalized words of a phrase from the language data ("What's on" → `["whats",
/// "on"]`); numbers come back as their digits, dashes are dropped.
pub(crate) fn words(phrase: &str) -> Vec<String> {
    lex(phrase)
        .into_iter()
        .filter(|t| t.kind != Kind::Dash)
        .map(|t| t.text)
        .collect()
}

/// Returns the word with German digraphs written for umlauts read as the plain vowel
/// ("duesseldorf" → "dusseldorf", "koeln" → "koln"), so both spellings meet the folded one.
pub(crate) fn collapse(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if matches!(c, 'a' | 'o' | 'u') && chars.peek() == Some(&'e') {
            chars.next();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<String> {
        lex(text).into_iter().map(|t| t.text).collect()
    }

    /// Accents, case and the German sharp s fold to plain lower-case letters.
    #[test]
    fn folds_accents_and_case() {
        assert_eq!(
            texts("Düsseldorf DÜSSELDORF Straße Café"),
            ["dusseldorf", "dusseldorf", "strasse", "cafe"]
        );
        assert_eq!(texts("What's on?"), ["whats", "on"]);
        // A decomposed umlaut (u + combining diaeresis) folds like the composed one.
        assert_eq!(texts("Du\u{0308}sseldorf"), ["dusseldorf"]);
        assert_eq!(lex("Köln")[0].accents, "ö");
        assert_eq!(lex("Straße")[0].accents, "ß");
        assert_eq!(lex("Koln")[0].accents, "");
    }

    /// Digraphs collapse so "duesseldorf" and "koeln" meet the folded spellings.
    #[test]
    fn collapses_digraphs() {
        assert_eq!(collapse("duesseldorf"), "dusseldorf");
        assert_eq!(collapse("koeln"), "koln");
        assert_eq!(collapse("muenchen"), "munchen");
        assert_eq!(collapse("dusseldorf"), "dusseldorf");
    }

    /// Numbers, ordinals, hashes, dates and times are told apart.
    #[test]
    fn lexes_numbers_dates_and_times() {
        let tokens =
            lex("ticket #12, 3rd, am 12. März, 12.03., 12.3.2027, 2027-03-12 um 19:30, 3-5");
        let kinds: Vec<Kind> = tokens.iter().map(|t| t.kind).collect();
        let number = |value, ordinal, hash| Kind::Number {
            value,
            ordinal,
            hash,
            spelled: false,
        };
        assert_eq!(
            kinds,
            [
                Kind::Word,
                number(12, false, true),
                number(3, true, false),
                Kind::Word,
                number(12, true, false),
                Kind::Word,
                Kind::Date {
                    day: 12,
                    month: 3,
                    year: None
                },
                Kind::Date {
                    day: 12,
                    month: 3,
                    year: Some(2027)
                },
                Kind::Date {
                    day: 12,
                    month: 3,
                    year: Some(2027)
                },
                Kind::Word,
                Kind::Time,
                number(3, false, false),
                Kind::Dash,
                number(5, false, false),
            ]
        );
    }

    /// Huge numbers stay words; long words are cut; the token count is bounded.
    #[test]
    fn bounds_everything() {
        assert_eq!(lex("12345678901234567890")[0].kind, Kind::Word);
        assert_eq!(lex(&"a".repeat(100))[0].text.len(), WORD_CHARS_MAX);
        assert_eq!(lex(&"word ".repeat(1_000)).len(), TOKENS_MAX);
        assert_eq!(lex(&"x".repeat(INPUT_CHARS_MAX + 10)).len(), 1);
    }
}
