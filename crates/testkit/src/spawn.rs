//! Starts a `tix serve` child process on free 127.0.0.1 ports with a fresh data directory, for
//! tests and benchmarks that need a real server, and stops it when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running `tix serve` child.
pub struct ServerProcess {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// `127.0.0.1:PORT`, the public listener (for raw sockets).
    pub http_addr: String,
    /// The Raft RPC address.
    pub raft_addr: String,
    /// The data directory.
    pub data_dir: PathBuf,
    child: Child,
    _temp: Option<tempfile::TempDir>,
}

/// Returns a port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl ServerProcess {
    /// Starts `exe serve` with a temporary data directory and the given admin password, and
    /// waits until `/healthz` answers.
    pub fn start(exe: &Path, admin_password: &str, extra_args: &[&str]) -> anyhow::Result<Self> {
        let temp = tempfile::tempdir()?;
        let data_dir = temp.path().join("data");
        let mut server = Self::start_in(exe, &data_dir, admin_password, extra_args)?;
        server._temp = Some(temp);
        Ok(server)
    }

    /// Starts `exe serve` on an existing data directory (to test restarts).
    pub fn start_in(
        exe: &Path,
        data_dir: &Path,
        admin_password: &str,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let http_addr = format!("127.0.0.1:{}", free_port()?);
        let raft_addr = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new(exe)
            .arg("serve")
            .args(["--http-addr", &http_addr, "--raft-addr", &raft_addr])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra_args)
            .env("TIX_ADMIN_PASSWORD", admin_password)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut server = ServerProcess {
            base_url: format!("http://{http_addr}"),
            http_addr,
            raft_addr,
            data_dir: data_dir.to_path_buf(),
            child,
            _temp: None,
        };
        server.wait_healthy(Duration::from_secs(60))?;
        Ok(server)
    }

    fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let addr = self.http_addr.clone();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("tix exited during startup with {status}");
            }
            if let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let req =
                    format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
                if stream.write_all(req.as_bytes()).is_ok() {
                    let mut buf = String::new();
                    let _ = stream.read_to_string(&mut buf);
                    if buf.starts_with("HTTP/1.1 200") {
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("tix did not become healthy within {timeout:?}")
    }

    /// Returns the child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no shutdown, no flush) and waits for it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Sends SIGTERM and waits for a graceful exit; returns whether it exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.success());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill()?;
        Ok(false)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
