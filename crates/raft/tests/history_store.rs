//! The redb-backed state machine against the core's reference replica: the same seeded command
//! sequences, applied in groups of varying size, give the same outcomes and the same digest as
//! `tix_core::Replica` (history in memory); a snapshot built mid-sequence installs on a fresh
//! store with the same digest and continues identically; a reopened store resumes from its
//! checkpoint; a data directory of the earlier JSON format is refused with what to do.

use std::path::Path;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use tempfile::TempDir;
use tix_core::{
    Batch, Command, CustomerKey, EventDetails, EventId, HoldId, HoldRequest, IdempotencyKey,
    InventorySpec, Limits, Outcome, Replica, Role, TicketId, UserId, Venue,
};
use tix_raft::TypeConfig;
use tix_raft::state_machine::StateMachineStore;

const START_MS: u64 = 1_700_000_000_000;

/// A small deterministic generator (xorshift), so a failing seed replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn details(per_customer_max: Option<u32>) -> EventDetails {
    EventDetails {
        name: "Store test".into(),
        description: "".into(),
        starts_at_ms: (START_MS + 3_650 * 24 * 3_600_000) as i64,
        venue: Venue {
            name: "Hall".into(),
            lat: 1.5,
            lon: 2.5,
        },
        price_cents: 1_000,
        currency: "EUR".into(),
        refundable: true,
        per_customer_max,
    }
}

/// Setup (users, an unnumbered and a numbered event, uncapped), then `n` random batches:
/// purchases with repeated keys (replays), holds, confirmations, releases, refunds, check-ins,
/// time steps past the hold TTL and the idempotency retention, and at a third of the way a cap
/// of 6 per customer on both events.
fn batches(seed: u64, n: usize) -> Vec<Batch> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::new();
    let mut commands: Vec<Command> = (1..=4)
        .map(|i| Command::CreateUser {
            username: format!("user{i}"),
            password_hash: "x".into(),
            role: if i == 1 {
                Role::Organizer
            } else {
                Role::Attendee
            },
        })
        .collect();
    for inventory in [
        InventorySpec::Unnumbered { capacity: 40 },
        InventorySpec::Numbered {
            seats: 30,
            seats_per_row: Some(10),
            blocked: vec![5],
        },
    ] {
        commands.push(Command::CreateEvent {
            organizer: UserId(1),
            details: details(None),
            inventory,
            ticket_key_seed: [3; 32],
        });
    }
    out.push(Batch {
        time_ms: START_MS,
        commands,
    });
    let mut now = START_MS;
    for i in 0..n {
        if i == n / 3 {
            // Both events get a cap after sales: their earlier sales are counted then (from
            // history and whatever is still pending in the group).
            let capped = (1..=2).map(|e| Command::UpdateEvent {
                event_id: EventId(e),
                expected_version: 1,
                details: details(Some(6)),
            });
            out.push(Batch {
                time_ms: now,
                commands: capped.collect(),
            });
        }
        if i == n / 4 || i == n / 2 + 3 || i == 3 * n / 5 {
            // Images: both events get one (event 1 a large one) before the snapshot at half
            // way; after it event 2's is replaced and event 1's removed.
            out.push(Batch {
                time_ms: now,
                commands: image_commands(i * 5 / n),
            });
        }
        if i == 2 * n / 3 {
            // Event 1 is cancelled: its active tickets (through the store's per-event index and
            // the pending group) refunded, its holds released; it refuses everything after.
            out.push(Batch {
                time_ms: now,
                commands: vec![Command::CancelEvent {
                    event_id: EventId(1),
                    key: IdempotencyKey::new("user:1", "cancel"),
                    by: UserId(1),
                    reason: "Storm".into(),
                }],
            });
        }
        now += match rng.below(40) {
            0..=3 => 700_000, // past the hold TTL of 600 s
            4 => 90_000_000,  // past the default retention of 24 h
            _ => rng.below(5_000),
        };
        let commands = (0..1 + rng.below(6)).map(|_| command(&mut rng)).collect();
        out.push(Batch {
            time_ms: now,
            commands,
        });
    }
    out
}

