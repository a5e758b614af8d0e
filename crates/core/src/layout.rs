//! Venue layouts: how an event's seat numbers `1..=N` map to named sections, rows and seats, and
//! what each seat costs.
//!
//! The inventory keeps numbering seats `1..=N` (holds, tickets, bitmaps and the API all speak
//! seat numbers); a [`VenueLayout`] only names them. Sections are laid out one after another in
//! the order the organizer listed them, each row by row: seat 1 is the first seat of the first
//! row of the first section, and every seat is in exactly one section, row and place — the
//! mapping is prefix sums, so it cannot overlap or leave a gap. An event without a sections
//! layout reads as one unnamed section ([`SeatMap::of`]): its rows of `seats_per_row`, or one
//! row of every seat, at the event's price. [`SeatMap::best_together`] is "N together, best
//! available": adjacent free seats in one row, front rows first, then closest to the row's
//! centre, decided here so every replica picks the same seats.

use serde::{Deserialize, Serialize};

use crate::command::SectionSpec;
use crate::inventory::{Inventory, SeatState};

/// The most sections one venue may have.
pub const SECTIONS_MAX: usize = 100;
/// The longest section name, in characters.
pub const SECTION_NAME_CHARS_MAX: usize = 60;

/// An event's sections, in the organizer's order; fixed when the event is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueLayout {
    /// The sections; section `i`'s seats follow section `i - 1`'s.
    pub sections: Vec<SectionSpec>,
}

impl VenueLayout {
    /// Checks sections against the limits and returns the number of seats they hold, or says
    /// what is wrong (in the organizer's words).
    pub fn check(
        sections: &[SectionSpec],
        capacity_max: u32,
        price_cents_max: u64,
    ) -> Result<u32, String> {
        if sections.is_empty() || sections.len() > SECTIONS_MAX {
            return Err(format!("a venue has 1 to {SECTIONS_MAX} sections"));
        }
        let mut total: u64 = 0;
        for (i, s) in sections.iter().enumerate() {
            let name = s.name.trim();
            if name.is_empty() || name.chars().count() > SECTION_NAME_CHARS_MAX {
                return Err(format!(
                    "section {} needs a name of 1 to {SECTION_NAME_CHARS_MAX} characters",
                    i + 1
                ));
            }
            let taken = sections[..i]
                .iter()
                .any(|o| o.name.trim().eq_ignore_ascii_case(name));
            if taken {
                return Err(format!("two sections are named \"{name}\""));
            }
            if s.rows == 0 || s.seats_per_row == 0 {
                return Err(format!(
                    "section \"{name}\" needs at least one row of one seat"
                ));
            }
            if s.price_cents > price_cents_max {
                return Err(format!(
                    "section \"{name}\" costs more than the most allowed ({price_cents_max} cents)"
                ));
            }
            total += u64::from(s.rows) * u64::from(s.seats_per_row);
        }
        if total > u64::from(capacity_max) {
            return Err(format!(
                "the sections hold {total} seats; at most {capacity_max}"
            ));
        }
        Ok(total as u32)
    }
}

/// One section as the seat map reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapSection<'a> {
    /// Its name; empty for the one section of an event without a layout.
    pub name: &'a str,
    /// Rows, front first.
    pub rows: u32,
    /// Seats in each row.
    pub seats_per_row: u32,
    /// The number of its first seat (row 1, place 1).
    pub first_seat: u32,
    /// What one of its seats costs, in minor units.
    pub price_cents: u64,
}

impl MapSection<'_> {
    /// Returns the number of seats in the section.
    pub fn seats(&self) -> u32 {
        self.rows * self.seats_per_row
    }

    /// Returns the seat number at `row` and `place` (both from 1).
    pub fn seat_at(&self, row: u32, place: u32) -> u32 {
        self.first_seat + (row - 1) * self.seats_per_row + (place - 1)
    }
}

/// Where one seat is: its section (index), row and place in the row (both from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatPlace {
    /// Index into [`SeatMap::sections`].
    pub section: u32,
    /// Row, from 1 (the front).
    pub row: u32,
    /// Place in the row, from 1.
    pub place: u32,
}

