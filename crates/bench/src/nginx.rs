//! nginx as the single entry point of the direct architecture: the configuration tix generates
//! (`tix nginx-config` prints it for operators; the benchmark hands it to
//! `tix_testkit::nginx::Nginx`, an nginx child process on 127.0.0.1 it starts and stops itself).
//!
//! The configuration keeps connections to the upstreams alive (`keepalive`, HTTP/1.1, no
//! `Connection: close`), marks an upstream down after failures for a while (passive health
//! checks: `max_fails`/`fail_timeout`), and retries a request on the next upstream when the
//! first could not be reached or answered 502/504 — POSTs included (`non_idempotent`),
//! which is safe here because every purchase carries a request id that makes a repeat return
//! the recorded answer instead of selling twice. A 503 is passed to the client with its
//! `Retry-After`, not retried and not counted as a failure: a node answers 503 when it sheds load
//! (`--requests-in-flight-max`), and counting that would mark every busy node down at once under
//! an on-sale crowd ("no live upstreams", 502 for `fail_timeout`) — the collapse shedding is
//! there to prevent.
//!
//! nginx sheds first: it lets at most `in_flight_max` requests through to the nodes at once (the
//! nodes' caps summed, `limit_conn`) and answers the rest itself, in its event loop, with the
//! nodes' own `503` + `Retry-After` (problem+json on API paths, a page elsewhere), without a hop
//! to a node. A refusal then costs no upstream connection and no node time, and it is as fast as
//! nginx can write it; the node's cap stays the second line, for clients that reach a node
//! directly and for a round-robin that sends one node more than its share. Health checks,
//! metrics, static files, live streams and waiting-room joins are not counted, as at the node
//! (`tix_http::shed`). It passes on the client's `Host` (with its
//! port: the nodes compare it with the browser's `Origin`), the client's address as the last
//! hop of `X-Forwarded-For` and the scheme as `X-Forwarded-Proto`, which the nodes believe when
//! started with `--trusted-proxy <nginx's address>`.

use std::net::SocketAddr;
use std::process::Command;

use tix_testkit::nginx::nginx_binary;

/// The shape of the generated configuration.
#[derive(Debug, Clone)]
pub struct NginxConfig {
    /// Where nginx listens.
    pub listen: SocketAddr,
    /// `host:port` of each HTTP-serving tix process.
    pub upstreams: Vec<String>,
    /// nginx worker processes (`auto` is one per core).
    pub worker_processes: usize,
    /// Idle keep-alive connections each nginx worker keeps per upstream group. It must cover
    /// the concurrency nginx sends upstream, crowds included: beyond it, nginx closes a
    /// connection after each request and opens a new one for the next, and at on-sale rates the
    /// node's accept queue overflows and dropped SYNs cost a 1 s retransmission (measured with
    /// `tix bench overload`: refusal p99 1,060 ms with 256, 68 ms with 2,048, 640 clients).
    pub upstream_keepalive: usize,
    /// Failures within `fail_timeout_s` that mark an upstream down for `fail_timeout_s`.
    pub max_fails: u32,
    /// See `max_fails`.
    pub fail_timeout_s: u32,
    /// Tries per request across upstreams (first try included).
    pub next_upstream_tries: u32,
    /// Write an access log (off for benchmarks: it costs a syscall per request).
    pub access_log: bool,
    /// Write `logs/timing.log`: per request the status, nginx's `$request_time` (first byte
    /// read from the client to the last byte sent) and `$upstream_response_time`, in seconds
    /// with millisecond resolution, buffered. `tix bench overload` reads it to tell how fast the
    /// edge answered apart from how long the benchmark's own clients took to see it.
    pub timing_log: bool,
    /// Requests nginx lets through to the nodes at once; beyond it nginx answers `503` +
    /// `Retry-After` itself. `None` leaves shedding to the nodes alone.
    pub in_flight_max: Option<usize>,
}

