//! Dates: finds the date expressions of a message and turns the first one (or a range joined by
//! "to", "and", "bis", "-") into `date_from` … `date_to`, by the README's table, relative to the
//! day `now_ms` falls on (UTC). Relative phrases ("this weekend", "nächste Woche") come from the
//! language data; weekdays mean their next occurrence (today included); a month means its next
//! occurrence (the current month included, from its first day); a day and month without a year
//! mean their next occurrence (today included).

use time::{Date, Duration, Month, OffsetDateTime};

use crate::lang::{LangData, Relative};
use crate::text::Kind;
use crate::understand::{Role, Slots, Tok};

/// Years searched for a day-month's next occurrence (enough to reach a 29 February).
const OCCURRENCE_YEARS_MAX: i32 = 8;

/// Returns the UTC day `now_ms` falls on (the Unix epoch's day if `now_ms` is out of range).
pub(crate) fn today(now_ms: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1_000))
        .map(|t| t.date())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH.date())
}

fn add_days(date: Date, days: i64) -> Option<Date> {
    date.checked_add(Duration::days(days))
}

fn month_of(number: u8) -> Option<Month> {
    Month::try_from(number).ok()
}

fn last_of_month(year: i32, month: Month) -> Option<Date> {
    Date::from_calendar_date(year, month, month.length(year)).ok()
}

/// Returns the range a relative phrase means.
fn relative(kind: Relative, today: Date) -> Option<(Date, Date)> {
    let weekday = i64::from(today.weekday().number_days_from_monday());
    // This week's Saturday (yesterday, on a Sunday).
    let saturday = add_days(today, 5 - weekday)?;
    let range = match kind {
        Relative::Today => (today, today),
        Relative::Tomorrow => (add_days(today, 1)?, add_days(today, 1)?),
        Relative::DayAfterTomorrow => (add_days(today, 2)?, add_days(today, 2)?),
        Relative::ThisWeekend => (saturday.max(today), add_days(saturday, 1)?),
        Relative::NextWeekend => (add_days(saturday, 7)?, add_days(saturday, 8)?),
        Relative::ThisWeek => (today, add_days(today, 6 - weekday)?),
        Relative::NextWeek => (
            add_days(today, 7 - weekday)?,
            add_days(today, 13 - weekday)?,
        ),
        Relative::ThisMonth => (today, last_of_month(today.year(), today.month())?),
        Relative::NextMonth => {
            let month = today.month().next();
            let year = if month == Month::January {
                today.year().checked_add(1)?
            } else {
                today.year()
            };
            (
                Date::from_calendar_date(year, month, 1).ok()?,
                last_of_month(year, month)?,
            )
        }
    };
    Some(range)
}

/// Returns the next occurrence of a weekday (0 = Monday), today included.
fn next_weekday(today: Date, weekday: u8) -> Option<Date> {
    let now = i64::from(today.weekday().number_days_from_monday());
    add_days(today, (i64::from(weekday) - now).rem_euclid(7))
}

/// Returns the next occurrence of a month (the current one included) as its whole range.
fn next_month(today: Date, month: u8, year: Option<i32>) -> Option<(Date, Date)> {
    let month_value = month_of(month)?;
    let year = match year {
        Some(year) => year,
        None if month >= u8::from(today.month()) => today.year(),
        None => today.year().checked_add(1)?,
    };
    Some((
        Date::from_calendar_date(year, month_value, 1).ok()?,
        last_of_month(year, month_value)?,
    ))
}

/// Returns a day-month in the given year, or its next occurrence from `from` (included).
fn day_month(from: Date, day: u8, month: u8, year: Option<i32>) -> Option<Date> {
    let month = month_of(month)?;
    if let Some(year) = year {
        return Date::from_calendar_date(year, month, day).ok();
    }
    (0..OCCURRENCE_YEARS_MAX)
        .filter_map(|offset| from.year().checked_add(offset))
        .filter_map(|year| Date::from_calendar_date(year, month, day).ok())
        .find(|date| *date >= from)
}

/// One date expression found: the tokens it spans and its range.
#[derive(Clone, Copy, Debug)]
struct Atom {
    start: usize,
    end: usize,
    from: Date,
    to: Date,
    /// A day-month without a year (its year may follow the range's start).
    yearless_day: Option<(u8, u8)>,
    /// A weekday ("Saturday"): a date right after it ("Saturday 23 January") says more.
    weekday: bool,
}

/// The parser's view of the tokens.
struct Scan<'a> {
    toks: &'a [Tok],
    data: &'a LangData,
    today: Date,
}

