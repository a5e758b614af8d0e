//! Evaluation: reads a labelled set in the JSONL format of `eval/README.md` (one `{"lang",
//! "text", "intent", "slots"}` object per line), runs [`crate::understand`] on every line
//! against a catalog at a reference time, and scores it: intent accuracy overall and per
//! intent, exact slot match (the slots found equal the slots labelled, nothing more or less),
//! language accuracy, the confusion matrix and the misses. [`Report`] prints as a table.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::catalog::{Catalog, CatalogError};
use crate::lang::Lang;
use crate::understand::{Intent, Slots, understand};

/// The most lines a set may have.
pub const EVAL_LINES_MAX: usize = 100_000;

/// Why a set or catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A line is not a valid case.
    #[error("line {line}: {source}")]
    Line {
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        source: serde_json::Error,
    },
    /// More than [`EVAL_LINES_MAX`] lines.
    #[error("{0} lines, at most {EVAL_LINES_MAX}")]
    TooManyLines(usize),
    /// The catalog file is malformed.
    #[error("catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// The catalog file lacks `reference_time_ms`.
    #[error("catalog: no reference_time_ms")]
    NoReferenceTime,
}

/// One labelled utterance.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The line it was read from, from 1.
    #[serde(skip)]
    pub line: usize,
    /// The language the engine should detect.
    pub lang: Lang,
    /// What the user typed.
    pub text: String,
    /// The intent.
    pub intent: Intent,
    /// Exactly the slots the engine must extract.
    pub slots: Slots,
}

/// Reads a set: one case per line; blank lines are skipped.
pub fn parse_cases(jsonl: &str) -> Result<Vec<Case>, EvalError> {
    let mut cases = Vec::new();
    for (index, text) in jsonl.lines().enumerate() {
        if text.trim().is_empty() {
            continue;
        }
        if cases.len() == EVAL_LINES_MAX {
            return Err(EvalError::TooManyLines(jsonl.lines().count()));
        }
        let line = index + 1;
        let mut case: Case =
            serde_json::from_str(text).map_err(|source| EvalError::Line { line, source })?;
        case.line = line;
        cases.push(case);
    }
    Ok(cases)
}

/// The evaluation catalog and its reference time.
#[derive(Clone, Debug)]
pub struct EvalCatalog {
    /// The events.
    pub catalog: Catalog,
    /// "Now" for every utterance, Unix milliseconds.
    pub reference_time_ms: i64,
}

#[derive(Deserialize)]
struct ReferenceTime {
    reference_time_ms: Option<i64>,
}

/// Reads `catalog.json`: the events and `reference_time_ms`.
pub fn parse_catalog(json: &str) -> Result<EvalCatalog, EvalError> {
    let catalog = Catalog::from_json(json)?;
    let time: ReferenceTime = serde_json::from_str(json).map_err(CatalogError::from)?;
    let reference_time_ms = time.reference_time_ms.ok_or(EvalError::NoReferenceTime)?;
    Ok(EvalCatalog {
        catalog,
        reference_time_ms,
    })
}

/// One case the engine got wrong (intent, slots or language).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Miss {
    /// The case.
    pub case: Case,
    /// The language found.
    pub lang: Lang,
    /// The intent found.
    pub intent: Intent,
    /// The slots found.
    pub slots: Slots,
}

/// Counts for one intent (by its label).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IntentScore {
    /// Cases labelled with it.
    pub cases: usize,
    /// Of those, classified as it.
    pub correct: usize,
    /// Of those, with exactly the labelled slots.
    pub slots_exact: usize,
}

/// The scores of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Cases run.
    pub cases: usize,
    /// Cases whose intent was right.
    pub intent_correct: usize,
    /// Cases whose slots were exactly right.
    pub slots_exact: usize,
    /// Cases whose language was right.
    pub lang_correct: usize,
    /// Scores per labelled intent.
    pub per_intent: BTreeMap<Intent, IntentScore>,
    /// (labelled, found) → cases.
    pub confusion: BTreeMap<(Intent, Intent), usize>,
    /// Cases with any mistake, in set order.
    pub misses: Vec<Miss>,
}

