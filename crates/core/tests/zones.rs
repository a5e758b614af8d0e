//! Event time zones through `Replica::apply_batch` (with `check_invariants` after every batch):
//! who may set one, which names the core refuses, that UTC is not stored, and that zones
//! survive a snapshot and count in the digest.

use tix_core::{
    Command, EventDetails, EventId, IdempotencyKey, Outcome, Replica, UserId, ZONE_NAME_BYTES_MAX,
    ZoneRejection,
};

mod common;

use common::run;

fn details() -> EventDetails {
    common::details("Opera night", "Zones.", "Staatsoper")
}

/// A replica with an organizer, another organizer, an admin and one event of the first.
fn world() -> (Replica, EventId, [UserId; 3]) {
    common::world(details())
}

fn set(state: &mut Replica, event_id: EventId, by: UserId, zone: &str) -> Outcome {
    let zone = zone.to_owned();
    run(state, Command::SetEventZone { event_id, by, zone })
}

// An event starts in UTC; its organizer and an admin may set the zone, another organizer may
// not, and an unknown event is answered as such.
#[test]
fn the_organizer_or_an_admin_sets_the_zone() {
    let (mut s, event, [owner, other, admin]) = world();
    assert_eq!(s.event_zone(event), "UTC");
    assert_eq!(
        set(&mut s, event, other, "Europe/Vienna"),
        Outcome::Zone(Err(ZoneRejection::NotYourEvent))
    );
    assert_eq!(s.event_zone(event), "UTC");
    assert_eq!(
        set(&mut s, event, owner, "Europe/Vienna"),
        Outcome::Zone(Ok(()))
    );
    assert_eq!(s.event_zone(event), "Europe/Vienna");
    assert_eq!(
        set(&mut s, event, admin, "America/New_York"),
        Outcome::Zone(Ok(()))
    );
    assert_eq!(s.event_zone(event), "America/New_York");
    assert_eq!(
        set(&mut s, EventId(999), admin, "Europe/Vienna"),
        Outcome::Zone(Err(ZoneRejection::UnknownEvent))
    );
}

// Names of the wrong shape are refused and change nothing; 64 bytes pass, 65 do not; setting
// UTC removes the stored zone, so the state encodes as before zones existed.
#[test]
fn bad_names_are_refused_and_utc_is_not_stored() {
    let (mut s, event, [owner, ..]) = world();
    let before = s.digest();
    for bad in ["", "Europe/Vienna;", "Zürich", "Europe Vienna"] {
        assert_eq!(
            set(&mut s, event, owner, bad),
            Outcome::Zone(Err(ZoneRejection::BadZone)),
            "{bad:?}"
        );
    }
    let longest = "A".repeat(ZONE_NAME_BYTES_MAX);
    assert_eq!(
        set(&mut s, event, owner, &format!("{longest}B")),
        Outcome::Zone(Err(ZoneRejection::BadZone))
    );
    assert_eq!(s.digest(), before);
    assert_eq!(set(&mut s, event, owner, &longest), Outcome::Zone(Ok(())));
    assert_ne!(s.digest(), before);
    assert_eq!(set(&mut s, event, owner, "UTC"), Outcome::Zone(Ok(())));
    assert_eq!(s.digest(), before, "UTC is the default and is not stored");
}

// A cancelled event's zone no longer changes.
#[test]
fn a_cancelled_events_zone_is_fixed() {
    let (mut s, event, [owner, ..]) = world();
    let cancel = Command::CancelEvent {
        event_id: event,
        key: IdempotencyKey::new("owner", "cancel-1"),
        by: owner,
        reason: "Storm".into(),
    };
    let Outcome::Cancel(answer) = run(&mut s, cancel) else {
        panic!("cancel answered");
    };
    assert!(answer.result.is_ok(), "{:?}", answer.result);
    assert_eq!(
        set(&mut s, event, owner, "Europe/Vienna"),
        Outcome::Zone(Err(ZoneRejection::Cancelled))
    );
}

// A zone survives a snapshot (section tag 4) and the restored state has the same digest.
#[test]
fn zones_survive_a_snapshot() {
    let (mut s, event, [owner, ..]) = world();
    assert_eq!(
        set(&mut s, event, owner, "Europe/Vienna"),
        Outcome::Zone(Ok(()))
    );
    let bytes = postcard::to_stdvec(&s).expect("the state serializes");
    let restored: Replica = postcard::from_bytes(&bytes).expect("the snapshot deserializes");
    assert_eq!(restored.event_zone(event), "Europe/Vienna");
    assert_eq!(restored.digest(), s.digest());
    restored
        .check_invariants()
        .expect("invariants hold after restore");
}
