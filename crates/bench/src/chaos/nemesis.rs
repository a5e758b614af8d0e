//! The nemesis: a fault schedule drawn from a seeded RNG ([`plan`]), so the same seed replays
//! the same faults with the same timings and victims, and the executor ([`run`]) that injects
//! them into a [`LocalCluster`] one at a time, healing and waiting for recovery in between.
//!
//! Faults that target "the leader" pick whoever leads when the fault starts. Every wait has a
//! deadline: a cluster that does not recover within [`RECOVERY_TIMEOUT`] is recorded as such
//! (a failed check) and the nemesis stops injecting.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use tix_testkit::cluster::LocalCluster;

use super::history::{Clock, FaultKind, FaultRecord};
use super::workload::Progress;

/// How long a fault may take to heal: a leader agreed and every node answering.
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a leader before a fault that targets it.
const LEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The most faults a plan holds (far more than a run of an hour injects).
const PLAN_FAULTS_MAX: usize = 2000;

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFault {
    /// What to inject.
    pub kind: FaultKind,
    /// Healthy time before it.
    pub quiet: Duration,
    /// How long the nodes stay down, paused or cut off before healing.
    pub hold: Duration,
    /// Kill-minority: the victims. Rolling restart: the restart order.
    pub nodes: Vec<u64>,
    /// Partition: how many nodes (the leader included) end up in the minority.
    pub minority_size: usize,
    /// Partition: which of the other nodes join the leader (rotation of the sorted others).
    pub pick: usize,
}

/// Returns how long followers take at most to elect a new leader after losing the old one. A
/// follower that knew a leader first waits out the leader lease (openraft: the maximal election
/// timeout) and then its own randomized election timeout, so twice the maximal election timeout.
pub fn leader_loss_max(election_timeout_max: Duration) -> Duration {
    election_timeout_max * 2
}

/// Returns the fault schedule for `seed` on nodes `1..=nodes`: the kinds come in shuffled
/// rounds (every kind once per round), with quiet periods of 1-3 s. A fault on the leader lasts
/// 0.5-2 s longer than [`leader_loss_max`], so the others elect a new leader before it heals
/// (a killed leader restarted sooner would resume its leadership in the same term).
pub fn plan(
    seed: u64,
    nodes: u64,
    faults: usize,
    election_timeout_max: Duration,
) -> Vec<PlannedFault> {
    assert!(nodes >= 3, "a nemesis needs at least three nodes");
    let faults = faults.min(PLAN_FAULTS_MAX);
    let mut rng = StdRng::seed_from_u64(seed);
    let ids: Vec<u64> = (1..=nodes).collect();
    let minority_max = (ids.len() - 1) / 2;
    let election_ms = election_timeout_max.as_millis() as u64;
    let leader_loss_ms = leader_loss_max(election_timeout_max).as_millis() as u64;
    let mut schedule = Vec::with_capacity(faults);
    while schedule.len() < faults {
        let mut round = FaultKind::ALL;
        round.shuffle(&mut rng);
        for kind in round.into_iter().take(faults - schedule.len()) {
            let quiet = Duration::from_millis(rng.random_range(1000..=3000));
            let hold_ms = match kind {
                FaultKind::KillLeader | FaultKind::PauseLeader | FaultKind::PartitionLeader => {
                    rng.random_range(leader_loss_ms + 500..=leader_loss_ms + 2000)
                }
                FaultKind::KillMinority => {
                    rng.random_range(election_ms + 500..=leader_loss_ms + 2000)
                }
                FaultKind::RollingRestart => 0,
                FaultKind::FullCrash => rng.random_range(500..=1500),
            };
            let minority_size = rng.random_range(1..=minority_max);
            let mut shuffled = ids.clone();
            shuffled.shuffle(&mut rng);
            let nodes = match kind {
                FaultKind::KillMinority => shuffled[..minority_size].to_vec(),
                FaultKind::RollingRestart => shuffled,
                _ => Vec::new(),
            };
            schedule.push(PlannedFault {
                kind,
                quiet,
                hold: Duration::from_millis(hold_ms),
                nodes,
                minority_size,
                pick: rng.random_range(0..ids.len()),
            });
        }
    }
    schedule
}

/// Prints a progress line stamped with the run's clock.
fn say(clock: &Clock, line: &str) {
    println!("[{:>7.1}s] {line}", clock.now_ms() as f64 / 1000.0);
}

