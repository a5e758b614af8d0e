//! `tix bench sweep`: every workload file through both architectures with 1..N server-side
//! workers, each run on a fresh local 3-node cluster (fsync on) and verified; the machine's
//! ceilings measured in the same sweep (nginx → a no-op handler, RabbitMQ → an echo worker,
//! same client settings); then `results.json`, `results.csv`, the plots, and — with
//! `--report` — `docs/BENCHMARK.md`, whose hand-written analysis (`docs/bench/analysis.md`) is
//! kept while tables and plots are refreshed. `--from-results` redraws from a saved run.

use std::path::{Path, PathBuf};
use tix_raft::node::defaults;

use anyhow::{Context, bail};
use clap::Args;
use tix_testkit::client::{ApiClient, http_client};

use crate::cost::{CostMeter, broker_is_local, metered};
use crate::replay::{CONCERT_CAPACITY, Transport, load};
use crate::results::{
    Alternated, Architecture, CeilingResult, ECHO_CEILING, LatencyMs, MachineFacts, RunResult,
    SweepConfig, SweepResults,
};
use crate::run::{DEFAULT_AMQP_URL, Intake, RunSpec, file_name, print_result, run_local};
use crate::setup::{Helper, WorkerLaunch, spawn_noop, start_nginx, start_workers};
use crate::workload::{Buy, Workload, load as load_workload};

/// The shared workload files, in the order they are run.
pub const WORKLOAD_FILES: [&str; 4] = [
    "benchmark_unnumbered.txt",
    "benchmark_numbered.txt",
    "benchmark_unnumbered_oversubscribed.txt",
    "benchmark_numbered_hotspot.txt",
];

/// Options of `tix bench sweep`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Where results.json, results.csv and the plots are written.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// Also regenerate this report (e.g. docs/BENCHMARK.md); its plots go to `bench/` beside it.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// The folder holding the workload files (the ones shipped in `benchmarks/`, run from the
    /// repository root).
    #[arg(long, default_value = "benchmarks")]
    pub workloads_dir: PathBuf,
    /// Only these files of the folder (default: all four).
    #[arg(long = "workload")]
    pub workloads: Vec<String>,
    /// Voters of each run's cluster.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Concurrent clients of the direct runs and the nginx ceiling.
    #[arg(long, default_value_t = crate::run::DIRECT_CLIENTS)]
    pub clients: usize,
    /// Requests in flight of the indirect runs and the broker's echo ceiling (the same window
    /// for both, so their ratio compares like with like; see `tix bench --in-flight`).
    #[arg(long, default_value_t = crate::run::INDIRECT_IN_FLIGHT)]
    pub in_flight: usize,
    /// Worker counts for the direct architecture (HTTP-serving nodes behind nginx).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub direct_workers: Vec<usize>,
    /// Consumer counts for the indirect architecture (per node, or `tix worker` processes:
    /// `--intake`).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
    pub indirect_workers: Vec<usize>,
    /// Indirect: who consumes the queue — the nodes themselves (`tix serve --amqp-url`) or
    /// separate `tix worker` processes.
    #[arg(long, value_enum, default_value_t = Intake::Node)]
    pub intake: Intake,
    /// Requests per ceiling measurement (0: no ceilings).
    #[arg(long, default_value_t = 40_000)]
    pub ceiling_requests: usize,
    /// The smallest sweep, for CI: the unnumbered file, direct with all nodes, indirect with 2
    /// consumers (per node, or workers), short ceilings.
    #[arg(long)]
    pub quick: bool,
    /// The broker.
    #[arg(long, env = "TIX_AMQP_URL", default_value = DEFAULT_AMQP_URL)]
    pub amqp_url: String,
    /// Rounds of the alternated comparisons run after the sweep — the uniform numbered file
    /// against the hot-seat file (both architectures, most workers) and the broker's echo
    /// ceiling against the unnumbered file (indirect, the consumer count that answered it
    /// fastest), in turns A, B, A, B, … — whose median ratios are the targets' verdicts (0:
    /// none; `--quick`: 1).
    #[arg(long, default_value_t = 3)]
    pub ab_rounds: usize,
    /// Do not run anything: redraw the plots and the report from this results.json.
    #[arg(long)]
    pub from_results: Option<PathBuf>,
}

