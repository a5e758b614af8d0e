//! The fixture the per-feature core tests share (`mod common;`): a replica run one command per
//! batch at a fixed log time with the invariants checked after each, and a world of two
//! organizers, an admin and one event of the first organizer.

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
