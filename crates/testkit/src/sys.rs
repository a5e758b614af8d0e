//! What tests set in and read from the operating system: this process's open-files limit (a
//! test that holds thousands of sockets, and the servers it starts, which inherit the limit),
//! and a process's resident memory and CPU time.

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

/// Returns the CPU time (user + system, every thread, at the kernel's clock-tick resolution,
/// usually 10 ms) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces and parentheses; the fields after its last
    // `)` are plain numbers: state is field 3, utime and stime are fields 14 and 15.
    let after_name = &stat[stat
        .rfind(')')
        .context("no command name in /proc/PID/stat")?
        + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .context("/proc/PID/stat has too few fields")?
            .parse()?)
    };
    let total = ticks(11)? + ticks(12)?;
    // SAFETY: sysconf only reads a configuration value.
    let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if per_s <= 0 {
        bail!("sysconf(_SC_CLK_TCK) failed");
    }
    Ok(std::time::Duration::from_secs_f64(
        total as f64 / per_s as f64,
    ))
}

/// Returns the ids of process `pid`'s children (forked by any of its threads), or none when
/// it cannot be read.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
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

    // Checks that CPU time reads for this process and grows by about what a busy loop spent
    // (at least half of it: the tick resolution and the scheduler blur the rest).
    #[test]
    fn cpu_time_grows_with_work() {
        let pid = std::process::id();
        let before = cpu_time(pid).unwrap();
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let spent = cpu_time(pid).unwrap() - before;
        assert!(spent >= std::time::Duration::from_millis(150), "{spent:?}");
        assert!(cpu_time(u32::MAX).is_err(), "no such process");
    }

    // Checks that a child this process started is listed among its children, and that an
    // unknown process has none.
    #[test]
    fn lists_a_started_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let listed = children(std::process::id()).contains(&child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(listed, "the child {} was not listed", child.id());
        assert!(children(u32::MAX).is_empty());
    }
}
