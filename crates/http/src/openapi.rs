//! The OpenAPI 3.1 document of the JSON API, generated from the handlers' types: the request
//! bodies and query parameters derive `ToSchema`/`IntoParams` where the handlers deserialize
//! them, the response shapes in `views.rs` derive `ToSchema`, every handler carries a
//! `#[utoipa::path]` listing each status it answers, and [`ApiDoc`] gathers them. `ops.rs`
//! serves [`ApiDoc::openapi`] at `/api/v1/openapi.json` (Swagger UI at `/api/docs`).
//!
//! The error responses are defined here once, as `components/responses`: each is a
//! `application/problem+json` [`Problem`] whose examples are rendered by the real error
//! mapping (`ApiError::problem`), so an example cannot drift from what the server sends.
//! Every operation also documents 500 and 503, which the panic handler and the request timeout
//! can answer anywhere (added by [`AnyOperation`]).

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use tix_core::Rejection;
use tix_raft::ProposeError;
use utoipa::openapi::RefOr;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder,
    OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::error::ApiError;
use crate::{assistant, auth, cluster, events, images, ops, queue, sales, shop, views};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The name of the bearer security scheme the operations require.
pub const BEARER: &str = "bearerAuth";

/// The document: info, tags, every JSON API operation, shared schemas and error responses.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tix API",
        version = "1",
        description = include_str!("openapi.md"),
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    tags(
        (name = "accounts", description = "Sign-up, login and logout, the current account, roles."),
        (name = "events", description = "Creating, finding, reading and editing events; seat maps."),
        (name = "box office", description = "Direct, idempotent sales by an event's organizer; \
            linearizable counters and the sales export."),
        (name = "shop", description = "Holds, checkout, orders, tickets and refunds for signed-in \
            customers."),
        (name = "door", description = "Admitting tickets at the entrance."),
        (name = "waiting room", description = "An on-sale's fair front door: the organizer sets \
            when the sale opens and how many are admitted per minute; visitors join a queue \
            (drawn at the opening for early arrivals, first come first served after) and buy \
            with their admission token."),
        (name = "operations", description = "Health, cluster status and metrics."),
        (name = "assistant", description = "The booking assistant: book, find and refund \
            tickets by chatting, in English or German."),
    ),
    paths(
        auth::signup, auth::login, auth::logout, auth::me, auth::set_my_email, auth::set_role,
        events::list, events::create, events::detail, events::update, events::seats,
        events::ticket_key, events::cancel,
        images::put_image, images::get_image, images::delete_image,
        sales::purchase, sales::availability, sales::sales, sales::purchase_batch,
        shop::place_hold, shop::get_hold, shop::release_hold, shop::checkout, shop::my_orders,
        shop::my_tickets, shop::get_ticket, shop::refund, shop::check_in,
        queue::join, queue::room_info, queue::set_room, queue::remove_room,
        cluster::status,
        ops::healthz, ops::metrics,
        assistant::message,
    ),
    components(
        schemas(Problem, RefusalReason, views::SaleLine),
        responses(
            MalformedJson, Unauthenticated, PayloadTooLarge, UnsupportedMediaType, Unavailable,
            Internal, BadCredentials, TooManyAttempts, TooManySignups, UsernameTaken, SignupInvalid,
            LoginInvalid, AdminOnly, UserNotFound, LastAdmin, RoleInvalid, ListQueryInvalid,
            OrganizerOnly, EventOwnerOnly, EventNotFound, EventCreateInvalid,
            EventUpdateInvalid, VersionConflict, NoSeatMap, SellerOnly, PurchaseRefused,
            PurchaseInvalid, BatchInvalid, HoldEventNotFound, HoldRefused, HoldInvalid,
            HoldNotFound, PaymentDeclined, HoldExpired, CheckoutInvalid, TicketNotFound,
            RefundRefused, DoorOnly, CheckInRefused, CheckInInvalid, MetricsNotFound,
            TooManyMessages, AssistantMessageInvalid, CancelOwnerOnly, AlreadyCancelled,
            CancelInvalid, QueueRefused, QueueInvalid, RoomInvalid, WaitingRoomNotFound,
            AdmissionRefused, SaleForbidden, EmailInvalid, ImageOwnerOnly, ImageEventCancelled,
            ImageTooLarge, ImageUnsupportedType, ImageInvalid, ImageNotFound,
        ),
    ),
    modifiers(&BearerScheme, &AnyOperation, &ClosedVariants),
)]
pub struct ApiDoc;

/// Adds the bearer security scheme the operations name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("64 hex characters")
            .description(Some(
                "The `token` from `POST /api/v1/auth/login`, as `Authorization: Bearer <token>` \
                 (the scheme name is case-insensitive).",
            ))
            .build();
        components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));
    }
}

/// Closes the variants of the request enums that refuse unknown fields (serde's
/// `deny_unknown_fields` on an enum reaches its variants; utoipa's schema does not).
struct ClosedVariants;

impl Modify for ClosedVariants {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::OneOf(one_of))) = components.schemas.get_mut("InventoryBody") {
            for item in &mut one_of.items {
                if let RefOr::T(Schema::Object(object)) = item {
                    object.additional_properties =
                        Some(Box::new(AdditionalProperties::FreeForm(false)));
                }
            }
        }
    }
}

/// Adds to every operation the answers that do not depend on the handler: 500 (a panic or a
/// storage failure, caught and logged) and 503 (the request timeout, or no leader).
struct AnyOperation;

impl Modify for AnyOperation {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_mut(item) {
                let responses = &mut operation.responses.responses;
                for (status, name) in [("500", "Internal"), ("503", "Unavailable")] {
                    responses.entry(status.to_owned()).or_insert_with(|| {
                        RefOr::Ref(utoipa::openapi::Ref::from_response_name(name))
                    });
                }
            }
        }
    }
}