impl NginxConfig {
    /// Returns the benchmark's settings for `upstreams`, listening on `listen`.
    /// nginx's in-flight cap is the nodes' default caps summed.
    pub fn new(listen: SocketAddr, upstreams: Vec<String>) -> NginxConfig {
        let upstreams_len = upstreams.len();
        NginxConfig {
            listen,
            upstreams,
            worker_processes: 1,
            upstream_keepalive: 2048,
            max_fails: 3,
            fail_timeout_s: 5,
            next_upstream_tries: 3,
            access_log: false,
            timing_log: false,
            in_flight_max: Some(upstreams_len.max(1) * tix_http::defaults::REQUESTS_IN_FLIGHT_MAX),
        }
    }

    /// Renders `nginx.conf`. Paths (pid file, logs, temp dirs) are relative to the prefix
    /// given with `nginx -p`.
    pub fn render(&self) -> String {
        let servers: String = self
            .upstreams
            .iter()
            .map(|u| {
                format!(
                    "        server {u} max_fails={} fail_timeout={}s;\n",
                    self.max_fails, self.fail_timeout_s
                )
            })
            .collect();
        let mut logs = Vec::new();
        if self.access_log {
            logs.push("access_log logs/access.log;");
        }
        if self.timing_log {
            logs.push("log_format timing '$status $request_time $upstream_response_time';");
            logs.push("access_log logs/timing.log timing buffer=256k flush=200ms;");
        }
        if logs.is_empty() {
            logs.push("access_log off;");
        }
        let access_log = logs.join("\n    ");
        let (shed_zone, api_shed, page_shed) = match self.in_flight_max {
            Some(n) => (
                SHED_ZONE.to_owned(),
                format!(
                    "limit_conn tix_in_flight {n};\n            error_page 503 @busy_api;\n            "
                ),
                format!(
                    "limit_conn tix_in_flight {n};\n            error_page 503 @busy_page;\n            "
                ),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        format!(
            r#"# Generated by tix: nginx as the single entry point in front of the tix nodes.
# Any node serves any request (followers forward writes to the leader), so plain
# round-robin is right; a node that fails is skipped for a while (passive health checks),
# and a purchase that could not be delivered is retried on the next node. Retrying POSTs
# is safe here: the request id makes a repeat return the recorded answer.
# Start the nodes with --trusted-proxy <this nginx's address> so that they count logins and
# sign-ups per client (X-Forwarded-For, last hop) rather than all as this proxy.
worker_processes {workers};
# Each proxied request holds two connections (client and upstream): an on-sale's thousands of
# clients at once need more than the default's 512, and as many open files.
worker_rlimit_nofile 20000;
pid logs/nginx.pid;
error_log logs/error.log warn;
events {{
    worker_connections 8192;
    multi_accept on;
}}
http {{
    {access_log}
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_max_body_size 1m;
{shed_zone}    upstream tix {{
{servers}        keepalive {keepalive};
        keepalive_requests 1000000;
    }}
    server {{
        listen {listen} reuseport backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_buffering off;
        proxy_connect_timeout 2s;
        proxy_read_timeout 30s;
        proxy_next_upstream error timeout http_502 http_504 non_idempotent;
        proxy_next_upstream_tries {tries};
        proxy_next_upstream_timeout 15s;
        # Not counted against the in-flight cap, as at the nodes: health checks and metrics
        # answer under load, static files are cheap, live streams are long-lived (the nodes
        # cap them), and waiting-room joins wait their turn at the node in arrival order.
        location ~ ^(/healthz|/metrics|/favicon\.ico|/static/.*|/events/.+/live|/api/v1/events/.+/queue)$ {{
            proxy_pass http://tix;
        }}
        location ~ ^/(api|cluster)/ {{
            {api_shed}proxy_pass http://tix;
        }}
        location / {{
            {page_shed}proxy_pass http://tix;
        }}
{busy}    }}
}}
"#,
            workers = self.worker_processes,
            keepalive = self.upstream_keepalive,
            listen = self.listen,
            tries = self.next_upstream_tries,
            busy = if self.in_flight_max.is_some() {
                busy_locations()
            } else {
                String::new()
            },
        )
    }
}

/// The shared-memory counter of requests in flight to the nodes: one constant key, so the cap
/// is the whole edge's (an empty key, such as `$server_name` without a `server_name`, would
/// count nothing). A refusal is the nodes' own `503` (`limit_conn_status`), logged below `warn` so
/// that a crowd does not write a line per refused request.
const SHED_ZONE: &str = "    limit_conn_zone edge zone=tix_in_flight:1m;
    limit_conn_status 503;
    limit_conn_log_level info;
";

/// What nginx answers for a request over its cap: the node's answer to the same — the
/// `overloaded` problem+json of [`tix_http::ApiError::Overloaded`] on API paths, elsewhere the
/// shop's error page with its title and detail — with `Retry-After: 1` and the request id
/// nginx made for it.
fn busy_locations() -> String {
    let (_, mut problem) = tix_http::ApiError::Overloaded.problem();
    let text = |member: &str| {
        problem
            .get(member)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let page = busy_page(&text("title"), &text("detail"));
    problem.insert("request_id".into(), "$request_id".into());
    let json = serde_json::Value::Object(problem).to_string();
    format!(
        r#"        location @busy_api {{
            default_type application/problem+json;
            add_header Retry-After 1 always;
            add_header Cache-Control no-store always;
            add_header X-Request-Id $request_id always;
            return 503 '{json}';
        }}
        location @busy_page {{
            default_type "text/html; charset=utf-8";
            add_header Retry-After 1 always;
            add_header Cache-Control no-store always;
            add_header X-Request-Id $request_id always;
            return 503 '{page}';
        }}
"#,
        json = nginx_quoted(&json),
        page = nginx_quoted(&page),
    )
}

/// The shop's error page (`templates/pages/error.html` in the signed-out layout) for nginx to
/// answer a browser with when it is over its cap.
fn busy_page(title: &str, detail: &str) -> String {
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let (title, detail) = (escape(title), escape(detail));
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · tix</title><link rel="stylesheet" href="/static/shop.css"></head>
<body><header class="top"><a class="brand" href="/">tix</a></header>
<main id="content"><section class="panel narrow error-page"><p class="status">503</p><h1>{title}</h1>
<p>{detail}</p><p><a class="button" href="/">Back to the events</a></p></section></main></body></html>
"#
    )
}

