//! Event images through the API and the event form: an organizer uploads a PNG (raw body),
//! the event reads with its `image_url`, the image is served with its type, a strong `ETag`,
//! caching headers and `304 Not Modified`; wrong types (by the bytes, whatever the client says)
//! are 415, SVG is refused by name, one byte over the limit is 413 (the limit itself passes),
//! other organizers are 403, a cancelled event's image is fixed, removal works; the form takes
//! the image as a multipart upload (with errors beside the field), shows it on the event page
//! with its alt text and `og:image`, as a lazy thumbnail in the listing, and removes it.

use reqwest::Method;
use serde_json::json;
use tix_core::EVENT_IMAGE_BYTES_MAX;

use crate::helpers::{Reply, TestApp, png, read, spawn_app, unnumbered};
use crate::pages::Browser;

/// `PUT /events/{id}/image` with a body and a declared content type.
async fn put_image(
    app: &TestApp,
    token: Option<&str>,
    event: u64,
    content_type: &str,
    body: Vec<u8>,
    query: &str,
) -> Reply {
    let mut request = app
        .client
        .put(format!(
            "{}/api/v1/events/{event}/image{query}",
            app.base_url
        ))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read(request.send().await.expect("request sent")).await
}

/// `GET` a path with extra headers, keeping the raw bytes of the body.
async fn get_bytes(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = app.client.get(format!("{}{path}", app.base_url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body read").to_vec();
    (status, headers, body)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

// An organizer uploads a PNG; the event reads with its image; the image comes back with its
// type, ETag and caching headers (long with the current version, short without), and an
// If-None-Match of the ETag is a 304 without a body.
#[tokio::test]
async fn an_uploaded_image_is_served_with_caching_headers() {
    let app = spawn_app().await;
    let olga = app.new_user("olga", Some("organizer")).await;
    let event = app.event_as(&olga.token, &unnumbered(10)).await;
    let before = app.get_event(event).await.expect(200);
    assert_eq!(before["image_url"], json!(null));
    assert_eq!(before["image"], json!(null));
    let bytes = png(64, 36);
    let stored = put_image(
        &app,
        Some(&olga.token),
        event,
        "image/png",
        bytes.clone(),
        "?alt=The%20hall%20by%20night",
    )
    .await
    .expect(200);
    assert_eq!(stored["content_type"], "image/png");
    assert_eq!(
        (stored["width"].as_u64(), stored["height"].as_u64()),
        (Some(64), Some(36))
    );
    assert_eq!(stored["bytes"].as_u64(), Some(bytes.len() as u64));
    assert_eq!(stored["alt"], "The hall by night");
    let url = stored["url"].as_str().expect("url").to_owned();
    let read_back = app.get_event(event).await.expect(200);
    assert_eq!(read_back["image_url"], json!(url));
    assert_eq!(read_back["image"], stored);
    let listed = app.list_events("per_page=100").await.expect(200);
    let in_list = listed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == json!(event))
        .expect("listed");
    assert_eq!(in_list["image_url"], json!(url));

    let (status, headers, body) = get_bytes(&app, &url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, bytes);
    assert_eq!(header(&headers, "content-type"), "image/png");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&headers, "cache-control"),
        "public, max-age=31536000, immutable"
    );
    let etag = header(&headers, "etag").to_owned();
    assert_eq!(
        etag,
        format!("\"{}\"", stored["sha256"].as_str().unwrap()),
        "the ETag is the SHA-256"
    );
    let plain = format!("/api/v1/events/{event}/image");
    let (status, headers, _) = get_bytes(&app, &plain, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "cache-control"), "public, max-age=300");
    let (status, headers, _) = get_bytes(&app, &format!("{plain}?v=0000"), &[]).await;
    assert_eq!(status, 200, "an old version still gets the image");
    assert_eq!(header(&headers, "cache-control"), "public, max-age=300");

    let (status, headers, body) = get_bytes(&app, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "etag"), etag);
    assert!(header(&headers, "cache-control").starts_with("public"));
    let (status, _, _) = get_bytes(&app, &url, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, 200);

    // Replaced: a new version, a new URL and ETag.
    let replaced = put_image(&app, Some(&olga.token), event, "image/png", png(20, 20), "")
        .await
        .expect(200);
    assert_ne!(replaced["url"], json!(url));
    assert_eq!(replaced["alt"], "");
    let (status, _, _) = get_bytes(&app, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 200, "the old ETag no longer matches");
    app.assert_invariants();
}

