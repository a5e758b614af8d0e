//! Starts a fresh single-node tix in-process for one test and wraps every endpoint in a method.
//!
//! Each [`TestApp`] owns its data directory, its Raft node and its HTTP server task, so tests
//! never share state and may run in parallel. Helpers return a [`Reply`] holding the status,
//! headers and raw body; assertions on them panic with the body in the message, so a failure
//! shows what the server said.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tempfile::TempDir;
use tix_http::{AppState, HttpConfig, TestPayments};
use tix_raft::{Node, NodeConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The admin's password in every test app.
pub const ADMIN_PASSWORD: &str = "admin-test-pass-1";
/// The password every test user gets.
pub const USER_PASSWORD: &str = "user-test-pass-1";
/// The test card that is always charged.
pub const CARD_OK: &str = "4242424242424242";
/// The test card that is always declined.
pub const CARD_DECLINED: &str = "4000000000000002";
/// The price of the events the helpers create, in cents.
pub const PRICE_CENTS: u64 = 2_500;
/// How long startup may take before the test fails.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may take before the test fails (the server's own timeout is 10 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A running app: its address, a client, and the admin's session.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Shared client (keeps connections alive between requests).
    pub client: reqwest::Client,
    /// A bearer token of the `admin` account.
    pub admin_token: String,
    /// The Raft node behind the server.
    pub node: Node,
    /// The test payment provider behind the server (what was charged and paid back).
    pub payments: Arc<TestPayments>,
    server: JoinHandle<()>,
    _data_dir: TempDir,
}

/// A signed-in test user.
#[derive(Debug, Clone)]
pub struct User {
    /// Their id.
    pub id: u64,
    /// Their login name.
    pub username: String,
    /// Their bearer token.
    pub token: String,
}

/// What a refused request must leave unchanged, as seen through the API.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    /// The event's availability counters.
    pub counts: Value,
    /// The event's sales export, line by line.
    pub sales: Vec<Value>,
    /// How many events exist.
    pub event_count: u64,
}

/// One HTTP answer, read to the end.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub text: String,
}

impl Reply {
    /// Returns the body parsed as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text))
    }

    /// Returns a header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Returns the media type of the body, without parameters.
    pub fn content_type(&self) -> &str {
        let value = self.header("content-type").unwrap_or("");
        value.split(';').next().unwrap_or("").trim()
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts a problem+json answer with this status and the standard members; returns it.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_problem_shape(self)
    }
}

/// Asserts the RFC 9457 shape every error shares (any 4xx), and returns the body.
pub fn assert_problem_shape(reply: &Reply) -> Value {
    assert!(
        (400..500).contains(&reply.status),
        "expected a 4xx, got {}: {}",
        reply.status,
        reply.text
    );
    assert_eq!(
        reply.content_type(),
        "application/problem+json",
        "body: {}",
        reply.text
    );
    let body = reply.json();
    let kind = body["type"]
        .as_str()
        .unwrap_or_else(|| panic!("no type: {body}"));
    assert!(kind.starts_with("https://"), "type is not a URI: {body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "no title: {body}"
    );
    assert_eq!(
        body["status"],
        json!(reply.status),
        "status member differs: {body}"
    );
    assert!(body["detail"].is_string(), "no detail: {body}");
    body
}