/// The operations of a path item.
fn operations_mut(
    item: &mut utoipa::openapi::path::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// An error, as `application/problem+json` (RFC 9457). Match on `type` (or `reason`), never on
/// `title` or `detail`, which are for people. Besides the standard members it may carry
/// extension members: `field` for invalid input, `outcome` and `reason` for a refusal by the
/// box office, `current_version` for an edit conflict, and the details of a refusal (`seat`,
/// `seats`, `quantity`, `max`, `max_ms`, `at`, `by`).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "https://tix.invalid/problems/sold_out",
    "title": "Request rejected", "status": 409, "detail": "no tickets are left",
    "outcome": "rejected", "reason": "sold_out"}))]
pub struct Problem {
    /// A stable URI naming the kind of problem: `https://tix.invalid/problems/` followed by
    /// `malformed_json`, `invalid_field`, `unauthenticated`, `bad_credentials`,
    /// `too_many_attempts`, `too_many_signups`, `cross_origin`, `unsupported_media_type`,
    /// `payload_too_large`, `method_not_allowed`, `forbidden`, `live_full`,
    /// `not_found`, `username_taken`, `last_admin`, `version_conflict`, `already_cancelled`,
    /// `payment_declined`, the image refusals (`image_too_large`, `unsupported_image_type`,
    /// `svg_refused`, `image_empty`, `image_malformed`, `image_animated`,
    /// `image_too_many_pixels`),
    /// `unavailable`, `internal`, or the `reason` of a refusal (`sold_out`, `seat_taken`,
    /// `already_admitted`...). The URI identifies; it does not resolve.
    #[serde(rename = "type")]
    #[schema(pattern = "^https://tix\\.invalid/problems/[a-z_]+$")]
    #[schema(example = "https://tix.invalid/problems/sold_out")]
    pub kind: String,
    /// A short, human summary of the kind of problem.
    #[schema(example = "Request rejected")]
    pub title: String,
    /// The HTTP status code, repeated.
    #[schema(minimum = 400, maximum = 599, example = 409)]
    pub status: u16,
    /// A human explanation of this occurrence.
    #[schema(example = "no tickets are left")]
    pub detail: String,
    /// On `invalid_field` (422): the JSON path of the offending field, e.g. `venue.lat`,
    /// `inventory.seats` or `purchases[2].seat`; the parameter name for a bad query.
    #[schema(required = false, example = "venue.lat")]
    pub field: String,
    /// Present when the box office refused a sale, hold, confirmation or refund (together with
    /// `reason`).
    #[schema(required = false)]
    pub outcome: RejectedOutcome,
    /// The machine-readable reason of a refusal; the last segment of `type` repeats it.
    #[schema(required = false)]
    pub reason: RefusalReason,
    /// On `version_conflict` (409): the version now stored; re-read the event and retry.
    #[schema(required = false)]
    pub current_version: u64,
    /// On `seat_taken`, `seat_blocked`, `seat_out_of_range`, `duplicate_seat`: the seat
    /// concerned.
    #[schema(required = false, format = Int64, maximum = 4294967295_u64)]
    pub seat: u32,
    /// On `seat_out_of_range`: the highest seat number of the event.
    #[schema(required = false)]
    pub seats: u32,
    /// On `bad_quantity` and `no_adjacent_seats`: how many tickets were asked for.
    #[schema(required = false, format = Int64, maximum = 4294967295_u64)]
    pub quantity: u32,
    /// On `bad_quantity` and `customer_limit`: the limit that applies.
    #[schema(required = false, format = Int64, maximum = 4294967295_u64)]
    pub max: u32,
    /// On `unknown_section`: the section's index.
    #[schema(required = false, format = Int64, maximum = 4294967295_u64)]
    pub section: u32,
    /// On `bad_ttl`: the longest hold allowed, in milliseconds.
    #[schema(required = false)]
    pub max_ms: u64,
    /// On `already_admitted`: when the ticket was admitted.
    #[schema(required = false, format = DateTime)]
    pub at: String,
    /// On `already_admitted`: the username of who admitted it (`null` if the account is gone).
    #[schema(required = false)]
    pub by: Option<String>,
    /// On `image_too_large` (413): the largest image accepted, in bytes.
    #[schema(required = false)]
    pub bytes_max: u32,
    /// On `too_many_attempts` and `too_many_signups` (429): seconds until a retry is accepted,
    /// as in `Retry-After`.
    #[schema(required = false)]
    pub retry_after_s: u64,
    /// The id of the request this answers (also in the `x-request-id` header): quote it when
    /// reporting a problem, it finds the one log line about it.
    #[schema(
        required = false,
        pattern = "^[A-Za-z0-9._-]{1,64}$",
        example = "1-18f3a2c0b41"
    )]
    pub request_id: String,
}

/// What a refused request did: `rejected`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectedOutcome {
    /// The box office refused.
    Rejected,
}

/// Why the box office or the door refused. 409: `sold_out`, `seat_taken`, `seat_blocked`,
/// `customer_limit`, `hold_expired`, `already_refunded`, `already_checked_in`,
/// `not_refundable`, `event_cancelled`, `already_admitted`, `refunded`, `no_adjacent_seats`.
/// 422: `seat_out_of_range`, `seat_not_applicable`, `duplicate_seat`, `bad_quantity`,
/// `idempotency_key_reused`, `bad_idempotency_key`, `bad_ttl`, `unknown_section`,
/// `mixed_prices`. 404: `unknown_event`, `unknown_hold`, `unknown_ticket`.
/// 403: `not_yours`, and the waiting room's `waiting_room_not_open`, `not_in_queue`,
/// `not_admitted_yet`, `admission_expired`, `admission_invalid`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// No such event.
    UnknownEvent,
    /// No tickets left.
    SoldOut,
    /// Sold or held by someone else.
    SeatTaken,
    /// No such seat.
    SeatOutOfRange,
    /// Never for sale.
    SeatBlocked,
    /// A seat for a general-admission event.
    SeatNotApplicable,
    /// A seat listed twice.
    DuplicateSeat,
    /// Zero tickets, or more than allowed per order.
    BadQuantity,
    /// The event's per-customer cap, or the active-holds limit.
    CustomerLimit,
    /// The idempotency key was used before with other parameters.
    #[serde(rename = "idempotency_key_reused")]
    KeyReused,
    /// A client id or request id is empty or too long.
    #[serde(rename = "bad_idempotency_key")]
    BadKey,
    /// The hold time is out of range.
    BadTtl,
    /// No such hold.
    UnknownHold,
    /// Someone else's.
    NotYours,
    /// The hold expired before payment completed.
    HoldExpired,
    /// No such ticket.
    UnknownTicket,
    /// Already refunded.
    AlreadyRefunded,
    /// Used at the door.
    AlreadyCheckedIn,
    /// The event's refund policy.
    NotRefundable,
    /// Scanned before.
    AlreadyAdmitted,
    /// A refunded ticket at the door.
    Refunded,
    /// The organizer cancelled the event: nothing more is held, sold or admitted.
    EventCancelled,
    /// No row has that many free seats side by side (a group is never split).
    NoAdjacentSeats,
    /// No such section.
    UnknownSection,
    /// The seats of one hold are in sections with different prices.
    MixedPrices,
    /// The event's waiting room has not opened yet.
    WaitingRoomNotOpen,
    /// The buyer has not joined the event's queue.
    NotInQueue,
    /// The buyer's turn comes later (`Retry-After` says when).
    NotAdmittedYet,
    /// The buyer's window to buy has closed.
    AdmissionExpired,
    /// The `Tix-Admission` token is not this room's for this buyer.
    AdmissionInvalid,
}

