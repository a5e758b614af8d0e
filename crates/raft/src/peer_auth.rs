//! Authentication of the internal listener: every Raft RPC, forwarded proposal, read index and
//! operator call (`tix cluster ...`) carries an HMAC-SHA256 made with the **cluster secret**, 32
//! random bytes that every member and operator of one cluster shares; the listener refuses
//! anything else with 401 before it reads the body.
//!
//! The credential is one header, [`AUTH_HEADER`]:
//!
//! ```text
//! x-tix-auth: v1 <timestamp_ms> <nonce: 32 hex> <SHA-256 of the body: 64 hex> <MAC: 64 hex>
//! ```
//!
//! The MAC covers a domain-separation tag, the method, the path with its query, the target
//! node (the `x-tix-target-node` header, empty when absent), the timestamp, the nonce and the
//! body's hash. A request that names its target is refused (421) by every other node, so a
//! forwarded proposal or a membership change captured on the wire cannot be replayed to
//! another member; every call that changes something names its target. Because the body's hash is part of the signed header, the
//! listener checks the header (format, clock window, MAC in constant time, nonce) *before* it
//! reads a byte of the body, then reads the body and compares its hash: an unauthenticated
//! sender cannot make a node buffer 64 MiB, and no handler ever sees an unauthenticated body.
//! Each side hashes a body once (Raft appends and 4 MiB snapshot chunks included).
//!
//! Replays are refused twice over: a request stamped more than `auth_window_ms` (default
//! [`AUTH_WINDOW_MS_DEFAULT`], ±30 s) from the receiver's clock is stale, and a nonce seen
//! inside the window is refused. The set of seen nonces is bounded (`auth_nonces_max`): entries
//! expire once their timestamp leaves the window, and when the set is full the oldest are
//! evicted and the receiver refuses everything stamped at or before the newest evicted one
//! (`floor_ms`), so the cap shortens the window under extreme load but never lets a replay in.
//! The floor starts at the node's start time: nonces are kept in memory only, so a restarted
//! node refuses everything stamped before it started rather than forget what it had seen.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::network::TARGET_HEADER;
use crate::proposer::now_ms;
use crate::types::NodeId;

/// The header that carries the credential.
pub const AUTH_HEADER: &str = "x-tix-auth";
/// The default replay window: a request's timestamp may differ this much from the receiver's
/// clock (either way). Members' clocks must agree to well within it (NTP).
pub const AUTH_WINDOW_MS_DEFAULT: u64 = 30_000;
/// The default cap on remembered nonces (each costs about 40 bytes: a few MiB at most).
pub const AUTH_NONCES_MAX_DEFAULT: usize = 100_000;
/// The file a node keeps its secret in, in its data directory, unless told another.
pub const SECRET_FILE_NAME: &str = "cluster.secret";
/// The largest body the internal listener reads (Raft appends; snapshot chunks are 4 MiB).
pub const BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Bytes of a cluster secret.
const SECRET_BYTES: usize = 32;
/// Bytes of a request's nonce.
const NONCE_BYTES: usize = 16;
/// The credential's format version, the header's first word.
const VERSION: &str = "v1";
/// Separates this MAC from any other use of the secret.
const DOMAIN: &[u8] = b"tix-cluster-auth-v1\n";
/// A longer header is refused unparsed (a well-formed one has about 180 characters).
const HEADER_BYTES_MAX: usize = 256;

type HmacSha256 = Hmac<Sha256>;

/// The shared key of one cluster. Its `Debug` form never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret([u8; SECRET_BYTES]);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

/// Why a cluster secret file could not be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read or written.
    #[error("cluster secret file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file does not hold a secret.
    #[error(
        "cluster secret file {}: {reason}; it must hold 64 hex digits (32 random bytes), \
         as `tix cluster secret --out FILE` writes",
        path.display()
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with its contents.
        reason: String,
    },
}