impl Scan<'_> {
    fn usable(&self, i: usize) -> bool {
        self.toks
            .get(i)
            .is_some_and(|t| t.role == Role::Free && !t.no_date)
    }

    fn word(&self, i: usize) -> Option<&str> {
        if !self.usable(i) {
            return None;
        }
        self.toks[i].free_word()
    }

    /// Returns a day of the month (1–31) at `i`.
    fn day(&self, i: usize) -> Option<u8> {
        if !self.usable(i) {
            return None;
        }
        match self.toks[i].kind {
            Kind::Number {
                value: value @ 1..=31,
                hash: false,
                ..
            } => u8::try_from(value).ok(),
            _ => None,
        }
    }

    /// Returns a year (1900–2200) at `i`.
    fn year(&self, i: usize) -> Option<i32> {
        if !self.usable(i) {
            return None;
        }
        match self.toks[i].kind {
            Kind::Number {
                value: value @ 1900..=2200,
                hash: false,
                ordinal: false,
                ..
            } => i32::try_from(value).ok(),
            _ => None,
        }
    }

    fn is_filler(&self, i: usize) -> bool {
        self.word(i)
            .is_some_and(|w| self.data.date_fillers.contains(w))
    }

    fn is_connector(&self, i: usize) -> bool {
        self.usable(i)
            && (self.toks[i].kind == Kind::Dash
                || self.toks[i]
                    .free_word()
                    .is_some_and(|w| self.data.range_connectors.contains(w)))
    }

    fn skip_fillers(&self, mut i: usize) -> usize {
        while self.is_filler(i) {
            i += 1;
        }
        i
    }

    /// Returns the month named at `i`, if it reads as a month here ("may" only next to a day
    /// or after "in").
    fn month(&self, i: usize) -> Option<u8> {
        let word = self.word(i)?;
        let month = *self.data.months.get(word)?;
        if !self.data.months_need_context.contains(word) {
            return Some(month);
        }
        let before = i.checked_sub(1);
        let context = before
            .and_then(|b| self.word(b))
            .is_some_and(|w| self.data.month_context.contains(w))
            || before.and_then(|b| self.day(b)).is_some()
            || self.day(i + 1).is_some()
            || before.is_some_and(|b| {
                self.is_filler(b) && b.checked_sub(1).and_then(|bb| self.day(bb)).is_some()
            });
        context.then_some(month)
    }

    /// Returns the year right after `i`, and where the expression ends.
    fn year_after(&self, end: usize) -> (Option<i32>, usize) {
        match self.year(end) {
            Some(year) => (Some(year), end + 1),
            None => (None, end),
        }
    }

    fn single(
        &self,
        start: usize,
        end: usize,
        day: u8,
        month: u8,
        year: Option<i32>,
    ) -> Option<Atom> {
        let date = day_month(self.today, day, month, year)?;
        let yearless_day = year.is_none().then_some((day, month));
        Some(Atom {
            start,
            end,
            from: date,
            to: date,
            yearless_day,
            weekday: false,
        })
    }

    fn range(
        &self,
        start: usize,
        end: usize,
        days: (u8, u8),
        month: u8,
        year: Option<i32>,
    ) -> Option<Atom> {
        let from = day_month(self.today, days.0, month, year)?;
        let mut to = day_month(from, days.1, month, Some(from.year()))?;
        if to < from {
            to = day_month(from, days.1, month, None)?;
        }
        Some(Atom {
            start,
            end,
            from,
            to,
            yearless_day: None,
            weekday: false,
        })
    }

    /// "12 March", "12th of March", "3 and 5 May", "3.-5. Mai" starting at a day number.
    fn day_first(&self, i: usize) -> Option<Atom> {
        let day = self.day(i)?;
        let after = self.skip_fillers(i + 1);
        if let Some(month) = self.month(after) {
            let (year, end) = self.year_after(after + 1);
            return self.single(i, end, day, month, year);
        }
        if !self.is_connector(after) {
            return None;
        }
        let second_at = self.skip_fillers(after + 1);
        let second = self.day(second_at)?;
        let month_at = self.skip_fillers(second_at + 1);
        let month = self.month(month_at)?;
        let (year, end) = self.year_after(month_at + 1);
        self.range(i, end, (day, second), month, year)
    }

    /// "March 12", "March 12th", "May 3-5", "März 2027", "January".
    fn month_first(&self, i: usize) -> Option<Atom> {
        let month = self.month(i)?;
        let at = self.skip_fillers(i + 1);
        if let Some(day) = self.day(at) {
            if self.is_connector(at + 1)
                && let Some(second) = self.day(at + 2)
            {
                let (year, end) = self.year_after(at + 3);
                return self.range(i, end, (day, second), month, year);
            }
            let (year, end) = self.year_after(at + 1);
            return self.single(i, end, day, month, year);
        }
        let (year, end) = self.year_after(i + 1);
        let (from, to) = next_month(self.today, month, year)?;
        Some(Atom {
            start: i,
            end,
            from,
            to,
            yearless_day: None,
            weekday: false,
        })
    }

    fn relative_phrase(&self, i: usize) -> Option<Atom> {
        for (phrase, kind) in &self.data.relative {
            let matches = phrase
                .iter()
                .enumerate()
                .all(|(k, w)| self.word(i + k) == Some(w.as_str()));
            if matches {
                let (from, to) = relative(*kind, self.today)?;
                return Some(Atom {
                    start: i,
                    end: i + phrase.len(),
                    from,
                    to,
                    yearless_day: None,
                    weekday: false,
                });
            }
        }
        None
    }

    fn atom_at(&self, i: usize) -> Option<Atom> {
        if !self.usable(i) {
            return None;
        }
        if let Some(atom) = self.relative_phrase(i) {
            return Some(atom);
        }
        if let Kind::Date { day, month, year } = self.toks[i].kind {
            return self.single(i, i + 1, day, month, year);
        }
        if let Some(atom) = self.day_first(i) {
            return Some(atom);
        }
        if let Some(weekday) = self.word(i).and_then(|w| self.data.weekdays.get(w)) {
            let date = next_weekday(self.today, *weekday)?;
            return Some(Atom {
                start: i,
                end: i + 1,
                from: date,
                to: date,
                yearless_day: None,
                weekday: true,
            });
        }
        self.month_first(i).or_else(|| self.bare_day(i))
    }

    /// "on the 15th", "am 15.": an ordinal day after a filler, in this month if it is still
    /// ahead (today included), else in the next month that has it.
    fn bare_day(&self, i: usize) -> Option<Atom> {
        // Spelled ordinals alone ("the second one") are more often something else.
        let Kind::Number {
            ordinal: true,
            spelled: false,
            ..
        } = self.toks.get(i)?.kind
        else {
            return None;
        };
        let day = self.day(i)?;
        if !i.checked_sub(1).is_some_and(|b| self.is_filler(b)) {
            return None;
        }
        let mut month_start = self.today.replace_day(1).ok()?;
        for _ in 0..12 {
            if let Ok(date) = month_start.replace_day(day)
                && date >= self.today
            {
                return Some(Atom {
                    start: i,
                    end: i + 1,
                    from: date,
                    to: date,
                    yearless_day: None,
                    weekday: false,
                });
            }
            month_start = add_days(last_of_month(month_start.year(), month_start.month())?, 1)?;
        }
        None
    }

    /// Returns the date expressions, left to right.
    fn atoms(&self) -> Vec<Atom> {
        let mut atoms = Vec::new();
        let mut i = 0;
        while i < self.toks.len() {
            match self.atom_at(i) {
                Some(atom) => {
                    i = atom.end.max(i + 1);
                    atoms.push(atom);
                }
                None => i += 1,
            }
        }
        atoms
    }

    /// Returns whether only connectors and fillers (and at least one connector) lie between.
    fn joined(&self, end: usize, start: usize) -> bool {
        (end..start).any(|i| self.is_connector(i))
            && (end..start).all(|i| self.is_connector(i) || self.is_filler(i))
    }
}

