//! What a test needs from outside the workspace — nginx, RabbitMQ (and `rabbitmqctl`), Chromium
//! with chromedriver, the shared benchmark files beside the project — asked for in one place. When it is missing,
//! the helper says so on the test's stderr (`SKIPPED: ...`, written past the test harness's
//! output capture, so `cargo test` shows it) and returns `None`; the test then returns early.
//! With `TIX_REQUIRE_SERVICES=1` (CI) a missing service fails the test instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that turns a missing service into a failure.
pub const REQUIRE_SERVICES: &str = "TIX_REQUIRE_SERVICES";

/// The environment variable naming the RabbitMQ broker the tests use.
pub const AMQP_URL: &str = "TIX_AMQP_URL";

/// Where Debian installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where Debian installs chromedriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Returns whether a missing service fails the test (`TIX_REQUIRE_SERVICES=1`) rather than
/// skipping it.
pub fn required() -> bool {
    std::env::var(REQUIRE_SERVICES).is_ok_and(|v| v == "1")
}

/// Reports that a test cannot run because of `why`: panics when services are required,
/// otherwise prints `SKIPPED: why` where `cargo test` shows it.
pub fn skip(why: &str) {
    assert!(!required(), "{why} ({REQUIRE_SERVICES}=1)");
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why}");
}

/// Returns `found`, or reports `why` with [`skip`] and returns `None`.
fn or_skip<T>(found: Option<T>, why: impl FnOnce() -> String) -> Option<T> {
    if found.is_none() {
        skip(&why());
    }
    found
}

/// Returns the nginx binary (`TIX_NGINX`, `PATH`, or Debian's `/usr/sbin`).
pub fn nginx() -> Option<PathBuf> {
    match crate::nginx::nginx_binary() {
        Ok(path) => Some(path),
        Err(e) => or_skip(None, || e.to_string()),
    }
}

/// Returns the RabbitMQ URL from `TIX_AMQP_URL`.
pub fn amqp_url() -> Option<String> {
    let url = std::env::var(AMQP_URL).ok().filter(|url| !url.is_empty());
    or_skip(url, || {
        format!("{AMQP_URL} is not set; the test needs RabbitMQ")
    })
}

/// Returns `rabbitmqctl` (which tests use to restart the broker) when it runs.
pub fn rabbitmqctl() -> Option<PathBuf> {
    let program = PathBuf::from("rabbitmqctl");
    let runs = Command::new(&program).arg("version").output().is_ok();
    or_skip(runs.then_some(program), || {
        "rabbitmqctl is not installed; cannot restart the broker".to_owned()
    })
}

/// Chromium and chromedriver, both installed.
#[derive(Debug, Clone)]
pub struct Browser {
    /// The browser binary.
    pub chromium: PathBuf,
    /// The WebDriver server for it.
    pub chromedriver: PathBuf,
}

/// Returns Debian's Chromium and chromedriver when both are installed.
pub fn chromedriver() -> Option<Browser> {
    let (chromium, chromedriver) = (Path::new(CHROMIUM), Path::new(CHROMEDRIVER));
    let found = (chromium.exists() && chromedriver.exists()).then(|| Browser {
        chromium: chromium.to_owned(),
        chromedriver: chromedriver.to_owned(),
    });
    or_skip(found, || {
        "chromium or chromedriver is not installed (apt-get install -y chromium chromium-driver)"
            .to_owned()
    })
}

/// Returns the folder of the workload files that ship with tix (`benchmarks/` in the
/// repository: the concert assignment's files, copied from `../shared/benchmarks`).
pub fn workloads_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benchmarks")
}

/// Returns the shipped workload file `name`.
pub fn workload_file(name: &str) -> PathBuf {
    workloads_dir().join(name)
}

/// Returns the folder of the shared benchmark files, `../shared/benchmarks` beside the
/// workspace (whether or not it exists): the originals the shipped copies must equal.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/benchmarks")
}

/// Returns the shared benchmark file `name` when it exists.
pub fn shared_file(name: &str) -> Option<PathBuf> {
    let path = shared_dir().join(name);
    let found = path.exists().then(|| path.clone());
    or_skip(found, || format!("{} not found", path.display()))
}
