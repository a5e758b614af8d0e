//! A small typed client for the parts of the API tests and benchmarks drive: login, create an
//! event, purchase, availability, sales, metrics.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// How long [`ApiClient::login`] waits out a throttled (429) login.
const LOGIN_THROTTLED_WAIT: Duration = Duration::from_secs(60);

/// A client bound to one base URL with one bearer token.
#[derive(Clone)]
pub struct ApiClient {
    /// The shared connection pool.
    pub http: reqwest::Client,
    /// `http://host:port`.
    pub base_url: String,
    /// The bearer token.
    pub token: String,
}

/// Builds a keep-alive HTTP/1.1 client with a per-request timeout.
pub fn http_client(pool_size: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(pool_size)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

impl ApiClient {
    /// Logs in and returns a client carrying the token. A 429 (this address failed logins
    /// before, e.g. while polling for the admin account at startup) is waited out as its
    /// `Retry-After` says, for up to `LOGIN_THROTTLED_WAIT`.
    pub async fn login(
        http: reqwest::Client,
        base_url: &str,
        username: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        let deadline = std::time::Instant::now() + LOGIN_THROTTLED_WAIT;
        let response = loop {
            let response = http
                .post(format!("{base_url}/api/v1/auth/login"))
                .json(&json!({"username": username, "password": password}))
                .send()
                .await?;
            let retry_after_s = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            let wait = Duration::from_secs(retry_after_s.max(1));
            if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS
                || std::time::Instant::now() + wait > deadline
            {
                break response;
            }
            tokio::time::sleep(wait).await;
        };
        if !response.status().is_success() {
            bail!(
                "login as {username} failed: {} {}",
                response.status(),
                response.text().await?
            );
        }
        let body: Value = response.json().await?;
        let token = body["token"]
            .as_str()
            .context("login answer has no token")?
            .to_owned();
        Ok(Self {
            http,
            base_url: base_url.to_owned(),
            token,
        })
    }

    /// Creates an event with the given inventory JSON; returns its id.
    pub async fn create_event(&self, name: &str, inventory: Value) -> anyhow::Result<u64> {
        let body = json!({
            "name": name,
            "description": "benchmark event",
            "starts_at": "2030-01-01T20:00:00Z",
            "venue": {"name": "Benchmark Hall", "lat": 51.2, "lon": 6.8},
            "price_cents": 5000,
            "currency": "EUR",
            "inventory": inventory,
        });
        let response = self
            .http
            .post(format!("{}/api/v1/events", self.base_url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        if response.status().as_u16() != 201 {
            bail!(
                "creating the event failed: {} {}",
                response.status(),
                response.text().await?
            );
        }
        let event: Value = response.json().await?;
        event["id"].as_u64().context("event without id")
    }

    /// Sends one purchase; returns the status code and body.
    pub async fn purchase(
        &self,
        event_id: u64,
        client_id: &str,
        request_id: &str,
        seat: Option<u32>,
    ) -> reqwest::Result<(u16, Value)> {
        let mut body = json!({"client_id": client_id, "request_id": request_id});
        if let Some(seat) = seat {
            body["seat"] = json!(seat);
        }
        let response = self
            .http
            .post(format!(
                "{}/api/v1/events/{event_id}/purchases",
                self.base_url
            ))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let value = response.json().await.unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Reads availability (linearizable).
    pub async fn availability(&self, event_id: u64) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1/events/{event_id}/availability", self.base_url);
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Reads the sales export (linearizable), one JSON value per ticket.
    pub async fn sales(&self, event_id: u64) -> anyhow::Result<Vec<Value>> {
        let url = format!("{}/api/v1/events/{event_id}/sales", self.base_url);
        let text = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        text.lines().map(|l| Ok(serde_json::from_str(l)?)).collect()
    }

    /// Reads `/metrics` as text (it answers admins and the metrics token only: this client's
    /// token must be one of them).
    pub async fn metrics_text(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.base_url))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }
}

/// Returns the value of a metric line `name value` (first match) from Prometheus text.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (key, value) = l.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}