/// Finds the message's dates, sets `date_from` and `date_to`, and marks their tokens.
pub(crate) fn extract(toks: &mut [Tok], data: &LangData, today: Date, slots: &mut Slots) {
    block_phrases(toks, data);
    let scan = Scan { toks, data, today };
    let atoms = scan.atoms();
    let Some(mut first) = atoms.first().copied() else {
        return;
    };
    let mut span = (first.start, first.end);
    let mut rest = &atoms[1..];
    // "Saturday 23 January", "Samstag, den 23.1.": the date says more than the weekday.
    if let Some(next) = rest.first()
        && first.weekday
        && (first.end..next.start).all(|i| scan.is_filler(i))
    {
        first = *next;
        span.1 = next.end;
        rest = &rest[1..];
    }
    let mut range = (first.from, first.to);
    if let Some(second) = rest.first()
        && scan.joined(first.end, second.start)
    {
        let mut to = second.to;
        // "30 Dec to 2 Jan": the second day is in the year after the first.
        if to < range.0
            && let Some((day, month)) = second.yearless_day
        {
            to = day_month(range.0, day, month, None).unwrap_or(to);
        }
        if to >= range.0 {
            range.1 = to;
            span.1 = second.end;
        }
    }
    // An opener before the expression ("between", "from", "zwischen") belongs to it.
    if span.0 > 0
        && scan
            .word(span.0 - 1)
            .is_some_and(|w| data.range_openers.contains(w))
    {
        span.0 -= 1;
    }
    for tok in &mut toks[span.0..span.1] {
        tok.role = Role::Date;
    }
    slots.date_from = Some(range.0);
    slots.date_to = Some(range.1);
}

