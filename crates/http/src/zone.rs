//! Time zones at the edge: validating an event's IANA zone name against the bundled zone
//! database (`jiff` with `tzdb-bundle-always`, so no `/usr/share/zoneinfo` is needed), reading a
//! local date and time in a zone (daylight saving time included), and showing an instant as
//! the venue's local time.
//!
//! The core stores only the zone's name (`tix_core::zone`); every instant stays UTC
//! milliseconds. A stored name this build's database does not know (written by a node with a
//! newer database) is shown as UTC rather than failing a page.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::error::ApiError;

/// Zones offered first in the event form's list (any other IANA name may be typed).
pub const COMMON_ZONES: &[&str] = &[
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Vienna",
    "Europe/Zurich",
    "Europe/Amsterdam",
    "Europe/Brussels",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Prague",
    "Europe/Warsaw",
    "Europe/Stockholm",
    "Europe/Helsinki",
    "Europe/Athens",
    "Europe/Istanbul",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
];

/// Returns the zone of a name the database knows and the core accepts; `None` otherwise.
pub fn lookup(name: &str) -> Option<TimeZone> {
    if !tix_core::zone_name_is_valid(name) {
        return None;
    }
    TimeZone::get(name).ok()
}

/// Checks a zone name sent in `field`; returns its canonical spelling (`europe/vienna` is
/// `Europe/Vienna`) or a 422 naming the field.
pub fn validate(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let zone = lookup(name).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!("{name:?} is not a known IANA time zone (like Europe/Vienna or UTC)"),
        )
    })?;
    Ok(zone.iana_name().unwrap_or(name).to_owned())
}

/// The zone to show an event's times in: its stored name, or UTC when the database does not
/// know it.
pub fn of_name(name: &str) -> TimeZone {
    lookup(name).unwrap_or(TimeZone::UTC)
}

/// Why a local date and time names no single instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    /// Not a date and time (`2027-07-01T19:30`).
    #[error("must be a date and time like 2027-07-01T19:30")]
    Malformed,
    /// Skipped by a daylight-saving change: the clocks jump over it.
    #[error(
        "{local} does not exist in {zone}: the clocks jump forward there that night; choose a time outside the gap"
    )]
    Gap {
        /// The local time asked for.
        local: String,
        /// The zone's name.
        zone: String,
    },
}

/// Reads a local date and time (`2027-07-01T19:30` or `...T19:30:00`, no offset) in `zone` as
/// milliseconds since the epoch. A time that occurs twice (clocks set back) is the first of the
/// two; one that never occurs (clocks set forward) is [`LocalTimeError::Gap`].
pub fn local_to_ms(local: &str, zone: &TimeZone) -> Result<i64, LocalTimeError> {
    let has_offset = local.contains(['Z', 'z', '+'])
        || local
            .split_once('T')
            .is_some_and(|(_, time)| time.contains('-'));
    if has_offset || !(16..=19).contains(&local.len()) {
        return Err(LocalTimeError::Malformed);
    }
    let civil: DateTime = local.parse().map_err(|_| LocalTimeError::Malformed)?;
    let ambiguous = zone.to_ambiguous_timestamp(civil);
    if let AmbiguousOffset::Gap { .. } = ambiguous.offset() {
        return Err(LocalTimeError::Gap {
            local: civil.strftime("%Y-%m-%d %H:%M").to_string(),
            zone: zone.iana_name().unwrap_or("UTC").to_owned(),
        });
    }
    let instant = ambiguous.earlier().map_err(|_| LocalTimeError::Malformed)?;
    Ok(instant.as_millisecond())
}

