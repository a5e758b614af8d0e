//! The results of a benchmark sweep, as written to `results.json` (and flattened to
//! `results.csv`): every run with its configuration, figures and correctness verdict, the
//! ceilings of the machine measured in the same sweep, and the facts of the machine. The plots
//! and `docs/BENCHMARK.md` are drawn from this and nothing else, so a report can be regenerated
//! from a saved file.

use std::collections::BTreeMap;

use crate::cost::RunCost;
use serde::{Deserialize, Serialize};

/// How requests reach the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// REST over keep-alive HTTP to nginx, which balances over the HTTP-serving nodes.
    Direct,
    /// AMQP: clients publish to the `tix.purchases` queue; `tix worker` processes consume.
    Indirect,
}

impl Architecture {
    /// Returns the lowercase name used in files and tables.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Direct => "direct",
            Architecture::Indirect => "indirect",
        }
    }
}

/// Latency percentiles of one run, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl LatencyMs {
    /// Reads the percentiles from a histogram recorded in microseconds.
    pub fn from_us(h: &hdrhistogram::Histogram<u64>) -> LatencyMs {
        let ms = |us: u64| us as f64 / 1000.0;
        LatencyMs {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// One replay of one workload file through one architecture with a given number of workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Direct or indirect.
    pub architecture: Architecture,
    /// The workload file's name, e.g. `benchmark_numbered.txt`.
    pub workload: String,
    /// `unnumbered` or `numbered`.
    pub model: String,
    /// BUY lines in the file.
    pub lines: usize,
    /// Server-side workers: HTTP-serving nodes behind nginx (direct), or intake consumers
    /// (indirect: per node, or `tix worker` processes, see `intake`).
    pub workers: usize,
    /// Indirect only: where the consumers ran, `node` (`tix serve --amqp-url`) or `worker`
    /// (`tix worker` processes; also what results without this field measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intake: Option<String>,
    /// Concurrent clients (direct) or requests in flight (indirect).
    pub clients: usize,
    /// Wall time of the load phase.
    pub elapsed_s: f64,
    /// Lines answered 201.
    pub sold: usize,
    /// Lines answered with a refusal, by reason (`sold_out`, `seat_taken`, ...).
    pub rejected: BTreeMap<String, usize>,
    /// Lines with no definite answer after every retry (should be 0).
    pub unknown: usize,
    /// Completed purchases (201s) per second.
    pub purchases_per_s: f64,
    /// Lines answered (sold or refused) per second: the request throughput.
    pub answered_per_s: f64,
    /// Latency from first send to the definite answer, retries included.
    pub latency_ms: LatencyMs,
    /// True when the verification found nothing wrong.
    pub pass: bool,
    /// What the verification found wrong; empty on PASS.
    pub violations: Vec<String>,
    /// `answered_per_s` divided by the same architecture's ceiling, when one was measured.
    pub fraction_of_ceiling: Option<f64>,
    /// What the load phase cost the local processes (local runs; absent in older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<RunCost>,
}

/// The most this machine does through one architecture when the server does nothing: nginx in
/// front of a handler that answers at once (direct), or a worker that echoes each message
/// without touching the cluster (indirect). Same client settings as the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CeilingResult {
    /// Direct or indirect.
    pub architecture: Architecture,
    /// Server-side workers (no-op HTTP processes or echo workers).
    pub workers: usize,
    /// Concurrent clients or requests in flight.
    pub clients: usize,
    /// Requests sent.
    pub requests: usize,
    /// Wall time.
    pub elapsed_s: f64,
    /// Requests answered per second.
    pub requests_per_s: f64,
    /// Latency percentiles.
    pub latency_ms: LatencyMs,
    /// What the load cost the local processes (absent in older results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<RunCost>,
}

/// Facts about the machine the sweep ran on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MachineFacts {
    /// Logical CPUs.
    pub cpus: usize,
    /// The CPU model, from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Memory, in GiB.
    pub memory_gib: f64,
    /// The kernel, from `uname -r`.
    pub kernel: String,
    /// The operating system, from `/etc/os-release`.
    pub os: String,
    /// `nginx -v`.
    pub nginx: String,
    /// The RabbitMQ server version, as the broker reports it.
    pub rabbitmq: String,
}

/// How the sweep was set up.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SweepConfig {
    /// Raft voters in the cluster.
    pub nodes: usize,
    /// Whether the log is fsynced before a write is acknowledged (always true in reports).
    pub fsync: bool,
    /// Build profile of the `tix` binary under test.
    pub profile: String,
    /// Concurrent clients of the direct runs.
    pub clients: usize,
    /// Requests in flight of the indirect runs (0 in sweeps made before it had its own
    /// setting, when `clients` was both).
    #[serde(default)]
    pub in_flight: usize,
    /// Worker counts swept, direct.
    pub direct_workers: Vec<usize>,
    /// Worker counts swept, indirect.
    pub indirect_workers: Vec<usize>,
    /// Every other setting that shapes the figures (heartbeat, election timeout, worker batch
    /// and prefetch, nginx keep-alive ...), as name → value.
    pub settings: BTreeMap<String, String>,
}

