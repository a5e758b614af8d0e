//! The messages tix sends, as plain data: [`Email`] (recipient, subject, text body, attachments)
//! built by one function per occasion from what the edge knows after a commit. The wording lives
//! here, in one place; the transport turns an [`Email`] into MIME.

use crate::pdf::{TicketInfo, tickets_pdf};

/// A message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The recipient's address (validated when the account stored it).
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
    /// Files attached.
    pub attachments: Vec<Attachment>,
}

/// A file attached to an [`Email`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name shown to the recipient.
    pub filename: String,
    /// Its MIME type (`application/pdf`).
    pub content_type: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// What an order confirmation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    /// The order's number.
    pub order_id: u64,
    /// The buyer's account name.
    pub username: String,
    /// One line per ticket or price ("Seat 17 — EUR 25.00").
    pub lines: Vec<String>,
    /// The total paid, formatted ("EUR 50.00").
    pub total: String,
    /// Where the buyer sees the order online (absolute URL), if the node knows its origin.
    pub link: Option<String>,
    /// The tickets, one PDF page each.
    pub tickets: Vec<TicketInfo>,
}

/// What an event's cancellation notice says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationNotice {
    /// The buyer's account name.
    pub username: String,
    /// The event's name.
    pub event_name: String,
    /// When it would have started, formatted.
    pub starts_at: String,
    /// The organizer's reason.
    pub reason: String,
    /// How many of the buyer's tickets were refunded.
    pub tickets_refunded: u32,
}

/// What a password reset mail says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordResetLink {
    /// The account name the link resets.
    pub username: String,
    /// The link, with its token.
    pub link: String,
    /// How long it works, in minutes.
    pub valid_minutes: u64,
}

/// Returns the order confirmation to `to`, with every ticket in one PDF attachment.
pub fn order_email(to: &str, order: &OrderSummary) -> Email {
    let event = order
        .tickets
        .first()
        .map_or("your event", |t| t.event_name.as_str());
    let mut body = format!(
        "Hello {},\n\nthank you for your order #{} for {event}.\n\n",
        order.username, order.order_id
    );
    if let Some(t) = order.tickets.first() {
        body.push_str(&format!("When: {}\nWhere: {}\n\n", t.starts_at, t.venue));
    }
    for line in &order.lines {
        body.push_str(&format!("  {line}\n"));
    }
    body.push_str(&format!("\nTotal paid: {}\n\n", order.total));
    body.push_str(
        "Your tickets are attached as a PDF, one page per ticket. Show the QR code at the door, \
         printed or on your phone.\n",
    );
    if let Some(link) = &order.link {
        body.push_str(&format!("\nYour order online: {link}\n"));
    }
    Email {
        to: to.to_owned(),
        subject: format!("Your tickets for {event} (order #{})", order.order_id),
        body,
        attachments: vec![Attachment {
            filename: format!("tickets-order-{}.pdf", order.order_id),
            content_type: "application/pdf".to_owned(),
            bytes: tickets_pdf(&order.tickets),
        }],
    }
}

/// Returns the notice that an event was cancelled and the buyer's tickets refunded.
pub fn cancellation_email(to: &str, notice: &CancellationNotice) -> Email {
    let tickets = match notice.tickets_refunded {
        1 => "your ticket has".to_owned(),
        n => format!("your {n} tickets have"),
    };
    Email {
        to: to.to_owned(),
        subject: format!(
            "Cancelled: {} — your tickets are refunded",
            notice.event_name
        ),
        body: format!(
            "Hello {},\n\nthe organizer has cancelled {} ({}).\n\nTheir reason: {}\n\n\
             {tickets} been refunded to the card you paid with; there is nothing you need to do.\n",
            notice.username, notice.event_name, notice.starts_at, notice.reason
        ),
        attachments: vec![],
    }
}

/// Returns the mail with a password reset link.
pub fn password_reset_email(to: &str, reset: &PasswordResetLink) -> Email {
    Email {
        to: to.to_owned(),
        subject: "Reset your tix password".to_owned(),
        body: format!(
            "Hello {},\n\nsomeone (we hope you) asked to reset the password of the tix account \
             \"{}\". To choose a new password, open this link within {} minutes:\n\n{}\n\n\
             The link works once. If you did not ask for it, ignore this mail: your password \
             stays as it is.\n",
            reset.username, reset.username, reset.valid_minutes, reset.link
        ),
        attachments: vec![],
    }
}