/// `text` inside an nginx single-quoted string: quotes and backslashes escaped.
fn nginx_quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Returns `nginx -v`'s version string, or why it could not be read.
pub fn nginx_version() -> String {
    match nginx_binary().and_then(|bin| Ok(Command::new(bin).arg("-v").output()?)) {
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(e) => format!("unavailable: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The generated configuration names every upstream with passive health checks, keeps
    // enough upstream connections alive for a crowd, retries POSTs on the next upstream (but not
    // a 503: shedding), and forwards the Host
    // (with port), the client's address and the scheme.
    #[test]
    fn renders_balancing_keepalive_and_retries() {
        let listen: SocketAddr = "127.0.0.1:18080".parse().unwrap();
        let conf =
            NginxConfig::new(listen, vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()]).render();
        assert!(conf.contains("server 127.0.0.1:1 max_fails=3 fail_timeout=5s;"));
        assert!(conf.contains("server 127.0.0.1:2 max_fails=3 fail_timeout=5s;"));
        assert!(conf.contains("keepalive 2048;"));
        assert!(
            conf.contains("proxy_next_upstream error timeout http_502 http_504 non_idempotent;"),
            "a shed 503 is passed on, never retried or counted as a failure"
        );
        assert!(conf.contains("proxy_http_version 1.1;"));
        assert!(conf.contains("proxy_set_header Connection \"\";"));
        assert!(conf.contains("non_idempotent"));
        assert!(conf.contains("listen 127.0.0.1:18080"));
        assert!(
            conf.contains("proxy_set_header Host $http_host;"),
            "Host keeps its port"
        );
        assert!(conf.contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"));
        assert!(conf.contains("proxy_set_header X-Forwarded-Proto $scheme;"));
        // nginx sheds above the two nodes' default caps summed (tests/nginx_edge.rs runs it).
        let cap = 2 * tix_http::defaults::REQUESTS_IN_FLIGHT_MAX;
        assert_eq!(
            conf.matches(&format!("limit_conn tix_in_flight {cap};"))
                .count(),
            2
        );
        assert!(conf.contains("limit_conn_zone edge zone=tix_in_flight:1m;"));
    }
}