/// Everything one sweep produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SweepResults {
    /// When the sweep ran (RFC 3339, UTC).
    pub generated_at: String,
    /// The command line that produced it.
    pub command: String,
    /// The machine.
    pub machine: MachineFacts,
    /// The setup.
    pub config: SweepConfig,
    /// Every run, in the order run.
    pub runs: Vec<RunResult>,
    /// The ceilings measured in the same sweep.
    pub ceilings: Vec<CeilingResult>,
    /// The targets that compare two measurements, measured again as alternated pairs
    /// (`--ab-rounds`); absent from sweeps made before they existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternated: Vec<Alternated>,
}

/// Two measurements whose ratio is a target (the hot-seat file against the uniform numbered
/// file; the intake against the broker's echo ceiling), taken in turns — A, B, A, B, … — with
/// the same setup in one sitting, so that a machine that speeds up or slows down between them
/// weighs on both alike. The verdict is the median of the rounds' ratios B / A.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternated {
    /// The architecture both ran through.
    pub architecture: Architecture,
    /// Workers (or consumers per node) of both.
    pub workers: usize,
    /// What A is: a workload file's name, or [`ECHO_CEILING`].
    pub a: String,
    /// What B is (a workload file's name).
    pub b: String,
    /// A's answered (or echoed) requests per second, per round.
    pub a_per_s: Vec<f64>,
    /// B's answered requests per second, per round.
    pub b_per_s: Vec<f64>,
}

/// What [`Alternated::a`] says for the broker's echo ceiling.
pub const ECHO_CEILING: &str = "echo ceiling";

impl Alternated {
    /// B / A of each round.
    pub fn ratios(&self) -> Vec<f64> {
        self.a_per_s
            .iter()
            .zip(&self.b_per_s)
            .map(|(a, b)| b / a.max(1e-9))
            .collect()
    }

    /// The median of [`Self::ratios`] (the mean of the middle two for an even count), or
    /// `None` without rounds.
    pub fn median_ratio(&self) -> Option<f64> {
        let mut r = self.ratios();
        if r.is_empty() {
            return None;
        }
        r.sort_by(f64::total_cmp);
        let mid = r.len() / 2;
        Some(if r.len() % 2 == 1 {
            r[mid]
        } else {
            (r[mid - 1] + r[mid]) / 2.0
        })
    }

    /// The comparison of `architecture` between `a` and `b`, if measured.
    pub fn find<'a>(
        results: &'a SweepResults,
        architecture: Architecture,
        a: &str,
        b: &str,
    ) -> Option<&'a Alternated> {
        results
            .alternated
            .iter()
            .find(|x| x.architecture == architecture && x.a == a && x.b == b)
    }
}

impl SweepResults {
    /// Returns the ceiling measured for `architecture` with the most throughput, if any.
    pub fn ceiling(&self, architecture: Architecture) -> Option<&CeilingResult> {
        self.ceilings
            .iter()
            .filter(|c| c.architecture == architecture)
            .max_by(|a, b| a.requests_per_s.total_cmp(&b.requests_per_s))
    }

    /// Returns the runs as CSV, one line per run, with a header line.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "architecture,workload,model,lines,workers,clients,elapsed_s,sold,rejected,unknown,\
             purchases_per_s,answered_per_s,p50_ms,p90_ms,p99_ms,max_ms,pass,fraction_of_ceiling\n",
        );
        for r in &self.runs {
            let rejected: usize = r.rejected.values().sum();
            out.push_str(&format!(
                "{},{},{},{},{},{},{:.3},{},{},{},{:.0},{:.0},{:.3},{:.3},{:.3},{:.3},{},{}\n",
                r.architecture.name(),
                r.workload,
                r.model,
                r.lines,
                r.workers,
                r.clients,
                r.elapsed_s,
                r.sold,
                rejected,
                r.unknown,
                r.purchases_per_s,
                r.answered_per_s,
                r.latency_ms.p50,
                r.latency_ms.p90,
                r.latency_ms.p99,
                r.latency_ms.max,
                if r.pass { "PASS" } else { "FAIL" },
                r.fraction_of_ceiling
                    .map(|f| format!("{f:.3}"))
                    .unwrap_or_default(),
            ));
        }
        out
    }
}

/// A small synthetic sweep for the plot and report tests.
#[cfg(test)]
pub mod tests_support {
    use super::*;

