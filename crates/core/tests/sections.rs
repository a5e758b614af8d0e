//! Venue layouts with named sections and "N together, best available": examples through
//! `State::apply_batch` (with `check_invariants` after every batch) and property tests of the
//! pick itself — never a taken or blocked seat, always adjacent in one row, the front-most row
//! that has room, and the same answer every time.

use proptest::prelude::*;
use tix_core::{
    Batch, Command, EventDetails, EventId, HoldPlaced, HoldRequest, IdempotencyKey, Inventory,
    InventorySpec, Limits, OrderConfirmed, Outcome, Rejection, Replica, Role, SeatMap, SeatState,
    SectionSpec, UserId, Venue, VenueLayout,
};

const START_MS: u64 = 1_700_000_000_000;
const MINUTE_MS: u64 = 60_000;

fn details() -> EventDetails {
    EventDetails {
        name: "Arena night".into(),
        description: "Sections.".into(),
        starts_at_ms: (START_MS + 30 * 24 * 60 * MINUTE_MS) as i64,
        venue: Venue {
            name: "Arena".into(),
            lat: 0.0,
            lon: 0.0,
        },
        price_cents: 1_000,
        currency: "EUR".into(),
        refundable: true,
        per_customer_max: None,
    }
}

fn section(name: &str, rows: u32, seats_per_row: u32, price_cents: u64) -> SectionSpec {
    SectionSpec {
        name: name.into(),
        rows,
        seats_per_row,
        price_cents,
    }
}

/// A replica, the log time of the next batch, and an organizer and a buyer.
struct World {
    state: Replica,
    organizer: UserId,
    buyer: UserId,
    requests: u32,
}

impl World {
    fn new() -> World {
        let mut w = World {
            state: Replica::new(Limits::default()),
            organizer: UserId(0),
            buyer: UserId(0),
            requests: 0,
        };
        w.organizer = w.user("organizer", Role::Organizer);
        w.buyer = w.user("buyer", Role::Attendee);
        w
    }

    fn run(&mut self, command: Command) -> Outcome {
        let batch = Batch {
            time_ms: START_MS,
            commands: vec![command],
        };
        let mut outcomes = self.state.apply_batch(&batch);
        self.state.check_invariants().expect("invariants hold");
        outcomes.remove(0)
    }

    fn user(&mut self, username: &str, role: Role) -> UserId {
        let command = Command::CreateUser {
            username: username.into(),
            password_hash: "hash".into(),
            role,
        };
        match self.run(command) {
            Outcome::User(Ok(id)) => id,
            other => panic!("creating {username}: {other:?}"),
        }
    }

    fn create(&mut self, inventory: InventorySpec) -> Outcome {
        self.run(Command::CreateEvent {
            organizer: self.organizer,
            details: details(),
            inventory,
            ticket_key_seed: [7; 32],
        })
    }

    fn event(&mut self, sections: Vec<SectionSpec>, blocked: &[u32]) -> EventId {
        let inventory = InventorySpec::Sections {
            sections,
            blocked: blocked.to_vec(),
        };
        match self.create(inventory) {
            Outcome::Event(Ok((id, 1))) => id,
            other => panic!("creating an event: {other:?}"),
        }
    }

    fn hold(&mut self, event_id: EventId, request: HoldRequest) -> Result<HoldPlaced, Rejection> {
        self.requests += 1;
        let command = Command::PlaceHold {
            event_id,
            key: IdempotencyKey::new("buyer", format!("r{}", self.requests)),
            customer: self.buyer,
            request,
            ttl_ms: MINUTE_MS,
        };
        match self.run(command) {
            Outcome::Hold(answer) => answer.result,
            other => panic!("hold answered {other:?}"),
        }
    }

    fn together(
        &mut self,
        event_id: EventId,
        quantity: u32,
        section: Option<u32>,
    ) -> Result<Vec<u32>, Rejection> {
        let request = HoldRequest::BestAvailable { quantity, section };
        self.hold(event_id, request).map(|placed| placed.seats)
    }

    fn confirm(&mut self, placed: &HoldPlaced) -> OrderConfirmed {
        let command = Command::ConfirmHold {
            hold_id: placed.hold_id,
            customer: self.buyer,
            payment_ref: "pay".into(),
        };
        match self.run(command) {
            Outcome::Confirm(Ok(order)) => order,
            other => panic!("confirm answered {other:?}"),
        }
    }
}