// The bytes decide the type: text declared as PNG, a GIF, JSON declared as JSON are 415
// `unsupported_image_type`; SVG is 415 `svg_refused` whether declared or sniffed; a damaged
// PNG is 422; nothing is stored.
#[tokio::test]
async fn wrong_types_and_svg_are_refused_by_their_bytes() {
    let app = spawn_app().await;
    let event = app.admin_event(&unnumbered(10)).await;
    let token = Some(app.admin_token.as_str());
    let svg = b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let cases: [(&str, Vec<u8>, u16, &str); 7] = [
        (
            "image/png",
            b"just some text".to_vec(),
            415,
            "unsupported_image_type",
        ),
        (
            "image/png",
            b"GIF89a\x01\x00\x01\x00".to_vec(),
            415,
            "unsupported_image_type",
        ),
        (
            "application/json",
            b"{}".to_vec(),
            415,
            "unsupported_image_type",
        ),
        ("image/svg+xml", svg.to_vec(), 415, "svg_refused"),
        ("image/png", svg.to_vec(), 415, "svg_refused"),
        (
            "image/png",
            png(10, 10)[..20].to_vec(),
            422,
            "image_malformed",
        ),
        ("application/octet-stream", Vec::new(), 422, "image_empty"),
    ];
    for (content_type, body, status, kind) in cases {
        let problem = put_image(&app, token, event, content_type, body, "")
            .await
            .problem(status);
        assert_eq!(
            problem["type"],
            format!("https://tix.invalid/problems/{kind}"),
            "{content_type}: {problem}"
        );
    }
    let none = get_bytes(&app, &format!("/api/v1/events/{event}/image"), &[]).await;
    assert_eq!(none.0, 404, "nothing stored");
    // A JPEG declared as PNG is stored and served as what it is.
    let mut jpeg = vec![
        0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x20,
    ];
    jpeg.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9]);
    let stored = put_image(&app, token, event, "image/png", jpeg, "")
        .await
        .expect(200);
    assert_eq!(stored["content_type"], "image/jpeg");
    assert_eq!(
        (stored["width"].as_u64(), stored["height"].as_u64()),
        (Some(32), Some(16))
    );
}

// The limit from both sides: exactly EVENT_IMAGE_BYTES_MAX is stored, one byte more is 413
// `image_too_large` with `bytes_max`; alt text of 301 characters is a 422 naming `alt`.
#[tokio::test]
async fn the_size_limit_is_checked_from_both_sides() {
    let app = spawn_app().await;
    let event = app.admin_event(&unnumbered(10)).await;
    let token = Some(app.admin_token.as_str());
    let mut big = png(100, 100);
    big.resize(EVENT_IMAGE_BYTES_MAX + 1, 0);
    let problem = put_image(&app, token, event, "image/png", big.clone(), "")
        .await
        .problem(413);
    assert_eq!(
        problem["type"],
        "https://tix.invalid/problems/image_too_large"
    );
    assert_eq!(problem["bytes_max"], json!(EVENT_IMAGE_BYTES_MAX));
    big.pop();
    let stored = put_image(&app, token, event, "image/png", big, "")
        .await
        .expect(200);
    assert_eq!(stored["bytes"], json!(EVENT_IMAGE_BYTES_MAX));
    let long = "a".repeat(301);
    let problem = put_image(
        &app,
        token,
        event,
        "image/png",
        png(2, 2),
        &format!("?alt={long}"),
    )
    .await
    .problem(422);
    assert_eq!(problem["field"], "alt");
    let ok = "a".repeat(300);
    put_image(
        &app,
        token,
        event,
        "image/png",
        png(2, 2),
        &format!("?alt={ok}"),
    )
    .await
    .expect(200);
    app.assert_invariants();
}

