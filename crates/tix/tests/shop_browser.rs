//! The web shop in a real browser (the booking assistant included): Debian's Chromium, headless, driven through chromedriver
//! (WebDriver, with fantoccini) against a real `tix serve` on 127.0.0.1. Every page visited is
//! saved as a PNG in `target/tmp/screenshots/` (not committed) to be looked at. One test
//! sweeps every page at a laptop's and a phone's width with axe-core (vendored in
//! `vendor/axe-core/`, injected through WebDriver, never served by tix) and checks what axe
//! does not: the skip link and its focus ring, the seat states without colour, no page wider
//! than a phone.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` the tests say so and skip, unless
//! `TIX_REQUIRE_SERVICES=1` (CI), where that is a failure. They take turns: one browser at a
//! time on two cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::require::{self, Browser};
use tix_testkit::spawn::{ServerProcess, free_port};
use tokio::sync::Mutex;

const ADMIN_PASSWORD: &str = "browser-admin-pass";
const PASSWORD: &str = "browser-user-pass-1";
/// How long a page may take to show what a test waits for.
const WAIT: Duration = Duration::from_secs(15);

static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

/// A tix server, a chromedriver and the browser sessions of one test.
struct Shop {
    server: ServerProcess,
    browser: Browser,
    driver: Child,
    driver_url: String,
    _profiles: Vec<tempfile::TempDir>,
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Shop {
    async fn start(browser: Browser) -> anyhow::Result<Shop> {
        let exe = Path::new(env!("CARGO_BIN_EXE_tix"));
        let server = ServerProcess::start(exe, ADMIN_PASSWORD, &[])?;
        let port = free_port()?;
        let driver = Command::new(&browser.chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not listen on {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        std::fs::create_dir_all(screenshots_dir())?;
        Ok(Shop {
            server,
            browser,
            driver,
            driver_url: format!("http://127.0.0.1:{port}"),
            _profiles: Vec::new(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }

    /// Opens a new headless browser window (its own profile: its own cookies).
    async fn browser(&mut self) -> anyhow::Result<Client> {
        self.browser_with(&[]).await
    }

    /// Opens a new headless browser window with these extra Chromium flags.
    async fn browser_with(&mut self, extra: &[String]) -> anyhow::Result<Client> {
        let profile = tempfile::tempdir()?;
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            // A camera for the door's scanner: a generated test pattern, allowed without asking.
            "--use-fake-device-for-media-stream".into(),
            "--use-fake-ui-for-media-stream".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend_from_slice(extra);
        self._profiles.push(profile);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": self.browser.chromium.display().to_string(), "args": args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.driver_url)
            .await
            .context("a WebDriver session")?;
        Ok(client)
    }

    /// The API as the admin, to set up state quickly.
    async fn admin_api(&self) -> anyhow::Result<ApiClient> {
        ApiClient::login(
            http_client(4)?,
            &self.server.base_url,
            "admin",
            ADMIN_PASSWORD,
        )
        .await
    }
}

/// Saves what the browser shows as `NAME.png`.
async fn shot(c: &Client, name: &str) -> anyhow::Result<()> {
    let png = c.screenshot().await?;
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png)?;
    Ok(())
}

async fn fill(c: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let e = c
        .find(Locator::Css(css))
        .await
        .with_context(|| css.to_owned())?;
    e.clear().await?;
    e.send_keys(text).await?;
    Ok(())
}

async fn click(c: &Client, css: &str) -> anyhow::Result<()> {
    c.find(Locator::Css(css))
        .await
        .with_context(|| css.to_owned())?
        .click()
        .await?;
    Ok(())
}

async fn text_of(c: &Client, css: &str) -> anyhow::Result<String> {
    Ok(c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(css))
        .await
        .with_context(|| css.to_owned())?
        .text()
        .await?)
}

/// Waits until the browser's address contains `needle` (a form's GET has been answered, so
/// the elements found next belong to the new page, not the one that was left).
async fn wait_for_url(c: &Client, needle: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let url = c.current_url().await?;
        if url.as_str().contains(needle) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the address never contained {needle:?}; it is {url}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the page's HTML contains `needle`.
async fn wait_for_text(c: &Client, needle: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let html = c.source().await?;
        if html.contains(needle) {
            return Ok(html);
        }
        if Instant::now() > deadline {
            bail!(
                "the page never showed {needle:?}; it shows:\n{}",
                &html[..html.len().min(3000)]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page's HTML contains one of `needles`.
async fn wait_for_any(c: &Client, needles: &[&str]) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let html = c.source().await?;
        if needles.iter().any(|n| html.contains(n)) {
            return Ok(html);
        }
        if Instant::now() > deadline {
            bail!("the page never showed any of {needles:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sign_up(
    shop: &Shop,
    c: &Client,
    username: &str,
    organizer: bool,
    name: &str,
) -> anyhow::Result<()> {
    c.goto(&shop.url("/signup")).await?;
    fill(c, "#username", username).await?;
    fill(c, "#password", PASSWORD).await?;
    if organizer {
        click(c, "input[name=organizer]").await?;
    }
    shot(c, name).await?;
    click(c, "form.stack button[type=submit]").await?;
    wait_for_text(c, "Log out").await?;
    Ok(())
}

/// A poster-like PNG of `width` × `height`: a diagonal gradient with bands.
fn poster_png(width: u32, height: u32) -> Vec<u8> {
    tix_testkit::png::rgb(width, height, |x, y| {
        let t = (x + y) * 255 / (width + height);
        let band = if (x / 24 + y / 24) % 2 == 0 { 0 } else { 40 };
        [(40 + t / 2) as u8, (60 + band) as u8, (200 - t / 2) as u8]
    })
}

/// Stores `png` as event `event`'s image through the API as `api`'s account.
async fn set_image(api: &ApiClient, event: u64, png: Vec<u8>, alt: &str) -> anyhow::Result<()> {
    let alt: String = alt
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = api
        .http
        .put(format!(
            "{}/api/v1/events/{event}/image?alt={alt}",
            api.base_url
        ))
        .bearer_auth(&api.token)
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 200, "set image: {}", r.text().await?);
    Ok(())
}

/// Whether the image `css` finds has loaded and decoded: its natural width, 0 when not.
async fn image_width(c: &Client, css: &str) -> anyhow::Result<u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let width = c
            .execute(
                "const i = document.querySelector(arguments[0]); \
                 return i && i.complete ? i.naturalWidth : 0;",
                vec![json!(css)],
            )
            .await?
            .as_u64()
            .unwrap_or(0);
        if width > 0 || Instant::now() > deadline {
            return Ok(width);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a numbered event through the API; returns its id.
async fn seated_event(shop: &Shop, name: &str, rows: u32, per_row: u32) -> anyhow::Result<u64> {
    let api = shop.admin_api().await?;
    seated_event_by(shop, &api, name, rows, per_row).await
}

/// Creates a numbered event through the API as `api`'s account; returns its id.
async fn seated_event_by(
    shop: &Shop,
    api: &ApiClient,
    name: &str,
    rows: u32,
    per_row: u32,
) -> anyhow::Result<u64> {
    let body = json!({
        "name": name, "description": "Browser test", "starts_at": "2031-06-01T19:30:00Z",
        "venue": {"name": "Test Hall", "lat": 48.2, "lon": 16.37},
        "price_cents": 3000, "currency": "EUR",
        "inventory": {"kind": "numbered", "rows": rows, "seats_per_row": per_row},
    });
    let r = api
        .http
        .post(format!("{}/api/v1/events", shop.server.base_url))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(
        r.status().as_u16() == 201,
        "create event: {}",
        r.text().await?
    );
    let v: Value = r.json().await?;
    v["id"].as_u64().context("event id")
}

/// Holds `seat` on the event page and pays with `card`; returns the page source after paying.
async fn buy_seat(
    shop: &Shop,
    c: &Client,
    event: u64,
    seat: u32,
    card: &str,
    prefix: &str,
) -> anyhow::Result<String> {
    c.goto(&shop.url(&format!("/events/{event}"))).await?;
    wait_for_text(c, "Choose your seats").await?;
    click(c, &format!("label[data-seat=\"{seat}\"]")).await?;
    wait_for_text(c, "Chosen: ").await?;
    shot(c, &format!("{prefix}-seat-chosen")).await?;
    click(c, "#order-now").await?;
    wait_for_text(c, "Checkout").await?;
    text_of(c, "#countdown").await?;
    shot(c, &format!("{prefix}-checkout")).await?;
    fill(c, "#card_number", card).await?;
    click(c, "#pay").await?;
    // The checkout page is replaced by the confirmation or by the "released" page.
    let html = wait_for_any(c, &["Order confirmed", "Payment declined", "This hold"]).await?;
    shot(c, &format!("{prefix}-after-pay")).await?;
    Ok(html)
}

/// Sign up → search and filter → buy general admission → the ticket with its QR code; and the
/// phone-sized home page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_search_buy_general_admission_and_see_the_qr_ticket() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let c = shop.browser().await?;
    c.goto(&shop.url("/")).await?;
    wait_for_text(&c, "Upcoming events").await?;
    shot(&c, "home").await?;
    sign_up(&shop, &c, "gina", false, "signup").await?;
    // Search by words, then by a date range that excludes everything, then one that includes.
    fill(&c, "#q", "open air").await?;
    click(&c, "form.search button").await?;
    let html = wait_for_text(&c, "1 event").await?;
    assert!(html.contains("Summer Open Air") && !html.contains("Beethoven"));
    shot(&c, "search").await?;
    c.goto(&shop.url("/?q=&from=1990-01-01&to=1990-12-31"))
        .await?;
    wait_for_text(&c, "No events match").await?;
    shot(&c, "search-empty").await?;
    c.goto(&shop.url("/?q=open+air&from=2000-01-01&to=2100-01-01"))
        .await?;
    wait_for_text(&c, "Summer Open Air").await?;
    click(&c, ".card-link").await?;
    wait_for_text(&c, "show on map").await?;
    let map = c
        .find(Locator::LinkText("show on map"))
        .await?
        .attr("href")
        .await?
        .unwrap_or_default();
    assert!(
        map.starts_with("https://www.openstreetmap.org/?mlat="),
        "{map}"
    );
    shot(&c, "event-general-admission").await?;
    c.find(Locator::Css("#quantity"))
        .await?
        .select_by_value("2")
        .await?;
    click(&c, "#order-now").await?;
    wait_for_text(&c, "Your tickets are held").await?;
    shot(&c, "checkout-general-admission").await?;
    let checkout = hold_path(&c).await?;
    fill(&c, "#card_number", "4242 4242 4242 4242").await?;
    click(&c, "#pay").await?;
    let html = wait_for_text(&c, "Order confirmed").await?;
    assert!(html.contains("2 tickets"), "{html}");
    shot(&c, "confirmation").await?;
    // The checkout's address, reopened after paying: the order, not "back on sale".
    c.goto(&shop.url(&checkout)).await?;
    let html = wait_for_text(&c, "<h1>Paid — order #").await?;
    assert!(
        html.contains(
            "General admission</th><td class=\"num\">45.00 EUR</td><td class=\"num\">2</td>"
        ) && html.contains("/tickets"),
        "{html}"
    );
    shot(&c, "checkout-paid").await?;
    click(&c, "#to-tickets").await?;
    let html = wait_for_text(&c, "My tickets").await?;
    assert_eq!(
        html.matches("class=\"qr\"").count(),
        2,
        "two tickets with QR codes"
    );
    assert_eq!(html.matches("TIX2-").count(), 2);
    shot(&c, "my-tickets").await?;
    c.set_window_size(390, 844).await?;
    c.goto(&shop.url("/")).await?;
    wait_for_text(&c, "Upcoming events").await?;
    shot(&c, "home-phone").await?;
    c.goto(&shop.url("/no-such-page")).await?;
    wait_for_text(&c, "Not found").await?;
    shot(&c, "error-404-phone").await?;
    c.close().await?;
    Ok(())
}

/// Two browsers on one numbered event: one holds and buys a seat, the other sees it turn
/// sold without reloading (Server-Sent Events). Then a declined card keeps its hold for a good
/// card, and a refund puts the bought seat back on sale — both visible live in the other browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_buyers_seat_turns_sold_live_and_declines_and_refunds_free_seats()
-> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let event = seated_event(&shop, "Live Seat Test", 4, 8).await?;
    let buyer = shop.browser().await?;
    let watcher = shop.browser().await?;
    sign_up(&shop, &buyer, "hank", false, "signup-hank").await?;
    watcher.goto(&shop.url(&format!("/events/{event}"))).await?;
    wait_for_text(&watcher, "Choose your seats").await?;
    shot(&watcher, "seatmap-before").await?;
    let seat_class = |n: u32| {
        let w = watcher.clone();
        async move {
            w.find(Locator::Css(&format!("label[data-seat=\"{n}\"]")))
                .await?
                .attr("class")
                .await
                .map(|c| c.unwrap_or_default())
                .map_err(anyhow::Error::from)
        }
    };
    let wait_class = |n: u32, want: &'static str| {
        let seat_class = &seat_class;
        async move {
            let deadline = Instant::now() + WAIT;
            loop {
                let class = seat_class(n).await?;
                if class == format!("seat {want}") {
                    return anyhow::Ok(());
                }
                if Instant::now() > deadline {
                    bail!("seat {n} stayed {class:?}, expected {want}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(seat_class(5).await?, "seat free");
    let html = buy_seat(&shop, &buyer, event, 5, "4242424242424242", "live").await?;
    assert!(html.contains("Order confirmed"), "{html}");
    wait_class(5, "sold").await?;
    let available = text_of(&watcher, "#available").await?;
    assert_eq!(available, "31", "the counts update live too");
    shot(&watcher, "seatmap-after-other-buyer").await?;

    // A declined card keeps the hold (the seat stays held), and the good card on the same
    // hold buys it.
    let html = buy_seat(&shop, &buyer, event, 6, "4000 0000 0000 0002", "declined").await?;
    assert!(
        html.contains("Payment declined") && html.contains("try another card"),
        "{html}"
    );
    wait_class(6, "held").await?;
    fill(&buyer, "#card_number", "4242 4242 4242 4242").await?;
    click(&buyer, "#pay").await?;
    wait_for_text(&buyer, "Order confirmed").await?;
    shot(&buyer, "declined-then-paid").await?;
    wait_class(6, "sold").await?;

    // A refund: the sold seat goes back on sale at once.
    buyer.goto(&shop.url("/tickets")).await?;
    wait_for_text(&buyer, "seat 5").await?;
    shot(&buyer, "tickets-before-refund").await?;
    // Tickets are listed newest first: seat 6, then seat 5.
    let refund_links = buyer.find_all(Locator::Css("a.refund")).await?;
    anyhow::ensure!(refund_links.len() == 2, "a refund link per ticket");
    refund_links[1].click().await?;
    // The refund asks first, naming the ticket and the amount.
    let html = wait_for_text(&buyer, "Refund this ticket?").await?;
    assert!(
        html.contains("seat 5") && html.contains("30.00 EUR"),
        "{html}"
    );
    shot(&buyer, "refund-confirm").await?;
    click(&buyer, "#confirm-refund").await?;
    wait_for_text(&buyer, "Refund receipt").await?;
    wait_for_text(&buyer, "Refunded").await?;
    shot(&buyer, "tickets-after-refund").await?;
    wait_class(5, "free").await?;
    shot(&watcher, "seatmap-after-refund").await?;
    buyer.close().await?;
    watcher.close().await?;
    Ok(())
}

/// An organizer creates an event with a seat layout (after a field error), it appears on the
/// home page and has its dashboard; an attendee opening an organizer page gets 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_creates_a_seated_event_and_an_attendee_gets_403() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let c = shop.browser().await?;
    sign_up(&shop, &c, "ivy", true, "signup-organizer").await?;
    c.goto(&shop.url("/")).await?;
    click(&c, "#create-event").await?;
    wait_for_text(&c, "Create an event").await?;
    fill(&c, "#name", "Browser Made Gala").await?;
    fill(&c, "#description", "A seated evening.").await?;
    c.execute(
        "document.getElementById('date').value = '2032-03-04';",
        vec![],
    )
    .await?;
    fill(&c, "#venue", "Opera House").await?;
    fill(&c, "#lat", "95").await?;
    fill(&c, "#lon", "16.37").await?;
    fill(&c, "#price", "42.50").await?;
    click(&c, "input[name=kind][value=seated]").await?;
    fill(&c, "#rows", "5").await?;
    fill(&c, "#seats_per_row", "10").await?;
    fill(&c, "#blocked", "1, 10").await?;
    // An image for the event: a file chosen in the form, described for screen readers.
    let poster = screenshots_dir().join("upload-poster.png");
    std::fs::write(&poster, poster_png(480, 270))?;
    let choose = |c: Client| {
        let path = poster.display().to_string();
        async move {
            let input = c.find(Locator::Css("#image")).await?;
            input.send_keys(&path).await?;
            anyhow::Ok(())
        }
    };
    choose(c.clone()).await?;
    fill(&c, "#image_alt", "The opera house lit up at night").await?;
    shot(&c, "create-event-form").await?;
    click(&c, "#save").await?;
    let html = wait_for_text(&c, "Latitude: a number from −90 to 90").await?;
    assert!(html.contains("aria-invalid=\"true\""));
    // A form sent back keeps no file: the page says to choose it again, beside the field.
    assert!(html.contains("Image: choose the file again"), "{html}");
    shot(&c, "create-event-error").await?;
    fill(&c, "#lat", "48.2").await?;
    choose(c.clone()).await?;
    click(&c, "#save").await?;
    let html = wait_for_text(&c, "Choose your seats").await?;
    assert_eq!(html.matches("class=\"seat blocked\" title=").count(), 2);
    assert!(
        html.contains("alt=\"The opera house lit up at night\" width=\"480\" height=\"270\""),
        "{html}"
    );
    assert!(
        html.contains("property=\"og:image\""),
        "a link preview image"
    );
    assert_eq!(
        image_width(&c, "#event-image").await?,
        480,
        "the image shows"
    );
    shot(&c, "created-event").await?;
    c.goto(&shop.url("/")).await?;
    let html = wait_for_text(&c, "Browser Made Gala").await?;
    assert!(
        html.contains("class=\"card-thumb\""),
        "a thumbnail in the listing"
    );
    assert!(html.contains("loading=\"lazy\""));
    shot(&c, "home-with-new-event").await?;
    c.goto(&shop.url("/organizer")).await?;
    click(&c, "table a[href^=\"/organizer/events/\"]").await?;
    wait_for_text(&c, "Tickets sold over time").await?;
    shot(&c, "dashboard").await?;
    c.close().await?;

    let attendee = shop.browser().await?;
    sign_up(&shop, &attendee, "jack", false, "signup-attendee").await?;
    attendee.goto(&shop.url("/organizer")).await?;
    let html = wait_for_text(&attendee, "Not allowed").await?;
    assert!(html.contains("403"));
    shot(&attendee, "error-403").await?;
    attendee.close().await?;
    Ok(())
}

/// How one field shows its error, read from the page: the message beside the input (same
/// box, just above it), the input marked invalid and described by the message, and the value.
#[derive(Debug)]
struct FieldShown {
    message: String,
    described_by_message: bool,
    invalid: bool,
    beside: bool,
    value: String,
}

/// Reads how the field with input id `id` shows its error (see [`FieldShown`]).
async fn field_shown(c: &Client, id: &str) -> anyhow::Result<FieldShown> {
    let v = c
        .execute(
            r#"const id = arguments[0];
            const input = document.getElementById(id);
            const message = document.getElementById(id + "-error");
            if (!input || !message) return null;
            const described = (input.getAttribute("aria-describedby") || "").split(/\s+/);
            const m = message.getBoundingClientRect(), i = input.getBoundingClientRect();
            return {
              message: message.textContent.trim(),
              described: described.includes(message.id),
              invalid: input.getAttribute("aria-invalid") === "true",
              beside: input.parentElement.contains(message) && i.top >= m.bottom - 1
                && i.top - m.bottom < 40 && Math.abs(i.left - m.left) < 40,
              value: input.value,
            };"#,
            vec![json!(id)],
        )
        .await?;
    anyhow::ensure!(!v.is_null(), "no input #{id} with a message #{id}-error");
    Ok(FieldShown {
        message: v["message"].as_str().unwrap_or_default().to_owned(),
        described_by_message: v["described"] == json!(true),
        invalid: v["invalid"] == json!(true),
        beside: v["beside"] == json!(true),
        value: v["value"].as_str().unwrap_or_default().to_owned(),
    })
}

/// The summary of a form's errors: whether it has the focus, and its links (target, text).
async fn error_summary(c: &Client) -> anyhow::Result<(bool, Vec<(String, String)>)> {
    let v = c
        .execute(
            r#"const s = document.getElementById("form-errors");
            if (!s) return null;
            return { focused: document.activeElement === s,
                     links: Array.from(s.querySelectorAll("a")).map(a =>
                       [a.getAttribute("href"), a.textContent.trim()]) };"#,
            vec![],
        )
        .await?;
    anyhow::ensure!(!v.is_null(), "no error summary");
    let links = v["links"]
        .as_array()
        .context("links")?
        .iter()
        .map(|l| {
            let s = |i: usize| l[i].as_str().unwrap_or_default().to_owned();
            (s(0), s(1))
        })
        .collect();
    Ok((v["focused"] == json!(true), links))
}

/// The event form with three bad fields (latitude out of range, a price that is not a number,
/// rows that are not a whole number) answers with all three at once: each message in plain
/// words beside its field, the input marked invalid and described by it, what was typed kept,
/// and a focused summary linking to each field; following a link focuses its field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_form_shows_every_bad_field_beside_it_at_once() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let c = shop.browser().await?;
    sign_up(&shop, &c, "rosa", true, "signup-form-errors").await?;
    c.goto(&shop.url("/events/new")).await?;
    wait_for_text(&c, "Create an event").await?;
    fill(&c, "#name", "Three Mistakes Gala").await?;
    c.execute(
        "document.getElementById('date').value = '2032-03-04';",
        vec![],
    )
    .await?;
    fill(&c, "#venue", "Opera House").await?;
    fill(&c, "#lat", "95").await?;
    fill(&c, "#lon", "16.37").await?;
    fill(&c, "#price", "twelve").await?;
    click(&c, "input[name=kind][value=seated]").await?;
    fill(&c, "#rows", "5.5").await?;
    fill(&c, "#seats_per_row", "10").await?;
    click(&c, "#save").await?;
    wait_for_text(&c, "3 things to fix").await?;
    shot(&c, "form-errors-event").await?;
    let expected = [
        ("lat", "Latitude: a number from −90 to 90", "95"),
        ("price", "Price: use a number like 12.50", "twelve"),
        ("rows", "Rows: a whole number from 1 to ", "5.5"),
    ];
    for (id, message, typed) in expected {
        let shown = field_shown(&c, id).await?;
        assert!(shown.message.starts_with(message), "{id}: {shown:?}");
        assert!(
            shown.described_by_message && shown.invalid && shown.beside,
            "{id}: {shown:?}"
        );
        assert_eq!(shown.value, typed, "{id}: what was typed is kept");
    }
    for kept in ["name", "venue", "lon", "seats_per_row"] {
        let value = c
            .find(Locator::Id(kept))
            .await?
            .prop("value")
            .await?
            .unwrap_or_default();
        assert!(!value.is_empty(), "{kept} kept");
    }
    let html = c.source().await?;
    assert_eq!(
        html.matches("aria-invalid=\"true\"").count(),
        3,
        "only the bad fields are marked"
    );
    let (focused, links) = error_summary(&c).await?;
    assert!(focused, "the summary has the focus");
    let targets: Vec<&str> = links.iter().map(|(href, _)| href.as_str()).collect();
    assert_eq!(targets, ["#lat", "#price", "#rows"]);
    click(&c, "#form-errors a[href=\"#price\"]").await?;
    let focused = c
        .execute("return document.activeElement.id;", vec![])
        .await?;
    assert_eq!(focused, json!("price"), "the link leads to the field");
    // Fixed, the same form creates the event.
    fill(&c, "#lat", "48.2").await?;
    fill(&c, "#price", "12,50").await?;
    fill(&c, "#rows", "5").await?;
    click(&c, "#save").await?;
    let html = wait_for_text(&c, "Choose your seats").await?;
    assert!(html.contains("12.50 EUR"), "the price as typed");
    c.close().await?;
    Ok(())
}

/// A sign-up with a taken username and a short password gets both messages at once, each
/// beside its field, the name kept; the password is never sent back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_with_a_taken_name_and_a_short_password_hears_both() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let c = shop.browser().await?;
    c.goto(&shop.url("/signup")).await?;
    fill(&c, "#username", "Admin").await?;
    fill(&c, "#password", "short").await?;
    click(&c, "form.stack button[type=submit]").await?;
    wait_for_text(&c, "2 things to fix").await?;
    shot(&c, "form-errors-signup").await?;
    let name = field_shown(&c, "username").await?;
    assert_eq!(
        name.message, "Username: this name is taken; choose another",
        "{name:?}"
    );
    assert!(name.described_by_message && name.invalid && name.beside);
    assert_eq!(name.value, "Admin");
    let password = field_shown(&c, "password").await?;
    assert_eq!(
        password.message, "Password: at least 8 characters",
        "{password:?}"
    );
    assert!(password.described_by_message && password.invalid && password.beside);
    assert_eq!(password.value, "", "a password is never sent back");
    let described = c
        .find(Locator::Id("password"))
        .await?
        .attr("aria-describedby")
        .await?
        .unwrap_or_default();
    assert_eq!(
        described, "password-error password-hint",
        "the rule still read"
    );
    let (focused, links) = error_summary(&c).await?;
    assert!(focused, "the summary has the focus");
    assert_eq!(links.len(), 2, "{links:?}");
    c.close().await?;
    Ok(())
}

/// Door check-in: a ticket bought in the browser is admitted once; the second scan says when
/// and by whom; a forged code is refused. Also the admin's cluster page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_admits_a_ticket_once_and_refuses_forgeries() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let event = seated_event(&shop, "Door Test", 2, 5).await?;
    let buyer = shop.browser().await?;
    sign_up(&shop, &buyer, "kim", false, "signup-kim").await?;
    let html = buy_seat(&shop, &buyer, event, 3, "4242424242424242", "door").await?;
    assert!(html.contains("Order confirmed"));
    buyer.goto(&shop.url("/tickets")).await?;
    let code = text_of(&buyer, ".code code").await?;
    let parsed = tix_http::ticket_code::parse(&code);
    assert!(
        code.starts_with("TIX2-") && parsed.is_ok_and(|p| p.event_id == event),
        "{code}"
    );
    buyer.close().await?;

    let staff = shop.browser().await?;
    staff.goto(&shop.url("/login?next=/door")).await?;
    fill(&staff, "#username", "admin").await?;
    fill(&staff, "#password", ADMIN_PASSWORD).await?;
    shot(&staff, "login").await?;
    click(&staff, "form.stack button").await?;
    wait_for_text(&staff, "Door check-in").await?;
    let result = door_scan(&staff, &code, 1).await?;
    assert!(result.starts_with("✓\nAdmitted"), "{result}");
    shot(&staff, "door-admitted").await?;
    let result = door_scan(&staff, &code, 2).await?;
    assert!(
        result.contains("Already checked in at") && result.contains("by admin"),
        "{result}"
    );
    shot(&staff, "door-second-scan").await?;
    // One base32 character of the signature changed: well formed, wrongly signed.
    let mut forged = code.clone();
    let at = forged.len() - 3;
    let swapped = if &forged[at..=at] == "A" { "B" } else { "A" };
    forged.replace_range(at..=at, swapped);
    let result = door_scan(&staff, &forged, 3).await?;
    assert!(result.contains("Forged code"), "{result}");
    shot(&staff, "door-forged").await?;
    staff.goto(&shop.url("/admin/cluster")).await?;
    let html = wait_for_text(&staff, "Cluster status").await?;
    assert!(html.contains("leader"), "{html}");
    shot(&staff, "cluster").await?;
    staff.close().await?;
    Ok(())
}

/// Types `code` into the door's field and checks it in; waits for the page's script to show
/// its `results`-th verdict in place (no reload) and returns the verdict's text.
async fn door_scan(c: &Client, code: &str, results: u32) -> anyhow::Result<String> {
    fill(c, "#code", code).await?;
    click(c, "#check").await?;
    door_result(c, results).await
}

/// Waits for the door's `results`-th verdict shown in place; returns its text.
async fn door_result(c: &Client, results: u32) -> anyhow::Result<String> {
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Css(&format!("#door[data-results=\"{results}\"]")))
        .await
        .with_context(|| format!("the door's verdict number {results}"))?;
    text_of(c, "#result").await
}

/// Writes a Y4M video (what Chromium's fake camera plays, looped) of a still 640 × 480 frame:
/// the QR code drawn by `d` — the ticket page's SVG path, `M{x} {y}h{w}v{h}H{x}V{y}` per dark
/// rectangle, `size` px square — in black on white, enlarged to fill the frame's height.
fn qr_video(size: usize, d: &str, path: &Path) -> anyhow::Result<()> {
    let (width, height) = (640usize, 480usize);
    let scale = (height / size.max(1)).max(1);
    anyhow::ensure!(
        size * scale <= height,
        "the QR code ({size} px) fits the frame"
    );
    let (left, top) = ((width - size * scale) / 2, (height - size * scale) / 2);
    let mut luma = vec![235u8; width * height];
    for rect in d.split('M').skip(1) {
        let numbers: Vec<usize> = rect
            .split(|c: char| c.is_ascii_alphabetic() || c == ' ')
            .filter(|n| !n.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("a rectangle of the QR path: {rect}"))?;
        let [x, y, w, h, ..] = numbers[..] else {
            bail!("a rectangle of the QR path: {rect}");
        };
        for row in (y * scale)..((y + h) * scale) {
            let start = (top + row) * width + left + x * scale;
            luma[start..start + w * scale].fill(16);
        }
    }
    let mut out = format!("YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n").into_bytes();
    out.extend_from_slice(b"FRAME\n");
    out.extend_from_slice(&luma);
    out.extend(std::iter::repeat_n(128u8, width * height / 2));
    std::fs::write(path, out)?;
    Ok(())
}

/// The door's count, `admitted / expected`.
async fn door_count(c: &Client) -> anyhow::Result<String> {
    let count = c
        .execute(
            "const a = document.getElementById('door-admitted'), \
             e = document.getElementById('door-expected'); \
             return a && e ? a.textContent + ' / ' + e.textContent : '';",
            vec![],
        )
        .await?;
    Ok(count.as_str().unwrap_or_default().to_owned())
}

/// Whether the door's code field is empty and has the focus, as after every verdict.
async fn door_field_ready(c: &Client) -> anyhow::Result<bool> {
    let ready = c
        .execute(
            "const f = document.getElementById('code'); \
             return f.value === '' && document.activeElement === f;",
            vec![],
        )
        .await?;
    Ok(ready.as_bool() == Some(true))
}

/// The code of a base32 ticket code written in the hex format tickets sold before it carry (the
/// same Ed25519 signature, so the same ticket).
fn old_format(code: &str) -> anyhow::Result<String> {
    let p = tix_http::ticket_code::parse(code).map_err(|e| anyhow::anyhow!("{e}: {code}"))?;
    let hex: String = p.signature.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("TIX1-{}-{}-{hex}", p.event_id, p.ticket_id))
}

/// The door all night: set to one event, it counts admitted over expected tickets; a refused
/// scan, then a ticket's QR code — the SVG of the buyer's ticket page drawn on a canvas and
/// decoded by the vendored jsQR through the door's own decoder (headless Chromium has no
/// camera to point at it) and submitted as a scan — admits, the field cleared and focused and
/// the count up by one; an old hex code still admits; a second scan says when. Then the camera
/// end to end: Chromium's fake camera plays a video of a third ticket's QR code, and the door
/// admits it by itself, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_door_decodes_a_qr_code_counts_and_admits_old_codes() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let event = seated_event(&shop, "Night Door", 2, 5).await?;
    let buyer = shop.browser().await?;
    sign_up(&shop, &buyer, "nia", false, "signup-nia").await?;
    for seat in [2, 7, 9] {
        let html = buy_seat(&shop, &buyer, event, seat, "4242424242424242", "night").await?;
        assert!(html.contains("Order confirmed"), "seat {seat}");
    }
    buyer.goto(&shop.url("/tickets")).await?;
    wait_for_text(&buyer, "My tickets").await?;
    // Newest first: the tickets for seats 9, 7 and 2. Each code with its QR code's drawing.
    let tickets = buyer
        .execute(
            "return Array.from(document.querySelectorAll('li.ticket')).map(li => { \
               const svg = li.querySelector('.qr svg'); \
               return [li.querySelector('.code code').textContent, \
                       svg.viewBox.baseVal.width, svg.querySelector('path').getAttribute('d')]; });",
            vec![],
        )
        .await?;
    let tickets = tickets.as_array().context("tickets")?.clone();
    anyhow::ensure!(tickets.len() == 3, "three tickets: {tickets:?}");
    let (nine, seven, two) = (&tickets[0], &tickets[1], &tickets[2]);
    let qr_code = seven[0].as_str().context("code")?.to_owned();
    let old_code = old_format(two[0].as_str().context("code")?)?;
    buyer.close().await?;

    let staff = shop.browser().await?;
    staff
        .goto(&shop.url(&format!("/login?next=/door%3Fevent%3D{event}")))
        .await?;
    fill(&staff, "#username", "admin").await?;
    fill(&staff, "#password", ADMIN_PASSWORD).await?;
    click(&staff, "form.stack button").await?;
    wait_for_text(&staff, "Door check-in").await?;
    if door_count(&staff).await?.is_empty() {
        // The login page may not carry the query through: set the door's event on the page.
        staff
            .find(Locator::Css("#door-event"))
            .await?
            .select_by_value(&event.to_string())
            .await?;
        click(&staff, "#door-event-set").await?;
        wait_for_text(&staff, "id=\"door-count\"").await?;
    }
    assert_eq!(door_count(&staff).await?, "0 / 3");
    shot(&staff, "night-door").await?;

    let refused = door_scan(&staff, "TIX2-NOTATICKET", 1).await?;
    assert!(refused.contains("Not a ticket code"), "{refused}");
    assert!(
        door_field_ready(&staff).await?,
        "the field is cleared and focused"
    );
    assert_eq!(door_count(&staff).await?, "0 / 3");
    shot(&staff, "night-door-refused").await?;

    // The QR code of the buyer's ticket page, drawn at twice its size and decoded.
    let decoded = staff
        .execute_async(
            r##"const [size, d, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
            const canvas = document.createElement("canvas");
            canvas.width = canvas.height = size * 2;
            const g = canvas.getContext("2d");
            g.fillStyle = "#fff";
            g.fillRect(0, 0, canvas.width, canvas.height);
            g.scale(2, 2);
            g.fillStyle = "#000";
            g.fill(new Path2D(d));
            window.tixDoor.decode(canvas, true).then(done, e => done("failed: " + e));"##,
            vec![seven[1].clone(), seven[2].clone()],
        )
        .await?;
    assert_eq!(
        decoded.as_str(),
        Some(qr_code.as_str()),
        "jsQR reads the code"
    );
    let jsqr_loaded = staff
        .execute("return typeof window.jsQR === 'function';", vec![])
        .await?;
    assert_eq!(jsqr_loaded, json!(true), "loaded from /static/vendor/");
    let submitted = staff
        .execute(
            "return window.tixDoor.scanned(arguments[0]);",
            vec![decoded],
        )
        .await?;
    assert_eq!(submitted, json!(true));
    let admitted = door_result(&staff, 2).await?;
    assert!(
        admitted.starts_with("✓\nAdmitted") && admitted.contains("Seat 7 · row 2"),
        "{admitted}"
    );
    assert!(
        door_field_ready(&staff).await?,
        "the field is cleared and focused"
    );
    assert_eq!(door_count(&staff).await?, "1 / 3");
    shot(&staff, "night-door-admitted").await?;

    let admitted = door_scan(&staff, &old_code, 3).await?;
    assert!(
        admitted.starts_with("✓\nAdmitted") && admitted.contains("Seat 2 · row 1"),
        "an old hex code: {admitted}"
    );
    assert_eq!(door_count(&staff).await?, "2 / 3");
    let again = door_scan(&staff, &qr_code, 4).await?;
    assert!(again.contains("Already checked in at"), "{again}");
    assert!(door_field_ready(&staff).await?);
    assert_eq!(door_count(&staff).await?, "2 / 3");
    shot(&staff, "night-door-second-scan").await?;

    staff.close().await?;

    // The camera, end to end: Chromium's fake camera plays a video of the seat 9 ticket's QR
    // code; the door's scanner reads it and admits the ticket on its own.
    let video = tempfile::Builder::new().suffix(".y4m").tempfile()?;
    let size = nine[1].as_f64().context("size")? as usize;
    qr_video(size, nine[2].as_str().context("path")?, video.path())?;
    let camera = format!(
        "--use-file-for-fake-video-capture={}",
        video.path().display()
    );
    let staff = shop.browser_with(&[camera]).await?;
    staff
        .goto(&shop.url(&format!("/login?next=/door%3Fevent%3D{event}")))
        .await?;
    fill(&staff, "#username", "admin").await?;
    fill(&staff, "#password", ADMIN_PASSWORD).await?;
    click(&staff, "form.stack button").await?;
    wait_for_text(&staff, "Door check-in").await?;
    assert_eq!(door_count(&staff).await?, "2 / 3");
    click(&staff, "#scan").await?;
    wait_for_text(&staff, "Camera on").await?;
    let admitted = door_result(&staff, 1).await?;
    assert!(
        admitted.starts_with("✓\nAdmitted") && admitted.contains("Seat 9 · row 2"),
        "scanned by the camera: {admitted}"
    );
    assert_eq!(door_count(&staff).await?, "3 / 3");
    shot(&staff, "night-door-camera").await?;
    // The same ticket stays in view: it is not submitted again at once.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let results = staff
        .execute(
            "return document.getElementById('door').getAttribute('data-results');",
            vec![],
        )
        .await?;
    assert_eq!(
        results,
        json!("1"),
        "one scan while the ticket stays in view"
    );
    click(&staff, "#scan-stop").await?;
    wait_for_text(&staff, "Camera off").await?;
    let scan_shown = staff
        .execute("return !document.getElementById('scan').hidden;", vec![])
        .await?;
    assert_eq!(scan_shown, json!(true));
    staff.close().await?;
    Ok(())
}

/// An organizer cancels their event through the dashboard's confirmation page (how many
/// tickets, a reason); the result page counts the refund, the event page shows the cancelled
/// banner with the reason, and the buyer's tickets and orders say "Cancelled by the organizer —
/// refunded".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizer_cancels_an_event_and_the_buyer_sees_the_refund() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let organizer = shop.browser().await?;
    sign_up(&shop, &organizer, "olive", true, "signup-canceller").await?;
    let api = ApiClient::login(http_client(4)?, &shop.server.base_url, "olive", PASSWORD).await?;
    let event = seated_event_by(&shop, &api, "Rained Out Gala", 2, 5).await?;
    let buyer = shop.browser().await?;
    sign_up(&shop, &buyer, "pat", false, "signup-pat").await?;
    let html = buy_seat(&shop, &buyer, event, 4, "4242424242424242", "cancel").await?;
    assert!(html.contains("Order confirmed"));

    organizer
        .goto(&shop.url(&format!("/organizer/events/{event}")))
        .await?;
    wait_for_text(&organizer, "Tickets sold over time").await?;
    click(&organizer, "#cancel-event").await?;
    wait_for_text(&organizer, "Cancel this event?").await?;
    let counted = text_of(&organizer, "#cancel-tickets").await?;
    assert!(counted.starts_with("1 ticket ·"), "{counted}");
    fill(
        &organizer,
        "#reason",
        "The hall's roof leaks; we are sorry.",
    )
    .await?;
    shot(&organizer, "cancel-confirm").await?;
    click(&organizer, "#confirm-cancel").await?;
    let result = text_of(&organizer, "#cancel-result").await?;
    assert!(result.contains("1 ticket refunded (30.00 EUR)"), "{result}");
    shot(&organizer, "cancel-result").await?;
    organizer
        .goto(&shop.url(&format!("/organizer/events/{event}")))
        .await?;
    wait_for_text(&organizer, "every ticket was refunded").await?;
    shot(&organizer, "cancel-dashboard").await?;
    organizer.close().await?;

    buyer.goto(&shop.url("/tickets")).await?;
    wait_for_text(&buyer, "Cancelled by the organizer — refunded").await?;
    shot(&buyer, "cancel-my-tickets").await?;
    buyer.goto(&shop.url("/orders")).await?;
    wait_for_text(&buyer, "Cancelled by the organizer — refunded").await?;
    shot(&buyer, "cancel-my-orders").await?;
    buyer.goto(&shop.url(&format!("/events/{event}"))).await?;
    let html = wait_for_text(&buyer, "This event was cancelled by the organizer").await?;
    assert!(html.contains("The hall's roof leaks") || html.contains("The hall&#x27;s roof leaks"));
    assert!(!html.contains("id=\"order-now\""), "no order button");
    shot(&buyer, "cancel-event-page").await?;
    buyer.goto(&shop.url("/")).await?;
    wait_for_text(&buyer, "Cancelled").await?;
    shot(&buyer, "cancel-home").await?;
    buyer.close().await?;
    Ok(())
}

/// An admin finds an account on `/admin/users` (linked from the nav), makes it staff, and is
/// told in words why the only admin cannot be demoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_changes_a_role_on_the_users_page() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let someone = shop.browser().await?;
    sign_up(&shop, &someone, "quinn", false, "signup-quinn").await?;
    someone.close().await?;

    let admin = shop.browser().await?;
    admin.goto(&shop.url("/login")).await?;
    fill(&admin, "#username", "admin").await?;
    fill(&admin, "#password", ADMIN_PASSWORD).await?;
    click(&admin, "form.stack button").await?;
    wait_for_text(&admin, "Log out").await?;
    click(&admin, "nav a[href=\"/admin/users\"]").await?;
    wait_for_text(&admin, "Username starts with").await?;
    shot(&admin, "admin-users").await?;
    fill(&admin, "#q", "qui").await?;
    click(&admin, "form.search button").await?;
    wait_for_url(&admin, "q=qui").await?;
    wait_for_text(&admin, "quinn").await?;
    admin
        .find(Locator::Css("#users select"))
        .await?
        .select_by_value("staff")
        .await?;
    click(&admin, "#users button").await?;
    let notice = text_of(&admin, "#users-notice").await?;
    assert_eq!(notice, "quinn is now staff.");
    assert_eq!(text_of(&admin, "#users td.role").await?, "staff");
    shot(&admin, "admin-users-changed").await?;

    fill(&admin, "#q", "admin").await?;
    click(&admin, "form.search button").await?;
    wait_for_url(&admin, "q=admin").await?;
    wait_for_text(&admin, "data-label=\"Username\">admin</td>").await?;
    admin
        .find(Locator::Css("#users select"))
        .await?
        .select_by_value("attendee")
        .await?;
    click(&admin, "#users button").await?;
    let error = text_of(&admin, "#users-error").await?;
    assert!(error.contains("only admin"), "{error}");
    shot(&admin, "admin-users-last-admin").await?;
    admin.close().await?;
    Ok(())
}

/// Sends one message in the assistant's form and waits for the answer to be shown in place
/// (the page sends the form in the background and replaces the transcript).
async fn chat(c: &Client, text: &str, shows: &str, name: &str) -> anyhow::Result<String> {
    let before = c.find_all(Locator::Css("#chat-log > li")).await?.len();
    fill(c, "#chat-text", text).await?;
    click(c, "#chat-form button[type=submit]").await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let lines = c.find_all(Locator::Css("#chat-log > li")).await?.len();
        let html = c.source().await?;
        if lines > before && html.contains(shows) {
            shot(c, name).await?;
            return Ok(html);
        }
        if Instant::now() > deadline {
            bail!(
                "after {text:?} the chat never showed {shows:?}:\n{}",
                &html[..html.len().min(4000)]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first day of next month (UTC), for an event "next month" whenever the test runs.
fn next_month_at(day: u8, hour: u8) -> String {
    let today = time::OffsetDateTime::now_utc().date();
    let (year, month) = match today.month() {
        time::Month::December => (today.year() + 1, time::Month::January),
        m => (today.year(), m.next()),
    };
    format!("{year:04}-{:02}-{day:02}T{hour:02}:30:00Z", u8::from(month))
}

/// A newcomer finds what's on next month by chat, books two seats of a numbered event, pays
/// with the test card, sees the tickets under My tickets, and refunds one by chat — and the
/// seat turns free live on the event page in another browser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_books_pays_and_refunds_by_chat_and_the_seat_frees_live() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    let api = shop.admin_api().await?;
    let body = json!({
        "name": "Aurora Chamber Night", "description": "Browser test of the assistant",
        "starts_at": next_month_at(14, 19),
        "venue": {"name": "Tonhalle, Düsseldorf", "lat": 51.23, "lon": 6.77},
        "price_cents": 4450, "currency": "EUR",
        "inventory": {"kind": "numbered", "rows": 3, "seats_per_row": 8},
    });
    let r = api
        .http
        .post(format!("{}/api/v1/events", shop.server.base_url))
        .bearer_auth(&api.token)
        .json(&body)
        .send()
        .await?;
    anyhow::ensure!(r.status().as_u16() == 201, "create: {}", r.text().await?);
    let event = r.json::<Value>().await?["id"].as_u64().context("id")?;

    let c = shop.browser().await?;
    let watcher = shop.browser().await?;
    sign_up(&shop, &c, "nora", false, "assistant-signup").await?;
    c.goto(&shop.url("/assistant")).await?;
    wait_for_text(&c, "Booking assistant").await?;
    shot(&c, "assistant-empty").await?;
    let html = chat(
        &c,
        "what's on next month?",
        "Aurora Chamber Night",
        "assistant-search",
    )
    .await?;
    assert!(
        html.contains("View event"),
        "events come as cards with links"
    );
    chat(
        &c,
        "2 tickets for the aurora chamber night",
        "Hold: 2",
        "assistant-held",
    )
    .await?;
    chat(&c, "pay with the test card", "Yes", "assistant-confirm-pay").await?;
    // The offered "Yes" is a button of its own.
    let yes = c
        .find_all(Locator::Css("#chat-log li#last .choices button"))
        .await?;
    anyhow::ensure!(!yes.is_empty(), "a yes/no choice is offered");
    yes[0].click().await?;
    let html = wait_for_text(&c, "Paid: order").await?;
    shot(&c, "assistant-paid").await?;
    assert!(
        html.contains("89.00 EUR") || html.contains("89,00"),
        "2 × 44.50: {html}"
    );

    c.goto(&shop.url("/tickets")).await?;
    let html = wait_for_text(&c, "My tickets").await?;
    assert_eq!(
        html.matches("class=\"qr\"").count(),
        2,
        "two tickets with QR codes"
    );
    let ticket: u64 = html
        .split("id=\"ticket-")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|id| id.parse().ok())
        .context("a ticket id on My tickets")?;
    let seat: u32 = html
        .split(&format!("id=\"ticket-{ticket}\""))
        .nth(1)
        .and_then(|rest| rest.split("seat ").nth(1))
        .and_then(|rest| rest.split('<').next())
        .and_then(|n| n.trim().parse().ok())
        .context("the ticket's seat")?;
    shot(&c, "assistant-my-tickets").await?;

    watcher.goto(&shop.url(&format!("/events/{event}"))).await?;
    wait_for_text(&watcher, "Choose your seats").await?;
    let class = |w: Client, n: u32| async move {
        w.find(Locator::Css(&format!("label[data-seat=\"{n}\"]")))
            .await?
            .attr("class")
            .await
            .map(|c| c.unwrap_or_default())
            .map_err(anyhow::Error::from)
    };
    assert_eq!(class(watcher.clone(), seat).await?, "seat sold");

    // Back to the conversation (the page continues the latest one) and refund by chat.
    c.goto(&shop.url("/assistant")).await?;
    wait_for_text(&c, "Aurora Chamber Night").await?;
    chat(
        &c,
        &format!("refund my ticket {ticket}"),
        "Yes",
        "assistant-confirm-refund",
    )
    .await?;
    let yes = c
        .find_all(Locator::Css("#chat-log li#last .choices button"))
        .await?;
    anyhow::ensure!(!yes.is_empty(), "a yes/no choice is offered");
    yes[0].click().await?;
    wait_for_text(&c, "Refund receipt").await?;
    shot(&c, "assistant-refunded").await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let now = class(watcher.clone(), seat).await?;
        if now == "seat free" {
            break;
        }
        if Instant::now() > deadline {
            bail!("seat {seat} stayed {now:?} after the refund");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(&watcher, "assistant-seat-freed-live").await?;
    c.set_window_size(390, 844).await?;
    c.goto(&shop.url("/assistant")).await?;
    wait_for_text(&c, "Refund receipt").await?;
    shot(&c, "assistant-phone").await?;
    c.close().await?;
    watcher.close().await?;
    Ok(())
}

/// axe-core, vendored for these tests only (see `vendor/axe-core/README.md`); never served.
const AXE_SOURCE: &str = include_str!("vendor/axe-core/axe.min.js");

/// Runs axe-core on the page the browser shows (injecting it first if the page has not got it)
/// and returns its violations, one line each: rule, impact, what it asks and the elements.
async fn axe_violations(c: &Client) -> anyhow::Result<Vec<String>> {
    let loaded = c
        .execute("return typeof window.axe === 'object';", vec![])
        .await?;
    if loaded != Value::Bool(true) {
        c.execute(AXE_SOURCE, vec![]).await?;
    }
    let found = c
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ["violations"] })
              .then(r => done(r.violations.map(v =>
                `${v.id} (${v.impact}): ${v.help} — ` + v.nodes.map(n =>
                  n.target.map(t => typeof t === "string" ? t : JSON.stringify(t)).join(" ")
                ).join(" | "))))
              .catch(e => done(["axe failed: " + e]));"#,
            vec![],
        )
        .await?;
    let lines = found.as_array().context("axe's answer is a list")?;
    Ok(lines
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Moves the focus back to the start of the document and presses Tab once, as a keyboard
/// user would (so `:focus-visible` applies as it does for people).
async fn tab_from_the_top(c: &Client) -> anyhow::Result<()> {
    c.execute(
        "if (document.activeElement) document.activeElement.blur();
         document.body.setAttribute('tabindex', '-1'); document.body.focus();
         document.body.removeAttribute('tabindex');",
        vec![],
    )
    .await?;
    let tab = '\u{E004}';
    c.perform_actions(
        KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab }),
    )
    .await?;
    Ok(())
}

/// The checks the sweep makes on every page besides axe: from the top of the page, the first
/// Tab reaches the "Skip to content" link, whose target exists, and which shows a focus ring
/// of at least 3:1 against white and against the page background; and (when `phone`) nothing
/// makes the page itself wider than the window. Returns what failed.
async fn page_checks(c: &Client, phone: bool) -> anyhow::Result<Vec<String>> {
    tab_from_the_top(c).await?;
    let found = c
        .execute(
            r##"const phone = arguments[0];
            const problems = [];
            const lum = css => {
              const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map(Number).map(v => {
                v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
              });
              return 0.2126 * r + 0.7152 * g + 0.0722 * b;
            };
            const ratio = (a, b) => {
              const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
              return (x + 0.05) / (y + 0.05);
            };
            const focused = document.activeElement;
            if (!focused || !focused.classList.contains("skip-link")
                || focused.textContent.trim() !== "Skip to content") {
              problems.push("the first Tab does not reach the skip link but "
                + (focused ? focused.outerHTML.slice(0, 80) : "nothing"));
            } else {
              if (!document.getElementById(focused.getAttribute("href").slice(1))) {
                problems.push("the skip link's target is missing");
              }
              const s = getComputedStyle(focused);
              const page = getComputedStyle(document.body).backgroundColor;
              const ring = Math.min(ratio(s.outlineColor, page), ratio(s.outlineColor, "rgb(255,255,255)"));
              if (s.outlineStyle === "none" || parseFloat(s.outlineWidth) < 2 || ring < 3) {
                problems.push(`focus ring ${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}: ${ring.toFixed(2)}:1`);
              }
              focused.blur();
            }
            if (phone && document.documentElement.scrollWidth > window.innerWidth) {
              const wide = Array.from(document.querySelectorAll("body *"))
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                .slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
                  + (e.className && typeof e.className === "string" ? "." + e.className.split(" ").join(".") : ""));
              problems.push(`the page is ${document.documentElement.scrollWidth}px wide in a `
                + `${window.innerWidth}px window (${wide.join(", ")})`);
            }
            return problems;"##,
            vec![json!(phone)],
        )
        .await?;
    Ok(found
        .as_array()
        .context("a list")?
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_owned())
        .collect())
}

