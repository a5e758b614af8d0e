//! Signed ticket codes: what a ticket's QR code carries, and what the door checks.
//!
//! A code names an event and a ticket and carries an Ed25519 signature by the event's key over a
//! domain-separated message naming both (`tix ticket v1\0`, event id, ticket id, big-endian).
//! The key's seed was drawn when the event was created and lives in the replicated state, so
//! every node signs and verifies alike; its public half is published
//! (`GET /api/v1/events/{id}/ticket-key`), so a scanner can verify a code offline. A code proves
//! the ticket was issued; whether it is still valid (not refunded, not yet admitted) is the
//! state's answer at the door.
//!
//! Two spellings of the same signed message are accepted:
//!
//! - **`TIX2-<base32>`** (issued now): RFC 4648 base32 without padding of the event id and the
//!   ticket id as LEB128 varints followed by the 64 signature bytes — about 115 characters, all
//!   uppercase letters, digits and `-`, so the QR code uses its alphanumeric mode (5.5 bits a
//!   character instead of 8) and needs a version-5 symbol (37×37 modules) where the old code
//!   needed version 8 (49×49) at the same error correction. Decoding is strict (canonical
//!   varints, zero trailing bits, nothing after the signature), so one ticket has one code; it
//!   is case-insensitive, for people who type it.
//! - **`TIX1-<event>-<ticket>-<128 hex digits>`**: the codes issued before, still printed on
//!   tickets sold then; they verify exactly as before.
//!
//! The signature stays Ed25519's 64 bytes: a shorter tag (a truncated HMAC) would need the
//! secret at every scanner and end offline verification with the published key, and shorter
//! public-key signatures (BLS, about 48 bytes) would add a pairing library for 16 bytes. The
//! version prefix lets the format change later without guessing.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// The prefix of the hex format, the first issued.
const PREFIX_V1: &str = "TIX1";
/// The prefix (with its separator) of the base32 format issued now.
const PREFIX_V2: &str = "TIX2-";
/// The longest code accepted (the hex format: prefix, two u64s, 128 hex digits, separators).
pub const CODE_BYTES_MAX: usize = 200;
/// The signature's length in bytes.
const SIGNATURE_BYTES: usize = 64;
/// The longest LEB128 encoding of a u64.
const VARINT_BYTES_MAX: usize = 10;
/// RFC 4648's base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// What was wrong with a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Neither of the accepted formats.
    #[error("not a tix ticket code")]
    Malformed,
    /// Well formed, but the signature does not match the event's key: forged or altered.
    #[error("the signature does not match: the code is forged or altered")]
    BadSignature,
}

/// A code taken apart, its signature not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// The event named.
    pub event_id: u64,
    /// The ticket named.
    pub ticket_id: u64,
    /// The signature carried.
    pub signature: [u8; SIGNATURE_BYTES],
    /// The format it was written in: 1 (hex) or 2 (base32).
    pub version: u8,
}

fn message(event_id: u64, ticket_id: u64) -> Vec<u8> {
    let mut m = b"tix ticket v1\0".to_vec();
    m.extend_from_slice(&event_id.to_be_bytes());
    m.extend_from_slice(&ticket_id.to_be_bytes());
    m
}

