//! The `tix` binary: parses the command line and hands over to a subcommand. Everything else
//! lives in the library crates; see ARCHITECTURE.md.

mod cli;
mod cluster;
mod serve;
mod telemetry;
mod worker;

use clap::Parser;

/// mimalloc instead of glibc's malloc: under a flash sale glibc's allocator took about an
/// eighth of the leader's CPU; with mimalloc the direct benchmark sells 13 % more per second
/// (docs/BENCHMARK.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    telemetry::init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cli::run(cli))
}
