//! nginx as a child process: finding the binary, and an nginx master on 127.0.0.1 with its own
//! prefix directory, started from a given configuration and stopped when dropped. (The
//! configuration tix generates for nginx is `tix_bench::nginx::NginxConfig`.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Finds the nginx binary (Debian installs it in /usr/sbin, often not on a user's PATH).
pub fn nginx_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("TIX_NGINX") {
        return Ok(PathBuf::from(path));
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':').chain([
        "/usr/sbin",
        "/usr/local/sbin",
        "/usr/local/nginx/sbin",
    ]) {
        let candidate = Path::new(dir).join("nginx");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("nginx is not installed (apt-get install -y nginx), or set TIX_NGINX to its path")
}

/// An nginx master process in the foreground, with its own prefix directory; stopped (fast
/// shutdown) when dropped.
pub struct Nginx {
    /// `http://listen`.
    pub url: String,
    child: Child,
    _prefix: tempfile::TempDir,
}

impl Nginx {
    /// Returns the master process's id (its worker processes are its children).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `conf_text` (an `nginx.conf` whose paths are relative to its prefix directory,
    /// listening on `listen`), checks it with `nginx -t`, starts nginx and waits until it accepts
    /// connections.
    pub fn start(listen: SocketAddr, conf_text: &str) -> anyhow::Result<Nginx> {
        let bin = nginx_binary()?;
        let prefix = tempfile::tempdir()?;
        for dir in ["logs", "tmp"] {
            std::fs::create_dir_all(prefix.path().join(dir))?;
        }
        let conf = prefix.path().join("nginx.conf");
        std::fs::write(&conf, conf_text)?;
        let check = Command::new(&bin)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf)
            .arg("-t")
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        if !check.status.success() {
            bail!(
                "nginx refused the generated configuration:\n{}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
        let child = Command::new(&bin)
            .arg("-p")
            .arg(prefix.path())
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut nginx = Nginx {
            url: format!("http://{}", listen),
            child,
            _prefix: prefix,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(listen).is_err() {
            if let Some(status) = nginx.child.try_wait()? {
                let log = std::fs::read_to_string(nginx._prefix.path().join("logs/error.log"))
                    .unwrap_or_default();
                bail!(
                    "nginx exited ({status}) before listening on {}:\n{log}",
                    listen
                );
            }
            if Instant::now() > deadline {
                bail!("nginx did not listen on {} within 10 s", listen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }

    /// Returns the error log so far (to explain a failed run).
    pub fn error_log(&self) -> String {
        self.log("error.log")
    }

    /// Returns what nginx has written so far to `logs/<name>` in its prefix directory (empty
    /// when there is no such file), e.g. an access log the configuration asked for.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self._prefix.path().join("logs").join(name)).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown; the master takes its workers down with it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
