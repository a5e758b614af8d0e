//! The catalog the assistant understands messages against: the events' ids, names, venues,
//! cities and start times. The server builds it from its state (`Catalog::new`), the evaluation
//! reads it from `eval/catalog.json` (`Catalog::from_json`). Building it also builds the index
//! the matcher uses (normalized name, venue and city terms with their weights), so matching a
//! message costs no preparation per call.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::lang;
use crate::text::{Kind, collapse, lex};

/// The most events a catalog may hold (bounds the matcher's work per message).
pub const CATALOG_EVENTS_MAX: usize = 10_000;
/// The longest event name, venue or city, in characters.
pub const NAME_CHARS_MAX: usize = 200;
/// Weight of a name word that alone does not identify an event ("night", "concert", "2027").
pub(crate) const GENERIC_WEIGHT: f32 = 0.3;

/// Why a catalog was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The JSON does not have the catalog's shape.
    #[error("catalog: {0}")]
    Json(#[from] serde_json::Error),
    /// Two events share an id.
    #[error("catalog: event id {0} appears twice")]
    DuplicateId(u64),
    /// More than [`CATALOG_EVENTS_MAX`] events.
    #[error("catalog: {0} events, at most {CATALOG_EVENTS_MAX}")]
    TooManyEvents(usize),
    /// A name, venue or city is empty or longer than [`NAME_CHARS_MAX`].
    #[error("catalog: event {id}: {field} must have 1 to {NAME_CHARS_MAX} characters")]
    BadText {
        /// The event.
        id: u64,
        /// "name", "venue" or "city" ("zone_label" may be empty).
        field: &'static str,
    },
    /// An offset from UTC beyond ±18 hours (no zone has one).
    #[error("catalog: event {id}: utc_offset_s must be within ±{UTC_OFFSET_S_MAX}")]
    BadOffset {
        /// The event.
        id: u64,
    },
}

/// The largest offset from UTC a catalog event may have, in seconds (±18 h, as RFC 3339 and
/// every zone database allow).
pub const UTC_OFFSET_S_MAX: i32 = 18 * 3_600;

/// One event as the assistant knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogEvent {
    /// The event's id.
    pub id: u64,
    /// The event's name ("Beethoven Night").
    pub name: String,
    /// The venue's name ("Tonhalle").
    pub venue: String,
    /// The city ("Düsseldorf").
    pub city: String,
    /// When it starts, in Unix milliseconds (UTC).
    pub starts_at_ms: i64,
    /// The venue's offset from UTC at the start, in seconds (`3600` for 19:30 CET): replies say
    /// the time people read on the venue's clocks, and "on Friday" means the venue's Friday.
    /// Absent in older catalogs: UTC.
    #[serde(default)]
    pub utc_offset_s: i32,
    /// The venue's zone as people write it at the start ("CET"), said after the time; empty
    /// for none (the time is then the venue's without a label).
    #[serde(default)]
    pub zone_label: String,
    /// Whether seats are numbered (written `"kind": "numbered"`, else `"general_admission"`).
    #[serde(
        rename = "kind",
        serialize_with = "kind_out",
        deserialize_with = "kind_in"
    )]
    pub numbered: bool,
}

impl CatalogEvent {
    /// The start as a venue-local clock reading, in milliseconds since the Unix epoch (to take
    /// the day and the time of day from, never to compare with instants).
    pub fn local_start_ms(&self) -> i64 {
        self.starts_at_ms
            .saturating_add(i64::from(self.utc_offset_s) * 1_000)
    }
}

fn kind_out<S: Serializer>(numbered: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if *numbered {
        "numbered"
    } else {
        "general_admission"
    })
}

fn kind_in<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    match String::deserialize(deserializer)?.as_str() {
        "numbered" => Ok(true),
        "general_admission" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "kind must be \"numbered\" or \"general_admission\", not {other:?}"
        ))),
    }
}

/// A normalized word of a name, venue or city.
#[derive(Clone, Debug)]
pub(crate) struct Term {
    /// The folded word.
    pub text: String,
    /// The word with digraphs collapsed.
    pub collapsed: String,
    /// How much matching it says about the event: 1, or [`GENERIC_WEIGHT`].
    pub weight: f32,
    /// Whether the word is a number ("2027").
    pub numeric: bool,
}

