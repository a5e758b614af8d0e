//! `tix bench`: replays a workload file through the direct architecture (keep-alive HTTP to
//! nginx in front of the nodes) or the indirect one (RabbitMQ, consumed by the nodes' in-node
//! intake, `--intake node`, the default, or by `tix worker` processes, `--intake worker`),
//! against a local setup it starts itself (a 3-node cluster with fsync on, by default) or
//! against given addresses; prints throughput, latency percentiles, refusals by reason and the
//! correctness verdict (PASS/FAIL, non-zero exit on FAIL). [`run_local`] is also the unit of
//! `tix bench sweep`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use tix_testkit::client::{ApiClient, http_client};

use crate::cost::{CostMeter, broker_is_local};
use crate::replay::{Answer, CONCERT_CAPACITY, ReplayReport, Transport, replay};
use crate::results::{Architecture, LatencyMs, RunResult};
use crate::setup::{
    WorkerLaunch, addresses_leader_first, start_cluster, start_intake_cluster, start_nginx,
    start_workers,
};
use crate::workload::{Workload, load};

/// The broker the benchmarks use unless told otherwise.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// `--architecture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchitectureArg {
    /// REST through nginx to the HTTP-serving nodes.
    Direct,
    /// RabbitMQ queue consumed by the nodes (or `tix worker` processes: `--intake`).
    Indirect,
}

/// `--intake`: who consumes the queue in the indirect architecture.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Intake {
    /// The nodes themselves (`tix serve --amqp-url`), proposing to the log directly.
    #[default]
    Node,
    /// `tix worker` processes, committing over HTTP.
    Worker,
}

impl Intake {
    /// Its name in results and reports.
    pub fn name(self) -> &'static str {
        match self {
            Intake::Node => "node",
            Intake::Worker => "worker",
        }
    }
}

impl From<ArchitectureArg> for Architecture {
    fn from(a: ArchitectureArg) -> Self {
        match a {
            ArchitectureArg::Direct => Architecture::Direct,
            ArchitectureArg::Indirect => Architecture::Indirect,
        }
    }
}

/// Options of `tix bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The workload file (`BUY <client> [<seat>] <request>` lines).
    #[arg(long)]
    pub workload: Option<PathBuf>,
    /// Direct (REST via nginx) or indirect (RabbitMQ workers).
    #[arg(long, value_enum, default_value_t = ArchitectureArg::Direct)]
    pub architecture: ArchitectureArg,
    /// Base URL of a running setup (nginx or a node); nothing is started. Indirect: a node's
    /// URL, used to create the event and read the final state; workers must be running.
    #[arg(long)]
    pub url: Option<String>,
    /// The broker (indirect).
    #[arg(long, env = "TIX_AMQP_URL", default_value = DEFAULT_AMQP_URL)]
    pub amqp_url: String,
    /// Admin password of the setup at --url.
    #[arg(
        long,
        env = "TIX_ADMIN_PASSWORD",
        default_value = "bench-admin-password",
        hide_env_values = true
    )]
    pub admin_password: String,
    /// Voters of the local cluster started when --url is not given.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Server-side workers of the local setup: HTTP-serving nodes behind nginx (direct,
    /// default: all nodes) or intake consumers (indirect: per node with `--intake node`,
    /// default 1; `tix worker` processes with `--intake worker`, default 2).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Indirect: who consumes the queue — the nodes themselves (`tix serve --amqp-url`) or
    /// separate `tix worker` processes.
    #[arg(long, value_enum, default_value_t = Intake::Node)]
    pub intake: Intake,
    /// Concurrent keep-alive clients (direct; default 64). Each waits for its answer before
    /// sending its next line.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Requests in flight (indirect; default 256): how many purchase requests the requester
    /// keeps published and unanswered at once — the window at which the broker's own echo
    /// stops gaining throughput here (docs/PERFORMANCE.md).
    #[arg(long)]
    pub in_flight: Option<usize>,
    /// Also write the result as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One local run's shape.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The `tix` binary to start.
    pub exe: PathBuf,
    /// The parsed workload.
    pub workload: Workload,
    /// Its file name, for reports.
    pub workload_name: String,
    /// Direct or indirect.
    pub architecture: Architecture,
    /// Voters.
    pub nodes: u64,
    /// Server-side workers.
    pub workers: usize,
    /// Indirect: who consumes the queue.
    pub intake: Intake,
    /// Concurrent clients / requests in flight.
    pub clients: usize,
    /// The broker.
    pub amqp_url: String,
    /// Draw a progress bar.
    pub progress: bool,
}

