//! Event images: the picture an organizer uploads for an event (a poster, the venue).
//!
//! What a sale decides stays small and in memory, history lives on disk: the image's bytes are
//! history (written through [`crate::Changes::images`], kept in redb by the Raft layer, read by
//! the edge when it serves the image), and the hot state keeps only an [`EventImage`]
//! descriptor — format, size, pixel dimensions, SHA-256 and alt text, under a hundred bytes
//! plus the alt text — in its extension section 5 (`Extensions::images`).
//!
//! The format is read from the bytes themselves ([`inspect`]), never from what a client says:
//! PNG, JPEG and WebP are recognized by their magic bytes and their headers give the width and
//! height, without decoding a pixel. SVG is refused (an SVG document can carry script), and so
//! is everything else, as well as animations (an animated image cannot be paused on the page,
//! WCAG 2.2.2) and images larger than [`EVENT_IMAGE_BYTES_MAX`] or with more pixels than
//! [`EVENT_IMAGE_PIXELS_MAX`] (a small file can unpack into gigabytes in a browser). The edge
//! runs the same checks first to answer with the right status; the core runs them again when it
//! applies the command, so a stored descriptor always matches its bytes (invariant 19).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest image, in bytes. It travels in one Raft log entry (replicated to every node)
/// before it reaches disk, so it is kept well below the cluster's RPC body limit; a poster of
/// 1600 × 900 pixels is about 150–400 KiB as JPEG or WebP.
pub const EVENT_IMAGE_BYTES_MAX: usize = 512 * 1024;

/// The longest side of an image, in pixels.
pub const EVENT_IMAGE_SIDE_PIXELS_MAX: u32 = 8_192;

/// The most pixels of an image (width × height): 16 megapixels, about 64 MiB once a browser
/// has decoded it.
pub const EVENT_IMAGE_PIXELS_MAX: u64 = 16 * 1024 * 1024;

/// The longest alt text, in characters.
pub const IMAGE_ALT_CHARS_MAX: usize = 300;

/// How far into a document [`inspect`] looks for `<svg` to name an SVG upload as such.
const SVG_SNIFF_BYTES: usize = 4_096;

/// An image format tix accepts, as identified by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFormat {
    /// PNG (not animated).
    Png,
    /// JPEG (baseline or progressive).
    Jpeg,
    /// WebP (lossy, lossless or extended; not animated).
    Webp,
}

impl ImageFormat {
    /// Returns the media type the image is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
        }
    }
}

/// What [`inspect`] read from an image's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// Its format.
    pub format: ImageFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Why bytes are not an image tix stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageProblem {
    /// No bytes at all.
    Empty,
    /// More than [`EVENT_IMAGE_BYTES_MAX`] bytes.
    TooLarge {
        /// The limit, in bytes.
        bytes_max: u32,
    },
    /// An SVG document: refused, it can carry script.
    Svg,
    /// Not PNG, JPEG or WebP (GIF, HEIC, PDF, text...).
    UnsupportedType,
    /// The magic bytes say PNG, JPEG or WebP, but the header is cut short or malformed.
    Malformed,
    /// An animated PNG or WebP.
    Animated,
    /// Wider or taller than [`EVENT_IMAGE_SIDE_PIXELS_MAX`], or more than
    /// [`EVENT_IMAGE_PIXELS_MAX`] pixels.
    TooManyPixels {
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
    },
}

/// Reads an image's format and dimensions from its bytes, checking every limit: the size,
/// the type (by magic bytes), the header, no animation, the pixel count.
pub fn inspect(bytes: &[u8]) -> Result<ImageInfo, ImageProblem> {
    if bytes.is_empty() {
        return Err(ImageProblem::Empty);
    }
    if bytes.len() > EVENT_IMAGE_BYTES_MAX {
        return Err(ImageProblem::TooLarge {
            bytes_max: EVENT_IMAGE_BYTES_MAX as u32,
        });
    }
    let info = if bytes.starts_with(PNG_MAGIC) {
        png(bytes)?
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg(bytes)?
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        webp(bytes)?
    } else if looks_like_svg(bytes) {
        return Err(ImageProblem::Svg);
    } else {
        return Err(ImageProblem::UnsupportedType);
    };
    let (width, height) = (info.width, info.height);
    if width == 0 || height == 0 {
        return Err(ImageProblem::Malformed);
    }
    let too_many = width > EVENT_IMAGE_SIDE_PIXELS_MAX
        || height > EVENT_IMAGE_SIDE_PIXELS_MAX
        || u64::from(width) * u64::from(height) > EVENT_IMAGE_PIXELS_MAX;
    if too_many {
        return Err(ImageProblem::TooManyPixels { width, height });
    }
    Ok(info)
}

