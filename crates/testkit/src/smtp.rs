//! A tiny SMTP sink for tests: listens on 127.0.0.1 (port 0), speaks just enough SMTP (EHLO or
//! HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) to take every message a client sends, and keeps
//! them for the test to wait for and read — plus the MIME helpers to get at a captured message's
//! text and attachments ([`Captured::text`], [`Captured::attachment`]).
//!
//! It is not a mail server: no authentication, no TLS, no size limit beyond
//! [`MESSAGE_BYTES_MAX`], no queue. Each connection is served by a task of its own; the listener
//! task stops when the sink is dropped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// The largest message the sink takes; a larger one ends the connection.
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// One message the sink took.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The `MAIL FROM` path.
    pub from: String,
    /// The `RCPT TO` paths.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (dot-unstuffed, CRLF line ends).
    pub data: String,
}

/// The running sink.
pub struct SmtpSink {
    addr: SocketAddr,
    messages: Arc<Mutex<Vec<Captured>>>,
    arrived: Arc<Notify>,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl SmtpSink {
    /// Starts a sink on 127.0.0.1 and a free port.
    pub async fn start() -> anyhow::Result<SmtpSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let arrived = Arc::new(Notify::new());
        let (m, a) = (messages.clone(), arrived.clone());
        let listener = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (m, a) = (m.clone(), a.clone());
                tokio::spawn(async move {
                    // A client that misbehaves just loses its connection.
                    let _ = serve(stream, m, a).await;
                });
            }
        });
        Ok(SmtpSink {
            addr,
            messages,
            arrived,
            listener,
        })
    }

    /// Returns `smtp://127.0.0.1:<port>`, for `tix serve --smtp-url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Returns every message taken so far, in arrival order.
    pub fn messages(&self) -> Vec<Captured> {
        self.messages.lock().expect("poisoned").clone()
    }

    /// Waits until a message for which `wanted` holds has arrived (or `timeout` passes).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        wanted: impl Fn(&Captured) -> bool,
    ) -> anyhow::Result<Captured> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.arrived.notified();
            if let Some(found) = self.messages().into_iter().find(|m| wanted(m)) {
                return Ok(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "no such message within {timeout:?}; {} arrived",
                    self.messages().len()
                );
            }
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

/// Serves one SMTP connection.
async fn serve(
    stream: TcpStream,
    messages: Arc<Mutex<Vec<Captured>>>,
    arrived: Arc<Notify>,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 tix-test-sink ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-tix-test-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                (from, to) = (String::new(), Vec::new());
                b"250 OK\r\n"
            }
            "MAIL" => {
                from = path_of(&command);
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(path_of(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut read).await?;
                let message = Captured {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                };
                messages.lock().expect("poisoned").push(message);
                arrived.notify_waiters();
                b"250 OK: queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Returns the path of `MAIL FROM:<a@b>` or `RCPT TO:<a@b>`.
fn path_of(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command.rfind('>').unwrap_or(command.len());
    command.get(start..end).unwrap_or_default().to_owned()
}

/// Reads a message up to the line holding only `.`, undoing dot-stuffing.
async fn read_data(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> anyhow::Result<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            bail!("connection closed inside DATA");
        }
        if line == ".\r\n" || line == ".\n" {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
        if data.len() > MESSAGE_BYTES_MAX {
            bail!("message over {MESSAGE_BYTES_MAX} bytes");
        }
    }
}

/// One MIME part: its headers (names lower-cased) and its body, still transfer-encoded.
struct Part<'a> {
    headers: Vec<(String, String)>,
    body: &'a str,
}

impl Part<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Returns the body with its `Content-Transfer-Encoding` undone.
    fn decoded(&self) -> anyhow::Result<Vec<u8>> {
        let encoding = self
            .header("content-transfer-encoding")
            .unwrap_or("7bit")
            .to_ascii_lowercase();
        match encoding.as_str() {
            "base64" => {
                let compact: String = self.body.split_whitespace().collect();
                Ok(base64::engine::general_purpose::STANDARD.decode(compact)?)
            }
            "quoted-printable" => Ok(quoted_printable(self.body)),
            _ => Ok(self.body.as_bytes().to_vec()),
        }
    }
}

/// Splits a message or part into headers (unfolded) and body.
fn split(raw: &str) -> Part<'_> {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .or_else(|| raw.split_once("\n\n"))
        .unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    Part { headers, body }
}

