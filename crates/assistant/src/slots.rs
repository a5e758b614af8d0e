//! Slots written with numbers and fixed phrases: clock times (taken out so "8 pm" is no
//! quantity), ticket numbers ("ticket 12", "Ticket Nr. 12", "#12"), seat numbers ("seats 48
//! and 49", "Plätze 12 bis 14"), row numbers (ignored), "best available" and "together", and the
//! quantity ("2 tickets", "zwei Karten", "a pair", "book 3", "for 2 people"). Which words play
//! which part is the language data's; the rules here only say where a number may stand.

use crate::lang::LangData;
use crate::text::Kind;
use crate::understand::{Hints, Role, SEATS_PER_MESSAGE_MAX, Slots, Tok};

/// The highest quantity read from a bare number after a verb ("book 3"); larger bare numbers
/// are more likely something else. A number before a ticket noun has no such cap.
const BARE_QUANTITY_MAX: u32 = 100;
/// The highest seat number read.
const SEAT_NUMBER_MAX: u32 = 1_000_000;
/// Tokens looked ahead from a number for its noun ("2 more vip tickets").
const NOUN_LOOKAHEAD_MAX: usize = 4;

fn word_at(toks: &[Tok], i: usize) -> Option<&str> {
    toks.get(i).and_then(Tok::free_word)
}

/// Returns the position after the markers at `i` ("no", "nr", "number").
fn skip_markers(toks: &[Tok], data: &LangData, mut i: usize) -> usize {
    while word_at(toks, i).is_some_and(|w| data.number_markers.contains(w))
        || toks
            .get(i)
            .is_some_and(|t| t.kind == Kind::Dash && t.role == Role::Free)
    {
        i += 1;
    }
    i
}

/// Takes out clock times, ticket, seat and row numbers.
pub(crate) fn extract_numbers(toks: &mut [Tok], data: &LangData, slots: &mut Slots) {
    mark_times(toks, data);
    mark_rows(toks, data);
    extract_seats(toks, data, slots);
    extract_ticket(toks, data, slots);
}

fn mark_times(toks: &mut [Tok], data: &LangData) {
    for i in 0..toks.len() {
        if toks[i].kind == Kind::Time && toks[i].role == Role::Free {
            toks[i].role = Role::Time;
            if word_at(toks, i + 1).is_some_and(|w| data.time_words.contains(w)) {
                toks[i + 1].role = Role::Time;
            }
        }
        let Some(value) = toks[i].free_number() else {
            continue;
        };
        if value <= 24 && word_at(toks, i + 1).is_some_and(|w| data.time_words.contains(w)) {
            toks[i].role = Role::Time;
            toks[i + 1].role = Role::Time;
        }
    }
}

fn mark_rows(toks: &mut [Tok], data: &LangData) {
    for i in 0..toks.len() {
        if word_at(toks, i).is_some_and(|w| data.row_nouns.contains(w)) {
            let at = skip_markers(toks, data, i + 1);
            if toks.get(at).and_then(Tok::free_number).is_some() {
                for tok in &mut toks[i + 1..=at] {
                    tok.role = Role::Row;
                }
            }
        }
    }
}

/// "seat 48", "seats 48 and 49", "seats 48, 49, 50", "Plätze 12 bis 14", "seat no. 7".
fn extract_seats(toks: &mut [Tok], data: &LangData, slots: &mut Slots) {
    let mut i = 0;
    while i < toks.len() {
        let is_noun = word_at(toks, i).is_some_and(|w| data.seat_nouns.contains(w));
        let at = skip_markers(toks, data, i + 1);
        let first = toks.get(at).filter(|_| is_noun).and_then(seat_number);
        let Some(first) = first else {
            i += 1;
            continue;
        };
        for tok in &mut toks[i + 1..at] {
            tok.role = Role::Marker;
        }
        toks[at].role = Role::Seat;
        push_seat(slots, first);
        let mut last = first;
        let mut j = at + 1;
        loop {
            let range = toks.get(j).is_some_and(|t| {
                t.role == Role::Free
                    && (t.kind == Kind::Dash
                        || t.free_word()
                            .is_some_and(|w| data.range_connectors.contains(w)))
            });
            let list = word_at(toks, j).is_some_and(|w| data.list_connectors.contains(w));
            let (next_at, is_range) = if range || list {
                (j + 1, range && !list)
            } else {
                (j, false)
            };
            let Some(next) = toks.get(next_at).and_then(seat_number) else {
                break;
            };
            // "seat 48 and 2 tickets": a number before a ticket noun is a quantity.
            if word_at(toks, next_at + 1).is_some_and(|w| data.quantity_nouns.contains(w)) {
                break;
            }
            if is_range && next > last {
                for seat in last.saturating_add(1)..=next {
                    push_seat(slots, seat);
                    if slots.seats.len() >= SEATS_PER_MESSAGE_MAX {
                        break;
                    }
                }
            } else {
                push_seat(slots, next);
            }
            for tok in &mut toks[j..next_at] {
                tok.role = Role::Marker;
            }
            toks[next_at].role = Role::Seat;
            last = next;
            j = next_at + 1;
        }
        i = j;
    }
}

fn seat_number(tok: &Tok) -> Option<u32> {
    match tok.kind {
        Kind::Number {
            value: value @ 1..=SEAT_NUMBER_MAX,
            ..
        } if tok.role == Role::Free => Some(value),
        _ => None,
    }
}