/// Returns the SHA-256 of an image's bytes: its version, and its `ETag` at the edge.
pub fn image_sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Returns true for alt text tix keeps: at most [`IMAGE_ALT_CHARS_MAX`] characters, no control
/// characters (empty means "use the event's name").
pub fn alt_is_valid(alt: &str) -> bool {
    alt.chars().count() <= IMAGE_ALT_CHARS_MAX && !alt.chars().any(char::is_control)
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// PNG: the first chunk is `IHDR` with the width and height (big-endian); an `acTL` chunk
/// before the first `IDAT` makes it an animated PNG.
fn png(bytes: &[u8]) -> Result<ImageInfo, ImageProblem> {
    if bytes.len() < 24 || &bytes[12..16] != b"IHDR" {
        return Err(ImageProblem::Malformed);
    }
    let info = ImageInfo {
        format: ImageFormat::Png,
        width: be32(&bytes[16..20]),
        height: be32(&bytes[20..24]),
    };
    if png_is_animated(bytes) {
        return Err(ImageProblem::Animated);
    }
    Ok(info)
}

/// Walks the PNG chunks up to the first `IDAT`, looking for `acTL`. Each step moves forward
/// by at least 12 bytes, so the walk ends.
fn png_is_animated(bytes: &[u8]) -> bool {
    let mut at = PNG_MAGIC.len();
    while at + 8 <= bytes.len() {
        let length = be32(&bytes[at..at + 4]) as usize;
        match &bytes[at + 4..at + 8] {
            b"acTL" => return true,
            b"IDAT" | b"IEND" => return false,
            _ => {}
        }
        at = match at.checked_add(12).and_then(|a| a.checked_add(length)) {
            Some(next) => next,
            None => return false,
        };
    }
    false
}

/// JPEG: markers up to the first start-of-frame, whose segment has the height and width
/// (big-endian). Each step moves forward by at least one byte, so the walk ends.
fn jpeg(bytes: &[u8]) -> Result<ImageInfo, ImageProblem> {
    let mut at = 2;
    loop {
        // Fill bytes (0xFF) may pad a marker.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        if bytes.get(at) != Some(&0xFF) {
            return Err(ImageProblem::Malformed);
        }
        let marker = *bytes.get(at + 1).ok_or(ImageProblem::Malformed)?;
        at += 2;
        // Markers without a segment: restart markers, TEM, a stray start of image.
        if matches!(marker, 0xD0..=0xD8 | 0x01) {
            continue;
        }
        // End of image or start of scan before any frame header: nothing to read sizes from.
        if matches!(marker, 0xD9 | 0xDA) {
            return Err(ImageProblem::Malformed);
        }
        let length = usize::from(be16(bytes.get(at..at + 2).ok_or(ImageProblem::Malformed)?));
        if length < 2 {
            return Err(ImageProblem::Malformed);
        }
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame {
            let segment = bytes.get(at + 2..at + 7).ok_or(ImageProblem::Malformed)?;
            return Ok(ImageInfo {
                format: ImageFormat::Jpeg,
                height: u32::from(be16(&segment[1..3])),
                width: u32::from(be16(&segment[3..5])),
            });
        }
        at += length;
    }
}

/// WebP: the first chunk is `VP8 ` (lossy: 14-bit sizes after the key frame's start code),
/// `VP8L` (lossless: 14-bit sizes minus one, packed) or `VP8X` (extended: 24-bit sizes minus
/// one, and an animation flag).
fn webp(bytes: &[u8]) -> Result<ImageInfo, ImageProblem> {
    let chunk = bytes.get(12..16).ok_or(ImageProblem::Malformed)?;
    let at = |range: std::ops::Range<usize>| bytes.get(range).ok_or(ImageProblem::Malformed);
    let (width, height) = match chunk {
        b"VP8 " => {
            if at(23..26)? != [0x9D, 0x01, 0x2A] {
                return Err(ImageProblem::Malformed);
            }
            let w = le16(at(26..28)?) & 0x3FFF;
            let h = le16(at(28..30)?) & 0x3FFF;
            (u32::from(w), u32::from(h))
        }
        b"VP8L" => {
            if at(20..21)? != [0x2F] {
                return Err(ImageProblem::Malformed);
            }
            let b = at(21..25)?;
            let bits = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }
        b"VP8X" => {
            let flags = at(20..21)?[0];
            if flags & 0x02 != 0 {
                return Err(ImageProblem::Animated);
            }
            let w = at(24..27)?;
            let h = at(27..30)?;
            (le24(w) + 1, le24(h) + 1)
        }
        _ => return Err(ImageProblem::Malformed),
    };
    Ok(ImageInfo {
        format: ImageFormat::Webp,
        width,
        height,
    })
}

