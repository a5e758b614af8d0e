//! Form errors on the pages, in the user's words: [`FormErrors`] collects every field error of
//! one submission (not just the first), each under the id of the input it belongs to, and
//! [`Problem`] is the one place their wording lives — a label from [`label`] and a plain
//! sentence, never an internal field name or a Rust range. The templates show them with
//! `pages/form_errors.html` (a summary at the top, linking to each field, focused on load) and
//! the macros of `pages/form_macros.html` (the message beside its field, `aria-invalid` and
//! `aria-describedby` on the input). The page handlers check each field of the form they
//! parsed and add a [`Problem`] per bad field; the API's validators run after that as the last
//! word, and whatever they still refuse is shown the same way ([`FormErrors::api`]).
//!
//! The JSON API keeps its own wording (problem+json with one `field`): this module is for
//! people filling in forms.

use crate::error::ApiError;

/// What is wrong with one field, worded for people by [`Problem::sentence`].
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Nothing was entered.
    Missing,
    /// Longer than `max` characters.
    TooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// Shorter than `min` characters.
    TooShort {
        /// The fewest characters allowed.
        min: usize,
    },
    /// Contains control or text-direction characters (pasted from somewhere, usually).
    ControlCharacters,
    /// A line break in a one-line field.
    OneLine,
    /// Not a number; `example` shows one.
    NotANumber {
        /// A number as this field takes it: `12.50`.
        example: &'static str,
    },
    /// A number outside `min..=max`.
    OutOfRange {
        /// The smallest allowed, as shown.
        min: &'static str,
        /// The largest allowed, as shown.
        max: &'static str,
    },
    /// Not a whole number in `min..=max`.
    WholeNumber {
        /// The smallest allowed.
        min: u64,
        /// The largest allowed.
        max: u64,
    },
    /// An amount above the largest price.
    PriceTooHigh {
        /// The largest price, for people: `100000000.00`.
        max: String,
    },
    /// Not a date (the browser's date picker sends `YYYY-MM-DD`).
    NotADate,
    /// Not a time of day (`HH:MM`).
    NotATime,
    /// The date and time have passed.
    InThePast,
    /// Not a three-letter currency code.
    CurrencyShape,
    /// Three letters, but not a currency in circulation.
    UnknownCurrency {
        /// What was typed.
        code: String,
    },
    /// Neither general admission nor numbered seats was chosen.
    ChooseKind,
    /// Rows × seats per row is more than an event may have.
    TooManySeats {
        /// The most seats an event may have.
        max: u32,
    },
    /// More blocked seats than allowed.
    TooManyBlocked {
        /// The most blocked seats.
        max: usize,
    },
    /// A seat number that is not a number.
    SeatNotANumber {
        /// What was typed.
        typed: String,
    },
    /// A seat number outside the venue.
    NoSuchSeat {
        /// The seat asked for.
        seat: u32,
        /// The venue's seats are `1..=seats`.
        seats: u32,
    },
    /// A seat sold or held by someone else meanwhile.
    SeatTaken {
        /// The seat's name: "Block A, Row 3, Seat 8".
        seat: String,
    },
    /// A seat the organizer does not sell.
    SeatBlocked {
        /// The seat's name.
        seat: String,
    },
    /// No row has this many free seats side by side (where: " in Block A", or "").
    NotTogether {
        /// How many were asked for.
        quantity: u32,
        /// " in Block A", or "" for anywhere.
        within: String,
    },
    /// No seat was chosen on the map.
    NoSeatChosen,
    /// More tickets than one order (or one customer) may take.
    TooManyTickets {
        /// The most allowed.
        max: u32,
    },
    /// Fewer tickets left than asked for.
    NotEnoughLeft,
    /// A card number of the wrong length or with letters.
    CardDigits,
    /// A card number whose check digit is wrong.
    CardMistyped,
    /// The username has characters other than letters, digits, `.`, `-`, `_`.
    UsernameCharacters,
    /// The username belongs to another account.
    UsernameTaken,
    /// All one character, or only digits.
    PasswordWeak,
    /// The same as the username.
    PasswordIsUsername,
    /// Not an email address (no `@`, two of them, spaces or control characters).
    EmailShape,
    /// The two new passwords differ.
    PasswordsDiffer,
    /// A sentence of the API's own, for a check the page does not make itself.
    Said(String),
}

