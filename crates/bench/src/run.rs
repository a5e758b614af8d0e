//! `tix bench`: replays a workload file through the HTTP API against a server it starts itself
//! (or `--url`), prints throughput, latency percentiles, rejections by reason, and the
//! correctness verdict (PASS/FAIL, non-zero exit on FAIL).

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::client::{ApiClient, http_client, latency_ms_line};
use crate::replay::{CONCERT_CAPACITY, replay};
use crate::spawn::target;
use crate::workload::load;

/// Options of `tix bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The workload file (`BUY <client> [<seat>] <request>` lines).
    #[arg(long)]
    pub workload: PathBuf,
    /// Base URL of a running entry point; if omitted, a fresh server is started.
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
}

/// Runs the benchmark and prints its report; an error on any correctness violation.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=4096).contains(&args.clients),
        "--clients must be 1..=4096"
    );
    // The whole file is checked before anything starts.
    let workload = load(&args.workload, CONCERT_CAPACITY)?;
    let (base_url, _server) = target(args.url.as_deref(), &args.admin_password)?;
    let http = http_client(args.clients)?;
    let api = ApiClient::login(http, &base_url, "admin", &args.admin_password).await?;
    let report = replay(&api, &workload, args.clients).await?;
    let secs = report.elapsed.as_secs_f64();
    let h = &report.latency_us;
    println!(
        "tix bench: {} ({} {} lines), {} clients, {base_url}",
        args.workload.display(),
        workload.buys.len(),
        workload.kind,
        args.clients
    );
    println!("  elapsed_s               {secs:.3}");
    println!("  sold                    {}", report.sold());
    println!(
        "  purchases_per_s         {:.0}",
        report.sold() as f64 / secs
    );
    println!(
        "  attempts_per_s          {:.0}",
        workload.buys.len() as f64 / secs
    );
    for (reason, count) in report.rejections() {
        println!("  rejected_{reason:<15} {count}");
    }
    println!("  latency_ms              {}", latency_ms_line(h));
    println!("  final_state_sold        {}", report.sold_final);
    if report.violations.is_empty() {
        println!(
            "PASS: {} sold, as the workload requires; every 201 is in the final state",
            report.sold_final
        );
        return Ok(());
    }
    println!("FAIL:");
    for v in &report.violations {
        println!("  - {v}");
    }
    bail!("{} correctness violations", report.violations.len())
}
