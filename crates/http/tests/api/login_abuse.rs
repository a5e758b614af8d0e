//! Login and sign-up abuse over real sockets, with distinct client addresses (connections from
//! 127.0.0.1, 127.0.0.2, ... — all loopback on Linux): a password guesser slows down only
//! itself (and, for an account under attack from many addresses, only the addresses that
//! fail), never the owner logging in from elsewhere; `Retry-After` is the real remaining wait
//! and doubles; sign-ups are limited per address; usernames are one name in any case.

use std::net::IpAddr;
use std::time::Duration;

use tix_http::HttpConfig;
use tokio::time::Instant;

use crate::helpers::{ADMIN_PASSWORD, Reply, TestApp, USER_PASSWORD, spawn_app, spawn_app_with};

const WRONG_PASSWORD: &str = "not-the-password-1";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

/// Returns the `Retry-After` of a 429 (asserting the problem's shape and that the body agrees).
fn retry_after_s(reply: &Reply) -> u64 {
    let body = reply.problem(429);
    let header: u64 = reply
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds");
    assert_eq!(body["retry_after_s"], header, "{body}");
    header
}

/// Sends `tries` wrong-password logins for `username` through `client`; returns how many were
/// answered 401 (tried) and the Retry-After of the 429s (refused before trying).
async fn guess(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    tries: u32,
) -> (u32, Vec<u64>) {
    let (mut tried, mut waits) = (0, Vec::new());
    for _ in 0..tries {
        let reply = app.login_with(client, username, WRONG_PASSWORD).await;
        match reply.status {
            401 => tried += 1,
            429 => waits.push(retry_after_s(&reply)),
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    (tried, waits)
}

// The probe: an attacker at 127.0.0.1 fails 10 times every 5 s for `admin` (three
// rounds). After every round `admin` logs in from 127.0.0.2 at once, while the attacker's
// address is refused with 429 — even with the right password — for a wait that doubles per
// failure past the free ten (1 s, 2 s, 4 s), stated truthfully in Retry-After.
#[tokio::test]
async fn an_attacker_failing_for_admin_does_not_stop_admin_elsewhere() {
    let app = spawn_app().await;
    let attacker = app.client_from(ip("127.0.0.1"));
    let owner = app.client_from(ip("127.0.0.2"));
    let start = Instant::now();
    let mut seen = Vec::new();
    for round in 0..3u32 {
        tokio::time::sleep_until(start + Duration::from_secs(5) * round).await;
        let (tried, waits) = guess(&app, &attacker, "admin", 10).await;
        let refused_with_password = app.login_with(&attacker, "admin", ADMIN_PASSWORD).await;
        let wait = retry_after_s(&refused_with_password);
        seen.push((tried, wait));
        let expected = 1u64 << round;
        assert!(
            waits.iter().all(|w| *w <= expected),
            "round {round}: {waits:?}"
        );
        let login = app.login_with(&owner, "admin", ADMIN_PASSWORD).await;
        login.expect(200);
    }
    // Ten free failures, then one try per round: each failure doubles the wait.
    assert_eq!(seen, [(10, 1), (1, 2), (1, 4)]);
}

// Retry-After is the truth: right after the tenth failure it says 1 s; a login tried after
// waiting that long is tried (401, not 429), and the next wait says 2 s, then 4 s.
#[tokio::test]
async fn retry_after_is_the_real_remaining_wait_and_doubles() {
    let app = spawn_app().await;
    let attacker = app.client_from(ip("127.0.0.3"));
    let (tried, waits) = guess(&app, &attacker, "somebody", 10).await;
    assert_eq!((tried, waits.len()), (10, 0));
    for expected in [1, 2, 4] {
        let refused = app.login_with(&attacker, "somebody", WRONG_PASSWORD).await;
        assert_eq!(retry_after_s(&refused), expected);
        tokio::time::sleep(Duration::from_secs(expected)).await;
        let tried = app.login_with(&attacker, "somebody", WRONG_PASSWORD).await;
        tried.problem(401);
    }
}

// Many addresses guessing one account: past the account's 20 free failures, every address
// that has failed for it waits (429), even one that failed only once; an address that never
// failed for it logs in with the right password at once, and the guessing addresses may still
// log in to other accounts.
#[tokio::test]
async fn guessing_from_many_addresses_slows_only_the_guessers() {
    let app = spawn_app().await;
    let victim = app.new_user("victim", None).await;
    let other = app.new_user("other", None).await;
    let guessers: Vec<reqwest::Client> = (10..31)
        .map(|i| app.client_from(ip(&format!("127.0.1.{i}"))))
        .collect();
    for client in &guessers {
        let (tried, _) = guess(&app, client, &victim.username, 1).await;
        assert_eq!(tried, 1);
    }
    let refused = app
        .login_with(&guessers[0], &victim.username, USER_PASSWORD)
        .await;
    assert_eq!(retry_after_s(&refused), 2, "21 failures: 2 s");
    app.login_with(&guessers[0], &other.username, USER_PASSWORD)
        .await
        .expect(200);
    let owner = app.client_from(ip("127.0.2.1"));
    app.login_with(&owner, &victim.username, USER_PASSWORD)
        .await
        .expect(200);
}

// Behind a trusted proxy the last X-Forwarded-For hop is the client: one forwarded client
// fails into a wait while another forwarded client logs in; the same header from a peer that
// is not the proxy is ignored (its own address is what fails).
#[tokio::test]
async fn a_trusted_proxy_names_the_client() {
    let app = spawn_app_with(HttpConfig {
        trusted_proxies: vec![ip("127.0.0.1")],
        ..HttpConfig::default()
    })
    .await;
    let proxy = app.client_from(ip("127.0.0.1"));
    let login = |client: &reqwest::Client, forwarded: &'static str, password: &str| {
        let body = serde_json::json!({"username": "admin", "password": password});
        client
            .post(format!("{}/api/v1/auth/login", app.base_url))
            .header("x-forwarded-for", forwarded)
            .json(&body)
            .send()
    };
    for _ in 0..10 {
        let r = login(&proxy, "6.6.6.6, 203.0.113.9", WRONG_PASSWORD)
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let refused = login(&proxy, "203.0.113.9", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(refused.status(), 429);
    let owner = login(&proxy, "203.0.113.10", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(owner.status(), 200);
    let spoofer = app.client_from(ip("127.0.0.4"));
    for _ in 0..10 {
        let r = login(&spoofer, "198.51.100.1", WRONG_PASSWORD)
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = login(&proxy, "198.51.100.1", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200, "the spoofed address was never counted");
    let r = login(&spoofer, "198.51.100.2", ADMIN_PASSWORD)
        .await
        .unwrap();
    assert_eq!(r.status(), 429, "the spoofer's own address was");
}

// Sign-ups from both sides of the per-address limit (10 per 10 minutes): ten from one address
// are created, the eleventh is 429 with a Retry-After within the window and creates nothing,
// another address still signs up.
#[tokio::test]
async fn sign_ups_are_limited_per_address() {
    let app = spawn_app().await;
    let crowd = app.client_from(ip("127.0.0.5"));
    for i in 0..10 {
        let name = format!("crowd{i}");
        app.signup_with(&crowd, &name, USER_PASSWORD)
            .await
            .expect(201);
    }
    let refused = app.signup_with(&crowd, "crowd10", USER_PASSWORD).await;
    let wait = retry_after_s(&refused);
    assert!((590..=600).contains(&wait), "{wait}");
    assert_eq!(
        refused.json()["type"],
        "https://tix.invalid/problems/too_many_signups"
    );
    app.login("crowd10", USER_PASSWORD).await.problem(401);
    let elsewhere = app.client_from(ip("127.0.0.6"));
    app.signup_with(&elsewhere, "crowd10", USER_PASSWORD)
        .await
        .expect(201);
}

// Usernames are one name in any case: `Admin` cannot sign up beside `admin` (409), `ADMIN`
// logs in as admin, and a mixed-case name keeps its spelling and logs in in lower case.
#[tokio::test]
async fn usernames_are_unique_and_log_in_ignoring_case() {
    let app = spawn_app().await;
    for name in ["Admin", "ADMIN", "aDmIn"] {
        let taken = app.signup(name, USER_PASSWORD, None).await.problem(409);
        assert_eq!(taken["type"], "https://tix.invalid/problems/username_taken");
    }
    let login = app.login("ADMIN", ADMIN_PASSWORD).await.expect(200);
    assert_eq!(login["user"]["username"], "admin");
    let created = app
        .signup("MixedCase", USER_PASSWORD, None)
        .await
        .expect(201);
    assert_eq!(created["username"], "MixedCase");
    let login = app.login("mixedcase", USER_PASSWORD).await.expect(200);
    assert_eq!(login["user"]["username"], "MixedCase");
}
