//! Waiting rooms in the core: the pre-queue is drawn at the opening (arrival order does not
//! matter), later joiners queue first come first served at the admission rate, a visitor has
//! one place however often they join, only the organizer sets a room and only before it
//! opens, and the queue survives encoding (a snapshot) unchanged. Invariants are checked after
//! every batch, and a property test drives random joins and times against them.

use proptest::prelude::*;
use tix_core::{
    Batch, Command, EventDetails, EventId, InventorySpec, Joined, Limits, MemoryHistory, Outcome,
    QueueRejection, QueueStanding, Role, State, UserId, Venue, WaitingRoomSpec,
};

const START_MS: u64 = 1_700_000_000_000;
const MINUTE_MS: u64 = 60_000;

struct World {
    state: State,
    history: MemoryHistory,
    now_ms: u64,
    organizer: UserId,
    event: EventId,
}

impl World {
    fn new() -> World {
        let mut w = World {
            state: State::new(Limits::default()),
            history: MemoryHistory::default(),
            now_ms: START_MS,
            organizer: UserId(0),
            event: EventId(0),
        };
        w.organizer = match w.run(Command::CreateUser {
            username: "org".into(),
            password_hash: "h".into(),
            role: Role::Organizer,
        }) {
            Outcome::User(Ok(id)) => id,
            other => panic!("{other:?}"),
        };
        w.event = match w.run(Command::CreateEvent {
            organizer: w.organizer,
            details: EventDetails {
                name: "Stadium".into(),
                description: String::new(),
                starts_at_ms: (START_MS + 30 * 24 * 60 * MINUTE_MS) as i64,
                venue: Venue {
                    name: "Arena".into(),
                    lat: 0.0,
                    lon: 0.0,
                },
                price_cents: 5_000,
                currency: "EUR".into(),
                refundable: true,
                per_customer_max: None,
            },
            inventory: InventorySpec::Unnumbered { capacity: 100 },
            ticket_key_seed: [3; 32],
        }) {
            Outcome::Event(Ok((id, _))) => id,
            other => panic!("{other:?}"),
        };
        w
    }

    fn apply(&mut self, commands: Vec<Command>) -> Vec<Outcome> {
        let outcomes = self.state.apply_batch(
            &Batch {
                time_ms: self.now_ms,
                commands,
            },
            &self.history,
        );
        self.history.write(self.state.take_changes());
        self.state
            .check_invariants(&self.history)
            .expect("invariants hold after every batch");
        outcomes
    }

    fn run(&mut self, command: Command) -> Outcome {
        self.apply(vec![command]).remove(0)
    }