/// An XML or SVG document: after a byte-order mark and white space it starts with `<`, and
/// `<svg` appears near the start.
fn looks_like_svg(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return false;
    };
    if text[start] != b'<' {
        return false;
    }
    let head = &text[start..text.len().min(start + SVG_SNIFF_BYTES)];
    head.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le24(b: &[u8]) -> u32 {
    u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16
}

/// An image to store with an event, as the organizer uploaded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUpload {
    /// The file's bytes (at most [`EVENT_IMAGE_BYTES_MAX`]).
    pub bytes: Vec<u8>,
    /// What the image shows, for people who cannot see it; empty: the event's name is used.
    pub alt: String,
}

/// The hot state's record of an event's image; the bytes are in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventImage {
    /// Its format, read from the bytes.
    pub format: ImageFormat,
    /// Its size in bytes.
    pub bytes: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// SHA-256 of the bytes: the image's version (the edge's `ETag`).
    pub sha256: [u8; 32],
    /// The organizer's alt text; empty: the event's name.
    pub alt: String,
    /// When it was stored, by log time.
    pub set_at_ms: u64,
}

impl EventImage {
    /// Describes `upload` (already inspected as `info`) stored at `now_ms`.
    pub fn of(upload: &ImageUpload, info: ImageInfo, now_ms: u64) -> EventImage {
        EventImage {
            format: info.format,
            bytes: upload.bytes.len() as u32,
            width: info.width,
            height: info.height,
            sha256: image_sha256(&upload.bytes),
            alt: upload.alt.clone(),
            set_at_ms: now_ms,
        }
    }

    /// Returns whether `bytes` are the bytes this descriptor describes: same size, same
    /// SHA-256, and read again, the same format and dimensions.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        let info = inspect(bytes);
        bytes.len() == self.bytes as usize
            && image_sha256(bytes) == self.sha256
            && info.is_ok_and(|i| {
                i.format == self.format && i.width == self.width && i.height == self.height
            })
    }
}