/// The event id. Anything but a non-negative integer names no event: 404.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct EventIdParam(
    /// The event id. Anything but a non-negative integer names no event: 404.
    #[allow(dead_code)]
    u64,
);

/// How a sale passes an event's waiting room (headers).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct AdmissionHeaders {
    /// The buyer's admission token from `POST /events/{id}/queue`, when the event has a
    /// waiting room.
    /// At most 200 characters (longer is a 422).
    #[param(rename = "Tix-Admission", max_length = 200, nullable = false)]
    tix_admission: Option<String>,
    /// `bypass`: a seller (the event's organizer, an admin) sells past the waiting room. Any
    /// other value is a 422.
    #[param(
        rename = "Tix-Waiting-Room",
        pattern = "^[Bb][Yy][Pp][Aa][Ss][Ss]$",
        nullable = false
    )]
    tix_waiting_room: Option<String>,
}

/// Only the admission token (holds: the buyer is the account).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct AdmissionHeader {
    /// Your admission token from `POST /events/{id}/queue`, when the event has a waiting room
    /// (without it your account's place in the queue is looked up). At most 200 characters
    /// (longer is a 422).
    #[param(rename = "Tix-Admission", max_length = 200, nullable = false)]
    tix_admission: Option<String>,
}

/// The hold id. Anything but a non-negative integer names no hold: 404.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct HoldIdParam(
    /// The hold id. Anything but a non-negative integer names no hold: 404.
    #[allow(dead_code)]
    u64,
);

/// The ticket id. Anything but a non-negative integer names no ticket: 404.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct TicketIdParam(
    /// The ticket id. Anything but a non-negative integer names no ticket: 404.
    #[allow(dead_code)]
    u64,
);

/// The account id. Anything but a non-negative integer names no account: 404.
#[derive(IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct UserIdParam(
    /// The account id. Anything but a non-negative integer names no account: 404.
    #[allow(dead_code)]
    u64,
);

/// A header of an error response.
#[derive(Clone, Copy)]
enum ProblemHeader {
    /// `Retry-After: 1` (429, 503).
    RetryAfter,
    /// `WWW-Authenticate: Bearer` (401).
    WwwAuthenticate,
    /// `Idempotent-Replayed: true` on a recorded refusal repeated.
    IdempotentReplayed,
}

/// Builds a problem+json response: `description`, and one example per `(name, summary, error)`
/// rendered by the server's own error mapping.
fn problem_response(
    description: &str,
    examples: Vec<(&str, &str, ApiError)>,
    headers: &[ProblemHeader],
) -> Response {
    let examples = examples.into_iter().map(|(name, summary, error)| {
        let (_, body) = error.problem();
        let example = ExampleBuilder::new()
            .summary(summary)
            .value(Some(Value::Object(body)))
            .build();
        (name, example)
    });
    problem_response_with(description, examples.collect(), headers)
}

/// Like [`problem_response`], with examples given as JSON.
fn problem_response_with(
    description: &str,
    examples: Vec<(&str, utoipa::openapi::example::Example)>,
    headers: &[ProblemHeader],
) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
        .examples_from_iter(examples)
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, content);
    for header in headers {
        response = match header {
            ProblemHeader::RetryAfter => response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(SchemaType::Type(Type::Integer))
                            .minimum(Some(1))
                            .build(),
                    ))
                    .description(Some("Seconds to wait before retrying."))
                    .build(),
            ),
            ProblemHeader::WwwAuthenticate => response.header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(SchemaType::Type(Type::String))
                            .pattern(Some("^Bearer$"))
                            .build(),
                    ))
                    .description(Some("Always `Bearer`."))
                    .build(),
            ),
            ProblemHeader::IdempotentReplayed => response.header(
                "Idempotent-Replayed",
                HeaderBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(SchemaType::Type(Type::String))
                            .enum_values(Some(["true"]))
                            .build(),
                    ))
                    .description(Some(
                        "`true` when this repeats the recorded refusal of an earlier request with \
                         the same key; absent on a fresh answer.",
                    ))
                    .build(),
            ),
        };
    }
    response.build()
}

/// Joins doc-comment lines (each with its leading space) into one description.
fn doc_text(lines: &[&str]) -> String {
    let lines: Vec<&str> = lines
        .iter()
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    lines.join("\n").trim().to_owned()
}

/// Declares error responses: `/// description` then `Name [headers] { "example" ("summary") =>
/// ApiError, ... }`. Each becomes `components/responses/Name` with the server's own bodies as
/// examples.
macro_rules! problem_responses {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident [$($header:ident),*] { $($example:literal ($summary:literal) => $error:expr),* $(,)? }
    )+) => {$(
        $(#[doc = $doc])+
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let response = problem_response(
                    &doc_text(&[$($doc),+]),
                    vec![$(($example, $summary, $error)),*],
                    &[$(ProblemHeader::$header),*],
                );
                (stringify!($name), RefOr::T(response))
            }
        }
    )+};
}