/// Runs the sweep (or redraws one) and writes its outputs. Fails when any run fails its
/// verification.
pub async fn run(mut args: SweepArgs) -> anyhow::Result<()> {
    let results = match &args.from_results {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => {
            if args.quick {
                args.workloads = vec![WORKLOAD_FILES[0].into()];
                args.direct_workers = vec![args.nodes as usize];
                args.indirect_workers = vec![2];
                args.ceiling_requests = args.ceiling_requests.min(10_000);
                args.ab_rounds = args.ab_rounds.min(1);
            }
            sweep(&args).await?
        }
    };
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(
        args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    std::fs::write(args.out.join("results.csv"), results.to_csv())?;
    let plot_dir = match &args.report {
        Some(report) => report
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join("bench"),
        None => args.out.join("plots"),
    };
    std::fs::create_dir_all(&plot_dir)?;
    if args.report.is_some() && args.from_results.is_none() {
        // The report's own data travels with it, so it can be redrawn from the repository.
        std::fs::write(
            plot_dir.join("results.json"),
            serde_json::to_string_pretty(&results)?,
        )?;
        std::fs::write(plot_dir.join("results.csv"), results.to_csv())?;
    }
    let plots = crate::charts::draw_all(&results, &plot_dir)?;
    println!(
        "wrote {}/results.json, results.csv; {} plot files in {}",
        args.out.display(),
        plots.len(),
        plot_dir.display()
    );
    if let Some(report) = &args.report {
        let docs_dir = report.parent().unwrap_or_else(|| Path::new("."));
        let analysis_path = docs_dir.join("bench/analysis.md");
        let analysis = std::fs::read_to_string(&analysis_path).unwrap_or_else(|_| {
            println!(
                "note: {} not found; the report has no hand-written analysis",
                analysis_path.display()
            );
            String::new()
        });
        let markdown = crate::markdown::render(&results, &plots, docs_dir, &analysis);
        std::fs::write(report, markdown)
            .with_context(|| format!("writing {}", report.display()))?;
        println!("wrote {}", report.display());
    }
    let failed: Vec<_> = results.runs.iter().filter(|r| !r.pass).collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} runs FAILED verification: {}",
            failed.len(),
            results.runs.len(),
            failed
                .iter()
                .map(|r| format!("{} {} x{}", r.architecture.name(), r.workload, r.workers))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("PASS: all {} runs verified", results.runs.len());
    Ok(())
}

async fn sweep(args: &SweepArgs) -> anyhow::Result<SweepResults> {
    let exe = std::env::current_exe()?;
    let names: Vec<String> = if args.workloads.is_empty() {
        WORKLOAD_FILES.iter().map(|s| s.to_string()).collect()
    } else {
        args.workloads.clone()
    };
    // Every file is parsed before anything starts.
    let mut workloads = Vec::new();
    for name in &names {
        let path = args.workloads_dir.join(name);
        workloads.push((file_name(&path), load_workload(&path, CONCERT_CAPACITY)?));
    }
    for &w in &args.direct_workers {
        crate::run::check_spec(Architecture::Direct, args.nodes, w, args.clients)?;
    }
    for &w in &args.indirect_workers {
        crate::run::check_spec(Architecture::Indirect, args.nodes, w, args.in_flight)?;
    }
    let mut results = SweepResults {
        generated_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: machine_facts(),
        config: SweepConfig {
            nodes: args.nodes as usize,
            fsync: true,
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .into(),
            clients: args.clients,
            in_flight: args.in_flight,
            direct_workers: args.direct_workers.clone(),
            indirect_workers: args.indirect_workers.clone(),
            settings: settings(args.intake),
        },
        runs: Vec::new(),
        ceilings: Vec::new(),
        alternated: Vec::new(),
    };
    let plan = args
        .direct_workers
        .iter()
        .map(|&w| (Architecture::Direct, w))
        .chain(
            args.indirect_workers
                .iter()
                .map(|&w| (Architecture::Indirect, w)),
        );
    for (architecture, workers) in plan {
        let ceiling = if args.ceiling_requests > 0 {
            let c = ceiling(
                &exe,
                architecture,
                workers,
                window(args, architecture),
                args.ceiling_requests,
                &args.amqp_url,
            )
            .await
            .with_context(|| format!("{} ceiling with {workers} workers", architecture.name()))?;
            println!(
                "ceiling {} x{workers}: {:.0} requests/s, p99 {:.2} ms",
                architecture.name(),
                c.requests_per_s,
                c.latency_ms.p99
            );
            if let Some(cost) = &c.cost {
                println!("  cpu_us_per_request      {}", cost.cpu_line());
            }
            let per_s = c.requests_per_s;
            results.ceilings.push(c);
            Some(per_s)
        } else {
            None
        };
        for (name, workload) in &workloads {
            let spec = run_spec(args, &exe, (name, workload), architecture, workers, true);
            let mut result = run_local(&spec).await.with_context(|| {
                format!("{} {name} with {workers} workers", architecture.name())
            })?;
            result.fraction_of_ceiling = ceiling.map(|c| result.answered_per_s / c);
            print_result(&result);
            results.runs.push(result);
        }
    }
    alternate(args, &exe, &workloads, &mut results).await?;
    Ok(results)
}

