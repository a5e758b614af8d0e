//! Mail at the edge: the order confirmation with its PDF tickets, an event's cancellation notice,
//! and password resets — all sent **after** the command they follow has committed, by one
//! background task per node, so a slow or broken mail server never delays or fails a request.
//!
//! The handler that committed a change (`shop::pay`, `events::cancel_event`) gathers what the
//! message needs from the applied state and queues it ([`Notifier::queue`]: a bounded channel;
//! when it is full the message is dropped and counted, never waited for). The task renders the
//! PDF and hands the message to [`tix_mail::Mailer`]; a failure is logged and counted
//! (`tix_mail_total{result}`), not retried. Mail is sent by the node that answered the request,
//! once per committed confirmation (a replayed or refused command sends nothing), so a buyer gets
//! at most one mail per order — unless the node stops with the message still queued, in which
//! case it is lost (there is no outbox in the replicated state).
//!
//! Password resets: a 256-bit random token is mailed as a link; only its SHA-256 is replicated
//! (`Command::CreatePasswordReset`), expiring by log time, one open reset per account. Asking
//! never reveals whether an account exists, is limited per client address
//! ([`crate::throttle::SignupLimiter`]) and per account (one mail per
//! [`RESET_MAIL_INTERVAL_MS`]).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tix_core::{AccountRejection, Command, CustomerKey, EventId, OrderConfirmed, TicketId, UserId};
use tix_mail::{
    CancellationNotice, Email, MailConfig, Mailer, OrderSummary, PasswordResetLink, TicketInfo,
};
use tokio::sync::mpsc;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::token_hash;
use crate::pages::{money, when_local};
use crate::ticket_code;

/// Messages waiting for the mail task; past it new ones are dropped (and counted).
pub const MAIL_QUEUE_MAX: usize = 1_000;
/// How long a password reset link works, by default.
pub const RESET_TTL_MS: u64 = 30 * 60 * 1000;
/// The shortest time between two reset mails to one account.
pub const RESET_MAIL_INTERVAL_MS: u64 = 60 * 1000;
/// Reset requests one client address may make per [`RESET_WINDOW`].
pub const RESETS_PER_ADDRESS_MAX: u32 = 10;
/// The window of [`RESETS_PER_ADDRESS_MAX`].
pub const RESET_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most accounts one address's reset request mails (accounts may share an address).
const ACCOUNTS_PER_ADDRESS_MAX: usize = 5;

/// How this node sends mail.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The sender and the transport.
    pub mailer: MailConfig,
    /// The origin links in mails point at (`https://tickets.example`): the `--public-origin`,
    /// else this node's own address — never a request's `Host`, which an attacker chooses.
    pub link_origin: String,
    /// How long a password reset link works.
    pub reset_ttl_ms: u64,
}

/// A message waiting to be rendered and sent.
enum Outgoing {
    /// An order confirmation: the PDF is rendered by the mail task, off the request.
    Order { to: String, summary: OrderSummary },
    /// A message ready to send.
    Ready(Email),
    /// Every notice of one cancellation, as one item: an arena's thousands of buyers must not
    /// overflow the queue, which is bounded in items.
    Cancellation(Vec<(String, CancellationNotice)>),
}

/// The node's mail queue and its limits; without mail settings every call is a no-op.
pub struct Notifier {
    queue: Option<mpsc::Sender<Outgoing>>,
    /// Where links point.
    link_origin: String,
    /// How long a reset link works.
    reset_ttl_ms: u64,
    /// Reset requests per client address.
    resets: crate::throttle::SignupLimiter,
}

