//! Waiting rooms: the fair front door of an on-sale, kept in the replicated state.
//!
//! An organizer gives an event a waiting room: the time the sale opens, how many visitors are
//! admitted per minute and how long an admitted visitor may buy. A visitor (an account, or a
//! box office's customer) joins once; joining again is the same place. Who joined before the
//! opening is in the *pre-queue*, ordered at the opening by a keyed hash of the visitor under
//! the room's secret seed — a draw: arriving at 09:59:59 is no better than at 09:45, and the
//! order cannot be known or ground in advance. Who joins after the opening queues behind, first
//! come first served. Each place is a *slot* of a leaky bucket: slot `s` is admitted at
//! `opens_at + s × 60 000 / admit_per_min` ms, and a late joiner takes the next free slot not
//! earlier than its arrival, so a crowd arriving after the queue has drained is still admitted
//! at the rate, not all at once. Once drawn, every place's admission time and buying window are
//! fixed: the edge hands the visitor a signed token carrying them, and checks a purchase against
//! the token alone. Everything here is decided by the log (joins and log time), so a leader
//! change neither loses nor reorders the queue.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{EventId, UserId};

/// The shortest buying window an organizer may give admitted visitors.
pub const WINDOW_MS_MIN: u64 = 60_000;
/// The longest buying window.
pub const WINDOW_MS_MAX: u64 = 24 * 60 * 60 * 1000;
/// The highest admission rate, visitors per minute (a million: effectively no queue).
pub const ADMIT_PER_MIN_MAX: u32 = 1_000_000;
/// The longest visitor id, in bytes.
pub const VISITOR_BYTES_MAX: usize = 160;
/// The most visitors one waiting room holds (about 100 bytes each in memory).
pub const VISITORS_PER_ROOM_MAX: u32 = 2_000_000;

/// What an organizer decides about an event's waiting room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingRoomSpec {
    /// When the sale opens, ms since the Unix epoch; a time already past means now.
    pub opens_at_ms: u64,
    /// Visitors admitted per minute, 1 to [`ADMIT_PER_MIN_MAX`].
    pub admit_per_min: u32,
    /// How long an admitted visitor may buy, [`WINDOW_MS_MIN`] to [`WINDOW_MS_MAX`].
    pub window_ms: u64,
}

/// One visitor's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Place {
    /// Joined before the opening; `draw` orders the pre-queue at the opening.
    Early {
        /// The visitor's draw (a keyed hash): lower goes first.
        draw: u64,
    },
    /// A slot in the admission order: slot `s` is admitted at `opens_at + s × interval`.
    Slot(u32),
}

/// An event's waiting room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingRoom {
    /// Which event.
    pub event_id: EventId,
    /// The organizer's settings.
    pub spec: WaitingRoomSpec,
    /// Secret: keys the pre-queue draw and the admission tokens. Drawn at the edge, never
    /// shown in any view.
    pub seed: [u8; 32],
    /// Every visitor's place, by visitor id.
    visitors: BTreeMap<String, Place>,
    /// How many joined before the opening.
    early: u32,
    /// Whether the pre-queue has been drawn (log time reached the opening).
    drawn: bool,
    /// The next free slot.
    next_slot: u32,
}

/// Where a visitor stands, as the state knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueStanding {
    /// In the pre-queue: the order is drawn at `opens_at_ms`.
    Early {
        /// When the draw happens and the sale opens.
        opens_at_ms: u64,
    },
    /// A place in the admission order, fixed for good.
    Placed(PlaceTimes),
}

/// A drawn place: when its visitor is admitted and until when they may buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceTimes {
    /// The slot: how many places are admitted before this one.
    pub slot: u32,
    /// When the visitor is admitted, by log time.
    pub admit_at_ms: u64,
    /// When the buying window closes.
    pub until_ms: u64,
}

/// Why a waiting-room command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum QueueRejection {
    /// No such event.
    #[error("no such event")]
    EventNotFound,
    /// The event has no waiting room: buy directly.
    #[error("the event has no waiting room")]
    NoWaitingRoom,
    /// Only the event's organizer or an admin may set its waiting room.
    #[error("only the event's organizer or an admin may change its waiting room")]
    NotOrganizer,
    /// The sale has opened: the queue's order and times are fixed.
    #[error("the sale has opened; the waiting room can no longer be changed")]
    AlreadyOpen,
    /// A setting is out of range; names which.
    #[error("{0}")]
    Invalid(String),
    /// The waiting room is full.
    #[error("the waiting room is full")]
    Full,
    /// The event was cancelled.
    #[error("the event was cancelled")]
    EventCancelled,
}

/// A joined visitor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    /// Where they stand.
    pub standing: QueueStanding,
    /// False when they had joined before (this is their same place).
    pub new: bool,
}

