//! tix's outgoing mail: what a buyer is sent (the order with its PDF tickets, an event's
//! cancellation, a password reset link), the printable ticket PDF itself, and the [`Mailer`] that
//! delivers a message — to an SMTP server, or, when none is configured, as an `.eml` file in an
//! outbox folder an operator can open.
//!
//! This crate knows nothing of the replicated state: the edge (`tix-http`) gathers plain
//! [`TicketInfo`]s and addresses after a command has committed and hands them over. Building a
//! message is pure; only [`Mailer::send`] does IO.

mod messages;
mod pdf;
mod transport;

pub use messages::{
    Attachment, CancellationNotice, Email, OrderSummary, PasswordResetLink, cancellation_email,
    order_email, password_reset_email,
};
pub use pdf::{QR_MARK, TicketInfo, tickets_pdf};
pub use transport::{MailConfig, MailError, Mailer, Transport};
