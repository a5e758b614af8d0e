//! What tests set in and read from the operating system: this process's open-files limit (a
//! test that holds thousands of sockets, and the servers it starts, which inherit the limit),
//! and a process's resident memory.

use anyhow::{Context, bail};

/// Raises this process's soft open-files limit to at least `wanted`: to the hard limit, or to
/// `wanted` when that is above the hard limit (which needs the privilege to raise the hard
/// limit). Fails when the limit cannot reach `wanted`.
pub fn raise_open_files(wanted: u64) -> anyhow::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        bail!("reading RLIMIT_NOFILE: {}", std::io::Error::last_os_error());
    }
    let wanted = wanted as libc::rlim_t;
    if limit.rlim_cur >= wanted {
        return Ok(());
    }
    let raised = if limit.rlim_max == libc::RLIM_INFINITY || limit.rlim_max < wanted {
        libc::rlimit {
            rlim_cur: wanted,
            rlim_max: limit.rlim_max.max(wanted),
        }
    } else {
        libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        }
    };
    // SAFETY: setrlimit reads one `rlimit` through a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        bail!(
            "cannot raise RLIMIT_NOFILE to {wanted} (hard limit {}): {}",
            limit.rlim_max,
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Returns the resident set size (`VmRSS`) of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS without a value")?
        .parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Checks that a limit already met is left alone and that the hard limit itself can be
    // reached; and that this process's own memory reads as a plausible number of KiB.
    #[test]
    fn raises_to_what_is_wanted_and_reads_memory() {
        raise_open_files(64).unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        if limit.rlim_max != libc::RLIM_INFINITY {
            raise_open_files(limit.rlim_max).unwrap();
        }
        let rss = rss_kib(std::process::id()).unwrap();
        assert!((100..100_000_000).contains(&rss), "{rss} KiB");
    }
}