// An arena of two sections reads as named seats; the layout survives a snapshot and the
// digest covers it.
#[test]
fn sections_name_every_seat_and_survive_a_snapshot() {
    let mut w = World::new();
    let event = w.event(
        vec![
            section("Block A", 3, 4, 5_000),
            section("Block B", 2, 5, 2_000),
        ],
        &[],
    );
    let e = w.state.event(event).expect("created");
    assert_eq!(e.inventory.capacity(), 22);
    let map = w.state.seat_map(e).expect("numbered");
    assert_eq!(map.seat_name(1), "Block A, Row 1, Seat 1");
    assert_eq!(map.seat_name(12), "Block A, Row 3, Seat 4");
    assert_eq!(map.seat_name(18), "Block B, Row 2, Seat 1");
    let bytes = postcard::to_stdvec(&w.state).expect("the state serializes");
    let restored: Replica = postcard::from_bytes(&bytes).expect("the snapshot deserializes");
    assert_eq!(restored.layout(event), w.state.layout(event));
    assert_eq!(restored.digest(), w.state.digest());
}

// "2 together in Block B" takes the centre of Block B's front row and charges Block B's
// price; "anywhere" starts with the first section.
#[test]
fn best_available_in_a_section_charges_its_price() {
    let mut w = World::new();
    let event = w.event(
        vec![
            section("Block A", 2, 4, 5_000),
            section("Block B", 2, 5, 2_000),
        ],
        &[],
    );
    // Block B starts at seat 9; its front row is 9..=13, centre 11.
    let placed = w
        .hold(
            event,
            HoldRequest::BestAvailable {
                quantity: 3,
                section: Some(1),
            },
        )
        .expect("room in Block B");
    assert_eq!(placed.seats, vec![10, 11, 12]);
    let order = w.confirm(&placed);
    assert_eq!(order.total_cents, 3 * 2_000);
    assert_eq!(w.together(event, 2, None), Ok(vec![2, 3]));
}

// A seat bought at the box office costs its section's price.
#[test]
fn a_box_office_seat_costs_its_sections_price() {
    let mut w = World::new();
    let event = w.event(
        vec![section("A", 1, 2, 5_000), section("B", 1, 2, 2_000)],
        &[],
    );
    let command = Command::Purchase {
        event_id: event,
        key: IdempotencyKey::new("box", "1"),
        customer: tix_core::CustomerKey::Client("box".into()),
        seat: Some(4),
    };
    let Outcome::Purchase(answer) = w.run(command) else {
        panic!("purchase answers a purchase")
    };
    let sale = answer.result.expect("seat 4 is free");
    let ticket = w.state.ticket(sale.ticket_id).expect("issued");
    assert_eq!(ticket.price_cents, 2_000);
}

// A hold's seats have one price: seats from sections at different prices are refused as
// MixedPrices; sections at the same price may be mixed.
#[test]
fn one_hold_one_price() {
    let mut w = World::new();
    let event = w.event(
        vec![
            section("A", 1, 2, 5_000),
            section("B", 1, 2, 2_000),
            section("C", 1, 2, 2_000),
        ],
        &[],
    );
    assert_eq!(
        w.hold(event, HoldRequest::Seats(vec![2, 3])),
        Err(Rejection::MixedPrices)
    );
    let placed = w
        .hold(event, HoldRequest::Seats(vec![4, 5]))
        .expect("same price");
    assert_eq!(w.confirm(&placed).total_cents, 4_000);
}

// "Any n seats" on a venue in sections takes the lowest-numbered free seats of one price: the
// first price with room, never seats of two prices in one hold.
#[test]
fn any_seats_are_of_one_price() {
    let mut w = World::new();
    let event = w.event(
        vec![
            section("A", 1, 2, 5_000),
            section("B", 1, 2, 2_000),
            section("C", 1, 2, 5_000),
        ],
        &[2],
    );
    // A has one free seat (1), and C two more at A's price: 1 and 5 are the lowest of one price.
    let placed = w
        .hold(event, HoldRequest::Quantity(2))
        .expect("room at 50.00");
    assert_eq!(placed.seats, vec![1, 5]);
    let placed = w
        .hold(event, HoldRequest::Quantity(2))
        .expect("room at 20.00");
    assert_eq!(placed.seats, vec![3, 4]);
    assert_eq!(
        w.hold(event, HoldRequest::Quantity(2)),
        Err(Rejection::SoldOut)
    );
    assert_eq!(
        w.hold(event, HoldRequest::Quantity(1)).map(|p| p.seats),
        Ok(vec![6])
    );
}