/// Returns the `boundary` parameter of a multipart content type.
fn boundary(content_type: &str) -> Option<String> {
    let at = content_type.find("boundary=")? + "boundary=".len();
    let value = &content_type[at..];
    let value = value.split(';').next()?.trim().trim_matches('"');
    Some(value.to_owned())
}

/// Returns the leaf parts of a message (multiparts opened, recursively up to a small depth).
fn leaves(raw: &str) -> Vec<Part<'_>> {
    let mut out = Vec::new();
    let mut todo = vec![(split(raw), 0)];
    while let Some((part, depth)) = todo.pop() {
        let content_type = part.header("content-type").unwrap_or("text/plain");
        match boundary(content_type).filter(|_| depth < 4) {
            Some(b) => {
                let delimiter = format!("--{b}");
                let mut pieces: Vec<&str> = part.body.split(delimiter.as_str()).collect();
                pieces.remove(0); // the preamble
                for piece in pieces {
                    if piece.starts_with("--") {
                        break; // the closing delimiter
                    }
                    let piece = piece.strip_prefix("\r\n").unwrap_or(piece);
                    let piece = piece.strip_suffix("\r\n").unwrap_or(piece);
                    todo.push((split(piece), depth + 1));
                }
            }
            None => out.push(part),
        }
    }
    out.reverse();
    out
}

/// Undoes quoted-printable: soft line breaks and `=XX`.
fn quoted_printable(body: &str) -> Vec<u8> {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

impl Captured {
    /// Returns a top-level header's value (unfolded; encoded words left as they are).
    pub fn header(&self, name: &str) -> Option<String> {
        split(&self.data)
            .header(&name.to_ascii_lowercase())
            .map(str::to_owned)
    }

    /// Returns the first `text/plain` part, decoded.
    pub fn text(&self) -> anyhow::Result<String> {
        let part = leaves(&self.data)
            .into_iter()
            .find(|p| {
                p.header("content-type")
                    .unwrap_or("text/plain")
                    .starts_with("text/plain")
            })
            .context("no text/plain part")?;
        Ok(String::from_utf8(part.decoded()?)?)
    }

    /// Returns the first attachment of `content_type` (its file name and bytes, decoded).
    pub fn attachment(&self, content_type: &str) -> anyhow::Result<(String, Vec<u8>)> {
        let part = leaves(&self.data)
            .into_iter()
            .find(|p| {
                p.header("content-type")
                    .is_some_and(|t| t.starts_with(content_type))
            })
            .with_context(|| format!("no {content_type} part"))?;
        let name = part
            .header("content-disposition")
            .and_then(|d| d.split("filename=").nth(1))
            .map(|f| f.trim_matches('"').to_owned())
            .unwrap_or_default();
        Ok((name, part.decoded()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multipart message: the text part (quoted-printable) and a base64 attachment come back
    /// decoded, and dot-stuffed lines arrive unstuffed over a real socket.
    #[tokio::test]
    async fn takes_and_decodes_a_message() {
        let sink = SmtpSink::start().await.unwrap();
        let mut s = TcpStream::connect(sink.addr).await.unwrap();
        let message = "From: a@b\r\nTo: c@d\r\nSubject: Hi\r\nContent-Type: multipart/mixed; \
            boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\
            Content-Transfer-Encoding: quoted-printable\r\n\r\nlink?token=3Dab=\r\ncd\r\n\
            ..dot\r\n--XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; \
            filename=\"t.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBE\r\nRi0=\r\n\
            --XX--\r\n";
        let script = format!(
            "EHLO me\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n{message}.\r\nQUIT\r\n"
        );
        s.write_all(script.as_bytes()).await.unwrap();
        let got = sink
            .wait_for(Duration::from_secs(5), |m| m.to == ["c@d"])
            .await
            .unwrap();
        assert_eq!(got.from, "a@b");
        assert_eq!(got.header("subject").as_deref(), Some("Hi"));
        assert_eq!(got.text().unwrap(), "link?token=abcd\r\n.dot");
        let (name, bytes) = got.attachment("application/pdf").unwrap();
        assert_eq!(
            (name.as_str(), bytes.as_slice()),
            ("t.pdf", b"%PDF-".as_slice())
        );
    }
}