impl Notifier {
    /// Returns a notifier sending through `settings` (starting its task: must run inside the
    /// Tokio runtime), or one that sends nothing. A mailer that cannot be built (a bad sender
    /// or URL; `tix serve` checks both at startup) is logged and leaves mail off.
    pub fn new(settings: Option<&MailSettings>, throttle_entries_max: usize) -> Notifier {
        let resets = crate::throttle::SignupLimiter::new(
            RESETS_PER_ADDRESS_MAX,
            RESET_WINDOW,
            throttle_entries_max,
        );
        let off = |resets| Notifier {
            queue: None,
            link_origin: String::new(),
            reset_ttl_ms: RESET_TTL_MS,
            resets,
        };
        let Some(settings) = settings else {
            return off(resets);
        };
        let mailer = match Mailer::new(&settings.mailer) {
            Ok(mailer) => Arc::new(mailer),
            Err(e) => {
                tracing::error!(error = %e, "mail is off: the mailer cannot be built");
                return off(resets);
            }
        };
        if tokio::runtime::Handle::try_current().is_err() {
            tracing::error!("mail is off: no runtime to run the mail task on");
            return off(resets);
        }
        let (tx, rx) = mpsc::channel(MAIL_QUEUE_MAX);
        // Owned by the channel: the task ends when the last sender (this notifier) is dropped.
        tokio::spawn(send_all(mailer, rx));
        Notifier {
            queue: Some(tx),
            link_origin: settings.link_origin.trim_end_matches('/').to_owned(),
            reset_ttl_ms: settings.reset_ttl_ms,
            resets,
        }
    }

    /// Returns true when this node sends mail.
    pub fn is_on(&self) -> bool {
        self.queue.is_some()
    }

    /// Queues a message without waiting: when the queue is full it is dropped and counted.
    fn queue(&self, message: Outgoing) {
        let Some(queue) = &self.queue else { return };
        if queue.try_send(message).is_err() {
            metrics::counter!("tix_mail_total", "result" => "dropped").increment(1);
            tracing::warn!("mail queue full or closed: a message was dropped");
        }
    }
}

/// The mail task: renders and sends each queued message in turn, logging failures.
async fn send_all(mailer: Arc<Mailer>, mut rx: mpsc::Receiver<Outgoing>) {
    while let Some(message) = rx.recv().await {
        match message {
            Outgoing::Order { to, summary } => {
                let render =
                    tokio::task::spawn_blocking(move || tix_mail::order_email(&to, &summary));
                match render.await {
                    Ok(email) => send_one(&mailer, &email).await,
                    Err(e) => tracing::error!(error = %e, "rendering an order mail failed"),
                }
            }
            Outgoing::Ready(email) => send_one(&mailer, &email).await,
            Outgoing::Cancellation(notices) => {
                for (to, notice) in notices {
                    send_one(&mailer, &tix_mail::cancellation_email(&to, &notice)).await;
                }
            }
        }
    }
}

/// Sends one message, logging and counting the result.
async fn send_one(mailer: &Mailer, email: &Email) {
    match mailer.send(email).await {
        Ok(_) => {
            metrics::counter!("tix_mail_total", "result" => "sent").increment(1);
            tracing::debug!(subject = %email.subject, "mail sent");
        }
        Err(e) => {
            metrics::counter!("tix_mail_total", "result" => "failed").increment(1);
            tracing::warn!(error = %e, subject = %email.subject, "mail not sent");
        }
    }
}

/// Checks an email address as the API takes it: empty means none; otherwise the core's rule
/// ([`tix_core::email_is_valid`]) and, at the edge, printable ASCII only (no spaces), so that
/// the documented pattern (`EMAIL_PATTERN`) and the byte limit say exactly what is accepted.
/// The pages trim what was typed first.
pub fn validate_email(email: &str) -> Result<Option<String>, ApiError> {
    if email.is_empty() {
        return Ok(None);
    }
    if email.len() > tix_core::EMAIL_BYTES_MAX {
        return Err(ApiError::invalid(
            "email",
            format!("too long: at most {} characters", tix_core::EMAIL_BYTES_MAX),
        ));
    }
    let printable = email.bytes().all(|b| b.is_ascii_graphic());
    if !printable || !tix_core::email_is_valid(email) {
        return Err(ApiError::invalid(
            "email",
            "must look like name@example.org: one @, no spaces, no accented letters",
        ));
    }
    Ok(Some(email.to_owned()))
}

/// The address rule as a JSON Schema pattern (the OpenAPI document's): empty, or printable
/// ASCII without spaces around exactly one `@`.
pub const EMAIL_PATTERN: &str = "^(?:[!-?A-~]+@[!-?A-~]+)?$";

/// Sets or clears an account's address through the log.
pub async fn set_email(
    state: &AppState,
    user_id: UserId,
    email: Option<String>,
) -> Result<(), ApiError> {
    let command = Command::SetEmail { user_id, email };
    match state
        .propose_for::<Result<UserId, AccountRejection>>(command)
        .await?
    {
        Ok(_) => Ok(()),
        Err(AccountRejection::BadEmail) => Err(ApiError::invalid("email", "not a valid address")),
        Err(_) => Err(ApiError::NotFound("user")),
    }
}