/// Why "N together" found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TogetherRefusal {
    /// The section index does not exist.
    UnknownSection,
    /// No row (of the section, or anywhere) has this many adjacent free seats.
    NoAdjacentSeats,
}

/// An event's seats read as sections × rows × places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatMap<'a> {
    /// The sections, in order; their seats cover `1..=N` exactly once.
    pub sections: Vec<MapSection<'a>>,
}

impl<'a> SeatMap<'a> {
    /// Reads a numbered inventory's map: the layout's sections, or one unnamed section (rows of
    /// `seats_per_row`, or a single row) at `price_cents`. `None` for general admission.
    pub fn of(
        inventory: &Inventory,
        layout: Option<&'a VenueLayout>,
        price_cents: u64,
    ) -> Option<SeatMap<'a>> {
        let Inventory::Numbered {
            seats,
            layout: rows,
            ..
        } = inventory
        else {
            return None;
        };
        let sections = match layout {
            Some(layout) => {
                let mut first_seat = 1;
                let mut out = Vec::with_capacity(layout.sections.len());
                for s in &layout.sections {
                    out.push(MapSection {
                        name: s.name.trim(),
                        rows: s.rows,
                        seats_per_row: s.seats_per_row,
                        first_seat,
                        price_cents: s.price_cents,
                    });
                    first_seat += s.rows * s.seats_per_row;
                }
                out
            }
            None => {
                let (rows, per_row) = match rows {
                    Some(l) => (l.rows, l.seats_per_row),
                    None => (1, seats.len() as u32),
                };
                vec![MapSection {
                    name: "",
                    rows,
                    seats_per_row: per_row,
                    first_seat: 1,
                    price_cents,
                }]
            }
        };
        Some(SeatMap { sections })
    }

    /// Returns the number of seats the map covers.
    pub fn seats(&self) -> u32 {
        self.sections.iter().map(MapSection::seats).sum()
    }

    /// Returns where seat `n` is, if it exists.
    pub fn place(&self, n: u32) -> Option<SeatPlace> {
        let index = self
            .sections
            .iter()
            .position(|s| n >= s.first_seat && n < s.first_seat + s.seats())?;
        let s = &self.sections[index];
        let offset = n - s.first_seat;
        Some(SeatPlace {
            section: index as u32,
            row: offset / s.seats_per_row + 1,
            place: offset % s.seats_per_row + 1,
        })
    }

    /// Returns the index of the section named `name` (trimmed, ignoring ASCII case).
    pub fn section_named(&self, name: &str) -> Option<u32> {
        let name = name.trim();
        let index = self
            .sections
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name))?;
        Some(index as u32)
    }

    /// Returns the seat's name for people: "Block A, Row 3, Seat 8" ("Row 3, Seat 8" in an
    /// unnamed section), or "Seat n" when the map does not cover it.
    pub fn seat_name(&self, n: u32) -> String {
        match self.place(n) {
            Some(p) => {
                let section = self.sections[p.section as usize].name;
                let prefix = if section.is_empty() {
                    String::new()
                } else {
                    format!("{section}, ")
                };
                format!("{prefix}Row {}, Seat {}", p.row, p.place)
            }
            None => format!("Seat {n}"),
        }
    }

    /// Returns the price of seat `n`, if it exists.
    pub fn price_of(&self, n: u32) -> Option<u64> {
        let p = self.place(n)?;
        Some(self.sections[p.section as usize].price_cents)
    }

    /// Returns `quantity` adjacent free seats in one row: in `section` only when given, else in
    /// the first section (in the organizer's order) that has them. Best is the front-most row
    /// that has such a run, then the run whose middle is closest to the row's centre, then the
    /// lower seat number. A group is never split: when no row has `quantity` adjacent free
    /// seats the answer is `NoAdjacentSeats`.
    pub fn best_together(
        &self,
        states: &[SeatState],
        quantity: u32,
        section: Option<u32>,
    ) -> Result<Vec<u32>, TogetherRefusal> {
        assert_eq!(
            self.seats() as usize,
            states.len(),
            "the map covers every seat"
        );
        let candidates: Vec<&MapSection> = match section {
            Some(i) => {
                let s = self
                    .sections
                    .get(i as usize)
                    .ok_or(TogetherRefusal::UnknownSection)?;
                vec![s]
            }
            None => self.sections.iter().collect(),
        };
        for s in candidates {
            if let Some(first) = best_in_section(s, states, quantity) {
                return Ok((first..first + quantity).collect());
            }
        }
        Err(TogetherRefusal::NoAdjacentSeats)
    }
}

