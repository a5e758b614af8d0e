//! `tix bench overload`: does a node keep its goodput when offered far more than it can take?
//!
//! It starts a cluster (one node by default) with nginx in front of the leader, measures the
//! unloaded maximum with `--clients` closed-loop clients, then offers `--factor` × the node's
//! in-flight cap in concurrent clients, and reports goodput (purchases sold per second) against
//! the unloaded maximum, the latency of admitted purchases, and how fast the excess was refused
//! (`503` + `Retry-After`). Each client behaves as a well-made client does: on a 503 it waits
//! what `Retry-After` says (with jitter, so refused clients do not return in one wave) and sends
//! the same purchase again with the same request id. The whole measurement is repeated with the
//! cap lifted (`--requests-in-flight-max 1000000`) in the same run, so the two are comparable on
//! a noisy machine. At the end the sold count is checked against the event's availability.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;

use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::cluster::{ClusterOptions, LocalCluster};

use crate::nginx::NginxConfig;
use tix_testkit::nginx::Nginx;
use tix_testkit::spawn::free_port;

use crate::setup::{addresses_leader_first, production_options};

/// The cap used for the uncapped comparison.
const UNCAPPED: usize = 1_000_000;

/// The longest a refused client waits before it tries again, whatever `Retry-After` says.
const RETRY_WAIT_MAX: Duration = Duration::from_secs(5);

/// Options of the overload benchmark.
#[derive(Debug, Clone, Args)]
pub struct OverloadArgs {
    /// Nodes in the cluster (nginx balances over the leader only: the fastest setup).
    #[arg(long, default_value_t = 1)]
    pub nodes: u64,
    /// Closed-loop clients of the unloaded measurement.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// The node's in-flight cap (`tix serve --requests-in-flight-max`).
    #[arg(long, default_value_t = tix_http::defaults::REQUESTS_IN_FLIGHT_MAX)]
    pub requests_in_flight_max: usize,
    /// Offered concurrency in the overload phase, as a multiple of the in-flight cap.
    #[arg(long, default_value_t = 5)]
    pub factor: usize,
    /// Seconds of each phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Skip the comparison run with the cap lifted.
    #[arg(long)]
    pub no_uncapped: bool,
    /// Unloaded and overloaded phases alternate this many times on the same cluster and each
    /// kind is summed over its rounds, so a machine that slows down or speeds up during the run
    /// weighs on both alike.
    #[arg(long, default_value_t = 2)]
    pub rounds: u32,
    /// Where the excess is refused: by nginx before it reaches the node (nginx's in-flight cap
    /// set to the node's, the generated configuration's default) or only by the node.
    #[arg(long, value_enum, default_value_t = ShedAt::Nginx)]
    pub shed_at: ShedAt,
}

/// Where `tix bench overload` has the excess refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShedAt {
    /// nginx answers requests over its cap itself; the node's cap is the second line.
    Nginx,
    /// nginx passes everything on; the node refuses what is over its cap.
    Node,
}

/// What one phase measured.
#[derive(Debug)]
pub struct Phase {
    /// Concurrent clients.
    pub clients: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Purchases answered 201.
    pub sold: u64,
    /// Answers 503 (shed or unavailable).
    pub refused: u64,
    /// 503 answers without a `Retry-After`.
    pub refused_without_retry_after: u64,
    /// Any other answer or a transport error.
    pub errors: u64,
    /// Latency of the 201 answers, per attempt, in microseconds.
    pub admitted_us: Histogram<u64>,
    /// Latency of the 503 answers in microseconds.
    pub refused_us: Histogram<u64>,
    /// What nginx measured for the same requests (its timing log), apart from the clients.
    pub edge: EdgeTimes,
    /// The probe's 503s (see [`probe`]), in microseconds.
    pub probe_refused_us: Histogram<u64>,
}

/// Per-request times nginx logged during a phase (millisecond resolution), in microseconds:
/// `$request_time` (the edge: first byte from the client to last byte sent) and
/// `$upstream_response_time` (the node, connection included) of admitted and refused requests.
/// Against the client's figures, these separate how fast tix answered from how long the
/// benchmark's own 640–1,280 client tasks, sharing the cores, took to see the answer.
#[derive(Debug)]
pub struct EdgeTimes {
    /// `$request_time` of the 201 answers.
    pub admitted_us: Histogram<u64>,
    /// `$request_time` of the 503 answers.
    pub refused_us: Histogram<u64>,
    /// `$upstream_response_time` of the 503 answers.
    pub refused_upstream_us: Histogram<u64>,
}

