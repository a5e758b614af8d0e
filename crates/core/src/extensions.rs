//! The state's tagged sections: what the state has gained since its encoding stopped being a
//! plain list of fields.
//!
//! [`State`](crate::State) is encoded with postcard, which writes fields by position: every new
//! field used to mean one more "older encoding" to read. Everything added since lives in
//! [`Extensions`] instead, written as a list of `(tag, bytes)` sections, each section the
//! postcard encoding of one collection. A section that is missing (a state written before the
//! feature existed) reads as empty; a tag this build does not know is an error, never silently
//! dropped (a node must not forget what a newer node wrote). To add a collection: a field here,
//! a new tag, one line in [`Extensions::sections`] and one in [`Extensions::read_section`].

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::account_mail::AccountMail;
use crate::waiting::WaitingRooms;

/// Section tag of [`Extensions::waiting_rooms`].
const TAG_WAITING_ROOMS: u16 = 1;

/// Section tag of [`Extensions::mail`].
const TAG_ACCOUNT_MAIL: u16 = 2;
use crate::ids::EventId;
use crate::image::EventImage;
use crate::layout::VenueLayout;

/// Section tag of [`Extensions::layouts`].
const TAG_LAYOUTS: u16 = 3;

/// Section tag of [`Extensions::zones`].
const TAG_ZONES: u16 = 4;

/// Section tag of [`Extensions::images`].
const TAG_IMAGES: u16 = 5;

/// The collections added to the state after its field list was frozen, each with its own tag.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extensions {
    /// Every event's waiting room.
    pub waiting_rooms: WaitingRooms,
    /// Email addresses of accounts and open password resets.
    pub(crate) mail: AccountMail,
    /// Tag 3: the venue layouts (named sections) of the events created with one; an event
    /// without a layout reads as one unnamed section.
    pub layouts: BTreeMap<EventId, VenueLayout>,
    /// Tag 4: the IANA time-zone names of the events that have one (`crate::zone`); an event
    /// missing here is UTC.
    pub zones: BTreeMap<EventId, String>,
    /// Tag 5: the descriptors of the events' images (`crate::image`); the bytes are history.
    pub images: BTreeMap<EventId, EventImage>,
}

/// One encoded section: its tag and the postcard bytes of its collection.
type Section = (u16, Vec<u8>);

fn section<T: Serialize>(tag: u16, value: &T) -> Result<Section, postcard::Error> {
    Ok((tag, postcard::to_stdvec(value)?))
}

impl Extensions {
    /// Every section, in tag order.
    fn sections(&self) -> Result<Vec<Section>, postcard::Error> {
        let mut sections = Vec::new();
        if !self.waiting_rooms.is_empty() {
            sections.push(section(TAG_WAITING_ROOMS, &self.waiting_rooms)?);
        }
        // Written only when it holds something, so a state without addresses encodes as before.
        if !self.mail.is_empty() {
            sections.push(section(TAG_ACCOUNT_MAIL, &self.mail)?);
        }
        if !self.layouts.is_empty() {
            sections.push(section(TAG_LAYOUTS, &self.layouts)?);
        }
        if !self.zones.is_empty() {
            sections.push(section(TAG_ZONES, &self.zones)?);
        }
        if !self.images.is_empty() {
            sections.push(section(TAG_IMAGES, &self.images)?);
        }
        Ok(sections)
    }

    /// Fills the collection of `tag` from its bytes; false for a tag this build does not know.
    fn read_section(&mut self, tag: u16, bytes: &[u8]) -> Result<bool, postcard::Error> {
        match tag {
            TAG_WAITING_ROOMS => self.waiting_rooms = postcard::from_bytes(bytes)?,
            TAG_ACCOUNT_MAIL => {
                self.mail = postcard::from_bytes(bytes)?;
                self.mail.rebuild();
            }
            TAG_LAYOUTS => self.layouts = postcard::from_bytes(bytes)?,
            TAG_ZONES => self.zones = postcard::from_bytes(bytes)?,
            TAG_IMAGES => self.images = postcard::from_bytes(bytes)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl Serialize for Extensions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.sections().map_err(S::Error::custom)?.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Extensions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sections = Vec::<Section>::deserialize(d)?;
        let mut ext = Extensions::default();
        for (tag, bytes) in sections {
            let known = ext.read_section(tag, &bytes).map_err(D::Error::custom)?;
            if !known {
                return Err(D::Error::custom(format!(
                    "state section {tag} is unknown to this build (written by a newer tix)"
                )));
            }
        }
        Ok(ext)
    }
}
