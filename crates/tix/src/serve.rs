//! `tix serve`: the flags become a [`Config`], [`App::build`] starts the node (listeners bound,
//! Raft running, first-start data seeded), and [`App::run_until`] serves until SIGINT/SIGTERM,
//! then drains.

use tix::app::{App, Config};

use crate::cli::ServeArgs;

/// Resolves when SIGINT or SIGTERM arrives.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Runs a node until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let app = App::build(Config::from(args)).await?;
    app.run_until(shutdown_signal()).await;
    Ok(())
}