impl EdgeTimes {
    fn empty() -> EdgeTimes {
        EdgeTimes {
            admitted_us: histogram(),
            refused_us: histogram(),
            refused_upstream_us: histogram(),
        }
    }

    /// Reads the lines of a timing log (`status request_time upstream_response_time`).
    /// Lines that do not parse (a request nginx answered itself logs `-` upstream) are skipped
    /// field by field.
    fn parse(lines: &str) -> EdgeTimes {
        let mut edge = EdgeTimes::empty();
        let us = |field: Option<&str>| -> Option<u64> {
            // nginx lists each upstream tried ("0.002, 0.001"); the last answered.
            let last = field?.rsplit(", ").next()?;
            Some((last.parse::<f64>().ok()? * 1e6).round() as u64)
        };
        for line in lines.lines() {
            let mut fields = line.splitn(3, ' ');
            let status = fields.next();
            let request = us(fields.next());
            let upstream = us(fields.next());
            match (status, request) {
                (Some("201"), Some(t)) => edge.admitted_us.saturating_record(t),
                (Some("503"), Some(t)) => {
                    edge.refused_us.saturating_record(t);
                    if let Some(u) = upstream {
                        edge.refused_upstream_us.saturating_record(u);
                    }
                }
                _ => {}
            }
        }
        edge
    }
}

impl Phase {
    /// Nothing measured yet, for `clients` clients.
    fn empty(clients: usize) -> Phase {
        Phase {
            clients,
            elapsed: Duration::ZERO,
            sold: 0,
            refused: 0,
            refused_without_retry_after: 0,
            errors: 0,
            admitted_us: histogram(),
            refused_us: histogram(),
            edge: EdgeTimes::empty(),
            probe_refused_us: histogram(),
        }
    }

    /// Adds another phase's counts, time and latencies (of the same kind) to this one.
    fn absorb(&mut self, p: &Phase) -> anyhow::Result<()> {
        self.elapsed += p.elapsed;
        self.sold += p.sold;
        self.refused += p.refused;
        self.refused_without_retry_after += p.refused_without_retry_after;
        self.errors += p.errors;
        self.admitted_us.add(&p.admitted_us)?;
        self.refused_us.add(&p.refused_us)?;
        self.edge.admitted_us.add(&p.edge.admitted_us)?;
        self.edge.refused_us.add(&p.edge.refused_us)?;
        self.edge
            .refused_upstream_us
            .add(&p.edge.refused_upstream_us)?;
        self.probe_refused_us.add(&p.probe_refused_us)?;
        Ok(())
    }