/// Returns the last path segment of a problem's `type` (`seat_taken`).
pub fn problem_kind(body: &Value) -> &str {
    body["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or("")
}

/// Starts a fresh node and server with an `admin` account and returns a handle to it.
pub async fn spawn_app() -> TestApp {
    spawn(HttpConfig::default(), None, |_| {}).await
}

/// Like [`spawn_app`], with these HTTP limits.
pub async fn spawn_app_with(http_config: HttpConfig) -> TestApp {
    spawn(http_config, None, |_| {}).await
}

/// Like [`spawn_app`], with these limits and, if given, a Prometheus recorder for `/metrics`.
pub async fn spawn_app_with_metrics(
    http_config: HttpConfig,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> TestApp {
    spawn(http_config, metrics, |_| {}).await
}

/// Like [`spawn_app`], with the node's configuration adjusted by `adjust` first.
pub async fn spawn_app_with_node(adjust: impl FnOnce(&mut NodeConfig)) -> TestApp {
    spawn(HttpConfig::default(), None, adjust).await
}

/// Starts the app. The listener records each connection's peer address (`ConnectInfo`), as
/// `tix serve` does. A fault makes the in-process node mark itself failed
/// (`FailStop::MarkFailed`), never exit the test binary.
async fn spawn(
    http_config: HttpConfig,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    adjust: impl FnOnce(&mut NodeConfig),
) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let mut config = NodeConfig::new(
        1,
        data_dir.path().join("node-1"),
        "127.0.0.1:0".into(),
        "127.0.0.1:0".into(),
    );
    config.faults.fail_stop = tix_raft::FailStop::MarkFailed;
    adjust(&mut config);
    assert!(
        config.bootstrap,
        "a single test node initializes its own cluster"
    );
    let node = Node::start(config).await.expect("node starts");
    node.wait_for_leader(STARTUP_TIMEOUT)
        .await
        .expect("a leader is elected");
    let payments = Arc::new(TestPayments::default());
    let state = AppState::new(node.clone(), http_config, payments.clone(), metrics);
    tix_http::seed::ensure_admin(&state, Some(ADMIN_PASSWORD.into()))
        .await
        .expect("admin seeded");

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let addr = listener.local_addr().expect("local address");
    // The peer address is recorded, so the login and sign-up limits see who connects.
    let app = tix_http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server runs");
    });
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("client");
    let mut app = TestApp {
        base_url: format!("http://{addr}"),
        client,
        admin_token: String::new(),
        node,
        payments,
        server,
        _data_dir: data_dir,
    };
    let login = app.login("admin", ADMIN_PASSWORD).await.expect(200);
    app.admin_token = login["token"].as_str().expect("token").to_owned();
    app
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    /// Returns a client whose connections come from `source` (any 127.0.0.0/8 address works on
    /// Linux loopback), to play a second client address.
    pub fn client_from(&self, source: IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .local_address(source)
            .build()
            .expect("client")
    }

    /// `POST /auth/login` through `client`.
    pub async fn login_with(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> Reply {
        let body = json!({"username": username, "password": password});
        let url = format!("{}/api/v1/auth/login", self.base_url);
        read(
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// `POST /auth/signup` through `client`.
    pub async fn signup_with(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
    ) -> Reply {
        let body = json!({"username": username, "password": password});
        let url = format!("{}/api/v1/auth/signup", self.base_url);
        read(
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// Sends raw bytes as an `application/json` POST.
    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await.expect("request sent")).await
    }

    /// Asserts the replicated state's invariants (sold + held + free = capacity, each seat in at
    /// most one hold or order, counters match the records).
    pub fn assert_invariants(&self) {
        if let Err(violation) = self.node.shared.check_invariants() {
            panic!("invariant violated: {violation}");
        }
    }

    // ----- accounts -----

    /// `POST /auth/signup`; `role` is sent only when given.
    pub async fn signup(&self, username: &str, password: &str, role: Option<&str>) -> Reply {
        let mut body = json!({"username": username, "password": password});
        if let Some(role) = role {
            body["role"] = json!(role);
        }
        self.request(Method::POST, "/api/v1/auth/signup", None, Some(&body))
            .await
    }

    /// `POST /auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Reply {
        let body = json!({"username": username, "password": password});
        self.request(Method::POST, "/api/v1/auth/login", None, Some(&body))
            .await
    }

    /// `POST /auth/logout`.
    pub async fn logout(&self, token: &str) -> Reply {
        self.request(Method::POST, "/api/v1/auth/logout", Some(token), None)
            .await
    }

    /// `GET /me`.
    pub async fn me(&self, token: Option<&str>) -> Reply {
        self.request(Method::GET, "/api/v1/me", token, None).await
    }

    /// `PUT /users/{id}/role`.
    pub async fn set_role(&self, token: Option<&str>, user_id: u64, role: &str) -> Reply {
        let body = json!({"role": role});
        self.request(
            Method::PUT,
            &format!("/api/v1/users/{user_id}/role"),
            token,
            Some(&body),
        )
        .await
    }

    /// Signs a user up (as `role`, when given) and logs them in.
    pub async fn new_user(&self, username: &str, role: Option<&str>) -> User {
        let created = self.signup(username, USER_PASSWORD, role).await.expect(201);
        User {
            id: created["id"].as_u64().expect("id"),
            username: username.to_owned(),
            token: self.token_of(username).await,
        }
    }

    /// Logs in a user signed up with [`USER_PASSWORD`] (by `new_user` or a page's sign-up)
    /// and returns their bearer token.
    pub async fn token_of(&self, username: &str) -> String {
        let login = self.login(username, USER_PASSWORD).await.expect(200);
        login["token"].as_str().expect("token").to_owned()
    }

    // ----- events -----

    /// `POST /events`.
    pub async fn create_event(&self, token: Option<&str>, body: &Value) -> Reply {
        self.request(Method::POST, "/api/v1/events", token, Some(body))
            .await
    }

    /// `PUT /events/{id}`.
    pub async fn edit_event(&self, token: Option<&str>, event_id: u64, body: &Value) -> Reply {
        self.request(
            Method::PUT,
            &format!("/api/v1/events/{event_id}"),
            token,
            Some(body),
        )
        .await
    }

    /// `GET /events/{id}`.
    pub async fn get_event(&self, event_id: u64) -> Reply {
        self.request(
            Method::GET,
            &format!("/api/v1/events/{event_id}"),
            None,
            None,
        )
        .await
    }

    /// `GET /events?{query}`.
    pub async fn list_events(&self, query: &str) -> Reply {
        self.request(Method::GET, &format!("/api/v1/events?{query}"), None, None)
            .await
    }

    /// `GET /events/{id}/seats`.
    pub async fn seat_map(&self, event_id: u64) -> Reply {
        self.request(
            Method::GET,
            &format!("/api/v1/events/{event_id}/seats"),
            None,
            None,
        )
        .await
    }

    /// Returns the seat map letters of a numbered event (`F`, `H`, `S`, `B`).
    pub async fn seat_letters(&self, event_id: u64) -> String {
        let map = self.seat_map(event_id).await.expect(200);
        map["map"].as_str().expect("map").to_owned()
    }

    /// Returns how many events exist.
    pub async fn event_count(&self) -> u64 {
        self.list_events("per_page=100").await.expect(200)["total"]
            .as_u64()
            .expect("total")
    }

    /// Creates an event as the admin and returns its id.
    pub async fn admin_event(&self, body: &Value) -> u64 {
        self.event_as(&self.admin_token, body).await
    }

    /// Creates an event with `token` and returns its id.
    pub async fn event_as(&self, token: &str, body: &Value) -> u64 {
        self.create_event(Some(token), body).await.expect(201)["id"]
            .as_u64()
            .expect("id")
    }

    // ----- box office -----

    /// `POST /events/{id}/purchases`.
    pub async fn purchase(&self, token: Option<&str>, event_id: u64, body: &Value) -> Reply {
        let path = format!("/api/v1/events/{event_id}/purchases");
        self.request(Method::POST, &path, token, Some(body)).await
    }

    /// A box-office purchase by the admin for `client_id`/`request_id`, optionally of a seat.
    pub async fn sell(
        &self,
        event_id: u64,
        client: &str,
        request: &str,
        seat: Option<u32>,
    ) -> Reply {
        let mut body = json!({"client_id": client, "request_id": request});
        if let Some(seat) = seat {
            body["seat"] = json!(seat);
        }
        self.purchase(Some(&self.admin_token), event_id, &body)
            .await
    }

    /// `GET /events/{id}/availability`.
    pub async fn availability(&self, event_id: u64) -> Reply {
        let path = format!("/api/v1/events/{event_id}/availability");
        self.request(Method::GET, &path, None, None).await
    }

    /// Returns the availability counters of an event (asserting 200).
    pub async fn counts(&self, event_id: u64) -> Value {
        self.availability(event_id).await.expect(200)
    }

    /// `GET /events/{id}/sales`.
    pub async fn sales(&self, token: Option<&str>, event_id: u64) -> Reply {
        self.request(
            Method::GET,
            &format!("/api/v1/events/{event_id}/sales"),
            token,
            None,
        )
        .await
    }

    /// Returns the lines of the sales export, read as the admin.
    pub async fn sales_lines(&self, event_id: u64) -> Vec<Value> {
        let reply = self.sales(Some(&self.admin_token), event_id).await;
        assert_eq!(reply.status, 200, "sales: {}", reply.text);
        assert_eq!(reply.content_type(), "application/x-ndjson");
        reply
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {l:?}: {e}")))
            .collect()
    }

    /// Returns everything a validation failure must leave alone: availability, sales and the
    /// number of events.
    pub async fn snapshot(&self, event_id: u64) -> Snapshot {
        Snapshot {
            counts: self.counts(event_id).await,
            sales: self.sales_lines(event_id).await,
            event_count: self.event_count().await,
        }
    }

    // ----- shop -----

    /// `POST /events/{id}/holds`.
    pub async fn hold(&self, token: Option<&str>, event_id: u64, body: &Value) -> Reply {
        self.request(
            Method::POST,
            &format!("/api/v1/events/{event_id}/holds"),
            token,
            Some(body),
        )
        .await
    }

    /// Places a hold on these seats (asserting 201); returns its id.
    pub async fn hold_ok(
        &self,
        token: &str,
        event_id: u64,
        request_id: &str,
        seats: &[u32],
    ) -> u64 {
        let body = json!({"request_id": request_id, "seats": seats});
        let hold = self.hold(Some(token), event_id, &body).await.expect(201);
        hold["hold_id"].as_u64().expect("hold_id")
    }

    /// `GET /holds/{id}`.
    pub async fn get_hold(&self, token: Option<&str>, hold_id: u64) -> Reply {
        self.request(
            Method::GET,
            &format!("/api/v1/holds/{hold_id}"),
            token,
            None,
        )
        .await
    }

    /// `DELETE /holds/{id}`.
    pub async fn release_hold(&self, token: Option<&str>, hold_id: u64) -> Reply {
        self.request(
            Method::DELETE,
            &format!("/api/v1/holds/{hold_id}"),
            token,
            None,
        )
        .await
    }

    /// `POST /holds/{id}/checkout`.
    pub async fn checkout(&self, token: Option<&str>, hold_id: u64, card: &str) -> Reply {
        let body = json!({"card_number": card});
        let path = format!("/api/v1/holds/{hold_id}/checkout");
        self.request(Method::POST, &path, token, Some(&body)).await
    }

    /// Holds one seat and pays for it with the good card; returns the ticket id.
    pub async fn buy_seat(&self, token: &str, event_id: u64, seat: u32) -> u64 {
        let hold_id = self
            .hold_ok(token, event_id, &format!("buy-seat-{seat}"), &[seat])
            .await;
        let order = self
            .checkout(Some(token), hold_id, CARD_OK)
            .await
            .expect(201);
        order["tickets"][0].as_u64().expect("ticket id")
    }

    /// `GET /orders`.
    pub async fn orders(&self, token: Option<&str>) -> Reply {
        self.request(Method::GET, "/api/v1/orders", token, None)
            .await
    }

    /// `GET /tickets`.
    pub async fn tickets(&self, token: Option<&str>) -> Reply {
        self.request(Method::GET, "/api/v1/tickets", token, None)
            .await
    }

    /// `GET /tickets/{id}`.
    pub async fn get_ticket(&self, token: Option<&str>, ticket_id: u64) -> Reply {
        self.request(
            Method::GET,
            &format!("/api/v1/tickets/{ticket_id}"),
            token,
            None,
        )
        .await
    }

    /// `POST /tickets/{id}/refund`.
    pub async fn refund(&self, token: Option<&str>, ticket_id: u64) -> Reply {
        self.request(
            Method::POST,
            &format!("/api/v1/tickets/{ticket_id}/refund"),
            token,
            None,
        )
        .await
    }

    /// `POST /checkins`.
    pub async fn check_in(&self, token: Option<&str>, ticket_id: u64) -> Reply {
        let body = json!({"ticket_id": ticket_id});
        self.request(Method::POST, "/api/v1/checkins", token, Some(&body))
            .await
    }
}

/// Reads a whole response.
pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body read");
    Reply {
        status,
        headers,
        text,
    }
}

/// A valid event body with the given inventory, starting in 2030.
pub fn event_body(inventory: Value) -> Value {
    json!({
        "name": "Test Concert",
        "description": "An event made by a test.",
        "starts_at": "2030-06-01T20:00:00Z",
        "venue": {"name": "Test Hall", "lat": 51.2316, "lon": 6.7731},
        "price_cents": PRICE_CENTS,
        "currency": "EUR",
        "inventory": inventory,
    })
}

/// A valid body for a numbered event with seats `1..=seats`.
pub fn numbered(seats: u32) -> Value {
    event_body(json!({"kind": "numbered", "seats": seats}))
}

/// A valid body for a general-admission event.
pub fn unnumbered(capacity: u32) -> Value {
    event_body(json!({"kind": "unnumbered", "capacity": capacity}))
}

/// A real PNG of `width` × `height` in one colour, as a browser would decode it.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    tix_testkit::png::rgb(width, height, |_, _| [0x2a, 0x6f, 0xdb])
}