/// The run of `workload` (its name and lines) through `architecture` with `workers`, set up
/// as the sweep's options say.
fn run_spec(
    args: &SweepArgs,
    exe: &Path,
    (name, workload): (&str, &Workload),
    architecture: Architecture,
    workers: usize,
    progress: bool,
) -> RunSpec {
    RunSpec {
        exe: exe.to_path_buf(),
        workload: workload.clone(),
        workload_name: name.to_owned(),
        architecture,
        nodes: args.nodes,
        workers,
        intake: args.intake,
        clients: window(args, architecture),
        amqp_url: args.amqp_url.clone(),
        progress,
    }
}

/// The concurrency of the sweep's runs and ceilings through `architecture`: concurrent
/// clients (direct) or requests in flight (indirect).
fn window(args: &SweepArgs, architecture: Architecture) -> usize {
    match architecture {
        Architecture::Direct => args.clients,
        Architecture::Indirect => args.in_flight,
    }
}

/// One side of an alternated pair.
enum Side<'a> {
    /// The broker's echo ceiling.
    Echo,
    /// A workload file, by name.
    File(&'a str, &'a Workload),
}

impl Side<'_> {
    fn name(&self) -> String {
        match self {
            Side::Echo => ECHO_CEILING.to_owned(),
            Side::File(name, _) => (*name).to_owned(),
        }
    }
}

/// Returns the worker count whose run of `workload` through `architecture` answered the most
/// requests per second among `runs` (`None` when there is no such run).
fn fastest_workers(
    runs: &[RunResult],
    architecture: Architecture,
    workload: &str,
) -> Option<usize> {
    runs.iter()
        .filter(|r| r.architecture == architecture && r.workload == workload)
        .max_by(|a, b| a.answered_per_s.total_cmp(&b.answered_per_s))
        .map(|r| r.workers)
}

