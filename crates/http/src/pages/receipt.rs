//! The price breakdown of an order, shown at checkout and repeated on the confirmation: one
//! line per seat ("Seat 12 · row 2", named as the door names it), or one per price for general
//! admission, each with its unit price,
//! quantity and amount, then the total, all in the event's currency through [`money`]. tix
//! charges no fees, so there is no fee line: what the lines add up to is what the card pays.

use tix_core::{Inventory, SeatMap, VenueLayout};

use super::money;

/// One line of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// "Seat 12" or "General admission".
    pub ticket: String,
    /// The price of one ticket.
    pub unit: String,
    /// How many.
    pub quantity: u32,
    /// `unit` × `quantity`.
    pub amount: String,
}

/// What an order costs, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breakdown {
    /// The lines, seats in the order given, general admission after them.
    pub lines: Vec<Line>,
    /// The sum of the lines, in minor units.
    pub total_cents: u64,
    /// The same, formatted.
    pub total: String,
}

/// A seat (or its absence) in words, on receipts and at the door: by section, row and seat
/// ("Block A, Row 3, Seat 8") when the event has named sections, with its row when it has
/// rows, alone without, "General admission" without a seat.
pub fn seat_name(inventory: &Inventory, venue: Option<&VenueLayout>, seat: Option<u32>) -> String {
    if let (Some(n), Some(venue)) = (seat, venue)
        && let Some(map) = SeatMap::of(inventory, Some(venue), 0)
    {
        return map.seat_name(n);
    }
    match (seat, inventory) {
        (None, _) => "General admission".into(),
        (
            Some(n),
            Inventory::Numbered {
                layout: Some(l), ..
            },
        ) if l.seats_per_row > 0 => {
            format!(
                "Seat {n} · row {}",
                n.saturating_sub(1) / l.seats_per_row + 1
            )
        }
        (Some(n), _) => format!("Seat {n}"),
    }
}

impl Breakdown {
    /// The breakdown of tickets given as `(seat, price_cents)`: a line per seat, and the
    /// general-admission tickets of one price on one line.
    pub fn of(
        tickets: &[(Option<u32>, u64)],
        inventory: &Inventory,
        venue: Option<&VenueLayout>,
        currency: &str,
    ) -> Breakdown {
        let mut lines = Vec::new();
        let mut general: Vec<(u64, u32)> = Vec::new();
        for &(seat, price_cents) in tickets {
            match seat {
                Some(_) => lines.push((seat_name(inventory, venue, seat), price_cents, 1)),
                None => match general.iter_mut().find(|(p, _)| *p == price_cents) {
                    Some((_, n)) => *n += 1,
                    None => general.push((price_cents, 1)),
                },
            }
        }
        lines.extend(
            general
                .into_iter()
                .map(|(price, n)| (seat_name(inventory, venue, None), price, n)),
        );
        let total_cents = lines
            .iter()
            .map(|(_, price, n)| price * u64::from(*n))
            .sum();
        Breakdown {
            lines: lines
                .into_iter()
                .map(|(ticket, price, quantity)| Line {
                    ticket,
                    unit: money(price, currency),
                    quantity,
                    amount: money(price * u64::from(quantity), currency),
                })
                .collect(),
            total_cents,
            total: money(total_cents, currency),
        }
    }

    /// The breakdown of a hold: `quantity` tickets at `price_cents`, on `seats` if numbered.
    pub fn of_hold(
        seats: &[u32],
        quantity: u32,
        price_cents: u64,
        inventory: &Inventory,
        venue: Option<&VenueLayout>,
        currency: &str,
    ) -> Breakdown {
        let tickets: Vec<(Option<u32>, u64)> = if seats.is_empty() {
            vec![(None, price_cents); quantity as usize]
        } else {
            seats.iter().map(|s| (Some(*s), price_cents)).collect()
        };
        Breakdown::of(&tickets, inventory, venue, currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tix_core::{SeatLayout, SeatState};

    fn numbered(layout: Option<SeatLayout>) -> Inventory {
        Inventory::Numbered {
            seats: vec![SeatState::Free; 10],
            layout,
            sold: 0,
            held: 0,
            blocked: 0,
            first_free_hint: 1,
        }
    }

    const GENERAL: Inventory = Inventory::Unnumbered {
        capacity: 10,
        sold: 0,
        held: 0,
    };

    // A seat is named with its row when the event has a layout, alone without one, and general
    // admission without a seat.
    #[test]
    fn seats_are_named_with_their_row() {
        let rows = numbered(Some(SeatLayout {
            rows: 2,
            seats_per_row: 5,
        }));
        assert_eq!(seat_name(&rows, None, Some(5)), "Seat 5 · row 1");
        assert_eq!(seat_name(&rows, None, Some(6)), "Seat 6 · row 2");
        assert_eq!(seat_name(&numbered(None), None, Some(6)), "Seat 6");
        assert_eq!(seat_name(&rows, None, None), "General admission");
    }

    // Seats get a line each; general admission one line per price; the total adds them up.
    #[test]
    fn lines_per_seat_and_per_general_admission_price() {
        let seated = Breakdown::of_hold(&[3, 4], 2, 2_500, &numbered(None), None, "EUR");
        assert_eq!(
            seated.lines,
            vec![
                Line {
                    ticket: "Seat 3".into(),
                    unit: "25.00 EUR".into(),
                    quantity: 1,
                    amount: "25.00 EUR".into(),
                },
                Line {
                    ticket: "Seat 4".into(),
                    unit: "25.00 EUR".into(),
                    quantity: 1,
                    amount: "25.00 EUR".into(),
                },
            ]
        );
        assert_eq!(
            (seated.total_cents, seated.total.as_str()),
            (5_000, "50.00 EUR")
        );

        let general = Breakdown::of_hold(&[], 3, 1_250, &GENERAL, None, "USD");
        assert_eq!(general.lines.len(), 1);
        assert_eq!(general.lines[0].ticket, "General admission");
        assert_eq!(general.lines[0].quantity, 3);
        assert_eq!(general.lines[0].amount, "37.50 USD");
        assert_eq!(general.total, "37.50 USD");

        // An order bought before and after a price change: two general-admission lines.
        let mixed = Breakdown::of(
            &[(None, 1_000), (None, 1_200), (None, 1_000)],
            &GENERAL,
            None,
            "EUR",
        );
        let lines: Vec<(u32, &str)> = mixed
            .lines
            .iter()
            .map(|l| (l.quantity, l.unit.as_str()))
            .collect();
        assert_eq!(lines, vec![(2, "10.00 EUR"), (1, "12.00 EUR")]);
        assert_eq!(mixed.total, "32.00 EUR");
        assert_eq!(Breakdown::of(&[], &GENERAL, None, "EUR").total, "0.00 EUR");
    }
}