/// Marks tokens of phrases that only look like dates ("guten morgen" is no tomorrow).
fn block_phrases(toks: &mut [Tok], data: &LangData) {
    for phrase in &data.date_blockers {
        for start in 0..toks.len() {
            let fits = phrase.len() <= toks.len() - start
                && phrase.iter().zip(&toks[start..]).all(|(w, t)| t.text == *w);
            if fits {
                for tok in &mut toks[start..start + phrase.len()] {
                    tok.no_date = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::catalog::Catalog;
    use crate::understand::understand;

    const CATALOG: &str = include_str!("../eval/catalog.json");
    /// 2027-01-06T10:00:00Z, a Wednesday.
    const NOW_MS: i64 = 1_799_229_600_000;

    fn range(text: &str) -> (String, String) {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        let slots = understand(text, &catalog, NOW_MS).slots;
        let show = |d: Option<time::Date>| d.map(crate::format_date).unwrap_or_default();
        (show(slots.date_from), show(slots.date_to))
    }

    fn check(text: &str, from: &str, to: &str) {
        assert_eq!(range(text), (from.to_string(), to.to_string()), "{text}");
    }

    /// Every row of the README's date table, in English and German.
    #[test]
    fn readme_date_table() {
        check("events today", "2027-01-06", "2027-01-06");
        check("was läuft heute", "2027-01-06", "2027-01-06");
        check("events tomorrow", "2027-01-07", "2027-01-07");
        check("was ist morgen los", "2027-01-07", "2027-01-07");
        check("anything this weekend", "2027-01-09", "2027-01-10");
        check("was läuft dieses wochenende", "2027-01-09", "2027-01-10");
        check("was läuft am wochenende", "2027-01-09", "2027-01-10");
        check("events next weekend", "2027-01-16", "2027-01-17");
        check("konzerte nächstes wochenende", "2027-01-16", "2027-01-17");
        check("events this week", "2027-01-06", "2027-01-10");
        check("was läuft diese woche", "2027-01-06", "2027-01-10");
        check("events next week", "2027-01-11", "2027-01-17");
        check("was läuft nächste woche", "2027-01-11", "2027-01-17");
        for text in [
            "friday",
            "next friday",
            "this friday",
            "on friday",
            "am freitag",
            "nächsten freitag",
            "diesen freitag",
        ] {
            check(&format!("events {text}"), "2027-01-08", "2027-01-08");
        }
        check("events on wednesday", "2027-01-06", "2027-01-06");
        check("what's on in january", "2027-01-01", "2027-01-31");
        check("was läuft im januar", "2027-01-01", "2027-01-31");
        check("events in march", "2027-03-01", "2027-03-31");
        check("events next month", "2027-02-01", "2027-02-28");
        check("was läuft nächsten monat", "2027-02-01", "2027-02-28");
        check("events this month", "2027-01-06", "2027-01-31");
        check("was läuft diesen monat", "2027-01-06", "2027-01-31");
        check("events between 3 and 5 May", "2027-05-03", "2027-05-05");
        check("events zwischen 3. und 5. Mai", "2027-05-03", "2027-05-05");
        check("events from 3 to 5 May", "2027-05-03", "2027-05-05");
        for text in [
            "12 March",
            "March 12",
            "March 12th",
            "12.03.",
            "12.3.2027",
            "2027-03-12",
            "am 12. März",
            "the 12th of march",
        ] {
            check(&format!("events on {text}"), "2027-03-12", "2027-03-12");
        }
    }

    /// Ranges written other ways, year roll-over, past days and "may" the verb.
    #[test]
    fn other_date_forms() {
        check("events from May 3 to May 5", "2027-05-03", "2027-05-05");
        check("events May 3-5", "2027-05-03", "2027-05-05");
        check("vom 3. bis 5. Mai", "2027-05-03", "2027-05-05");
        check("events 3.-5. Mai", "2027-05-03", "2027-05-05");
        check("from 30 december to 2 january", "2027-12-30", "2028-01-02");
        // A day already past this year means next year's.
        check("events on 2 january", "2028-01-02", "2028-01-02");
        check("events on 6 january", "2027-01-06", "2027-01-06");
        check("events in may", "2027-05-01", "2027-05-31");
        check("may i have two tickets", "", "");
        check("guten morgen", "", "");
        check("events from today to friday", "2027-01-06", "2027-01-08");
        check("events on 29 february", "2028-02-29", "2028-02-29");
        check("events on 31.02.", "", "");
        check("events on saturday 23 january", "2027-01-23", "2027-01-23");
        check("events on the 15th", "2027-01-15", "2027-01-15");
        check("events on the 3rd", "2027-02-03", "2027-02-03");
        check("was läuft am 31.", "2027-01-31", "2027-01-31");
        check("ich möchte 2.", "", "");
        check("events on the first of march", "2027-03-01", "2027-03-01");
        check("was läuft am ersten märz", "2027-03-01", "2027-03-01");
    }
}
