//! The generated nginx configuration sheds at the edge: with as many requests in flight to the
//! nodes as its cap, nginx answers the next one itself — `503`, `Retry-After`, the nodes'
//! problem+json on API paths and a page elsewhere — while health checks, live streams and
//! waiting-room joins still go through. The "node" here is a socket that reads requests and never
//! answers, so every request it holds stays in flight and any answer the client gets came from
//! nginx. Needs nginx (Debian package); without it the test says so and skips, unless
//! `TIX_REQUIRE_SERVICES=1`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tix_bench::nginx::NginxConfig;
use tix_testkit::http1;
use tix_testkit::nginx::Nginx;
use tix_testkit::require;
use tix_testkit::spawn::free_port;

/// A node that never answers: records each request line it reads and keeps the connection.
fn silent_node() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let record = record.clone();
            std::thread::spawn(move || {
                // nginx keeps upstream connections alive: read request after request.
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line.starts_with("GET ") || line.starts_with("POST ") {
                        record.lock().unwrap().push(line.trim_end().to_owned());
                    }
                    line.clear();
                }
            });
        }
    });
    (addr, seen)
}

/// Sends a request on a new connection and returns the stream to read its answer from.
fn send(edge: SocketAddr, method: &str, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(edge).unwrap();
    let body = if method == "POST" { "{}" } else { "" };
    let request = http1::request(
        method,
        &edge.to_string(),
        path,
        &[("Content-Type", "application/json")],
        body,
    );
    stream.write_all(request.as_bytes()).unwrap();
    stream
}

/// Reads one answer (head and a `Content-Length` body) within 5 s.
fn answer(stream: TcpStream) -> (String, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let answer = http1::read_answer(&mut BufReader::new(stream)).expect("an answer from nginx");
    assert!(
        answer
            .head
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: "),
        "a Content-Length: {}",
        answer.head
    );
    (answer.head, String::from_utf8(answer.body).unwrap())
}

/// nginx in front of a silent node: where it listens, the process, and what the node saw.
struct Edge {
    listen: SocketAddr,
    _nginx: Nginx,
    seen: Arc<Mutex<Vec<String>>>,
}

/// nginx from the generated configuration with `in_flight_max`, in front of a silent node;
/// `None` (the test skips) without nginx.
fn edge(in_flight_max: Option<usize>) -> Option<Edge> {
    require::nginx()?;
    let (node, seen) = silent_node();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port().unwrap())
        .parse()
        .unwrap();
    let config = NginxConfig {
        in_flight_max,
        ..NginxConfig::new(listen, vec![node])
    };
    let conf = config.render();
    assert_eq!(
        conf.contains("limit_conn"),
        in_flight_max.is_some(),
        "{conf}"
    );
    Some(Edge {
        listen,
        _nginx: Nginx::start(listen, &conf).unwrap(),
        seen,
    })
}

/// Waits until the silent node has seen `n` requests.
fn wait_seen(seen: &Mutex<Vec<String>>, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = seen.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(Instant::now() < deadline, "the node saw only {now:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn nginx_answers_what_is_over_its_cap_and_lets_exempt_paths_through() {
    let Some(Edge {
        listen,
        _nginx,
        seen,
    }) = edge(Some(2))
    else {
        return;
    };

    // Two purchases fill the cap and stay in flight: the node never answers them.
    let _held = [
        send(listen, "POST", "/api/v1/events/1/purchases"),
        send(listen, "POST", "/api/v1/events/1/purchases"),
    ];
    wait_seen(&seen, 2);

    let (head, body) = answer(send(listen, "POST", "/api/v1/events/1/purchases"));
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("Retry-After: 1\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/problem+json"),
        "{head}"
    );
    let problem: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        problem["type"], "https://tix.invalid/problems/overloaded",
        "{body}"
    );
    // The node's own answer to the same, but for the request id.
    let (_, node) = tix_http::ApiError::Overloaded.problem();
    for member in ["type", "title", "status", "detail"] {
        assert_eq!(problem[member], node[member], "{member}: {body}");
    }
    let request_id = problem["request_id"].as_str().expect("a request id");
    assert!(
        head.contains(&format!("X-Request-Id: {request_id}")),
        "{head}"
    );

    let (head, body) = answer(send(listen, "GET", "/events/1"));
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("Retry-After: 1\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/html"), "{head}");
    assert!(body.contains("<h1>Too busy right now</h1>"), "{body}");
    assert!(
        body.contains(&format!("<p>{}</p>", node["detail"].as_str().unwrap())),
        "{body}"
    );

    // Not counted: these reach the node although the cap is full.
    let _exempt = [
        send(listen, "GET", "/healthz"),
        send(listen, "GET", "/events/1/live"),
        send(listen, "POST", "/api/v1/events/1/queue"),
    ];
    let now = wait_seen(&seen, 5);
    for line in [
        "GET /healthz HTTP/1.1",
        "GET /events/1/live HTTP/1.1",
        "POST /api/v1/events/1/queue HTTP/1.1",
    ] {
        assert!(now.iter().any(|l| l == line), "{line} not in {now:?}");
    }
    assert_eq!(
        now.iter()
            .filter(|l| l.as_str() == "POST /api/v1/events/1/purchases HTTP/1.1")
            .count(),
        2,
        "the refused purchase never reached the node: {now:?}"
    );
}

#[test]
fn without_a_cap_nginx_passes_everything_on() {
    let Some(Edge {
        listen,
        _nginx,
        seen,
    }) = edge(None)
    else {
        return;
    };
    let _held: Vec<_> = (0..4)
        .map(|_| send(listen, "POST", "/api/v1/events/1/purchases"))
        .collect();
    wait_seen(&seen, 4);
}
