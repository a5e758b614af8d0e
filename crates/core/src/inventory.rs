//! Inventory of one event: a counter for general admission, or one state per seat for numbered
//! events. Counters (`sold`, `held`) are kept beside the seats so availability is O(1); the
//! invariant checker recomputes them from the seats.

use serde::{Deserialize, Serialize};

use crate::command::InventorySpec;
use crate::ids::{HoldId, TicketId};
use crate::layout::VenueLayout;
use crate::outcome::Rejection;

/// The state of one numbered seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeatState {
    /// On sale.
    Free,
    /// Never sold.
    Blocked,
    /// Reserved by an active hold.
    Held(HoldId),
    /// Sold on this ticket.
    Sold(TicketId),
}

/// Rows of equal length, for drawing the seat map. Seat `n` is in row `(n-1) / seats_per_row`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatLayout {
    /// Number of rows.
    pub rows: u32,
    /// Seats in each row.
    pub seats_per_row: u32,
}

/// What an event has to sell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Inventory {
    /// General admission.
    Unnumbered {
        /// Tickets in total.
        capacity: u32,
        /// Tickets sold and not refunded.
        sold: u32,
        /// Tickets in active holds.
        held: u32,
    },
    /// Numbered seats `1..=seats.len()`.
    Numbered {
        /// `seats[n-1]` is the state of seat `n`.
        seats: Vec<SeatState>,
        /// Row layout for the seat map, if any.
        layout: Option<SeatLayout>,
        /// Seats sold and not refunded.
        sold: u32,
        /// Seats in active holds.
        held: u32,
        /// Seats blocked from sale.
        blocked: u32,
        /// No free seat has a number below this; speeds up best-available picks.
        first_free_hint: u32,
    },
}

impl Inventory {
    /// Builds an empty inventory from its spec, or says what is wrong with the spec.
    pub fn from_spec(spec: &InventorySpec, capacity_max: u32) -> Result<Inventory, String> {
        match spec {
            InventorySpec::Unnumbered { capacity } => {
                if *capacity == 0 || *capacity > capacity_max {
                    return Err(format!("capacity must be between 1 and {capacity_max}"));
                }
                Ok(Inventory::Unnumbered {
                    capacity: *capacity,
                    sold: 0,
                    held: 0,
                })
            }
            InventorySpec::Numbered {
                seats,
                seats_per_row,
                blocked,
            } => {
                if *seats == 0 || *seats > capacity_max {
                    return Err(format!("seats must be between 1 and {capacity_max}"));
                }
                let layout = match seats_per_row {
                    None => None,
                    Some(0) => return Err("seats_per_row must be at least 1".into()),
                    Some(per_row) if seats % per_row != 0 => {
                        return Err(format!(
                            "seats ({seats}) must be a multiple of seats_per_row ({per_row})"
                        ));
                    }
                    Some(per_row) => Some(SeatLayout {
                        rows: seats / per_row,
                        seats_per_row: *per_row,
                    }),
                };
                numbered(*seats, layout, blocked)
            }
            InventorySpec::Sections { sections, blocked } => {
                // Section prices are checked against the limits by the state (`BadPrice`).
                let seats = VenueLayout::check(sections, capacity_max, u64::MAX)?;
                numbered(seats, None, blocked)
            }
        }
    }

    /// Returns how many tickets can ever be sold (blocked seats excluded).
    pub fn capacity(&self) -> u32 {
        match self {
            Inventory::Unnumbered { capacity, .. } => *capacity,
            Inventory::Numbered { seats, blocked, .. } => seats.len() as u32 - blocked,
        }
    }

    /// Returns tickets sold and not refunded.
    pub fn sold(&self) -> u32 {
        match self {
            Inventory::Unnumbered { sold, .. } | Inventory::Numbered { sold, .. } => *sold,
        }
    }

    /// Returns tickets in active holds.
    pub fn held(&self) -> u32 {
        match self {
            Inventory::Unnumbered { held, .. } | Inventory::Numbered { held, .. } => *held,
        }
    }

    /// Returns tickets still on sale.
    pub fn available(&self) -> u32 {
        self.capacity() - self.sold() - self.held()
    }

    /// Returns true for a numbered event.
    pub fn is_numbered(&self) -> bool {
        matches!(self, Inventory::Numbered { .. })
    }

    /// Returns the state of seat `n`, if it exists.
    pub fn seat(&self, n: u32) -> Option<SeatState> {
        match self {
            Inventory::Numbered { seats, .. } if n >= 1 => seats.get(n as usize - 1).copied(),
            _ => None,
        }
    }

    /// Returns the per-seat states of a numbered inventory (empty for general admission).
    pub fn seat_states(&self) -> &[SeatState] {
        match self {
            Inventory::Numbered { seats, .. } => seats,
            Inventory::Unnumbered { .. } => &[],
        }
    }

    /// Checks that `seats` can all be taken now, without changing anything.
    pub fn check_seats_free(&self, wanted: &[u32]) -> Result<(), Rejection> {
        let Inventory::Numbered { seats, .. } = self else {
            return Err(Rejection::SeatNotApplicable);
        };
        let count = seats.len() as u32;
        for (i, &seat) in wanted.iter().enumerate() {
            if seat == 0 || seat > count {
                return Err(Rejection::SeatOutOfRange { seat, seats: count });
            }
            if wanted[..i].contains(&seat) {
                return Err(Rejection::DuplicateSeat { seat });
            }
            match seats[seat as usize - 1] {
                SeatState::Free => {}
                SeatState::Blocked => return Err(Rejection::SeatBlocked { seat }),
                SeatState::Held(_) | SeatState::Sold(_) => {
                    return Err(Rejection::SeatTaken { seat });
                }
            }
        }
        Ok(())
    }