/// Returns an `invalid_field` error.
fn invalid(field: &str, detail: &str) -> ApiError {
    ApiError::invalid(field, detail)
}

problem_responses! {
    /// Malformed JSON (`malformed_json`): the body is not JSON at all, is empty, or has trailing
    /// data.
    MalformedJson [] {
        "malformed" ("Not JSON") =>
            ApiError::MalformedJson("expected `,` or `}` at line 1 column 18".into()),
    }
    /// No valid session (`unauthenticated`): the bearer token is missing, unknown, logged out
    /// or expired.
    Unauthenticated [WwwAuthenticate] {
        "unauthenticated" ("No token") => ApiError::Unauthenticated,
    }
    /// The body is larger than the request body limit (`payload_too_large`; 64 KiB by
    /// default).
    PayloadTooLarge [] {
        "too_large" ("Too large") => ApiError::PayloadTooLarge,
    }
    /// The body is not declared as `application/json`.
    UnsupportedMediaType [] {}
    /// The cluster cannot serve this right now (`unavailable`): no leader could be reached in
    /// time (an election is in progress, or this node is cut off), too many requests are
    /// queued, the request took longer than the request timeout (10 s by default), or the node
    /// is shutting down. Retry after `Retry-After` seconds. A write answered this way may still
    /// have committed: retry it with the same idempotency key where there is one.
    Unavailable [RetryAfter] {
        "overloaded" ("Queue full") => ApiError::from(ProposeError::Overloaded),
        "no_leader" ("Election in progress") =>
            ApiError::from(ProposeError::NotLeader { leader: None }),
        "timeout" ("Request timeout") =>
            ApiError::Unavailable("the request took too long".into()),
    }
    /// Wrong username or password (`bad_credentials`); which one is not revealed.
    BadCredentials [WwwAuthenticate] {
        "bad_credentials" ("Wrong password") => ApiError::BadCredentials,
    }
    /// Too many failed logins from this address (`too_many_attempts`); try again after
    /// `Retry-After` seconds (the real remaining wait, doubling with every further failure).
    /// An address that has not been failing is never slowed down by another's guesses.
    TooManyAttempts [RetryAfter] {
        "too_many_attempts" ("Backing off") => ApiError::TooManyAttempts { retry_after_s: 8 },
    }
    /// Too many new accounts from this address (`too_many_signups`); try again after
    /// `Retry-After` seconds.
    TooManySignups [RetryAfter] {
        "too_many_signups" ("Slow down") => ApiError::TooManySignups { retry_after_s: 60 },
    }
    /// Too many messages in this conversation (`too_many_messages`): 10 at once, then one every
    /// 2 s; try again after `Retry-After` seconds.
    TooManyMessages [RetryAfter] {
        "too_many_messages" ("Slow down") => ApiError::TooManyMessages { retry_after_s: 2 },
    }
    /// The message is empty, longer than 500 characters, or has control characters
    /// (`invalid_field`, `field` = `text`), or an unknown field was sent.
    AssistantMessageInvalid [] {
        "too_long" ("Too long") =>
            invalid("text", "must be at most 500 characters (this one has 731)"),
        "empty" ("Empty") => invalid("text", "must not be empty"),
    }
    /// The username is taken (`username_taken`); usernames are compared ignoring case.
    UsernameTaken [] {
        "username_taken" ("Taken") => ApiError::UsernameTaken,
    }
    /// A field is missing or breaks a rule (`invalid_field`, with `field`): username length or
    /// characters, a weak password, an unknown role, an address that is not one, or an unknown
    /// field.
    SignupInvalid [] {
        "weak_password" ("Weak password") =>
            invalid("password", "too short: at least 8 characters"),
        "bad_role" ("Role not self-service") =>
            invalid("role", "must be \"attendee\" or \"organizer\""),
    }
    /// The address breaks the rule (`invalid_field`, `field` = `email`), or an unknown field was
    /// sent.
    EmailInvalid [] {
        "bad_email" ("Not an address") =>
            invalid("email", "must look like name@example.org: one @, no spaces, no accented letters"),
    }
    /// A field is missing or of the wrong type, or an unknown field was sent (`invalid_field`).
    LoginInvalid [] {
        "missing" ("No password") =>
            invalid("password", "missing field `password` at line 1 column 20"),
    }
    /// Not allowed (`forbidden`): only an admin may do this.
    AdminOnly [] {
        "forbidden" ("Not an admin") => ApiError::Forbidden("only an admin may change roles"),
    }
    /// Not found (`not_found`): no such account.
    UserNotFound [] {
        "not_found" ("No such account") => ApiError::NotFound("user"),
    }
    /// The account is the only admin (`last_admin`): make another account admin first.
    LastAdmin [] {
        "last_admin" ("Last admin") => ApiError::LastAdmin,
    }
    /// An unknown role or an unknown field (`invalid_field`).
    RoleInvalid [] {
        "bad_role" ("Unknown role") =>
            invalid("role", "must be attendee, organizer, staff or admin"),
    }
    /// A bad query (`invalid_field`): `field` is `from`, `to`, `page` or `per_page` for an
    /// out-of-range or unparsable value, or `query` for an unknown parameter or a page number
    /// that is not an integer.
    ListQueryInvalid [] {
        "bad_date" ("Bad date") =>
            invalid("from", "must be a date (YYYY-MM-DD) or RFC 3339 time"),
        "per_page" ("Page too large") => invalid("per_page", "must be 1 to 100"),
    }
    /// Not allowed (`forbidden`): only organizers and admins may create events.
    OrganizerOnly [] {
        "forbidden" ("Not an organizer") =>
            ApiError::Forbidden("only organizers and admins may create events"),
    }
    /// Not allowed (`forbidden`): only the event's organizer or an admin may edit it.
    EventOwnerOnly [] {
        "forbidden" ("Not the organizer") =>
            ApiError::Forbidden("only the event's organizer or an admin may edit it"),
    }
    /// Not allowed (`forbidden`): only the event's organizer or an admin may cancel it.
    CancelOwnerOnly [] {
        "forbidden" ("Not the organizer") => ApiError::Forbidden(events::CANCEL_OWNER_ONLY),
    }
    /// The event was cancelled before (`already_cancelled`), by a request with another
    /// `request_id`.
    AlreadyCancelled [] {
        "already_cancelled" ("Cancelled before") => ApiError::AlreadyCancelled,
    }
    /// The reason is missing, empty after trimming, longer than 500 characters or has control
    /// or text-direction characters, `request_id` is empty or over 128 bytes, or an unknown
    /// field was sent (`invalid_field`, with `field`).
    CancelInvalid [] {
        "empty" ("No reason") => invalid("reason", "must not be empty"),
        "too_long" ("Too long") =>
            invalid("reason", "at most 500 characters (this one has 612)"),
    }
    /// Refused by the waiting room: `no_waiting_room` (the event has none: buy directly),
    /// `waiting_room_open` (the sale has opened: the settings are fixed; only removing the room
    /// is possible), `queue_full`, `event_cancelled`.
    QueueRefused [] {
        "no_waiting_room" ("No waiting room") =>
            ApiError::Queue(tix_core::QueueRejection::NoWaitingRoom),
        "waiting_room_open" ("Already open") =>
            ApiError::Queue(tix_core::QueueRejection::AlreadyOpen),
    }
    /// `client_id` is empty, over 128 bytes or has control characters, or an unknown field was
    /// sent (`invalid_field`, with `field`).
    QueueInvalid [] {
        "bad_client" ("Empty client_id") => invalid("client_id", "must be 1 to 128 bytes"),
    }
    /// A setting is missing or out of range (`invalid_field`, with `field`): `opens_at` not RFC
    /// 3339, `admit_per_min` not 1 to 1,000,000, `window_s` not 60 to 86,400, or an unknown
    /// field.
    RoomInvalid [] {
        "bad_rate" ("Rate zero") => invalid("admit_per_min", "admit_per_min must be 1 to 1000000"),
        "bad_time" ("Not RFC 3339") =>
            invalid("opens_at", "must be an RFC 3339 time like 2030-06-01T10:00:00Z"),
    }
    /// Not found (`not_found`): no such event, or it has no waiting room.
    WaitingRoomNotFound [] {
        "not_found" ("No waiting room") => ApiError::NotFound("waiting room"),
    }
    /// Not admitted by the event's waiting room (`reason`): `waiting_room_not_open` (the sale
    /// opens later), `not_in_queue` (join first), `not_admitted_yet` (your turn comes at
    /// `admit_at`; `Retry-After` says when), `admission_expired` (your buying window closed),
    /// `admission_invalid` (the `Tix-Admission` token is not this room's for this buyer).
    /// Sellers may pass with `Tix-Waiting-Room: bypass`.
    AdmissionRefused [] {
        "not_yet" ("Not your turn yet") => ApiError::Admission(
            crate::queue::AdmissionRefused::NotYet { admit_at_ms: 1_900_000_000_000, retry_after_s: 42 },
        ),
        "not_in_queue" ("Not in the queue") =>
            ApiError::Admission(crate::queue::AdmissionRefused::NotInQueue),
    }
    /// Not allowed (`forbidden`): only the event's organizer or an admin may change its image.
    ImageOwnerOnly [] {
        "forbidden" ("Not the organizer") => ApiError::Forbidden(
            "only the event's organizer or an admin may change its image",
        ),
    }
    /// The event was cancelled (`event_cancelled`): its image no longer changes.
    ImageEventCancelled [] {
        "event_cancelled" ("Cancelled") => Rejection::EventCancelled.into(),
    }
    /// The image is larger than 512 KiB (`image_too_large`, with `bytes_max`).
    ImageTooLarge [] {
        "image_too_large" ("Too large") => ApiError::Image(tix_core::ImageProblem::TooLarge {
            bytes_max: tix_core::EVENT_IMAGE_BYTES_MAX as u32,
        }),
    }
    /// Not an image tix takes: the bytes are not PNG, JPEG or WebP (`unsupported_image_type`;
    /// the type is read from the bytes), they are SVG (`svg_refused`: SVG can carry script), or
    /// the declared `Content-Type` is not `image/png`, `image/jpeg`, `image/webp` or
    /// `application/octet-stream` (`unsupported_image_type`).
    ImageUnsupportedType [] {
        "unsupported_image_type" ("Not PNG, JPEG or WebP") =>
            ApiError::Image(tix_core::ImageProblem::UnsupportedType),
        "svg_refused" ("SVG") => ApiError::Image(tix_core::ImageProblem::Svg),
        "content_type" ("Not an image type") => ApiError::ImageContentType,
    }
    /// The image cannot be stored: empty (`image_empty`), its header damaged or cut short
    /// (`image_malformed`), animated (`image_animated`), more than 8,192 pixels a side or 16
    /// megapixels (`image_too_many_pixels`); or `alt` is longer than 300 characters or has
    /// control characters (`invalid_field`, `field` = `alt`).
    ImageInvalid [] {
        "image_malformed" ("Damaged") => ApiError::Image(tix_core::ImageProblem::Malformed),
        "image_too_many_pixels" ("Too many pixels") =>
            ApiError::Image(tix_core::ImageProblem::TooManyPixels { width: 10000, height: 200 }),
        "bad_alt" ("Alt text too long") =>
            invalid("alt", "at most 300 characters (this one has 312)"),
    }
    /// Not found (`not_found`): no such event, or the event has no image.
    ImageNotFound [] {
        "not_found" ("No image") => ApiError::NotFound("image"),
    }
    /// Not found (`not_found`): no such event.
    EventNotFound [] {
        "not_found" ("No such event") => ApiError::NotFound("event"),
    }
    /// A field is missing or invalid (`invalid_field`, with its JSON path in `field`): empty
    /// or too long names, control characters, a time that is not RFC 3339 (nor a local time),
    /// a `time_zone` the IANA database does not know, a local `starts_at` that does not exist
    /// in `time_zone` (skipped when the clocks jump forward), coordinates out of
    /// range, a currency that is not three upper-case letters, a price over the limit,
    /// `per_customer_max` of 0, a missing or inconsistent inventory (`rows × seats_per_row`
    /// must equal `seats`, `seats_per_row` must divide it, blocked seats must exist), or an
    /// unknown field (`version` included: a new event starts at version 1).
    EventCreateInvalid [] {
        "bad_lat" ("Latitude out of range") =>
            invalid("venue.lat", "latitude must be between -90 and 90"),
        "bad_time" ("Not RFC 3339") =>
            invalid("starts_at", "must be an RFC 3339 time like 2030-06-01T20:00:00Z, or a local time like 2030-06-01T20:00 in time_zone"),
        "bad_zone" ("Unknown time zone") =>
            invalid("time_zone", "\"Europe/Atlantis\" is not a known IANA time zone (like Europe/Vienna or UTC)"),
        "no_such_local_time" ("Local time skipped by daylight saving time") =>
            invalid("starts_at", "2027-03-28 02:30 does not exist in Europe/Vienna: the clocks jump forward there that night; choose a time outside the gap"),
        "no_inventory" ("Inventory missing") =>
            invalid("inventory", "missing field `inventory` at line 1 column 200"),
        "bad_layout" ("Rows do not fit") =>
            invalid("inventory.rows", "rows × seats_per_row must equal seats"),
    }
    /// A field is missing or invalid (`invalid_field`), `version` is missing, or `inventory`
    /// was sent (an unknown field here: the inventory cannot be changed).
    EventUpdateInvalid [] {
        "no_version" ("Version missing") =>
            invalid("version", "missing field `version` at line 1 column 180"),
        "inventory" ("Inventory sent") =>
            invalid("inventory", "unknown field `inventory`, expected one of ..."),
    }
    /// Someone else edited the event first (`version_conflict`): re-read it, re-apply your
    /// change and retry with the new `version`.
    VersionConflict [] {
        "version_conflict" ("Stale version") => ApiError::VersionConflict { current_version: 3 },
    }
    /// The event is general admission and has no seats (`seat_not_applicable`).
    NoSeatMap [] {
        "seat_not_applicable" ("General admission") => Rejection::SeatNotApplicable.into(),
    }
    /// Not allowed: `forbidden` (only the event's organizer or an admin may sell here), or not
    /// admitted by the event's waiting room (`reason`: `waiting_room_not_open`, `not_in_queue`,
    /// `not_admitted_yet` with `Retry-After`, `admission_expired`, `admission_invalid`).
    SaleForbidden [] {
        "forbidden" ("Not the organizer") =>
            ApiError::Forbidden("only the event's organizer or an admin may sell here"),
        "not_yet" ("Not the buyer's turn yet") => ApiError::Admission(
            crate::queue::AdmissionRefused::NotYet { admit_at_ms: 1_900_000_000_000, retry_after_s: 42 },
        ),
    }
    /// Not allowed (`forbidden`): only the event's organizer or an admin may sell here.
    SellerOnly [] {
        "forbidden" ("Not the organizer") =>
            ApiError::Forbidden("only the event's organizer or an admin may sell here"),
    }
    /// Refused by the box office (`outcome: rejected`): `sold_out` (nothing left),
    /// `seat_taken` (sold or held by someone else), `seat_blocked` (never for sale),
    /// `customer_limit` (this `client_id` reached the event's `per_customer_max`). Carries
    /// `Idempotent-Replayed: true` when it repeats a recorded refusal.
    PurchaseRefused [IdempotentReplayed] {
        "sold_out" ("Sold out") => Rejection::SoldOut.into(),
        "seat_taken" ("Seat taken") => Rejection::SeatTaken { seat: 17 }.into(),
        "seat_blocked" ("Seat blocked") => Rejection::SeatBlocked { seat: 1 }.into(),
        "customer_limit" ("Per-customer cap") => Rejection::CustomerLimit { max: 4 }.into(),
    }
    /// Invalid request: `invalid_field` (`client_id` or `request_id` empty, longer than 128
    /// bytes of UTF-8 or with control characters; a `seat` that does not exist or is given for
    /// a general-admission event; an unknown field), or `idempotency_key_reused` (this key was
    /// used before with other parameters).
    PurchaseInvalid [] {
        "bad_seat" ("No such seat") =>
            invalid("seat", "seat 900 does not exist; seats are numbered 1 to 300"),
        "key_reused" ("Key reused with other parameters") => Rejection::KeyReused.into(),
        "unknown_field" ("Unknown field") => invalid(
            "colour",
            "unknown field `colour`, expected one of `client_id`, `request_id`, `seat` at line 1 \
             column 44",
        ),
    }
    /// No purchases, or more than 512, or an item of the wrong shape (`invalid_field`, field
    /// `purchases` or the item's path). Items whose values break a rule are answered one by one
    /// in the 200 answer instead.
    BatchInvalid [] {
        "too_many" ("Too many") =>
            invalid("purchases", "must hold 1 to 512 purchases (got 513)"),
    }
    /// No such event (`unknown_event`, with `outcome: rejected`).
    HoldEventNotFound [] {
        "unknown_event" ("No such event") => Rejection::UnknownEvent.into(),
    }
    /// Refused (`outcome: rejected`): `sold_out` (fewer tickets left than asked),
    /// `seat_taken`, `seat_blocked`, or `customer_limit` (the event's per-customer cap, or 5
    /// active holds already).
    HoldRefused [] {
        "sold_out" ("Sold out") => Rejection::SoldOut.into(),
        "seat_taken" ("Seat taken") => Rejection::SeatTaken { seat: 17 }.into(),
        "customer_limit" ("Too many holds") => Rejection::CustomerLimit { max: 5 }.into(),
        "no_adjacent_seats" ("Not together") =>
            Rejection::NoAdjacentSeats { quantity: 4 }.into(),
    }
    /// Invalid request: `invalid_field` (not exactly one of `quantity`, `seats` and
    /// `best_available`; a `best_available.section` the event does not have;
    /// `request_id` empty or over 128 bytes of UTF-8; an unknown field), `bad_quantity` (0 or
    /// more than 10 tickets), `seat_out_of_range`, `duplicate_seat`, `seat_not_applicable`
    /// (seats for a general-admission event), `mixed_prices` (seats of sections with different
    /// prices in one hold), or `idempotency_key_reused`.
    HoldInvalid [] {
        "either" ("One way to choose") => invalid("quantity",
            "give exactly one of quantity, seats and best_available"),
        "bad_quantity" ("Too many") => Rejection::BadQuantity { quantity: 11, max: 10 }.into(),
        "seat_out_of_range" ("No such seat") =>
            Rejection::SeatOutOfRange { seat: 900, seats: 300 }.into(),
        "mixed_prices" ("Mixed prices") => Rejection::MixedPrices.into(),
    }
    /// Not found (`not_found`): no such hold (or it is not yours, was paid, released or has
    /// expired).
    HoldNotFound [] {
        "not_found" ("No such hold") => ApiError::NotFound("hold"),
    }
    /// The card was declined (`payment_declined`); the hold stays until it expires, so pay it
    /// again with another card.
    PaymentDeclined [] {
        "declined" ("Declined") => ApiError::PaymentDeclined(
            "the card was declined; the tickets stay held until the hold expires: try another card"
                .into(),
        ),
        "insufficient_funds" ("Insufficient funds") => ApiError::PaymentDeclined(
            "insufficient funds on the card; the tickets stay held until the hold expires: try \
             another card"
                .into(),
        ),
    }
    /// The hold had expired by the time the order was to be confirmed (`hold_expired`); the
    /// charge was refunded. Place a new hold to try again.
    HoldExpired [] {
        "hold_expired" ("Expired") => Rejection::HoldExpired.into(),
    }
    /// The card number is not a card number (`invalid_field` on `card_number`: 12 to 19 digits
    /// with a valid Luhn check digit), or an unknown field was sent.
    CheckoutInvalid [] {
        "mistyped" ("Bad check digit") =>
            invalid("card_number", "the card number is mistyped (check digit)"),
        "length" ("Too short") => invalid("card_number", "a card number has 12 to 19 digits"),
    }
    /// Not found (`not_found`): no such ticket (or you may not see or manage it).
    TicketNotFound [] {
        "not_found" ("No such ticket") => ApiError::NotFound("ticket"),
    }
    /// Refused (`outcome: rejected`): `already_refunded`, `already_checked_in` (used at the
    /// door), or `not_refundable` (the event's policy: not refundable, or it has started).
    RefundRefused [] {
        "already_refunded" ("Already refunded") => Rejection::AlreadyRefunded.into(),
        "not_refundable" ("Policy") => Rejection::NotRefundable.into(),
        "already_checked_in" ("Used") => Rejection::AlreadyCheckedIn.into(),
    }
    /// Not allowed (`forbidden`): only door staff, the organizer or an admin may check in.
    DoorOnly [] {
        "forbidden" ("Not door staff") =>
            ApiError::Forbidden("only door staff, the organizer or an admin may check in"),
    }
    /// Not admitted: `already_admitted` (with `at` and `by`) or `refunded`. These carry
    /// `reason` but no `outcome` member.
    CheckInRefused [] {
        "already_admitted" ("Second scan") => ApiError::CheckInRefused {
            reason: "already_admitted",
            detail: "already admitted at 2027-06-01T19:42:10Z by door1".into(),
            extra: json!({"at": "2027-06-01T19:42:10Z", "by": "door1"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        },
        "refunded" ("Refunded ticket") => ApiError::CheckInRefused {
            reason: "refunded",
            detail: "the ticket was refunded".into(),
            extra: Default::default(),
        },
    }
    /// `ticket_id` is missing or not a non-negative integer, or an unknown field was sent
    /// (`invalid_field`).
    CheckInInvalid [] {
        "missing" ("Missing") =>
            invalid("ticket_id", "missing field `ticket_id` at line 1 column 2"),
    }
    /// Not found (`not_found`): this node runs without a Prometheus recorder.
    MetricsNotFound [] {
        "not_found" ("No recorder") => ApiError::NotFound("metrics recorder"),
    }
}

/// A bug or a storage failure (`internal`); the cause is logged, never sent.
pub struct Internal;

impl<'r> utoipa::ToResponse<'r> for Internal {
    fn response() -> (&'r str, RefOr<Response>) {
        let body = crate::error::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "something went wrong on our side; it was logged",
        );
        let example = ExampleBuilder::new()
            .summary("Internal error")
            .value(Some(Value::Object(body)))
            .build();
        let response = problem_response_with(
            "A bug or a storage failure (`internal`); the cause is logged, never sent.",
            vec![("internal", example)],
            &[],
        );
        ("Internal", RefOr::T(response))
    }
}

/// The schema of `EventBody` for one of its two uses: `required` added, `refused` removed.
fn event_body_variant(
    required: (&str, RefOr<Schema>),
    refused: &str,
    description: &str,
) -> RefOr<Schema> {
    let mut schema = <events::EventBody as utoipa::PartialSchema>::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        let (name, property) = required;
        object.properties.shift_remove(refused);
        object.required.retain(|field| field != refused);
        // Required, so not `null` either.
        object.properties.insert(name.to_owned(), property);
        object.required.push(name.to_owned());
        object.description = Some(description.to_owned());
    }
    schema
}

