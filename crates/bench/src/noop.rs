//! The direct architecture's ceiling: an HTTP server that answers every request at once with a
//! fixed 201 body shaped like a sale, touching no state. Run behind nginx with the same client
//! settings as a real run, it measures what this machine's client, nginx and HTTP stack can do
//! when the server does nothing (`tix bench-noop`, started by the sweep).

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// The fixed answer: as long as a real sale's body.
const SOLD: &str = r#"{"outcome":"sold","event_id":1,"ticket_id":1,"seat":null,"client_id":"noop","request_id":"noop"}"#;

async fn answer() -> impl IntoResponse {
    (
        StatusCode::CREATED,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        SOLD,
    )
}

/// Serves the no-op handler on `addr` until the process ends.
pub async fn serve(addr: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = Router::new().fallback(answer);
    axum::serve(listener, app).await?;
    Ok(())
}