/// The seat states of the event page's legend, told apart without colour and with contrast:
/// each state has its own mark (`::after` content) or edge style, and every colour of a held
/// seat's fill is at least 3:1 against a free seat's. Returns what failed.
async fn seat_state_checks(c: &Client) -> anyhow::Result<Vec<String>> {
    let found = c
        .execute(
            r##"const problems = [];
            const lum = rgb => rgb.map(v => {
                v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
              }).reduce((sum, v, i) => sum + [0.2126, 0.7152, 0.0722][i] * v, 0);
            // Colours in a computed background; transparent ones (alpha 0) are no fill.
            const colours = css => (css.match(/rgba?\([^)]*\)/g) || [])
              .map(c => c.match(/[\d.]+/g).map(Number))
              .filter(c => c.length === 3 || c[3] > 0)
              .map(c => c.slice(0, 3));
            const ratio = (a, b) => {
              const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
              return (x + 0.05) / (y + 0.05);
            };
            const look = {};
            for (const state of ["free", "mine", "held", "sold", "blocked"]) {
              const seat = document.querySelector(`.legend .seat.${state}`);
              if (!seat) { problems.push(`no ${state} seat in the legend`); continue; }
              const s = getComputedStyle(seat);
              look[state] = { fills: colours(s.backgroundColor + " " + s.backgroundImage),
                              cue: s.borderTopStyle + " " + getComputedStyle(seat, "::after").content
                                + " " + (s.backgroundImage === "none" ? "plain" : "pattern") };
            }
            const cues = Object.entries(look).map(([k, v]) => v.cue);
            if (new Set(cues).size !== cues.length) {
              problems.push("seat states share a look without colour: " + JSON.stringify(look));
            }
            if (look.free && look.held) {
              const free = colours(getComputedStyle(document.querySelector(".legend .seat.free")).backgroundColor)[0];
              for (const fill of look.held.fills) {
                if (ratio(free, fill) < 3) {
                  problems.push(`held fill rgb(${fill}) is ${ratio(free, fill).toFixed(2)}:1 against free`);
                }
              }
            }
            return problems;"##,
            vec![],
        )
        .await?;
    Ok(found
        .as_array()
        .context("a list")?
        .iter()
        .map(|l| l.as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Saves the whole page (the window grown to the page's height, at most 4,000 px) as
/// `NAME.png`, then gives the window its height back.
async fn full_shot(c: &Client, name: &str, width: u32, height: u32) -> anyhow::Result<()> {
    let tall = c
        .execute(
            "return document.documentElement.scrollHeight + (window.outerHeight - window.innerHeight);",
            vec![],
        )
        .await?
        .as_u64()
        .unwrap_or(u64::from(height));
    let tall = (tall as u32).clamp(height, 4000);
    if tall > height {
        c.set_window_size(width, tall).await?;
    }
    shot(c, name).await?;
    if tall > height {
        c.set_window_size(width, height).await?;
    }
    Ok(())
}

/// Sizes the window so that the page gets `width` × `height` CSS pixels (headless Chromium's
/// window is as wide as its page, but its height includes a frame); returns the window's size.
/// A resize lands a moment later, so the page's size is polled until it is the one asked for.
async fn set_viewport(c: &Client, width: u32, height: u32) -> anyhow::Result<(u32, u32)> {
    let size = || async {
        let v = c
            .execute(
                "return [window.innerWidth, window.innerHeight, window.outerHeight];",
                vec![],
            )
            .await?;
        let n = |i: usize| v[i].as_u64().unwrap_or(0) as u32;
        anyhow::Ok((n(0), n(1), n(2)))
    };
    let (_, inner, outer) = size().await?;
    let window = (width, height + outer.saturating_sub(inner));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        c.set_window_size(window.0, window.1).await?;
        for _ in 0..10 {
            let (w, h, _) = size().await?;
            if (w, h) == (width, height) {
                return Ok(window);
            }
            if Instant::now() > deadline {
                bail!("asked for a {width} × {height} page, got {w} × {h}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The widths every page is looked at: a laptop and a phone (CSS pixels).
const SWEEP_WINDOWS: [(u32, u32, &str); 2] = [(1366, 900, "desktop"), (390, 844, "phone")];

/// Looks at the page the browser shows at both widths: a full-page screenshot of each
/// (`sweep-NAME-desktop.png`, `sweep-NAME-phone.png`), axe-core's violations and
/// [`page_checks`]; adds what is wrong to `problems`, named by page and width. Leaves the
/// window at the desktop size.
async fn sweep(c: &Client, name: &str, problems: &mut Vec<String>) -> anyhow::Result<()> {
    for (width, height, label) in SWEEP_WINDOWS {
        let (width, height) = set_viewport(c, width, height).await?;
        full_shot(c, &format!("sweep-{name}-{label}"), width, height).await?;
        let found = axe_violations(c)
            .await?
            .into_iter()
            .chain(page_checks(c, label == "phone").await?);
        problems.extend(found.map(|p| format!("{name} ({label}): {p}")));
    }
    c.set_window_size(SWEEP_WINDOWS[0].0, SWEEP_WINDOWS[0].1)
        .await?;
    Ok(())
}

/// The hold id in the checkout page's address (`/holds/ID`).
async fn hold_path(c: &Client) -> anyhow::Result<String> {
    let url = c.current_url().await?;
    anyhow::ensure!(url.path().starts_with("/holds/"), "not a checkout: {url}");
    Ok(url.path().to_owned())
}

/// Every page of the shop, as the user who sees it, at 1366 and 390 px wide: screenshots of
/// each, axe-core with no violations, a skip link first with a visible focus ring, and no
/// page wider than a phone (a wide seat map scrolls inside its own box); forms with errors,
/// the cancellation pages and the users page included. The failures are
/// collected and reported together, by page and width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_passes_axe_at_desktop_and_phone_widths() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut shop = Shop::start(browser).await?;
    // Every window is closed, whatever happened: a window left open outlives chromedriver.
    let mut opened = Vec::new();
    let visited = visit_every_page(&mut shop, &mut opened).await;
    for c in opened {
        let _ = c.close().await;
    }
    let problems = visited?;
    assert!(
        problems.is_empty(),
        "{} accessibility problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        started.elapsed() < Duration::from_secs(240),
        "the sweep took {:?}",
        started.elapsed()
    );
    Ok(())
}

/// The sweep's visits (see [`every_page_passes_axe_at_desktop_and_phone_widths`]); each
/// window it opens goes into `opened`. Returns the problems found.
async fn visit_every_page(
    shop: &mut Shop,
    opened: &mut Vec<Client>,
) -> anyhow::Result<Vec<String>> {
    // Wide enough (30 seats a row) that the phone must scroll the map inside its box.
    let event = seated_event(shop, "Sweep Hall", 4, 30).await?;
    // Images: a portrait poster on it, a landscape photo on the demo's open-air festival (the
    // catalogue's cards, the search and the general-admission page show it).
    let api = shop.admin_api().await?;
    set_image(&api, event, poster_png(270, 400), "Sweep Hall's poster").await?;
    let festival: Value = api
        .http
        .get(format!("{}/api/v1/events?q=open+air", shop.server.base_url))
        .send()
        .await?
        .json()
        .await?;
    let festival = festival["events"][0]["id"]
        .as_u64()
        .context("the festival")?;
    set_image(&api, festival, poster_png(480, 270), "").await?;
    // Cancelled near the end: its confirmation, its result and its page.
    let doomed = seated_event(shop, "Sweep Storm", 2, 5).await?;
    let mut problems = Vec::new();

    // Signed out: the catalogue, a search, both kinds of event page, the forms, the errors.
    let visitor = shop.browser().await?;
    opened.push(visitor.clone());
    visitor.goto(&shop.url("/")).await?;
    wait_for_text(&visitor, "Upcoming events").await?;
    sweep(&visitor, "home", &mut problems).await?;
    // What a keyboard user sees first: the skip link, with its focus ring.
    for (width, height, label) in SWEEP_WINDOWS {
        set_viewport(&visitor, width, height).await?;
        tab_from_the_top(&visitor).await?;
        shot(&visitor, &format!("sweep-skip-link-{label}")).await?;
    }
    visitor.goto(&shop.url("/?q=open+air")).await?;
    wait_for_text(&visitor, "1 event").await?;
    sweep(&visitor, "search", &mut problems).await?;
    click(&visitor, ".card-link").await?;
    wait_for_text(&visitor, "show on map").await?;
    if image_width(&visitor, "#event-image").await? != 480 {
        problems.push("event-general-admission: its image did not load".into());
    }
    sweep(&visitor, "event-general-admission", &mut problems).await?;
    visitor.goto(&shop.url("/login")).await?;
    wait_for_text(&visitor, "Log in").await?;
    sweep(&visitor, "login", &mut problems).await?;
    visitor.goto(&shop.url("/signup")).await?;
    wait_for_text(&visitor, "Create an account").await?;
    sweep(&visitor, "signup", &mut problems).await?;
    // Forms with errors: a summary first, each message beside its field.
    fill(&visitor, "#username", "admin").await?;
    fill(&visitor, "#password", "short").await?;
    click(&visitor, "form.stack button[type=submit]").await?;
    wait_for_text(&visitor, "2 things to fix").await?;
    sweep(&visitor, "signup-errors", &mut problems).await?;
    visitor.goto(&shop.url("/login")).await?;
    click(&visitor, "form.stack button[type=submit]").await?;
    wait_for_text(&visitor, "2 things to fix").await?;
    sweep(&visitor, "login-errors", &mut problems).await?;
    // Forgotten password: the form, its errors, the answer, a link that no longer works.
    visitor.goto(&shop.url("/password/forgot")).await?;
    wait_for_text(&visitor, "Forgot your password?").await?;
    sweep(&visitor, "password-forgot", &mut problems).await?;
    click(&visitor, "form.stack button[type=submit]").await?;
    wait_for_text(&visitor, "One thing to fix").await?;
    sweep(&visitor, "password-forgot-errors", &mut problems).await?;
    fill(&visitor, "#who", "sweeper@example.org").await?;
    click(&visitor, "form.stack button[type=submit]").await?;
    wait_for_text(&visitor, "id=\"reset-sent\"").await?;
    sweep(&visitor, "password-forgot-sent", &mut problems).await?;
    let expired = format!("/password/reset?token={}", "0".repeat(64));
    visitor.goto(&shop.url(&expired)).await?;
    wait_for_text(&visitor, "no longer works").await?;
    sweep(&visitor, "password-reset-invalid", &mut problems).await?;
    visitor.goto(&shop.url("/no-such-page")).await?;
    wait_for_text(&visitor, "Not found").await?;
    sweep(&visitor, "error-404", &mut problems).await?;
    visitor.goto(&shop.url("/events/not-a-number")).await?;
    wait_for_text(&visitor, "400").await?;
    sweep(&visitor, "error-400", &mut problems).await?;

    // The admin holds a seat and leaves the hold open, so the map shows a held seat.
    let staff = shop.browser().await?;
    opened.push(staff.clone());
    staff.goto(&shop.url("/login")).await?;
    fill(&staff, "#username", "admin").await?;
    fill(&staff, "#password", ADMIN_PASSWORD).await?;
    click(&staff, "form.stack button").await?;
    wait_for_text(&staff, "Log out").await?;
    staff.goto(&shop.url(&format!("/events/{event}"))).await?;
    wait_for_text(&staff, "Choose your seats").await?;
    click(&staff, "label[data-seat=\"10\"]").await?;
    click(&staff, "#order-now").await?;
    wait_for_text(&staff, "Checkout").await?;
    let staff_hold = hold_path(&staff).await?;

    // An attendee: the numbered event with free, held, sold and chosen seats, the checkout
    // and the banner of an open hold, the confirmation, tickets, a refund, orders, the
    // assistant and an organizer page (403).
    let buyer = shop.browser().await?;
    opened.push(buyer.clone());
    sign_up(shop, &buyer, "sweeper", false, "sweep-signup-done").await?;
    buyer.goto(&shop.url(&format!("/events/{event}"))).await?;
    wait_for_text(&buyer, "Choose your seats").await?;
    click(&buyer, "label[data-seat=\"3\"]").await?;
    click(&buyer, "label[data-seat=\"4\"]").await?;
    wait_for_text(&buyer, "Chosen: Row 1, Seat 3; Row 1, Seat 4.").await?;
    click(&buyer, "#order-now").await?;
    wait_for_text(&buyer, "Checkout").await?;
    sweep(&buyer, "checkout", &mut problems).await?;
    let checkout = hold_path(&buyer).await?;
    buyer.goto(&shop.url("/")).await?;
    wait_for_text(&buyer, "id=\"hold-banner\"").await?;
    sweep(&buyer, "home-with-hold", &mut problems).await?;
    buyer.goto(&shop.url(&checkout)).await?;
    fill(&buyer, "#card_number", "4242 4242").await?;
    click(&buyer, "#pay").await?;
    wait_for_text(&buyer, "Card number: 16 digits").await?;
    sweep(&buyer, "checkout-card-error", &mut problems).await?;
    fill(&buyer, "#card_number", "4242 4242 4242 4242").await?;
    click(&buyer, "#pay").await?;
    wait_for_text(&buyer, "Order confirmed").await?;
    sweep(&buyer, "confirmation", &mut problems).await?;
    buyer.goto(&shop.url(&checkout)).await?;
    wait_for_text(&buyer, "<h1>Paid — order #").await?;
    sweep(&buyer, "checkout-paid", &mut problems).await?;
    buyer.goto(&shop.url(&format!("/events/{event}"))).await?;
    wait_for_text(&buyer, "Choose your seats").await?;
    click(&buyer, "label[data-seat=\"5\"]").await?;
    wait_for_text(&buyer, "Chosen: Row 1, Seat 5.").await?;
    if image_width(&buyer, "#event-image").await? != 270 {
        problems.push("event-numbered: its image did not load".into());
    }
    sweep(&buyer, "event-numbered", &mut problems).await?;
    let seats = seat_state_checks(&buyer).await?;
    problems.extend(seats.into_iter().map(|p| format!("event-numbered: {p}")));
    click(&buyer, "label[data-seat=\"5\"]").await?;
    wait_for_text(&buyer, "No seats chosen").await?;
    click(&buyer, "#order-now").await?;
    wait_for_text(&buyer, "Seats: choose at least one seat").await?;
    sweep(&buyer, "event-order-error", &mut problems).await?;
    buyer.goto(&shop.url("/tickets")).await?;
    wait_for_text(&buyer, "My tickets").await?;
    sweep(&buyer, "tickets", &mut problems).await?;
    click(&buyer, "a.refund").await?;
    wait_for_text(&buyer, "Refund this ticket?").await?;
    sweep(&buyer, "refund-confirm", &mut problems).await?;
    click(&buyer, "#confirm-refund").await?;
    wait_for_text(&buyer, "Refunded").await?;
    sweep(&buyer, "tickets-with-refunded", &mut problems).await?;
    buyer.goto(&shop.url("/orders")).await?;
    wait_for_text(&buyer, "My orders").await?;
    sweep(&buyer, "orders", &mut problems).await?;
    // The account page: the address, an error beside it, saved.
    buyer.goto(&shop.url("/account")).await?;
    wait_for_text(&buyer, "Your account").await?;
    sweep(&buyer, "account", &mut problems).await?;
    fill(&buyer, "#email", "not an address").await?;
    click(&buyer, "form.stack button[type=submit]").await?;
    wait_for_text(&buyer, "One thing to fix").await?;
    sweep(&buyer, "account-errors", &mut problems).await?;
    fill(&buyer, "#email", "sweeper@example.org").await?;
    click(&buyer, "form.stack button[type=submit]").await?;
    wait_for_text(&buyer, "id=\"account-saved\"").await?;
    sweep(&buyer, "account-saved", &mut problems).await?;
    buyer.goto(&shop.url("/assistant")).await?;
    wait_for_text(&buyer, "Booking assistant").await?;
    sweep(&buyer, "assistant", &mut problems).await?;
    chat(
        &buyer,
        "how many seats are left for sweep hall?",
        "Sweep Hall",
        "sweep-assistant-answered",
    )
    .await?;
    sweep(&buyer, "assistant-answered", &mut problems).await?;
    buyer.goto(&shop.url("/organizer")).await?;
    wait_for_text(&buyer, "Not allowed").await?;
    sweep(&buyer, "error-403", &mut problems).await?;

    // The staff pages: organizer list, event forms, dashboard, the door, the cluster, and a
    // released hold.
    staff.goto(&shop.url("/organizer")).await?;
    wait_for_text(&staff, "Your events").await?;
    sweep(&staff, "organizer", &mut problems).await?;
    staff.goto(&shop.url("/events/new")).await?;
    wait_for_text(&staff, "Create an event").await?;
    sweep(&staff, "event-form", &mut problems).await?;
    fill(&staff, "#name", "Sweep Mistakes").await?;
    fill(&staff, "#venue", "Sweep Hall").await?;
    fill(&staff, "#lat", "95").await?;
    fill(&staff, "#lon", "16.37").await?;
    fill(&staff, "#price", "twelve").await?;
    click(&staff, "input[name=kind][value=seated]").await?;
    fill(&staff, "#rows", "x").await?;
    fill(&staff, "#seats_per_row", "10").await?;
    fill(&staff, "#blocked", "1, 999").await?;
    click(&staff, "#save").await?;
    wait_for_text(&staff, "things to fix").await?;
    sweep(&staff, "event-form-errors", &mut problems).await?;
    staff
        .goto(&shop.url(&format!("/events/{event}/edit")))
        .await?;
    wait_for_text(&staff, "Edit event").await?;
    sweep(&staff, "event-form-edit", &mut problems).await?;
    staff
        .goto(&shop.url(&format!("/organizer/events/{event}")))
        .await?;
    wait_for_text(&staff, "Tickets sold over time").await?;
    sweep(&staff, "dashboard", &mut problems).await?;
    // The chart's numbers, opened; and the door set to this event from its link.
    click(&staff, "details.chart-numbers summary").await?;
    wait_for_text(&staff, "Total so far").await?;
    sweep(&staff, "dashboard-chart-numbers", &mut problems).await?;
    click(&staff, "#door-link").await?;
    let door_url = staff.current_url().await?;
    if door_url.query() != Some(format!("event={event}").as_str()) {
        problems.push(format!("the dashboard's door link opened {door_url}"));
    }
    // The waiting room: the organizer's form (set, then with an error), the event page's
    // "join the queue" instead of the order form, and the queue page before the opening.
    let queued = seated_event(shop, "Sweep Queue", 2, 5).await?;
    let api = shop.admin_api().await?;
    let room = api
        .http
        .put(format!(
            "{}/api/v1/events/{queued}/waiting-room",
            api.base_url
        ))
        .bearer_auth(&api.token)
        .json(&json!({"opens_at": "2031-01-01T10:00:00Z", "admit_per_min": 600}))
        .send()
        .await?;
    anyhow::ensure!(
        room.status().as_u16() == 200,
        "setting the room: {}",
        room.status()
    );
    staff
        .goto(&shop.url(&format!("/organizer/events/{queued}/waiting-room")))
        .await?;
    wait_for_text(&staff, "600 per minute").await?;
    sweep(&staff, "waiting-room-form", &mut problems).await?;
    fill(&staff, "#admit_per_min", "0").await?;
    click(&staff, "#room-save").await?;
    wait_for_text(&staff, "One thing to fix").await?;
    sweep(&staff, "waiting-room-form-errors", &mut problems).await?;
    buyer.goto(&shop.url(&format!("/events/{queued}"))).await?;
    wait_for_text(&buyer, "id=\"room-join\"").await?;
    sweep(&buyer, "event-waiting-room", &mut problems).await?;
    click(&buyer, "#room-join").await?;
    wait_for_text(&buyer, "You are in the waiting room").await?;
    sweep(&buyer, "queue-pre-queue", &mut problems).await?;
    staff.goto(&shop.url("/door")).await?;
    wait_for_text(&staff, "Door check-in").await?;
    sweep(&staff, "door", &mut problems).await?;
    door_scan(&staff, "TIX1-1-1-00", 1).await?;
    sweep(&staff, "door-refused", &mut problems).await?;
    // Scanning: the camera's view and its status under the form (Chromium's fake camera).
    click(&staff, "#scan").await?;
    wait_for_text(&staff, "Camera on").await?;
    sweep(&staff, "door-scanning", &mut problems).await?;
    click(&staff, "#scan-stop").await?;
    staff
        .goto(&shop.url(&format!("/door?event={event}")))
        .await?;
    wait_for_text(&staff, "id=\"door-count\"").await?;
    sweep(&staff, "door-event", &mut problems).await?;
    staff.goto(&shop.url("/admin/cluster")).await?;
    wait_for_text(&staff, "Cluster status").await?;
    sweep(&staff, "cluster", &mut problems).await?;
    staff.goto(&shop.url("/admin/users")).await?;
    wait_for_text(&staff, "Username starts with").await?;
    sweep(&staff, "admin-users", &mut problems).await?;
    // Cancelling an event: the confirmation, a missing reason, the result, the event's page.
    staff
        .goto(&shop.url(&format!("/organizer/events/{doomed}/cancel")))
        .await?;
    wait_for_text(&staff, "Cancel this event?").await?;
    sweep(&staff, "cancel-confirm", &mut problems).await?;
    click(&staff, "#confirm-cancel").await?;
    wait_for_text(&staff, "Reason: fill this in").await?;
    sweep(&staff, "cancel-confirm-error", &mut problems).await?;
    fill(&staff, "#reason", "A storm is coming; stay safe.").await?;
    click(&staff, "#confirm-cancel").await?;
    text_of(&staff, "#cancel-result").await?;
    sweep(&staff, "cancel-result", &mut problems).await?;
    staff.goto(&shop.url(&format!("/events/{doomed}"))).await?;
    wait_for_text(&staff, "This event was cancelled by the organizer").await?;
    sweep(&staff, "event-cancelled", &mut problems).await?;
    staff.goto(&shop.url(&staff_hold)).await?;
    wait_for_text(&staff, "Cancel and release").await?;
    // The hold is released behind the checkout's back; paying then shows how it ended.
    staff
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
            const form = document.querySelector('form[action$="/release"]');
            fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)) })
              .then(() => done(true), () => done(false));"#,
            vec![],
        )
        .await?;
    fill(&staff, "#card_number", "4242 4242 4242 4242").await?;
    click(&staff, "#pay").await?;
    wait_for_text(&staff, "You released this hold").await?;
    sweep(&staff, "released", &mut problems).await?;
    Ok(problems)
}

/// Presses one key where the focus is (WebDriver's code point: Tab `\u{E004}`, Enter
/// `\u{E007}`, Space `\u{E00D}`, arrows `\u{E012}`–`\u{E015}`).
async fn press(c: &Client, key: char) -> anyhow::Result<()> {
    c.perform_actions(
        KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key }),
    )
    .await?;
    Ok(())
}

