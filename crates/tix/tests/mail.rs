//! Mail end to end, with real processes and real sockets on 127.0.0.1: a `tix serve` node sends
//! to the test kit's SMTP sink (`--smtp-url`), or to its outbox folder without one.
//!
//! - A buyer signs up with an address and pays; the order mail arrives with a PDF whose QR code
//!   — drawn as vector squares, recovered from the page's content stream and decoded with
//!   `rqrr` — is the ticket's signed code, which the door page admits (once). The printable
//!   ticket page serves the same code to its owner only. Cancelling the event mails a notice.
//! - Password reset: the mail arrives (an unknown name gets the same answer and no mail), the
//!   link sets a new password under the sign-up rule, once; the old password and the sessions
//!   from before stop working.
//! - Without `--smtp-url` the same order mail lands in `DATA_DIR/outbox` as an `.eml` file.
//! - A mail server that refuses connections leaves the sale answered as usual.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tix_testkit::client::ApiClient;
use tix_testkit::smtp::SmtpSink;
use tix_testkit::spawn::ServerProcess;

const ADMIN_PASSWORD: &str = "admin-password-for-mail";
const MAIL_WAIT: Duration = Duration::from_secs(30);
const GOOD_CARD: &str = "4242424242424242";

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tix"))
}

/// A client that follows no redirects, so every answer (and its cookies) is seen.
fn plain_http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// A browser without a browser: keeps cookies by hand and reads each form's CSRF field.
struct Pages {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Pages {
    fn new(base: &str) -> anyhow::Result<Pages> {
        Ok(Pages {
            http: plain_http()?,
            base: base.to_owned(),
            cookies: BTreeMap::new(),
        })
    }

    fn cookie_header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        pairs.join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await?;
        self.keep_cookies(&response);
        Ok((response.status().as_u16(), response.text().await?))
    }

    async fn get_bytes(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await?;
        Ok((response.status().as_u16(), response.bytes().await?.to_vec()))
    }

