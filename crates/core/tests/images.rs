//! Event images through `Replica::apply_batch` (with `check_invariants` after every batch): who
//! may set one, what the core refuses (type, size, pixels, alt text, a cancelled event), that
//! the bytes go to history and only a descriptor stays in the hot state, that removing works,
//! and that images survive a snapshot while a state from before images decodes unchanged.

use tix_core::{
    Command, EVENT_IMAGE_BYTES_MAX, EventDetails, EventId, IMAGE_ALT_CHARS_MAX, IdempotencyKey,
    ImageFormat, ImageProblem, ImageRejection, ImageUpload, Outcome, Replica, State, UserId,
    image_sha256,
};

mod common;

use common::{START_MS, png, run};

fn details() -> EventDetails {
    common::details("Poster night", "Images.", "Gallery")
}

/// A replica with an organizer, another organizer, an admin and one event of the first.
fn world() -> (Replica, EventId, [UserId; 3]) {
    common::world(details())
}

fn set(state: &mut Replica, event_id: EventId, by: UserId, bytes: Option<Vec<u8>>) -> Outcome {
    let image = bytes.map(|bytes| ImageUpload {
        bytes,
        alt: "A poster".into(),
    });
    run(
        state,
        Command::SetEventImage {
            event_id,
            by,
            image,
        },
    )
}

// The organizer and an admin may set the image, another organizer may not, an unknown event
// is answered as such; the descriptor says what the bytes are and history holds the bytes.
#[test]
fn the_organizer_or_an_admin_sets_the_image() {
    let (mut s, event, [owner, other, admin]) = world();
    assert!(s.event_image(event).is_none());
    let before = s.digest();
    assert_eq!(
        set(&mut s, event, other, Some(png(40, 30))),
        Outcome::Image(Err(ImageRejection::NotYourEvent))
    );
    assert_eq!(s.digest(), before, "a refusal changes nothing");
    assert_eq!(
        set(&mut s, event, owner, Some(png(40, 30))),
        Outcome::Image(Ok(()))
    );
    let image = s.event_image(event).expect("stored").clone();
    assert_eq!(image.format, ImageFormat::Png);
    assert_eq!((image.width, image.height), (40, 30));
    assert_eq!(image.bytes as usize, png(40, 30).len());
    assert_eq!(image.sha256, image_sha256(&png(40, 30)));
    assert_eq!(image.alt, "A poster");
    assert_eq!(image.set_at_ms, START_MS);
    assert_eq!(s.history().image(event), Some(png(40, 30).as_slice()));
    assert_eq!(
        set(&mut s, event, admin, Some(png(80, 60))),
        Outcome::Image(Ok(()))
    );
    assert_eq!(s.event_image(event).map(|i| i.width), Some(80));
    assert_eq!(s.history().image(event), Some(png(80, 60).as_slice()));
    assert_eq!(
        set(&mut s, EventId(999), admin, Some(png(1, 1))),
        Outcome::Image(Err(ImageRejection::UnknownEvent))
    );
}

// Removing takes the descriptor and the bytes; removing again is a no-op; the digest returns
// to what it was before any image (the descriptor section is written only when non-empty)...
// except for the history part, which folds every change.
#[test]
fn removing_takes_descriptor_and_bytes() {
    let (mut s, event, [owner, ..]) = world();
    assert_eq!(
        set(&mut s, event, owner, Some(png(4, 4))),
        Outcome::Image(Ok(()))
    );
    assert_eq!(set(&mut s, event, owner, None), Outcome::Image(Ok(())));
    assert!(s.event_image(event).is_none());
    assert!(s.history().image(event).is_none());
    let after = s.digest();
    assert_eq!(set(&mut s, event, owner, None), Outcome::Image(Ok(())));
    assert_eq!(s.digest(), after, "removing nothing changes nothing");
}

