//! HTTP/1.1 on a plain blocking socket, for the places that must not share a client runtime or
//! must see exactly what the server wrote: `tix bench overload`'s probe (one OS thread timing
//! refusals apart from the crowd) and the nginx edge tests (a request left in flight on purpose).
//! It writes a request and reads one answer: the head and a `Content-Length` body.

use std::io::{self, BufRead};

/// One answer as read from the socket.
#[derive(Debug)]
pub struct Answer {
    /// The status code (0 if the status line did not carry one).
    pub status: u16,
    /// The status line and the header lines, each ending in `\r\n`.
    pub head: String,
    /// The body (`Content-Length` bytes; none without the header).
    pub body: Vec<u8>,
}

/// Returns the bytes of a request with a `Host`, the given headers, a `Content-Length` and
/// `body`.
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

/// Reads one answer from `reader`; an answer cut off before its head ended is an
/// `UnexpectedEof` error.
pub fn read_answer<R: BufRead>(reader: &mut R) -> io::Result<Answer> {
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the answer ended in its head",
            ));
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Answer { status, head, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_request_and_reads_answers_one_after_another() {
        assert_eq!(
            request(
                "POST",
                "h:1",
                "/p",
                &[("Content-Type", "application/json")],
                "{}"
            ),
            "POST /p HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\n\r\n{}"
        );
        let wire = b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\ncontent-length: 3\r\n\r\nabcHTTP/1.1 201 Created\r\n\r\n";
        let mut reader = io::BufReader::new(&wire[..]);
        let first = read_answer(&mut reader).unwrap();
        assert_eq!(first.status, 503);
        assert!(first.head.contains("Retry-After: 1\r\n"), "{}", first.head);
        assert_eq!(first.body, b"abc");
        let second = read_answer(&mut reader).unwrap();
        assert_eq!((second.status, second.body.len()), (201, 0));
        assert_eq!(
            read_answer(&mut reader).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