/// The body of `POST /api/v1/events`: an `EventBody` with `inventory` and without `version`.
pub struct EventCreateRequest;

impl utoipa::PartialSchema for EventCreateRequest {
    fn schema() -> RefOr<Schema> {
        let inventory = utoipa::openapi::Ref::from_schema_name("InventoryBody");
        event_body_variant(
            ("inventory", inventory.into()),
            "version",
            "A new event. Unknown fields are refused (422); so is `version` (a new event starts \
             at version 1).",
        )
    }
}

impl ToSchema for EventCreateRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <events::EventBody as ToSchema>::schemas(schemas);
    }
}

/// The body of `PUT /api/v1/events/{id}`: an `EventBody` with `version` and without
/// `inventory`.
pub struct EventUpdateRequest;

impl utoipa::PartialSchema for EventUpdateRequest {
    fn schema() -> RefOr<Schema> {
        let version = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .description(Some(
                "The `version` of the event you read. If someone changed the event since, the \
                 edit is refused with 409 `version_conflict`.",
            ));
        event_body_variant(
            ("version", Schema::from(version.build()).into()),
            "inventory",
            "The new details of an event: a full replacement. Optional fields that are omitted \
             take their defaults (`description` empty, `refundable` true, `per_customer_max` \
             none; `time_zone` omitted keeps the event's zone), so send everything you read. \
             The inventory cannot be changed (sending it is \
             a 422). Unknown fields are refused.",
        )
    }
}