    /// Opens `form_page`, then posts `fields` with the page's CSRF token to `action`.
    async fn submit(
        &mut self,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> anyhow::Result<(u16, String)> {
        let (status, page) = self.get(form_page).await?;
        if status != 200 {
            bail!("{form_page}: {status}");
        }
        let csrf = hidden_value(&page, "csrf").context("no csrf field")?;
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("csrf", &csrf);
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        let response = self
            .http
            .post(format!("{}{action}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.finish())
            .send()
            .await?;
        self.keep_cookies(&response);
        Ok((response.status().as_u16(), response.text().await?))
    }

    async fn log_in(&mut self, username: &str, password: &str) -> anyhow::Result<()> {
        let fields = [
            ("username", username),
            ("password", password),
            ("next", "/"),
        ];
        let (status, body) = self.submit("/login", "/login", &fields).await?;
        if status != 303 || !self.cookies.contains_key("tix_session") {
            bail!("page login as {username}: {status} {body}");
        }
        Ok(())
    }
}

/// Returns the value of the hidden input named `name` in a page.
fn hidden_value(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

/// Signs up through the API with an address; returns the answer.
async fn sign_up(base: &str, username: &str, password: &str, email: &str) -> anyhow::Result<Value> {
    let response = plain_http()?
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"username": username, "password": password, "email": email}))
        .send()
        .await?;
    if response.status().as_u16() != 201 {
        bail!(
            "sign-up {username}: {} {}",
            response.status(),
            response.text().await?
        );
    }
    Ok(response.json().await?)
}

/// Holds `quantity` tickets of `event` and pays; returns the order's ticket ids.
async fn buy(api: &ApiClient, event: u64, quantity: u32) -> anyhow::Result<Vec<u64>> {
    let (tickets, _) = buy_with_hold(api, event, quantity).await?;
    Ok(tickets)
}

/// Pays for a hold (again): returns the status.
async fn checkout(api: &ApiClient, hold_id: u64) -> anyhow::Result<u16> {
    let response = api
        .http
        .post(format!("{}/api/v1/holds/{hold_id}/checkout", api.base_url))
        .bearer_auth(&api.token)
        .json(&json!({"card_number": GOOD_CARD}))
        .send()
        .await?;
    Ok(response.status().as_u16())
}

/// Holds and pays; returns the order's ticket ids and the hold.
async fn buy_with_hold(
    api: &ApiClient,
    event: u64,
    quantity: u32,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let hold: Value = api
        .http
        .post(format!("{}/api/v1/events/{event}/holds", api.base_url))
        .bearer_auth(&api.token)
        .json(&json!({"request_id": format!("hold-{event}-{quantity}"), "quantity": quantity}))
        .send()
        .await?
        .json()
        .await?;
    let hold_id = hold["hold_id"]
        .as_u64()
        .with_context(|| format!("hold: {hold}"))?;
    let order: Value = api
        .http
        .post(format!("{}/api/v1/holds/{hold_id}/checkout", api.base_url))
        .bearer_auth(&api.token)
        .json(&json!({"card_number": GOOD_CARD}))
        .send()
        .await?
        .json()
        .await?;
    let tickets = order["tickets"]
        .as_array()
        .with_context(|| format!("order: {order}"))?;
    let ids = tickets
        .iter()
        .filter_map(|t| t.as_u64().or_else(|| t["id"].as_u64()))
        .collect();
    Ok((ids, hold_id))
}

/// Recovers and decodes every QR code of a ticket PDF: the modules drawn inside each
/// `/TixQR BMC … EMC` section (one `x y w h re` per run of dark modules, in module units) are
/// painted onto a bitmap with a quiet zone, which `rqrr` decodes like a camera image.
fn qr_codes_of_pdf(pdf: &[u8]) -> anyhow::Result<Vec<String>> {
    let text = String::from_utf8_lossy(pdf);
    let mark = format!("/{} BMC", tix_mail::QR_MARK);
    let mut codes = Vec::new();
    for section in text.split(mark.as_str()).skip(1) {
        let section = section.split("EMC").next().unwrap_or_default();
        let tokens: Vec<&str> = section.split_whitespace().collect();
        let mut rects = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            if *token == "re" && i >= 4 {
                let n: Vec<f32> = tokens[i - 4..i]
                    .iter()
                    .map(|t| t.parse::<f32>())
                    .collect::<Result<_, _>>()?;
                rects.push((n[0] as usize, n[1] as usize, n[2] as usize, n[3] as usize));
            }
        }
        let modules = rects
            .iter()
            .map(|r| (r.0 + r.2).max(r.1 + r.3))
            .max()
            .context("no modules")?;
        let (quiet, scale) = (4, 6);
        let side = (modules + 2 * quiet) * scale;
        let mut dark = vec![false; side * side];
        for (x, y, w, h) in rects {
            for row in y..y + h {
                for col in x..x + w {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = (col + quiet) * scale + dx;
                            let py = (row + quiet) * scale + dy;
                            dark[py * side + px] = true;
                        }
                    }
                }
            }
        }
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| {
            if dark[y * side + x] { 0 } else { 255 }
        });
        let grids = image.detect_grids();
        let grid = grids.first().context("no QR code found in the drawing")?;
        let (_, content) = grid
            .decode()
            .map_err(|e| anyhow::anyhow!("QR decode: {e:?}"))?;
        codes.push(content);
    }
    Ok(codes)
}