    fn set_room(&mut self, spec: Option<WaitingRoomSpec>) -> Result<(), QueueRejection> {
        match self.run(Command::SetWaitingRoom {
            event_id: self.event,
            by: self.organizer,
            spec,
            seed: [9; 32],
        }) {
            Outcome::WaitingRoom(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn join(&mut self, visitor: &str) -> Result<Joined, QueueRejection> {
        match self.run(Command::JoinQueue {
            event_id: self.event,
            visitor: visitor.into(),
        }) {
            Outcome::Queue(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn slot(&self, visitor: &str) -> u32 {
        match self
            .state
            .waiting_room(self.event)
            .unwrap()
            .standing(visitor)
        {
            Some(QueueStanding::Placed(p)) => p.slot,
            other => panic!("{visitor}: {other:?}"),
        }
    }
}

fn spec(opens_in_ms: u64, admit_per_min: u32) -> WaitingRoomSpec {
    WaitingRoomSpec {
        opens_at_ms: START_MS + opens_in_ms,
        admit_per_min,
        window_ms: 10 * MINUTE_MS,
    }
}

/// Spearman's rank correlation of two rankings of the same n items (no ties).
fn spearman(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len() as f64;
    let d2: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

#[test]
fn early_arrivals_are_drawn_at_the_opening_and_later_ones_queue_in_order() {
    let mut w = World::new();
    w.set_room(Some(spec(10 * MINUTE_MS, 600))).unwrap();
    for i in 0..1_000 {
        w.now_ms += 500;
        let joined = w.join(&format!("early-{i}")).unwrap();
        assert!(joined.new);
        assert_eq!(
            joined.standing,
            QueueStanding::Early {
                opens_at_ms: START_MS + 10 * MINUTE_MS
            },
            "no position before the draw"
        );
    }
    // The opening: the first batch at or after it draws the pre-queue.
    w.now_ms = START_MS + 10 * MINUTE_MS;
    w.apply(vec![]);
    let early: Vec<u32> = (0..1_000).map(|i| w.slot(&format!("early-{i}"))).collect();
    let mut sorted = early.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..1_000).collect::<Vec<_>>(),
        "slots 0..1000, each once"
    );
    let arrival: Vec<u32> = (0..1_000).collect();
    let rho = spearman(&arrival, &early);
    assert!(
        rho.abs() < 0.15,
        "arrival order must not predict the draw: ρ = {rho}"
    );
    // After the opening: first come, first served, behind the pre-queue.
    let late: Vec<u32> = (0..200)
        .map(|i| {
            w.now_ms += 10;
            w.join(&format!("late-{i}")).unwrap();
            w.slot(&format!("late-{i}"))
        })
        .collect();
    assert_eq!(late, (1_000..1_200).collect::<Vec<_>>());
    // Admission times follow the slots at the rate: 600/min is one every 100 ms.
    let room = w.state.waiting_room(w.event).unwrap();
    assert_eq!(room.spec.admit_at_ms(0), START_MS + 10 * MINUTE_MS);
    assert_eq!(
        room.spec.admit_at_ms(1_000),
        START_MS + 10 * MINUTE_MS + 100_000
    );
}

#[test]
fn a_visitor_has_one_place_however_often_they_join() {
    let mut w = World::new();
    w.set_room(Some(spec(0, 60))).unwrap();
    let first = w.join("user:7").unwrap();
    w.now_ms += 5_000;
    let again = w.join("user:7").unwrap();
    assert!(first.new && !again.new);
    assert_eq!(first.standing, again.standing);
    assert_eq!(w.state.waiting_room(w.event).unwrap().visitors(), 1);
}

#[test]
fn late_crowds_are_admitted_at_the_rate_even_after_the_queue_drained() {
    let mut w = World::new();
    w.set_room(Some(spec(0, 60))).unwrap(); // one a second
    w.join("a").unwrap();
    // An hour later the queue is long empty: the next joiner is admitted at once...
    w.now_ms += 60 * MINUTE_MS;
    let first = match w.join("b").unwrap().standing {
        QueueStanding::Placed(p) => p,
        other => panic!("{other:?}"),
    };
    assert!(first.admit_at_ms >= w.now_ms && first.admit_at_ms < w.now_ms + 1_000);
    // ...and a crowd arriving together is paced: one a second, not all at once.
    let times: Vec<u64> = (0..5)
        .map(|i| match w.join(&format!("crowd-{i}")).unwrap().standing {
            QueueStanding::Placed(p) => p.admit_at_ms,
            other => panic!("{other:?}"),
        })
        .collect();
    for (i, t) in times.iter().enumerate() {
        assert_eq!(*t, first.admit_at_ms + 1_000 * (i as u64 + 1));
    }
}

#[test]
fn only_the_organizer_sets_a_room_and_only_before_it_opens() {
    let mut w = World::new();
    let stranger = match w.run(Command::CreateUser {
        username: "stranger".into(),
        password_hash: "h".into(),
        role: Role::Organizer,
    }) {
        Outcome::User(Ok(id)) => id,
        other => panic!("{other:?}"),
    };
    let by_stranger = w.run(Command::SetWaitingRoom {
        event_id: w.event,
        by: stranger,
        spec: Some(spec(MINUTE_MS, 60)),
        seed: [1; 32],
    });
    assert_eq!(
        by_stranger,
        Outcome::WaitingRoom(Err(QueueRejection::NotOrganizer))
    );
    assert_eq!(w.join("x"), Err(QueueRejection::NoWaitingRoom));
    let mut bad = spec(MINUTE_MS, 0);
    assert!(
        matches!(w.set_room(Some(bad)), Err(QueueRejection::Invalid(m)) if m.contains("admit_per_min"))
    );
    bad = spec(MINUTE_MS, 60);
    bad.window_ms = 1;
    assert!(
        matches!(w.set_room(Some(bad)), Err(QueueRejection::Invalid(m)) if m.contains("window_ms"))
    );
    w.set_room(Some(spec(MINUTE_MS, 60))).unwrap();
    w.join("x").unwrap();
    // Before the opening it may change; the early visitor keeps their place in the pre-queue.
    w.set_room(Some(spec(2 * MINUTE_MS, 120))).unwrap();
    w.now_ms += 2 * MINUTE_MS;
    w.apply(vec![]);
    assert_eq!(w.slot("x"), 0);
    assert_eq!(
        w.set_room(Some(spec(5 * MINUTE_MS, 60))),
        Err(QueueRejection::AlreadyOpen)
    );
    // Removing it opens the sale to everyone.
    w.set_room(None).unwrap();
    assert!(w.state.waiting_room(w.event).is_none());
    // An opening in the past means now.
    w.set_room(Some(WaitingRoomSpec {
        opens_at_ms: 1,
        ..spec(0, 60)
    }))
    .unwrap();
    assert_eq!(
        w.state.waiting_room(w.event).unwrap().spec.opens_at_ms,
        w.now_ms
    );
    assert!(matches!(
        w.join(&"v".repeat(161)),
        Err(QueueRejection::Invalid(_))
    ));
}

#[test]
fn the_queue_survives_a_snapshot_and_decodes_the_same() {
    let mut w = World::new();
    w.set_room(Some(spec(MINUTE_MS, 60))).unwrap();
    for i in 0..50 {
        w.join(&format!("v{i}")).unwrap();
    }
    let before_draw = State::decode(&w.state.encode()).expect("decodes");
    assert_eq!(before_draw, w.state);
    w.now_ms += MINUTE_MS;
    w.join("late").unwrap();
    let restored = State::decode(&w.state.encode()).expect("decodes");
    assert_eq!(restored, w.state);
    assert_eq!(restored.digest(), w.state.digest());
    assert_eq!(w.slot("late"), 50);
}

#[test]
fn a_cancelled_event_takes_no_visitors() {
    let mut w = World::new();
    w.set_room(Some(spec(MINUTE_MS, 60))).unwrap();
    let out = w.run(Command::CancelEvent {
        event_id: w.event,
        key: tix_core::IdempotencyKey::new("org", "c1"),
        by: w.organizer,
        reason: "rain".into(),
    });
    assert!(matches!(out, Outcome::Cancel(_)));
    assert_eq!(w.join("x"), Err(QueueRejection::EventCancelled));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // Random joins (some repeated) at random times around the opening: every visitor gets one
    // slot, slots are distinct, admission never precedes the join, and two replicas applying
    // the same batches agree.
    #[test]
    fn random_joins_keep_every_place_unique(
        steps in prop::collection::vec((0u64..20_000, 0u32..40), 1..120),
        rate in 1u32..5_000,
    ) {
        let mut w = World::new();
        let mut twin = World::new();
        let room = WaitingRoomSpec { opens_at_ms: START_MS + 60_000, admit_per_min: rate, window_ms: MINUTE_MS };
        w.set_room(Some(room)).unwrap();
        twin.set_room(Some(room)).unwrap();
        let mut joined_at = std::collections::BTreeMap::new();
        for (dt, v) in steps {
            w.now_ms += dt;
            twin.now_ms = w.now_ms;
            let visitor = format!("v{v}");
            let a = w.join(&visitor).unwrap();
            let b = twin.join(&visitor).unwrap();
            prop_assert_eq!(&a, &b);
            joined_at.entry(visitor).or_insert(w.now_ms);
        }
        w.now_ms += 60_000;
        w.apply(vec![]);
        let room = w.state.waiting_room(w.event).unwrap();
        let mut slots = std::collections::BTreeSet::new();
        for (visitor, at) in &joined_at {
            match room.standing(visitor) {
                Some(QueueStanding::Placed(p)) => {
                    prop_assert!(slots.insert(p.slot));
                    prop_assert!(p.admit_at_ms >= *at, "admitted before joining");
                    prop_assert_eq!(p.until_ms, p.admit_at_ms + MINUTE_MS);
                }
                other => prop_assert!(false, "{visitor}: {other:?}"),
            }
        }
    }
}