impl ToSchema for EventUpdateRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <events::EventBody as ToSchema>::schemas(schemas);
    }
}

/// `SignupBody::role`: a self-service role, `null` or omitted meaning `attendee`.
pub(crate) fn signup_role() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([json!("attendee"), json!("organizer"), Value::Null]))
        .default(Some(json!("attendee")))
        .description(Some(
            "`attendee` (the default) or `organizer`. Staff and admin roles can only be granted \
             by an admin (`PUT /api/v1/users/{id}/role`).",
        ))
        .into()
}

/// `ListQuery::from`/`to`: a date, an RFC 3339 time, or empty.
fn date_bound(description: &str, example: &str) -> Schema {
    let string = |format: Option<KnownFormat>| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(format.map(SchemaFormat::KnownFormat))
    };
    AnyOfBuilder::new()
        .item(string(Some(KnownFormat::Date)))
        .item(string(Some(KnownFormat::DateTime)))
        .item(string(None).max_length(Some(0)))
        .description(Some(description))
        .examples([json!(example)])
        .into()
}

/// `ListQuery::from`.
pub(crate) fn from_bound() -> Schema {
    date_bound(
        "Earliest start: an RFC 3339 time, or a date `YYYY-MM-DD` meaning its first millisecond \
         (UTC). Empty means no bound.",
        "2027-01-01",
    )
}