impl ClusterSecret {
    /// Returns a new secret from the operating system's random source (through `rand`'s
    /// thread-local CSPRNG).
    pub fn generate() -> ClusterSecret {
        let mut key = [0; SECRET_BYTES];
        rand::fill(&mut key);
        ClusterSecret(key)
    }

    /// Parses 64 hex digits (surrounding whitespace allowed); returns what is wrong otherwise.
    pub fn from_hex(text: &str) -> Result<ClusterSecret, String> {
        let text = text.trim();
        if text.len() != 2 * SECRET_BYTES {
            return Err(format!("it holds {} characters", text.len()));
        }
        let mut key = [0; SECRET_BYTES];
        hex::decode_to_slice(text, &mut key)
            .map_err(|_| "it holds a character that is not a hex digit".to_owned())?;
        if key.iter().all(|b| *b == key[0]) {
            return Err("it holds one byte repeated, not random bytes".to_owned());
        }
        Ok(ClusterSecret(key))
    }

    /// Returns the secret as 64 hex digits (the file format).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads the secret from `path`.
    pub fn read(path: &Path) -> Result<ClusterSecret, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ClusterSecret::from_hex(&text).map_err(|reason| SecretError::Invalid {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Writes the secret to a new file at `path`, readable by its owner only (mode 0600);
    /// refuses to overwrite an existing file.
    pub fn write_new(&self, path: &Path) -> Result<(), SecretError> {
        let io = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        file.write_all(format!("{}\n", self.to_hex()).as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads the secret at `path`, creating a new one there first if the file does not exist.
    /// Returns the secret and whether it was created.
    pub fn read_or_create(path: &Path) -> Result<(ClusterSecret, bool), SecretError> {
        if !path.exists() {
            let secret = ClusterSecret::generate();
            match secret.write_new(path) {
                Ok(()) => return Ok((secret, true)),
                // Another process created it in between: use theirs.
                Err(SecretError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok((ClusterSecret::read(path)?, false))
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }
}

/// Returns true when `path` can be read by others than its owner (a warning, not a refusal:
/// some secret stores mount files group-readable).
pub fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Signs requests to the internal listener. Cheap to clone (the keyed HMAC state, 200 bytes).
#[derive(Clone)]
pub struct Signer {
    mac: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// Returns a signer with `secret`.
    pub fn new(secret: &ClusterSecret) -> Signer {
        Signer { mac: secret.mac() }
    }

    /// Returns the credential header's value for a request sent now with a fresh nonce;
    /// `target` is the value of its `x-tix-target-node` header, if it has one.
    pub fn header_value(
        &self,
        method: &str,
        path_and_query: &str,
        target: Option<&str>,
        body: &[u8],
    ) -> String {
        let mut nonce = [0; NONCE_BYTES];
        rand::fill(&mut nonce);
        let body_hash: [u8; 32] = Sha256::digest(body).into();
        let fields = Fields {
            method,
            path_and_query,
            target: target.unwrap_or_default(),
        };
        self.header_value_at(&fields, &body_hash, now_ms(), &nonce)
    }

    /// Returns the credential for the given time, nonce and body hash.
    fn header_value_at(
        &self,
        fields: &Fields<'_>,
        body_hash: &[u8; 32],
        timestamp_ms: u64,
        nonce: &[u8; NONCE_BYTES],
    ) -> String {
        let timestamp = timestamp_ms.to_string();
        let nonce = hex::encode(nonce);
        let body_hash = hex::encode(body_hash);
        let mac = signed(self.mac.clone(), fields, &timestamp, &nonce, &body_hash)
            .finalize()
            .into_bytes();
        format!(
            "{VERSION} {timestamp} {nonce} {body_hash} {}",
            hex::encode(mac)
        )
    }

    /// Adds the credential to `request` (set its `x-tix-target-node` header first, if any).
    /// Its body, if any, must be buffered (bytes, JSON), not a stream: the signature covers
    /// the body's hash.
    pub fn sign(&self, request: &mut reqwest::Request) {
        let url = request.url();
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let body = request
            .body()
            .and_then(|b| b.as_bytes())
            .unwrap_or_default();
        let target = request
            .headers()
            .get(TARGET_HEADER)
            .and_then(|v| v.to_str().ok());
        let value = self.header_value(request.method().as_str(), &path_and_query, target, body);
        let value = HeaderValue::from_str(&value).expect("the credential is ASCII");
        request.headers_mut().insert(AUTH_HEADER, value);
    }
}

/// What a credential says about the request besides its body: method, path with query and
/// target node (empty when the request names none).
pub struct Fields<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The path with its query, as sent.
    pub path_and_query: &'a str,
    /// The `x-tix-target-node` header's value, or empty.
    pub target: &'a str,
}

/// Feeds the signed fields into `mac`, each on its own line after the domain tag (no field can
/// hold a line break: methods, request targets, header values, decimal and hex digits).
fn signed(
    mut mac: HmacSha256,
    fields: &Fields<'_>,
    timestamp: &str,
    nonce: &str,
    body_hash: &str,
) -> HmacSha256 {
    mac.update(DOMAIN);
    let (method, path_and_query, target) = (fields.method, fields.path_and_query, fields.target);
    for field in [method, path_and_query, target, timestamp, nonce] {
        mac.update(field.as_bytes());
        mac.update(b"\n");
    }
    mac.update(body_hash.as_bytes());
    mac
}

/// Why a request was refused. `code()` is a stable label (logs, metrics).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credential header.
    #[error("no {AUTH_HEADER} header: the internal listener needs the cluster secret")]
    Missing,
    /// The header is not `v1 <timestamp_ms> <nonce> <body hash> <mac>`.
    #[error("malformed {AUTH_HEADER} header: {0}")]
    Malformed(&'static str),
    /// The timestamp is outside the replay window.
    #[error(
        "the request's timestamp is {skew_ms} ms from this node's clock, outside ±{window_ms} ms \
         (a replay, or clocks out of sync)"
    )]
    Stale {
        /// Request timestamp minus the receiver's clock.
        skew_ms: i64,
        /// The window.
        window_ms: u64,
    },
    /// The MAC does not match: another secret, or a changed method, path, timestamp, nonce or
    /// body hash.
    #[error("the signature does not match (another cluster secret, or a changed request)")]
    BadSignature,
    /// The nonce was seen before inside the window.
    #[error("the request was already received once (replayed nonce)")]
    Replayed,
    /// The request is stamped before what the nonce set covers: before this node started, or
    /// before nonces it had to evict under load.
    #[error(
        "the request is stamped before what this node's replay cache covers (before the node \
         started, or evicted under load)"
    )]
    BeyondReplayCache,
    /// The request names another node as its target.
    #[error("the request is meant for node {0}")]
    Misdirected(String),
    /// The body is not the one the credential signed.
    #[error("the body does not match the signed body hash")]
    BodyMismatch,
}

impl AuthError {
    /// Returns a short stable label of the reason.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::Stale { .. } => "stale",
            AuthError::BadSignature => "bad_signature",
            AuthError::Replayed => "replayed",
            AuthError::BeyondReplayCache => "beyond_replay_cache",
            AuthError::Misdirected(_) => "misdirected",
            AuthError::BodyMismatch => "body_mismatch",
        }
    }
}