/// Concurrent clients of a direct run unless `--clients` says otherwise.
pub const DIRECT_CLIENTS: usize = 64;

/// Requests in flight of an indirect run unless `--in-flight` says otherwise: the smallest
/// window at which the broker's own echo stops gaining throughput on the benchmark machine
/// (docs/PERFORMANCE.md, "The intake's window"), so that the echo it is compared with is the
/// broker's limit, not a latency-bound figure. A flash sale through a queue publishes far more
/// than this; a smaller window measures the intake's round-trip latency instead.
pub const INDIRECT_IN_FLIGHT: usize = 256;

/// Returns the concurrency of a run through `architecture`: `--clients` (direct) or
/// `--in-flight` (indirect), each defaulting to its own figure. Naming the other
/// architecture's flag is an error rather than silently ignored.
pub fn concurrency(
    architecture: Architecture,
    clients: Option<usize>,
    in_flight: Option<usize>,
) -> anyhow::Result<usize> {
    match architecture {
        Architecture::Direct => {
            anyhow::ensure!(
                in_flight.is_none(),
                "--in-flight is the indirect window; a direct run takes --clients"
            );
            Ok(clients.unwrap_or(DIRECT_CLIENTS))
        }
        Architecture::Indirect => {
            anyhow::ensure!(
                clients.is_none(),
                "--clients is the direct run's concurrency; an indirect run takes --in-flight \
                 (requests in flight)"
            );
            Ok(in_flight.unwrap_or(INDIRECT_IN_FLIGHT))
        }
    }
}

/// Returns the default number of server-side workers: every node behind nginx (direct), one
/// intake consumer per node (indirect, in-node), or two `tix worker` processes.
pub fn default_workers(architecture: Architecture, intake: Intake, nodes: u64) -> usize {
    match (architecture, intake) {
        (Architecture::Direct, _) => nodes as usize,
        (Architecture::Indirect, Intake::Node) => 1,
        (Architecture::Indirect, Intake::Worker) => 2,
    }
}

/// Checks the shape of a run before anything starts.
pub fn check_spec(
    architecture: Architecture,
    nodes: u64,
    workers: usize,
    clients: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=5).contains(&nodes), "--nodes must be 1 to 5");
    let flag = match architecture {
        Architecture::Direct => "--clients",
        Architecture::Indirect => "--in-flight",
    };
    anyhow::ensure!((1..=4096).contains(&clients), "{flag} must be 1 to 4096");
    match architecture {
        Architecture::Direct => anyhow::ensure!(
            (1..=nodes as usize).contains(&workers),
            "direct --workers are the HTTP-serving nodes behind nginx: 1 to --nodes ({nodes})"
        ),
        Architecture::Indirect => {
            anyhow::ensure!(
                (1..=16).contains(&workers),
                "indirect --workers must be 1 to 16"
            )
        }
    }
    Ok(())
}