/// `ListQuery::to`.
pub(crate) fn to_bound() -> Schema {
    date_bound(
        "Latest start, inclusive: an RFC 3339 time, or a date `YYYY-MM-DD` meaning the whole of \
         that day (UTC). Empty means no bound.",
        "2027-12-31",
    )
}

/// An array of seat numbers.
fn seat_numbers(nullable: bool, min_items: usize, max_items: usize) -> ArrayBuilder {
    let seat = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(1))
        .maximum(Some(1_000_000));
    let array_type = if nullable {
        SchemaType::from_iter([Type::Array, Type::Null])
    } else {
        SchemaType::Type(Type::Array)
    };
    ArrayBuilder::new()
        .schema_type(array_type)
        .items(seat)
        .min_items(Some(min_items))
        .max_items(Some(max_items))
}

/// `InventoryBody::Numbered::blocked`: seats never sold, at most 10,000.
pub(crate) fn blocked_seats() -> Schema {
    seat_numbers(false, 0, events::BLOCKED_SEATS_MAX)
        .default(Some(json!([])))
        .description(Some(
            "Seats that are never sold (e.g. for the sound desk), each in 1..=seats; at most \
             10,000.",
        ))
        .examples([json!([1, 2])])
        .into()
}

/// `HoldBody::seats`: 1 to 10 distinct seats.
pub(crate) fn hold_seats() -> Schema {
    let max = tix_core::Limits::default().seats_per_order_max as usize;
    seat_numbers(true, 1, max)
        .unique_items(true)
        .description(Some(
            "Which seats (numbered events only), each at most once, 1 to 10 of them.",
        ))
        .examples([json!([17, 18])])
        .into()
}

