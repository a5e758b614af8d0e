//! Event time zones: the IANA name (`Europe/Vienna`) an event's times are entered and shown in.
//!
//! The core stores the name only and never does time-zone arithmetic: every instant stays UTC
//! milliseconds, and the edges convert with their zone database (`jiff`). The core checks the
//! name's shape ([`zone_name_is_valid`]) so a stored name is always small and printable; whether
//! the name exists in the database is the edge's check. An event without a stored zone is UTC.

use serde::{Deserialize, Serialize};

/// The longest time-zone name, in bytes (the longest IANA names are about 32).
pub const ZONE_NAME_BYTES_MAX: usize = 64;

/// The zone of an event that has none stored.
pub const ZONE_DEFAULT: &str = "UTC";

/// Returns true for a plausible IANA zone name: 1 to [`ZONE_NAME_BYTES_MAX`] characters, each
/// an ASCII letter, digit or one of `/_+-`.
pub fn zone_name_is_valid(name: &str) -> bool {
    (1..=ZONE_NAME_BYTES_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'+' | b'-'))
}

/// Why [`crate::Command::SetEventZone`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ZoneRejection {
    /// No such event.
    UnknownEvent,
    /// Only the event's organizer or an admin may change its zone.
    NotYourEvent,
    /// The event was cancelled; it no longer changes.
    Cancelled,
    /// The name fails [`zone_name_is_valid`].
    BadZone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_are_checked_for_shape() {
        // Real names pass; empty, too long and odd characters fail; 64 bytes pass, 65 fail.
        for ok in [
            "UTC",
            "Europe/Vienna",
            "America/Port-au-Prince",
            "Etc/GMT+5",
            "America/North_Dakota/New_Salem",
        ] {
            assert!(zone_name_is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "Europe/Vienna ",
            "Europe\\Vienna",
            "Zürich",
            "a;b",
            "../etc",
        ] {
            assert!(!zone_name_is_valid(bad), "{bad}");
        }
        assert!(zone_name_is_valid(&"a".repeat(ZONE_NAME_BYTES_MAX)));
        assert!(!zone_name_is_valid(&"a".repeat(ZONE_NAME_BYTES_MAX + 1)));
    }
}
