//! Intent classification. The message becomes a cue stream — its words, with slot tokens
//! replaced by placeholders (`@event`, `@city`, `@venue`, `@date`, `@num`, `@time`) — and every
//! cue pattern of the language that matches adds its weight to its intent. The slots add a
//! little evidence of their own (a quantity suggests booking, a bare event name asks about the
//! event, a place or date without an event suggests a search). The highest score wins (ties go
//! to the earlier intent of [`Intent::ALL`]); below [`INTENT_SCORE_MIN`] it is `unknown`; a
//! greeting, yes or no gives way to a real request made in the same breath.

use crate::lang::{GAP_TOKENS_MAX, LangData, Pattern, PatternToken};
use crate::text::Kind;
use crate::understand::{Hints, Intent, Role, Slots, Tok};

/// The least score that names an intent; less is `unknown`.
pub const INTENT_SCORE_MIN: f32 = 1.0;
/// The score a request needs to win over a greeting, "yes" or "no" in the same message (it
/// must also score higher than them).
const REQUEST_OVER_REPLY_MIN: f32 = 1.5;
/// Evidence against asking for help when the message names an event, a place or a date
/// ("was kann ich morgen machen" looks for events).
const HELP_WITH_SLOTS_PENALTY: f32 = 3.0;

/// Evidence the slots give, per intent.
const PRIOR_QUANTITY: f32 = 1.0;
const PRIOR_ARTICLE_QUANTITY: f32 = 0.5;
const PRIOR_SEATS: f32 = 0.8;
const PRIOR_FLAGS: f32 = 1.0;
const PRIOR_TICKET: f32 = 0.7;
const PRIOR_EVENT: f32 = 1.0;
const PRIOR_PLACE_OR_DATE: f32 = 1.0;
const PRIOR_PLACE_OR_DATE_WITH_EVENT: f32 = 0.3;

/// Returns the cue stream: words, and one placeholder per run of slot tokens.
fn cue_stream(toks: &[Tok]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(toks.len());
    for tok in toks {
        let item = match tok.role {
            Role::Free | Role::Flag => match tok.kind {
                Kind::Word => tok.text.as_str(),
                Kind::Number { .. } => "@num",
                Kind::Date { .. } => "@date",
                Kind::Time => "@time",
                Kind::Dash => continue,
            },
            Role::Date => "@date",
            Role::Time => "@time",
            Role::Quantity | Role::Seat | Role::Ticket | Role::Row => "@num",
            Role::City => "@city",
            Role::Venue => "@venue",
            Role::Event => "@event",
            Role::Marker => continue,
        };
        if item.starts_with('@') && out.last() == Some(&item) {
            continue;
        }
        out.push(item);
    }
    out
}

/// Returns whether a part of a pattern occurs in the stream.
fn part_matches(part: &[PatternToken], stream: &[&str]) -> bool {
    // reach[i]: the part's prefix matched so far can end right before stream position i.
    let mut reach = vec![true; stream.len() + 1];
    for token in part {
        let mut next = vec![false; stream.len() + 1];
        match token {
            PatternToken::Word(word) => {
                for i in 0..stream.len() {
                    if reach[i] && stream[i] == word {
                        next[i + 1] = true;
                    }
                }
            }
            PatternToken::Gap => {
                for i in 0..=stream.len() {
                    if reach[i] {
                        for skip in 0..=GAP_TOKENS_MAX.min(stream.len() - i) {
                            next[i + skip] = true;
                        }
                    }
                }
            }
        }
        reach = next;
        if !reach.iter().any(|r| *r) {
            return false;
        }
    }
    reach.iter().any(|r| *r)
}

fn pattern_matches(pattern: &Pattern, stream: &[&str]) -> bool {
    pattern.parts.iter().all(|part| part_matches(part, stream))
}

/// Adds the slots' own evidence.
fn add_priors(scores: &mut [f32], slots: &Slots, hints: &Hints) {
    let mut add = |intent: Intent, weight: f32| scores[intent.index()] += weight;
    if slots.quantity.is_some() {
        let weight = if hints.article_quantity {
            PRIOR_ARTICLE_QUANTITY
        } else {
            PRIOR_QUANTITY
        };
        add(Intent::Book, weight);
    }
    if !slots.seats.is_empty() {
        add(Intent::Book, PRIOR_SEATS);
    }
    if slots.best_available || slots.together {
        add(Intent::Book, PRIOR_FLAGS);
    }
    if slots.ticket.is_some() {
        add(Intent::Refund, PRIOR_TICKET);
    }
    if slots.has_event() {
        add(Intent::EventDetails, PRIOR_EVENT);
    }
    if slots.has_place_or_date() {
        let weight = if slots.has_event() {
            PRIOR_PLACE_OR_DATE_WITH_EVENT
        } else {
            PRIOR_PLACE_OR_DATE
        };
        add(Intent::Search, weight);
    }
    if slots.has_event() || slots.has_place_or_date() {
        add(Intent::Help, -HELP_WITH_SLOTS_PENALTY);
    }
}

/// Returns the intent and whether cue words (not only the slots) scored it.
pub(crate) fn classify(
    toks: &[Tok],
    data: &LangData,
    slots: &Slots,
    hints: &Hints,
) -> (Intent, bool) {
    let stream = cue_stream(toks);
    let mut cue_scores = [0.0f32; Intent::ALL.len()];
    for cue in &data.cues {
        if pattern_matches(&cue.pattern, &stream) {
            cue_scores[cue.intent.index()] += cue.weight;
        }
    }
    let mut scores = cue_scores;
    add_priors(&mut scores, slots, hints);
    let best = argmax(&scores, |_| true);
    let mut intent = Intent::ALL[best];
    if scores[best] < INTENT_SCORE_MIN {
        return (Intent::Unknown, false);
    }
    if matches!(intent, Intent::Greet | Intent::Confirm | Intent::Deny) {
        let replies = [
            Intent::Greet,
            Intent::Confirm,
            Intent::Deny,
            Intent::Unknown,
        ];
        let request = argmax(&scores, |i| !replies.contains(&i));
        if scores[request] >= REQUEST_OVER_REPLY_MIN && scores[request] > scores[best] {
            intent = Intent::ALL[request];
        }
    }
    (intent, cue_scores[intent.index()] > 0.0)
}

/// Returns the position of the highest score among intents `allowed` lets through (the
/// earliest on a tie).
fn argmax(scores: &[f32], allowed: impl Fn(Intent) -> bool) -> usize {
    let mut best: Option<usize> = None;
    for (i, intent) in Intent::ALL.iter().enumerate() {
        if allowed(*intent) && best.is_none_or(|b| scores[i] > scores[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(Intent::ALL.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::words;

    fn part(text: &str) -> Vec<PatternToken> {
        text.split_whitespace()
            .map(|w| {
                if w == "*" {
                    PatternToken::Gap
                } else {
                    PatternToken::Word(words(w).concat())
                }
            })
            .collect()
    }

    /// Parts match contiguously, gaps skip up to GAP_TOKENS_MAX tokens.
    #[test]
    fn matches_parts_with_gaps() {
        let stream = ["cancel", "my", "two", "tickets"];
        assert!(part_matches(&part("cancel * tickets"), &stream));
        assert!(part_matches(&part("my two"), &stream));
        assert!(!part_matches(&part("cancel tickets"), &stream));
        assert!(!part_matches(&part("tickets * cancel"), &stream));
        let long = ["cancel", "a", "b", "c", "d", "ticket"];
        assert!(!part_matches(&part("cancel * ticket"), &long));
        assert!(!part_matches(&part("x"), &[]));
    }
}
