//! The fixture the per-feature core tests share (`mod common;`): a replica run one command per
//! batch at a fixed log time with the invariants checked after each, a world of two
//! organizers, an admin and one event of the first organizer, and the smallest PNG the core
//! reads. Each test file uses some of it (hence `dead_code` allowed here).
#![allow(dead_code)]

use tix_core::{
    Batch, Command, EventDetails, EventId, InventorySpec, Limits, Outcome, Replica, Role, UserId,
    Venue,
};

/// The log time of every batch.
pub const START_MS: u64 = 1_700_000_000_000;

/// An event a day after [`START_MS`] with this name and description, at the venue `venue`.
pub fn details(name: &str, description: &str, venue: &str) -> EventDetails {
    EventDetails {
        name: name.into(),
        description: description.into(),
        starts_at_ms: (START_MS + 86_400_000) as i64,
        venue: Venue {
            name: venue.into(),
            lat: 48.2,
            lon: 16.37,
        },
        price_cents: 1_000,
        currency: "EUR".into(),
        refundable: true,
        per_customer_max: None,
    }
}

/// Applies `command` alone in a batch at [`START_MS`], checks the invariants, returns its
/// outcome.
pub fn run(state: &mut Replica, command: Command) -> Outcome {
    let batch = Batch {
        time_ms: START_MS,
        commands: vec![command],
    };
    let mut outcomes = state.apply_batch(&batch);
    state.check_invariants().expect("invariants hold");
    outcomes.remove(0)
}

/// Creates an account.
pub fn user(state: &mut Replica, username: &str, role: Role) -> UserId {
    let command = Command::CreateUser {
        username: username.into(),
        password_hash: "hash".into(),
        role,
    };
    match run(state, command) {
        Outcome::User(Ok(id)) => id,
        other => panic!("creating {username}: {other:?}"),
    }
}

/// A replica with an organizer, another organizer, an admin and one general-admission event
/// (`details`) of the first: `(replica, event, [owner, other, admin])`.
pub fn world(details: EventDetails) -> (Replica, EventId, [UserId; 3]) {
    let mut state = Replica::new(Limits::default());
    let owner = user(&mut state, "owner", Role::Organizer);
    let other = user(&mut state, "other", Role::Organizer);
    let admin = user(&mut state, "admin", Role::Admin);
    let command = Command::CreateEvent {
        organizer: owner,
        details,
        inventory: InventorySpec::Unnumbered { capacity: 10 },
        ticket_key_seed: [1; 32],
    };
    let Outcome::Event(Ok((event, _))) = run(&mut state, command) else {
        panic!("event created");
    };
    (state, event, [owner, other, admin])
}

/// The header of a PNG of `width` × `height`: signature, IHDR and an empty IDAT (all the core
/// reads of an image).
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(&13u32.to_be_bytes());
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(b"IDAT");
    b.extend_from_slice(&[0, 0, 0, 0]);
    b
}