impl Problem {
    /// Returns the message shown for `field` (an input id): its label, a colon, what to do.
    pub fn sentence(&self, field: &str) -> String {
        let label = label(field);
        match self {
            Problem::Missing => format!("{label}: fill this in"),
            Problem::TooLong { max } => format!("{label}: at most {max} characters"),
            Problem::TooShort { min } => format!("{label}: at least {min} characters"),
            Problem::ControlCharacters => format!(
                "{label}: remove the invisible control characters (they often come with pasted \
                 text)"
            ),
            Problem::OneLine => format!("{label}: keep it on one line"),
            Problem::NotANumber { example } => format!("{label}: use a number like {example}"),
            Problem::OutOfRange { min, max } => format!("{label}: a number from {min} to {max}"),
            Problem::WholeNumber { min, max } => format!(
                "{label}: a whole number from {} to {}",
                grouped(*min),
                grouped(*max)
            ),
            Problem::PriceTooHigh { max } => format!("{label}: at most {max}"),
            Problem::NotADate => format!("{label}: a date like 2031-06-01"),
            Problem::NotATime => format!("{label}: a time like 20:00"),
            Problem::InThePast => format!("{label}: choose a date and time in the future"),
            Problem::CurrencyShape => {
                format!("{label}: a three-letter code like EUR, USD or GBP")
            }
            Problem::UnknownCurrency { code } => {
                format!("{label}: {code} is not a currency we know; try EUR, USD or GBP")
            }
            Problem::ChooseKind => {
                format!("{label}: choose general admission or numbered seats")
            }
            Problem::TooManySeats { max } => {
                let max = grouped(u64::from(*max));
                format!("{label}: rows × seats per row can be at most {max} seats")
            }
            Problem::TooManyBlocked { max } => {
                format!("{label}: at most {} seats", grouped(*max as u64))
            }
            Problem::SeatNotANumber { typed } => {
                format!("{label}: “{typed}” is not a seat number; list numbers like 1, 2, 15")
            }
            Problem::NoSuchSeat { seat, seats } => {
                format!("Seat {seat} doesn't exist: this venue has seats 1–{seats}")
            }
            Problem::SeatTaken { seat } => {
                format!("{seat} was just taken by someone else: choose another")
            }
            Problem::SeatBlocked { seat } => format!("{seat} is not for sale"),
            Problem::NotTogether { quantity, within } => format!(
                "{label}: no {quantity} free seats side by side{within}; choose fewer, another \
                 section, or pick seats on the map"
            ),
            Problem::NoSeatChosen => format!("{label}: choose at least one seat on the map"),
            Problem::TooManyTickets { max } => format!("{label}: at most {max} per order"),
            Problem::NotEnoughLeft => format!("{label}: not that many are left; choose fewer"),
            Problem::CardDigits => format!("{label}: 16 digits, like 4242 4242 4242 4242"),
            Problem::CardMistyped => {
                format!("{label}: a digit is mistyped; check the number on your card")
            }
            Problem::UsernameCharacters => {
                format!("{label}: use only letters, digits, dots, dashes and underscores")
            }
            Problem::UsernameTaken => format!("{label}: this name is taken; choose another"),
            Problem::PasswordWeak => {
                format!("{label}: too easy to guess; mix letters with digits or other characters")
            }
            Problem::PasswordIsUsername => {
                format!("{label}: must not be your username")
            }
            Problem::EmailShape => {
                format!(
                    "{label}: use an address like name@example.org (one @, no spaces, no accented letters)"
                )
            }
            Problem::PasswordsDiffer => format!("{label}: type the same password twice"),
            Problem::Said(detail) => format!("{label}: {detail}"),
        }
    }
}

/// Returns the label people see for a form field (an input id), as the form shows it.
pub fn label(field: &str) -> &str {
    match field {
        "name" => "Event name",
        "description" => "Description",
        "date" => "Date",
        "time" => "Time",
        "time_zone" => "Time zone",
        "venue" => "Location name",
        "lat" => "Latitude",
        "lon" => "Longitude",
        "price" => "Price",
        "currency" => "Currency",
        "kind-ga" => "Tickets",
        "capacity" => "Quantity",
        "rows" => "Rows",
        "seats_per_row" => "Seats per row",
        "blocked" => "Blocked seats",
        "sections" => "Sections",
        "username" => "Username",
        "password" => "Password",
        "card_number" => "Card number",
        "seatmap" => "Seats",
        "quantity" => "Tickets",
        "together" => "Seats together",
        "reason" => "Reason",
        "opens_at" => "Sale opens",
        "admit_per_min" => "Visitors admitted per minute",
        "window_min" => "Minutes to buy",
        "email" => "Email",
        "who" => "Username or email",
        "confirm" => "Repeat the password",
        "image" => "Image",
        "image_alt" => "Image description",
        other => other,
    }
}

