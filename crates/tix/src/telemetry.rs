//! Logging setup: `tracing` to stderr (filter with `RUST_LOG`). (The Prometheus recorder that
//! renders `/metrics` is installed by `tix::app::App::build`.)

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber; `RUST_LOG` overrides the default `info,openraft=warn`.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
