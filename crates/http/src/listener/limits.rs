//! The open-files budget: at startup the soft `RLIMIT_NOFILE` is raised to the hard limit, and
//! the connection caps of the two listeners are clamped so that, full, they still leave file
//! descriptors for the log and state stores, snapshot files, connections to peers and stdio.
//! A node that runs out of descriptors cannot accept, open a snapshot or answer `/healthz`; a
//! node at its connection cap evicts an idle connection instead (see `table.rs`).

/// Descriptors kept back from the connection caps: stores, snapshots, peer connections, stdio,
/// the runtime's own (epoll, eventfd), and the few sockets a cap may overshoot by while
/// evicted connections close.
pub const OPEN_FILES_RESERVE: u64 = 256;

/// The fewest public connections a node is willing to run with.
pub const CONNECTIONS_MIN: usize = 16;

/// The fewest Raft-listener connections a node is willing to run with.
pub const RAFT_CONNECTIONS_MIN: usize = 4;

/// Why the caps do not fit.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// The open-files limit leaves too few descriptors for connections.
    #[error(
        "the open-files limit ({open_files_max}) leaves room for only {budget} connections; \
         raise it (systemd: LimitNOFILE=65536, shell: ulimit -n 65536)"
    )]
    TooFewOpenFiles {
        /// The soft `RLIMIT_NOFILE` in force.
        open_files_max: u64,
        /// Descriptors left for connections after the reserve.
        budget: u64,
    },
    /// Reading or raising the limit failed.
    #[error("reading RLIMIT_NOFILE: {0}")]
    Io(#[from] std::io::Error),
}

/// The connection caps in force, after clamping to the open-files limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    /// At most this many connections on the public listener.
    pub http_connections_max: usize,
    /// At most this many connections on the Raft listener.
    pub raft_connections_max: usize,
    /// The soft open-files limit the caps were clamped to.
    pub open_files_max: u64,
}

/// Raises the soft open-files limit to the hard one (which needs no privilege) and returns the
/// soft limit now in force. An infinite hard limit is not a valid soft limit on Linux, so the
/// soft limit then goes to 2^20 (the kernel's default `fs.nr_open`).
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let target = if limit.rlim_max == libc::RLIM_INFINITY {
        1 << 20
    } else {
        limit.rlim_max
    };
    if limit.rlim_cur != libc::RLIM_INFINITY && limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one `rlimit` through a valid pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = target;
        }
    }
    Ok(limit.rlim_cur)
}

/// Clamps the wanted caps to `open_files_max`: the Raft listener gets at most a quarter of the
/// budget (it serves a handful of peers), the public listener the rest.
pub fn clamp_connections(
    open_files_max: u64,
    http_wanted: usize,
    raft_wanted: usize,
) -> Result<ConnectionCaps, LimitError> {
    let budget = open_files_max.saturating_sub(OPEN_FILES_RESERVE);
    let budget_usize = usize::try_from(budget).unwrap_or(usize::MAX);
    let raft = raft_wanted.min(budget_usize / 4);
    let http = http_wanted.min(budget_usize - raft);
    if http < CONNECTIONS_MIN.min(http_wanted) || raft < RAFT_CONNECTIONS_MIN.min(raft_wanted) {
        return Err(LimitError::TooFewOpenFiles {
            open_files_max,
            budget,
        });
    }
    Ok(ConnectionCaps {
        http_connections_max: http,
        raft_connections_max: raft,
        open_files_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks that caps that fit are kept as asked, and that the sum plus the reserve never
    // exceeds the limit when they do not fit.
    #[test]
    fn caps_are_kept_when_they_fit_and_clamped_when_not() {
        let caps = clamp_connections(65_536, 10_000, 256).unwrap();
        assert_eq!(caps.http_connections_max, 10_000);
        assert_eq!(caps.raft_connections_max, 256);

        let caps = clamp_connections(4_096, 10_000, 256).unwrap();
        assert_eq!(caps.raft_connections_max, 256);
        assert_eq!(caps.http_connections_max, 4_096 - 256 - 256);

        let caps = clamp_connections(1_024, 10_000, 256).unwrap();
        let total = caps.http_connections_max + caps.raft_connections_max;
        assert_eq!(total as u64 + OPEN_FILES_RESERVE, 1_024);
        assert_eq!(caps.raft_connections_max, (1_024 - 256) / 4);
    }

    // Checks the smallest limit from both sides: the exact minimum is accepted, one fewer
    // descriptor is refused with advice.
    #[test]
    fn too_few_open_files_is_refused_at_the_minimum_minus_one() {
        // Budget b: raft = b / 4 and http = b - b / 4, so b = 21 is the least with http >= 16.
        let caps = clamp_connections(OPEN_FILES_RESERVE + 21, 10_000, 256).unwrap();
        assert_eq!(caps.http_connections_max, CONNECTIONS_MIN);
        assert_eq!(caps.raft_connections_max, 5);
        let error = clamp_connections(OPEN_FILES_RESERVE + 20, 10_000, 256).unwrap_err();
        assert!(error.to_string().contains("LimitNOFILE"), "{error}");
        assert!(clamp_connections(10, 10_000, 256).is_err());
    }

    // Checks that raising the limit leaves a soft limit no lower than before, up to the hard
    // limit.
    #[test]
    fn raising_the_limit_reaches_the_hard_limit() {
        let mut before = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) },
            0
        );
        let now = raise_open_files_limit().unwrap();
        assert!(now >= before.rlim_cur);
        if before.rlim_max != libc::RLIM_INFINITY {
            assert_eq!(now, before.rlim_max);
        }
    }
}