    /// Purchases sold per second.
    pub fn goodput(&self) -> f64 {
        self.sold as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the benchmark and prints its report.
pub async fn run(args: OverloadArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=5).contains(&args.nodes), "--nodes must be 1 to 5");
    anyhow::ensure!(
        (1..=1024).contains(&args.clients),
        "--clients must be 1 to 1024"
    );
    anyhow::ensure!((1..=10).contains(&args.factor), "--factor must be 1 to 10");
    anyhow::ensure!((1..=10).contains(&args.rounds), "--rounds must be 1 to 10");
    anyhow::ensure!(
        (1..=2048).contains(&args.requests_in_flight_max),
        "--requests-in-flight-max must be 1 to 2048 here (the offered clients are a multiple)"
    );
    anyhow::ensure!(
        (1..=300).contains(&args.seconds),
        "--seconds must be 1 to 300"
    );
    let exe = std::env::current_exe()?;
    let offered = args.factor * args.requests_in_flight_max;
    println!(
        "tix bench overload: {} node(s), nginx → leader, {} s per phase, {} round(s) of both \
         phases alternated; unloaded {} clients, offered {offered} clients ({}× the in-flight cap); \
         excess refused by {}",
        args.nodes,
        args.seconds,
        args.rounds,
        args.clients,
        args.factor,
        match args.shed_at {
            ShedAt::Nginx => "nginx (the node's cap behind it)",
            ShedAt::Node => "the node",
        }
    );
    let mut caps = vec![args.requests_in_flight_max];
    if !args.no_uncapped {
        caps.push(UNCAPPED);
    }
    let mut verdicts = Vec::new();
    for cap in caps {
        let (unloaded, overloaded) = measure(&exe, &args, cap, offered).await?;
        let label = if cap == UNCAPPED {
            "cap lifted".to_owned()
        } else {
            format!("cap {cap}")
        };
        println!("{label}:");
        print_phase("  unloaded  ", &unloaded);
        print_phase("  overloaded", &overloaded);
        let ratio = overloaded.goodput() / unloaded.goodput();
        println!("  goodput overloaded / unloaded: {ratio:.2}");
        if cap != UNCAPPED {
            verdicts.push((ratio, overloaded));
        }
    }
    for (ratio, overloaded) in verdicts {
        let p99 = overloaded.admitted_us.value_at_quantile(0.99) as f64 / 1000.0;
        let shed_p99 = overloaded.refused_us.value_at_quantile(0.99) as f64 / 1000.0;
        let shed_max = overloaded.refused_us.max() as f64 / 1000.0;
        let probe_p99 = overloaded.probe_refused_us.value_at_quantile(0.99) as f64 / 1000.0;
        let edge_p99 = overloaded.edge.refused_us.value_at_quantile(0.99) as f64 / 1000.0;
        let edge_max = overloaded.edge.refused_us.max() as f64 / 1000.0;
        println!(
            "targets: goodput ≥ 0.90 of unloaded: {ratio:.2} {}; admitted p99 ≤ 50 ms: {p99:.1} ms \
             {}; refusals p99 ≤ 5 ms at the client: {shed_p99:.1} ms (max {shed_max:.1}) {}, at \
             nginx: {edge_p99:.1} ms (max {edge_max:.1}) {}, at the probe: {probe_p99:.1} ms {}; \
             every 503 with Retry-After: {}",
            mark(ratio >= 0.90),
            mark(p99 <= 50.0),
            mark(shed_p99 <= 5.0),
            mark(edge_p99 <= 5.0),
            mark(probe_p99 <= 5.0 && !overloaded.probe_refused_us.is_empty()),
            mark(overloaded.refused_without_retry_after == 0),
        );
    }
    Ok(())
}

fn mark(ok: bool) -> &'static str {
    if ok { "(met)" } else { "(missed)" }
}

fn print_phase(label: &str, p: &Phase) {
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{label} {:>5} clients: goodput {:>7.0}/s; admitted p50/p99 {:.1}/{:.1} ms; \
         503 {} ({:.0}/s, p50/p90/p99/max {:.1}/{:.1}/{:.1}/{:.1} ms, {} without Retry-After); \
         other {}",
        p.clients,
        p.goodput(),
        ms(&p.admitted_us, 0.5),
        ms(&p.admitted_us, 0.99),
        p.refused,
        p.refused as f64 / p.elapsed.as_secs_f64(),
        ms(&p.refused_us, 0.5),
        ms(&p.refused_us, 0.9),
        ms(&p.refused_us, 0.99),
        p.refused_us.max() as f64 / 1000.0,
        p.refused_without_retry_after,
        p.errors,
    );
    let e = &p.edge;
    println!(
        "{:width$}  at nginx: admitted p50/p99 {:.1}/{:.1} ms; 503 answered p50/p99/max \
         {:.1}/{:.1}/{:.1} ms (by the node {:.1}/{:.1}/{:.1} ms); {} 503s logged, {} of them \
         by the node",
        "",
        ms(&e.admitted_us, 0.5),
        ms(&e.admitted_us, 0.99),
        ms(&e.refused_us, 0.5),
        ms(&e.refused_us, 0.99),
        e.refused_us.max() as f64 / 1000.0,
        ms(&e.refused_upstream_us, 0.5),
        ms(&e.refused_upstream_us, 0.99),
        e.refused_upstream_us.max() as f64 / 1000.0,
        e.refused_us.len(),
        e.refused_upstream_us.len(),
        width = label.len(),
    );
    let probe = &p.probe_refused_us;
    if !probe.is_empty() {
        println!(
            "{:width$}  probe (one thread, one connection): 503 p50/p90/p99/max \
             {:.1}/{:.1}/{:.1}/{:.1} ms over {} refusals",
            "",
            ms(probe, 0.5),
            ms(probe, 0.9),
            ms(probe, 0.99),
            probe.max() as f64 / 1000.0,
            probe.len(),
            width = label.len(),
        );
    }
}