impl SeatMap<'_> {
    /// Returns the `quantity` lowest-numbered free seats of one price: of the first price (in
    /// the sections' order) that has that many free seats across its sections. `None` when no
    /// price has enough (the caller knows whether that is sold out or only split by price).
    pub fn lowest_free_of_one_price(
        &self,
        states: &[SeatState],
        quantity: u32,
    ) -> Option<Vec<u32>> {
        let mut prices: Vec<u64> = Vec::new();
        for s in &self.sections {
            if !prices.contains(&s.price_cents) {
                prices.push(s.price_cents);
            }
        }
        prices.into_iter().find_map(|price| {
            let picked: Vec<u32> = self
                .sections
                .iter()
                .filter(|s| s.price_cents == price)
                .flat_map(|s| s.first_seat..s.first_seat + s.seats())
                .filter(|&n| states[n as usize - 1] == SeatState::Free)
                .take(quantity as usize)
                .collect();
            (picked.len() == quantity as usize).then_some(picked)
        })
    }
}

/// The first seat of the best run of `quantity` free seats in one row of `s`, if any.
fn best_in_section(s: &MapSection, states: &[SeatState], quantity: u32) -> Option<u32> {
    if quantity == 0 || quantity > s.seats_per_row {
        return None;
    }
    (1..=s.rows).find_map(|row| best_in_row(s, row, states, quantity))
}