/// One field's error as shown: the input's id (empty for the form as a whole) and the message.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// The id of the input it belongs to (`price`), or empty for the whole form.
    pub field: String,
    /// The message, in the user's words with the field's label.
    pub message: String,
}

/// Every error of one form submission, in the order of the form's fields. A field shows one
/// message: the first added for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormErrors {
    errors: Vec<FieldError>,
}

impl FormErrors {
    /// No errors.
    pub fn new() -> FormErrors {
        FormErrors::default()
    }

    /// Adds `problem` for the input `field`, unless that field has a message already.
    pub fn add(&mut self, field: &str, problem: Problem) {
        if self.has(field) {
            return;
        }
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: problem.sentence(field),
        });
    }

    /// Adds a message about the whole form (wrong password, too many attempts...): listed in
    /// the summary, beside no field.
    pub fn add_form(&mut self, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: String::new(),
            message: message.into(),
        });
    }

    /// Returns `result`'s value, or adds its problem for `field` and returns `None`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, Problem>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(problem) => {
                self.add(field, problem);
                None
            }
        }
    }

    /// Adds what the API refused: a field error beside the form field `to_form` names (an API
    /// field it cannot place goes to the whole form), anything else as a message about the
    /// whole form.
    pub fn api(&mut self, e: &ApiError, to_form: impl Fn(&str) -> Option<&'static str>) {
        match e {
            ApiError::Invalid { field, detail } => match to_form(field) {
                Some(f) => self.add(f, Problem::Said(detail.clone())),
                None => self.add_form(capitalized(detail)),
            },
            other => self.add_form(capitalized(&super::message_for(other))),
        }
    }

    /// Adds `other`'s messages after these (a field keeps its first message).
    pub fn append(&mut self, other: FormErrors) {
        for error in other.errors {
            if error.field.is_empty() || !self.has(&error.field) {
                self.errors.push(error);
            }
        }
    }

    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many messages there are.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether `field` has a message.
    pub fn has(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }

    /// The message of `field`, if it has one.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    /// The messages, in the order they were added.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.errors.iter()
    }
}

/// A number with its thousands grouped for reading: `1,000,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// The first letter in upper case (API details start in lower case).
fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Checks free text: required (after trimming) or not, at most `max` characters, no control
/// or text-direction characters (line breaks allowed when `multiline`), as the API checks it.
pub fn text(value: &str, required: bool, max: usize, multiline: bool) -> Result<(), Problem> {
    let trimmed = value.trim();
    if required && trimmed.is_empty() {
        return Err(Problem::Missing);
    }
    if trimmed.chars().count() > max {
        return Err(Problem::TooLong { max });
    }
    if !multiline && trimmed.contains(['\n', '\r']) {
        return Err(Problem::OneLine);
    }
    crate::text::check_text("", value, multiline).map_err(|_| Problem::ControlCharacters)
}

/// Parses a decimal number (a decimal comma allowed) within `min..=max`.
pub fn number(
    value: &str,
    example: &'static str,
    (min, max): (f64, f64),
    shown: (&'static str, &'static str),
) -> Result<f64, Problem> {
    if value.trim().is_empty() {
        return Err(Problem::Missing);
    }
    let n = value
        .trim()
        .replace(',', ".")
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or(Problem::NotANumber { example })?;
    if !(min..=max).contains(&n) {
        return Err(Problem::OutOfRange {
            min: shown.0,
            max: shown.1,
        });
    }
    Ok(n)
}

