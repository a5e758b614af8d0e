//! A fault-injecting TCP proxy for network partitions on one machine.
//!
//! Each node of a local test cluster sends its Raft traffic from its own loopback address
//! (127.0.0.11 for node 1, 127.0.0.12 for node 2...) and is reached by its peers through a proxy
//! in front of its Raft listener. The proxy knows the sender from the source address, so a
//! [`Partitions`] table shared by all proxies can cut any pair of nodes: new connections across
//! a cut are refused and established ones are closed at once. The kernel here has no netem;
//! this needs nothing but sockets on 127.0.0.0/8.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The loopback address node `id` sends from and listens on.
pub fn node_ip(id: u64) -> IpAddr {
    assert!(
        (1..=200).contains(&id),
        "node ids 1..=200 map to loopback addresses"
    );
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

/// The node a loopback source address belongs to, if any.
pub fn node_of(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] && v4.octets()[3] > 10 => {
            Some(u64::from(v4.octets()[3] - 10))
        }
        _ => None,
    }
}

/// Which pairs of nodes cannot talk; shared by every proxy of a cluster.
#[derive(Clone, Default)]
pub struct Partitions {
    cut: Arc<Mutex<BTreeSet<(u64, u64)>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Partitions {
    /// Returns an empty table (everyone can talk).
    pub fn new() -> Self {
        Self {
            cut: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
        }
    }

    /// Splits the nodes into groups that cannot reach each other (nodes in no group are cut
    /// from everyone).
    pub fn split(&self, groups: &[Vec<u64>], all: &[u64]) {
        let group_of = |n: u64| groups.iter().position(|g| g.contains(&n));
        let mut cut = BTreeSet::new();
        for &a in all {
            for &b in all {
                let separated = match (group_of(a), group_of(b)) {
                    (Some(x), Some(y)) => x != y,
                    _ => a != b,
                };
                if separated {
                    cut.insert((a, b));
                }
            }
        }
        *self.cut.lock().expect("poisoned") = cut;
        self.changed.send_modify(|v| *v += 1);
    }

    /// Removes every cut.
    pub fn heal(&self) {
        self.cut.lock().expect("poisoned").clear();
        self.changed.send_modify(|v| *v += 1);
    }

    /// Returns true if `from` cannot reach `to`.
    pub fn is_cut(&self, from: u64, to: u64) -> bool {
        self.cut.lock().expect("poisoned").contains(&(from, to))
    }
}

/// A proxy in front of one node's Raft listener.
pub struct FaultProxy {
    /// The address peers connect to (stored in the membership).
    pub listen_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy for node `to` on `listen_ip` (a free port), forwarding to `target`.
    pub async fn start(
        to: u64,
        listen_ip: IpAddr,
        target: SocketAddr,
        partitions: Partitions,
    ) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind((listen_ip, 0)).await?;
        let listen_addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(listener, to, target, partitions));
        Ok(FaultProxy { listen_addr, task })
    }
}

impl FaultProxy {
    /// Starts a proxy on exactly `listen_addr` (to bring a stopped proxy back on the same
    /// address), retrying for a moment while the old listener is still being dropped.
    pub fn start_on(
        to: u64,
        listen_addr: SocketAddr,
        target: SocketAddr,
        partitions: Partitions,
    ) -> std::io::Result<FaultProxy> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let std_listener = loop {
            match std::net::TcpListener::bind(listen_addr) {
                Ok(l) => break l,
                Err(e) if std::time::Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        let task = tokio::spawn(accept_loop(listener, to, target, partitions));
        Ok(FaultProxy { listen_addr, task })
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, to: u64, target: SocketAddr, partitions: Partitions) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((inbound, peer)) = listener.accept().await else {
            continue;
        };
        while conns.try_join_next().is_some() {}
        let from = node_of(peer.ip());
        if from.is_some_and(|f| partitions.is_cut(f, to)) {
            drop(inbound);
            continue;
        }
        let partitions = partitions.clone();
        conns.spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else { return };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let mut changed = partitions.changed.subscribe();
            let (mut a, mut b) = (inbound, outbound);
            let copy = tokio::io::copy_bidirectional(&mut a, &mut b);
            tokio::pin!(copy);
            loop {
                tokio::select! {
                    _ = &mut copy => return,
                    result = changed.changed() => {
                        let cut = from.is_some_and(|f| partitions.is_cut(f, to) || partitions.is_cut(to, f));
                        if result.is_err() || cut {
                            return; // dropping both streams closes the connection
                        }
                    }
                }
            }
        });
    }
}
