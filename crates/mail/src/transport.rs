//! Delivery: [`Mailer`] sends an [`Email`] through its [`Transport`] — SMTP (lettre, plain or
//! with no TLS at all: meant for a relay on the same host or private network) or an outbox
//! folder of `.eml` files, used when no SMTP server is configured so a developer or an operator
//! can open what would have been sent.
//!
//! Sending never retries and never panics: the caller (a background task after a commit) logs
//! the [`MailError`] and goes on; a mail must never turn a sale into an error.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::ContentType;
use lettre::message::{Attachment as MimeAttachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::messages::Email;

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The SMTP URL is not `smtp://host[:port]`.
    #[error("bad SMTP URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The sender or recipient is not an address lettre accepts.
    #[error("bad address {0:?}")]
    BadAddress(String),
    /// The message could not be built.
    #[error("building the message: {0}")]
    Build(#[from] lettre::error::Error),
    /// The SMTP server refused or the connection failed.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// Writing the outbox file failed.
    #[error("writing to the outbox: {0}")]
    Outbox(#[from] std::io::Error),
}

/// How mail is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// To an SMTP server: `smtp://host[:port]` (port 25 by default), unauthenticated, no TLS.
    Smtp(String),
    /// As `.eml` files in this folder (created when needed).
    Outbox(PathBuf),
}

/// A mailer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// The sender's address (`From:`).
    pub from: String,
    /// Where mail goes.
    pub transport: Transport,
    /// How long one SMTP conversation may take.
    pub smtp_timeout: Duration,
}

/// Sends [`Email`]s from one sender through one transport. Cheap to share (`Arc`).
pub struct Mailer {
    from: Mailbox,
    inner: Inner,
    /// Numbers outbox files written by this process, so two in one millisecond never collide.
    sequence: AtomicU64,
}

enum Inner {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match &self.inner {
            Inner::Smtp(_) => "smtp".to_owned(),
            Inner::Outbox(dir) => format!("outbox {}", dir.display()),
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &transport)
            .finish()
    }
}

/// Splits `smtp://host[:port][/]` into host and port.
fn parse_smtp_url(url: &str) -> Result<(String, u16), MailError> {
    let bad = |reason| MailError::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let rest = url
        .strip_prefix("smtp://")
        .ok_or_else(|| bad("only smtp:// is supported (no TLS in this build)"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['@', '/', '?']) {
        return Err(bad("credentials, paths and options are not supported"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
            host,
            port.parse().map_err(|_| bad("the port is not a number"))?,
        ),
        _ => (rest, 25),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host.to_owned(), port))
}

impl Mailer {
    /// Returns a mailer for `config`, checking the sender and the SMTP URL (nothing connects
    /// until the first message).
    pub fn new(config: &MailConfig) -> Result<Mailer, MailError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| MailError::BadAddress(config.from.clone()))?;
        let inner = match &config.transport {
            Transport::Smtp(url) => {
                let (host, port) = parse_smtp_url(url)?;
                let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(port)
                    .timeout(Some(config.smtp_timeout))
                    .build();
                Inner::Smtp(smtp)
            }
            Transport::Outbox(dir) => Inner::Outbox(dir.clone()),
        };
        Ok(Mailer {
            from,
            inner,
            sequence: AtomicU64::new(0),
        })
    }

    /// Returns the outbox folder, when this mailer writes files.
    pub fn outbox(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Outbox(dir) => Some(dir),
            Inner::Smtp(_) => None,
        }
    }

    /// Builds the MIME message of `email` from this mailer's sender.
    pub fn message(&self, email: &Email) -> Result<Message, MailError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|_| MailError::BadAddress(email.to.clone()))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone());
        let text = SinglePart::plain(email.body.clone());
        if email.attachments.is_empty() {
            return Ok(builder.singlepart(text)?);
        }
        let mut parts = MultiPart::mixed().singlepart(text);
        for a in &email.attachments {
            let content_type = ContentType::parse(&a.content_type)
                .map_err(|_| MailError::BadAddress(a.content_type.clone()))?;
            let part = MimeAttachment::new(a.filename.clone()).body(a.bytes.clone(), content_type);
            parts = parts.singlepart(part);
        }
        Ok(builder.multipart(parts)?)
    }

    /// Sends one message; returns the outbox file written, if that is the transport.
    pub async fn send(&self, email: &Email) -> Result<Option<PathBuf>, MailError> {
        let message = self.message(email)?;
        match &self.inner {
            Inner::Smtp(smtp) => {
                smtp.send(message).await?;
                Ok(None)
            }
            Inner::Outbox(dir) => self.write_outbox(dir, &message).await.map(Some),
        }
    }

    /// Writes the message as `<millis>-<pid>-<n>.eml`: first under a dot name, then renamed, so
    /// a reader of the folder never sees half a message.
    async fn write_outbox(&self, dir: &Path, message: &Message) -> Result<PathBuf, MailError> {
        tokio::fs::create_dir_all(dir).await?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let name = format!("{millis}-{}-{n}.eml", std::process::id());
        let partial = dir.join(format!(".{name}.partial"));
        let path = dir.join(name);
        tokio::fs::write(&partial, message.formatted()).await?;
        tokio::fs::rename(&partial, &path).await?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Attachment;

    /// Accepted SMTP URLs and the refusals of what this build cannot do.
    #[test]
    fn smtp_urls() {
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:2525").unwrap(),
            ("127.0.0.1".into(), 2525)
        );
        assert_eq!(
            parse_smtp_url("smtp://mail.local/").unwrap(),
            ("mail.local".into(), 25)
        );
        assert_eq!(
            parse_smtp_url("smtp://[::1]:26").unwrap(),
            ("::1".into(), 26)
        );
        for bad in [
            "smtps://h",
            "smtp://u:p@h",
            "smtp://h:x",
            "smtp://",
            "http://h",
        ] {
            assert!(parse_smtp_url(bad).is_err(), "{bad}");
        }
    }

    /// The outbox gets one complete `.eml` per message, with the attachment in base64 and no
    /// partial file left behind.
    #[tokio::test]
    async fn outbox_writes_eml() {
        let dir = tempfile_dir();
        let mailer = Mailer::new(&MailConfig {
            from: "tix <tix@localhost>".into(),
            transport: Transport::Outbox(dir.clone()),
            smtp_timeout: Duration::from_secs(5),
        })
        .unwrap();
        let email = Email {
            to: "ann@example.org".into(),
            subject: "Hello".into(),
            body: "Body".into(),
            attachments: vec![Attachment {
                filename: "t.pdf".into(),
                content_type: "application/pdf".into(),
                bytes: b"%PDF-1.7 fake".to_vec(),
            }],
        };
        let path = mailer.send(&email).await.unwrap().expect("a file");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("To: ann@example.org"));
        assert!(text.contains("Content-Type: application/pdf"));
        assert!(text.contains("filename=\"t.pdf\""));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tix-mail-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
