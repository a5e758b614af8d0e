//! What a local run (or a ceiling) cost the machine, measured around its load phase: the log
//! entries the leader applied (so commands per entry, how well batching worked) and the CPU
//! time each process on this machine spent per answered request — every node, nginx (direct),
//! the broker (indirect, when `--amqp-url` points at this machine) and the load generator
//! itself.
//!
//! Throughput on a shared 2-core machine moves by ±25 % between minutes; CPU time per answer
//! moves much less, because it does not count the time a process waited for a core. It is the
//! figure to compare two builds by (A/B), and the breakdown says where a purchase's work is
//! done: with three replicas, the broker and the client on two cores, a microsecond saved on
//! any of them is a microsecond the others get.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tix_testkit::cluster::LocalCluster;
use tix_testkit::sys::{children, cpu_time};

use crate::replay::LoadReport;

/// The cost of a run's (or a ceiling's) load phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCost {
    /// Log entries the leader applied during the load phase (runs against a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_entries: Option<u64>,
    /// Answered requests per log entry (runs against a cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands_per_entry: Option<f64>,
    /// CPU microseconds (user + system) per answered request, by process: `node N (leader)`,
    /// `node N`, `worker N` (the echo ceiling), `server N` (the no-op ceiling), `nginx` (its
    /// master and workers), `broker`, `client`.
    pub cpu_us_per_answer: BTreeMap<String, f64>,
}

impl RunCost {
    /// Returns the CPU microseconds per answer of every measured process together.
    pub fn total_cpu_us_per_answer(&self) -> f64 {
        self.cpu_us_per_answer.values().sum()
    }

    /// Returns the figures as one line: `total 312 µs = node 1 (leader) 84 · …`.
    pub fn cpu_line(&self) -> String {
        let parts: Vec<String> = self
            .cpu_us_per_answer
            .iter()
            .map(|(who, us)| format!("{who} {us:.0}"))
            .collect();
        format!(
            "total {:.0} µs = {}",
            self.total_cpu_us_per_answer(),
            parts.join(" · ")
        )
    }
}

/// A reading taken before and after the load phase.
#[derive(Debug, Clone)]
pub struct CostSample {
    applied: Option<u64>,
    cpu: BTreeMap<String, Duration>,
}

/// Reads the processes of a local setup: named server processes, the cluster's leader's
/// applied index when there is a cluster, the local broker when asked for, and this process
/// (the client).
pub struct CostMeter<'a> {
    processes: Vec<(String, u32)>,
    cluster: Option<(&'a LocalCluster, u64)>,
    broker_pid: Option<u32>,
    nginx_pid: Option<u32>,
}

impl<'a> CostMeter<'a> {
    /// Returns a meter of `cluster` (whose leader is `leader`), counting the local broker's
    /// process too when `with_broker` and one runs here.
    pub fn for_cluster(cluster: &'a LocalCluster, leader: u64, with_broker: bool) -> Self {
        let processes = cluster
            .nodes
            .iter()
            .filter_map(|(id, node)| {
                let name = if *id == leader {
                    format!("node {id} (leader)")
                } else {
                    format!("node {id}")
                };
                Some((name, node.pid()?))
            })
            .collect();
        CostMeter {
            processes,
            cluster: Some((cluster, leader)),
            broker_pid: if with_broker { broker_pid() } else { None },
            nginx_pid: None,
        }
    }

    /// Returns a meter of the named `processes` (no cluster: no log entries), and of the local
    /// broker when `with_broker` and one runs here.
    pub fn for_processes(processes: Vec<(String, u32)>, with_broker: bool) -> Self {
        CostMeter {
            processes,
            cluster: None,
            broker_pid: if with_broker { broker_pid() } else { None },
            nginx_pid: None,
        }
    }

    /// Also counts nginx: the master process `master_pid` and its workers, as `nginx`.
    pub fn with_nginx(mut self, master_pid: u32) -> Self {
        self.nginx_pid = Some(master_pid);
        self
    }

    /// Takes a reading. A process that cannot be read (it exited) is left out.
    pub async fn sample(&self) -> CostSample {
        // No answer from the leader (it is busy past the health call's 500 ms) leaves the
        // entries unknown rather than counted from zero.
        let applied = match self.cluster {
            Some((cluster, leader)) => cluster
                .health(leader)
                .await
                .and_then(|h| h["last_applied"].as_u64()),
            None => None,
        };
        let mut cpu = BTreeMap::new();
        for (name, pid) in &self.processes {
            if let Ok(t) = cpu_time(*pid) {
                cpu.insert(name.clone(), t);
            }
        }
        if let Some(t) = self.broker_pid.and_then(|pid| cpu_time(pid).ok()) {
            cpu.insert("broker".into(), t);
        }
        if let Some(master) = self.nginx_pid {
            let t: Duration = std::iter::once(master)
                .chain(children(master))
                .filter_map(|pid| cpu_time(pid).ok())
                .sum();
            cpu.insert("nginx".into(), t);
        }
        if let Ok(t) = cpu_time(std::process::id()) {
            cpu.insert("client".into(), t);
        }
        CostSample { applied, cpu }
    }
}