    /// Returns the `n` lowest-numbered free seats, or `SoldOut` if fewer are free.
    pub fn best_available(&self, n: u32) -> Result<Vec<u32>, Rejection> {
        let Inventory::Numbered {
            seats,
            first_free_hint,
            ..
        } = self
        else {
            return Err(Rejection::SeatNotApplicable);
        };
        if self.available() < n {
            return Err(Rejection::SoldOut);
        }
        let start = (*first_free_hint).max(1) as usize - 1;
        let picked: Vec<u32> = seats[start..]
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == SeatState::Free)
            .take(n as usize)
            .map(|(i, _)| (start + i + 1) as u32)
            .collect();
        assert_eq!(
            picked.len() as u32,
            n,
            "available count disagrees with seat states"
        );
        Ok(picked)
    }

    /// Marks seats (numbered) or a quantity (unnumbered) as held. The caller has checked.
    pub fn hold(&mut self, hold: HoldId, quantity: u32, wanted: &[u32]) {
        match self {
            Inventory::Unnumbered { held, .. } => *held += quantity,
            Inventory::Numbered {
                seats,
                held,
                first_free_hint,
                ..
            } => {
                for &seat in wanted {
                    let state = &mut seats[seat as usize - 1];
                    assert_eq!(*state, SeatState::Free, "holding a seat that is not free");
                    *state = SeatState::Held(hold);
                    *held += 1;
                }
                advance_hint(seats, first_free_hint);
            }
        }
    }

    /// Releases held inventory back to sale (expiry, cancel, declined payment).
    pub fn unhold(&mut self, quantity: u32, wanted: &[u32]) {
        match self {
            Inventory::Unnumbered { held, .. } => *held -= quantity,
            Inventory::Numbered {
                seats,
                held,
                first_free_hint,
                ..
            } => {
                for &seat in wanted {
                    seats[seat as usize - 1] = SeatState::Free;
                    *held -= 1;
                    *first_free_hint = (*first_free_hint).min(seat);
                }
            }
        }
    }

    /// Turns one held unit into a sold ticket.
    pub fn sell_held(&mut self, ticket: TicketId, seat: Option<u32>) {
        match (self, seat) {
            (Inventory::Unnumbered { held, sold, .. }, None) => {
                *held -= 1;
                *sold += 1;
            }
            (
                Inventory::Numbered {
                    seats, held, sold, ..
                },
                Some(seat),
            ) => {
                let state = &mut seats[seat as usize - 1];
                assert!(
                    matches!(state, SeatState::Held(_)),
                    "selling a seat that is not held"
                );
                *state = SeatState::Sold(ticket);
                *held -= 1;
                *sold += 1;
            }
            _ => panic!("seat presence does not match inventory kind"),
        }
    }

    /// Sells one free unit directly (box office). The caller has checked availability.
    pub fn sell_free(&mut self, ticket: TicketId, seat: Option<u32>) {
        match (self, seat) {
            (
                Inventory::Unnumbered {
                    sold,
                    capacity,
                    held,
                },
                None,
            ) => {
                assert!(*sold + *held < *capacity, "selling beyond capacity");
                *sold += 1;
            }
            (
                Inventory::Numbered {
                    seats,
                    sold,
                    first_free_hint,
                    ..
                },
                Some(seat),
            ) => {
                let state = &mut seats[seat as usize - 1];
                assert_eq!(*state, SeatState::Free, "selling a seat that is not free");
                *state = SeatState::Sold(ticket);
                *sold += 1;
                advance_hint(seats, first_free_hint);
            }
            _ => panic!("seat presence does not match inventory kind"),
        }
    }

    /// Puts a refunded ticket's unit back on sale.
    pub fn unsell(&mut self, seat: Option<u32>) {
        match (self, seat) {
            (Inventory::Unnumbered { sold, .. }, None) => *sold -= 1,
            (
                Inventory::Numbered {
                    seats,
                    sold,
                    first_free_hint,
                    ..
                },
                Some(seat),
            ) => {
                seats[seat as usize - 1] = SeatState::Free;
                *sold -= 1;
                *first_free_hint = (*first_free_hint).min(seat);
            }
            _ => panic!("seat presence does not match inventory kind"),
        }
    }
}

/// Builds a numbered inventory of `seats` free seats but the `blocked` ones.
fn numbered(seats: u32, layout: Option<SeatLayout>, blocked: &[u32]) -> Result<Inventory, String> {
    let mut states = vec![SeatState::Free; seats as usize];
    let mut blocked_count = 0;
    for &seat in blocked {
        if seat == 0 || seat > seats {
            return Err(format!("blocked seat {seat} is not in 1..={seats}"));
        }
        if states[seat as usize - 1] == SeatState::Free {
            states[seat as usize - 1] = SeatState::Blocked;
            blocked_count += 1;
        }
    }
    if blocked_count == seats {
        return Err("every seat is blocked".into());
    }
    Ok(Inventory::Numbered {
        seats: states,
        layout,
        sold: 0,
        held: 0,
        blocked: blocked_count,
        first_free_hint: 1,
    })
}

/// Moves the hint past seats that are no longer free, so best-available scans stay short.
fn advance_hint(seats: &[SeatState], hint: &mut u32) {
    let mut n = (*hint).max(1);
    while (n as usize) <= seats.len() && seats[n as usize - 1] != SeatState::Free {
        n += 1;
    }
    *hint = n;
}