impl WaitingRoomSpec {
    /// Checks the ranges; the error names the setting.
    pub fn validate(&self) -> Result<(), QueueRejection> {
        if self.admit_per_min == 0 || self.admit_per_min > ADMIT_PER_MIN_MAX {
            return Err(QueueRejection::Invalid(format!(
                "admit_per_min must be 1 to {ADMIT_PER_MIN_MAX}"
            )));
        }
        if !(WINDOW_MS_MIN..=WINDOW_MS_MAX).contains(&self.window_ms) {
            return Err(QueueRejection::Invalid(format!(
                "window_ms must be {WINDOW_MS_MIN} to {WINDOW_MS_MAX}"
            )));
        }
        Ok(())
    }

    /// When slot `slot` is admitted.
    pub fn admit_at_ms(&self, slot: u32) -> u64 {
        self.opens_at_ms + u64::from(slot) * 60_000 / u64::from(self.admit_per_min)
    }

    /// How many slots are admitted by `now_ms` (0 before the opening).
    pub fn admitted_by(&self, now_ms: u64) -> u64 {
        if now_ms < self.opens_at_ms {
            return 0;
        }
        (now_ms - self.opens_at_ms) * u64::from(self.admit_per_min) / 60_000 + 1
    }

    /// The first slot admitted at or after `now_ms`: the smallest `s` with
    /// `admit_at_ms(s) ≥ now_ms`, which is ⌈elapsed × rate / 60 000⌉.
    fn first_slot_from(&self, now_ms: u64) -> u64 {
        let elapsed = now_ms.saturating_sub(self.spec_opens());
        (elapsed * u64::from(self.admit_per_min)).div_ceil(60_000)
    }

    fn spec_opens(&self) -> u64 {
        self.opens_at_ms
    }
}

impl WaitingRoom {
    /// A new, empty room.
    pub fn new(event_id: EventId, spec: WaitingRoomSpec, seed: [u8; 32]) -> WaitingRoom {
        WaitingRoom {
            event_id,
            spec,
            seed,
            visitors: BTreeMap::new(),
            early: 0,
            drawn: false,
            next_slot: 0,
        }
    }

    /// How many visitors joined.
    pub fn visitors(&self) -> usize {
        self.visitors.len()
    }

    /// How many joined before the opening.
    pub fn early(&self) -> u32 {
        self.early
    }

    /// Whether the pre-queue has been drawn.
    pub fn drawn(&self) -> bool {
        self.drawn
    }

    /// How many places have been given: the slot the next joiner would get at the earliest.
    pub fn places(&self) -> u32 {
        self.next_slot
    }

    /// The visitor's draw: the first 8 bytes of SHA-256(seed ‖ visitor).
    fn draw(&self, visitor: &str) -> u64 {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(visitor.as_bytes());
        let d = h.finalize();
        u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
    }

    /// Where `visitor` stands, if they joined.
    pub fn standing(&self, visitor: &str) -> Option<QueueStanding> {
        self.visitors.get(visitor).map(|p| self.standing_of(*p))
    }

    fn standing_of(&self, place: Place) -> QueueStanding {
        match place {
            Place::Early { .. } => QueueStanding::Early {
                opens_at_ms: self.spec.opens_at_ms,
            },
            Place::Slot(slot) => {
                let admit_at_ms = self.spec.admit_at_ms(slot);
                QueueStanding::Placed(PlaceTimes {
                    slot,
                    admit_at_ms,
                    until_ms: admit_at_ms + self.spec.window_ms,
                })
            }
        }
    }

    /// Joins `visitor` at log time `now_ms` (after [`WaitingRoom::draw_if_due`]).
    pub(crate) fn join(&mut self, visitor: &str, now_ms: u64) -> Result<Joined, QueueRejection> {
        if let Some(place) = self.visitors.get(visitor) {
            return Ok(Joined {
                standing: self.standing_of(*place),
                new: false,
            });
        }
        if self.visitors.len() >= VISITORS_PER_ROOM_MAX as usize {
            return Err(QueueRejection::Full);
        }
        let place = if !self.drawn {
            self.early += 1;
            Place::Early {
                draw: self.draw(visitor),
            }
        } else {
            let earliest = self.spec.first_slot_from(now_ms);
            let slot = u64::from(self.next_slot).max(earliest);
            let slot = u32::try_from(slot).map_err(|_| QueueRejection::Full)?;
            self.next_slot = slot.checked_add(1).ok_or(QueueRejection::Full)?;
            Place::Slot(slot)
        };
        self.visitors.insert(visitor.to_owned(), place);
        Ok(Joined {
            standing: self.standing_of(place),
            new: true,
        })
    }

    /// Draws the pre-queue if log time has reached the opening: the early visitors take slots
    /// `0..early` in the order of their draws (ties, vanishingly rare, by visitor id).
    pub(crate) fn draw_if_due(&mut self, now_ms: u64) {
        if self.drawn || now_ms < self.spec.opens_at_ms {
            return;
        }
        let mut early: Vec<(u64, String)> = self
            .visitors
            .iter()
            .filter_map(|(v, p)| match p {
                Place::Early { draw } => Some((*draw, v.clone())),
                Place::Slot(_) => None,
            })
            .collect();
        early.sort_unstable();
        for (slot, (_, visitor)) in early.into_iter().enumerate() {
            let slot = u32::try_from(slot).expect("at most VISITORS_PER_ROOM_MAX visitors");
            self.visitors.insert(visitor, Place::Slot(slot));
        }
        self.next_slot = self.early;
        self.drawn = true;
    }