/// Formats a seat for people.
fn seat_name(seat: Option<u32>) -> Option<String> {
    seat.map(|s| format!("Seat {s}"))
}

/// Queues the confirmation of a committed order to its buyer, if the buyer has an address.
/// Reads the local applied state, which has applied the confirmation (this node proposed it).
pub fn order_confirmed(state: &AppState, buyer: UserId, order: &OrderConfirmed) {
    if !state.notifier.is_on() {
        return;
    }
    match order_summary(state, buyer, order) {
        Ok(Some((to, summary))) => state.notifier.queue(Outgoing::Order { to, summary }),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "order mail not queued"),
    }
}

/// Gathers an order's mail: the buyer's address and the summary, or `None` without an address.
fn order_summary(
    state: &AppState,
    buyer: UserId,
    order: &OrderConfirmed,
) -> Result<Option<(String, OrderSummary)>, ApiError> {
    let history = state.node.shared.history()?;
    let s = state.node.shared.read();
    let (Some(to), Some(user)) = (s.account_mail().email(buyer), s.user(buyer)) else {
        return Ok(None);
    };
    let stored = history.order(order.order_id);
    let mut lines = Vec::new();
    let mut tickets = Vec::new();
    let mut currency = String::new();
    for id in &order.tickets {
        let Some(t) = history.ticket(*id) else {
            continue;
        };
        let Some(e) = s.event(t.event_id) else {
            continue;
        };
        currency.clone_from(&e.details.currency);
        let seat = seat_name(t.seat);
        lines.push(format!(
            "Ticket #{}{}: {}",
            t.id,
            seat.as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default(),
            money(t.price_cents, &e.details.currency)
        ));
        tickets.push(ticket_info(
            e,
            s.event_zone(e.id),
            t.id,
            t.seat,
            &user.username,
        ));
    }
    let total_cents = stored.map_or(0, |o| o.total_cents);
    let summary = OrderSummary {
        order_id: order.order_id.0,
        username: user.username.clone(),
        lines,
        total: money(total_cents, &currency),
        link: Some(format!("{}/orders", state.notifier.link_origin)),
        tickets,
    };
    Ok(Some((to.to_owned(), summary)))
}

/// Returns what a ticket's PDF page shows, with its signed code.
pub fn ticket_info(
    e: &tix_core::Event,
    zone: &str,
    ticket: TicketId,
    seat: Option<u32>,
    holder: &str,
) -> TicketInfo {
    TicketInfo {
        ticket_id: ticket.0,
        event_name: e.details.name.clone(),
        starts_at: when_local(e.details.starts_at_ms, zone),
        venue: e.details.venue.name.clone(),
        seat: seat_name(seat),
        holder: holder.to_owned(),
        code: ticket_code::sign(&e.ticket_key_seed, e.id.0, ticket.0),
    }
}

