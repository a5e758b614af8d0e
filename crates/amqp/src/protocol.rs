//! The messages on the wire. A request is the JSON body of `POST /events/{id}/purchases` plus
//! its `event_id`, published to [`PURCHASE_QUEUE`] with the properties `reply_to` and
//! `correlation_id`; the reply is the body the HTTP API would answer plus `"status"`, published
//! to `reply_to` with the same `correlation_id`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The durable queue that carries purchase requests.
pub const PURCHASE_QUEUE: &str = "tix.purchases";

/// The largest request body a worker reads; anything longer is refused as malformed.
pub const MESSAGE_BYTES_MAX: usize = 4096;

/// One purchase request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseMessage {
    /// The event.
    pub event_id: u64,
    /// The buyer's client id.
    pub client_id: String,
    /// The client's id for this request; a retry reuses it.
    pub request_id: String,
    /// The seat, for a numbered event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<u32>,
    /// The buyer's admission token, when the event has a waiting room (from joining its
    /// queue; see `POST /api/v1/events/{id}/queue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<String>,
}

impl PurchaseMessage {
    /// Parses a message body, saying what is wrong with it.
    pub fn decode(body: &[u8]) -> Result<PurchaseMessage, String> {
        if body.len() > MESSAGE_BYTES_MAX {
            return Err(format!(
                "the message is {} bytes; the limit is {MESSAGE_BYTES_MAX}",
                body.len()
            ));
        }
        serde_json::from_slice(body).map_err(|e| format!("not a purchase request: {e}"))
    }
}

/// The reply to a message the worker could not read: a problem body with `status` 400.
pub fn malformed_reply(detail: &str) -> Value {
    json!({
        "status": 400,
        "type": "https://tix.example/problems/malformed_message",
        "title": "The message is not a purchase request",
        "detail": detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Valid bodies parse with and without a seat; unknown fields, wrong types and oversized
    // bodies are refused with a reason.
    #[test]
    fn decodes_requests_and_explains_refusals() {
        let m = PurchaseMessage::decode(br#"{"event_id":1,"client_id":"a","request_id":"r"}"#)
            .expect("valid");
        assert_eq!(m.seat, None);
        let m =
            PurchaseMessage::decode(br#"{"event_id":1,"client_id":"a","request_id":"r","seat":7}"#)
                .expect("valid");
        assert_eq!(m.seat, Some(7));
        let e = PurchaseMessage::decode(br#"{"event_id":1,"client_id":"a"}"#).unwrap_err();
        assert!(e.contains("request_id"), "{e}");
        let e = PurchaseMessage::decode(br#"{"event_id":"x","client_id":"a","request_id":"r"}"#)
            .unwrap_err();
        assert!(e.contains("event_id") || e.contains("invalid type"), "{e}");
        let e = PurchaseMessage::decode(
            br#"{"event_id":1,"client_id":"a","request_id":"r","price":1}"#,
        )
        .unwrap_err();
        assert!(e.contains("price"), "{e}");
        let e = PurchaseMessage::decode(&vec![b' '; MESSAGE_BYTES_MAX + 1]).unwrap_err();
        assert!(e.contains("limit"), "{e}");
        assert_eq!(malformed_reply("x")["status"], json!(400));
    }
}
