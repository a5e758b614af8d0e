//! Fail-stop: a replica whose apply panics (the injected invariant violation) stops serving —
//! `/healthz` answers 503 `failed`, every other request 503 problem+json — instead of answering
//! from a state it no longer trusts. In-process the node marks itself failed
//! (`FailStop::MarkFailed`); the real binary exits (crates/tix/tests/fail_stop.rs).

use reqwest::Method;

use crate::helpers::{numbered, spawn_app_with_node};

/// Arms the fault file, triggers an apply with a purchase, and checks that nothing is served
/// afterwards: health says failed, reads and writes are refused, the sale is not acknowledged.
#[tokio::test]
async fn a_panicking_apply_stops_the_replica_from_serving() {
    let fault_dir = tempfile::tempdir().expect("temporary directory");
    let fault_file = fault_dir.path().join("fail-apply");
    let path = fault_file.clone();
    let app = spawn_app_with_node(move |config| config.faults.fail_apply_file = Some(path)).await;
    let event = app.admin_event(&numbered(10)).await;
    app.sell(event, "c", "before", Some(1)).await.expect(201);
    let health = app
        .request(Method::GET, "/healthz", None, None)
        .await
        .expect(200);
    assert_eq!(health["status"], "ok");
    // Who leads, and the term, are not published to anyone who asks.
    assert_eq!(
        health
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["node_id".to_owned(), "status".to_owned()]),
        "{health}"
    );

    std::fs::write(&fault_file, b"armed").expect("arm the fault");
    let sale = app.sell(event, "c", "during", Some(2)).await;
    assert_ne!(
        sale.status, 201,
        "a sale was acknowledged by a failed apply: {}",
        sale.text
    );
    assert!(
        app.node.shared.failure().is_some(),
        "the replica did not mark itself failed"
    );

    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.json()["status"], "failed");
    // Reads and writes alike are refused, with our problem body and no internals.
    for (method, path) in [
        (Method::GET, format!("/api/v1/events/{event}")),
        (Method::GET, "/api/v1/events".to_owned()),
        (Method::GET, "/".to_owned()),
    ] {
        let reply = app.request(method, &path, None, None).await;
        assert_eq!(reply.status, 503, "{path}: {}", reply.text);
        assert_eq!(reply.content_type(), "application/problem+json", "{path}");
        assert!(
            !reply.text.contains("panicked"),
            "{path} leaks the cause: {}",
            reply.text
        );
    }
    let after = app.sell(event, "c", "after", Some(3)).await;
    assert_eq!(after.status, 503, "{}", after.text);
}