    /// Both architectures, 1 and 2 workers, the four files, ceilings, and one FAIL run.
    pub fn sample() -> SweepResults {
        let files = [
            ("benchmark_unnumbered.txt", "unnumbered", 20_000, 20_000),
            ("benchmark_numbered.txt", "numbered", 25_997, 20_000),
            (
                "benchmark_unnumbered_oversubscribed.txt",
                "unnumbered",
                100_000,
                20_000,
            ),
            (
                "benchmark_numbered_hotspot.txt",
                "numbered",
                100_000,
                13_052,
            ),
        ];
        let mut runs = Vec::new();
        for (architecture, base) in [
            (Architecture::Direct, 20_000.0),
            (Architecture::Indirect, 7_000.0),
        ] {
            for workers in [1, 2] {
                for (i, (file, model, lines, sold)) in files.iter().enumerate() {
                    let answered = base / workers as f64 - 500.0 * i as f64;
                    let elapsed = *lines as f64 / answered;
                    let mut rejected = BTreeMap::new();
                    if lines > sold {
                        rejected.insert("sold_out".to_owned(), lines - sold);
                    }
                    let fail = architecture == Architecture::Indirect && workers == 2 && i == 3;
                    runs.push(RunResult {
                        architecture,
                        workload: file.to_string(),
                        model: model.to_string(),
                        lines: *lines,
                        workers,
                        intake: None,
                        clients: 64,
                        elapsed_s: elapsed,
                        sold: *sold,
                        rejected,
                        unknown: 0,
                        purchases_per_s: *sold as f64 / elapsed,
                        answered_per_s: answered,
                        latency_ms: LatencyMs {
                            p50: 3.0 * workers as f64,
                            p90: 4.0 * workers as f64,
                            p99: 6.0 * workers as f64,
                            max: 40.0,
                        },
                        pass: !fail,
                        violations: if fail {
                            vec!["seat 7 sold twice".into()]
                        } else {
                            vec![]
                        },
                        fraction_of_ceiling: Some(0.3),
                        cost: None,
                    });
                }
            }
        }
        let ceilings = [
            (Architecture::Direct, 60_000.0),
            (Architecture::Indirect, 18_000.0),
        ]
        .into_iter()
        .flat_map(|(architecture, rate)| {
            [1, 2].map(|workers| CeilingResult {
                architecture,
                workers,
                clients: 64,
                requests: 40_000,
                elapsed_s: 40_000.0 / rate,
                requests_per_s: rate,
                latency_ms: LatencyMs {
                    p50: 1.0,
                    p90: 1.5,
                    p99: 2.5,
                    max: 9.0,
                },
                cost: None,
            })
        })
        .collect();
        SweepResults {
            generated_at: "2026-11-22T12:00:00Z".into(),
            command: "tix bench sweep".into(),
            machine: MachineFacts {
                cpus: 2,
                cpu_model: "Test CPU".into(),
                memory_gib: 24.0,
                kernel: "6.1".into(),
                os: "Debian".into(),
                nginx: "nginx/1.22.1".into(),
                rabbitmq: "3.10.8".into(),
            },
            config: SweepConfig {
                nodes: 3,
                fsync: true,
                profile: "release".into(),
                clients: 64,
                in_flight: 256,
                direct_workers: vec![1, 2],
                indirect_workers: vec![1, 2],
                settings: BTreeMap::from([("nginx_upstream_keepalive".into(), "256".into())]),
            },
            runs,
            ceilings,
            alternated: vec![
                Alternated {
                    architecture: Architecture::Direct,
                    workers: 2,
                    a: "benchmark_numbered.txt".into(),
                    b: "benchmark_numbered_hotspot.txt".into(),
                    a_per_s: vec![10_000.0, 10_000.0, 9_000.0],
                    b_per_s: vec![9_500.0, 9_200.0, 9_090.0],
                },
                Alternated {
                    architecture: Architecture::Indirect,
                    workers: 2,
                    a: ECHO_CEILING.into(),
                    b: "benchmark_unnumbered.txt".into(),
                    a_per_s: vec![10_000.0, 8_000.0],
                    b_per_s: vec![5_800.0, 5_040.0],
                },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::sample;
    use super::*;

    #[test]
    fn alternated_pairs_give_per_round_ratios_and_their_median() {
        let s = sample();
        let hot = Alternated::find(
            &s,
            Architecture::Direct,
            "benchmark_numbered.txt",
            "benchmark_numbered_hotspot.txt",
        )
        .expect("measured");
        assert_eq!(hot.ratios(), vec![0.95, 0.92, 1.01]);
        assert_eq!(hot.median_ratio(), Some(0.95));
        let echo = Alternated::find(
            &s,
            Architecture::Indirect,
            ECHO_CEILING,
            "benchmark_unnumbered.txt",
        )
        .expect("measured");
        // An even count: the mean of the middle two (0.58 and 0.63).
        assert!((echo.median_ratio().unwrap() - 0.605).abs() < 1e-9);
        assert!(
            Alternated::find(&s, Architecture::Indirect, "x", "y").is_none(),
            "only what was measured"
        );
        let none = Alternated {
            a_per_s: vec![],
            b_per_s: vec![],
            ..echo.clone()
        };
        assert_eq!(none.median_ratio(), None);
    }

    #[test]
    fn a_results_file_without_alternated_pairs_still_reads() {
        let mut s = sample();
        s.alternated.clear();
        let text = serde_json::to_string(&s).unwrap();
        assert!(!text.contains("alternated"));
        let back: SweepResults = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