fn rate(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Counts are far below 2^52: exact as f64.
    part as f64 / whole as f64
}

impl Report {
    /// Returns the share of cases with the right intent (0–1).
    pub fn intent_accuracy(&self) -> f64 {
        rate(self.intent_correct, self.cases)
    }

    /// Returns the share of cases with exactly the right slots (0–1).
    pub fn slot_match_rate(&self) -> f64 {
        rate(self.slots_exact, self.cases)
    }

    /// Returns the share of cases with the right language (0–1).
    pub fn lang_accuracy(&self) -> f64 {
        rate(self.lang_correct, self.cases)
    }
}

/// Runs every case through the engine at `now_ms` and scores the answers.
pub fn evaluate(cases: &[Case], catalog: &Catalog, now_ms: i64) -> Report {
    let mut report = Report {
        cases: cases.len(),
        ..Report::default()
    };
    for case in cases {
        let found = understand(&case.text, catalog, now_ms);
        let intent_ok = found.intent == case.intent;
        let slots_ok = found.slots == case.slots;
        let lang_ok = found.lang == case.lang;
        report.intent_correct += usize::from(intent_ok);
        report.slots_exact += usize::from(slots_ok);
        report.lang_correct += usize::from(lang_ok);
        let score = report.per_intent.entry(case.intent).or_default();
        score.cases += 1;
        score.correct += usize::from(intent_ok);
        score.slots_exact += usize::from(slots_ok);
        *report
            .confusion
            .entry((case.intent, found.intent))
            .or_default() += 1;
        if !(intent_ok && slots_ok && lang_ok) {
            report.misses.push(Miss {
                case: case.clone(),
                lang: found.lang,
                intent: found.intent,
                slots: found.slots,
            });
        }
    }
    report
}

fn percent(value: f64) -> String {
    format!("{:5.1} %", value * 100.0)
}

fn slots_json(slots: &Slots) -> String {
    serde_json::to_string(slots).unwrap_or_default()
}

