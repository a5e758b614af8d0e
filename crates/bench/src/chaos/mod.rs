//! `tix chaos`: a Jepsen-style verification run. It starts a local cluster of real `tix serve`
//! processes, lets concurrent clients buy tickets for an unnumbered and a numbered event through
//! random nodes while a seeded nemesis kills, pauses, partitions and restarts nodes, then heals
//! everything, waits for the replicas to converge, reads the final sales through the leader and
//! checks the recorded history against them: nothing oversold, no acknowledged sale lost, no
//! request sold twice, every seat's history explainable, every replica identical.
//!
//! The parts: [`history`] (the operation log), [`workload`] (the clients), [`nemesis`] (the
//! fault schedule and its executor) and [`checker`] (the verdict, a pure function).

pub mod checker;
pub mod history;
pub mod nemesis;
pub mod workload;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Args;
use serde_json::json;
use tix_testkit::client::{ApiClient, http_client};
use tix_testkit::cluster::{ClusterOptions, LocalCluster};

use self::checker::{Availability, EventState, FinalState, ReplicaState, SaleLine, Verdict};
use self::history::{Clock, FaultKind, History};
use self::workload::Workload;

/// Seats of the numbered event.
const SEATS: u32 = 500;
/// The unnumbered event gets one ticket per this many purchases the run aims for, so that it
/// sells out around the middle of the run (half the purchases are for it, and faults cost time).
const PURCHASES_PER_UNNUMBERED_TICKET: u64 = 5;
/// The smallest capacity of the unnumbered event.
const UNNUMBERED_CAPACITY_MIN: u64 = 100;
/// How long setup steps (leader, events, first convergence) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the cluster may take to recover after the run.
const FINAL_RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the replicas may take to converge after the run.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long reading the final state through the leader may keep failing.
const FINAL_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Options of a chaos run.
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// Cluster size: 3 or 5 nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// How long clients buy and the nemesis injects faults.
    #[arg(long = "duration", value_name = "SECONDS", default_value_t = 60)]
    pub duration_s: u64,
    /// Seed of the fault schedule and the clients' choices; the same seed replays the same
    /// fault schedule. Random (and printed) if omitted.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub clients: u32,
    /// Purchases per second all clients aim for together (each pauses between purchases).
    #[arg(long = "rate", value_name = "PURCHASES_PER_S", default_value_t = 100)]
    pub purchases_per_s: u32,
    /// Write the whole history (every operation, attempt and fault) as JSON to this file.
    #[arg(long)]
    pub history_out: Option<PathBuf>,
}

impl ChaosArgs {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(self.nodes == 3 || self.nodes == 5, "--nodes must be 3 or 5");
        ensure!(
            (5..=3600).contains(&self.duration_s),
            "--duration must be 5..=3600 seconds"
        );
        ensure!(
            (1..=256).contains(&self.clients),
            "--clients must be 1..=256"
        );
        ensure!(
            (1..=10_000).contains(&self.purchases_per_s),
            "--rate must be 1..=10000 purchases per second"
        );
        Ok(())
    }

    /// Returns the unnumbered event's capacity for this run.
    fn unnumbered_capacity(&self) -> u32 {
        let purchases = u64::from(self.purchases_per_s) * self.duration_s;
        (purchases / PURCHASES_PER_UNNUMBERED_TICKET).clamp(UNNUMBERED_CAPACITY_MIN, 1_000_000)
            as u32
    }
}

/// Everything a run found.
#[derive(Debug)]
pub struct ChaosReport {
    /// The options it ran with.
    pub args: ChaosArgs,
    /// The seed it used.
    pub seed: u64,
    /// What clients did and heard, and what the nemesis injected.
    pub history: History,
    /// The cluster after healing.
    pub final_state: FinalState,
    /// The checks.
    pub verdict: Verdict,
    /// The longest the followers may take to elect a new leader (lease plus election timeout).
    pub leader_loss_max: Duration,
    /// From the start of the final healing until a leader was known to every node.
    pub leader_after_heal: Duration,
    /// From the start of the final healing until every replica had the same applied index and
    /// digest; `None` if they did not converge within the limit.
    pub converged_after_heal: Option<Duration>,
}

/// Runs `tix chaos` from this binary and prints the report; fails if any check failed.
pub async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the tix binary")?;
    let report = execute(&exe, &args).await?;
    print!("{report}");
    if let Some(path) = &args.history_out {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer(std::io::BufWriter::new(file), &report.history)?;
        println!("history written to {}", path.display());
    }
    let failed = report.verdict.checks.iter().filter(|c| !c.passed()).count();
    ensure!(
        failed == 0,
        "chaos verdict: FAIL ({failed} checks failed; replay the faults with --seed {})",
        report.seed
    );
    Ok(())
}