/// The accessible name of the focused element, and whether it is a seat of the grid.
async fn focused_seat(c: &Client) -> anyhow::Result<(String, bool)> {
    let v = c
        .execute(
            "const e = document.activeElement;
             return [e ? (e.getAttribute('aria-label') || e.outerHTML.slice(0, 120)) : '',
                     !!(e && e.closest('#seatmap'))];",
            vec![],
        )
        .await?;
    Ok((
        v[0].as_str().unwrap_or_default().to_owned(),
        v[1].as_bool().unwrap_or(false),
    ))
}

const TAB: char = '\u{E004}';
const ENTER: char = '\u{E007}';
const SPACE: char = '\u{E00D}';
const LEFT: char = '\u{E012}';
const RIGHT: char = '\u{E014}';
const DOWN: char = '\u{E015}';

/// The demo arena (20,000 seats in 23 named blocks) at 1366 and 390 px: the event page is an
/// overview with one link per block and no seats; every block's page has its seats, and a block
/// opens from the keyboard; the far-left seat of a row is inside the window after scrolling its
/// box and is booked by a click; the grid is one Tab stop whose arrow keys move by seat and by
/// row, and a seat chosen with Space is booked with Enter; "3 together" holds three adjacent
/// seats of one row; axe-core finds nothing on the overview and a block's page at both widths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arena_is_bookable_by_click_keyboard_and_best_available() -> anyhow::Result<()> {
    let Some(browser) = require::chromedriver() else {
        return Ok(());
    };
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let mut shop = Shop::start(browser).await?;
    // One window (and buyer) per width: each places three holds.
    let windows = [shop.browser().await?, shop.browser().await?];
    let result = arena_checks(&shop, &windows).await;
    for c in windows {
        let _ = c.close().await;
    }
    let problems = result?;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// The checks of [`the_arena_is_bookable_by_click_keyboard_and_best_available`]; returns what