/// The fields of a parsed credential header.
struct Credential<'a> {
    timestamp: &'a str,
    timestamp_ms: u64,
    nonce_hex: &'a str,
    nonce: [u8; NONCE_BYTES],
    body_hash_hex: &'a str,
    body_hash: [u8; 32],
    mac: [u8; 32],
}

fn parse(header: &str) -> Result<Credential<'_>, AuthError> {
    if header.len() > HEADER_BYTES_MAX {
        return Err(AuthError::Malformed("too long"));
    }
    let fields: Vec<&str> = header.split(' ').collect();
    let [version, timestamp, nonce_hex, body_hash_hex, mac_hex] = fields[..] else {
        return Err(AuthError::Malformed(
            "expected `v1 <timestamp_ms> <nonce> <body sha256> <mac>`",
        ));
    };
    if version != VERSION {
        return Err(AuthError::Malformed(
            "unknown version (this node speaks v1)",
        ));
    }
    let timestamp_ms = timestamp
        .parse()
        .map_err(|_| AuthError::Malformed("the timestamp is not a number of milliseconds"))?;
    let mut credential = Credential {
        timestamp,
        timestamp_ms,
        nonce_hex,
        nonce: [0; NONCE_BYTES],
        body_hash_hex,
        body_hash: [0; 32],
        mac: [0; 32],
    };
    hex::decode_to_slice(nonce_hex, &mut credential.nonce)
        .map_err(|_| AuthError::Malformed("the nonce is not 32 hex digits"))?;
    hex::decode_to_slice(body_hash_hex, &mut credential.body_hash)
        .map_err(|_| AuthError::Malformed("the body hash is not 64 hex digits"))?;
    hex::decode_to_slice(mac_hex, &mut credential.mac)
        .map_err(|_| AuthError::Malformed("the MAC is not 64 hex digits"))?;
    Ok(credential)
}