// A group is never split: with no row holding N adjacent free seats the answer is
// NoAdjacentSeats, an unknown section is UnknownSection, and general admission refuses it.
#[test]
fn no_split_groups_and_clear_refusals() {
    let mut w = World::new();
    // Two rows of 4 with seats 2 and 7 blocked: runs of at most 2.
    let event = w.event(vec![section("A", 2, 4, 100)], &[2, 7]);
    assert_eq!(
        w.together(event, 3, None),
        Err(Rejection::NoAdjacentSeats { quantity: 3 })
    );
    assert_eq!(
        w.together(event, 1, Some(1)),
        Err(Rejection::UnknownSection { section: 1 })
    );
    assert_eq!(w.together(event, 2, Some(0)), Ok(vec![3, 4]));
    assert_eq!(w.together(event, 2, Some(0)), Ok(vec![5, 6]));
    let general = match w.create(InventorySpec::Unnumbered { capacity: 5 }) {
        Outcome::Event(Ok((id, _))) => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        w.together(general, 1, None),
        Err(Rejection::SeatNotApplicable)
    );
}

// Today's shapes still create events, and a plain numbered event in rows is one unnamed
// section for "N together".
#[test]
fn a_plain_numbered_event_is_one_section() {
    let mut w = World::new();
    let spec = InventorySpec::Numbered {
        seats: 12,
        seats_per_row: Some(6),
        blocked: vec![],
    };
    let event = match w.create(spec) {
        Outcome::Event(Ok((id, _))) => id,
        other => panic!("{other:?}"),
    };
    assert!(w.state.layout(event).is_none());
    assert_eq!(w.together(event, 2, None), Ok(vec![3, 4]));
    assert_eq!(w.together(event, 4, Some(0)), Ok(vec![8, 9, 10, 11]));
    let e = w.state.event(event).expect("exists");
    assert_eq!(
        w.state.seat_map(e).expect("numbered").seat_name(8),
        "Row 2, Seat 2"
    );
}

// Bad layouts are refused at creation with what is wrong, and section prices obey the limit.
#[test]
fn bad_layouts_are_refused() {
    let mut w = World::new();
    let empty = InventorySpec::Sections {
        sections: vec![],
        blocked: vec![],
    };
    assert!(matches!(
        w.create(empty),
        Outcome::Event(Err(tix_core::EventRejection::BadInventory { .. }))
    ));
    let max = Limits::default().price_cents_max;
    let dear = InventorySpec::Sections {
        sections: vec![section("A", 1, 1, max + 1)],
        blocked: vec![],
    };
    assert!(matches!(
        w.create(dear),
        Outcome::Event(Err(tix_core::EventRejection::BadPrice { .. }))
    ));
    let out_of_range = InventorySpec::Sections {
        sections: vec![section("A", 1, 2, 1)],
        blocked: vec![3],
    };
    assert!(matches!(
        w.create(out_of_range),
        Outcome::Event(Err(tix_core::EventRejection::BadInventory { .. }))
    ));
}

/// A random layout of 1–3 sections and a random state for each of its seats.
fn layout_and_states() -> impl Strategy<Value = (Vec<SectionSpec>, Vec<SeatState>)> {
    let sections = prop::collection::vec((1u32..=4, 1u32..=9, 0u64..3), 1..=3).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (rows, per_row, price))| section(&format!("S{i}"), rows, per_row, price))
            .collect::<Vec<_>>()
    });
    sections.prop_flat_map(|sections| {
        let seats: u32 = sections.iter().map(|s| s.rows * s.seats_per_row).sum();
        let state = prop_oneof![
            4 => Just(SeatState::Free),
            1 => Just(SeatState::Blocked),
            1 => Just(SeatState::Held(tix_core::HoldId(1))),
            1 => Just(SeatState::Sold(tix_core::TicketId(1))),
        ];
        (Just(sections), prop::collection::vec(state, seats as usize))
    })
}

