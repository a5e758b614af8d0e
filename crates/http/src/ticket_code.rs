//! Signed ticket codes: what a ticket's QR code carries, and what the door checks.
//!
//! A code is `TIX1-<event id>-<ticket id>-<signature>`: an Ed25519 signature (hex) by the
//! event's key over a domain-separated message naming the event and the ticket. The key's seed
//! was drawn when the event was created and lives in the replicated state, so every node signs
//! and verifies alike; its public half is published (`GET /api/v1/events/{id}/ticket-key`), so
//! a scanner can verify a code offline. A code proves the ticket was issued; whether it is
//! still valid (not refunded, not yet admitted) is the state's answer at the door.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// The prefix and version of the format.
const PREFIX: &str = "TIX1";
/// The longest code accepted (prefix, two u64s, 128 hex digits, separators).
pub const CODE_BYTES_MAX: usize = 200;

/// What was wrong with a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not of the form `TIX1-<event>-<ticket>-<signature>`.
    #[error("not a tix ticket code")]
    Malformed,
    /// Well formed, but the signature does not match the event's key: forged or altered.
    #[error("the signature does not match: the code is forged or altered")]
    BadSignature,
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

/// Returns the signed code of a ticket.
pub fn sign(seed: &[u8; 32], event_id: u64, ticket_id: u64) -> String {
    let signature = SigningKey::from_bytes(seed).sign(&message(event_id, ticket_id));
    format!(
        "{PREFIX}-{event_id}-{ticket_id}-{}",
        hex::encode(signature.to_bytes())
    )
}

/// Splits a code into event id, ticket id and signature bytes, without checking the signature.
pub fn parse(code: &str) -> Result<(u64, u64, [u8; 64]), CodeError> {
    let code = code.trim();
    if code.len() > CODE_BYTES_MAX {
        return Err(CodeError::Malformed);
    }
    let mut parts = code.split('-');
    let (Some(PREFIX), Some(event), Some(ticket), Some(sig), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(CodeError::Malformed);
    };
    let event = event.parse().map_err(|_| CodeError::Malformed)?;
    let ticket = ticket.parse().map_err(|_| CodeError::Malformed)?;
    let bytes = hex::decode(sig).map_err(|_| CodeError::Malformed)?;
    let sig: [u8; 64] = bytes.try_into().map_err(|_| CodeError::Malformed)?;
    Ok((event, ticket, sig))
}

/// Checks a code's signature with the event's public key.
pub fn verify(public_key: &[u8; 32], code: &str) -> Result<(u64, u64), CodeError> {
    let (event_id, ticket_id, sig) = parse(code)?;
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| CodeError::BadSignature)?;
    key.verify(&message(event_id, ticket_id), &Signature::from_bytes(&sig))
        .map_err(|_| CodeError::BadSignature)?;
    Ok((event_id, ticket_id))
}

/// Checks a code against the event's seed (what a node does at the door).
pub fn verify_with_seed(seed: &[u8; 32], code: &str) -> Result<(u64, u64), CodeError> {
    let public = SigningKey::from_bytes(seed).verifying_key().to_bytes();
    verify(&public, code)
}

/// Renders `text` as an inline SVG QR code (no external request, no JavaScript).
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

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: [u8; 32] = [9; 32];

    // A code verifies with its event's key and names its event and ticket.
    #[test]
    fn a_signed_code_verifies() {
        let code = sign(&SEED, 3, 41);
        assert!(code.starts_with("TIX1-3-41-"));
        assert_eq!(verify_with_seed(&SEED, &code), Ok((3, 41)));
        let public: [u8; 32] = hex::decode(public_key_hex(&SEED))
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(
            verify(&public, &code),
            Ok((3, 41)),
            "offline, with the public key"
        );
    }

    // Changing the ticket, the event or the signature, or using another event's key, fails.
    #[test]
    fn forged_and_altered_codes_fail() {
        let code = sign(&SEED, 3, 41);
        let other_ticket = code.replace("TIX1-3-41-", "TIX1-3-42-");
        assert_eq!(
            verify_with_seed(&SEED, &other_ticket),
            Err(CodeError::BadSignature)
        );
        let other_event = code.replace("TIX1-3-41-", "TIX1-4-41-");
        assert_eq!(
            verify_with_seed(&SEED, &other_event),
            Err(CodeError::BadSignature)
        );
        let mut flipped = code.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
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
        for bad in [
            "",
            "hello",
            "TIX1-1-2",
            "TIX1-a-2-00",
            "TIX2-1-2-00",
            "TIX1-1-2-zz",
            "TIX1-1-2-00",
        ] {
            assert_eq!(
                verify_with_seed(&SEED, bad),
                Err(CodeError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(parse(&"x".repeat(500)), Err(CodeError::Malformed));
    }

    // The QR code is an SVG image.
    #[test]
    fn renders_a_qr_svg() {
        let svg = qr_svg(&sign(&SEED, 1, 1));
        assert!(svg.contains("<svg") && svg.contains("</svg>"));
    }
}