/// Nonces seen inside the window, by timestamp, with the floor below which nothing is accepted
/// (raised when the cap evicts entries still inside the window).
#[derive(Debug)]
struct NonceCache {
    seen: BTreeSet<(u64, [u8; NONCE_BYTES])>,
    floor_ms: Option<u64>,
    max: usize,
}

impl NonceCache {
    /// Records a nonce stamped `timestamp_ms`; refuses one already seen or below the floor.
    fn record(
        &mut self,
        timestamp_ms: u64,
        nonce: [u8; NONCE_BYTES],
        now_ms: u64,
        window_ms: u64,
    ) -> Result<(), AuthError> {
        let horizon = now_ms.saturating_sub(window_ms);
        while self.seen.first().is_some_and(|(t, _)| *t < horizon) {
            self.seen.pop_first();
        }
        if self.floor_ms.is_some_and(|floor| timestamp_ms <= floor) {
            return Err(AuthError::BeyondReplayCache);
        }
        if !self.seen.insert((timestamp_ms, nonce)) {
            return Err(AuthError::Replayed);
        }
        while self.seen.len() > self.max {
            if let Some((t, _)) = self.seen.pop_first() {
                self.floor_ms = Some(self.floor_ms.map_or(t, |f| f.max(t)));
            }
        }
        Ok(())
    }
}

