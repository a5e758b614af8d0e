//! Workload files of the flash-sale benchmark: one acquisition attempt per line.
//!
//! ```text
//! # comment lines and blank lines are skipped
//! BUY <client_id> <request_id>              unnumbered (general admission)
//! BUY <client_id> <seat_id> <request_id>    numbered, seat_id in 1..=seats
//! ```
//!
//! A file is parsed whole before a run starts; the first malformed line stops it with the file,
//! the line number and what is wrong, so a typo never turns into a half-run benchmark.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

/// The longest client or request id accepted (the server's limit).
pub const ID_BYTES_MAX: usize = 128;

/// Whether a workload buys general-admission tickets or numbered seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `BUY <client_id> <request_id>`.
    Unnumbered,
    /// `BUY <client_id> <seat_id> <request_id>`.
    Numbered,
}

/// One acquisition attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buy {
    /// The 1-based line number in the file.
    pub line: usize,
    /// Who buys.
    pub client_id: String,
    /// The seat, for a numbered workload.
    pub seat: Option<u32>,
    /// The client's id for this attempt.
    pub request_id: String,
}

/// A parsed workload file.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Where it came from.
    pub path: PathBuf,
    /// Unnumbered or numbered (all lines agree).
    pub kind: WorkloadKind,
    /// The attempts, in file order.
    pub buys: Vec<Buy>,
}

impl Workload {
    /// Returns how many distinct seats a numbered workload asks for (0 for unnumbered).
    pub fn distinct_seats(&self) -> usize {
        self.buys
            .iter()
            .filter_map(|b| b.seat)
            .collect::<BTreeSet<_>>()
            .len()
    }

    /// Returns the number of tickets a correct run sells: `min(capacity, attempts)` for
    /// general admission (every attempt is a different request), the distinct seats asked for
    /// when seats are numbered.
    pub fn expected_sold(&self, capacity: u32) -> usize {
        match self.kind {
            WorkloadKind::Unnumbered => self.buys.len().min(capacity as usize),
            WorkloadKind::Numbered => self.distinct_seats(),
        }
    }
}

/// Why a workload file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("{path}: cannot read: {detail}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        detail: String,
    },
    /// A line is malformed.
    #[error("{path}:{line}: {detail}\n    {text}")]
    Line {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
        /// The offending line.
        text: String,
    },
    /// The file has no BUY line.
    #[error("{path}: no BUY lines")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Reads and parses a workload file; `seats` is the highest valid seat number.
pub fn load(path: &Path, seats: u32) -> Result<Workload, WorkloadError> {
    let text = std::fs::read_to_string(path).map_err(|e| WorkloadError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    parse(path, &text, seats)
}

/// Parses workload text; `path` is only used in messages.
pub fn parse(path: &Path, text: &str, seats: u32) -> Result<Workload, WorkloadError> {
    let shown = path.display().to_string();
    let mut buys = Vec::new();
    let mut kind = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let error = |detail: String| WorkloadError::Line {
            path: shown.clone(),
            line,
            detail,
            text: raw.to_owned(),
        };
        let (buy, line_kind) = parse_line(trimmed, line, seats).map_err(error)?;
        match kind {
            None => kind = Some(line_kind),
            Some(k) if k != line_kind => {
                return Err(error(format!(
                    "a {} line in a file whose first BUY line is {}",
                    describe(line_kind),
                    describe(k)
                )));
            }
            Some(_) => {}
        }
        buys.push(buy);
    }
    let kind = kind.ok_or(WorkloadError::Empty { path: shown })?;
    Ok(Workload {
        path: path.to_path_buf(),
        kind,
        buys,
    })
}

fn describe(kind: WorkloadKind) -> &'static str {
    match kind {
        WorkloadKind::Unnumbered => "unnumbered (BUY client request)",
        WorkloadKind::Numbered => "numbered (BUY client seat request)",
    }
}

/// Parses one non-comment line.
fn parse_line(text: &str, line: usize, seats: u32) -> Result<(Buy, WorkloadKind), String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    match fields.first() {
        Some(&"BUY") => {}
        Some(verb) => return Err(format!("unknown verb {verb:?}; the only verb is BUY")),
        None => return Err("empty line".into()),
    }
    let (client_id, seat, request_id, kind) = match fields.len() {
        3 => (fields[1], None, fields[2], WorkloadKind::Unnumbered),
        4 => (
            fields[1],
            Some(parse_seat(fields[2], seats)?),
            fields[3],
            WorkloadKind::Numbered,
        ),
        1 => return Err("missing client_id and request_id after BUY".into()),
        2 => return Err("missing request_id (BUY <client_id> [<seat_id>] <request_id>)".into()),
        n => {
            return Err(format!(
                "{} fields; expected BUY <client_id> [<seat_id>] <request_id>",
                n
            ));
        }
    };
    for (name, value) in [("client_id", client_id), ("request_id", request_id)] {
        if value.len() > ID_BYTES_MAX {
            return Err(format!(
                "{name} is {} bytes; at most {ID_BYTES_MAX}",
                value.len()
            ));
        }
    }
    let buy = Buy {
        line,
        client_id: client_id.into(),
        seat,
        request_id: request_id.into(),
    };
    Ok((buy, kind))
}