/// The first seat of the run of `quantity` free seats in `row` closest to the row's centre.
fn best_in_row(s: &MapSection, row: u32, states: &[SeatState], quantity: u32) -> Option<u32> {
    let first = s.seat_at(row, 1);
    let row_states = &states[first as usize - 1..(first + s.seats_per_row) as usize - 1];
    // Distances are doubled so centres between two seats stay integers.
    let centre2 = i64::from(s.seats_per_row) - 1;
    let mut best: Option<(i64, u32)> = None;
    let mut run = 0u32;
    for (i, state) in row_states.iter().enumerate() {
        run = if *state == SeatState::Free {
            run + 1
        } else {
            0
        };
        if run >= quantity {
            let start = i as u32 + 1 - quantity;
            let middle2 = 2 * i64::from(start) + i64::from(quantity) - 1;
            let distance = (middle2 - centre2).abs();
            if best.is_none_or(|(d, _)| distance < d) {
                best = Some((distance, start));
            }
        }
    }
    best.map(|(_, start)| first + start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, rows: u32, per_row: u32, price: u64) -> SectionSpec {
        SectionSpec {
            name: name.into(),
            rows,
            seats_per_row: per_row,
            price_cents: price,
        }
    }

    fn numbered(n: u32) -> Inventory {
        Inventory::Numbered {
            seats: vec![SeatState::Free; n as usize],
            layout: None,
            sold: 0,
            held: 0,
            blocked: 0,
            first_free_hint: 1,
        }
    }

    #[test]
    fn seats_are_named_by_section_row_and_place() {
        // Two sections of 2×3 and 1×4: seat 8 is the second seat of Block B's first row.
        let layout = VenueLayout {
            sections: vec![spec("Block A", 2, 3, 100), spec("Block B", 1, 4, 200)],
        };
        let inv = numbered(10);
        let map = SeatMap::of(&inv, Some(&layout), 0).expect("numbered");
        assert_eq!(map.seat_name(1), "Block A, Row 1, Seat 1");
        assert_eq!(map.seat_name(6), "Block A, Row 2, Seat 3");
        assert_eq!(map.seat_name(8), "Block B, Row 1, Seat 2");
        assert_eq!(map.price_of(8), Some(200));
        assert_eq!(map.place(11), None);
        assert_eq!(map.section_named(" block b "), Some(1));
    }

    #[test]
    fn a_plain_numbered_event_is_one_unnamed_section() {
        // No layout, no rows: one row of every seat at the event's price.
        let inv = numbered(5);
        let map = SeatMap::of(&inv, None, 700).expect("numbered");
        assert_eq!(map.sections.len(), 1);
        assert_eq!(map.seat_name(5), "Row 1, Seat 5");
        assert_eq!(map.price_of(3), Some(700));
    }

    #[test]
    fn together_prefers_the_front_row_and_its_centre() {
        // Two rows of 10 with seat 5 blocked: the centre pair 5–6 is gone, and of the pairs
        // left 6–7 is closest to the centre; five together fit only in 6–10; six need row 2,
        // where 13–18 is centred; eleven fit nowhere.
        let layout = VenueLayout {
            sections: vec![spec("A", 2, 10, 0)],
        };
        let mut inv = numbered(20);
        if let Inventory::Numbered { seats, .. } = &mut inv {
            seats[4] = SeatState::Blocked;
        }
        let Inventory::Numbered { seats, .. } = &inv else {
            unreachable!()
        };
        let map = SeatMap::of(&inv, Some(&layout), 0).expect("numbered");
        assert_eq!(map.best_together(seats, 2, Some(0)), Ok(vec![6, 7]));
        assert_eq!(map.best_together(seats, 5, None), Ok(vec![6, 7, 8, 9, 10]));
        assert_eq!(
            map.best_together(seats, 6, None),
            Ok(vec![13, 14, 15, 16, 17, 18])
        );
        assert_eq!(
            map.best_together(seats, 11, None),
            Err(TogetherRefusal::NoAdjacentSeats)
        );
        assert_eq!(
            map.best_together(seats, 1, Some(1)),
            Err(TogetherRefusal::UnknownSection)
        );
    }

    #[test]
    fn layouts_are_checked_against_the_limits() {
        // Empty, unnamed, duplicate, zero-sized, too expensive and too large layouts are refused.
        assert!(VenueLayout::check(&[], 100, 100).is_err());
        assert!(VenueLayout::check(&[spec(" ", 1, 1, 0)], 100, 100).is_err());
        let twins = [spec("A", 1, 1, 0), spec("a", 1, 1, 0)];
        assert!(VenueLayout::check(&twins, 100, 100).is_err());
        assert!(VenueLayout::check(&[spec("A", 0, 1, 0)], 100, 100).is_err());
        assert!(VenueLayout::check(&[spec("A", 1, 1, 101)], 100, 100).is_err());
        assert!(VenueLayout::check(&[spec("A", 10, 11, 0)], 100, 100).is_err());
        assert_eq!(
            VenueLayout::check(&[spec("A", 10, 10, 100)], 100, 100),
            Ok(100)
        );
    }

    // The section limits from both sides: 100 sections and 60-character names pass, one more
    // of either is refused.
    #[test]
    fn section_limits_from_both_sides() {
        let many = |n: usize| -> Vec<SectionSpec> {
            (0..n).map(|i| spec(&format!("S{i}"), 1, 1, 0)).collect()
        };
        assert_eq!(VenueLayout::check(&many(SECTIONS_MAX), 1_000, 0), Ok(100));
        assert!(VenueLayout::check(&many(SECTIONS_MAX + 1), 1_000, 0).is_err());
        let long = "x".repeat(SECTION_NAME_CHARS_MAX);
        assert!(VenueLayout::check(&[spec(&long, 1, 1, 0)], 10, 0).is_ok());
        let longer = "x".repeat(SECTION_NAME_CHARS_MAX + 1);
        assert!(VenueLayout::check(&[spec(&longer, 1, 1, 0)], 10, 0).is_err());
    }
}