/// Checks credentials on the internal listener: the MAC, the window and the nonces.
pub struct Verifier {
    mac: HmacSha256,
    node_id: NodeId,
    window_ms: u64,
    nonces: Mutex<NonceCache>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("window_ms", &self.window_ms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Returns the verifier of node `node_id` for `secret` with a replay window of `window_ms`
    /// either way and at most `nonces_max` remembered nonces (both must be above zero), which
    /// refuses requests stamped at or before `started_ms` (it saw none of those).
    pub fn new(
        secret: &ClusterSecret,
        node_id: NodeId,
        window_ms: u64,
        nonces_max: usize,
        started_ms: u64,
    ) -> Verifier {
        assert!(
            window_ms > 0 && nonces_max > 0,
            "auth limits must be above zero"
        );
        Verifier {
            mac: secret.mac(),
            node_id,
            window_ms,
            nonces: Mutex::new(NonceCache {
                seen: BTreeSet::new(),
                floor_ms: Some(started_ms),
                max: nonces_max,
            }),
        }
    }

    /// Checks the credential `header` of a request received at `now_ms`, refuses it when it
    /// names another node, and records its nonce; returns the body hash the credential signed.
    /// The body itself is checked afterwards with [`check_body`].
    pub fn verify(
        &self,
        fields: &Fields<'_>,
        header: Option<&HeaderValue>,
        now_ms: u64,
    ) -> Result<[u8; 32], AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let header = header
            .to_str()
            .map_err(|_| AuthError::Malformed("not ASCII"))?;
        let c = parse(header)?;
        let skew_ms = c.timestamp_ms as i128 - now_ms as i128;
        if skew_ms.unsigned_abs() > u128::from(self.window_ms) {
            return Err(AuthError::Stale {
                skew_ms: skew_ms.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                window_ms: self.window_ms,
            });
        }
        signed(
            self.mac.clone(),
            fields,
            c.timestamp,
            c.nonce_hex,
            c.body_hash_hex,
        )
        .verify_slice(&c.mac)
        .map_err(|_| AuthError::BadSignature)?;
        if !fields.target.is_empty() && fields.target != self.node_id.to_string() {
            return Err(AuthError::Misdirected(fields.target.to_owned()));
        }
        // Only authenticated requests reach the cache, so a flood of forgeries cannot fill it.
        self.nonces
            .lock()
            .expect("the nonce cache is never poisoned: no panics under its lock")
            .record(c.timestamp_ms, c.nonce, now_ms, self.window_ms)?;
        Ok(c.body_hash)
    }
}

/// Checks that `body` is the body whose hash the credential signed.
pub fn check_body(signed_hash: &[u8; 32], body: &[u8]) -> Result<(), AuthError> {
    let hash: [u8; 32] = Sha256::digest(body).into();
    if hash == *signed_hash {
        Ok(())
    } else {
        Err(AuthError::BodyMismatch)
    }
}