/// Starts a fresh local setup, replays the workload through it, verifies, and tears it down.
pub async fn run_local(spec: &RunSpec) -> anyhow::Result<RunResult> {
    check_spec(spec.architecture, spec.nodes, spec.workers, spec.clients)?;
    let queue = tix_amqp::PURCHASE_QUEUE;
    let (cluster, intake) = match (spec.architecture, spec.intake) {
        (Architecture::Indirect, Intake::Node) => {
            let (cluster, requester) =
                start_intake_cluster(&spec.exe, spec.nodes, spec.workers, &spec.amqp_url, queue)
                    .await?;
            (cluster, Some(requester))
        }
        _ => (start_cluster(&spec.exe, spec.nodes).await?, None),
    };
    let addrs = addresses_leader_first(&cluster).await?;
    let leader = cluster
        .wait_for_leader(std::time::Duration::from_secs(30))
        .await?;
    // Indirect: the nodes and the broker; direct adds nginx once it runs.
    let intake_meter = CostMeter::for_cluster(&cluster, leader, broker_is_local(&spec.amqp_url));
    let http = http_client(spec.clients)?;
    let leader_url = format!("http://{}", addrs[0]);
    let api = ApiClient::login(http.clone(), &leader_url, "admin", &cluster.admin_password).await?;
    let report = match (spec.architecture, intake) {
        (Architecture::Direct, _) => {
            let nginx = start_nginx(addrs[..spec.workers].to_vec())?;
            let front = ApiClient {
                base_url: nginx.url.clone(),
                ..api.clone()
            };
            let meter = CostMeter::for_cluster(&cluster, leader, false).with_nginx(nginx.pid());
            let report = replay(
                &api,
                &Transport::Http(front),
                &spec.workload,
                spec.clients,
                spec.progress,
                Some(&meter),
            )
            .await;
            if report.is_err() {
                eprintln!("nginx error log:\n{}", nginx.error_log());
            }
            report?
        }
        (Architecture::Indirect, Some(requester)) => {
            replay(
                &api,
                &Transport::Amqp(requester),
                &spec.workload,
                spec.clients,
                spec.progress,
                Some(&intake_meter),
            )
            .await?
        }
        (Architecture::Indirect, None) => {
            let launch = WorkerLaunch {
                exe: spec.exe.clone(),
                amqp_url: spec.amqp_url.clone(),
                queue: queue.into(),
                api_addrs: addrs.clone(),
                username: "admin".into(),
                password: cluster.admin_password.clone(),
                echo: false,
                log_path: None,
            };
            let (_workers, requester) = start_workers(&launch, spec.workers).await?;
            replay(
                &api,
                &Transport::Amqp(requester),
                &spec.workload,
                spec.clients,
                spec.progress,
                Some(&intake_meter),
            )
            .await?
        }
    };
    Ok(result_of(spec, &report))
}

/// Turns a replay report into the sweep's record.
pub fn result_of(spec: &RunSpec, report: &ReplayReport) -> RunResult {
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    let unknown = report
        .answers
        .iter()
        .filter(|a| matches!(a, Answer::Unknown(_)))
        .count();
    RunResult {
        architecture: spec.architecture,
        workload: spec.workload_name.clone(),
        model: spec.workload.kind.to_string(),
        lines: spec.workload.buys.len(),
        workers: spec.workers,
        intake: (spec.architecture == Architecture::Indirect).then(|| spec.intake.name().into()),
        clients: spec.clients,
        elapsed_s: secs,
        sold: report.sold(),
        rejected: report.rejections(),
        unknown,
        purchases_per_s: report.sold() as f64 / secs,
        answered_per_s: (report.answers.len() - unknown) as f64 / secs,
        latency_ms: LatencyMs::from_us(&report.latency_us),
        pass: report.violations.is_empty(),
        violations: report.violations.clone(),
        fraction_of_ceiling: None,
        cost: report.cost.clone(),
    }
}

/// Prints a run's figures and verdict.
pub fn print_result(r: &RunResult) {
    let workers = match &r.intake {
        Some(intake) if intake == "node" => format!("{} consumers per node", r.workers),
        Some(_) => format!("{} workers", r.workers),
        None => format!("{} workers", r.workers),
    };
    let window = match r.architecture {
        Architecture::Direct => "clients",
        Architecture::Indirect => "requests in flight",
    };
    println!(
        "tix bench: {} ({} {} lines), {}, {workers}, {} {window}",
        r.workload,
        r.lines,
        r.model,
        r.architecture.name(),
        r.clients
    );
    println!("  elapsed_s               {:.3}", r.elapsed_s);
    println!("  sold                    {}", r.sold);
    println!("  purchases_per_s         {:.0}", r.purchases_per_s);
    println!("  answered_per_s          {:.0}", r.answered_per_s);
    for (reason, count) in &r.rejected {
        println!("  rejected_{reason:<15} {count}");
    }
    if r.unknown > 0 {
        println!("  unknown                 {}", r.unknown);
    }
    let l = r.latency_ms;
    println!(
        "  latency_ms              p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        l.p50, l.p90, l.p99, l.max
    );
    if let Some(c) = &r.cost {
        if let (Some(per_entry), Some(entries)) = (c.commands_per_entry, c.log_entries) {
            println!("  commands_per_entry      {per_entry:.1} ({entries} log entries)");
        }
        println!("  cpu_us_per_answer       {}", c.cpu_line());
    }
    if let Some(f) = r.fraction_of_ceiling {
        println!("  fraction_of_ceiling     {f:.2}");
    }
    if r.pass {
        println!(
            "PASS: {} sold, as the workload requires; every 201 is in the final state, nothing else is",
            r.sold
        );
    } else {
        println!("FAIL:");
        for v in r.violations.iter().take(20) {
            println!("  - {v}");
        }
        if r.violations.len() > 20 {
            println!("  ... and {} more", r.violations.len() - 20);
        }
    }
}

