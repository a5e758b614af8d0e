//! Matching a message against the catalog: the city (or an alias such as "Cologne"), the venue,
//! and the event. Words are compared exactly, by collapsed digraphs ("koeln"), by any language's
//! catalog words ("Nacht" → "night", "Prinzen" → "prince"), within a typo budget (optimal string
//! alignment distance, by the catalog word's length: "beethovn", "tonhale") or as a prefix of five
//! or more letters ("philharm"). Each event scores the weights of the name words matched; generic
//! words ("night", "concert") weigh little and never name an event alone. The best events win;
//! a tie is narrowed by the city, venue and dates the message names, then by preferring upcoming
//! events; what remains is the event, or `event_choices` when more than one does.

use crate::catalog::{Catalog, GENERIC_WEIGHT, Place, Term};
use crate::lang::{self, LangData};
use crate::text::{Kind, collapse};
use crate::understand::{EVENT_CHOICES_MAX, Hints, QUERY_CHARS_MAX, Role, Slots, Tok, typo_budget};

/// Quality of a match by typo.
const TYPO_QUALITY: f32 = 0.9;
/// Quality of a match by prefix.
const PREFIX_QUALITY: f32 = 0.8;
/// Letters a prefix needs to count.
const PREFIX_CHARS_MIN: usize = 5;
/// Letters a venue word needs to name its venue alone.
const VENUE_WORD_CHARS_MIN: usize = 5;
/// The distinctive (non-generic) weight an event needs to be referred to.
const EVENT_DISTINCT_MIN: f32 = 0.75;
/// Function words that may stand between two words of an event reference.
const FUNCTION_WORDS_IN_NAME_MAX: usize = 2;
/// Scores this close to the best count as a tie.
const EVENT_TIE_MARGIN: f32 = 0.05;

/// A token that may refer to the catalog: its position, its forms, and whether only exact
/// matches count (a word of the language that is no typo).
struct Candidate {
    at: usize,
    forms: Vec<String>,
    exact_only: bool,
}

fn candidates(toks: &[Tok], data: &LangData, catalog: &Catalog) -> Vec<Candidate> {
    let words = &catalog.index().words;
    let mut out = Vec::new();
    for (at, tok) in toks.iter().enumerate() {
        if tok.role != Role::Free {
            continue;
        }
        match tok.kind {
            Kind::Number {
                hash: false,
                ordinal: false,
                spelled: false,
                ..
            } => {
                out.push(Candidate {
                    at,
                    forms: vec![tok.raw.clone()],
                    exact_only: true,
                });
            }
            Kind::Word => {
                let translated = lang::all_data().find_map(|d| d.catalog_words.get(&tok.raw));
                if let Some(forms) = translated {
                    out.push(Candidate {
                        at,
                        forms: forms.clone(),
                        exact_only: false,
                    });
                    continue;
                }
                let is_name_word = words.contains(&tok.raw) || words.contains(&collapse(&tok.raw));
                if data.stopwords.contains(&tok.raw) && !is_name_word {
                    continue;
                }
                let exact_only = data.known(&tok.raw).is_some() && !is_name_word;
                out.push(Candidate {
                    at,
                    forms: vec![tok.raw.clone()],
                    exact_only,
                });
            }
            _ => {}
        }
    }
    out
}

/// Returns how well a word matches a catalog term (0 = not at all).
fn quality(form: &str, term: &Term, exact_only: bool) -> f32 {
    let collapsed = collapse(form);
    if form == term.text || collapsed == term.collapsed {
        return 1.0;
    }
    let chars = form.chars().count();
    if exact_only || term.numeric || chars < 4 {
        return 0.0;
    }
    let term_chars = term.text.chars().count();
    let budget = typo_budget(term_chars);
    if budget > 0
        && chars.abs_diff(term_chars) <= budget
        && strsim::osa_distance(&collapsed, &term.collapsed) <= budget
    {
        return TYPO_QUALITY;
    }
    if chars >= PREFIX_CHARS_MIN && term.collapsed.starts_with(&collapsed) {
        return PREFIX_QUALITY;
    }
    0.0
}