/// Waits for a file named `*.eml` in `dir`.
async fn wait_for_eml(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|e| e == "eml") {
                    return Ok(entry.path());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("no .eml in {} within {MAIL_WAIT:?}", dir.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The whole buyer's story by mail: sign-up with an address, payment, the order mail's PDF
/// whose QR codes the door admits (each once), the printable ticket for its owner only, and the
/// cancellation notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_mail_carries_a_pdf_whose_qr_the_door_admits() -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let server = ServerProcess::start(exe(), ADMIN_PASSWORD, &["--smtp-url", &sink.url()])?;
    let base = server.base_url.clone();
    let http = plain_http()?;
    let admin = ApiClient::login(http.clone(), &base, "admin", ADMIN_PASSWORD).await?;
    let event = admin
        .create_event("Mail Night", json!({"kind": "unnumbered", "capacity": 20}))
        .await?;

    let signed = sign_up(&base, "mailbuyer", "tickets-by-mail-1", "Buyer@Example.org").await?;
    assert_eq!(signed["email"], "Buyer@Example.org");
    let buyer = ApiClient::login(http.clone(), &base, "mailbuyer", "tickets-by-mail-1").await?;
    let me: Value = (http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&buyer.token))
    .send()
    .await?
    .json()
    .await?;
    assert_eq!(me["email"], "Buyer@Example.org");
    let (tickets, hold) = buy_with_hold(&buyer, event, 2).await?;
    assert_eq!(tickets.len(), 2);
    // Paying the same hold again is refused and mails nothing (checked by the count below).
    assert_ne!(checkout(&buyer, hold).await?, 200);

    let mail = sink
        .wait_for(MAIL_WAIT, |m| m.to == ["Buyer@Example.org"])
        .await?;
    let subject = mail.header("subject").unwrap_or_default();
    assert!(subject.contains("Mail Night"), "{subject}");
    let text = mail.text()?;
    assert!(text.contains("Total paid: 100.00 EUR"), "{text}");
    let (name, pdf) = mail.attachment("application/pdf")?;
    assert!(
        name.ends_with(".pdf") && pdf.starts_with(b"%PDF-"),
        "{name}"
    );
    let codes = qr_codes_of_pdf(&pdf)?;
    assert_eq!(codes.len(), 2, "one QR code per ticket");

    // The door admits each code once.
    let mut door = Pages::new(&base)?;
    door.log_in("admin", ADMIN_PASSWORD).await?;
    for code in &codes {
        let (status, page) = door.submit("/door", "/door", &[("code", code)]).await?;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Admitted"), "door verdict for {code}: {page}");
        let (_, again) = door.submit("/door", "/door", &[("code", code)]).await?;
        assert!(
            again.contains("Already checked in"),
            "second scan of {code}"
        );
    }

    // The printable ticket: its owner gets the same code, anyone else a 404.
    let mut owner = Pages::new(&base)?;
    owner.log_in("mailbuyer", "tickets-by-mail-1").await?;
    let (status, page) = owner.get("/tickets").await?;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("/tickets/{}.pdf", tickets[0])),
        "link on the page"
    );
    let (status, single) = owner
        .get_bytes(&format!("/tickets/{}.pdf", tickets[0]))
        .await?;
    assert_eq!(status, 200);
    let single_codes = qr_codes_of_pdf(&single)?;
    assert_eq!(single_codes.len(), 1);
    assert!(codes.contains(&single_codes[0]));
    sign_up(&base, "someoneelse", "other-person-22", "other@example.org").await?;
    let mut stranger = Pages::new(&base)?;
    stranger.log_in("someoneelse", "other-person-22").await?;
    let (status, _) = stranger
        .get_bytes(&format!("/tickets/{}.pdf", tickets[0]))
        .await?;
    assert_eq!(status, 404, "another account's ticket");

    // Cancelling the event mails the buyer.
    let cancel = http
        .post(format!("{base}/api/v1/events/{event}/cancel"))
        .bearer_auth(&admin.token)
        .json(&json!({"reason": "The hall is flooded."}))
        .send()
        .await?;
    assert_eq!(cancel.status().as_u16(), 200, "{}", cancel.text().await?);
    let notice = sink
        .wait_for(MAIL_WAIT, |m| {
            m.header("subject").is_some_and(|s| s.contains("Cancelled"))
        })
        .await?;
    assert_eq!(notice.to, ["Buyer@Example.org"]);
    let text = notice.text()?;
    assert!(
        text.contains("The hall is flooded.") && text.contains("your 2 tickets"),
        "{text}"
    );
    assert_eq!(
        sink.messages().len(),
        2,
        "one order mail and one notice, nothing else"
    );
    Ok(())
}