/// A PNG header of `width` × `height` (signature, IHDR, an empty IDAT), padded to `bytes`.
fn png(width: u32, height: u32, bytes: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend_from_slice(&13u32.to_be_bytes());
    b.extend_from_slice(b"IHDR");
    b.extend_from_slice(&width.to_be_bytes());
    b.extend_from_slice(&height.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(b"IDAT");
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.resize(bytes.max(b.len()), 0xA5);
    b
}

/// The image commands of step `k` (1: both events get one; 2: event 2's replaced; 3: event
/// 1's removed).
fn image_commands(k: usize) -> Vec<Command> {
    let set = |event: u64, bytes: Option<Vec<u8>>| Command::SetEventImage {
        event_id: EventId(event),
        by: UserId(1),
        image: bytes.map(|bytes| tix_core::ImageUpload {
            bytes,
            alt: format!("Poster {event}"),
        }),
    };
    match k {
        1 => vec![
            set(1, Some(png(1600, 900, 300_000))),
            set(2, Some(png(40, 30, 0))),
        ],
        2 => vec![set(2, Some(png(80, 60, 5_000)))],
        _ => vec![set(1, None)],
    }
}

fn command(rng: &mut Rng) -> Command {
    let event_id = EventId(1 + rng.below(2));
    let user = UserId(2 + rng.below(3));
    match rng.below(7) {
        0..=2 => {
            let client = format!("c{}", rng.below(5));
            let seat = event_id == EventId(2) && rng.below(2) == 0;
            Command::Purchase {
                event_id,
                key: IdempotencyKey::new(client.clone(), format!("r{}", rng.below(40))),
                customer: CustomerKey::Client(client),
                seat: seat.then(|| 1 + rng.below(31) as u32),
            }
        }
        3 => Command::PlaceHold {
            event_id,
            key: IdempotencyKey::new(format!("u{}", user.0), format!("h{}", rng.below(20))),
            customer: user,
            request: HoldRequest::Quantity(1 + rng.below(3) as u32),
            ttl_ms: 600_000,
        },
        4 => Command::ConfirmHold {
            hold_id: HoldId(1 + rng.below(20)),
            customer: user,
            payment_ref: format!("pay-{}", rng.below(1000)),
        },
        5 => Command::Refund {
            ticket_id: TicketId(1 + rng.below(60)),
            by: user,
            override_policy: rng.below(4) == 0,
        },
        _ => Command::CheckIn {
            ticket_id: TicketId(1 + rng.below(60)),
            by: UserId(1),
        },
    }
}

fn entry(index: u64, batch: &Batch) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(batch.clone()),
    }
}

/// Applies `batches` (log indexes from `first_index`) in groups of 1–8 entries.
async fn apply_grouped(
    sm: &mut StateMachineStore,
    batches: &[Batch],
    first_index: u64,
    rng: &mut Rng,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut i = 0;
    while i < batches.len() {
        let size = (1 + rng.below(8) as usize).min(batches.len() - i);
        let group: Vec<_> = (i..i + size)
            .map(|k| entry(first_index + k as u64, &batches[k]))
            .collect();
        for replies in sm.apply(group).await.expect("apply") {
            outcomes.extend(replies);
        }
        i += size;
    }
    outcomes
}

fn open(dir: &Path) -> StateMachineStore {
    StateMachineStore::open(dir).expect("the store opens")
}

/// The reference: the same batches on a replica with history in memory (the state machine
/// starts from `State::default()`, so the default limits).
fn reference(batches: &[Batch]) -> (Replica, Vec<Outcome>) {
    let mut replica = Replica::new(Limits::default());
    let outcomes = batches
        .iter()
        .flat_map(|b| replica.apply_batch(b))
        .collect();
    (replica, outcomes)
}

async fn copy_snapshot(snap: Snapshot<TypeConfig>, into: &mut StateMachineStore) {
    let mut data = into.begin_receiving_snapshot().await.expect("receive");
    let mut source = snap.snapshot;
    tokio::io::copy(&mut source, &mut *data)
        .await
        .expect("copy chunks");
    into.install_snapshot(&snap.meta, data)
        .await
        .expect("install");
}

