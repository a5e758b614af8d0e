//! Graceful shutdown of a real `tix` process: SIGTERM drains in-flight requests and exits 0, and
//! everything acknowledged before is there after a restart.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::spawn::ServerProcess;

const ADMIN_PASSWORD: &str = "shutdown-test-admin-pw";

/// Checks that SIGTERM during a stream of purchases ends with exit status 0 within the drain
/// timeout and that all purchases answered 201 are present after restarting on the same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly() -> anyhow::Result<()> {
    let exe = Path::new(env!("CARGO_BIN_EXE_tix"));
    let mut server = ServerProcess::start(exe, ADMIN_PASSWORD, &["--no-demo"])?;
    let data_dir = server.data_dir.clone();
    let http = http_client(8)?;
    let api = ApiClient::login(http.clone(), &server.base_url, "admin", ADMIN_PASSWORD).await?;
    let event = api
        .create_event("shutdown", json!({"kind": "unnumbered", "capacity": 1000}))
        .await?;
    let mut acknowledged = 0u64;
    for i in 0..200 {
        let (status, _) = api.purchase(event, "c", &format!("r{i}"), None).await?;
        assert_eq!(status, 201);
        acknowledged += 1;
    }
    let load = {
        let api = api.clone();
        tokio::spawn(async move {
            let mut ok = 0u64;
            for i in 200..5_000 {
                match api.purchase(event, "c", &format!("r{i}"), None).await {
                    Ok((201, _)) => ok += 1,
                    _ => break,
                }
            }
            ok
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let clean = tokio::task::spawn_blocking(move || {
        let clean = server.terminate(Duration::from_secs(20));
        (clean, server)
    })
    .await?;
    let (clean, _stopped) = clean;
    assert!(clean?, "tix did not exit with status 0 after SIGTERM");
    acknowledged += load.await?;

    let server = ServerProcess::start_in(exe, &data_dir, ADMIN_PASSWORD, &["--no-demo"])?;
    let api = ApiClient::login(http, &server.base_url, "admin", ADMIN_PASSWORD).await?;
    let sold = api.availability(event).await?["sold"].as_u64().unwrap();
    assert_eq!(
        sold, acknowledged,
        "acknowledged purchases missing after a clean restart"
    );
    Ok(())
}