/// Parses a whole number within `min..=max`.
pub fn whole(value: &str, min: u32, max: u32) -> Result<u32, Problem> {
    let out = || Problem::WholeNumber {
        min: u64::from(min),
        max: u64::from(max),
    };
    if value.trim().is_empty() {
        return Err(Problem::Missing);
    }
    let n: u32 = value.trim().parse().map_err(|_| out())?;
    if !(min..=max).contains(&n) {
        return Err(out());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every bad field of one submission is kept, in order, each under its own input.
    #[test]
    fn collects_every_field_error_in_order() {
        let mut errors = FormErrors::new();
        errors.add("price", Problem::NotANumber { example: "12.50" });
        errors.add("rows", Problem::WholeNumber { min: 1, max: 96 });
        errors.add(
            "lat",
            Problem::OutOfRange {
                min: "−90",
                max: "90",
            },
        );
        assert_eq!(errors.len(), 3);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["price", "rows", "lat"]);
        assert_eq!(errors.get("price"), Some("Price: use a number like 12.50"));
        assert_eq!(
            errors.get("rows"),
            Some("Rows: a whole number from 1 to 96")
        );
        assert!(errors.has("lat") && !errors.has("lon"));
    }

    // A field shows one message: the first found (the most basic problem).
    #[test]
    fn keeps_the_first_message_of_a_field() {
        let mut errors = FormErrors::new();
        errors.add("password", Problem::TooShort { min: 8 });
        errors.add("password", Problem::PasswordWeak);
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors.get("password"),
            Some("Password: at least 8 characters")
        );
    }

    // `check` passes values through and keeps problems.
    #[test]
    fn check_keeps_values_and_problems() {
        let mut errors = FormErrors::new();
        assert_eq!(errors.check("rows", whole("12", 1, 100)), Some(12));
        assert_eq!(errors.check("rows", whole("x", 1, 100)), None);
        assert_eq!(errors.check("capacity", whole("0", 1, 100)), None);
        assert_eq!(errors.len(), 2);
        assert!(!errors.is_empty());
    }

    // The wording the issue asks for, word for word, and never an internal name or range.
    #[test]
    fn says_it_in_the_users_words() {
        assert_eq!(
            Problem::NoSuchSeat {
                seat: 999,
                seats: 96
            }
            .sentence("blocked"),
            "Seat 999 doesn't exist: this venue has seats 1–96"
        );
        assert_eq!(
            Problem::CardDigits.sentence("card_number"),
            "Card number: 16 digits, like 4242 4242 4242 4242"
        );
        assert_eq!(
            Problem::NotANumber { example: "12.50" }.sentence("price"),
            "Price: use a number like 12.50"
        );
        let all = [
            Problem::Missing,
            Problem::WholeNumber { min: 1, max: 10 },
            Problem::TooManySeats { max: 10 },
            Problem::UsernameTaken,
        ];
        for field in ["seats_per_row", "card_number", "kind-ga", "rows"] {
            for p in &all {
                let s = p.sentence(field);
                assert!(!s.contains('_') && !s.contains("..="), "{s}");
            }
        }
    }

    // The API's refusals land beside the field they name, or on the whole form.
    #[test]
    fn places_api_errors() {
        let mut errors = FormErrors::new();
        let to_form = |f: &str| (f == "venue.name").then_some("venue");
        errors.api(
            &ApiError::invalid("venue.name", "must not be empty"),
            to_form,
        );
        errors.api(&ApiError::invalid("per_customer_max", "too big"), to_form);
        errors.api(&ApiError::UsernameTaken, to_form);
        assert_eq!(
            errors.get("venue"),
            Some("Location name: must not be empty")
        );
        let whole_form: Vec<&str> = errors
            .iter()
            .filter(|e| e.field.is_empty())
            .map(|e| e.message.as_str())
            .collect();
        assert_eq!(whole_form, ["Too big", "The username is already taken"]);
    }

    // The parsers of the form's numbers: both sides of each limit.
    #[test]
    fn parses_numbers_within_their_limits() {
        assert_eq!(whole("1", 1, 5), Ok(1));
        assert_eq!(whole("5", 1, 5), Ok(5));
        assert!(whole("6", 1, 5).is_err() && whole("0", 1, 5).is_err());
        assert_eq!(whole("", 1, 5), Err(Problem::Missing));
        let lat = |v| number(v, "48.2", (-90.0, 90.0), ("−90", "90"));
        assert_eq!(lat("90"), Ok(90.0));
        assert_eq!(lat("48,5"), Ok(48.5));
        assert!(matches!(lat("90.1"), Err(Problem::OutOfRange { .. })));
        assert!(matches!(lat("north"), Err(Problem::NotANumber { .. })));
        assert_eq!(text(" ", true, 10, false), Err(Problem::Missing));
        assert_eq!(
            text("abc", true, 2, false),
            Err(Problem::TooLong { max: 2 })
        );
        assert_eq!(
            text("a\u{202E}b", true, 10, false),
            Err(Problem::ControlCharacters)
        );
        assert!(text("a\nb", false, 10, true).is_ok());
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(text("a\nb", false, 10, false), Err(Problem::OneLine));
    }
}
