//! The API test binary: each test starts a real single-node tix (Raft, redb storage in a
//! temporary directory, the axum router on a port-0 listener) in-process and drives it over HTTP
//! with reqwest, as a client would.
//!
//! - `helpers` starts the app and offers one method per endpoint.
//! - `validation` sends malformed and out-of-range requests and checks nothing changed.
//! - `box_office` pins down the purchase contract: bodies, idempotent replays, sales export.
//! - `races` lets many clients race for the same inventory.
//! - `authz` checks who may do what, as an explicit table.
//! - `pages` drives the web shop pages by form posts (no browser).
//! - `live` covers the live stream's caps and deltas, and who may read `/metrics`.
//! - `cancel` cancels events: refunds, released holds, refusals afterwards, who may cancel.
//! - `shop` covers holds, checkout, refunds, check-in, event edits and sessions.
//! - `request_ids` checks every answer names its request and error bodies carry the id.
//! - `fail_stop` injects a panic into apply and checks the replica stops serving.
//! - `csrf` replays the probe's cross-site form posts and cookie-only API calls.
//! - `assistant` books, pays and refunds by chat, and checks what it must refuse.
//! - `account_mail` sets email addresses (API and pages) and asks for password resets.
//! - `sections` covers venues in named sections and "N together, best available".
//! - `login_abuse` guesses passwords from several client addresses and signs up in bulk.
//! - `waiting_room` sets an on-sale's waiting room, joins it, and buys with admission tokens.
//! - `zones` sets event time zones (API and form) and reads local times, DST included.
//! - `images` uploads, serves (caching headers, 304), refuses and removes event images, through
//!   the API and the event form.

mod account_mail;
mod assistant;
mod authz;
mod box_office;
mod cancel;
mod csrf;
mod fail_stop;
mod helpers;
mod images;
mod live;
mod login_abuse;
mod pages;
mod races;
mod request_ids;
mod sections;
mod shop;
mod validation;
mod waiting_room;
mod zones;
