//! `tix onsale` end to end, small: a 3-node cluster behind nginx, a waiting room that opens a
//! few seconds in, 1,500 visitors for 200 tickets (a third before the opening, a spike after
//! it), the leader killed with SIGKILL mid-sale and restarted. The run must PASS: exactly the
//! capacity sold and acknowledged (export, counters and visitors agree), every visitor with
//! tickets, "sold out" or gone of their own accord, no visitor-visible error, early arrivals
//! shuffled (|ρ| ≤ 0.1) and later ones admitted in order of arrival (ρ ≥ 0.9); the report and plot
//! are written.

use std::process::Command;

use tix_testkit::require;

#[test]
fn a_small_on_sale_with_a_leader_kill_sells_exactly_capacity_fairly() {
    if require::nginx().is_none() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tix"))
        .args([
            "onsale",
            "--visitors",
            "1500",
            "--tickets",
            "200",
            "--pre-queue-s",
            "3",
            "--tail-s",
            "8",
            "--kill-after-s",
            "1.5",
            "--time-limit-s",
            "240",
            "--out",
        ])
        .arg(out.path())
        .output()
        .expect("tix onsale runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(text.contains("\nPASS\n"), "{text}");
    assert!(
        text.contains(
            "tickets sold: 200 of 200 (sales export), counters say 200, visitors were told 200"
        ),
        "{text}"
    );
    assert!(text.contains("killed the leader"), "{text}");
    // No rate given: the node derived it from what the calibration showed it can commit.
    assert!(
        text.contains("(derived by tix after a calibration that sold"),
        "{text}"
    );
    assert!(text.contains("saw an error 0"), "{text}");
    let report = std::fs::read_to_string(out.path().join("onsale.md")).unwrap();
    assert!(
        report.contains("PASS") && report.contains("fairness"),
        "{report}"
    );
    let svg = std::fs::read_to_string(out.path().join("onsale-goodput.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("tickets sold"),
        "plot drawn"
    );
}