/// Why [`crate::Command::SetEventImage`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageRejection {
    /// No such event.
    UnknownEvent,
    /// Only the event's organizer or an admin may change its image.
    NotYourEvent,
    /// The event was cancelled; it no longer changes.
    Cancelled,
    /// The bytes are not an image tix stores.
    Bad(ImageProblem),
    /// The alt text fails [`alt_is_valid`].
    BadAlt,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PNG header of `width` × `height` (signature and IHDR; enough for [`inspect`]).
    pub fn png_of(width: u32, height: u32) -> Vec<u8> {
        let mut b = PNG_MAGIC.to_vec();
        b.extend_from_slice(&13u32.to_be_bytes());
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&[8, 6, 0, 0, 0]);
        b.extend_from_slice(&[0, 0, 0, 0]); // CRC, not checked
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(b"IDAT");
        b.extend_from_slice(&[0, 0, 0, 0]);
        b
    }

    fn jpeg_of(width: u16, height: u16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        b.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        // A fill byte before the frame marker, as encoders may write.
        b.extend_from_slice(&[0xFF, 0xFF, 0xC2, 0x00, 0x11, 0x08]);
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        b.extend_from_slice(&[0xFF, 0xD9]);
        b
    }

    fn riff(chunk: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = b"RIFF".to_vec();
        b.extend_from_slice(&((payload.len() + 12) as u32).to_le_bytes());
        b.extend_from_slice(b"WEBP");
        b.extend_from_slice(chunk);
        b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn reads_the_dimensions_of_png_jpeg_and_webp() {
        // Each format's header gives its size; the format comes from the magic bytes.
        let png = inspect(&png_of(640, 360)).unwrap();
        assert_eq!(
            (png.format, png.width, png.height),
            (ImageFormat::Png, 640, 360)
        );
        let jpeg = inspect(&jpeg_of(1600, 900)).unwrap();
        assert_eq!(
            (jpeg.format, jpeg.width, jpeg.height),
            (ImageFormat::Jpeg, 1600, 900)
        );
        let lossy = riff(
            b"VP8 ",
            &[0x30, 0x01, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01],
        );
        let lossy = inspect(&lossy).unwrap();
        assert_eq!(
            (lossy.format, lossy.width, lossy.height),
            (ImageFormat::Webp, 640, 360)
        );
        // Lossless: 14 bits of width - 1, then 14 bits of height - 1.
        let bits: u32 = 639 | (359 << 14);
        let mut payload = vec![0x2F];
        payload.extend_from_slice(&bits.to_le_bytes());
        let lossless = inspect(&riff(b"VP8L", &payload)).unwrap();
        assert_eq!((lossless.width, lossless.height), (640, 360));
        let extended = riff(
            b"VP8X",
            &[0x10, 0, 0, 0, 0x7F, 0x02, 0x00, 0x67, 0x01, 0x00],
        );
        let extended = inspect(&extended).unwrap();
        assert_eq!((extended.width, extended.height), (640, 360));
    }

    #[test]
    fn refuses_svg_other_types_and_broken_headers() {
        // SVG is named as such (with or without an XML declaration); HTML, GIF and text are
        // just not supported; a PNG or JPEG cut short is malformed.
        let svg =
            b"\xEF\xBB\xBF  <?xml version=\"1.0\"?>\n<SVG xmlns=\"http://www.w3.org/2000/svg\"/>";
        assert_eq!(inspect(svg), Err(ImageProblem::Svg));
        assert_eq!(inspect(b"<svg onload=alert(1)>"), Err(ImageProblem::Svg));
        assert_eq!(
            inspect(b"<html></html>"),
            Err(ImageProblem::UnsupportedType)
        );
        assert_eq!(
            inspect(b"GIF89a\x01\x00\x01\x00"),
            Err(ImageProblem::UnsupportedType)
        );
        assert_eq!(inspect(b"hello"), Err(ImageProblem::UnsupportedType));
        assert_eq!(inspect(b""), Err(ImageProblem::Empty));
        assert_eq!(inspect(&png_of(10, 10)[..20]), Err(ImageProblem::Malformed));
        assert_eq!(
            inspect(&jpeg_of(10, 10)[..12]),
            Err(ImageProblem::Malformed)
        );
        assert_eq!(
            inspect(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]),
            Err(ImageProblem::Malformed)
        );
        assert_eq!(inspect(&png_of(0, 10)), Err(ImageProblem::Malformed));
        assert_eq!(
            inspect(&riff(b"VP8 ", &[0; 10])),
            Err(ImageProblem::Malformed)
        );
    }

    #[test]
    fn refuses_animations() {
        // An acTL chunk before the image data makes an animated PNG; VP8X's animation flag
        // an animated WebP.
        let mut apng = png_of(10, 10);
        let idat = apng.len() - 12;
        let mut actl = 8u32.to_be_bytes().to_vec();
        actl.extend_from_slice(b"acTL");
        actl.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
        apng.splice(idat..idat, actl);
        assert_eq!(inspect(&apng), Err(ImageProblem::Animated));
        let animated = riff(b"VP8X", &[0x12, 0, 0, 0, 9, 0, 0, 9, 0, 0]);
        assert_eq!(inspect(&animated), Err(ImageProblem::Animated));
    }

    #[test]
    fn limits_are_checked_from_both_sides() {
        // Bytes: the maximum passes, one more does not. Sides and pixels likewise.
        let mut big = png_of(100, 100);
        big.resize(EVENT_IMAGE_BYTES_MAX, 0);
        assert!(inspect(&big).is_ok());
        big.push(0);
        assert_eq!(
            inspect(&big),
            Err(ImageProblem::TooLarge {
                bytes_max: EVENT_IMAGE_BYTES_MAX as u32
            })
        );
        let side = EVENT_IMAGE_SIDE_PIXELS_MAX;
        assert!(inspect(&png_of(side, 2048)).is_ok());
        assert!(matches!(
            inspect(&png_of(side + 1, 1)),
            Err(ImageProblem::TooManyPixels { .. })
        ));
        assert!(inspect(&png_of(4096, 4096)).is_ok());
        assert!(matches!(
            inspect(&png_of(4097, 4096)),
            Err(ImageProblem::TooManyPixels { .. })
        ));
        assert!(alt_is_valid(&"a".repeat(IMAGE_ALT_CHARS_MAX)));
        assert!(!alt_is_valid(&"a".repeat(IMAGE_ALT_CHARS_MAX + 1)));
        assert!(alt_is_valid(""));
        assert!(!alt_is_valid("line\nbreak"));
    }

    #[test]
    fn a_descriptor_matches_only_its_own_bytes() {
        let upload = ImageUpload {
            bytes: png_of(20, 10),
            alt: String::new(),
        };
        let info = inspect(&upload.bytes).unwrap();
        let image = EventImage::of(&upload, info, 5);
        assert!(image.matches(&upload.bytes));
        assert!(!image.matches(&png_of(20, 11)));
        let mut changed = upload.bytes.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert!(!image.matches(&changed));
    }
}