// Who may: the organizer and an admin; another organizer and an attendee are 403, no token 401,
// an unknown event 404, a cancelled event 409; the image of a cancelled event stays.
#[tokio::test]
async fn only_the_organizer_or_an_admin_changes_the_image() {
    let app = spawn_app().await;
    let olga = app.new_user("olga", Some("organizer")).await;
    let otto = app.new_user("otto", Some("organizer")).await;
    let ann = app.new_user("ann", None).await;
    let event = app.event_as(&olga.token, &unnumbered(10)).await;
    for token in [&otto.token, &ann.token] {
        let problem = put_image(&app, Some(token), event, "image/png", png(4, 4), "")
            .await
            .problem(403);
        assert_eq!(problem["type"], "https://tix.invalid/problems/forbidden");
        let removal = app
            .request(
                Method::DELETE,
                &format!("/api/v1/events/{event}/image"),
                Some(token),
                None,
            )
            .await;
        removal.problem(403);
    }
    put_image(&app, None, event, "image/png", png(4, 4), "")
        .await
        .problem(401);
    put_image(&app, Some(&olga.token), 4242, "image/png", png(4, 4), "")
        .await
        .problem(404);
    put_image(
        &app,
        Some(&app.admin_token),
        event,
        "image/png",
        png(4, 4),
        "",
    )
    .await
    .expect(200);
    put_image(&app, Some(&olga.token), event, "image/png", png(5, 5), "")
        .await
        .expect(200);
    let cancel = json!({"reason": "Storm"});
    app.request(
        Method::POST,
        &format!("/api/v1/events/{event}/cancel"),
        Some(&olga.token),
        Some(&cancel),
    )
    .await
    .expect(200);
    let problem = put_image(&app, Some(&olga.token), event, "image/png", png(6, 6), "")
        .await
        .problem(409);
    assert_eq!(problem["reason"], "event_cancelled");
    let read_back = app.get_event(event).await.expect(200);
    assert_eq!(read_back["image"]["width"], 5, "kept");
}

// Removal: 204, then the image is gone (404 not_found), the event reads with null; removing
// again is 204 too.
#[tokio::test]
async fn an_image_is_removed() {
    let app = spawn_app().await;
    let event = app.admin_event(&unnumbered(10)).await;
    put_image(
        &app,
        Some(&app.admin_token),
        event,
        "image/webp",
        webp(),
        "",
    )
    .await
    .expect(200);
    let path = format!("/api/v1/events/{event}/image");
    for _ in 0..2 {
        let removed = app
            .request(Method::DELETE, &path, Some(&app.admin_token), None)
            .await;
        assert_eq!(removed.status, 204, "{}", removed.text);
    }
    let gone = app
        .request(Method::GET, &path, None, None)
        .await
        .problem(404);
    assert!(gone["detail"].as_str().unwrap().contains("image"), "{gone}");
    let read_back = app.get_event(event).await.expect(200);
    assert_eq!(read_back["image_url"], json!(null));
    let missing = app
        .request(Method::GET, "/api/v1/events/4242/image", None, None)
        .await
        .problem(404);
    assert!(missing["detail"].as_str().unwrap().contains("event"));
    app.assert_invariants();
}

/// A lossy WebP header of 640 × 360.
fn webp() -> Vec<u8> {
    let payload = [0x30, 0x01, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01];
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&((payload.len() + 12) as u32).to_le_bytes());
    b.extend_from_slice(b"WEBPVP8 ");
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&payload);
    b
}

/// A multipart body: text fields, then the `image` file (possibly none chosen).
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----tixTestBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let (filename, bytes) = file.unwrap_or(("", b""));
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; \
             filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Posts a multipart form as tix's own page would (same origin, the session's CSRF token).
async fn post_multipart(
    b: &mut Browser,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, &[u8])>,
) -> crate::pages::Page {
    let token = b.token_for(path).await.expect("a session");
    let mut fields = fields.to_vec();
    fields.push(("csrf", &token));
    let (content_type, body) = multipart(&fields, file);
    let request = b
        .http
        .post(format!("{}{path}", b.base))
        .header("content-type", content_type)
        .header("origin", b.base.clone())
        .header("sec-fetch-site", "same-origin")
        .body(body);
    b.send(request).await
}

fn event_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("name", "Poster Night"),
        ("description", "With a picture"),
        ("date", "2030-05-01"),
        ("time", "20:00"),
        ("time_zone", "Europe/Vienna"),
        ("venue", "Gallery"),
        ("lat", "48.2"),
        ("lon", "16.37"),
        ("price", "12.00"),
        ("currency", "EUR"),
        ("kind", "ga"),
        ("capacity", "50"),
        ("refundable", "on"),
    ]
}

