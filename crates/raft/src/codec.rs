//! The binary format of everything the cluster keeps or sends to itself: log entries, the vote
//! and the other log records in redb, Raft RPC bodies and forwarded proposals.
//!
//! A record is one format version byte ([`FORMAT_V1`]) followed by the value in postcard 1
//! (serde's data model, varint integers, no field names), so a batch of purchases costs a
//! fraction of its JSON size and time. The version byte comes first because these bytes outlive
//! the program that wrote them: a log on disk is read back by the next release, and during a
//! rolling upgrade two releases talk to each other. Reading the byte first lets a reader refuse
//! what it does not know by name (`unknown format version 2`) instead of misreading it, and it
//! lets it recognize the JSON that earlier tix versions wrote (a JSON text never starts with
//! byte 0x01), so the caller can say what to do rather than report garbage. Postcard cannot
//! read self-describing shapes (`deserialize_any`: untagged or internally tagged enums,
//! `#[serde(flatten)]`), and it writes every field, so `skip_serializing_if` would corrupt the
//! stream; the types that cross this boundary use none of them, and the tests below round-trip
//! each kind.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The first (and so far only) format: a version byte of 1, then postcard 1.
pub const FORMAT_V1: u8 = 1;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// There were no bytes at all, not even the version byte.
    #[error("empty input: expected a format version byte")]
    Empty,
    /// The bytes look like JSON, the format earlier tix versions used.
    #[error("this is JSON, the format of an earlier tix version, not format version {FORMAT_V1}")]
    LegacyJson,
    /// The version byte names a format this build does not know.
    #[error("unknown format version {0} (this build reads version {FORMAT_V1})")]
    UnknownVersion(u8),
    /// The version byte is right but the value is malformed or of another type.
    #[error("malformed format version {FORMAT_V1} value: {0}")]
    Postcard(#[from] postcard::Error),
    /// A whole value was read and bytes were left over: the record is not what was expected.
    #[error("{count} bytes left over after the value")]
    TrailingBytes {
        /// How many bytes were not read.
        count: usize,
    },
}

/// Returns `value` encoded as the version byte followed by its postcard bytes.
///
/// # Panics
///
/// When `value`'s `Serialize` implementation fails or writes a sequence of unknown length: that
/// is a programming error in a type, never a property of the data, and the tests catch it.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_extend(value, vec![FORMAT_V1])
        .expect("every type the cluster encodes serializes with postcard")
}

/// Returns the value encoded in `bytes`, after checking the version byte and that nothing is
/// left over.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != FORMAT_V1 {
        return Err(if looks_like_json(bytes) {
            CodecError::LegacyJson
        } else {
            CodecError::UnknownVersion(version)
        });
    }
    let (value, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes { count: rest.len() });
    }
    Ok(value)
}