/// Injects the planned faults one at a time until `until_ms`, healing each and waiting for
/// recovery before the next; returns what was injected, including faults that could not be
/// injected as planned (with the reason). Stops early if the cluster does not recover from a
/// fault within [`RECOVERY_TIMEOUT`].
pub async fn run(
    cluster: &mut LocalCluster,
    schedule: &[PlannedFault],
    clock: Clock,
    until_ms: u64,
    progress: &Progress,
) -> Vec<FaultRecord> {
    let until = clock.instant_at(until_ms);
    let mut records = Vec::new();
    for (number, fault) in schedule.iter().enumerate() {
        tokio::time::sleep_until((Instant::now() + fault.quiet).min(until).into()).await;
        if Instant::now() >= until {
            break;
        }
        let name = fault.kind.name();
        let mut started_ms = clock.now_ms();
        let injected = inject(cluster, fault, &clock).await;
        let healing_ms = clock.now_ms();
        if let Ok((_, struck_ms)) = &injected {
            started_ms = *struck_ms;
        }
        match &injected {
            Ok((nodes, _)) => say(
                &clock,
                &format!(
                    "fault {}: {name} {nodes:?} for {:.1} s ({})",
                    number + 1,
                    (healing_ms - started_ms) as f64 / 1000.0,
                    progress.summary()
                ),
            ),
            Err(e) => say(
                &clock,
                &format!("fault {}: {name} failed: {e:#}", number + 1),
            ),
        }
        let recovered = recover(cluster, RECOVERY_TIMEOUT).await;
        let recovered_ms = recovered.as_ref().ok().map(|_| clock.now_ms());
        match &recovered {
            Ok(leader) => say(
                &clock,
                &format!(
                    "fault {}: healed, leader {leader}, recovered in {:.1} s",
                    number + 1,
                    (clock.now_ms() - healing_ms) as f64 / 1000.0
                ),
            ),
            Err(e) => say(&clock, &format!("fault {}: no recovery: {e:#}", number + 1)),
        }
        let (nodes, error) = match injected {
            Ok((nodes, _)) => (nodes, None),
            Err(e) => (Vec::new(), Some(format!("{e:#}"))),
        };
        records.push(FaultRecord {
            kind: fault.kind,
            nodes,
            started_ms,
            healing_ms,
            recovered_ms,
            error,
        });
        if recovered_ms.is_none() {
            break;
        }
    }
    records
}

/// Injects one fault and holds it; returns the nodes it hit and when it took effect (after the
/// first kill, pause or cut: finding the leader first takes a moment). Healing is left to
/// [`recover`], except where the fault heals itself in steps (rolling restart).
async fn inject(
    cluster: &mut LocalCluster,
    fault: &PlannedFault,
    clock: &Clock,
) -> anyhow::Result<(Vec<u64>, u64)> {
    let struck = match fault.kind {
        FaultKind::KillLeader => {
            let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
            cluster.kill(leader)?;
            (vec![leader], clock.now_ms())
        }
        FaultKind::KillMinority => {
            for &id in &fault.nodes {
                cluster.kill(id)?;
            }
            (fault.nodes.clone(), clock.now_ms())
        }
        FaultKind::PauseLeader => {
            let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
            cluster.pause(leader)?;
            let at_ms = clock.now_ms();
            tokio::time::sleep(fault.hold).await;
            cluster.resume(leader)?;
            return Ok((vec![leader], at_ms));
        }
        FaultKind::PartitionLeader => {
            let leader = cluster.wait_for_leader(LEADER_TIMEOUT).await?;
            let minority = leader_minority(&cluster.ids(), leader, fault);
            let majority: Vec<u64> = cluster
                .ids()
                .into_iter()
                .filter(|id| !minority.contains(id))
                .collect();
            cluster.partition(&[minority.clone(), majority]);
            (minority, clock.now_ms())
        }
        FaultKind::RollingRestart => {
            let at_ms = clock.now_ms();
            for &id in &fault.nodes {
                cluster.restart(id)?;
                wait_ready(cluster, RECOVERY_TIMEOUT)
                    .await
                    .with_context(|| format!("after restarting node {id}"))?;
            }
            (fault.nodes.clone(), at_ms)
        }
        FaultKind::FullCrash => {
            let ids = cluster.ids();
            for &id in &ids {
                cluster.kill(id)?;
            }
            (ids, clock.now_ms())
        }
    };
    tokio::time::sleep(fault.hold).await;
    Ok(struck)
}