/// Returns the public key (hex) of an event's ticket key.
pub fn public_key_hex(seed: &[u8; 32]) -> String {
    hex::encode(SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

fn signature(seed: &[u8; 32], event_id: u64, ticket_id: u64) -> [u8; SIGNATURE_BYTES] {
    SigningKey::from_bytes(seed)
        .sign(&message(event_id, ticket_id))
        .to_bytes()
}

/// Returns the signed code of a ticket, in the current (base32) format.
pub fn sign(seed: &[u8; 32], event_id: u64, ticket_id: u64) -> String {
    let mut bytes = Vec::with_capacity(2 * VARINT_BYTES_MAX + SIGNATURE_BYTES);
    push_varint(&mut bytes, event_id);
    push_varint(&mut bytes, ticket_id);
    bytes.extend_from_slice(&signature(seed, event_id, ticket_id));
    format!("{PREFIX_V2}{}", base32_encode(&bytes))
}

/// Returns the signed code of a ticket in the hex format issued before (for tests and tools
/// that must produce what old tickets carry).
pub fn sign_v1(seed: &[u8; 32], event_id: u64, ticket_id: u64) -> String {
    let signature = signature(seed, event_id, ticket_id);
    format!(
        "{PREFIX_V1}-{event_id}-{ticket_id}-{}",
        hex::encode(signature)
    )
}

/// Splits a code of either format into its parts, without checking the signature.
pub fn parse(code: &str) -> Result<Parsed, CodeError> {
    let code = code.trim();
    if code.len() > CODE_BYTES_MAX || !code.is_ascii() {
        return Err(CodeError::Malformed);
    }
    let v2 = code
        .get(..PREFIX_V2.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX_V2));
    if v2 {
        parse_v2(&code[PREFIX_V2.len()..])
    } else {
        parse_v1(code)
    }
}

fn parse_v1(code: &str) -> Result<Parsed, CodeError> {
    let mut parts = code.split('-');
    let (Some(PREFIX_V1), Some(event), Some(ticket), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(CodeError::Malformed);
    };
    let event_id = event.parse().map_err(|_| CodeError::Malformed)?;
    let ticket_id = ticket.parse().map_err(|_| CodeError::Malformed)?;
    let bytes = hex::decode(sig).map_err(|_| CodeError::Malformed)?;
    let signature = bytes.try_into().map_err(|_| CodeError::Malformed)?;
    Ok(Parsed {
        event_id,
        ticket_id,
        signature,
        version: 1,
    })
}

fn parse_v2(body: &str) -> Result<Parsed, CodeError> {
    let bytes = base32_decode(body).ok_or(CodeError::Malformed)?;
    let (event_id, rest) = take_varint(&bytes).ok_or(CodeError::Malformed)?;
    let (ticket_id, rest) = take_varint(rest).ok_or(CodeError::Malformed)?;
    let signature = rest.try_into().map_err(|_| CodeError::Malformed)?;
    Ok(Parsed {
        event_id,
        ticket_id,
        signature,
        version: 2,
    })
}

/// Checks a code's signature with the event's public key; returns the event and ticket ids.
pub fn verify(public_key: &[u8; 32], code: &str) -> Result<(u64, u64), CodeError> {
    let p = parse(code)?;
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| CodeError::BadSignature)?;
    key.verify(
        &message(p.event_id, p.ticket_id),
        &Signature::from_bytes(&p.signature),
    )
    .map_err(|_| CodeError::BadSignature)?;
    Ok((p.event_id, p.ticket_id))
}

/// Checks a code against the event's seed (what a node does at the door).
pub fn verify_with_seed(seed: &[u8; 32], code: &str) -> Result<(u64, u64), CodeError> {
    let public = SigningKey::from_bytes(seed).verifying_key().to_bytes();
    verify(&public, code)
}

