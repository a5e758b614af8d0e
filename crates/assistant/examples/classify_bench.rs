//! Times `understand` over the development set: runs it round after round for about
//! `RUN_MS_MAX` (or `ROUNDS_MAX` rounds) and prints the mean and p99 time per message, in
//! microseconds. Expected in a release build: well under 1 ms per message (tens of µs).
//!
//!     cargo run --release -p tix-assistant --example classify_bench

use std::time::{Duration, Instant};

use tix_assistant::eval::{parse_cases, parse_catalog};
use tix_assistant::understand;

/// How long to keep measuring.
const RUN_MS_MAX: u64 = 2_000;
/// The most rounds over the set.
const ROUNDS_MAX: usize = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let eval_catalog = parse_catalog(include_str!("../eval/catalog.json"))?;
    let cases = parse_cases(include_str!("../tests/dev.jsonl"))?;
    let catalog = &eval_catalog.catalog;
    let now_ms = eval_catalog.reference_time_ms;
    // Warm up: the language data is parsed on first use.
    let _ = understand("hello", catalog, now_ms);
    let mut samples_ns: Vec<u64> = Vec::new();
    let started = Instant::now();
    let deadline = Duration::from_millis(RUN_MS_MAX);
    let mut rounds = 0;
    while started.elapsed() < deadline && rounds < ROUNDS_MAX {
        for case in &cases {
            let at = Instant::now();
            let understanding = understand(&case.text, catalog, now_ms);
            let took = at.elapsed();
            std::hint::black_box(understanding);
            samples_ns.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
        rounds += 1;
    }
    samples_ns.sort_unstable();
    let count = samples_ns.len().max(1);
    let mean_us = samples_ns.iter().sum::<u64>() as f64 / count as f64 / 1_000.0;
    let p99_index = (count * 99 / 100).min(count - 1);
    let p99_us = samples_ns.get(p99_index).copied().unwrap_or(0) as f64 / 1_000.0;
    let max_us = samples_ns.last().copied().unwrap_or(0) as f64 / 1_000.0;
    println!(
        "understand: {} messages ({} rounds over {} cases) in {:.2} s",
        samples_ns.len(),
        rounds,
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    println!("mean_us {mean_us:.1}  p99_us {p99_us:.1}  max_us {max_us:.1}");
    Ok(())
}