/// `EventBody::currency`: the ISO 4217 codes of circulating currencies.
pub(crate) fn currency() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(crate::currency::CODES.iter().copied()))
        .description(Some("The ISO 4217 code of a currency in circulation."))
        .examples([json!("EUR")])
        .into()
}

/// `BatchItem::event_id`: any `u64` (an unknown event is answered 404 in its item).
pub(crate) fn any_event_id() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(u64::MAX))
        .description(Some(
            "The event: any unsigned 64-bit integer; an unknown event is answered 404 in its \
             item.",
        ))
        .into()
}

/// The body of `POST /api/v1/events/{id}/holds`: a `HoldBody` with exactly one of `quantity`
/// and `seats` (present and not `null`).
pub struct HoldRequest;

impl utoipa::PartialSchema for HoldRequest {
    fn schema() -> RefOr<Schema> {
        let given = |name: &str, schema_type: Type| {
            ObjectBuilder::new()
                .property(name, ObjectBuilder::new().schema_type(schema_type))
                .required(name)
        };
        let exactly_one = OneOfBuilder::new()
            .item(given("quantity", Type::Integer))
            .item(given("seats", Type::Array))
            .item(given("best_available", Type::Object));
        AllOfBuilder::new()
            .item(<shop::HoldBody as utoipa::PartialSchema>::schema())
            .item(exactly_one)
            .description(Some(
                "What to reserve: exactly one of `quantity` (any tickets; for a numbered event \
                 the lowest-numbered free seats, of one price on a venue in sections — 422 \
                 `mixed_prices` when no price has that many), `seats` (these numbered seats) or \
                 `best_available` (that many seats side by side in one row, in a section or \
                 anywhere: front rows first, then the row's centre; never split — 409 \
                 `no_adjacent_seats` when no row has room). At most 10 tickets per hold. \
                 Unknown fields are refused.",
            ))
            .into()
    }
}

impl ToSchema for HoldRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <shop::HoldBody as ToSchema>::schemas(schemas);
    }
}

/// The document as pretty-printed JSON: the same bytes on every build (maps keep the order the
/// derives give them).
pub fn document_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
}