/// Returns an instant as RFC 3339 with the zone's offset there and then:
/// `2027-01-12T19:30:00+01:00`.
pub fn rfc3339_local(ms: i64, zone: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(zone.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_default()
}

/// Returns the date and time fields of an instant in a zone, as the form's inputs want them:
/// (`2027-01-12`, `19:30`).
pub fn local_date_time(ms: i64, zone: &TimeZone) -> (String, String) {
    Timestamp::from_millisecond(ms)
        .map(|t| {
            let z = t.to_zoned(zone.clone());
            (
                z.strftime("%Y-%m-%d").to_string(),
                z.strftime("%H:%M").to_string(),
            )
        })
        .unwrap_or_default()
}

/// Formats an instant for people in a zone, with the weekday and the zone's abbreviation (or
/// its name where the abbreviation is only an offset): `Tue 12 Jan 2027, 19:30 CET`.
pub fn when_local(ms: i64, zone_name: &str) -> String {
    let zone = of_name(zone_name);
    let Ok(t) = Timestamp::from_millisecond(ms) else {
        return String::new();
    };
    let z = t.to_zoned(zone.clone());
    format!("{} {}", z.strftime("%a %-d %b %Y, %H:%M"), label(&z))
}

/// Returns a zone's offset from UTC at an instant, in seconds, and how people name the zone
/// there and then ("CET"), for the booking assistant, which formats its own sentences.
pub fn offset_and_label(ms: i64, zone_name: &str) -> (i32, String) {
    let zone = of_name(zone_name);
    let Ok(t) = Timestamp::from_millisecond(ms) else {
        return (0, "UTC".to_owned());
    };
    let z = t.to_zoned(zone);
    (z.offset().seconds(), label(&z))
}

/// The zone's abbreviation at a zoned instant, or its name where the abbreviation is only an
/// offset ("+04").
fn label(z: &jiff::Zoned) -> String {
    let abbreviation = z.strftime("%Z").to_string();
    if abbreviation.starts_with(|c: char| c.is_ascii_alphabetic()) {
        abbreviation
    } else {
        z.time_zone().iana_name().unwrap_or("UTC").to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vienna() -> TimeZone {
        lookup("Europe/Vienna").expect("bundled")
    }

    #[test]
    fn names_are_checked_against_the_bundled_database() {
        // Known names pass (in canonical spelling); unknown or malformed names are refused.
        assert_eq!(
            validate("time_zone", "Europe/Vienna").unwrap(),
            "Europe/Vienna"
        );
        assert_eq!(validate("time_zone", "UTC").unwrap(), "UTC");
        assert_eq!(
            validate("time_zone", "europe/vienna").unwrap(),
            "Europe/Vienna"
        );
        for bad in ["Europe/Atlantis", "", "Mars/Olympus", "Europe/Vienna;drop"] {
            assert!(validate("time_zone", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn local_times_follow_daylight_saving_time() {
        // Summer in Vienna is UTC+2, winter UTC+1; the spring-forward gap is refused, the
        // autumn fold takes the first (summer-time) instant.
        let summer = local_to_ms("2027-07-01T19:30", &vienna()).unwrap();
        assert_eq!(crate::views::rfc3339(summer), "2027-07-01T17:30:00Z");
        let winter = local_to_ms("2027-01-12T19:30:00", &vienna()).unwrap();
        assert_eq!(crate::views::rfc3339(winter), "2027-01-12T18:30:00Z");
        assert!(matches!(
            local_to_ms("2027-03-28T02:30", &vienna()),
            Err(LocalTimeError::Gap { .. })
        ));
        let fold = local_to_ms("2027-10-31T02:30", &vienna()).unwrap();
        assert_eq!(crate::views::rfc3339(fold), "2027-10-31T00:30:00Z");
        for bad in [
            "2027-07-01T19:30Z",
            "2027-07-01T19:30+01:00",
            "2027-07-01T19:30-05:00",
            "soon",
        ] {
            assert_eq!(
                local_to_ms(bad, &vienna()),
                Err(LocalTimeError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn instants_are_shown_in_local_time_with_weekday_and_zone() {
        // The example, plus a summer date, UTC, and an abbreviation-less zone.
        let ms = local_to_ms("2027-01-12T19:30", &vienna()).unwrap();
        assert_eq!(
            when_local(ms, "Europe/Vienna"),
            "Tue 12 Jan 2027, 19:30 CET"
        );
        assert_eq!(rfc3339_local(ms, &vienna()), "2027-01-12T19:30:00+01:00");
        let summer = local_to_ms("2027-07-01T19:30", &vienna()).unwrap();
        assert_eq!(
            when_local(summer, "Europe/Vienna"),
            "Thu 1 Jul 2027, 19:30 CEST"
        );
        assert_eq!(when_local(ms, "UTC"), "Tue 12 Jan 2027, 18:30 UTC");
        assert_eq!(
            when_local(ms, "Nowhere/Unknown"),
            "Tue 12 Jan 2027, 18:30 UTC"
        );
        assert_eq!(
            when_local(ms, "America/Sao_Paulo"),
            "Tue 12 Jan 2027, 15:30 America/Sao_Paulo"
        );
        assert_eq!(
            local_date_time(ms, &vienna()),
            ("2027-01-12".into(), "19:30".into())
        );
        // What the assistant is given: the offset there and then, and the same label.
        assert_eq!(offset_and_label(ms, "Europe/Vienna"), (3_600, "CET".into()));
        assert_eq!(
            offset_and_label(summer, "Europe/Vienna"),
            (7_200, "CEST".into())
        );
        assert_eq!(offset_and_label(ms, "UTC"), (0, "UTC".into()));
        assert_eq!(
            offset_and_label(ms, "America/Sao_Paulo"),
            (-10_800, "America/Sao_Paulo".into())
        );
    }
}
