//! Request ids: every answer names its request (`x-request-id`), error bodies carry the same id,
//! a client's well-formed id is kept and anything else replaced.

use reqwest::Method;

use crate::helpers::spawn_app;

/// Sends requests with and without ids of their own and compares header, body and echo.
#[tokio::test]
async fn every_answer_names_its_request_and_errors_carry_the_id() {
    let app = spawn_app().await;
    let reply = app
        .request(Method::GET, "/api/v1/events/999999", None, None)
        .await;
    let body = reply.problem(404);
    let header = reply
        .header("x-request-id")
        .expect("an id header")
        .to_owned();
    assert_eq!(body["request_id"], header.as_str(), "{body}");
    let ok = app.request(Method::GET, "/healthz", None, None).await;
    let other = ok.header("x-request-id").expect("an id on success too");
    assert_ne!(other, header, "two requests, one id");

    let sent = |id: &'static str| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/events/999999", app.base_url);
        async move {
            let response = client
                .get(url)
                .header("x-request-id", id)
                .send()
                .await
                .unwrap();
            let echoed = response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            let body: serde_json::Value = response.json().await.unwrap();
            (echoed, body)
        }
    };
    let (echoed, body) = sent("trace-abc.123").await;
    assert_eq!(echoed, "trace-abc.123");
    assert_eq!(body["request_id"], "trace-abc.123");
    let (echoed, body) = sent("<script>alert(1)</script>").await;
    assert!(!echoed.contains('<'), "a malformed id was kept: {echoed}");
    assert_eq!(body["request_id"], echoed.as_str());
}