/// Returns the best match of a term among unused candidates: (candidate index, quality).
fn best_for(term: &Term, candidates: &[Candidate], used: &[bool]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (k, candidate) in candidates.iter().enumerate() {
        if used[k] {
            continue;
        }
        let q = candidate
            .forms
            .iter()
            .map(|f| quality(f, term, candidate.exact_only))
            .fold(0.0, f32::max);
        if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((k, q));
        }
    }
    best
}

/// Matches a place's terms; returns the candidates used per term (None where unmatched).
fn match_place(place: &Place, candidates: &[Candidate], taken: &[bool]) -> Vec<Option<usize>> {
    let mut used = taken.to_vec();
    let mut out = Vec::with_capacity(place.terms.len());
    for term in &place.terms {
        let found = best_for(term, candidates, &used).map(|(k, _)| k);
        if let Some(k) = found {
            used[k] = true;
        }
        out.push(found);
    }
    out
}

/// Finds the city: an alias of any language, or all of a city's words.
fn find_city(
    catalog: &Catalog,
    candidates: &[Candidate],
    taken: &mut [bool],
) -> Option<(String, Vec<usize>)> {
    let cities = &catalog.index().cities;
    for (k, candidate) in candidates.iter().enumerate() {
        let Some(form) = candidate.forms.first() else {
            continue;
        };
        let alias = lang::all_data().find_map(|d| d.city_aliases.get(form));
        let Some(alias) = alias else {
            continue;
        };
        let city = cities.iter().find(|c| {
            c.terms
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
                == *alias
        });
        if let Some(city) = city {
            taken[k] = true;
            return Some((city.display.clone(), vec![k]));
        }
    }
    let mut best: Option<(usize, String, Vec<usize>)> = None;
    for city in cities {
        let matched = match_place(city, candidates, taken);
        if matched.is_empty() || matched.iter().any(Option::is_none) {
            continue;
        }
        let used: Vec<usize> = matched.into_iter().flatten().collect();
        let first = used
            .iter()
            .map(|k| candidates[*k].at)
            .min()
            .unwrap_or(usize::MAX);
        if best.as_ref().is_none_or(|(b, _, _)| first < *b) {
            best = Some((first, city.display.clone(), used));
        }
    }
    let (_, display, used) = best?;
    for k in &used {
        taken[*k] = true;
    }
    Some((display, used))
}

/// Finds the venue: all its words, or one word no event name has ("Tonhalle", "Philharmonie").
fn find_venue(
    catalog: &Catalog,
    candidates: &[Candidate],
    taken: &mut [bool],
) -> Option<(String, Vec<usize>)> {
    let mut best: Option<(usize, String, Vec<usize>)> = None;
    for venue in &catalog.index().venues {
        let matched = match_place(venue, candidates, taken);
        let all = !matched.is_empty() && matched.iter().all(Option::is_some);
        let distinctive = matched.iter().enumerate().any(|(t, m)| {
            let term = &venue.terms[t];
            m.is_some()
                && !venue.in_names[t]
                && term.weight > GENERIC_WEIGHT
                && term.text.chars().count() >= VENUE_WORD_CHARS_MIN
        });
        if !(all || distinctive) {
            continue;
        }
        let used: Vec<usize> = matched.into_iter().flatten().collect();
        let score = used.len() + usize::from(all);
        if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
            best = Some((score, venue.display.clone(), used));
        }
    }
    let (_, display, used) = best?;
    for k in &used {
        taken[*k] = true;
    }
    Some((display, used))
}

/// One event's match.
struct EventMatch {
    /// Position in the catalog.
    position: usize,
    score: f32,
    used: Vec<usize>,
}

fn score_events(catalog: &Catalog, candidates: &[Candidate], taken: &[bool]) -> Vec<EventMatch> {
    let mut out = Vec::new();
    for (position, terms) in catalog.index().names.iter().enumerate() {
        let mut used = taken.to_vec();
        let mut score = 0.0;
        let mut distinct = 0.0;
        let mut matched_terms = 0;
        let mut contributed = Vec::new();
        for term in terms {
            if let Some((k, q)) = best_for(term, candidates, &used) {
                used[k] = true;
                contributed.push(k);
                score += q * term.weight;
                matched_terms += 1;
                if term.weight > GENERIC_WEIGHT {
                    distinct += q;
                }
            }
        }
        let whole_name = !terms.is_empty() && matched_terms == terms.len();
        if distinct >= EVENT_DISTINCT_MIN || whole_name {
            out.push(EventMatch {
                position,
                score,
                used: contributed,
            });
        }
    }
    out
}

