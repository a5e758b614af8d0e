//! The global allocator, mimalloc, and handing its free memory back to the operating system
//! when the node goes idle.
//!
//! mimalloc keeps pages freed by a thread in that thread's heap and returns (purges) them only
//! when the thread itself allocates again and a purge delay has passed. A Tokio worker that
//! goes quiet after a burst — 2,000 live streams closing, say — therefore kept their memory
//! resident for good: measured, 2,000 closed streams left about 55 MiB of a debug node's RSS
//! behind, whatever the purge delay. So each worker thread, when it parks with nothing to do,
//! collects its heap and purges what is free, at most once per [`COLLECT_INTERVAL`].
//!
//! The process also opts out of transparent huge pages ([`disable_transparent_huge_pages`]):
//! where the kernel (or a DAMON scheme) collapses a sparsely used region into a 2 MiB huge page,
//! the memory mimalloc had just handed back came resident again — measured, a node idle after
//! 2,000 closed streams grew from 63 to 77 MiB in 30 s, 38 MiB of it huge pages.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// mimalloc instead of glibc's malloc: under a flash sale glibc's allocator took about an
/// eighth of the leader's CPU; with mimalloc the direct benchmark sells 13 % more per second
/// (docs/BENCHMARK.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The shortest time between two collections on one thread.
pub const COLLECT_INTERVAL: Duration = Duration::from_secs(1);

thread_local! {
    static LAST_COLLECT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Opts this process out of transparent huge pages (`PR_SET_THP_DISABLE`, inherited by
/// threads); a failure (an old kernel) is logged and ignored.
pub fn disable_transparent_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE reads only its integer arguments.
    let result = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "PR_SET_THP_DISABLE failed");
    }
}

/// How long an idle blocking-pool thread lives before it ends (and [`on_thread_stop`] hands its
/// memory back).
pub const BLOCKING_THREAD_KEEP_ALIVE: Duration = Duration::from_secs(1);

/// Called when a runtime thread (a blocking-pool thread idle for its keep-alive, mostly) ends:
/// frees its heap's pages before mimalloc abandons the heap, since an abandoned heap's free
/// pages are reclaimed only by the main thread's collection, which a node never runs. Password
/// hashing (argon2, 19 MiB a hash) runs on these threads: measured, a node idle after 2,000
/// closed streams kept 8 MiB more resident in some runs without this.
pub fn on_thread_stop() {
    // SAFETY: as in `on_worker_park`: this thread's own heap, under mimalloc's own locks.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// Called when a Tokio worker thread parks: when the thread's last collection is at least
/// [`COLLECT_INTERVAL`] old, frees its heap's empty pages and purges free memory now.
pub fn on_worker_park() {
    LAST_COLLECT.with(|last| {
        let now = Instant::now();
        if last
            .get()
            .is_some_and(|at| now.duration_since(at) < COLLECT_INTERVAL)
        {
            return;
        }
        last.set(Some(now));
        // SAFETY: mi_collect only walks this thread's own heap and the shared arenas, under
        // mimalloc's own locks; it may be called at any time from any thread.
        unsafe { libmimalloc_sys::mi_collect(true) };
    });
}