fn parse_seat(text: &str, seats: u32) -> Result<u32, String> {
    let seat: u32 = text
        .parse()
        .map_err(|_| format!("seat_id {text:?} is not a whole number"))?;
    if seat == 0 || seat > seats {
        return Err(format!("seat_id {seat} is out of range 1..={seats}"));
    }
    Ok(seat)
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadKind::Unnumbered => "unnumbered",
            WorkloadKind::Numbered => "numbered",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Workload, WorkloadError> {
        parse(Path::new("w.txt"), text, 20_000)
    }

    // Comments, blank lines and both line shapes parse; the kind follows the first BUY line.
    #[test]
    fn parses_both_shapes_and_skips_comments() {
        let w = parse_str("# header\n\nBUY u1 r1\n  BUY u2 r2  \n").unwrap();
        assert_eq!(w.kind, WorkloadKind::Unnumbered);
        assert_eq!(w.buys.len(), 2);
        assert_eq!(w.buys[1].line, 4);
        let w = parse_str("BUY u1 42 r1\nBUY u2 42 r2\nBUY u3 7 r3\n").unwrap();
        assert_eq!(w.kind, WorkloadKind::Numbered);
        assert_eq!(w.distinct_seats(), 2);
        assert_eq!(w.expected_sold(20_000), 2);
    }

    // Every kind of malformed line stops the parse with the file, its line number and the cause.
    #[test]
    fn malformed_lines_name_file_line_and_cause() {
        let cases = [
            ("BUY u1 r1\nSELL u2 r2\n", 2, "unknown verb"),
            ("BUY u1\n", 1, "missing request_id"),
            ("BUY\n", 1, "missing client_id"),
            ("BUY u1 x r1\n", 1, "not a whole number"),
            ("BUY u1 0 r1\n", 1, "out of range"),
            ("BUY u1 20001 r1\n", 1, "out of range"),
            ("BUY u1 -3 r1\n", 1, "not a whole number"),
            ("BUY u1 1 r1 extra\n", 1, "5 fields"),
            ("# c\nBUY u1 r1\nBUY u2 5 r2\n", 3, "numbered"),
        ];
        for (text, line, cause) in cases {
            let error = parse_str(text).unwrap_err();
            let WorkloadError::Line {
                line: got,
                ref detail,
                ..
            } = error
            else {
                panic!("{text:?}: {error}");
            };
            assert_eq!(got, line, "{text:?}");
            assert!(detail.contains(cause), "{text:?}: {detail}");
            assert!(
                error.to_string().starts_with(&format!("w.txt:{line}: ")),
                "{error}"
            );
        }
        assert!(matches!(
            parse_str("# only comments\n"),
            Err(WorkloadError::Empty { .. })
        ));
    }

    // The seat limit from both sides and the id length limit from both sides.
    #[test]
    fn limits_from_both_sides() {
        assert!(parse_str("BUY u 20000 r\n").is_ok());
        assert!(parse_str("BUY u 20001 r\n").is_err());
        let ok = "c".repeat(ID_BYTES_MAX);
        assert!(parse_str(&format!("BUY {ok} r\n")).is_ok());
        assert!(parse_str(&format!("BUY {ok}c r\n")).is_err());
    }

    // The shipped workload files are the shared originals, byte for byte (checked where
    // `../shared/benchmarks` is beside the project; a clone without it has only the copies, and
    // the test says so and passes, whatever TIX_REQUIRE_SERVICES says: it is not a service).
    #[test]
    fn shipped_workloads_equal_the_shared_originals() {
        if !tix_testkit::require::shared_dir().exists() {
            eprintln!("SKIPPED: no ../shared/benchmarks beside the project to compare with");
            return;
        }
        for name in [
            "README.md",
            "benchmark_unnumbered.txt",
            "benchmark_numbered.txt",
            "benchmark_unnumbered_oversubscribed.txt",
            "benchmark_numbered_hotspot.txt",
        ] {
            let Some(original) = tix_testkit::require::shared_file(name) else {
                return;
            };
            let shipped = tix_testkit::require::workload_file(name);
            let same = std::fs::read(&shipped).ok() == std::fs::read(&original).ok();
            assert!(
                same,
                "{} differs from {}",
                shipped.display(),
                original.display()
            );
        }
    }

    // The shipped workload files parse with the line counts and expected outcomes their README
    // states.
    #[test]
    fn shipped_benchmark_files_match_their_readme() {
        let dir = tix_testkit::require::workloads_dir();
        let expected = [
            (
                "benchmark_unnumbered.txt",
                WorkloadKind::Unnumbered,
                20_000,
                20_000,
            ),
            (
                "benchmark_numbered.txt",
                WorkloadKind::Numbered,
                25_997,
                20_000,
            ),
            (
                "benchmark_unnumbered_oversubscribed.txt",
                WorkloadKind::Unnumbered,
                100_000,
                20_000,
            ),
            (
                "benchmark_numbered_hotspot.txt",
                WorkloadKind::Numbered,
                100_000,
                13_052,
            ),
        ];
        for (file, kind, lines, sold) in expected {
            let w = load(&dir.join(file), 20_000).unwrap();
            assert_eq!(
                (w.kind, w.buys.len(), w.expected_sold(20_000)),
                (kind, lines, sold),
                "{file}"
            );
        }
    }
}