/// The buyers of an event's active tickets and how many each holds, read before a
/// cancellation (afterwards the event has no active tickets to find them by).
pub fn buyers_of(state: &AppState, event_id: EventId) -> BTreeMap<UserId, u32> {
    let mut buyers = BTreeMap::new();
    if !state.notifier.is_on() {
        return buyers;
    }
    match state.node.shared.history() {
        Ok(history) => {
            for t in history.sales(event_id) {
                if let CustomerKey::User(user) = t.customer {
                    *buyers.entry(user).or_insert(0) += 1;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cancellation notices: buyers not read"),
    }
    buyers
}

/// Queues the notice of a committed cancellation to every buyer with an address.
pub fn event_cancelled(
    state: &AppState,
    event_id: EventId,
    reason: &str,
    buyers: &BTreeMap<UserId, u32>,
) {
    if !state.notifier.is_on() {
        return;
    }
    let s = state.node.shared.read();
    let Some(e) = s.event(event_id) else { return };
    let notices: Vec<(String, CancellationNotice)> = buyers
        .iter()
        .filter_map(|(user, count)| {
            let to = s.account_mail().email(*user)?;
            let u = s.user(*user)?;
            let notice = CancellationNotice {
                username: u.username.clone(),
                event_name: e.details.name.clone(),
                starts_at: when_local(e.details.starts_at_ms, s.event_zone(e.id)),
                reason: reason.to_owned(),
                tickets_refunded: *count,
            };
            Some((to.to_owned(), notice))
        })
        .collect();
    if !notices.is_empty() {
        state.notifier.queue(Outgoing::Cancellation(notices));
    }
}

/// Asks for a password reset of the account named `who` (a username or an address). Answers
/// the same, and as fast, whether or not an account exists or has an address: the resets are
/// opened and mailed by a task of their own, which the request does not wait for (committing a
/// log entry only for real accounts would otherwise show in the response time). `Err` only when
/// the client's address has asked too often (the wait).
pub fn request_reset(state: &AppState, client: IpAddr, who: &str) -> Result<(), Duration> {
    state.notifier.resets.attempt(client, Instant::now())?;
    if !state.notifier.is_on() {
        return Ok(());
    }
    let (state, who) = (state.clone(), who.trim().to_owned());
    // Bounded by the per-address limit above; it ends after at most a few proposals.
    tokio::spawn(async move { open_resets(&state, &who).await });
    Ok(())
}

/// Opens and mails a reset for each account `who` names that has an address.
async fn open_resets(state: &AppState, who: &str) {
    let now_ms = tix_raft::proposer::now_ms();
    let accounts: Vec<(UserId, String, String)> = {
        let s = state.node.shared.read();
        let mail = s.account_mail();
        let ids = if who.contains('@') {
            mail.users_with_email(who, ACCOUNTS_PER_ADDRESS_MAX)
        } else {
            s.user_by_name(who).map(|u| u.id).into_iter().collect()
        };
        ids.into_iter()
            .filter_map(|id| {
                let user = s.user(id)?;
                let to = mail.email(id)?;
                Some((id, user.username.clone(), to.to_owned()))
            })
            // One mail per account per interval: an open reset younger than that is left alone.
            .filter(|(id, _, _)| !recently_mailed(&s, *id, now_ms, state.notifier.reset_ttl_ms))
            .collect()
    };
    for (user_id, username, to) in accounts {
        let token = crate::auth::new_token();
        let command = Command::CreatePasswordReset {
            token_hash: token_hash(&token),
            user_id,
            expires_at_ms: now_ms + state.notifier.reset_ttl_ms,
        };
        match state
            .propose_for::<Result<UserId, AccountRejection>>(command)
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(rejection)) => {
                tracing::warn!(?rejection, "password reset not opened");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "password reset not opened");
                continue;
            }
        }
        let link = PasswordResetLink {
            username,
            link: format!(
                "{}/password/reset?token={token}",
                state.notifier.link_origin
            ),
            valid_minutes: state.notifier.reset_ttl_ms / 60_000,
        };
        let email = tix_mail::password_reset_email(&to, &link);
        state.notifier.queue(Outgoing::Ready(email));
    }
}

/// Whether the account's open reset was made less than [`RESET_MAIL_INTERVAL_MS`] ago.
fn recently_mailed(s: &tix_core::State, user: UserId, now_ms: u64, ttl_ms: u64) -> bool {
    // The open reset of an account is found through its expiry: made at expiry − ttl.
    s.account_mail()
        .open_reset_of(user)
        .is_some_and(|r| r.expires_at_ms.saturating_sub(ttl_ms) + RESET_MAIL_INTERVAL_MS > now_ms)
}

/// Returns the account a reset token opens, if the reset is open (a local read).
pub fn reset_account(state: &AppState, token: &str) -> Option<(UserId, String)> {
    let s = state.node.shared.read();
    let reset = s.account_mail().reset(&token_hash(token))?;
    let now_ms = tix_raft::proposer::now_ms();
    if reset.expires_at_ms <= now_ms {
        return None;
    }
    let user = s.user(reset.user_id)?;
    Some((user.id, user.username.clone()))
}

/// Uses a reset token: sets the new password (checked by the caller) and ends the account's
/// sessions. `Ok(false)` when the token is not (or no longer) open.
pub async fn reset_password(
    state: &AppState,
    token: &str,
    password: &str,
) -> Result<bool, ApiError> {
    let password_hash = crate::auth::hash_password(password.to_owned()).await?;
    let command = Command::ResetPassword {
        token_hash: token_hash(token),
        password_hash,
    };
    match state
        .propose_for::<Result<UserId, AccountRejection>>(command)
        .await?
    {
        Ok(user) => {
            tracing::info!(%user, "password reset");
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}