/// Starts a cluster with `cap`, measures both phases (unloaded: `args.clients`; overloaded:
/// `offered` clients), checks the sold count and stops it.
pub async fn measure(
    exe: &Path,
    args: &OverloadArgs,
    cap: usize,
    offered: usize,
) -> anyhow::Result<(Phase, Phase)> {
    let options = ClusterOptions {
        extra_args: vec!["--requests-in-flight-max".into(), cap.to_string()],
        ..production_options()
    };
    let cluster = LocalCluster::start(exe, args.nodes, options).await?;
    let leader_first = addresses_leader_first(&cluster).await?;
    let listen = format!("127.0.0.1:{}", free_port()?).parse()?;
    let config = NginxConfig {
        timing_log: true,
        in_flight_max: (args.shed_at == ShedAt::Nginx && cap != UNCAPPED).then_some(cap),
        ..NginxConfig::new(listen, leader_first[..1].to_vec())
    };
    let nginx = Nginx::start(listen, &config.render())?;
    let base_url = nginx.url.clone();
    let http = http_client(offered.max(args.clients))?;
    let api = ApiClient::login(http, &base_url, "admin", &cluster.admin_password).await?;
    let event = api
        .create_event(
            "overload",
            json!({"kind": "unnumbered", "capacity": 1_000_000}),
        )
        .await?;
    let seconds = Duration::from_secs(args.seconds);
    let next = Arc::new(AtomicU64::new(0));
    let mut unloaded = Phase::empty(args.clients);
    let mut overloaded = Phase::empty(offered);
    let mut logged = 0;
    for _ in 0..args.rounds {
        for (clients, total) in [(args.clients, &mut unloaded), (offered, &mut overloaded)] {
            let mut p = phase(&api, event, clients, seconds, &next).await?;
            let log = edge_log(&nginx).await;
            p.edge = EdgeTimes::parse(log.get(logged..).unwrap_or_default());
            logged = log.len();
            total.absorb(&p)?;
        }
    }
    let sold = api.availability(event).await?["sold"]
        .as_u64()
        .context("availability without sold")?;
    let seen = unloaded.sold + overloaded.sold;
    // A purchase still retrying at the deadline may have been sold without its client seeing
    // the 201; never the other way round.
    if sold < seen || sold > seen + offered as u64 {
        bail!("the node sold {sold} but clients saw {seen} sales");
    }
    drop(nginx);
    drop(cluster);
    Ok((unloaded, overloaded))
}

/// The timing log so far, once nginx has flushed its buffer (every 200 ms).
async fn edge_log(nginx: &Nginx) -> String {
    tokio::time::sleep(Duration::from_millis(500)).await;
    nginx.log("timing.log")
}

