//! The `tix` binary: parses the command line and hands over to a subcommand. Everything else
//! lives in the library crates; see ARCHITECTURE.md.

mod allocator;
mod assistant;
mod cli;
mod cluster;
mod serve;
mod telemetry;
mod worker;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    telemetry::init();
    allocator::disable_transparent_huge_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(allocator::on_worker_park)
        .on_thread_stop(allocator::on_thread_stop)
        // A blocking-pool thread (password hashing: 19 MiB a hash) ends, and hands its memory
        // back, a second after its last job instead of tokio's default ten.
        .thread_keep_alive(allocator::BLOCKING_THREAD_KEEP_ALIVE)
        .build()?;
    runtime.block_on(cli::run(cli))
}