/// Runs a chaos test against nodes started from `exe` (the `tix` binary) and returns the
/// report. Errors mean the run could not be carried out (setup failed, or the cluster did not
/// come back at the end); violations found are in the report's verdict.
pub async fn execute(exe: &Path, args: &ChaosArgs) -> anyhow::Result<ChaosReport> {
    args.validate()?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let capacity = args.unnumbered_capacity();
    println!(
        "tix chaos: {} nodes, {} s, seed {seed}, {} clients at ~{} purchases/s; events: \
         unnumbered (capacity {capacity}) and numbered ({SEATS} seats, {} contended at a time)",
        args.nodes,
        args.duration_s,
        args.clients,
        args.purchases_per_s,
        workload::SEAT_WINDOW
    );
    let options = ClusterOptions::default();
    let election_timeout_max = Duration::from_millis(options.election_timeout_max_ms);
    let mut cluster = LocalCluster::start(exe, args.nodes, options)
        .await
        .context("starting the cluster")?;
    let leader = cluster.wait_for_leader(SETUP_TIMEOUT).await?;
    let admin = ApiClient::login(
        http_client(4)?,
        &cluster.url(leader),
        "admin",
        &cluster.admin_password,
    )
    .await?;
    let unnumbered = json!({"kind": "unnumbered", "capacity": capacity});
    let unnumbered_event = admin.create_event("chaos unnumbered", unnumbered).await?;
    let numbered = json!({"kind": "numbered", "seats": SEATS});
    let numbered_event = admin.create_event("chaos numbered", numbered).await?;
    // A follower checks the session and the event locally before it forwards a purchase.
    cluster.wait_converged(SETUP_TIMEOUT).await?;

    let faults_max = args.duration_s as usize + 6; // every fault takes over a second
    let schedule = nemesis::plan(seed, args.nodes, faults_max, election_timeout_max);
    let clock = Clock::start();
    let until_ms = args.duration_s * 1000;
    let workload = Arc::new(Workload {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.clients as usize)
            .tcp_nodelay(true)
            .connect_timeout(workload::CONNECT_TIMEOUT)
            .timeout(workload::ATTEMPT_TIMEOUT)
            .build()?,
        nodes: cluster
            .ids()
            .into_iter()
            .map(|id| (id, cluster.url(id)))
            .collect(),
        token: admin.token.clone(),
        unnumbered_event,
        numbered_event,
        seats: SEATS,
        clock,
        until_ms,
        think_time: Duration::from_secs(1) * args.clients / args.purchases_per_s,
        progress: workload::Progress::default(),
    });
    let mut clients = workload::spawn_clients(&workload, args.clients, seed);
    let faults = nemesis::run(&mut cluster, &schedule, clock, until_ms, &workload.progress).await;
    let mut ops = Vec::new();
    while let Some(records) = clients.join_next().await {
        ops.extend(records.context("a client task failed")?);
    }
    ops.sort_by_key(|r| r.invoked_ms);
    let history = History { ops, faults };

    println!(
        "[{:>7.1}s] load stopped ({}); healing",
        clock.now_ms() as f64 / 1000.0,
        workload.progress.summary()
    );
    let healing = Instant::now();
    nemesis::recover(&mut cluster, FINAL_RECOVERY_TIMEOUT)
        .await
        .context("the cluster did not recover after the run")?;
    let leader_after_heal = healing.elapsed();
    let converged_after_heal = match cluster.wait_converged(CONVERGE_TIMEOUT).await {
        Ok(_) => Some(healing.elapsed()),
        Err(e) => {
            println!("replicas did not converge: {e:#}");
            None
        }
    };
    let events = [
        ("unnumbered", unnumbered_event, false, capacity),
        ("numbered", numbered_event, true, SEATS),
    ];
    let final_state = FinalState {
        events: read_events(&cluster, &admin, &events).await?,
        replicas: replica_views(&cluster).await,
    };
    let verdict = checker::check(&history, &final_state);
    Ok(ChaosReport {
        args: args.clone(),
        seed,
        history,
        final_state,
        verdict,
        leader_loss_max: nemesis::leader_loss_max(election_timeout_max),
        leader_after_heal,
        converged_after_heal,
    })
}

