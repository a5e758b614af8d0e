//! The event form's image: the form is posted as `multipart/form-data` so that a file input
//! works without JavaScript (an URL-encoded post, without a file, still works). [`Posted`]
//! splits the body into the text fields and the file; [`check`] decides what the submission
//! asks for ([`ImageChange`]: keep, set, remove, or only a new description) with its errors in
//! the user's words beside the `image` or `image_alt` field; [`apply`] carries it out through
//! the same [`crate::images::set_image`] as the API, after the event's own create or edit has
//! committed.

use axum::http::HeaderMap;
use tix_core::{EventId, ImageUpload, UserId};

use super::form::{FormErrors, Problem};
use crate::AppState;
use crate::error::{ApiError, image_detail};

/// A posted event form: its text fields and the chosen file, if one was chosen.
pub struct Posted {
    /// The text fields, as `(name, value)`.
    pub pairs: Vec<(String, String)>,
    /// The bytes of the `image` file input; `None` when no file was chosen.
    pub file: Option<Vec<u8>>,
}

impl Posted {
    /// Reads a form body, multipart or URL-encoded; `None` when a multipart body is malformed.
    pub fn read(headers: &HeaderMap, body: &[u8]) -> Option<Posted> {
        match crate::multipart::boundary(headers) {
            None => Some(Posted {
                pairs: super::form_pairs(body),
                file: None,
            }),
            Some(boundary) => {
                let parts = crate::multipart::parse(body, &boundary.ok()?).ok()?;
                // A file input with no file chosen sends an empty part with an empty name.
                let file = parts
                    .iter()
                    .find(|p| p.name == "image" && p.filename.is_some())
                    .filter(|p| !(p.data.is_empty() && p.filename.as_deref() == Some("")))
                    .map(|p| p.data.clone());
                Some(Posted {
                    pairs: crate::multipart::text_pairs(&parts),
                    file,
                })
            }
        }
    }
}

/// What a submission asks to do with the event's image.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageChange {
    /// Nothing.
    Keep,
    /// Store this image (replacing any other).
    Set(ImageUpload),
    /// Remove the image.
    Remove,
    /// Keep the image, with this description.
    Describe(String),
}

/// Checks the image fields of a submission into what it asks for. `current_alt` is the stored
/// image's description, when the event has an image. Errors go beside `image` or `image_alt`.
pub fn check(
    file: Option<&[u8]>,
    alt: &str,
    remove: bool,
    current_alt: Option<&str>,
    errors: &mut FormErrors,
) -> ImageChange {
    let alt = match crate::images::validate_alt(alt) {
        Ok(alt) => alt,
        Err(ApiError::Invalid { detail, .. }) => {
            errors.add("image_alt", Problem::Said(detail));
            return ImageChange::Keep;
        }
        Err(_) => {
            errors.add("image_alt", Problem::ControlCharacters);
            return ImageChange::Keep;
        }
    };
    if let Some(bytes) = file {
        return match tix_core::inspect_image(bytes) {
            Ok(_) => ImageChange::Set(ImageUpload {
                bytes: bytes.to_vec(),
                alt,
            }),
            Err(problem) => {
                errors.add("image", Problem::Said(image_detail(&problem)));
                ImageChange::Keep
            }
        };
    }
    match current_alt {
        Some(_) if remove => ImageChange::Remove,
        Some(current) if current != alt => ImageChange::Describe(alt),
        _ => ImageChange::Keep,
    }
}

/// Carries out `change` on `event_id` for `by` (after the event's create or edit committed).
pub async fn apply(
    state: &AppState,
    event_id: EventId,
    by: UserId,
    change: ImageChange,
) -> Result<(), ApiError> {
    let upload = match change {
        ImageChange::Keep => return Ok(()),
        ImageChange::Remove => None,
        ImageChange::Set(upload) => Some(upload),
        ImageChange::Describe(alt) => {
            // The bytes stay as they are; the image is stored again with its new description.
            let bytes = state.node.shared.history()?.event_image(event_id);
            let Some(bytes) = bytes else {
                return Ok(());
            };
            Some(ImageUpload { bytes, alt })
        }
    };
    crate::images::set_image(state, event_id, by, upload).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png() -> Vec<u8> {
        let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        b.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 3, 8, 6, 0, 0, 0, 0, 0, 0, 0]);
        b
    }

    // A file sets, the checkbox removes (only when there is an image), a new description alone
    // re-describes; a bad file or description is an error beside its field and changes nothing.
    #[test]
    fn a_submission_asks_for_one_change() {
        let mut errors = FormErrors::new();
        let set = check(Some(&png()), " Poster ", true, Some("old"), &mut errors);
        assert!(matches!(set, ImageChange::Set(ref u) if u.alt == "Poster"));
        assert_eq!(
            check(None, "old", true, Some("old"), &mut errors),
            ImageChange::Remove
        );
        assert_eq!(check(None, "", true, None, &mut errors), ImageChange::Keep);
        assert_eq!(
            check(None, "new", false, Some("old"), &mut errors),
            ImageChange::Describe("new".into())
        );
        assert_eq!(
            check(None, "old", false, Some("old"), &mut errors),
            ImageChange::Keep
        );
        assert!(errors.is_empty());
        let svg = b"<svg xmlns='http://www.w3.org/2000/svg'/>";
        assert_eq!(
            check(Some(svg), "", false, None, &mut errors),
            ImageChange::Keep
        );
        assert!(
            errors
                .get("image")
                .unwrap()
                .starts_with("Image: SVG images")
        );
        let long = "x".repeat(301);
        check(Some(&png()), &long, false, None, &mut errors);
        assert!(errors.get("image_alt").unwrap().contains("at most 300"));
    }
}