#[tokio::test]
async fn redb_history_matches_the_reference_through_snapshot_install_and_reopen() {
    for seed in [1u64, 7, 42, 2026] {
        let all = batches(seed, 160);
        let (replica, expected) = reference(&all);
        // The sequence exercises what history holds: sales, replays, refunds, expiry.
        let count = |f: &dyn Fn(&Outcome) -> bool| expected.iter().filter(|o| f(o)).count();
        let sales = count(&|o| matches!(o, Outcome::Purchase(r) if r.result.is_ok()));
        let replays = count(&|o| matches!(o, Outcome::Purchase(r) if r.replayed));
        let refunds = count(&|o| matches!(o, Outcome::Refund(Ok(_))));
        let keyed = count(&|o| matches!(o, Outcome::Purchase(_) | Outcome::Hold(_)));
        let capped = count(&|o| matches!(o, Outcome::Event(Ok((_, 2)))));
        let limited = count(&|o| {
            matches!(o, Outcome::Purchase(r)
                if matches!(r.result, Err(tix_core::Rejection::CustomerLimit { .. })))
        });
        assert!(
            capped == 2 && limited > 0,
            "seed {seed}: {capped} caps set, {limited} purchases over the cap"
        );
        assert!(
            sales > 10 && replays > 5 && refunds > 0,
            "seed {seed}: {sales} sales, {replays} replays, {refunds} refunds"
        );
        assert!(
            replica.record_count() < keyed - replays,
            "seed {seed}: no record expired"
        );
        let split = 1 + all.len() / 2;
        let mut rng = Rng(seed.wrapping_mul(31) | 1);

        let first_dir = TempDir::new().expect("dir");
        let mut first = open(first_dir.path());
        let mut outcomes = apply_grouped(&mut first, &all[..split], 1, &mut rng).await;

        // A snapshot mid-sequence, installed on a fresh store.
        let snap = first
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        let second_dir = TempDir::new().expect("dir");
        let mut second = open(second_dir.path());
        copy_snapshot(snap, &mut second).await;
        assert_eq!(
            second.shared().read().digest(),
            first.shared().read().digest(),
            "seed {seed}: digest changed through a snapshot"
        );

        // Both continue, grouped differently, and agree with the reference.
        let rest = &all[split..];
        outcomes.extend(apply_grouped(&mut first, rest, split as u64 + 1, &mut rng).await);
        let again = apply_grouped(&mut second, rest, split as u64 + 1, &mut rng).await;
        assert_eq!(
            outcomes, expected,
            "seed {seed}: outcomes differ from the reference"
        );
        assert_eq!(
            &again[..],
            &expected[expected.len() - again.len()..],
            "seed {seed}: the installed store diverged"
        );
        for sm in [&first, &second] {
            assert_eq!(sm.shared().read().digest(), replica.digest(), "seed {seed}");
            sm.shared().check_invariants().expect("invariants hold");
        }

        // A reopened store resumes from the checkpoint its drop wrote.
        let digest = first.shared().read().digest();
        drop(first);
        let mut reopened = open(first_dir.path());
        let applied = reopened.applied_state().await.expect("applied").0;
        assert_eq!(applied.map(|l| l.index), Some(all.len() as u64));
        assert_eq!(reopened.shared().read().digest(), digest);
        reopened
            .shared()
            .check_invariants()
            .expect("invariants hold");
        let history = reopened.shared().history().expect("history");
        for event in [EventId(1), EventId(2)] {
            assert_eq!(
                history.event_image(event).as_deref(),
                replica.history().image(event),
                "seed {seed}: event {event}'s image"
            );
        }
        assert!(history.event_image(EventId(2)).is_some());
        let images = count(&|o| matches!(o, Outcome::Image(Ok(()))));
        assert_eq!(images, 4, "seed {seed}: image commands answered");
        assert_eq!(
            history.sales(EventId(1)).count() as u32 + history.sales(EventId(2)).count() as u32,
            replica.events().map(|e| e.inventory.sold()).sum::<u32>()
        );
    }
}

#[test]
fn a_data_directory_of_the_json_format_is_refused_with_what_to_do() {
    let dir = TempDir::new().expect("dir");
    std::fs::write(dir.path().join("snapshots.redb"), b"old").expect("write");
    let Err(e) = StateMachineStore::open(dir.path()) else {
        panic!("an old data directory was opened");
    };
    let message = e.to_string();
    assert!(message.contains("earlier tix version"), "{message}");
    assert!(message.contains("empty --data-dir"), "{message}");
    assert!(
        std::fs::read(dir.path().join("snapshots.redb")).expect("kept") == b"old",
        "the old data must be left alone"
    );
}

/// A store found ahead of its checkpoint (history committed past the last durable hot state, as
/// after a close that promoted non-durable commits without the final checkpoint) is rebuilt from
/// the newest snapshot file, so the log replays onto history of exactly the snapshot's index.
#[tokio::test]
async fn a_store_ahead_of_its_checkpoint_is_rebuilt_from_the_newest_snapshot() {
    let all = batches(5, 60);
    let dir = TempDir::new().expect("dir");
    let mut sm = open(dir.path());
    let mut rng = Rng(11);
    apply_grouped(&mut sm, &all[..30], 1, &mut rng).await;
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .expect("build");
    let at_snapshot = sm.shared().read().digest();
    apply_grouped(&mut sm, &all[30..], 31, &mut rng).await;
    assert_ne!(sm.shared().read().digest(), at_snapshot);
    drop(sm);

    // Move the recorded applied position past the checkpoint, as a promoted commit would.
    {
        let db = redb::Database::open(dir.path().join("state.redb")).expect("db");
        let meta: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("meta");
        let txn = db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(meta).expect("meta");
            let ahead = (
                Some(LogId::new(CommittedLeaderId::new(1, 1), 999)),
                snap.meta.last_membership.clone(),
            );
            let bytes = postcard::to_stdvec(&Some(ahead)).expect("encode");
            table.insert("applied", bytes.as_slice()).expect("insert");
        }
        txn.commit().expect("commit");
    }

    let mut reopened = open(dir.path());
    let applied = reopened.applied_state().await.expect("applied").0;
    assert_eq!(applied, snap.meta.last_log_id, "not back at the snapshot");
    assert_eq!(reopened.shared().read().digest(), at_snapshot);
    reopened
        .shared()
        .check_invariants()
        .expect("invariants hold");
    // Replaying the log from there reaches the same state as before.
    let mut rng = Rng(12);
    apply_grouped(&mut reopened, &all[30..], 31, &mut rng).await;
    let (replica, _) = reference(&all);
    assert_eq!(reopened.shared().read().digest(), replica.digest());
}
