//! The event page's seat map, as the template draws it: an overview with one link per section
//! (drawn as blocks, with what is free and what it costs) and the seats of one section only,
//! each named "Block A, Row 3, Seat 8" — so a 20,000-seat arena is two dozen links and a few
//! hundred seats on the page, never 20,000 controls. The section is chosen by `?section=name`
//! (server-rendered, works without script); a small venue of one unnamed section shows its
//! seats at once, as before.

use tix_core::{SeatMap, SeatState};

use super::{money, url_encode};

/// A venue with more seats than this, or with more than one section, opens on the overview.
pub const SEATS_WITHOUT_OVERVIEW_MAX: u32 = 1_000;

/// One seat on the map.
pub struct Seat {
    /// Its number (the form's value).
    pub number: u32,
    /// `free`, `held`, `sold` or `blocked`.
    pub state: &'static str,
    /// Its name: "Block A, Row 3, Seat 8".
    pub name: String,
    /// Its accessible name with its state: "Block A, Row 3, Seat 8, sold".
    pub label: String,
    /// Chosen before a detour (log in, sign up, a refused order) and still free: shown ticked.
    pub checked: bool,
}

/// A row of seats.
pub struct Row {
    /// The row's number, front first.
    pub label: u32,
    /// Its seats, left to right.
    pub seats: Vec<Seat>,
}

/// One section in the overview.
pub struct Block {
    /// Its name ("Block A"), or "All seats" for an unnamed one.
    pub name: String,
    /// The query string that opens it: `?section=Block%20A`.
    pub href: String,
    /// One seat's price, for people.
    pub price: String,
    /// Seats free now.
    pub free: u32,
    /// Seats in all.
    pub seats: u32,
    /// Its first and last seat numbers (for the live counts in the script).
    pub first: u32,
    /// Its last seat number.
    pub last: u32,
    /// Whether it is the section shown below the overview.
    pub current: bool,
}

/// The section whose seats are shown.
pub struct Shown {
    /// Its index in the layout.
    pub index: u32,
    /// Its name ("" for an unnamed section): the value of the best-available form's field.
    pub name: String,
    /// Its heading: "Block A" or "All seats".
    pub title: String,
    /// One seat's price, for people.
    pub price: String,
    /// Its rows.
    pub rows: Vec<Row>,
}

/// What the event page shows of a numbered event's seats.
pub struct Plan {
    /// The overview's blocks; empty for a small venue of one section.
    pub blocks: Vec<Block>,
    /// The section shown, if any (always, for a small venue of one section).
    pub shown: Option<Shown>,
    /// Whether the sections differ in price (the page then says "from").
    pub prices_differ: bool,
}

/// Returns the state word of a seat.
pub fn seat_state(s: &SeatState) -> &'static str {
    match s {
        SeatState::Free => "free",
        SeatState::Held(_) => "held",
        SeatState::Sold(_) => "sold",
        SeatState::Blocked => "blocked",
    }
}

/// Returns the state as a screen reader says it after the seat's name ("" for free).
fn spoken_state(state: &str) -> &'static str {
    match state {
        "held" => ", on hold",
        "sold" => ", sold",
        "blocked" => ", not for sale",
        _ => "",
    }
}

/// Builds the plan: the overview (unless the venue is one small section) and the section asked
/// for by name — else the section of the first chosen seat, else none (or the only one).
pub fn plan(
    map: &SeatMap,
    seats: &[SeatState],
    currency: &str,
    asked: Option<&str>,
    chosen: &[u32],
) -> Plan {
    let overview = map.sections.len() > 1 || map.seats() > SEATS_WITHOUT_OVERVIEW_MAX;
    let index = asked
        .and_then(|name| map.section_named(name))
        .or_else(|| {
            chosen
                .first()
                .and_then(|&n| map.place(n))
                .map(|p| p.section)
        })
        .or((!overview).then_some(0));
    let title = |name: &str| {
        if name.is_empty() {
            "All seats".to_owned()
        } else {
            name.to_owned()
        }
    };
    let blocks = if overview {
        map.sections
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let range =
                    &seats[s.first_seat as usize - 1..(s.first_seat + s.seats()) as usize - 1];
                Block {
                    name: title(s.name),
                    href: format!("?section={}", url_encode(s.name)),
                    price: money(s.price_cents, currency),
                    free: range.iter().filter(|s| **s == SeatState::Free).count() as u32,
                    seats: s.seats(),
                    first: s.first_seat,
                    last: s.first_seat + s.seats() - 1,
                    current: index == Some(i as u32),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let shown = index.map(|i| {
        let s = &map.sections[i as usize];
        Shown {
            index: i,
            name: s.name.to_owned(),
            title: title(s.name),
            price: money(s.price_cents, currency),
            rows: rows(map, i, seats, chosen),
        }
    });
    let first_price = map.sections.first().map(|s| s.price_cents);
    Plan {
        blocks,
        shown,
        prices_differ: map
            .sections
            .iter()
            .any(|s| Some(s.price_cents) != first_price),
    }
}

/// The rows of section `index`, each seat named and stated.
fn rows(map: &SeatMap, index: u32, seats: &[SeatState], chosen: &[u32]) -> Vec<Row> {
    let s = &map.sections[index as usize];
    (1..=s.rows)
        .map(|row| Row {
            label: row,
            seats: (1..=s.seats_per_row)
                .map(|place| {
                    let number = s.seat_at(row, place);
                    let state = seat_state(&seats[number as usize - 1]);
                    let name = map.seat_name(number);
                    Seat {
                        number,
                        state,
                        label: format!("{name}{}", spoken_state(state)),
                        name,
                        checked: state == "free" && chosen.contains(&number),
                    }
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tix_core::{Inventory, SectionSpec, VenueLayout};

    fn arena() -> (Inventory, VenueLayout) {
        let section = |name: &str| SectionSpec {
            name: name.into(),
            rows: 30,
            seats_per_row: 40,
            price_cents: 100,
        };
        let layout = VenueLayout {
            sections: vec![section("Block A"), section("Block B")],
        };
        let inventory = Inventory::Numbered {
            seats: vec![SeatState::Free; 2_400],
            layout: None,
            sold: 0,
            held: 0,
            blocked: 0,
            first_free_hint: 1,
        };
        (inventory, layout)
    }

    // A venue of sections opens on the overview alone; `?section=` (any case) or a chosen seat
    // shows that one section's seats, named by section, row and seat.
    #[test]
    fn the_overview_shows_one_section_at_a_time() {
        let (inventory, layout) = arena();
        let map = SeatMap::of(&inventory, Some(&layout), 0).expect("numbered");
        let seats = inventory.seat_states();
        let plan0 = plan(&map, seats, "EUR", None, &[]);
        assert_eq!(plan0.blocks.len(), 2);
        assert!(plan0.shown.is_none());
        assert_eq!(plan0.blocks[1].href, "?section=Block%20B");
        let b = plan(&map, seats, "EUR", Some("block b"), &[]);
        let shown = b.shown.expect("Block B shown");
        assert_eq!(shown.rows.len(), 30);
        assert_eq!(shown.rows[2].seats[7].label, "Block B, Row 3, Seat 8");
        let by_seat = plan(&map, seats, "EUR", None, &[1_300]);
        assert_eq!(by_seat.shown.expect("shown").index, 1);
    }
}
