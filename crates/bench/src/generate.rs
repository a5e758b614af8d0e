//! `tix bench gen`: writes the workload files from a model, a size and a seed, so the files in
//! `benchmarks/` can be regenerated (and varied) instead of only copied.
//!
//! - `unnumbered`: demand equals supply — `BUY userNNNNN NNNNN` for every ticket.
//! - `numbered`: 2,000 attempts at each of seats 42, 100 and 999, then every other seat once.
//! - `oversubscribed`: `--requests` attempts by clients drawn uniformly from 1..=`--clients`.
//! - `hotspot`: numbered; each attempt goes with probability 0.8 to a seat of the first 5 % of the
//!   venue, else to any seat; every attempt's seat is drawn first, then every attempt's client
//!   (uniformly from 1..=`--clients`).
//!
//! The random models draw from the Mersenne Twister seeded as CPython's `random.seed(int)` does
//! and pick integers as `random.randint` does (rejection sampling on the fewest bits that hold
//! the range) and floats as `random.random` does, which is how the shared files were written:
//! with the defaults (seed 7 for `oversubscribed`, 8 for `hotspot`), every model reproduces its
//! file in `benchmarks/` byte for byte (a test checks it).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, ensure};
use clap::{Args, ValueEnum};
use rand_mt::Mt;

/// The shapes a workload file can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Model {
    /// Demand equals supply (the assignment's unnumbered file).
    Unnumbered,
    /// Three hot seats, then every seat (the assignment's numbered file).
    Numbered,
    /// More attempts than tickets, random clients.
    Oversubscribed,
    /// 80 % of attempts on 5 % of the seats.
    Hotspot,
}

/// Options of `tix bench gen`.
#[derive(Debug, Clone, Args)]
pub struct GenArgs {
    /// The file's shape.
    #[arg(long, value_enum)]
    pub model: Model,
    /// Tickets (unnumbered) or seats (numbered) of the event.
    #[arg(long, default_value_t = 20_000)]
    pub tickets: u32,
    /// Attempts (oversubscribed and hotspot).
    #[arg(long, default_value_t = 100_000)]
    pub requests: u32,
    /// Distinct clients the random models draw from.
    #[arg(long, default_value_t = 5_000)]
    pub clients: u32,
    /// The random models' seed (default: the shipped file's, 7 for `oversubscribed` and 8 for
    /// `hotspot`).
    #[arg(long)]
    pub seed: Option<u32>,
    /// Where to write the file (standard output if absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The largest `--tickets` and `--requests` accepted.
const LINES_MAX: u32 = 10_000_000;

/// The seed the shipped oversubscribed file was drawn with.
const OVERSUBSCRIBED_SEED: u32 = 7;

/// The seed the shipped hot-seat file was drawn with.
const HOTSPOT_SEED: u32 = 8;

/// Attempts at each of the numbered file's three hot seats.
const NUMBERED_HOT_ATTEMPTS: u32 = 2_000;

/// The numbered file's hot seats.
const NUMBERED_HOT_SEATS: [u32; 3] = [42, 100, 999];

/// Writes the file the options describe.
pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let text = generate(&args)?;
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("{}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
            Ok(())
        }
    }
}

/// Returns the file the options describe.
pub fn generate(args: &GenArgs) -> anyhow::Result<String> {
    ensure!(
        (1..=LINES_MAX).contains(&args.tickets),
        "--tickets must be 1 to {LINES_MAX}"
    );
    ensure!(
        (1..=LINES_MAX).contains(&args.requests),
        "--requests must be 1 to {LINES_MAX}"
    );
    ensure!(args.clients >= 1, "--clients must be at least 1");
    let mut out = String::new();
    match args.model {
        Model::Unnumbered => {
            let n = args.tickets;
            header(
                &mut out,
                &format!("unnumbered, {n} tickets"),
                "Tickets",
                n,
                false,
            );
            for i in 1..=n {
                let _ = writeln!(out, "BUY user{i:05} {i:05}");
            }
        }
        Model::Numbered => {
            let n = args.tickets;
            ensure!(
                n >= 999,
                "--tickets must be at least 999 for the numbered model (hot seat 999)"
            );
            header(
                &mut out,
                "numbered seats, three hot seats then every seat",
                "Seats",
                n,
                true,
            );
            let hot = NUMBERED_HOT_SEATS
                .iter()
                .flat_map(|&s| std::iter::repeat_n(s, NUMBERED_HOT_ATTEMPTS as usize));
            let rest = (1..=n).filter(|s| !NUMBERED_HOT_SEATS.contains(s));
            for (i, seat) in (1u32..).zip(hot.chain(rest)) {
                let _ = writeln!(out, "BUY user{i:05} {seat} {i:05}");
            }
        }
        Model::Oversubscribed => {
            let ratio = args.requests as f64 / args.tickets as f64;
            header(
                &mut out,
                &format!("unnumbered, {}x oversubscribed", trim_ratio(ratio)),
                "Tickets",
                args.tickets,
                false,
            );
            let mut random = PyRandom::new(args.seed.unwrap_or(OVERSUBSCRIBED_SEED));
            for i in 1..=args.requests {
                let client = random.randint(1, args.clients);
                let _ = writeln!(out, "BUY c{client} r{i:07}");
            }
        }
        Model::Hotspot => {
            let n = args.tickets;
            let hot_seats = (n / 20).max(1);
            header(
                &mut out,
                "numbered, 80% of attempts on 5% of seats",
                "Seats",
                n,
                true,
            );
            let mut random = PyRandom::new(args.seed.unwrap_or(HOTSPOT_SEED));
            let seats: Vec<u32> = (0..args.requests)
                .map(|_| {
                    if random.random() < 0.8 {
                        random.randint(1, hot_seats)
                    } else {
                        random.randint(1, n)
                    }
                })
                .collect();
            for (i, seat) in (1u32..).zip(seats) {
                let client = random.randint(1, args.clients);
                let _ = writeln!(out, "BUY c{client} {seat} r{i:07}");
            }
        }
    }
    Ok(out)
}