/// Keeps the events the message's city, venue and dates agree with, if any do.
fn narrow(catalog: &Catalog, top: Vec<EventMatch>, slots: &Slots, now_ms: i64) -> Vec<EventMatch> {
    let events = catalog.events();
    let fits = |m: &EventMatch| {
        let event = &events[m.position];
        let day = crate::dates::today(event.local_start_ms());
        slots.city.as_ref().is_none_or(|c| *c == event.city)
            && slots.venue.as_ref().is_none_or(|v| *v == event.venue)
            && slots.date_from.is_none_or(|from| day >= from)
            && slots.date_to.is_none_or(|to| day <= to)
    };
    let mut top = top;
    if top.len() > 1 && top.iter().any(fits) {
        top.retain(fits);
    }
    if top.len() > 1
        && top
            .iter()
            .any(|m| events[m.position].starts_at_ms >= now_ms)
    {
        top.retain(|m| events[m.position].starts_at_ms >= now_ms);
    }
    top
}

/// Adds the function words between two words of the reference ("Jazz *im* Park") to it, so
/// the reference reads as one run.
fn absorb_function_words(toks: &[Tok], positions: &mut Vec<usize>) {
    let is_function_word = |tok: &Tok| {
        tok.free_word()
            .is_some_and(|w| lang::all_data().any(|d| d.stopwords.contains(w)))
    };
    let mut between = Vec::new();
    for pair in positions.windows(2) {
        let gap = pair[0] + 1..pair[1];
        if gap.len() <= FUNCTION_WORDS_IN_NAME_MAX && toks[gap.clone()].iter().all(is_function_word)
        {
            between.extend(gap);
        }
    }
    positions.extend(between);
    positions.sort_unstable();
}

/// Finds the city, venue and event the message refers to, sets their slots and marks their
/// tokens.
pub(crate) fn extract(
    toks: &mut [Tok],
    data: &LangData,
    catalog: &Catalog,
    now_ms: i64,
    slots: &mut Slots,
    hints: &mut Hints,
) {
    let candidates = candidates(toks, data, catalog);
    if candidates.is_empty() {
        return;
    }
    let mut taken = vec![false; candidates.len()];
    if let Some((city, used)) = find_city(catalog, &candidates, &mut taken) {
        slots.city = Some(city);
        for k in used {
            toks[candidates[k].at].role = Role::City;
        }
    }
    if let Some((venue, used)) = find_venue(catalog, &candidates, &mut taken) {
        slots.venue = Some(venue);
        for k in used {
            toks[candidates[k].at].role = Role::Venue;
        }
    }
    let matches = score_events(catalog, &candidates, &taken);
    let best = matches.iter().map(|m| m.score).fold(0.0, f32::max);
    let top: Vec<EventMatch> = matches
        .into_iter()
        .filter(|m| m.score >= best - EVENT_TIE_MARGIN)
        .collect();
    let top = narrow(catalog, top, slots, now_ms);
    let events = catalog.events();
    match top.as_slice() {
        [] => return,
        [one] => slots.event = Some(events[one.position].id),
        many => {
            let mut ids: Vec<u64> = many.iter().map(|m| events[m.position].id).collect();
            ids.sort_unstable();
            ids.truncate(EVENT_CHOICES_MAX);
            slots.event_choices = ids;
        }
    }
    let mut positions: Vec<usize> = top
        .iter()
        .flat_map(|m| m.used.iter().map(|k| candidates[*k].at))
        .collect();
    positions.sort_unstable();
    positions.dedup();
    absorb_function_words(toks, &mut positions);
    let mut reference = String::new();
    for at in positions {
        toks[at].role = Role::Event;
        if reference.chars().count() + toks[at].raw.chars().count() < QUERY_CHARS_MAX {
            if !reference.is_empty() {
                reference.push(' ');
            }
            reference.push_str(&toks[at].raw);
        }
    }
    hints.reference = Some(reference);
}