fn push_seat(slots: &mut Slots, seat: u32) {
    if slots.seats.len() < SEATS_PER_MESSAGE_MAX && !slots.seats.contains(&seat) {
        slots.seats.push(seat);
    }
}

/// "ticket 12", "ticket #12", "Ticket Nr. 12", "ticket number 12", or "#12" alone.
fn extract_ticket(toks: &mut [Tok], data: &LangData, slots: &mut Slots) {
    for i in 0..toks.len() {
        if slots.ticket.is_some() {
            return;
        }
        let is_noun = word_at(toks, i).is_some_and(|w| data.ticket_nouns.contains(w));
        if is_noun {
            let at = skip_markers(toks, data, i + 1);
            if let Some(value) = toks.get(at).and_then(Tok::free_number) {
                let spelled = matches!(toks[at].kind, Kind::Number { spelled: true, .. });
                // "tickets 2" is odd, but "ticket 2 and 3 for" with a spelled "two" reads as
                // a count: only digits are ticket numbers.
                if !spelled
                    && !word_at(toks, at + 1).is_some_and(|w| data.quantity_nouns.contains(w))
                {
                    for tok in &mut toks[i + 1..at] {
                        tok.role = Role::Marker;
                    }
                    toks[at].role = Role::Ticket;
                    slots.ticket = Some(u64::from(value));
                    continue;
                }
            }
        }
        if let Kind::Number {
            value, hash: true, ..
        } = toks[i].kind
            && toks[i].role == Role::Free
        {
            toks[i].role = Role::Ticket;
            slots.ticket = Some(u64::from(value));
        }
    }
}

/// Sets `best_available` and `together` from their phrases.
pub(crate) fn extract_flags(toks: &mut [Tok], data: &LangData, slots: &mut Slots) {
    if mark_phrases(toks, &data.best_available) {
        slots.best_available = true;
    }
    if mark_phrases(toks, &data.together) {
        slots.together = true;
    }
}

/// Marks every occurrence of the phrases as flag words; returns whether any occurred.
fn mark_phrases(toks: &mut [Tok], phrases: &[Vec<String>]) -> bool {
    let mut found = false;
    for phrase in phrases {
        for start in 0..toks.len() {
            let fits = phrase.len() <= toks.len() - start
                && phrase
                    .iter()
                    .zip(&toks[start..])
                    .all(|(w, t)| t.free_word() == Some(w.as_str()));
            if fits {
                for tok in &mut toks[start..start + phrase.len()] {
                    tok.role = Role::Flag;
                }
                found = true;
            }
        }
    }
    found
}

/// Returns whether a ticket noun follows `i`, past event words and at most one other word
/// ("2 tickets", "2 beethoven tickets", "2 more tickets", "a couple of tickets").
fn noun_follows(toks: &[Tok], data: &LangData, i: usize) -> bool {
    let mut skipped = 0;
    for tok in toks.iter().skip(i + 1).take(NOUN_LOOKAHEAD_MAX) {
        match tok.role {
            Role::Event | Role::Venue | Role::City => continue,
            Role::Free | Role::Flag if tok.kind == Kind::Word => {
                if data.quantity_nouns.contains(&tok.text) {
                    return true;
                }
                if skipped == 1 {
                    return false;
                }
                skipped += 1;
            }
            _ => return false,
        }
    }
    false
}

/// Takes the quantity: a number before a ticket noun, an article before one ("a ticket", only
/// kept for bookings), a number after a booking verb or before "for", or a quantity word.
/// Counts joined by "and" add up ("2 adults and 1 child").
pub(crate) fn extract_quantity(
    toks: &mut [Tok],
    data: &LangData,
    slots: &mut Slots,
    hints: &mut Hints,
) {
    for i in 0..toks.len() {
        if let Some(total) = slots.quantity {
            let joined = i
                .checked_sub(1)
                .and_then(|b| word_at(toks, b))
                .is_some_and(|w| data.list_connectors.contains(w));
            if let Some(value) = toks[i].free_number()
                && joined
                && !hints.article_quantity
                && noun_follows(toks, data, i)
            {
                toks[i].role = Role::Quantity;
                slots.quantity = Some(total.saturating_add(value));
            }
            continue;
        }
        if let Some(word) = toks[i].free_word() {
            if data.one_words.contains(word) && noun_follows(toks, data, i) {
                toks[i].role = Role::Quantity;
                slots.quantity = Some(1);
                hints.article_quantity = true;
            }
            continue;
        }
        let Some(value) = toks[i].free_number() else {
            continue;
        };
        let Kind::Number { ordinal, .. } = toks[i].kind else {
            continue;
        };
        if value == 0 || ordinal {
            continue;
        }
        let before = i.checked_sub(1).and_then(|b| word_at(toks, b));
        let after = word_at(toks, i + 1);
        let is_quantity = toks[i].quantity_word
            || noun_follows(toks, data, i)
            || value <= BARE_QUANTITY_MAX
                && (before.is_some_and(|w| data.quantity_before.contains(w))
                    || after.is_some_and(|w| data.quantity_after.contains(w)));
        if is_quantity {
            toks[i].role = Role::Quantity;
            slots.quantity = Some(value);
        }
    }
    if hints.number.is_none() {
        hints.number = toks.iter().find_map(Tok::free_number);
    }
}