    /// Checks the room's own invariants: every place drawn once the room is drawn, slots
    /// distinct and below `next_slot`, the early count right.
    pub fn check(&self) -> Result<(), String> {
        let mut slots = BTreeSet::new();
        let mut early = 0u32;
        for (v, p) in &self.visitors {
            match p {
                Place::Early { .. } if self.drawn => {
                    return Err(format!("visitor {v} undrawn in a drawn room"));
                }
                Place::Early { .. } => early += 1,
                Place::Slot(s) => {
                    if !self.drawn {
                        return Err(format!("visitor {v} has a slot before the draw"));
                    }
                    if *s >= self.next_slot {
                        return Err(format!("visitor {v} slot {s} ≥ next slot"));
                    }
                    if !slots.insert(*s) {
                        return Err(format!("slot {s} given twice"));
                    }
                }
            }
        }
        if !self.drawn && early != self.early {
            return Err(format!("early count {} ≠ {early}", self.early));
        }
        Ok(())
    }
}

/// Every waiting room, with the rooms whose draw is still due by opening time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingRooms {
    rooms: BTreeMap<EventId, WaitingRoom>,
    /// Undrawn rooms by opening time.
    due: BTreeSet<(u64, EventId)>,
}

impl WaitingRooms {
    /// The room of `event`, if it has one.
    pub fn get(&self, event: EventId) -> Option<&WaitingRoom> {
        self.rooms.get(&event)
    }

    /// Whether there is no room at all.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Every room.
    pub fn iter(&self) -> impl Iterator<Item = &WaitingRoom> {
        self.rooms.values()
    }

    /// Draws every room whose opening log time has reached.
    pub(crate) fn draw_due(&mut self, now_ms: u64) {
        while let Some(&(at, event)) = self.due.first() {
            if at > now_ms {
                break;
            }
            self.due.pop_first();
            if let Some(room) = self.rooms.get_mut(&event) {
                room.draw_if_due(now_ms);
            }
        }
    }

    /// Sets, replaces (before the opening) or removes (`spec: None`) a room.
    pub(crate) fn set(
        &mut self,
        event: EventId,
        spec: Option<WaitingRoomSpec>,
        seed: [u8; 32],
        now_ms: u64,
    ) -> Result<(), QueueRejection> {
        let Some(mut spec) = spec else {
            if let Some(old) = self.rooms.remove(&event) {
                self.due.remove(&(old.spec.opens_at_ms, event));
            }
            return Ok(());
        };
        spec.validate()?;
        spec.opens_at_ms = spec.opens_at_ms.max(now_ms);
        match self.rooms.get_mut(&event) {
            Some(room) if room.drawn => return Err(QueueRejection::AlreadyOpen),
            Some(room) => {
                // Before the opening: new settings, same visitors, same seed (their draws stand).
                self.due.remove(&(room.spec.opens_at_ms, event));
                room.spec = spec;
            }
            None => {
                self.rooms
                    .insert(event, WaitingRoom::new(event, spec, seed));
            }
        }
        self.due.insert((spec.opens_at_ms, event));
        self.draw_due(now_ms);
        Ok(())
    }

    /// Joins a visitor to `event`'s room.
    pub(crate) fn join(
        &mut self,
        event: EventId,
        visitor: &str,
        now_ms: u64,
    ) -> Result<Joined, QueueRejection> {
        if visitor.is_empty() || visitor.len() > VISITOR_BYTES_MAX {
            return Err(QueueRejection::Invalid(format!(
                "visitor must be 1 to {VISITOR_BYTES_MAX} bytes"
            )));
        }
        let room = self
            .rooms
            .get_mut(&event)
            .ok_or(QueueRejection::NoWaitingRoom)?;
        room.join(visitor, now_ms)
    }

    /// Checks every room and the due index.
    pub fn check(&self) -> Result<(), String> {
        for room in self.rooms.values() {
            room.check()?;
            let due = self.due.contains(&(room.spec.opens_at_ms, room.event_id));
            if due == room.drawn {
                return Err(format!(
                    "room of event {} drawn={} but due={due}",
                    room.event_id.0, room.drawn
                ));
            }
        }
        if self.due.len() > self.rooms.len() {
            return Err("due rooms that do not exist".into());
        }
        Ok(())
    }
}

/// The visitor id of an account in the shop.
pub fn account_visitor(user: UserId) -> String {
    format!("user:{}", user.0)
}

/// The visitor id of a box office's customer (its `client_id`).
pub fn client_visitor(client_id: &str) -> String {
    format!("client:{client_id}")
}