/// Returns whether `bytes` start like the JSON earlier tix versions wrote: an object, an array,
/// a string, or exactly `null` (an absent committed index).
fn looks_like_json(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(b'{' | b'[' | b'"')) || bytes == b"null"
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt::Debug;

    use openraft::error::{Fatal, InstallSnapshotError, RaftError, SnapshotMismatch};
    use openraft::raft::{
        AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest,
        InstallSnapshotResponse, VoteRequest, VoteResponse,
    };
    use openraft::{
        AnyError, CommittedLeaderId, EntryPayload, Membership, SnapshotMeta, SnapshotSegmentId,
        StorageIOError, StoredMembership, Vote,
    };
    use tix_core::{
        AccountRejection, Admitted, Batch, CancelRejection, CheckInRejection, Command, CustomerKey,
        EventCancelled, EventDetails, EventId, EventRejection, HoldId, HoldPlaced, HoldRequest,
        IdempotencyKey, InventorySpec, OrderConfirmed, OrderId, Outcome, PaymentRefund, Refunded,
        Rejection, Replayable, Role, Sale, TicketId, UserId, UserRejection, Venue,
    };

    use super::*;
    use crate::proposer::ProposeError;
    use crate::types::{Entry, LogId, NodeId, TixNode, TypeConfig};

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
        let bytes = encode(value);
        assert_eq!(bytes[0], FORMAT_V1);
        let back: T = decode(&bytes).expect("decodes");
        assert_eq!(&back, value);
    }

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn purchase(seat: Option<u32>) -> Command {
        Command::Purchase {
            event_id: EventId(7),
            key: IdempotencyKey::new("box-office", "r-1"),
            customer: CustomerKey::Client("box-office".into()),
            seat,
        }
    }

    /// Checks that a log entry carrying a batch of commands decodes to the same entry.
    #[test]
    fn normal_entry_round_trips() {
        let entry = Entry {
            log_id: log_id(3, 42),
            payload: EntryPayload::Normal(Batch {
                time_ms: 1_700_000_000_000,
                commands: vec![purchase(Some(17)), purchase(None)],
            }),
        };
        round_trip(&entry);
    }

    /// Checks that a membership entry (voters and node addresses) decodes to the same entry.
    #[test]
    fn membership_entry_round_trips() {
        let node = |n: u64| TixNode {
            api_addr: format!("127.0.0.1:{}", 8000 + n),
            raft_addr: format!("127.0.0.1:{}", 9000 + n),
        };
        let nodes = BTreeMap::from([(1, node(1)), (2, node(2)), (3, node(3))]);
        let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes);
        let entry = Entry {
            log_id: log_id(2, 5),
            payload: EntryPayload::Membership(membership),
        };
        round_trip(&entry);
    }

    /// Checks that a blank entry (a new leader's first) decodes to the same entry.
    #[test]
    fn blank_entry_round_trips() {
        let entry = Entry {
            log_id: log_id(4, 9),
            payload: EntryPayload::Blank,
        };
        round_trip(&entry);
    }

    /// Checks that a vote, committed or not, decodes to the same vote.
    #[test]
    fn vote_round_trips() {
        round_trip(&Vote::new(5, 2));
        round_trip(&Vote::new_committed(6, 3));
    }

    /// Checks that the answers to a batch (a rejection with a seat, a hold with seats) decode
    /// to the same answers: `Rejection` must not be internally tagged.
    #[test]
    fn outcomes_round_trip() {
        let outcomes = vec![
            Outcome::Purchase(Replayable {
                replayed: false,
                result: Err(Rejection::SeatTaken { seat: 17 }),
            }),
            Outcome::Hold(Replayable {
                replayed: true,
                result: Ok(HoldPlaced {
                    hold_id: HoldId(3),
                    expires_at_ms: 1_700_000_600_000,
                    quantity: 2,
                    seats: vec![4, 5],
                }),
            }),
            Outcome::Purchase(Replayable {
                replayed: false,
                result: Ok(Sale {
                    ticket_id: TicketId(11),
                    seat: None,
                }),
            }),
            Outcome::User(Ok(UserId(1))),
        ];
        round_trip(&outcomes);
    }

    /// Checks that every command variant decodes to the same command: a batch is the log's
    /// payload and the forwarded proposal's body. Covers floats (venue), the ticket key seed,
    /// both inventory shapes and both hold requests.
    #[test]
    fn every_command_round_trips() {
        let details = EventDetails {
            name: "Night".into(),
            description: "Doors at 8".into(),
            starts_at_ms: -1,
            venue: Venue {
                name: "Hall".into(),
                lat: 48.858_370_1,
                lon: -0.1e-300,
            },
            price_cents: 2500,
            currency: "EUR".into(),
            refundable: true,
            per_customer_max: Some(4),
        };
        let key = IdempotencyKey::new("c", "r");
        let commands = vec![
            Command::CreateUser {
                username: "ada".into(),
                password_hash: "$argon2id$...".into(),
                role: Role::Organizer,
            },
            Command::SetRole {
                user_id: UserId(2),
                role: Role::Admin,
            },
            Command::CreateSession {
                token_hash: "ab".into(),
                user_id: UserId(2),
                expires_at_ms: 9,
            },
            Command::EndSession {
                token_hash: "ab".into(),
            },
            Command::CreateEvent {
                organizer: UserId(2),
                details: details.clone(),
                inventory: InventorySpec::Numbered {
                    seats: 100,
                    seats_per_row: Some(10),
                    blocked: vec![3, 4],
                },
                ticket_key_seed: [7; 32],
            },
            Command::CreateEvent {
                organizer: UserId(2),
                details: details.clone(),
                inventory: InventorySpec::Unnumbered { capacity: 500 },
                ticket_key_seed: [0; 32],
            },
            Command::UpdateEvent {
                event_id: EventId(1),
                expected_version: 3,
                details,
            },
            purchase(Some(1)),
            Command::Purchase {
                event_id: EventId(1),
                key: key.clone(),
                customer: CustomerKey::User(UserId(5)),
                seat: None,
            },
            Command::PlaceHold {
                event_id: EventId(1),
                key: key.clone(),
                customer: UserId(5),
                request: HoldRequest::Quantity(2),
                ttl_ms: 60_000,
            },
            Command::PlaceHold {
                event_id: EventId(1),
                key,
                customer: UserId(5),
                request: HoldRequest::Seats(vec![8, 9]),
                ttl_ms: 60_000,
            },
            Command::ReleaseHold {
                hold_id: HoldId(1),
                customer: UserId(5),
            },
            Command::ConfirmHold {
                hold_id: HoldId(1),
                customer: UserId(5),
                payment_ref: "pay_1".into(),
            },
            Command::Refund {
                ticket_id: TicketId(1),
                by: UserId(5),
                override_policy: false,
            },
            Command::CheckIn {
                ticket_id: TicketId(1),
                by: UserId(3),
            },
            Command::CancelEvent {
                event_id: EventId(7),
                key: IdempotencyKey::new("c", "cancel"),
                by: UserId(1),
                reason: "The venue flooded — sorry.".into(),
            },
            Command::SetEmail {
                user_id: UserId(2),
                email: Some("zoë@example.org".into()),
            },
            Command::SetEmail {
                user_id: UserId(2),
                email: None,
            },
            Command::CreatePasswordReset {
                token_hash: "ab".repeat(32),
                user_id: UserId(2),
                expires_at_ms: u64::MAX,
            },
            Command::ResetPassword {
                token_hash: "ab".repeat(32),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
            Command::SetEventZone {
                event_id: EventId(7),
                by: UserId(1),
                zone: "America/Argentina/Buenos_Aires".into(),
            },
            Command::SetEventImage {
                event_id: EventId(7),
                by: UserId(1),
                image: Some(tix_core::ImageUpload {
                    bytes: (0..=255u8).cycle().take(70_000).collect(),
                    alt: "The hall by night — ünïcode".into(),
                }),
            },
            Command::SetEventImage {
                event_id: EventId(7),
                by: UserId(1),
                image: None,
            },
        ];
        round_trip(&Batch {
            time_ms: u64::MAX,
            commands,
        });
    }

    /// Checks that every outcome variant, and rejections with and without fields, decode to
    /// the same answers, inside the forwarded proposal's response.
    #[test]
    fn every_outcome_and_propose_result_round_trips() {
        let rejections = [
            Rejection::SoldOut,
            Rejection::SeatOutOfRange { seat: 9, seats: 8 },
            Rejection::BadQuantity {
                quantity: 0,
                max: 10,
            },
            Rejection::BadTtl { max_ms: 5 },
            Rejection::NotRefundable,
        ];
        let mut outcomes: Vec<Outcome> = rejections
            .into_iter()
            .map(|r| Outcome::Release(Err(r)))
            .collect();
        outcomes.extend([
            Outcome::User(Err(UserRejection::UsernameTaken)),
            Outcome::Account(Ok(UserId(2))),
            Outcome::Account(Err(AccountRejection::UnknownResetToken)),
            Outcome::Zone(Ok(())),
            Outcome::Zone(Err(tix_core::ZoneRejection::BadZone)),
            Outcome::Image(Ok(())),
            Outcome::Image(Err(tix_core::ImageRejection::NotYourEvent)),
            Outcome::Image(Err(tix_core::ImageRejection::Bad(
                tix_core::ImageProblem::TooManyPixels {
                    width: 9_000,
                    height: 1,
                },
            ))),
            Outcome::Session,
            Outcome::Event(Ok((EventId(1), 2))),
            Outcome::Event(Err(EventRejection::BadInventory {
                detail: "too big".into(),
            })),
            Outcome::Event(Err(EventRejection::VersionConflict { current_version: 4 })),
            Outcome::Release(Ok(HoldId(2))),
            Outcome::Confirm(Ok(OrderConfirmed {
                order_id: OrderId(1),
                tickets: vec![TicketId(1), TicketId(2)],
                total_cents: 5000,
            })),
            Outcome::Refund(Ok(Refunded {
                ticket_id: TicketId(1),
                amount_cents: 2500,
                payment_ref: None,
            })),
            Outcome::CheckIn(Ok(Admitted {
                ticket_id: TicketId(1),
                at_ms: 7,
            })),
            Outcome::CheckIn(Err(CheckInRejection::AlreadyAdmitted {
                at_ms: 7,
                by: UserId(3),
            })),
            Outcome::CheckIn(Err(CheckInRejection::EventCancelled)),
            Outcome::Release(Err(Rejection::EventCancelled)),
            Outcome::Event(Err(EventRejection::Cancelled)),
            Outcome::Cancel(Replayable {
                replayed: false,
                result: Ok(EventCancelled {
                    event_id: EventId(7),
                    tickets_refunded: 20_000,
                    holds_released: 3,
                    amount_cents: 50_000_000,
                    payments: vec![PaymentRefund {
                        payment_ref: "pay-1".into(),
                        amount_cents: 2500,
                    }],
                }),
            }),
            Outcome::Cancel(Replayable {
                replayed: true,
                result: Err(CancelRejection::AlreadyCancelled),
            }),
        ]);
        let ok: Result<(Vec<Outcome>, u64), ProposeError> = Ok((outcomes, 12));
        round_trip(&ok);
        let not_leader: Result<(Vec<Outcome>, u64), ProposeError> = Err(ProposeError::NotLeader {
            leader: Some((2, TixNode::default())),
        });
        round_trip(&not_leader);
        let unavailable: Result<(Vec<Outcome>, u64), ProposeError> =
            Err(ProposeError::Unavailable("stopped".into()));
        round_trip(&unavailable);
    }

    /// Checks that the Raft RPC bodies and their answers (including errors) decode to the same
    /// values; requests without `PartialEq` are compared by re-encoding.
    #[test]
    fn raft_rpc_bodies_round_trip() {
        let append = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(log_id(2, 4)),
            entries: vec![Entry {
                log_id: log_id(3, 5),
                payload: EntryPayload::Normal(Batch {
                    time_ms: 1,
                    commands: vec![purchase(Some(2))],
                }),
            }],
            leader_commit: None,
        };
        let bytes = encode(&append);
        let back: AppendEntriesRequest<TypeConfig> = decode(&bytes).expect("decodes");
        assert_eq!(encode(&back), bytes);

        let snapshot = InstallSnapshotRequest::<TypeConfig> {
            vote: Vote::new_committed(3, 1),
            meta: SnapshotMeta {
                last_log_id: Some(log_id(3, 5)),
                last_membership: StoredMembership::default(),
                snapshot_id: "3-5".into(),
            },
            offset: 0,
            data: vec![0, 1, 2, 255],
            done: true,
        };
        let bytes = encode(&snapshot);
        let back: InstallSnapshotRequest<TypeConfig> = decode(&bytes).expect("decodes");
        assert_eq!(encode(&back), bytes);

        round_trip(&VoteRequest::new(Vote::new(4, 2), Some(log_id(3, 5))));
        let answers: Vec<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> = vec![
            Ok(AppendEntriesResponse::Success),
            Ok(AppendEntriesResponse::PartialSuccess(Some(log_id(3, 5)))),
            Ok(AppendEntriesResponse::Conflict),
            Ok(AppendEntriesResponse::HigherVote(Vote::new(5, 2))),
            Err(RaftError::Fatal(Fatal::Stopped)),
            Err(RaftError::Fatal(Fatal::StorageError(
                StorageIOError::write_logs(AnyError::error("disk full")).into(),
            ))),
        ];
        round_trip(&answers);
        let answer: Result<VoteResponse<NodeId>, RaftError<NodeId>> = Ok(VoteResponse {
            vote: Vote::new(4, 2),
            vote_granted: true,
            last_log_id: None,
        });
        round_trip(&answer);
        let answers: Vec<
            Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
        > = vec![
            Ok(InstallSnapshotResponse {
                vote: Vote::new(4, 2),
            }),
            Err(RaftError::APIError(InstallSnapshotError::SnapshotMismatch(
                SnapshotMismatch {
                    expect: SnapshotSegmentId {
                        id: "a".into(),
                        offset: 0,
                    },
                    got: SnapshotSegmentId {
                        id: "b".into(),
                        offset: 9,
                    },
                },
            ))),
        ];
        round_trip(&answers);
    }

    /// Checks that a version byte this build does not know is refused by its number.
    #[test]
    fn a_log_from_before_cancellations_still_decodes() {
        // The bytes an entry of one check-in had before `CancelEvent` existed: version 1, time
        // 5, one command, variant 11 (`CheckIn`), ticket 1, by user 3. New variants are
        // appended, so these bytes keep their meaning (no new format version), and
        // `CancelEvent` is variant 12.
        let old = [FORMAT_V1, 5, 1, 11, 1, 3];
        let batch: Batch = decode(&old).expect("an old entry decodes");
        let check_in = Command::CheckIn {
            ticket_id: TicketId(1),
            by: UserId(3),
        };
        assert_eq!(batch.commands, vec![check_in]);
        let cancel = Command::CancelEvent {
            event_id: EventId(1),
            key: IdempotencyKey::new("c", "r"),
            by: UserId(3),
            reason: "x".into(),
        };
        assert_eq!(encode(&cancel)[1], 12);
    }

    #[test]
    fn version_2_is_refused() {
        let mut bytes = encode(&Vote::new(1, 1));
        bytes[0] = 2;
        assert_eq!(
            decode::<Vote<u64>>(&bytes),
            Err(CodecError::UnknownVersion(2))
        );
    }

    /// Checks that empty input is refused as empty, not as a postcard error.
    #[test]
    fn empty_input_is_refused() {
        assert_eq!(decode::<Vote<u64>>(&[]), Err(CodecError::Empty));
    }

    /// Checks that the JSON earlier versions wrote (an entry, a batch array, `null`) is
    /// recognized as the old format.
    #[test]
    fn json_is_the_old_format() {
        let entry = Entry {
            log_id: log_id(1, 1),
            payload: EntryPayload::Blank,
        };
        let json = serde_json::to_vec(&entry).expect("json");
        assert_eq!(decode::<Entry>(&json), Err(CodecError::LegacyJson));
        let json = serde_json::to_vec(&vec![purchase(None)]).expect("json");
        assert_eq!(decode::<Vec<Command>>(&json), Err(CodecError::LegacyJson));
        let json = serde_json::to_vec(&None::<LogId>).expect("json");
        assert_eq!(decode::<Option<LogId>>(&json), Err(CodecError::LegacyJson));
    }

    /// Checks that a value of the wrong type, or one cut short, or one with bytes left over, is
    /// an error and never a panic.
    #[test]
    fn malformed_bodies_are_errors() {
        let bytes = encode(&Vote::new(5, 2));
        assert!(matches!(
            decode::<Vote<u64>>(&bytes[..bytes.len() - 1]),
            Err(CodecError::Postcard(_))
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode::<Vote<u64>>(&longer),
            Err(CodecError::TrailingBytes { count: 1 })
        );
        assert!(decode::<Entry>(&[FORMAT_V1, 0xff, 0xff]).is_err());
    }
}