/// A venue or city: its catalog spelling and its terms.
#[derive(Clone, Debug)]
pub(crate) struct Place {
    /// The catalog's spelling.
    pub display: String,
    /// The place's words.
    pub terms: Vec<Term>,
    /// For a venue: whether each term also occurs in some event's name (such a term alone
    /// names the event rather than the venue: "the arena one").
    pub in_names: Vec<bool>,
}

/// The index the matcher uses.
#[derive(Clone, Debug, Default)]
pub(crate) struct CatalogIndex {
    /// Each event's name terms, in catalog order.
    pub names: Vec<Vec<Term>>,
    /// Distinct venues.
    pub venues: Vec<Place>,
    /// Distinct cities.
    pub cities: Vec<Place>,
    /// Every folded word of every name, venue and city, and their collapsed forms.
    pub words: BTreeSet<String>,
}

/// The events the assistant can talk about.
#[derive(Clone, Debug)]
pub struct Catalog {
    events: Vec<CatalogEvent>,
    index: CatalogIndex,
}

#[derive(Serialize, Deserialize)]
struct CatalogFile {
    events: Vec<CatalogEvent>,
}

impl Catalog {
    /// Returns a catalog of these events, after checking ids are unique and texts are sane.
    pub fn new(events: Vec<CatalogEvent>) -> Result<Catalog, CatalogError> {
        if events.len() > CATALOG_EVENTS_MAX {
            return Err(CatalogError::TooManyEvents(events.len()));
        }
        let mut ids = BTreeSet::new();
        for event in &events {
            if !ids.insert(event.id) {
                return Err(CatalogError::DuplicateId(event.id));
            }
            for (field, text) in [
                ("name", &event.name),
                ("venue", &event.venue),
                ("city", &event.city),
            ] {
                let chars = text.chars().count();
                if chars == 0 || chars > NAME_CHARS_MAX {
                    return Err(CatalogError::BadText {
                        id: event.id,
                        field,
                    });
                }
            }
            if event.zone_label.chars().count() > NAME_CHARS_MAX {
                return Err(CatalogError::BadText {
                    id: event.id,
                    field: "zone_label",
                });
            }
            if event.utc_offset_s.abs() > UTC_OFFSET_S_MAX {
                return Err(CatalogError::BadOffset { id: event.id });
            }
        }
        let index = CatalogIndex::build(&events);
        Ok(Catalog { events, index })
    }

    /// Reads a catalog from JSON: `{"events": [{"id", "name", "venue", "city", "starts_at_ms",
    /// "kind"}]}`, optionally with `utc_offset_s` and `zone_label` (UTC without them; other
    /// fields are ignored).
    pub fn from_json(json: &str) -> Result<Catalog, CatalogError> {
        let file: CatalogFile = serde_json::from_str(json)?;
        Catalog::new(file.events)
    }

    /// Returns the events, in catalog order.
    pub fn events(&self) -> &[CatalogEvent] {
        &self.events
    }

    /// Returns the event with this id.
    pub fn event(&self, id: u64) -> Option<&CatalogEvent> {
        self.events.iter().find(|e| e.id == id)
    }

    pub(crate) fn index(&self) -> &CatalogIndex {
        &self.index
    }
}