/// The axum middleware in front of every route of the internal listener: verifies the
/// credential, then reads the body (at most [`BODY_BYTES_MAX`]) and checks its hash, and only
/// then hands the request on. A refusal is a 401 problem+json with the reason; nothing runs.
pub async fn authenticate(
    State(verifier): State<Arc<Verifier>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let target = match parts.headers.get(TARGET_HEADER).map(HeaderValue::to_str) {
        None => "",
        Some(Ok(target)) => target,
        Some(Err(_)) => return refused(&AuthError::Malformed("the target node is not ASCII")),
    };
    let fields = Fields {
        method: parts.method.as_str(),
        path_and_query: parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        target,
    };
    let verified = verifier.verify(&fields, parts.headers.get(AUTH_HEADER), now_ms());
    let signed_hash = match verified {
        Ok(hash) => hash,
        Err(e) => return refused(&e),
    };
    let bytes = match axum::body::to_bytes(body, BODY_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(e) => return (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()).into_response(),
    };
    if let Err(e) = check_body(&signed_hash, &bytes) {
        return refused(&e);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Returns the 401 (421 for another node's request) for `e`, counted by reason
/// (`tix_cluster_auth_refused_total`).
fn refused(e: &AuthError) -> Response {
    metrics::counter!("tix_cluster_auth_refused_total", "reason" => e.code()).increment(1);
    tracing::debug!(reason = e.code(), error = %e, "internal request refused");
    let status = match e {
        AuthError::Misdirected(_) => StatusCode::MISDIRECTED_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    let body = serde_json::json!({
        "type": "about:blank",
        "title": status.canonical_reason(),
        "status": status.as_u16(),
        "detail": e.to_string(),
        "reason": e.code(),
    });
    (
        status,
        [
            (CONTENT_TYPE, "application/problem+json"),
            (WWW_AUTHENTICATE, "TixCluster v1"),
        ],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;
    const WINDOW: u64 = 30_000;

    fn secret(byte: u8) -> ClusterSecret {
        let mut key = [byte; SECRET_BYTES];
        key[0] = 0;
        ClusterSecret(key)
    }

    /// Returns the verifier of node 1, started well before the window of `NOW`.
    fn verifier() -> Verifier {
        Verifier::new(&secret(7), 1, WINDOW, 10, NOW - 2 * WINDOW)
    }

    fn fields<'a>(method: &'a str, path_and_query: &'a str, target: &'a str) -> Fields<'a> {
        Fields {
            method,
            path_and_query,
            target,
        }
    }

    /// Returns a credential for a request without a target.
    fn header(
        signer: &Signer,
        method: &str,
        path: &str,
        body: &[u8],
        at: u64,
        nonce: u8,
    ) -> HeaderValue {
        header_for(signer, &fields(method, path, ""), body, at, nonce)
    }

    fn header_for(
        signer: &Signer,
        fields: &Fields<'_>,
        body: &[u8],
        at: u64,
        nonce: u8,
    ) -> HeaderValue {
        let hash: [u8; 32] = Sha256::digest(body).into();
        let value = signer.header_value_at(fields, &hash, at, &[nonce; NONCE_BYTES]);
        HeaderValue::from_str(&value).expect("ascii")
    }

    /// Verifies header and body of a request without a target as the middleware does.
    fn check(
        verifier: &Verifier,
        method: &str,
        path: &str,
        body: &[u8],
        header: &HeaderValue,
    ) -> Result<(), AuthError> {
        let hash = verifier.verify(&fields(method, path, ""), Some(header), NOW)?;
        check_body(&hash, body)
    }

    // Signs one request and checks that it passes, then that each change refuses it with its
    // reason: another secret, method, path, query, body; a replay of the same nonce.
    #[test]
    fn a_valid_request_passes_and_any_change_is_refused() {
        let (signer, verifier) = (Signer::new(&secret(7)), verifier());
        let body = b"append entries";
        let h = header(&signer, "POST", "/raft/append", body, NOW, 1);
        assert_eq!(check(&verifier, "POST", "/raft/append", body, &h), Ok(()));

        let other = Signer::new(&secret(8));
        let forged = header(&other, "POST", "/raft/append", body, NOW, 2);
        let result = check(&verifier, "POST", "/raft/append", body, &forged);
        assert_eq!(result, Err(AuthError::BadSignature));

        let h = header(&signer, "POST", "/cluster/metrics?digest=true", b"", NOW, 3);
        let result = check(&verifier, "GET", "/cluster/metrics?digest=true", b"", &h);
        assert_eq!(result, Err(AuthError::BadSignature), "method changed");
        let h = header(&signer, "POST", "/cluster/read-index", b"", NOW, 4);
        let result = check(&verifier, "POST", "/cluster/init", b"", &h);
        assert_eq!(result, Err(AuthError::BadSignature), "path changed");
        let h = header(&signer, "GET", "/cluster/metrics?digest=false", b"", NOW, 5);
        let result = check(&verifier, "GET", "/cluster/metrics?digest=true", b"", &h);
        assert_eq!(result, Err(AuthError::BadSignature), "query changed");
        let h = header(&signer, "POST", "/cluster/propose", b"[]", NOW, 6);
        let result = check(&verifier, "POST", "/cluster/propose", b"[SetRole]", &h);
        assert_eq!(result, Err(AuthError::BodyMismatch), "body changed");

        let h = header(&signer, "POST", "/raft/vote", b"v", NOW, 9);
        assert_eq!(check(&verifier, "POST", "/raft/vote", b"v", &h), Ok(()));
        let result = check(&verifier, "POST", "/raft/vote", b"v", &h);
        assert_eq!(result, Err(AuthError::Replayed));
    }

    // Checks the window from both sides: exactly ±window passes, one millisecond beyond it (in
    // the past and in the future) is stale, and the reason carries the skew.
    #[test]
    fn the_timestamp_must_be_inside_the_window_either_way() {
        let (signer, verifier) = (Signer::new(&secret(7)), verifier());
        let at = |t: u64, nonce: u8| header(&signer, "POST", "/raft/vote", b"", t, nonce);
        assert_eq!(
            check(&verifier, "POST", "/raft/vote", b"", &at(NOW - WINDOW, 1)),
            Ok(())
        );
        assert_eq!(
            check(&verifier, "POST", "/raft/vote", b"", &at(NOW + WINDOW, 2)),
            Ok(())
        );
        let past = check(
            &verifier,
            "POST",
            "/raft/vote",
            b"",
            &at(NOW - WINDOW - 1, 3),
        );
        assert_eq!(
            past,
            Err(AuthError::Stale {
                skew_ms: -30_001,
                window_ms: WINDOW
            })
        );
        let future = check(
            &verifier,
            "POST",
            "/raft/vote",
            b"",
            &at(NOW + WINDOW + 1, 4),
        );
        assert_eq!(
            future,
            Err(AuthError::Stale {
                skew_ms: 30_001,
                window_ms: WINDOW
            })
        );
    }

    // Checks that a missing header and each kind of malformed header are refused by reason,
    // before any MAC is computed.
    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let verifier = verifier();
        assert_eq!(
            verifier.verify(&fields("POST", "/raft/vote", ""), None, NOW),
            Err(AuthError::Missing)
        );
        let good = header(&Signer::new(&secret(7)), "POST", "/raft/vote", b"", NOW, 1);
        let good = good.to_str().expect("ascii");
        let parts: Vec<&str> = good.split(' ').collect();
        let cases = [
            ("", "expected"),
            ("v1 1 2 3", "expected"),
            (&good.replacen("v1", "v2", 1), "unknown version"),
            (&good.replacen(parts[1], "soon", 1), "timestamp"),
            (&good.replacen(parts[2], "zz", 1), "nonce"),
            (&good.replacen(parts[3], &"g".repeat(64), 1), "body hash"),
            (&format!("{good}0"), "MAC"),
            (&format!("{good} extra"), "expected"),
            (&"v1 ".repeat(100), "too long"),
        ];
        for (value, reason) in cases {
            let value = HeaderValue::from_str(value).expect("header value");
            match verifier.verify(&fields("POST", "/raft/vote", ""), Some(&value), NOW) {
                Err(AuthError::Malformed(text)) => assert!(text.contains(reason), "{value:?}"),
                other => panic!("{value:?} gave {other:?}"),
            }
        }
    }

    // Checks the target node: a request signed for node 1 passes at node 1; signed for node 2
    // it is misdirected there; a target header added, removed or changed after signing breaks
    // the signature.
    #[test]
    fn the_target_node_is_signed_and_checked() {
        let (signer, verifier) = (Signer::new(&secret(7)), verifier());
        let propose = |target| fields("POST", "/cluster/propose", target);
        let for_1 = header_for(&signer, &propose("1"), b"batch", NOW, 1);
        assert_eq!(
            verifier
                .verify(&propose("1"), Some(&for_1), NOW)
                .map(|_| ()),
            Ok(())
        );
        let for_2 = header_for(&signer, &propose("2"), b"batch", NOW, 2);
        assert_eq!(
            verifier.verify(&propose("2"), Some(&for_2), NOW),
            Err(AuthError::Misdirected("2".into()))
        );
        let for_2 = header_for(&signer, &propose("2"), b"batch", NOW, 3);
        assert_eq!(
            verifier.verify(&propose("1"), Some(&for_2), NOW),
            Err(AuthError::BadSignature),
            "target changed"
        );
        let for_none = header_for(&signer, &propose(""), b"batch", NOW, 4);
        assert_eq!(
            verifier.verify(&propose("1"), Some(&for_none), NOW),
            Err(AuthError::BadSignature),
            "target added"
        );
        let for_1 = header_for(&signer, &propose("1"), b"batch", NOW, 5);
        assert_eq!(
            verifier.verify(&propose(""), Some(&for_1), NOW),
            Err(AuthError::BadSignature),
            "target removed"
        );
    }

    // Checks that a node refuses what was stamped at or before its start (its nonces from an
    // earlier run are gone), and takes what was stamped after.
    #[test]
    fn a_restarted_node_refuses_requests_stamped_before_it_started() {
        let signer = Signer::new(&secret(7));
        let verifier = Verifier::new(&secret(7), 1, WINDOW, 10, NOW);
        let vote = fields("POST", "/raft/vote", "");
        let before = header(&signer, "POST", "/raft/vote", b"", NOW - 1, 1);
        assert_eq!(
            verifier.verify(&vote, Some(&before), NOW),
            Err(AuthError::BeyondReplayCache)
        );
        let after = header(&signer, "POST", "/raft/vote", b"", NOW + 1, 2);
        assert!(verifier.verify(&vote, Some(&after), NOW).is_ok());
    }

    // Checks the bounded nonce cache: nonces expire with the window (an old nonce is forgotten
    // once its timestamp left it), and when the cap evicts nonces still inside the window,
    // requests stamped at or before the evicted ones are refused rather than risk a replay,
    // while fresher ones still pass.
    #[test]
    fn the_nonce_cache_is_bounded_and_never_admits_a_replay() {
        let mut cache = NonceCache {
            seen: BTreeSet::new(),
            floor_ms: None,
            max: 3,
        };
        let n = |b: u8| [b; NONCE_BYTES];
        for (i, b) in (1..=3).enumerate() {
            assert_eq!(cache.record(NOW + i as u64, n(b), NOW, WINDOW), Ok(()));
        }
        assert_eq!(
            cache.record(NOW + 3, n(4), NOW, WINDOW),
            Ok(()),
            "over the cap"
        );
        assert_eq!(cache.seen.len(), 3);
        assert_eq!(
            cache.record(NOW, n(1), NOW, WINDOW),
            Err(AuthError::BeyondReplayCache)
        );
        assert_eq!(
            cache.record(NOW, n(9), NOW, WINDOW),
            Err(AuthError::BeyondReplayCache)
        );
        assert_eq!(
            cache.record(NOW + 1, n(2), NOW, WINDOW),
            Err(AuthError::Replayed)
        );
        // A window later every entry has expired; the floor is in the past and stays harmless.
        let later = NOW + 2 * WINDOW;
        assert_eq!(cache.record(later, n(1), later, WINDOW), Ok(()));
        assert_eq!(cache.seen.len(), 1);
    }

    // Checks the secret file: written with mode 0600, read back equal; refused with the file's
    // name when short, not hex, or one repeated byte; read_or_create creates once, then reads.
    #[test]
    fn secret_files_are_private_and_checked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(SECRET_FILE_NAME);
        let (created, fresh) = ClusterSecret::read_or_create(&path).expect("created");
        assert!(fresh);
        assert!(!readable_by_others(&path));
        let (read, fresh) = ClusterSecret::read_or_create(&path).expect("read");
        assert!(!fresh);
        assert_eq!(read, created);
        assert!(created.write_new(&path).is_err(), "never overwrites");
        assert_eq!(format!("{created:?}"), "ClusterSecret(..)");

        for (contents, reason) in [
            ("abcd\n", "4 characters"),
            (&"x".repeat(64), "not a hex digit"),
            (&"00".repeat(32), "repeated"),
        ] {
            let bad = dir.path().join("bad.secret");
            std::fs::write(&bad, contents).expect("write");
            let e = ClusterSecret::read(&bad).expect_err("refused").to_string();
            assert!(e.contains("bad.secret") && e.contains(reason), "{e}");
        }
        let e = ClusterSecret::read(&dir.path().join("absent")).expect_err("refused");
        assert!(e.to_string().contains("absent"), "{e}");
    }
}