/// Returns the cost between two readings for `answered` requests (`None` when nothing was
/// answered).
pub fn cost_between(before: &CostSample, after: &CostSample, answered: usize) -> Option<RunCost> {
    if answered == 0 {
        return None;
    }
    let log_entries = match (before.applied, after.applied) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    let cpu_us_per_answer = after
        .cpu
        .iter()
        .filter_map(|(who, t)| {
            let spent = t.saturating_sub(*before.cpu.get(who)?);
            Some((who.clone(), spent.as_secs_f64() * 1e6 / answered as f64))
        })
        .collect();
    Some(RunCost {
        log_entries,
        commands_per_entry: log_entries.map(|n| answered as f64 / n.max(1) as f64),
        cpu_us_per_answer,
    })
}

/// Runs a load phase between two readings of `meter`; returns its report and what it cost.
pub async fn metered(
    meter: &CostMeter<'_>,
    load: impl std::future::Future<Output = anyhow::Result<LoadReport>>,
) -> anyhow::Result<(LoadReport, Option<RunCost>)> {
    let before = meter.sample().await;
    let report = load.await?;
    let cost = cost_between(&before, &meter.sample().await, report.answered());
    Ok((report, cost))
}

/// Returns whether the broker at `amqp_url` runs on this machine (its host is a loopback
/// address or `localhost`), so that a local `beam.smp` is the broker the run used.
pub fn broker_is_local(amqp_url: &str) -> bool {
    let after_scheme = amqp_url
        .split_once("://")
        .map_or(amqp_url, |(_, rest)| rest);
    let authority = after_scheme.split('/').next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Returns the pid of the RabbitMQ server running on this machine (`beam.smp`), if any.
fn broker_pid() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == "beam.smp").then_some(pid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(applied: Option<u64>, cpu_ms: &[(&str, u64)]) -> CostSample {
        CostSample {
            applied,
            cpu: cpu_ms
                .iter()
                .map(|(who, ms)| (who.to_string(), Duration::from_millis(*ms)))
                .collect(),
        }
    }

    // Checks the arithmetic: entries and commands per entry from the applied index, CPU per
    // answer per process, a process missing from either reading left out, nothing for zero
    // answers, and the printed line.
    #[test]
    fn cost_is_per_answer_and_per_process() {
        let before = sample(
            Some(10),
            &[("node 1 (leader)", 1_000), ("client", 500), ("gone", 5)],
        );
        let after = sample(
            Some(110),
            &[("node 1 (leader)", 1_800), ("client", 900), ("new", 7)],
        );
        let cost = cost_between(&before, &after, 4_000).unwrap();
        assert_eq!(cost.log_entries, Some(100));
        assert_eq!(cost.commands_per_entry, Some(40.0));
        assert_eq!(cost.cpu_us_per_answer.len(), 2);
        assert_eq!(cost.cpu_us_per_answer["node 1 (leader)"], 200.0);
        assert_eq!(cost.cpu_us_per_answer["client"], 100.0);
        assert_eq!(cost.total_cpu_us_per_answer(), 300.0);
        assert_eq!(
            cost.cpu_line(),
            "total 300 µs = client 100 · node 1 (leader) 200"
        );
        assert!(cost_between(&before, &after, 0).is_none());
        // Without a cluster (a ceiling) there are no log entries, only CPU.
        let ceiling = cost_between(
            &sample(None, &[("worker 1", 100)]),
            &sample(None, &[("worker 1", 300)]),
            1_000,
        )
        .unwrap();
        assert_eq!(
            (ceiling.log_entries, ceiling.commands_per_entry),
            (None, None)
        );
        assert_eq!(ceiling.cpu_us_per_answer["worker 1"], 200.0);
        // A leader that did not answer one reading leaves the entries unknown.
        let unread = cost_between(&sample(None, &[]), &sample(Some(500), &[]), 1_000).unwrap();
        assert_eq!(
            (unread.log_entries, unread.commands_per_entry),
            (None, None)
        );
    }

    // Checks that only a broker on this machine is counted: loopback addresses and localhost,
    // with or without credentials and port, and nothing else.
    #[test]
    fn only_a_local_broker_is_counted() {
        for local in [
            "amqp://guest:guest@127.0.0.1:5672/%2f",
            "amqp://localhost",
            "amqp://u:p@[::1]:5672/vhost",
            "amqp://127.0.0.2:5673",
        ] {
            assert!(broker_is_local(local), "{local}");
        }
        for remote in [
            "amqp://guest:guest@10.0.0.5:5672/%2f",
            "amqp://broker.example:5672",
            "amqp://u:p@[2001:db8::1]:5672",
        ] {
            assert!(!broker_is_local(remote), "{remote}");
        }
    }
}