impl Serialize for Catalog {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        CatalogFile {
            events: self.events.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Catalog {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let file = CatalogFile::deserialize(deserializer)?;
        Catalog::new(file.events).map_err(serde::de::Error::custom)
    }
}

/// Returns the terms of a name: its words without function words of any language.
fn terms(text: &str, generic: &BTreeSet<String>, stop: &BTreeSet<String>) -> Vec<Term> {
    let mut out = Vec::new();
    for token in lex(text) {
        let numeric = matches!(token.kind, Kind::Number { .. });
        if !(token.kind == Kind::Word || numeric) || stop.contains(&token.text) {
            continue;
        }
        let weight = if numeric || generic.contains(&token.text) {
            GENERIC_WEIGHT
        } else {
            1.0
        };
        let collapsed = collapse(&token.text);
        out.push(Term {
            text: token.text,
            collapsed,
            weight,
            numeric,
        });
    }
    out
}

impl CatalogIndex {
    fn build(events: &[CatalogEvent]) -> CatalogIndex {
        let mut generic = BTreeSet::new();
        let mut stop = BTreeSet::new();
        for data in lang::all_data() {
            generic.extend(data.generic_event_words.iter().cloned());
            stop.extend(data.stopwords.iter().cloned());
        }
        let mut index = CatalogIndex::default();
        for event in events {
            index.names.push(terms(&event.name, &generic, &stop));
        }
        let name_words: BTreeSet<&str> = index
            .names
            .iter()
            .flatten()
            .map(|t| t.collapsed.as_str())
            .collect();
        let mut venues = Vec::new();
        let mut cities = Vec::new();
        for event in events {
            if !venues.iter().any(|p: &Place| p.display == event.venue) {
                let terms = terms(&event.venue, &generic, &stop);
                let in_names = terms
                    .iter()
                    .map(|t| name_words.contains(t.collapsed.as_str()))
                    .collect();
                venues.push(Place {
                    display: event.venue.clone(),
                    terms,
                    in_names,
                });
            }
            if !cities.iter().any(|p: &Place| p.display == event.city) {
                let terms = terms(&event.city, &BTreeSet::new(), &BTreeSet::new());
                cities.push(Place {
                    display: event.city.clone(),
                    in_names: vec![false; terms.len()],
                    terms,
                });
            }
        }
        index.venues = venues;
        index.cities = cities;
        for event in events {
            for token in [&event.name, &event.venue, &event.city]
                .into_iter()
                .flat_map(|t| lex(t))
            {
                index.words.insert(collapse(&token.text));
                index.words.insert(token.text);
            }
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = include_str!("../eval/catalog.json");

    /// The evaluation catalog loads, with kinds read and the index built.
    #[test]
    fn loads_eval_catalog() {
        let catalog = Catalog::from_json(CATALOG).unwrap();
        assert_eq!(catalog.events().len(), 8);
        assert!(catalog.event(1).unwrap().numbered);
        assert!(!catalog.event(3).unwrap().numbered);
        assert_eq!(catalog.event(1).unwrap().city, "Düsseldorf");
        let index = catalog.index();
        // "Jazz im Park": "im" is a function word; "The Little Prince (Kids Theatre)" loses "the".
        let jazz: Vec<&str> = index.names[2].iter().map(|t| t.text.as_str()).collect();
        assert_eq!(jazz, ["jazz", "park"]);
        let prince: Vec<&str> = index.names[6].iter().map(|t| t.text.as_str()).collect();
        assert_eq!(prince, ["little", "prince", "kids", "theatre"]);
        assert_eq!(index.cities.len(), 5);
        // "arena" of "Arena Nord" is also a name word; "nord" is not.
        let arena = index
            .venues
            .iter()
            .find(|v| v.display == "Arena Nord")
            .unwrap();
        assert_eq!(arena.in_names, [true, false]);
        assert!(index.words.contains("dusseldorf"));
    }

    /// Duplicate ids, empty names and unknown kinds are refused; the JSON round-trips.
    #[test]
    fn refuses_bad_catalogs() {
        let event = |id, name: &str| CatalogEvent {
            id,
            name: name.to_string(),
            venue: "V".to_string(),
            city: "C".to_string(),
            starts_at_ms: 0,
            utc_offset_s: 0,
            zone_label: String::new(),
            numbered: false,
        };
        assert!(matches!(
            Catalog::new(vec![event(1, "A"), event(1, "B")]),
            Err(CatalogError::DuplicateId(1))
        ));
        assert!(matches!(
            Catalog::new(vec![event(1, "")]),
            Err(CatalogError::BadText { .. })
        ));
        let far = CatalogEvent {
            utc_offset_s: UTC_OFFSET_S_MAX + 1,
            ..event(1, "A")
        };
        assert!(matches!(
            Catalog::new(vec![far]),
            Err(CatalogError::BadOffset { id: 1 })
        ));
        let long = "x".repeat(NAME_CHARS_MAX + 1);
        assert!(Catalog::new(vec![event(1, &long)]).is_err());
        assert!(Catalog::new(vec![event(1, &long[1..])]).is_ok());
        let bad_kind = r#"{"events":[{"id":1,"name":"A","venue":"V","city":"C","starts_at_ms":0,"kind":"x"}]}"#;
        assert!(Catalog::from_json(bad_kind).is_err());
        let catalog = Catalog::from_json(CATALOG).unwrap();
        let json = serde_json::to_string(&catalog).unwrap();
        let again: Catalog = serde_json::from_str(&json).unwrap();
        assert_eq!(again.events(), catalog.events());
    }
}