/// Renders `text` as an inline SVG QR code (no external request, no JavaScript). The encoder
/// picks the densest mode per segment: a base32 code is one alphanumeric segment.
pub fn qr_svg(text: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// Returns the width in modules of the QR code of `text` (as [`qr_svg`] draws it, without the
/// quiet zone), or `None` if it does not fit.
pub fn qr_modules(text: &str) -> Option<usize> {
    qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
        .ok()
        .map(|c| c.width())
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a canonical LEB128 u64 (no redundant trailing zero groups, no overflow).
fn take_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(VARINT_BYTES_MAX) {
        let group = u64::from(b & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && group > 1 {
            return None;
        }
        n |= group << shift;
        if b & 0x80 == 0 {
            if i > 0 && b == 0 {
                return None;
            }
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes unpadded base32 (either case); `None` for a stray character, an impossible length
/// or non-zero trailing bits (so every byte string has exactly one spelling).
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    // 1, 3 and 6 characters past a multiple of 8 leave bits that make no whole byte.
    if matches!(text.len() % 8, 1 | 3 | 6) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buffer = ((buffer << 5) | u32::from(value)) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    (buffer & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [9; 32];

    fn public() -> [u8; 32] {
        hex::decode(public_key_hex(&SEED))
            .unwrap()
            .try_into()
            .unwrap()
    }

    // A code verifies with its event's key and names its event and ticket, with the seed and
    // offline with the public key, for small and the largest ids.
    #[test]
    fn a_signed_code_round_trips() {
        for (event, ticket) in [
            (3, 41),
            (0, 0),
            (1, 127),
            (128, 16_384),
            (u64::MAX, u64::MAX),
        ] {
            let code = sign(&SEED, event, ticket);
            assert!(code.starts_with("TIX2-"), "{code}");
            assert_eq!(
                verify_with_seed(&SEED, &code),
                Ok((event, ticket)),
                "{code}"
            );
            assert_eq!(verify(&public(), &code), Ok((event, ticket)), "offline");
            let p = parse(&code).unwrap();
            assert_eq!((p.event_id, p.ticket_id, p.version), (event, ticket, 2));
            assert!(code.len() <= CODE_BYTES_MAX);
        }
    }

    // The code is QR-alphanumeric (uppercase, digits, '-') and is read in any case, with
    // surrounding whitespace.
    #[test]
    fn codes_are_qr_alphanumeric_and_case_insensitive() {
        let code = sign(&SEED, 7, 1234);
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-'),
            "{code}"
        );
        let typed = format!("  {}\n", code.to_ascii_lowercase());
        assert_eq!(verify_with_seed(&SEED, &typed), Ok((7, 1234)));
    }

    // Codes in the hex format issued before the base32 one still verify, and carry the same
    // signature as the new code of the same ticket.
    #[test]
    fn old_hex_codes_still_verify() {
        let old = sign_v1(&SEED, 3, 41);
        assert!(old.starts_with("TIX1-3-41-"));
        assert_eq!(verify_with_seed(&SEED, &old), Ok((3, 41)));
        assert_eq!(verify(&public(), &old), Ok((3, 41)));
        let (a, b) = (parse(&old).unwrap(), parse(&sign(&SEED, 3, 41)).unwrap());
        assert_eq!((a.version, b.version), (1, 2));
        assert_eq!(a.signature, b.signature);
        // A code as the hex format was written by the release before this one (fixed seed).
        let issued = "TIX1-3-41-".to_owned() + &hex::encode(signature(&SEED, 3, 41));
        assert_eq!(verify_with_seed(&SEED, &issued), Ok((3, 41)));
    }

    // Changing the ticket, the event or the signature, or using another event's key, fails,
    // in both formats.
    #[test]
    fn forged_and_altered_codes_fail() {
        let other_ticket = sign_v1(&SEED, 3, 41).replace("TIX1-3-41-", "TIX1-3-42-");
        assert_eq!(
            verify_with_seed(&SEED, &other_ticket),
            Err(CodeError::BadSignature)
        );
        // A new code whose ids were swapped for others', the signature kept.
        let mut bytes = vec![];
        push_varint(&mut bytes, 3);
        push_varint(&mut bytes, 42);
        bytes.extend_from_slice(&signature(&SEED, 3, 41));
        let swapped = format!("TIX2-{}", base32_encode(&bytes));
        assert_eq!(
            verify_with_seed(&SEED, &swapped),
            Err(CodeError::BadSignature)
        );
        // Every single-character change inside the base32 body either breaks the format or
        // the signature; none verifies.
        let code = sign(&SEED, 3, 41);
        for i in PREFIX_V2.len()..code.len() {
            let mut altered = code.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(verify_with_seed(&SEED, &altered).is_err(), "position {i}");
        }
        let mut flipped = code.clone();
        let third_last = flipped.len() - 3;
        let c = flipped.as_bytes()[third_last];
        flipped.replace_range(third_last..=third_last, if c == b'Q' { "R" } else { "Q" });
        assert_eq!(
            verify_with_seed(&SEED, &flipped),
            Err(CodeError::BadSignature)
        );
        assert_eq!(
            verify_with_seed(&[8; 32], &code),
            Err(CodeError::BadSignature)
        );
    }

    // Garbage is malformed, not a signature failure.
    #[test]
    fn garbage_is_malformed() {
        let code = sign(&SEED, 1, 2);
        let truncated = &code[..code.len() - 2];
        let longer = format!("{code}AA");
        for bad in [
            "",
            "hello",
            "TIX1-1-2",
            "TIX1-a-2-00",
            "TIX3-1-2-00",
            "TIX1-1-2-zz",
            "TIX1-1-2-00",
            "TIX2-",
            "TIX2-AB",
            "TIX2-0189",
            "TIX2-AAAAAAAA",
            "tix ticket",
            "TIX2-ÄÖ",
            truncated,
            &longer,
        ] {
            assert_eq!(
                verify_with_seed(&SEED, bad),
                Err(CodeError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(parse(&"x".repeat(500)), Err(CodeError::Malformed));
        assert_eq!(
            parse(&"A".repeat(CODE_BYTES_MAX + 1)),
            Err(CodeError::Malformed)
        );
    }

    // The varint reader takes the largest u64 and refuses overlong, overflowing and
    // unterminated encodings; base32 round-trips every length and refuses non-zero padding
    // bits.
    #[test]
    fn varints_and_base32_are_canonical() {
        for n in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = vec![];
            push_varint(&mut b, n);
            assert_eq!(take_varint(&b), Some((n, &[][..])));
        }
        assert_eq!(take_varint(&[0x80, 0x00]), None, "overlong zero");
        assert_eq!(
            take_varint(&[0xff; 9].iter().copied().chain([0x02]).collect::<Vec<_>>()),
            None
        );
        assert_eq!(take_varint(&[0x80]), None, "unterminated");
        for len in 0..=20 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base32_encode(&bytes);
            assert_eq!(base32_decode(&text), Some(bytes), "{len}");
        }
        // "AB": 10 bits, 8 of data; B leaves a non-zero trailing bit.
        assert_eq!(base32_decode("AB"), None);
        assert_eq!(base32_decode("AA"), Some(vec![0]));
    }

    // The new code is shorter and its QR sparser than the old one: printed for the record
    // (`cargo test -p tix-http ticket_code -- --nocapture`).
    #[test]
    fn the_new_code_is_shorter_and_its_qr_sparser() {
        for (event, ticket) in [
            (3, 41),
            (1_000, 250_000),
            (u32::MAX as u64, u32::MAX as u64),
        ] {
            let (old, new) = (sign_v1(&SEED, event, ticket), sign(&SEED, event, ticket));
            let (old_qr, new_qr) = (qr_modules(&old).unwrap(), qr_modules(&new).unwrap());
            println!(
                "event {event}, ticket {ticket}: old {} chars, {old_qr}×{old_qr} modules; \
                 new {} chars, {new_qr}×{new_qr} modules",
                old.len(),
                new.len()
            );
            assert!(new.len() < old.len());
            assert!(new_qr < old_qr, "{new_qr} vs {old_qr}");
        }
        // Typical ids: version 5 (37 modules) instead of version 8 (49).
        assert_eq!(qr_modules(&sign(&SEED, 3, 41)), Some(37));
        assert_eq!(qr_modules(&sign_v1(&SEED, 3, 41)), Some(49));
    }

    // The QR code is an SVG image.
    #[test]
    fn renders_a_qr_svg() {
        let svg = qr_svg(&sign(&SEED, 1, 1));
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
