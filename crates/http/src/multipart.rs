//! `multipart/form-data` (RFC 7578) over a body already in memory: the event form posts its
//! image this way, so that it works without JavaScript.
//!
//! The CSRF guard reads a form's body before any handler runs (to find its token), so the body
//! is bytes by then and a streaming parser would buy nothing; this one splits the bytes at the
//! boundary and reads each part's `Content-Disposition` and `Content-Type`. It takes at most
//! [`PARTS_MAX`] parts and [`PART_HEAD_BYTES_MAX`] of headers per part, and refuses anything it
//! cannot read whole (the caller answers 400).

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

/// The most parts one form may have (the event form has about twenty fields).
pub const PARTS_MAX: usize = 64;
/// The most bytes of headers one part may have.
pub const PART_HEAD_BYTES_MAX: usize = 2_048;

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The field's name.
    pub name: String,
    /// The file name the browser sent, for a file input (empty when no file was chosen).
    pub filename: Option<String>,
    /// The part's declared type (browsers send one for files).
    pub content_type: Option<String>,
    /// The part's bytes.
    pub data: Vec<u8>,
}

/// Why a body is not a form this parser reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    /// The `Content-Type` has no boundary.
    #[error("the form's content type names no boundary")]
    NoBoundary,
    /// The body does not follow the format (no delimiter, no end, a part without a name...).
    #[error("the form's body is malformed: {0}")]
    Malformed(&'static str),
    /// More than [`PARTS_MAX`] parts.
    #[error("the form has more than {PARTS_MAX} fields")]
    TooManyParts,
}

/// Returns the boundary when `headers` say `multipart/form-data`, else `None`.
pub fn boundary(headers: &HeaderMap) -> Option<Result<String, MultipartError>> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mut params = value.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let found = params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    });
    // RFC 2046: 1 to 70 characters.
    Some(
        found
            .filter(|b| (1..=70).contains(&b.len()))
            .ok_or(MultipartError::NoBoundary),
    )
}

/// Splits `body` into its parts.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, MultipartError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let start = find(body, delimiter, 0).ok_or(MultipartError::Malformed("no boundary"))?;
    let mut at = start + delimiter.len();
    let mut parts = Vec::new();
    loop {
        match body.get(at..at + 2) {
            Some(b"--") => return Ok(parts),
            Some(b"\r\n") => at += 2,
            _ => return Err(MultipartError::Malformed("a boundary without a line break")),
        }
        if parts.len() == PARTS_MAX {
            return Err(MultipartError::TooManyParts);
        }
        let head_end = find(body, b"\r\n\r\n", at)
            .ok_or(MultipartError::Malformed("a part without a body"))?;
        if head_end - at > PART_HEAD_BYTES_MAX {
            return Err(MultipartError::Malformed("a part's headers are too long"));
        }
        let head = std::str::from_utf8(&body[at..head_end])
            .map_err(|_| MultipartError::Malformed("a part's headers are not UTF-8"))?;
        let data_start = head_end + 4;
        let mut closing = Vec::with_capacity(delimiter.len() + 2);
        closing.extend_from_slice(b"\r\n");
        closing.extend_from_slice(delimiter);
        let data_end = find(body, &closing, data_start)
            .ok_or(MultipartError::Malformed("no closing boundary"))?;
        parts.push(part(head, body[data_start..data_end].to_vec())?);
        at = data_end + closing.len();
    }
}

/// Reads a part's headers.
fn part(head: &str, data: Vec<u8>) -> Result<Part, MultipartError> {
    let mut name = None;
    let mut filename = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("content-disposition") {
            for param in value.split(';').skip(1) {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"').to_owned();
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(v),
                    "filename" => filename = Some(v),
                    _ => {}
                }
            }
        } else if key.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    Ok(Part {
        name: name.ok_or(MultipartError::Malformed("a part without a name"))?,
        filename,
        content_type,
        data,
    })
}

/// The position of `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= haystack.len() {
        let skip = haystack[at..].iter().position(|b| *b == first)?;
        at += skip;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// The text fields of a form as `(name, value)` pairs, like `pages::form_pairs` gives for an
/// URL-encoded form (a file part's value is its file name).
pub fn text_pairs(parts: &[Part]) -> Vec<(String, String)> {
    parts
        .iter()
        .filter(|p| p.filename.is_none())
        .map(|p| {
            (
                p.name.clone(),
                String::from_utf8_lossy(&p.data).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = b"preamble\r\n".to_vec();
        for (name, file, data) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match file {
                Some(f) => body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                         Content-Type: image/png\r\n\r\n"
                    )
                    .as_bytes(),
                ),
                None => body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
            }
            body.extend_from_slice(data);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    // Text fields and a file come back as sent, bytes that look like a boundary inside a file
    // included; the boundary is read from the content type, quoted or not.
    #[test]
    fn parses_text_fields_and_files() {
        let b = "----WebKitFormBoundaryX3";
        let file: &[u8] = b"\x89PNG\r\n--not-the-boundary\r\n\0\xff";
        let body = form(
            b,
            &[
                ("csrf", None, b"abc"),
                ("name", None, "Zoë's night".as_bytes()),
                ("image", Some("poster.png"), file),
                ("empty", None, b""),
            ],
        );
        let parts = parse(&body, b).unwrap();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[2].filename.as_deref(), Some("poster.png"));
        assert_eq!(parts[2].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[2].data, file);
        assert_eq!(
            text_pairs(&parts),
            vec![
                ("csrf".into(), "abc".into()),
                ("name".into(), "Zoë's night".into()),
                ("empty".into(), String::new()),
            ]
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary=\"{b}\"")
                .parse()
                .unwrap(),
        );
        assert_eq!(boundary(&headers), Some(Ok(b.to_owned())));
        headers.insert(CONTENT_TYPE, "multipart/form-data".parse().unwrap());
        assert_eq!(boundary(&headers), Some(Err(MultipartError::NoBoundary)));
        headers.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert_eq!(boundary(&headers), None);
    }

    // A body cut short, without a final boundary or with nameless parts is refused; the part
    // count is limited from both sides.
    #[test]
    fn refuses_what_it_cannot_read_whole() {
        let b = "xyz";
        let body = form(b, &[("a", None, b"1")]);
        assert!(parse(&body[..body.len() - 12], b).is_err());
        assert!(parse(b"no delimiter at all", b).is_err());
        let nameless = b"--xyz\r\nContent-Disposition: form-data\r\n\r\n1\r\n--xyz--";
        assert_eq!(
            parse(nameless, b),
            Err(MultipartError::Malformed("a part without a name"))
        );
        let many: Vec<(&str, Option<&str>, &[u8])> = vec![("f", None, b"1"); PARTS_MAX];
        assert_eq!(parse(&form(b, &many), b).unwrap().len(), PARTS_MAX);
        let more: Vec<(&str, Option<&str>, &[u8])> = vec![("f", None, b"1"); PARTS_MAX + 1];
        assert_eq!(parse(&form(b, &more), b), Err(MultipartError::TooManyParts));
    }
}