// The form: an SVG is refused beside the image field (and nothing is created); a bad field
// beside a good file asks for the file again; a PNG creates the event with its image, shown on
// the event page with the alt text and og:image and as a lazy thumbnail with width and height
// in the listing; the edit form shows it, changes its description alone, and removes it.
#[tokio::test]
async fn the_event_form_uploads_shows_and_removes_the_image() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    b.sign_up("olivia", true).await;
    let new_form = b.get("/events/new").await;
    assert!(
        new_form.text.contains("enctype=\"multipart/form-data\"")
            && new_form.text.contains("type=\"file\"")
            && new_form
                .text
                .contains("accept=\"image/png,image/jpeg,image/webp\""),
        "{}",
        new_form.text
    );
    let before = app.event_count().await;
    let mut fields = event_fields();
    fields.push(("image_alt", "The gallery poster"));
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".as_slice();
    let refused = post_multipart(&mut b, "/events/new", &fields, Some(("x.svg", svg))).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("Image: SVG images are not accepted"),
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("id=\"image-error\""),
        "beside the field"
    );
    assert!(
        refused.text.contains("value=\"Poster Night\""),
        "fields kept"
    );
    assert_eq!(app.event_count().await, before, "nothing created");

    let image = png(320, 180);
    let mut bad_lat = fields.clone();
    bad_lat[6] = ("lat", "123");
    let again = post_multipart(&mut b, "/events/new", &bad_lat, Some(("p.png", &image))).await;
    assert_eq!(again.status, 422);
    assert!(
        again.text.contains("Image: choose the file again"),
        "{}",
        again.text
    );

    let created = post_multipart(&mut b, "/events/new", &fields, Some(("p.png", &image))).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let location = created.location.expect("the event page");
    let id: u64 = location.trim_start_matches("/events/").parse().unwrap();
    let event = app.get_event(id).await.expect(200);
    let url = event["image_url"].as_str().expect("an image").to_owned();
    assert_eq!(event["image"]["alt"], "The gallery poster");
    let page = b.get(&location).await;
    assert!(
        page.text.contains(&format!(
            "<img src=\"{url}\" alt=\"The gallery poster\" width=\"320\" height=\"180\""
        )),
        "{}",
        page.text
    );
    assert!(
        page.text.contains(&format!(
            "<meta property=\"og:image\" content=\"{}{url}\">",
            app.base_url
        )),
        "{}",
        page.text
    );
    let home = b.get("/?q=poster").await;
    assert!(
        home.text.contains(&format!(
            "<img class=\"card-thumb\" src=\"{url}\" alt=\"\" width=\"320\" height=\"180\" loading=\"lazy\""
        )),
        "{}",
        home.text
    );

    // The edit form shows the image; a new description alone keeps the bytes.
    let edit_path = format!("/events/{id}/edit");
    let edit = b.get(&edit_path).await;
    assert!(edit.text.contains("Remove the image"), "{}", edit.text);
    assert!(edit.text.contains("value=\"The gallery poster\""));
    let mut edit_fields = event_fields();
    edit_fields.retain(|(k, _)| !matches!(*k, "kind" | "capacity"));
    edit_fields.push(("version", "1"));
    edit_fields.push(("image_alt", "A new description"));
    let described = post_multipart(&mut b, &edit_path, &edit_fields, None).await;
    assert_eq!(described.status, 303, "{}", described.text);
    let event = app.get_event(id).await.expect(200);
    assert_eq!(event["image"]["alt"], "A new description");
    assert_eq!(event["image"]["width"], 320, "same image");

    // Removed with the checkbox.
    let mut remove = edit_fields.clone();
    remove.retain(|(k, _)| *k != "version");
    remove.push(("version", "2"));
    remove.push(("remove_image", "on"));
    let removed = post_multipart(&mut b, &edit_path, &remove, None).await;
    assert_eq!(removed.status, 303, "{}", removed.text);
    assert_eq!(
        app.get_event(id).await.expect(200)["image_url"],
        json!(null)
    );
    let page = b.get(&location).await;
    assert!(!page.text.contains("og:image"), "no preview image");
    app.assert_invariants();
}
