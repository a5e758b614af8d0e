//! A node started in-process through the library, as `tix serve` starts one: `App::build` on
//! port 0 with a temporary data directory, `/healthz` and a purchase over real HTTP, then
//! shutdown through the future handed to `run_until`.

use std::time::Duration;

use serde_json::json;
use tix::app::{App, Config};
use tix_testkit::client::{ApiClient, http_client};

const ADMIN_PASSWORD: &str = "in-process-admin-pw";

/// Checks that an App built on port 0 reports the ports it bound, answers `/healthz` and sells
/// a ticket, and that resolving the shutdown future ends `run_until` with both listeners
/// closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_built_in_process_serves_until_told_to_stop() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Config {
        http_addr: "127.0.0.1:0".into(),
        raft_addr: "127.0.0.1:0".into(),
        data_dir: dir.path().join("data"),
        admin_password: Some(ADMIN_PASSWORD.into()),
        demo_data: false,
        ..Config::default()
    };
    let app = App::build(config).await?;
    let (http_addr, raft_addr) = (app.http_addr(), app.raft_addr());
    assert_ne!(http_addr.port(), 0);
    assert_ne!(raft_addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let base_url = format!("http://{http_addr}");
    let http = http_client(4)?;
    let health = http.get(format!("{base_url}/healthz")).send().await?;
    assert_eq!(health.status(), 200, "{}", health.text().await?);
    let api = ApiClient::login(http, &base_url, "admin", ADMIN_PASSWORD).await?;
    let event = api
        .create_event("in-process", json!({"kind": "unnumbered", "capacity": 10}))
        .await?;
    let (status, body) = api.purchase(event, "c", "r1", None).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(api.availability(event).await?["sold"], 1);

    stop.send(()).expect("run_until is waiting");
    tokio::time::timeout(Duration::from_secs(20), running).await??;
    for addr in [http_addr, raft_addr] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts after shutdown"
        );
    }
    Ok(())
}