/// Short column heads for the confusion matrix.
fn short(intent: Intent) -> &'static str {
    match intent {
        Intent::Greet => "greet",
        Intent::Help => "help",
        Intent::Search => "search",
        Intent::EventDetails => "details",
        Intent::Availability => "avail",
        Intent::Book => "book",
        Intent::Pay => "pay",
        Intent::MyTickets => "tickets",
        Intent::MyOrders => "orders",
        Intent::Refund => "refund",
        Intent::CancelHold => "cancel",
        Intent::StartOver => "restart",
        Intent::Confirm => "yes",
        Intent::Deny => "no",
        Intent::Unknown => "unknown",
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cases              {}", self.cases)?;
        writeln!(
            f,
            "intent accuracy    {}  ({}/{})",
            percent(self.intent_accuracy()),
            self.intent_correct,
            self.cases
        )?;
        writeln!(
            f,
            "exact slot match   {}  ({}/{})",
            percent(self.slot_match_rate()),
            self.slots_exact,
            self.cases
        )?;
        writeln!(
            f,
            "language accuracy  {}  ({}/{})",
            percent(self.lang_accuracy()),
            self.lang_correct,
            self.cases
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<15} {:>6} {:>8} {:>9} {:>11}",
            "intent", "cases", "correct", "accuracy", "slots exact"
        )?;
        for (intent, score) in &self.per_intent {
            writeln!(
                f,
                "{:<15} {:>6} {:>8} {:>9} {:>11}",
                intent.name(),
                score.cases,
                score.correct,
                percent(rate(score.correct, score.cases)),
                percent(rate(score.slots_exact, score.cases)),
            )?;
        }
        writeln!(f)?;
        let found: Vec<Intent> = Intent::ALL
            .iter()
            .copied()
            .filter(|i| {
                self.confusion.keys().any(|(_, got)| got == i) || self.per_intent.contains_key(i)
            })
            .collect();
        writeln!(
            f,
            "confusion (rows: labelled, columns: found; tickets = my_tickets, orders = my_orders,"
        )?;
        writeln!(
            f,
            "           restart = start_over, yes = confirm, no = deny)"
        )?;
        write!(f, "{:<15}", "")?;
        for intent in &found {
            write!(f, " {:>7}", short(*intent))?;
        }
        writeln!(f)?;
        for labelled in self.per_intent.keys() {
            write!(f, "{:<15}", labelled.name())?;
            for got in &found {
                match self.confusion.get(&(*labelled, *got)) {
                    Some(count) => write!(f, " {count:>7}")?,
                    None => write!(f, " {:>7}", ".")?,
                }
            }
            writeln!(f)?;
        }
        if !self.misses.is_empty() {
            writeln!(f)?;
            writeln!(f, "misses ({})", self.misses.len())?;
        }
        for miss in &self.misses {
            writeln!(f, "  line {}: {:?}", miss.case.line, miss.case.text)?;
            writeln!(
                f,
                "    want {} {} {}",
                miss.case.lang,
                miss.case.intent,
                slots_json(&miss.case.slots)
            )?;
            writeln!(
                f,
                "    got  {} {} {}",
                miss.lang,
                miss.intent,
                slots_json(&miss.slots)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = include_str!("../eval/catalog.json");

    /// Errors name the line; blank lines are skipped; unknown slots are refused.
    #[test]
    fn parses_and_names_bad_lines() {
        let good = r#"{"lang": "en", "text": "hi", "intent": "greet", "slots": {}}"#;
        let cases = parse_cases(&format!("{good}\n\n{good}\n")).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].line, 3);
        let bad = format!(
            "{good}\n{{\"lang\": \"en\", \"text\": \"x\", \"intent\": \"nope\", \"slots\": {{}}}}"
        );
        let error = parse_cases(&bad).unwrap_err();
        assert!(error.to_string().starts_with("line 2:"), "{error}");
        let unknown_slot =
            r#"{"lang": "en", "text": "x", "intent": "greet", "slots": {"colour": 1}}"#;
        assert!(matches!(
            parse_cases(unknown_slot),
            Err(EvalError::Line { line: 1, .. })
        ));
        let unknown_lang = r#"{"lang": "xx", "text": "x", "intent": "greet", "slots": {}}"#;
        assert!(parse_cases(unknown_lang).is_err());
    }

    /// A small run is scored and printed with its misses.
    #[test]
    fn scores_and_prints() {
        let eval_catalog = parse_catalog(CATALOG).unwrap();
        assert_eq!(eval_catalog.reference_time_ms, 1_799_229_600_000);
        let cases = parse_cases(concat!(
            r#"{"lang": "en", "text": "hi", "intent": "greet", "slots": {}}"#,
            "\n",
            r#"{"lang": "en", "text": "refund my ticket 12", "intent": "refund", "slots": {"ticket": 13}}"#,
            "\n",
            r#"{"lang": "de", "text": "hallo", "intent": "help", "slots": {}}"#,
        ))
        .unwrap();
        let report = evaluate(
            &cases,
            &eval_catalog.catalog,
            eval_catalog.reference_time_ms,
        );
        assert_eq!(
            (report.cases, report.intent_correct, report.slots_exact),
            (3, 2, 2)
        );
        assert_eq!(report.misses.len(), 2);
        assert_eq!(
            report.confusion.get(&(Intent::Help, Intent::Greet)),
            Some(&1)
        );
        let table = report.to_string();
        assert!(
            table.contains("intent accuracy     66.7 %  (2/3)"),
            "{table}"
        );
        assert!(table.contains("line 2: \"refund my ticket 12\""), "{table}");
        assert!(parse_catalog(r#"{"events": []}"#).is_err());
    }
}