/// "5" for 5.0, "2.5" for 2.5.
fn trim_ratio(ratio: f64) -> String {
    let text = format!("{ratio:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The shared files' four header lines.
fn header(out: &mut String, title: &str, what: &str, n: u32, numbered: bool) {
    let _ = writeln!(out, "# Concert ticket benchmark - {title}");
    if numbered {
        let _ = writeln!(out, "# {what}: 1..{n}");
        let _ = writeln!(out, "# Format: BUY <client_id> <seat_id> <request_id>");
    } else {
        let _ = writeln!(out, "# {what}: {n}");
        let _ = writeln!(out, "# Format: BUY <client_id> <request_id>");
    }
    out.push('\n');
}

/// The Mersenne Twister as CPython's `random` module seeds and uses it.
struct PyRandom(Mt);

impl PyRandom {
    /// `random.seed(seed)` for a non-negative integer below 2³²: the key is the integer's one
    /// 32-bit word.
    fn new(seed: u32) -> PyRandom {
        PyRandom(Mt::new_with_key([seed]))
    }

    /// `random.getrandbits(bits)` for 1 ≤ bits ≤ 32.
    fn bits(&mut self, bits: u32) -> u32 {
        self.0.next_u32() >> (32 - bits)
    }

    /// `random.randint(low, high)`: `low + _randbelow(high - low + 1)`, drawing the fewest bits
    /// that hold the range and drawing again while the value is out of it.
    fn randint(&mut self, low: u32, high: u32) -> u32 {
        let n = high - low + 1;
        let bits = u32::BITS - n.leading_zeros();
        loop {
            let r = self.bits(bits);
            if r < n {
                return low + r;
            }
        }
    }

    /// `random.random()`: 53 random bits as a float in [0, 1).
    fn random(&mut self) -> f64 {
        let a = (self.0.next_u32() >> 5) as f64;
        let b = (self.0.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) * (1.0 / 9_007_199_254_740_992.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(model: Model) -> GenArgs {
        GenArgs {
            model,
            tickets: 20_000,
            requests: 100_000,
            clients: 5_000,
            seed: None,
            out: None,
        }
    }

    fn shipped(name: &str) -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../benchmarks/");
        std::fs::read_to_string(format!("{path}{name}")).expect("the shipped workload file")
    }

    #[test]
    fn the_default_models_regenerate_the_shipped_files_byte_for_byte() {
        for (model, file) in [
            (Model::Unnumbered, "benchmark_unnumbered.txt"),
            (Model::Numbered, "benchmark_numbered.txt"),
            (
                Model::Oversubscribed,
                "benchmark_unnumbered_oversubscribed.txt",
            ),
            (Model::Hotspot, "benchmark_numbered_hotspot.txt"),
        ] {
            let generated = generate(&args(model)).unwrap();
            assert!(generated == shipped(file), "{model:?} differs from {file}");
        }
    }

    #[test]
    fn another_seed_draws_another_hotspot_file_of_the_same_shape() {
        let mut other = args(Model::Hotspot);
        other.seed = Some(9);
        let generated = generate(&other).unwrap();
        let shipped = shipped("benchmark_numbered_hotspot.txt");
        assert!(generated != shipped);
        let head = |t: &str| t.lines().take(4).collect::<Vec<_>>().join("\n");
        assert_eq!(head(&generated), head(&shipped));
        let seats: Vec<u32> = generated
            .lines()
            .skip(4)
            .map(|l| l.split(' ').nth(2).unwrap().parse().unwrap())
            .collect();
        assert_eq!(seats.len(), 100_000);
        let hot = seats.iter().filter(|&&s| s <= 1000).count() as f64 / seats.len() as f64;
        assert!((0.80..0.82).contains(&hot), "{hot}");
        assert!(seats.iter().all(|&s| (1..=20_000).contains(&s)));
    }

    #[test]
    fn python_random_matches_cpython() {
        // random.seed(7); [random.randint(1, 5000) for _ in range(4)] in CPython 3.
        let mut r = PyRandom::new(7);
        let drawn: Vec<u32> = (0..4).map(|_| r.randint(1, 5000)).collect();
        assert_eq!(drawn, [2653, 1236, 3235, 396]);
        // random.seed(8); [random.random() for _ in range(2)] in CPython 3.
        let mut r = PyRandom::new(8);
        assert_eq!(r.random(), 0.2267058593810488);
        assert_eq!(r.random(), 0.9622950358343828);
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        let mut a = args(Model::Numbered);
        a.tickets = 500;
        assert!(generate(&a).unwrap_err().to_string().contains("999"));
        a.tickets = 0;
        assert!(generate(&a).is_err());
    }
}