fn inventory_of(states: &[SeatState]) -> Inventory {
    Inventory::Numbered {
        seats: states.to_vec(),
        layout: None,
        sold: 0,
        held: 0,
        blocked: 0,
        first_free_hint: 1,
    }
}

/// Whether row `row` of section `s` has `quantity` adjacent free seats.
fn row_has_room(map: &SeatMap, states: &[SeatState], s: u32, row: u32, quantity: u32) -> bool {
    let sec = &map.sections[s as usize];
    let mut run = 0;
    for place in 1..=sec.seats_per_row {
        let free = states[sec.seat_at(row, place) as usize - 1] == SeatState::Free;
        run = if free { run + 1 } else { 0 };
        if run >= quantity {
            return true;
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // The pick is free seats only, adjacent in one row of the asked section, in the front-most
    // row that has room, the same on every call; and it is refused only when no row has room.
    #[test]
    fn best_together_is_free_adjacent_front_most_and_deterministic(
        (sections, states) in layout_and_states(),
        quantity in 1u32..=5,
        pick in 0u32..4,
    ) {
        let layout = VenueLayout { sections };
        let inventory = inventory_of(&states);
        let map = SeatMap::of(&inventory, Some(&layout), 0).expect("numbered");
        let section = (pick < map.sections.len() as u32).then_some(pick);
        let answer = map.best_together(&states, quantity, section);
        prop_assert_eq!(&answer, &map.best_together(&states, quantity, section));
        let asked: Vec<u32> = match section {
            Some(s) => vec![s],
            None => (0..map.sections.len() as u32).collect(),
        };
        let room = |s: u32, row: u32| row_has_room(&map, &states, s, row, quantity);
        match answer {
            Ok(seats) => {
                prop_assert_eq!(seats.len() as u32, quantity);
                let first = map.place(seats[0]).expect("on the map");
                prop_assert!(asked.contains(&first.section));
                for (i, &seat) in seats.iter().enumerate() {
                    prop_assert_eq!(states[seat as usize - 1], SeatState::Free);
                    let place = map.place(seat).expect("on the map");
                    prop_assert_eq!(place.section, first.section);
                    prop_assert_eq!(place.row, first.row);
                    prop_assert_eq!(place.place, first.place + i as u32);
                }
                for row in 1..first.row {
                    prop_assert!(!room(first.section, row), "row {} had room", row);
                }
            }
            Err(_) => {
                for &s in &asked {
                    for row in 1..=map.sections[s as usize].rows {
                        prop_assert!(!room(s, row), "section {} row {} had room", s, row);
                    }
                }
            }
        }
    }

    // Through the state: "N together" holds never overlap, never take a blocked seat, and two
    // replicas applying the same commands pick the same seats (same digest).
    #[test]
    fn holds_together_never_overlap_and_replicas_agree(
        (sections, _) in layout_and_states(),
        asks in prop::collection::vec((1u32..=4, prop::option::of(0u32..3)), 1..12),
        blocked in prop::collection::vec(1u32..=20, 0..4),
    ) {
        let seats: u32 = sections.iter().map(|s| s.rows * s.seats_per_row).sum();
        let blocked: Vec<u32> = blocked.into_iter().filter(|&b| b <= seats).collect();
        let mut worlds = [World::new(), World::new()];
        let mut taken: Vec<u32> = Vec::new();
        for w in &mut worlds {
            let spec = InventorySpec::Sections { sections: sections.clone(), blocked: blocked.clone() };
            let Outcome::Event(created) = w.create(spec) else { panic!("event outcome") };
            let Ok((event, _)) = created else { return Ok(()) }; // every seat blocked
            taken.clear();
            for &(quantity, section) in &asks {
                if let Ok(got) = w.together(event, quantity, section) {
                    for seat in got {
                        prop_assert!(!blocked.contains(&seat));
                        prop_assert!(!taken.contains(&seat));
                        taken.push(seat);
                    }
                }
            }
        }
        prop_assert_eq!(worlds[0].state.digest(), worlds[1].state.digest());
    }
}