/// Measures the targets that compare two measurements again as alternated pairs (see
/// [`Alternated`]) and adds them to `results`; a run that fails its verification is added to
/// the runs, which fails the sweep.
async fn alternate(
    args: &SweepArgs,
    exe: &Path,
    workloads: &[(String, Workload)],
    results: &mut SweepResults,
) -> anyhow::Result<()> {
    if args.ab_rounds == 0 {
        return Ok(());
    }
    let file = |name: &'static str| {
        workloads
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, w)| Side::File(n.as_str(), w))
    };
    let mut pairs = Vec::new();
    if let Some(&w) = args.direct_workers.iter().max()
        && let (Some(a), Some(b)) = (file(WORKLOAD_FILES[1]), file(WORKLOAD_FILES[3]))
    {
        pairs.push((Architecture::Direct, w, a, b));
    }
    if let Some(&w) = args.indirect_workers.iter().max() {
        if args.ceiling_requests > 0
            && let Some(b) = file(WORKLOAD_FILES[0])
        {
            // The intake at its best: the consumer count that answered the file fastest in
            // this sweep, against the echo with as many consumers.
            let best = fastest_workers(&results.runs, Architecture::Indirect, WORKLOAD_FILES[0])
                .unwrap_or(w);
            pairs.push((Architecture::Indirect, best, Side::Echo, b));
        }
        if let (Some(a), Some(b)) = (file(WORKLOAD_FILES[1]), file(WORKLOAD_FILES[3])) {
            pairs.push((Architecture::Indirect, w, a, b));
        }
    }
    for (architecture, workers, a, b) in pairs {
        let mut pair = Alternated {
            architecture,
            workers,
            a: a.name(),
            b: b.name(),
            a_per_s: Vec::new(),
            b_per_s: Vec::new(),
        };
        for round in 1..=args.ab_rounds {
            for (side, into) in [(&a, 0), (&b, 1)] {
                let per_s = match side {
                    Side::Echo => {
                        ceiling(
                            exe,
                            architecture,
                            workers,
                            window(args, architecture),
                            args.ceiling_requests,
                            &args.amqp_url,
                        )
                        .await?
                        .requests_per_s
                    }
                    Side::File(name, workload) => {
                        let spec =
                            run_spec(args, exe, (name, workload), architecture, workers, false);
                        let result = run_local(&spec).await.with_context(|| {
                            format!(
                                "alternated {} {name} with {workers} workers",
                                architecture.name()
                            )
                        })?;
                        let per_s = result.answered_per_s;
                        if !result.pass {
                            print_result(&result);
                            results.runs.push(result);
                        }
                        per_s
                    }
                };
                println!(
                    "alternated {} x{workers}, round {round}: {} {per_s:.0}/s",
                    architecture.name(),
                    side.name()
                );
                if into == 0 {
                    pair.a_per_s.push(per_s);
                } else {
                    pair.b_per_s.push(per_s);
                }
            }
        }
        println!(
            "alternated {} x{workers}: {} → {}: ratios {:?}, median {:.2}",
            architecture.name(),
            pair.a,
            pair.b,
            pair.ratios()
                .iter()
                .map(|r| (r * 100.0).round() / 100.0)
                .collect::<Vec<_>>(),
            pair.median_ratio().unwrap_or(f64::NAN)
        );
        results.alternated.push(pair);
    }
    Ok(())
}

/// Measures what the machine does through `architecture` when the server does nothing.
pub async fn ceiling(
    exe: &Path,
    architecture: Architecture,
    workers: usize,
    clients: usize,
    requests: usize,
    amqp_url: &str,
) -> anyhow::Result<CeilingResult> {
    let buys: Vec<Buy> = (0..requests)
        .map(|i| Buy {
            line: i + 1,
            client_id: format!("ceiling-{i}"),
            seat: None,
            request_id: format!("r{i}"),
        })
        .collect();
    // The servers' processes by name, for the cost meter.
    let named = |helpers: &[Helper], what: &str| -> Vec<(String, u32)> {
        helpers
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("{what} {}", i + 1), h.pid()))
            .collect()
    };
    let (report, cost) = match architecture {
        Architecture::Direct => {
            let mut servers = Vec::new();
            let mut addrs = Vec::new();
            for _ in 0..workers {
                let (helper, addr) = spawn_noop(exe)?;
                servers.push(helper);
                addrs.push(addr);
            }
            let nginx = start_nginx(addrs)?;
            let api = ApiClient {
                http: http_client(clients)?,
                base_url: nginx.url.clone(),
                token: "no-op".into(),
            };
            let meter =
                CostMeter::for_processes(named(&servers, "server"), false).with_nginx(nginx.pid());
            metered(
                &meter,
                load(&Transport::Http(api), 1, &buys, clients, false),
            )
            .await?
        }
        Architecture::Indirect => {
            let launch = WorkerLaunch {
                exe: exe.to_path_buf(),
                amqp_url: amqp_url.to_owned(),
                queue: tix_amqp::PURCHASE_QUEUE.into(),
                api_addrs: Vec::new(),
                username: "admin".into(),
                password: String::new(),
                echo: true,
                log_path: None,
            };
            let (helpers, requester) = start_workers(&launch, workers).await?;
            let meter =
                CostMeter::for_processes(named(&helpers, "worker"), broker_is_local(amqp_url));
            let transport = Transport::Amqp(requester);
            metered(&meter, load(&transport, 1, &buys, clients, false)).await?
        }
    };
    let answered = report.answered();
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    Ok(CeilingResult {
        architecture,
        workers,
        clients,
        requests,
        elapsed_s: secs,
        requests_per_s: answered as f64 / secs,
        latency_ms: LatencyMs::from_us(&report.latency_us),
        cost,
    })
}

