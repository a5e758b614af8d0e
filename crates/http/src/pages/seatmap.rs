//! The event page's seat map, as the template draws it: an overview with one link per section
//! (drawn as blocks, with what is free and what it costs) and the seats of one section only,
//! each named "Block A, Row 3, Seat 8" — so a 20,000-seat arena is two dozen links and a few
//! hundred seats on the page, never 20,000 controls. The section is chosen by `?section=name`
//! (server-rendered, works without script); a small venue of one unnamed section shows its
//! seats at once, as before. A section of more than [`PAGE_SEATS_MAX`] seats (an arena created
//! as plain rows, say) is shown in pages of rows, each a block of the overview (`&page=`).

use tix_core::{SeatMap, SeatState};

use super::{money, url_encode};

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
    /// Seats free now, for people: "997".
    pub free_text: String,
    /// Seats in all, for people: "1,000".
    pub seats_text: String,
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
    /// Its page, from 1, when the section is shown in pages.
    pub page: Option<u32>,
    /// Its heading: "Block A", "All seats", or the page's rows ("Rows 11–20").
    pub title: String,
    /// One seat's price, for people.
    pub price: String,
    /// Its rows.
    pub rows: Vec<Row>,
    /// Whether any of its seats is free (else the scrolling box itself takes the focus, so a
    /// keyboard can still scroll it).
    pub any_free: bool,
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

/// The most seats one page of the map shows: a larger section is shown in pages of whole rows
/// (or, for rows longer than this, of parts of a row), each a block of the overview; a venue
/// with more seats than this, or with more than one section, opens on the overview.
pub const PAGE_SEATS_MAX: u32 = 1_000;

/// One page of a section: a range of its rows and of places in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// The section's index.
    section: u32,
    /// First and last row, from 1.
    rows: (u32, u32),
    /// First and last place in each row, from 1.
    places: (u32, u32),
}

/// The pages of section `index`: the whole section when it has at most [`PAGE_SEATS_MAX`]
/// seats, else runs of whole rows, else (rows longer than that) parts of one row.
fn spans(map: &SeatMap, index: u32) -> Vec<Span> {
    let s = &map.sections[index as usize];
    let per_row = s.seats_per_row;
    if s.seats() <= PAGE_SEATS_MAX {
        return vec![Span {
            section: index,
            rows: (1, s.rows),
            places: (1, per_row),
        }];
    }
    if per_row <= PAGE_SEATS_MAX {
        let rows_per_page = PAGE_SEATS_MAX / per_row;
        return (1..=s.rows)
            .step_by(rows_per_page as usize)
            .map(|first| Span {
                section: index,
                rows: (first, (first + rows_per_page - 1).min(s.rows)),
                places: (1, per_row),
            })
            .collect();
    }
    let mut out = Vec::new();
    for row in 1..=s.rows {
        for first in (1..=per_row).step_by(PAGE_SEATS_MAX as usize) {
            out.push(Span {
                section: index,
                rows: (row, row),
                places: (first, (first + PAGE_SEATS_MAX - 1).min(per_row)),
            });
        }
    }
    out
}

impl Span {
    /// The first and last seat numbers of the page (its seats are consecutive numbers).
    fn seat_range(&self, map: &SeatMap) -> (u32, u32) {
        let s = &map.sections[self.section as usize];
        (
            s.seat_at(self.rows.0, self.places.0),
            s.seat_at(self.rows.1, self.places.1),
        )
    }

    /// What the page is called: "Block A", "Rows 11–20", "Block A · rows 11–20" or
    /// "Row 1 · seats 1001–2000".
    fn title(&self, map: &SeatMap, whole: bool) -> String {
        let s = &map.sections[self.section as usize];
        let part = if self.rows.0 != self.rows.1 || self.places == (1, s.seats_per_row) {
            match self.rows.0 == self.rows.1 {
                true => format!("row {}", self.rows.0),
                false => format!("rows {}–{}", self.rows.0, self.rows.1),
            }
        } else {
            format!(
                "row {} · seats {}–{}",
                self.rows.0, self.places.0, self.places.1
            )
        };
        match (s.name.is_empty(), whole) {
            (true, true) => "All seats".to_owned(),
            (false, true) => s.name.to_owned(),
            (true, false) => capitalized(&part),
            (false, false) => format!("{} · {part}", s.name),
        }
    }
}