/// Password reset by email: same answer for an unknown name and no mail for it; the link sets
/// a new password once (the rule checked as at sign-up); old password and old sessions end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_link_works_once() -> anyhow::Result<()> {
    let sink = SmtpSink::start().await?;
    let server = ServerProcess::start(exe(), ADMIN_PASSWORD, &["--smtp-url", &sink.url()])?;
    let base = server.base_url.clone();
    let http = plain_http()?;
    sign_up(
        &base,
        "forgetful",
        "first-password-1",
        "forgetful@example.org",
    )
    .await?;
    let old_session =
        ApiClient::login(http.clone(), &base, "forgetful", "first-password-1").await?;

    let mut pages = Pages::new(&base)?;
    let (status, unknown) = pages
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("who", "nobody-here")],
        )
        .await?;
    assert_eq!(status, 200);
    assert!(unknown.contains("id=\"reset-sent\""));
    let (status, known) = pages
        .submit(
            "/password/forgot",
            "/password/forgot",
            &[("who", "FORGETFUL@example.org")],
        )
        .await?;
    assert_eq!(status, 200);
    assert!(known.contains("id=\"reset-sent\""));

    let mail = sink
        .wait_for(MAIL_WAIT, |m| m.to == ["forgetful@example.org"])
        .await?;
    let text = mail.text()?;
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/password/reset?token="))
        .with_context(|| format!("no link in {text}"))?;
    let path = link
        .strip_prefix(&base)
        .with_context(|| format!("{link} not at {base}"))?;
    let token = path.split("token=").nth(1).unwrap_or_default().to_owned();

    let weak = [
        ("token", token.as_str()),
        ("password", "12345678"),
        ("confirm", "12345678"),
    ];
    let (status, page) = pages.submit(path, "/password/reset", &weak).await?;
    assert_eq!(status, 422);
    assert!(
        page.contains("id=\"password-error\""),
        "the rule, beside the field"
    );
    let good = [
        ("token", token.as_str()),
        ("password", "second-password-2"),
        ("confirm", "second-password-2"),
    ];
    let (status, page) = pages.submit(path, "/password/reset", &good).await?;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"reset-done\""));

    // The link works once.
    let (status, page) = pages.get(path).await?;
    assert_eq!(status, 404);
    assert!(page.contains("id=\"reset-invalid\""));
    let csrf = pages.cookies.get("tix_csrf").cloned().unwrap_or_default();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &csrf)
        .append_pair("token", &token)
        .append_pair("password", "third-password-3")
        .append_pair("confirm", "third-password-3")
        .finish();
    let again = plain_http()?
        .post(format!("{base}/password/reset"))
        .header(reqwest::header::COOKIE, pages.cookie_header())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await?;
    assert_eq!(again.status().as_u16(), 404, "a second use is refused");

    // Old password refused, new accepted, the session from before is over.
    let login = |password: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let response = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"username": "forgetful", "password": password}))
                .send()
                .await?;
            anyhow::Ok(response.status().as_u16())
        }
    };
    assert_eq!(login("first-password-1").await?, 401);
    assert_eq!(login("third-password-3").await?, 401);
    assert_eq!(login("second-password-2").await?, 200);
    let me = (http
        .get(format!("{base}/api/v1/me"))
        .bearer_auth(&old_session.token))
    .send()
    .await?;
    assert_eq!(
        me.status().as_u16(),
        401,
        "sessions from before the reset end"
    );
    assert_eq!(sink.messages().len(), 1, "no mail for the unknown name");
    Ok(())
}

/// Without `--smtp-url`, the order mail is written to the outbox folder in the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_the_order_mail_goes_to_the_outbox() -> anyhow::Result<()> {
    let server = ServerProcess::start(exe(), ADMIN_PASSWORD, &[])?;
    let base = server.base_url.clone();
    let http = plain_http()?;
    let admin = ApiClient::login(http.clone(), &base, "admin", ADMIN_PASSWORD).await?;
    let event = admin
        .create_event("Outbox Gig", json!({"kind": "unnumbered", "capacity": 5}))
        .await?;
    sign_up(
        &base,
        "outboxer",
        "outbox-password-1",
        "outboxer@example.org",
    )
    .await?;
    let buyer = ApiClient::login(http.clone(), &base, "outboxer", "outbox-password-1").await?;
    buy(&buyer, event, 1).await?;
    let eml = wait_for_eml(&server.data_dir.join("outbox")).await?;
    let message = std::fs::read_to_string(&eml)?;
    assert!(message.contains("To: outboxer@example.org"), "{message}");
    assert!(message.contains("Content-Type: application/pdf"));
    Ok(())
}

/// A mail server that refuses connections never turns a sale into an error: the order is
/// answered as usual, and the failed send is logged and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_mail_server_does_not_fail_the_sale() -> anyhow::Result<()> {
    let dead = format!("smtp://127.0.0.1:{}", tix_testkit::spawn::free_port()?);
    let server = ServerProcess::start(exe(), ADMIN_PASSWORD, &["--smtp-url", &dead])?;
    let base = server.base_url.clone();
    let http = plain_http()?;
    let admin = ApiClient::login(http.clone(), &base, "admin", ADMIN_PASSWORD).await?;
    let event = admin
        .create_event("No Mail", json!({"kind": "unnumbered", "capacity": 5}))
        .await?;
    sign_up(
        &base,
        "unlucky",
        "unlucky-password-1",
        "unlucky@example.org",
    )
    .await?;
    let buyer = ApiClient::login(http.clone(), &base, "unlucky", "unlucky-password-1").await?;
    let tickets = buy(&buyer, event, 1).await?;
    assert_eq!(tickets.len(), 1, "the sale went through");
    let deadline = Instant::now() + MAIL_WAIT;
    let failed = r#"tix_mail_total{result="failed"}"#;
    loop {
        let metrics = admin.metrics_text().await?;
        if tix_testkit::client::metric_value(&metrics, failed) == Some(1.0) {
            break;
        }
        if Instant::now() > deadline {
            bail!("no failed send counted:\n{metrics}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