// The core checks the bytes itself, whatever the edge did: SVG, other types, broken headers,
// one byte over the limit (the limit itself passes), too many pixels, bad alt text.
#[test]
fn bad_images_are_refused() {
    let (mut s, event, [owner, ..]) = world();
    let refused = |s: &mut Replica, bytes: Vec<u8>| set(s, event, owner, Some(bytes));
    assert_eq!(
        refused(
            &mut s,
            b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec()
        ),
        Outcome::Image(Err(ImageRejection::Bad(ImageProblem::Svg)))
    );
    assert_eq!(
        refused(&mut s, b"GIF89a\x01\x00\x01\x00".to_vec()),
        Outcome::Image(Err(ImageRejection::Bad(ImageProblem::UnsupportedType)))
    );
    assert_eq!(
        refused(&mut s, png(4, 4)[..20].to_vec()),
        Outcome::Image(Err(ImageRejection::Bad(ImageProblem::Malformed)))
    );
    let mut big = png(4, 4);
    big.resize(EVENT_IMAGE_BYTES_MAX + 1, 0);
    assert_eq!(
        refused(&mut s, big.clone()),
        Outcome::Image(Err(ImageRejection::Bad(ImageProblem::TooLarge {
            bytes_max: EVENT_IMAGE_BYTES_MAX as u32
        })))
    );
    big.pop();
    assert_eq!(refused(&mut s, big), Outcome::Image(Ok(())));
    assert_eq!(
        refused(&mut s, png(9_000, 10)),
        Outcome::Image(Err(ImageRejection::Bad(ImageProblem::TooManyPixels {
            width: 9_000,
            height: 10
        })))
    );
    for (alt, ok) in [
        ("a".repeat(IMAGE_ALT_CHARS_MAX), true),
        ("a".repeat(IMAGE_ALT_CHARS_MAX + 1), false),
        ("two\nlines".into(), false),
    ] {
        let image = Some(ImageUpload {
            bytes: png(2, 2),
            alt,
        });
        let outcome = run(
            &mut s,
            Command::SetEventImage {
                event_id: event,
                by: owner,
                image,
            },
        );
        let want = if ok {
            Ok(())
        } else {
            Err(ImageRejection::BadAlt)
        };
        assert_eq!(outcome, Outcome::Image(want));
    }
}

// A cancelled event's image no longer changes (it stays, for the cancelled event's page).
#[test]
fn a_cancelled_events_image_is_fixed() {
    let (mut s, event, [owner, _, admin]) = world();
    assert_eq!(
        set(&mut s, event, owner, Some(png(4, 4))),
        Outcome::Image(Ok(()))
    );
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
    for bytes in [Some(png(8, 8)), None] {
        assert_eq!(
            set(&mut s, event, admin, bytes),
            Outcome::Image(Err(ImageRejection::Cancelled))
        );
    }
    assert!(s.event_image(event).is_some());
}

// An image survives a snapshot (descriptor in section 5, bytes in history) with the same
// digest; the hot state's encoding holds the descriptor, not the bytes.
#[test]
fn images_survive_a_snapshot_and_stay_out_of_the_hot_state() {
    let (mut s, event, [owner, ..]) = world();
    let without = s.encode().len();
    let mut bytes = png(100, 100);
    bytes.resize(100_000, 7);
    assert_eq!(
        set(&mut s, event, owner, Some(bytes.clone())),
        Outcome::Image(Ok(()))
    );
    let with = s.encode().len();
    assert!(
        with - without < 200,
        "the hot state grew by {} bytes for a 100 kB image",
        with - without
    );
    let snapshot = postcard::to_stdvec(&s).expect("the replica serializes");
    let restored: Replica = postcard::from_bytes(&snapshot).expect("the snapshot deserializes");
    assert_eq!(restored.digest(), s.digest());
    assert_eq!(restored.history().image(event), Some(bytes.as_slice()));
    assert_eq!(restored.event_image(event), s.event_image(event));
    restored
        .check_invariants()
        .expect("invariants hold after restore");
    let decoded = State::decode(&s.encode()).expect("the hot state decodes");
    assert_eq!(decoded.event_image(event), s.event_image(event));
}

// A state encoded before images existed (no section 5) decodes to the same state, with no
// image anywhere; its encoding is unchanged until an image is set.
#[test]
fn a_state_from_before_images_decodes_without_them() {
    let (s, event, _) = world();
    let old = s.encode();
    let decoded = State::decode(&old).expect("decodes");
    assert!(decoded.event_image(event).is_none());
    assert_eq!(decoded.encode(), old);
}