/// Returns the minority a partition fault cuts off: the leader and `minority_size - 1` of the
/// other nodes, chosen by rotating the sorted others by `pick`.
pub fn leader_minority(ids: &[u64], leader: u64, fault: &PlannedFault) -> Vec<u64> {
    let others: Vec<u64> = ids.iter().copied().filter(|id| *id != leader).collect();
    let companions = fault.minority_size.saturating_sub(1).min(others.len());
    let mut minority: BTreeSet<u64> = BTreeSet::from([leader]);
    for i in 0..companions {
        minority.insert(others[(fault.pick + i) % others.len()]);
    }
    minority.into_iter().collect()
}

/// Heals everything: removes partitions, resumes paused nodes, starts dead ones, and waits until
/// a leader is agreed and every node answers with it. Returns the leader.
pub async fn recover(cluster: &mut LocalCluster, timeout: Duration) -> anyhow::Result<u64> {
    cluster.heal();
    for id in cluster.ids() {
        if cluster.is_running(id) {
            cluster.resume(id)?;
        } else {
            cluster.restart(id)?;
        }
    }
    wait_ready(cluster, timeout).await
}

/// Waits until a leader is agreed by a majority and every node's Raft view names it.
async fn wait_ready(cluster: &LocalCluster, timeout: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + timeout;
    let mut waiting = Vec::new();
    while Instant::now() < deadline {
        if let Some(leader) = cluster.leader().await {
            waiting.clear();
            for id in cluster.ids() {
                let view = cluster.health(id).await;
                if view.as_ref().and_then(|h| h["leader_id"].as_u64()) != Some(leader) {
                    waiting.push(id);
                }
            }
            if waiting.is_empty() {
                return Ok(leader);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("no leader known to every node within {timeout:?} (waiting for {waiting:?})")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ELECTION_MAX: Duration = Duration::from_secs(2);

    /// The same seed gives the same schedule; another seed gives another one.
    #[test]
    fn the_same_seed_replays_the_same_schedule() {
        assert_eq!(plan(7, 3, 40, ELECTION_MAX), plan(7, 3, 40, ELECTION_MAX));
        assert_ne!(plan(7, 3, 40, ELECTION_MAX), plan(8, 3, 40, ELECTION_MAX));
        assert_eq!(plan(7, 5, 12, ELECTION_MAX).len(), 12);
    }

    /// Every round of six faults holds every kind once, so a short run still sees each kind.
    #[test]
    fn each_round_has_every_kind() {
        let schedule = plan(1, 5, 12, ELECTION_MAX);
        for round in schedule.chunks(6) {
            let kinds: BTreeSet<FaultKind> = round.iter().map(|f| f.kind).collect();
            assert_eq!(kinds.len(), 6, "{round:?}");
        }
    }

    /// Victims always leave a majority alive, and rolling restarts visit every node once.
    #[test]
    fn victims_are_a_minority() {
        for nodes in [3, 5] {
            for fault in plan(3, nodes, 60, ELECTION_MAX) {
                assert!((1..=((nodes as usize - 1) / 2)).contains(&fault.minority_size));
                match fault.kind {
                    FaultKind::KillMinority => {
                        assert_eq!(fault.nodes.len(), fault.minority_size);
                    }
                    FaultKind::RollingRestart => {
                        let visited: BTreeSet<u64> = fault.nodes.iter().copied().collect();
                        assert_eq!(visited.len(), nodes as usize);
                    }
                    _ => {}
                }
                let minority = leader_minority(&(1..=nodes).collect::<Vec<_>>(), 2, &fault);
                assert!(minority.contains(&2));
                assert_eq!(minority.len(), fault.minority_size);
                assert!(minority.len() * 2 < nodes as usize);
            }
        }
    }

    /// Faults on the leader last longer than the lease plus the election timeout (4 s here), so
    /// they force an election rather than a restart in the same term.
    #[test]
    fn leader_faults_outlast_an_election() {
        for fault in plan(11, 3, 60, ELECTION_MAX) {
            if matches!(
                fault.kind,
                FaultKind::KillLeader | FaultKind::PauseLeader | FaultKind::PartitionLeader
            ) {
                assert!(fault.hold > Duration::from_secs(4), "{fault:?}");
                assert!(fault.hold <= Duration::from_secs(6), "{fault:?}");
            }
        }
    }
}