/// Runs `clients` closed-loop clients for `length`.
async fn phase(
    api: &ApiClient,
    event: u64,
    clients: usize,
    length: Duration,
    next: &Arc<AtomicU64>,
) -> anyhow::Result<Phase> {
    let started = Instant::now();
    let deadline = started + length;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let api = api.clone();
        let next = next.clone();
        tasks.spawn(async move { client_loop(api, event, client, deadline, next).await });
    }
    let probe = {
        let (api, next) = (api.clone(), next.clone());
        std::thread::spawn(move || probe(&api, event, deadline, &next))
    };
    let mut total = Phase::empty(clients);
    while let Some(joined) = tasks.join_next().await {
        total.absorb(&joined??)?;
    }
    let probed = tokio::task::spawn_blocking(move || probe.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the probe panicked"))??;
    total.absorb(&probed)?;
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Pause between the probe's purchases.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);

/// How long the probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A client apart from the crowd: one OS thread, one blocking keep-alive connection to nginx,
/// one purchase every 10 ms (a fresh request id each, never a retry), each timed from the write
/// of the request to the last byte of the answer. The crowd's 640–1,280 tasks share two
/// runtime threads, so their timings include waiting for one of them; the probe's thread is
/// woken by the kernel when its answer arrives, so its 503 times are what a visitor's own
/// device would see of a refusal while the node is saturated. Its 201s count as sales.
fn probe(
    api: &ApiClient,
    event: u64,
    deadline: Instant,
    next: &AtomicU64,
) -> anyhow::Result<Phase> {
    use std::io::{BufReader, Write};

    use tix_testkit::http1;

    let mut p = Phase::empty(0);
    let host = api
        .base_url
        .strip_prefix("http://")
        .context("the probe speaks plain HTTP")?
        .to_owned();
    let mut connection: Option<BufReader<std::net::TcpStream>> = None;
    while Instant::now() < deadline {
        std::thread::sleep(PROBE_INTERVAL);
        let reader = match connection.as_mut() {
            Some(reader) => reader,
            None => {
                let stream = std::net::TcpStream::connect(&host)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(PROBE_TIMEOUT))?;
                connection.insert(BufReader::new(stream))
            }
        };
        let body = json!({
            "client_id": "overload-probe",
            "request_id": format!("o{}", next.fetch_add(1, Ordering::Relaxed)),
        })
        .to_string();
        let request = http1::request(
            "POST",
            &host,
            &format!("/api/v1/events/{event}/purchases"),
            &[
                ("Authorization", &format!("Bearer {}", api.token)),
                ("Content-Type", "application/json"),
            ],
            &body,
        );
        let t = Instant::now();
        let answered = reader
            .get_mut()
            .write_all(request.as_bytes())
            .and_then(|()| http1::read_answer(reader))
            .map(|answer| answer.status);
        let took = t.elapsed().as_micros() as u64;
        match answered {
            Ok(201) => p.sold += 1,
            Ok(503) => p.probe_refused_us.saturating_record(took),
            Ok(_) => p.errors += 1,
            Err(_) => {
                p.errors += 1;
                connection = None;
            }
        }
    }
    Ok(p)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

/// One client: buys until the deadline; a refused purchase is sent again, with the same
/// request id, after the `Retry-After` it was given (jittered by up to a half).
async fn client_loop(
    api: ApiClient,
    event: u64,
    client: usize,
    deadline: Instant,
    next: Arc<AtomicU64>,
) -> anyhow::Result<Phase> {
    let mut p = Phase::empty(1);
    let url = format!("{}/api/v1/events/{event}/purchases", api.base_url);
    let client_id = format!("overload-{client}");
    let mut jitter = client as u64 * 7919;
    'purchases: while Instant::now() < deadline {
        let request_id = format!("o{}", next.fetch_add(1, Ordering::Relaxed));
        let body = json!({"client_id": client_id, "request_id": request_id});
        while Instant::now() < deadline {
            let t = Instant::now();
            let response = api
                .http
                .post(&url)
                .bearer_auth(&api.token)
                .json(&body)
                .send()
                .await;
            let took = t.elapsed().as_micros() as u64;
            let Ok(response) = response else {
                p.errors += 1;
                continue 'purchases;
            };
            match response.status().as_u16() {
                201 => {
                    p.admitted_us.saturating_record(took);
                    p.sold += 1;
                    let _ = response.bytes().await;
                    continue 'purchases;
                }
                503 => {
                    p.refused_us.saturating_record(took);
                    p.refused += 1;
                    let retry_after_s = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let _ = response.bytes().await;
                    let wait = match retry_after_s {
                        Some(s) => Duration::from_secs(s),
                        None => {
                            p.refused_without_retry_after += 1;
                            Duration::from_secs(1)
                        }
                    };
                    // A cheap deterministic jitter in [wait, 1.5 × wait).
                    jitter = jitter.wrapping_mul(6364136223846793005).wrapping_add(1);
                    let extra = wait.mul_f64((jitter >> 33) as f64 / (1u64 << 31) as f64 / 2.0);
                    let pause = (wait + extra).min(RETRY_WAIT_MAX);
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(pause.min(remaining)).await;
                }
                _ => {
                    p.errors += 1;
                    let _ = response.bytes().await;
                    continue 'purchases;
                }
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::EdgeTimes;

    #[test]
    fn the_timing_log_is_read_per_status_and_upstream() {
        let log = "201 0.004 0.004\n503 0.001 0.001\n503 0.002 0.003, 0.001\n\
                   503 0.000 -\n502 0.010 0.010\ngarbage\n";
        let edge = EdgeTimes::parse(log);
        assert_eq!(edge.admitted_us.len(), 1);
        assert_eq!(edge.refused_us.len(), 3);
        // The last upstream tried is the one that answered; `-` (nginx answered) is skipped.
        assert_eq!(edge.refused_upstream_us.len(), 2);
        assert_eq!(edge.refused_upstream_us.max(), 1000);
        assert!(edge.refused_us.equivalent(edge.refused_us.max(), 2000));
    }
}
