//! `tix bench-http`: the quick single-node purchase benchmark. It starts a server (or uses
//! `--url`), creates a fresh event, sends `--purchases` purchases from `--clients` concurrent
//! keep-alive clients, and prints throughput, latency percentiles, the average batch size, and
//! a correctness check against the final availability.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;

use tix_testkit::client::{ApiClient, http_client, metric_value};
use tix_testkit::spawn::ServerProcess;

/// Options of the quick benchmark.
#[derive(Debug, Clone, Args)]
pub struct QuickArgs {
    /// Base URL of a running server; if omitted, a fresh server is started from this binary.
    #[arg(long)]
    pub url: Option<String>,
    /// Admin password of the server at --url (or of the started one).
    #[arg(
        long,
        env = "TIX_ADMIN_PASSWORD",
        default_value = "bench-admin-password"
    )]
    pub admin_password: String,
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Purchases to send (the event gets exactly this many tickets).
    #[arg(long, default_value_t = 100_000)]
    pub purchases: u64,
    /// Inventory: `unnumbered` or `numbered` (each purchase takes a distinct seat).
    #[arg(long, default_value = "unnumbered")]
    pub kind: String,
}

/// What one run measured.
#[derive(Debug)]
pub struct QuickReport {
    /// Purchases answered 201.
    pub sold: u64,
    /// Other answers.
    pub failed: u64,
    /// Wall time of the load phase.
    pub elapsed: Duration,
    /// Latency histogram in microseconds.
    pub latency_us: Histogram<u64>,
    /// Average commands per log entry during the run, from the server's metrics.
    pub batch_commands_avg: Option<f64>,
}

/// Runs the benchmark and prints its report.
pub async fn run(args: QuickArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.clients >= 1 && args.clients <= 4096,
        "--clients must be 1..=4096"
    );
    anyhow::ensure!(
        args.purchases >= 1 && args.purchases <= 1_000_000,
        "--purchases must be 1..=1000000"
    );
    let numbered = match args.kind.as_str() {
        "unnumbered" => false,
        "numbered" => true,
        other => bail!("--kind must be unnumbered or numbered, not {other:?}"),
    };
    let (base_url, server) = target(args.url.as_deref(), &args.admin_password)?;
    let report = measure(&base_url, &args, numbered).await?;
    let secs = report.elapsed.as_secs_f64();
    let h = &report.latency_us;
    println!(
        "tix bench-http: {} {} purchases, {} clients, {base_url}",
        args.purchases, args.kind, args.clients
    );
    println!("  sold                 {}", report.sold);
    println!("  failed               {}", report.failed);
    println!("  elapsed_s            {secs:.3}");
    println!("  purchases_per_s      {:.0}", report.sold as f64 / secs);
    println!("  latency_ms           {}", latency_ms_line(h));
    match report.batch_commands_avg {
        Some(avg) => println!("  batch_commands_avg   {avg:.1}"),
        None => println!("  batch_commands_avg   (server metrics unavailable)"),
    }
    if let Some(server) = &server {
        match peak_rss_kib(server.pid()) {
            Some(kib) => println!("  server_peak_rss_mb   {:.1}", kib as f64 / 1024.0),
            None => println!("  server_peak_rss_mb   (unknown: no /proc)"),
        }
    }
    if report.failed > 0 {
        bail!("{} purchases failed", report.failed);
    }
    Ok(())
}

/// The peak resident set size of a process (`VmHWM` in `/proc/PID/status`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Creates the event, runs the load and checks the result against availability.
pub async fn measure(
    base_url: &str,
    args: &QuickArgs,
    numbered: bool,
) -> anyhow::Result<QuickReport> {
    let http = http_client(args.clients)?;
    let api = ApiClient::login(http, base_url, "admin", &args.admin_password).await?;
    let inventory = if numbered {
        json!({"kind": "numbered", "seats": args.purchases})
    } else {
        json!({"kind": "unnumbered", "capacity": args.purchases})
    };
    let event_id = api.create_event("bench-http", inventory).await?;
    let before = api.metrics_text().await.unwrap_or_default();

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..args.clients {
        let api = api.clone();
        let next = next.clone();
        let total = args.purchases;
        tasks.spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
            let (mut sold, mut failed) = (0u64, 0u64);
            let client_id = format!("bench-{client}");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let seat = numbered.then_some(i as u32 + 1);
                let t = Instant::now();
                let result = api
                    .purchase(event_id, &client_id, &format!("r{i}"), seat)
                    .await;
                latency.saturating_record(t.elapsed().as_micros() as u64);
                match result {
                    Ok((201, _)) => sold += 1,
                    _ => failed += 1,
                }
            }
            (sold, failed, latency)
        });
    }
    let mut report = QuickReport {
        sold: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        batch_commands_avg: None,
    };
    while let Some(joined) = tasks.join_next().await {
        let (sold, failed, latency) = joined?;
        report.sold += sold;
        report.failed += failed;
        report.latency_us.add(latency)?;
    }
    report.elapsed = started.elapsed();

    let after = api.metrics_text().await.unwrap_or_default();
    let delta =
        |name: &str| Some(metric_value(&after, name)? - metric_value(&before, name).unwrap_or(0.0));
    report.batch_commands_avg = match (
        delta("tix_batch_commands_sum"),
        delta("tix_batch_commands_count"),
    ) {
        (Some(sum), Some(count)) if count > 0.0 => Some(sum / count),
        _ => None,
    };
    let availability = api.availability(event_id).await?;
    let sold_final = availability["sold"]
        .as_u64()
        .context("availability without sold")?;
    if sold_final != report.sold {
        bail!(
            "the server reports {sold_final} sold but clients saw {} sales",
            report.sold
        );
    }
    Ok(report)
}

/// Returns the base URL to benchmark: `url` if given, otherwise a fresh server started from
/// this binary with demo data off, kept running by the returned process handle.
fn target(
    url: Option<&str>,
    admin_password: &str,
) -> anyhow::Result<(String, Option<ServerProcess>)> {
    match url {
        Some(url) => Ok((url.trim_end_matches('/').to_owned(), None)),
        None => {
            let exe = std::env::current_exe()?;
            let server = ServerProcess::start(&exe, admin_password, &["--no-demo"])?;
            Ok((server.base_url.clone(), Some(server)))
        }
    }
}

/// Formats latency percentiles of a microsecond histogram as milliseconds.
fn latency_ms_line(h: &hdrhistogram::Histogram<u64>) -> String {
    format!(
        "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.90) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    )
}