/// Reads each event's sales export and availability through the leader (both linearizable),
/// retrying through the current leader until `FINAL_READ_TIMEOUT`.
async fn read_events(
    cluster: &LocalCluster,
    admin: &ApiClient,
    events: &[(&str, u64, bool, u32)],
) -> anyhow::Result<Vec<EventState>> {
    let deadline = Instant::now() + FINAL_READ_TIMEOUT;
    loop {
        let attempt = async {
            let leader = cluster.wait_for_leader(FINAL_READ_TIMEOUT).await?;
            let api = ApiClient {
                base_url: cluster.url(leader),
                ..admin.clone()
            };
            let mut states = Vec::new();
            for &(label, event_id, numbered, capacity) in events {
                let sales = api.sales(event_id).await?;
                let sales: Vec<SaleLine> = sales
                    .into_iter()
                    .map(serde_json::from_value)
                    .collect::<Result<_, _>>()?;
                let availability: Availability =
                    serde_json::from_value(api.availability(event_id).await?)?;
                states.push(EventState {
                    event_id,
                    label: label.to_owned(),
                    numbered,
                    capacity,
                    availability,
                    sales,
                });
            }
            anyhow::Ok(states)
        };
        match attempt.await {
            Ok(states) => return Ok(states),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("reading the final state through the leader"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Returns every node's applied index and state digest, polling briefly until they agree (a
/// node may still be applying the last entries).
async fn replica_views(cluster: &LocalCluster) -> Vec<ReplicaState> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut views = Vec::new();
        for node in cluster.ids() {
            let metrics = cluster.metrics(node).await.ok();
            views.push(ReplicaState {
                node,
                last_applied: metrics.as_ref().and_then(|m| m["last_applied"].as_u64()),
                digest: metrics
                    .as_ref()
                    .and_then(|m| m["state_digest"].as_str().map(String::from)),
            });
        }
        let agreed = views.iter().all(|v| {
            v.last_applied.is_some()
                && v.last_applied == views[0].last_applied
                && v.digest == views[0].digest
        });
        if agreed || Instant::now() > deadline {
            return views;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns the median and the maximum of `times`.
pub fn median_and_max(times: &[Duration]) -> Option<(Duration, Duration)> {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    let max = *sorted.last()?;
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    };
    Some((median, max))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.args;
        let counts = self.history.counts();
        writeln!(f)?;
        writeln!(
            f,
            "== tix chaos: {} nodes, {} s, seed {}, {} clients ==",
            a.nodes, a.duration_s, self.seed, a.clients
        )?;
        writeln!(
            f,
            "operations    {} total: {} ok, {} fail, {} indeterminate",
            counts.total, counts.ok, counts.fail, counts.indeterminate
        )?;
        let tally: Vec<String> = self
            .history
            .attempt_tally()
            .iter()
            .map(|(label, n)| format!("{label}: {n}"))
            .collect();
        writeln!(f, "attempts      {}", tally.join(", "))?;
        let faults = self.history.fault_counts();
        let by_kind: Vec<String> = FaultKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), faults.get(k).copied().unwrap_or(0)))
            .collect();
        writeln!(
            f,
            "faults        {} injected: {}",
            self.history.faults.len(),
            by_kind.join(", ")
        )?;
        writeln!(
            f,
            "failover      from the fault to the first acknowledged purchase sent after it (a new \
             leader takes up to {} without the old one)",
            secs(self.leader_loss_max)
        )?;
        let failover = self.history.failover_times();
        for kind in FaultKind::ALL {
            let Some((median, max)) = failover.get(&kind).and_then(|t| median_and_max(t)) else {
                continue;
            };
            writeln!(
                f,
                "  {:<18} n={:<3} median {:>8}  max {:>8}",
                kind.name(),
                failover[&kind].len(),
                secs(median),
                secs(max)
            )?;
        }
        let sold: Vec<String> = self
            .final_state
            .events
            .iter()
            .map(|e| {
                format!(
                    "{} #{} {}/{} sold",
                    e.label,
                    e.event_id,
                    e.sales.len(),
                    e.capacity
                )
            })
            .collect();
        writeln!(f, "events        {}", sold.join("; "))?;
        let converged = match self.converged_after_heal {
            Some(d) => format!("converged {} after healing", secs(d)),
            None => format!("did NOT converge within {}", secs(CONVERGE_TIMEOUT)),
        };
        writeln!(
            f,
            "convergence   leader on every node {} after healing; {converged}",
            secs(self.leader_after_heal)
        )?;
        writeln!(f, "checks")?;
        for check in &self.verdict.checks {
            let mark = if check.passed() { "PASS" } else { "FAIL" };
            writeln!(f, "  {mark}  {:<32} {}", check.name, check.summary)?;
            for example in &check.examples {
                writeln!(f, "          - {example}")?;
            }
            if check.violations_total > check.examples.len() {
                let more = check.violations_total - check.examples.len();
                writeln!(f, "          ... and {more} more")?;
            }
        }
        let verdict = if self.verdict.passed() {
            "PASS"
        } else {
            "FAIL"
        };
        writeln!(f, "verdict       {verdict}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The median of an even count is the mean of the middle two; the maximum is the largest.
    #[test]
    fn median_and_max_of_failover_times() {
        let ms = Duration::from_millis;
        assert_eq!(median_and_max(&[]), None);
        assert_eq!(median_and_max(&[ms(3)]), Some((ms(3), ms(3))));
        assert_eq!(
            median_and_max(&[ms(4), ms(1), ms(3), ms(2)]),
            Some((ms(2) + ms(1) / 2, ms(4)))
        );
    }

    /// The unnumbered capacity follows the planned purchases, within bounds.
    #[test]
    fn unnumbered_capacity_scales_with_the_run() {
        let args = |duration_s, purchases_per_s| ChaosArgs {
            nodes: 3,
            duration_s,
            seed: Some(1),
            clients: 16,
            purchases_per_s,
            history_out: None,
        };
        assert_eq!(args(120, 100).unnumbered_capacity(), 2400);
        assert_eq!(args(5, 1).unnumbered_capacity(), 100);
        assert!(args(4, 100).validate().is_err());
        assert!(args(5, 100).validate().is_ok());
        let five = ChaosArgs {
            nodes: 4,
            ..args(60, 100)
        };
        assert!(five.validate().is_err());
    }
}