/// Returns the file name of `path`, for reports.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Runs the benchmark and prints its report; an error on any correctness violation.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let path = args
        .workload
        .clone()
        .context("--workload FILE is required (or use `tix bench sweep`)")?;
    let architecture = Architecture::from(args.architecture);
    let workers = args
        .workers
        .unwrap_or_else(|| default_workers(architecture, args.intake, args.nodes));
    let clients = concurrency(architecture, args.clients, args.in_flight)?;
    check_spec(architecture, args.nodes, workers, clients)?;
    // The whole file is checked before anything starts.
    let workload = load(&path, CONCERT_CAPACITY)?;
    let spec = RunSpec {
        exe: std::env::current_exe()?,
        workload_name: file_name(&path),
        workload,
        architecture,
        nodes: args.nodes,
        workers,
        intake: args.intake,
        clients,
        amqp_url: args.amqp_url.clone(),
        progress: true,
    };
    let result = match &args.url {
        None => run_local(&spec).await?,
        Some(url) => run_remote(&spec, url, &args.admin_password).await?,
    };
    print_result(&result);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !result.pass {
        bail!("{} correctness violations", result.violations.len());
    }
    Ok(())
}

/// Replays against a setup someone else started: `url` is nginx or a node (direct), or a node
/// with workers already consuming (indirect).
async fn run_remote(spec: &RunSpec, url: &str, admin_password: &str) -> anyhow::Result<RunResult> {
    let http = http_client(spec.clients)?;
    let api = ApiClient::login(http, url, "admin", admin_password).await?;
    let transport = match spec.architecture {
        Architecture::Direct => Transport::Http(api.clone()),
        Architecture::Indirect => {
            Transport::Amqp(tix_amqp::Requester::start(tix_amqp::RequesterConfig {
                amqp_url: spec.amqp_url.clone(),
                ..Default::default()
            }))
        }
    };
    let report = replay(
        &api,
        &transport,
        &spec.workload,
        spec.clients,
        spec.progress,
        None,
    )
    .await?;
    Ok(result_of(spec, &report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_architecture_takes_its_own_window_and_refuses_the_other_flag() {
        let direct = Architecture::Direct;
        let indirect = Architecture::Indirect;
        assert_eq!(concurrency(direct, None, None).unwrap(), DIRECT_CLIENTS);
        assert_eq!(
            concurrency(indirect, None, None).unwrap(),
            INDIRECT_IN_FLIGHT
        );
        assert_eq!(concurrency(direct, Some(8), None).unwrap(), 8);
        assert_eq!(concurrency(indirect, None, Some(512)).unwrap(), 512);
        let e = concurrency(direct, None, Some(512))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--in-flight") && e.contains("--clients"), "{e}");
        let e = concurrency(indirect, Some(8), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--clients") && e.contains("--in-flight"), "{e}");
        let e = check_spec(indirect, 3, 1, 0).unwrap_err().to_string();
        assert!(e.contains("--in-flight must be 1 to 4096"), "{e}");
        let e = check_spec(direct, 3, 1, 5000).unwrap_err().to_string();
        assert!(e.contains("--clients must be 1 to 4096"), "{e}");
    }
}