/// axe-core and the page checks found.
async fn arena_checks(shop: &Shop, windows: &[Client; 2]) -> anyhow::Result<Vec<String>> {
    let api = shop.admin_api().await?;
    let listed: Value = api
        .http
        .get(shop.url("/api/v1/events?q=Arena"))
        .send()
        .await?
        .json()
        .await?;
    let arena = &listed["events"][0];
    let id = arena["id"].as_u64().context("the demo arena")?;
    let sections = arena["inventory"]["sections"]
        .as_array()
        .context("the arena has sections")?
        .clone();
    anyhow::ensure!(sections.len() == 23, "{sections:?}");
    let first_seat = |name: &str| {
        sections
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["first_seat"].as_u64())
            .unwrap_or(0) as u32
    };
    let mut problems = Vec::new();
    let page = format!("/events/{id}");
    for (i, (width, height, label)) in SWEEP_WINDOWS.into_iter().enumerate() {
        let c = &windows[i];
        sign_up(
            shop,
            c,
            &format!("arena-{label}"),
            false,
            &format!("arena-signup-{label}"),
        )
        .await?;
        set_viewport(c, width, height).await?;
        c.goto(&shop.url(&page)).await?;
        wait_for_text(c, "Sections — choose one").await?;
        let counts = c
            .execute(
                "return [document.querySelectorAll('a.block').length,
                         document.querySelectorAll('#seatmap input').length];",
                vec![],
            )
            .await?;
        anyhow::ensure!(
            counts == json!([23, 0]),
            "blocks and seats on the overview: {counts}"
        );
        full_shot(c, &format!("arena-overview-{label}"), width, height).await?;
        if i == 0 {
            sweep(c, "arena-overview", &mut problems).await?;
            // Every block's link leads to a page with exactly its seats.
            let seats = c
                .execute_async(
                    r#"const done = arguments[arguments.length - 1];
                    Promise.all(Array.from(document.querySelectorAll("a.block")).map(a =>
                      fetch(a.href).then(r => r.text()).then(t =>
                        [a.querySelector(".block-name").textContent,
                         (t.match(/name="seat"/g) || []).length])))
                      .then(done, e => done(String(e)));"#,
                    vec![],
                )
                .await?;
            for pair in seats.as_array().context("a list")? {
                let name = pair[0].as_str().unwrap_or_default();
                let want = sections.iter().find(|s| s["name"] == name).map(|s| {
                    s["rows"].as_u64().unwrap_or(0) * s["seats_per_row"].as_u64().unwrap_or(0)
                });
                anyhow::ensure!(
                    Some(pair[1].as_u64().unwrap_or(0)) == want,
                    "{name}: {pair}"
                );
            }
        }

        // A block opened from the keyboard; the far-left seat of its third row, by click.
        let clicked = ["Block 101", "Block 105"][i];
        c.execute(
            "document.querySelector(`a.block[href*='${arguments[0]}']`).focus();",
            vec![json!(clicked.replace(' ', "%20"))],
        )
        .await?;
        press(c, ENTER).await?;
        wait_for_url(c, &format!("section={}", clicked.replace(' ', "%20"))).await?;
        wait_for_text(c, &format!("{clicked}, Row 3, Seat 1")).await?;
        let seat = first_seat(clicked) + 2 * 50;
        let inside = c
            .execute(
                "const l = document.querySelector(`label[data-seat='${arguments[0]}']`);
                 l.scrollIntoView({block: 'center', inline: 'nearest'});
                 const r = l.getBoundingClientRect();
                 return [r.left >= 0 && r.right <= window.innerWidth, r.width >= 24 && r.height >= 24,
                         document.documentElement.scrollWidth <= window.innerWidth];",
                vec![json!(seat)],
            )
            .await?;
        anyhow::ensure!(
            inside == json!([true, true, true]),
            "{clicked} row 3 seat 1 at {label}: in the window, 24 px, page not wider: {inside}"
        );
        click(c, &format!("label[data-seat=\"{seat}\"]")).await?;
        wait_for_text(c, &format!("Chosen: {clicked}, Row 3, Seat 1.")).await?;
        shot(c, &format!("arena-section-chosen-{label}")).await?;
        if i == 0 {
            sweep(c, "arena-section", &mut problems).await?;
        }
        click(c, "#order-now").await?;
        wait_for_text(c, "Checkout").await?;
        wait_for_text(c, &format!("{clicked}, Row 3, Seat 1")).await?;
        shot(c, &format!("arena-checkout-click-{label}")).await?;

        // The keyboard: one Tab from the zoom buttons enters the grid at its first free seat;
        // Down twice is row 3, Right and Left move along it; Space chooses; the next Tab
        // leaves the grid; Enter on "Order now" holds the seat.
        let keyed = ["Block 102", "Block 106"][i];
        c.goto(&shop.url(&format!("{page}?section={}", keyed.replace(' ', "%20"))))
            .await?;
        wait_for_text(c, &format!("{keyed}, Row 1, Seat 1")).await?;
        c.execute(
            "document.querySelector('#zoom [data-zoom=\"1\"]').focus();",
            vec![],
        )
        .await?;
        press(c, TAB).await?;
        let (name, in_grid) = focused_seat(c).await?;
        anyhow::ensure!(
            in_grid && name == format!("{keyed}, Row 1, Seat 1"),
            "{name}"
        );
        for key in [DOWN, DOWN, RIGHT, RIGHT, LEFT] {
            press(c, key).await?;
        }
        let (name, _) = focused_seat(c).await?;
        anyhow::ensure!(
            name == format!("{keyed}, Row 3, Seat 2"),
            "after the arrows: {name}"
        );
        press(c, LEFT).await?;
        press(c, SPACE).await?;
        wait_for_text(c, &format!("Chosen: {keyed}, Row 3, Seat 1.")).await?;
        shot(c, &format!("arena-keyboard-{label}")).await?;
        press(c, TAB).await?;
        let (name, in_grid) = focused_seat(c).await?;
        anyhow::ensure!(!in_grid, "one Tab leaves the grid, not {name}");
        c.execute("document.getElementById('order-now').focus();", vec![])
            .await?;
        press(c, ENTER).await?;
        wait_for_text(c, "Checkout").await?;
        wait_for_text(c, &format!("{keyed}, Row 3, Seat 1")).await?;

        // "3 together, best available" in a block: three adjacent seats in one row.
        let together = ["Block 103", "Block 104"][i];
        let before: Value = api
            .http
            .get(shop.url(&format!("/api/v1/events/{id}/seats")))
            .send()
            .await?
            .json()
            .await?;
        c.goto(&shop.url(&format!("{page}?section={}", together.replace(' ', "%20"))))
            .await?;
        wait_for_text(c, &format!("Best available seats together in {together}")).await?;
        c.execute("document.getElementById('together').value = '3';", vec![])
            .await?;
        click(c, "#best-form button[type=submit]").await?;
        wait_for_text(c, "Checkout").await?;
        shot(c, &format!("arena-checkout-together-{label}")).await?;
        let after: Value = api
            .http
            .get(shop.url(&format!("/api/v1/events/{id}/seats")))
            .send()
            .await?
            .json()
            .await?;
        let (before, after) = (
            before["map"].as_str().unwrap_or_default().as_bytes(),
            after["map"].as_str().unwrap_or_default().as_bytes(),
        );
        let held: Vec<u32> = (0..after.len())
            .filter(|&n| after[n] == b'H' && before[n] != b'H')
            .map(|n| n as u32 + 1)
            .collect();
        let first = first_seat(together);
        anyhow::ensure!(
            held.len() == 3
                && held.windows(2).all(|w| w[1] == w[0] + 1)
                && held
                    .iter()
                    .all(|s| (s - first) / 50 == (held[0] - first) / 50),
            "3 together in {together} held {held:?}"
        );
        // Front row, centre: places 24–26 of 50.
        anyhow::ensure!(held[0] == first + 23, "{held:?} from {first}");
    }
    Ok(problems)
}