/// A count with its thousands grouped: `1,000`.
fn grouped(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `part` with its first letter in upper case.
fn capitalized(part: &str) -> String {
    let mut chars = part.chars();
    chars.next().map_or(String::new(), |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

/// Builds the plan: the overview (unless the venue is one small section) with a block per
/// page, and the page asked for — by section name and page number, else the page of the first
/// chosen seat, else none (or the only one).
pub fn plan(
    map: &SeatMap,
    seats: &[SeatState],
    currency: &str,
    (asked, page): (Option<&str>, Option<u32>),
    chosen: &[u32],
) -> Plan {
    let overview = map.sections.len() > 1 || map.seats() > PAGE_SEATS_MAX;
    let pages: Vec<(Span, usize, usize)> = (0..map.sections.len() as u32)
        .flat_map(|i| {
            let spans = spans(map, i);
            let count = spans.len();
            spans
                .into_iter()
                .enumerate()
                .map(move |(k, s)| (s, k, count))
        })
        .collect();
    let by_name = asked.and_then(|name| map.section_named(name)).or_else(|| {
        // A lone unnamed section's pages are asked for by number only.
        (page.is_some() && map.sections.len() == 1).then_some(0)
    });
    let wanted = by_name
        .and_then(|i| {
            let k = page.unwrap_or(1).max(1) as usize - 1;
            pages.iter().position(|(s, n, _)| s.section == i && *n == k)
        })
        .or_else(|| {
            let n = *chosen.first()?;
            pages.iter().position(|(s, _, _)| {
                let (first, last) = s.seat_range(map);
                (first..=last).contains(&n)
            })
        })
        .or((!overview).then_some(0));
    let blocks = if overview {
        pages
            .iter()
            .enumerate()
            .map(|(i, (span, k, count))| {
                let sec = &map.sections[span.section as usize];
                let (first, last) = span.seat_range(map);
                let range = &seats[first as usize - 1..last as usize];
                let mut href = format!("?section={}", url_encode(sec.name));
                if *count > 1 {
                    href.push_str(&format!("&page={}", k + 1));
                }
                Block {
                    name: span.title(map, *count == 1),
                    href,
                    price: money(sec.price_cents, currency),
                    free_text: grouped(
                        range.iter().filter(|s| **s == SeatState::Free).count() as u32
                    ),
                    seats_text: grouped(last - first + 1),
                    first,
                    last,
                    current: wanted == Some(i),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let shown = wanted.map(|i| {
        let (span, k, count) = pages[i];
        let s = &map.sections[span.section as usize];
        Shown {
            index: span.section,
            name: s.name.to_owned(),
            page: (count > 1).then_some(k as u32 + 1),
            title: span.title(map, count == 1),
            price: money(s.price_cents, currency),
            rows: rows(map, span, seats, chosen),
            any_free: {
                let (first, last) = span.seat_range(map);
                seats[first as usize - 1..last as usize].contains(&SeatState::Free)
            },
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

/// The rows of a page, each seat named and stated.
fn rows(map: &SeatMap, span: Span, seats: &[SeatState], chosen: &[u32]) -> Vec<Row> {
    let s = &map.sections[span.section as usize];
    (span.rows.0..=span.rows.1)
        .map(|row| Row {
            label: row,
            seats: (span.places.0..=span.places.1)
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
            rows: 20,
            seats_per_row: 40,
            price_cents: 100,
        };
        let layout = VenueLayout {
            sections: vec![section("Block A"), section("Block B")],
        };
        let inventory = Inventory::Numbered {
            seats: vec![SeatState::Free; 1_600],
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
        let plan0 = plan(&map, seats, "EUR", (None, None), &[]);
        assert_eq!(plan0.blocks.len(), 2);
        assert!(plan0.shown.is_none());
        assert_eq!(plan0.blocks[1].href, "?section=Block%20B");
        let b = plan(&map, seats, "EUR", (Some("block b"), None), &[]);
        let shown = b.shown.expect("Block B shown");
        assert_eq!(shown.rows.len(), 20);
        assert_eq!(shown.rows[2].seats[7].label, "Block B, Row 3, Seat 8");
        let by_seat = plan(&map, seats, "EUR", (None, None), &[1_300]);
        assert_eq!(by_seat.shown.expect("shown").index, 1);
    }

    // A large venue of one unnamed section (an arena created as plain rows, or as one long
    // row) is shown in pages of at most 1,000 seats: whole rows, else parts of a row.
    #[test]
    fn a_large_unnamed_section_is_shown_in_pages() {
        let numbered = |rows: Option<tix_core::SeatLayout>| Inventory::Numbered {
            seats: vec![SeatState::Free; 20_000],
            layout: rows,
            sold: 0,
            held: 0,
            blocked: 0,
            first_free_hint: 1,
        };
        let rows = numbered(Some(tix_core::SeatLayout {
            rows: 200,
            seats_per_row: 100,
        }));
        let map = SeatMap::of(&rows, None, 0).expect("numbered");
        let overview = plan(&map, rows.seat_states(), "EUR", (None, None), &[]);
        assert_eq!(overview.blocks.len(), 20);
        assert_eq!(overview.blocks[1].name, "Rows 11–20");
        assert_eq!(overview.blocks[1].href, "?section=&page=2");
        assert!(overview.shown.is_none());
        let second = plan(&map, rows.seat_states(), "EUR", (Some(""), Some(2)), &[]);
        let shown = second.shown.expect("page 2");
        assert_eq!((shown.rows.len(), shown.rows[0].label), (10, 11));
        assert_eq!(shown.rows[0].seats[0].label, "Row 11, Seat 1");
        let by_number = plan(&map, rows.seat_states(), "EUR", (None, Some(3)), &[]);
        assert_eq!(by_number.shown.expect("page 3").rows[0].label, 21);

        let long = numbered(None);
        let map = SeatMap::of(&long, None, 0).expect("numbered");
        let overview = plan(&map, long.seat_states(), "EUR", (None, None), &[]);
        assert_eq!(overview.blocks.len(), 20);
        assert_eq!(overview.blocks[19].name, "Row 1 · seats 19001–20000");
        let chosen = plan(&map, long.seat_states(), "EUR", (None, None), &[4_817]);
        let shown = chosen.shown.expect("the page of seat 4817");
        assert_eq!(shown.rows[0].seats.len(), 1_000);
        assert_eq!(shown.rows[0].seats[0].number, 4_001);
    }
}