/// The settings that shape the figures, for the results file.
fn settings(intake: Intake) -> std::collections::BTreeMap<String, String> {
    let worker = tix_amqp::WorkerConfig::default();
    let consumer = tix_amqp::ConsumerConfig::default();
    let nginx =
        crate::nginx::NginxConfig::new("127.0.0.1:0".parse().expect("an address"), Vec::new());
    [
        (
            "raft_heartbeat_interval_ms",
            defaults::HEARTBEAT_INTERVAL_MS.to_string(),
        ),
        (
            "raft_election_timeout_ms",
            format!(
                "{}-{}",
                defaults::ELECTION_TIMEOUT_MIN_MS,
                defaults::ELECTION_TIMEOUT_MAX_MS
            ),
        ),
        (
            "proposer_batch_commands_max",
            defaults::BATCH_COMMANDS_MAX.to_string(),
        ),
        (
            "proposer_batches_in_flight_max",
            defaults::BATCHES_IN_FLIGHT_MAX.to_string(),
        ),
        (
            "proposer_batch_linger_us",
            defaults::BATCH_LINGER_US.to_string(),
        ),
        (
            "log_fsync",
            "one fsync per group of appended entries (redb, Durability::Immediate)".to_owned(),
        ),
        ("indirect_intake", intake.name().to_owned()),
        ("intake_reply_confirms", consumer.reply_confirms.to_string()),
        ("worker_prefetch", worker.prefetch.to_string()),
        ("worker_batch_max", worker.batch_max.to_string()),
        (
            "worker_batches_in_flight_max",
            worker.batches_in_flight_max.to_string(),
        ),
        ("nginx_worker_processes", nginx.worker_processes.to_string()),
        (
            "nginx_upstream_keepalive",
            nginx.upstream_keepalive.to_string(),
        ),
        (
            "client",
            "tix bench (tokio, reqwest keep-alive HTTP/1.1; lapin for AMQP) on the same machine"
                .to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Reads what the machine is.
pub fn machine_facts() -> MachineFacts {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let os = read("/etc/os-release")
        .lines()
        .find(|l| l.starts_with("PRETTY_NAME="))
        .map(|l| {
            l.trim_start_matches("PRETTY_NAME=")
                .trim_matches('"')
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".into());
    let rabbitmq = std::process::Command::new("rabbitmqctl")
        .arg("version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    MachineFacts {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model,
        memory_gib,
        kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        os,
        nginx: crate::nginx::nginx_version(),
        rabbitmq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(architecture: &str, workload: &str, workers: usize, answered_per_s: f64) -> RunResult {
        serde_json::from_value(serde_json::json!({
            "architecture": architecture, "workload": workload, "model": "unnumbered",
            "lines": 20000, "workers": workers, "clients": 64, "elapsed_s": 2.0, "sold": 20000,
            "rejected": {}, "unknown": 0, "purchases_per_s": answered_per_s,
            "answered_per_s": answered_per_s,
            "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 4.0},
            "pass": true, "violations": [], "fraction_of_ceiling": null
        }))
        .unwrap()
    }

    // Checks that the echo pair's consumer count is the one that answered the unnumbered file
    // fastest through RabbitMQ, not the most consumers, and that other files and the direct
    // runs do not count.
    #[test]
    fn the_fastest_worker_count_is_picked_per_architecture_and_file() {
        let file = WORKLOAD_FILES[0];
        let runs = vec![
            run("indirect", file, 1, 7_000.0),
            run("indirect", file, 4, 5_600.0),
            run("indirect", WORKLOAD_FILES[1], 3, 9_000.0),
            run("direct", file, 2, 13_000.0),
        ];
        assert_eq!(
            fastest_workers(&runs, Architecture::Indirect, file),
            Some(1)
        );
        assert_eq!(fastest_workers(&runs, Architecture::Direct, file), Some(2));
        assert_eq!(
            fastest_workers(&runs, Architecture::Direct, WORKLOAD_FILES[1]),
            None
        );
    }
}
