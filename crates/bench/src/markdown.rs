//! Renders `docs/BENCHMARK.md` from a sweep's [`SweepResults`], its plots, and the hand-written
//! analysis in `docs/bench/analysis.md`.
//!
//! The analysis file is split at markers of the form `<!-- section: NAME -->`; each part is
//! placed where the report expects it (`system`, `architecture`, `results`, `tradeoffs`,
//! `limits`), and any part with another name is appended at the end, so nothing written by hand
//! is lost when the tables, the targets and the plots are regenerated from a new run.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::charts::{best_run, short_name};
use crate::cost::RunCost;
use crate::results::{Alternated, Architecture, ECHO_CEILING, RunResult, SweepResults};

/// The sections the report places, in order.
const PLACED: [&str; 5] = ["system", "architecture", "results", "tradeoffs", "limits"];

/// The command that regenerates the report.
pub const REGENERATE: &str =
    "cargo run --release -- bench sweep --out target/bench --report docs/BENCHMARK.md";

/// Splits the analysis text into its named sections (text before the first marker is dropped:
/// it is the file's own header comment).
pub fn sections(analysis: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut body = String::new();
    for line in analysis.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed
            .strip_prefix("<!-- section:")
            .and_then(|rest| rest.strip_suffix("-->"))
        {
            if let Some(done) = current.take() {
                out.insert(done, body.trim().to_owned());
            }
            current = Some(name.trim().to_owned());
            body.clear();
        } else if current.is_some() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some(done) = current {
        out.insert(done, body.trim().to_owned());
    }
    out
}

fn k(x: f64) -> String {
    format!("{:.1} k", x / 1000.0)
}

fn workers(n: usize) -> String {
    if n == 1 {
        "1 worker".into()
    } else {
        format!("{n} workers")
    }
}

/// How a run's worker count reads: upstreams or `tix worker` processes, or the nodes' own
/// consumers when the indirect intake runs inside the nodes.
fn run_workers(results: &SweepResults, r: &RunResult) -> String {
    workers_label(results, r.architecture, r.workers)
}

/// "3 workers", or "2 consumers per node" for the in-node intake.
fn workers_label(results: &SweepResults, architecture: Architecture, n: usize) -> String {
    let in_node = results
        .config
        .settings
        .get("indirect_intake")
        .is_some_and(|v| v == "node");
    match (architecture, in_node, n) {
        (Architecture::Indirect, true, 1) => "1 consumer per node".into(),
        (Architecture::Indirect, true, n) => format!("{n} consumers per node"),
        (_, _, n) => workers(n),
    }
}

/// "1 alternated round", "3 alternated rounds".
fn rounds_label(x: &Alternated) -> String {
    match x.a_per_s.len() {
        1 => "1 alternated round".into(),
        n => format!("{n} alternated rounds"),
    }
}

/// The rounds' ratios of an alternated pair, as "0.95 · 0.92 · 1.01".
fn list_ratios(x: &Alternated) -> String {
    x.ratios()
        .iter()
        .map(|r| format!("{r:.2}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// One row of a targets table: what, the target, what was reached, verdict.
fn targets(results: &SweepResults) -> Vec<[String; 4]> {
    let mut rows = Vec::new();
    let uniform = "benchmark_unnumbered.txt";
    let direct_ok: Option<&RunResult> = results
        .runs
        .iter()
        .filter(|r| r.architecture == Architecture::Direct && r.workload == uniform)
        .filter(|r| r.latency_ms.p99 <= 10.0 && r.pass)
        .max_by(|a, b| a.purchases_per_s.total_cmp(&b.purchases_per_s));
    rows.push(match direct_ok {
        Some(r) => [
            "direct, purchases/s with p99 ≤ 10 ms (unnumbered file)".into(),
            "≥ 50,000".into(),
            format!(
                "{} /s, p99 {:.1} ms ({})",
                k(r.purchases_per_s),
                r.latency_ms.p99,
                run_workers(results, r)
            ),
            verdict(r.purchases_per_s, 50_000.0),
        ],
        None => [
            "direct, purchases/s with p99 ≤ 10 ms (unnumbered file)".into(),
            "≥ 50,000".into(),
            "no direct run of the unnumbered file with p99 ≤ 10 ms".into(),
            "missed".into(),
        ],
    });
    let indirect = best_run(results, Architecture::Indirect, uniform);
    rows.push(match indirect {
        Some(r) => [
            "indirect, purchases/s (unnumbered file)".into(),
            "≥ 15,000".into(),
            format!(
                "{} /s, p99 {:.1} ms ({})",
                k(r.purchases_per_s),
                r.latency_ms.p99,
                run_workers(results, r)
            ),
            verdict(r.purchases_per_s, 15_000.0),
        ],
        None => [
            "indirect, purchases/s (unnumbered file)".into(),
            "≥ 15,000".into(),
            "not run".into(),
            "—".into(),
        ],
    });
    // Issue 12: the intake's overhead over what the broker alone passes, as the fraction of the
    // echo ceiling with as many consumers, measured in the same sweep: from the alternated pairs
    // when the sweep measured them, else the best single run against its ceiling.
    let echo_pair = results
        .alternated
        .iter()
        .filter(|x| {
            x.architecture == Architecture::Indirect && x.a == ECHO_CEILING && x.b == uniform
        })
        .filter_map(|x| Some((x, x.median_ratio()?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let indirect_fraction = results
        .runs
        .iter()
        .filter(|r| r.architecture == Architecture::Indirect && r.workload == uniform)
        .filter_map(|r| Some((r, r.fraction_of_ceiling?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let echo_row = match (echo_pair, indirect_fraction) {
        (Some((x, median)), _) => Some((
            format!(
                "{median:.2}: median of {} ({}), {}",
                rounds_label(x),
                list_ratios(x),
                workers_label(results, Architecture::Indirect, x.workers)
            ),
            median,
        )),
        (None, Some((r, fraction))) => Some((
            format!(
                "{:.2} ({} /s, {})",
                fraction,
                k(r.answered_per_s),
                run_workers(results, r)
            ),
            fraction,
        )),
        (None, None) => None,
    };
    if let Some((measured, fraction)) = echo_row {
        rows.push([
            "indirect, answered/s vs the echo ceiling (unnumbered file)".into(),
            "≥ 0.60".into(),
            measured,
            if fraction >= 0.6 {
                "reached".into()
            } else {
                "missed".into()
            },
        ]);
    }
    for architecture in [Architecture::Direct, Architecture::Indirect] {
        let label = format!(
            "{}, hot-seat vs uniform numbered file (answered/s)",
            architecture.name()
        );
        let pair = Alternated::find(
            results,
            architecture,
            "benchmark_numbered.txt",
            "benchmark_numbered_hotspot.txt",
        )
        .and_then(|x| Some((x, x.median_ratio()?)));
        let hot = best_run(results, architecture, "benchmark_numbered_hotspot.txt");
        let flat = best_run(results, architecture, "benchmark_numbered.txt");
        let row = match (pair, hot, flat) {
            (Some((x, median)), _, _) => Some((
                format!(
                    "{:+.0} %: median of {} ({}), {}",
                    (median - 1.0) * 100.0,
                    rounds_label(x),
                    list_ratios(x),
                    workers_label(results, architecture, x.workers)
                ),
                median,
            )),
            (None, Some(hot), Some(flat)) => {
                let ratio = hot.answered_per_s / flat.answered_per_s;
                Some((
                    format!(
                        "{} vs {} /s: {:+.0} %",
                        k(hot.answered_per_s),
                        k(flat.answered_per_s),
                        (ratio - 1.0) * 100.0
                    ),
                    ratio,
                ))
            }
            _ => None,
        };
        if let Some((measured, ratio)) = row {
            rows.push([
                label,
                "within 10 %".into(),
                measured,
                if ratio >= 0.9 {
                    "reached".into()
                } else {
                    "missed".into()
                },
            ]);
        }
    }
    let all_pass = results.runs.iter().all(|r| r.pass);
    rows.push([
        "correctness: every run verified".into(),
        "all PASS".into(),
        format!(
            "{} of {} PASS",
            results.runs.iter().filter(|r| r.pass).count(),
            results.runs.len()
        ),
        if all_pass && !results.runs.is_empty() {
            "reached".into()
        } else {
            "missed".into()
        },
    ]);
    rows
}

fn verdict(value: f64, target: f64) -> String {
    if value >= target {
        "reached".into()
    } else {
        format!("missed by {:.0} %", (1.0 - value / target) * 100.0)
    }
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}|",
        header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

/// The alternated pairs, one row per pair: what against what, each round's figures and ratio.
fn alternated_table(out: &mut String, results: &SweepResults) {
    if results.alternated.is_empty() {
        return;
    }
    out.push_str("### Alternated comparisons\n\n");
    out.push_str(
        "The targets that compare two measurements, measured again in turns (A, B, A, B, …) on \
         the same setup in one sitting, so that the machine's drift between minutes weighs on \
         both alike; the verdicts above use the median ratio.\n\n",
    );
    let rows: Vec<Vec<String>> = results
        .alternated
        .iter()
        .map(|x| {
            let rounds = x
                .a_per_s
                .iter()
                .zip(&x.b_per_s)
                .map(|(a, b)| format!("{a:.0} → {b:.0}"))
                .collect::<Vec<_>>()
                .join(" · ");
            vec![
                x.architecture.name().into(),
                workers_label(results, x.architecture, x.workers),
                format!("{} → {}", short_name(&x.a), short_name(&x.b)),
                rounds,
                list_ratios(x),
                x.median_ratio()
                    .map(|m| format!("{m:.2}"))
                    .unwrap_or_else(|| "—".into()),
            ]
        })
        .collect();
    table(
        out,
        &[
            "architecture",
            "workers",
            "A → B",
            "answered/s per round",
            "B / A per round",
            "median",
        ],
        &rows,
    );
}

fn runs_table(out: &mut String, results: &SweepResults, architecture: Architecture) {
    let rows: Vec<Vec<String>> = results
        .runs
        .iter()
        .filter(|r| r.architecture == architecture)
        .map(|r| {
            let rejected: usize = r.rejected.values().sum();
            vec![
                short_name(&r.workload),
                r.workers.to_string(),
                format!("{:.0}", r.answered_per_s),
                format!("{:.0}", r.purchases_per_s),
                format!(
                    "{:.1} / {:.1} / {:.1} / {:.0}",
                    r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p99, r.latency_ms.max
                ),
                r.sold.to_string(),
                rejected.to_string(),
                if r.pass {
                    "PASS".into()
                } else {
                    format!(
                        "**FAIL**: {}",
                        r.violations.first().cloned().unwrap_or_default()
                    )
                },
                r.fraction_of_ceiling
                    .map(|f| format!("{:.0} %", f * 100.0))
                    .unwrap_or_else(|| "—".into()),
                r.cost
                    .as_ref()
                    .and_then(|c| c.commands_per_entry)
                    .map(|n| format!("{n:.1}"))
                    .unwrap_or_else(|| "—".into()),
                r.cost.as_ref().map(cpu_cell).unwrap_or_else(|| "—".into()),
            ]
        })
        .collect();
    if rows.is_empty() {
        out.push_str("Not run.\n\n");
        return;
    }
    table(
        out,
        &[
            "workload",
            "workers",
            "answered/s",
            "purchases/s",
            "p50 / p90 / p99 / max ms",
            "sold",
            "refused",
            "verdict",
            "of ceiling",
            "per entry",
            "CPU µs per answer: nodes · nginx or broker · client",
        ],
        &rows,
    );
}

/// Renders CPU per answer as `total = servers · edge · client`: the servers are the nodes of a
/// run, or the no-op servers or echo workers of a ceiling; the edge is nginx (direct) or the
/// broker (indirect); a part not measured is a dash.
fn cpu_cell(cost: &RunCost) -> String {
    let (mut servers, mut edge, mut client) = (0.0, None, None);
    for (who, us) in &cost.cpu_us_per_answer {
        match who.as_str() {
            "broker" | "nginx" => edge = Some(edge.unwrap_or(0.0) + us),
            "client" => client = Some(*us),
            _ => servers += us,
        }
    }
    let part = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "—".into());
    format!(
        "{:.0} = {servers:.0} · {} · {}",
        cost.total_cpu_us_per_answer(),
        part(edge),
        part(client)
    )
}

fn plot_link(out: &mut String, plots: &[PathBuf], docs_dir: &Path, stem: &str, alt: &str) {
    let png = plots.iter().find(|p| {
        p.file_stem().is_some_and(|s| s == stem) && p.extension().is_some_and(|e| e == "png")
    });
    let Some(png) = png else { return };
    let rel = png.strip_prefix(docs_dir).unwrap_or(png);
    let svg = rel.with_extension("svg");
    let _ = writeln!(
        out,
        "![{alt}]({})\n\n([SVG]({}))\n",
        rel.display(),
        svg.display()
    );
}

/// Renders the whole report.
pub fn render(
    results: &SweepResults,
    plots: &[PathBuf],
    docs_dir: &Path,
    analysis: &str,
) -> String {
    let mut parts = sections(analysis);
    let mut take = |name: &str, out: &mut String| {
        if let Some(text) = parts.remove(name) {
            out.push_str(&text);
            out.push_str("\n\n");
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "# Flash-sale benchmark: direct vs indirect\n");
    let _ = writeln!(
        out,
        "> Generated by `{REGENERATE}` ({}; `{}`). Tables, targets and plots come from that run's \
         `results.json`; the prose comes from `docs/bench/analysis.md` and is kept when the report \
         is regenerated. `--from-results FILE` redraws without running.\n",
        results.generated_at, results.command
    );
    out.push_str("## Targets\n\n");
    let rows: Vec<Vec<String>> = targets(results).into_iter().map(Vec::from).collect();
    table(
        &mut out,
        &["target", "wanted", "measured", "verdict"],
        &rows,
    );
    take("system", &mut out);

    out.push_str("## Machine and configuration\n\n");
    let m = &results.machine;
    let c = &results.config;
    let mut facts = vec![
        vec!["CPUs".into(), format!("{} × {}", m.cpus, m.cpu_model)],
        vec!["memory".into(), format!("{:.1} GiB", m.memory_gib)],
        vec!["OS / kernel".into(), format!("{} / {}", m.os, m.kernel)],
        vec!["nginx".into(), m.nginx.clone()],
        vec!["RabbitMQ".into(), m.rabbitmq.clone()],
        vec![
            "cluster".into(),
            format!("{} voters, fsync on: {}", c.nodes, c.fsync),
        ],
        vec!["tix build".into(), c.profile.clone()],
        vec![
            "clients".into(),
            format!(
                "{} concurrent (direct) / {} requests in flight (indirect)",
                c.clients,
                if c.in_flight > 0 {
                    c.in_flight
                } else {
                    c.clients
                }
            ),
        ],
        vec![
            "workers swept".into(),
            format!(
                "direct {:?}, indirect {:?}",
                c.direct_workers, c.indirect_workers
            ),
        ],
    ];
    facts.extend(
        c.settings
            .iter()
            .map(|(k, v)| vec![format!("`{k}`"), v.clone()]),
    );
    table(&mut out, &["", ""], &facts);
    take("architecture", &mut out);

    out.push_str("## Results\n\n");
    plot_link(
        &mut out,
        plots,
        docs_dir,
        "throughput_vs_workers",
        "Throughput vs workers",
    );
    out.push_str("### Direct: REST through nginx\n\n");
    runs_table(&mut out, results, Architecture::Direct);
    let in_node = c
        .settings
        .get("indirect_intake")
        .is_some_and(|v| v == "node");
    out.push_str(if in_node {
        "### Indirect: RabbitMQ, consumed inside the nodes (`tix serve --amqp-url`)\n\n"
    } else {
        "### Indirect: RabbitMQ and `tix worker`\n\n"
    });
    runs_table(&mut out, results, Architecture::Indirect);
    out.push_str("### Ceilings of this machine\n\n");
    out.push_str(
        "The same client settings against a server that does nothing: nginx in front of \
         `tix bench-noop` (direct), and `tix worker --echo`, which replies without touching the \
         cluster (indirect).\n\n",
    );
    let ceilings: Vec<Vec<String>> = results
        .ceilings
        .iter()
        .map(|x| {
            vec![
                x.architecture.name().into(),
                x.workers.to_string(),
                x.requests.to_string(),
                format!("{:.0}", x.requests_per_s),
                format!(
                    "{:.1} / {:.1} / {:.1} / {:.0}",
                    x.latency_ms.p50, x.latency_ms.p90, x.latency_ms.p99, x.latency_ms.max
                ),
                x.cost.as_ref().map(cpu_cell).unwrap_or_else(|| "—".into()),
            ]
        })
        .collect();
    if ceilings.is_empty() {
        out.push_str("Not measured.\n\n");
    } else {
        table(
            &mut out,
            &[
                "architecture",
                "workers",
                "requests",
                "requests/s",
                "p50 / p90 / p99 / max ms",
                "CPU µs per request: servers · nginx or broker · client",
            ],
            &ceilings,
        );
    }
    alternated_table(&mut out, results);
    plot_link(
        &mut out,
        plots,
        docs_dir,
        "throughput_by_workload",
        "Each workload at its best worker count",
    );
    plot_link(
        &mut out,
        plots,
        docs_dir,
        "latency_percentiles",
        "Latency percentiles",
    );
    take("results", &mut out);
    take("tradeoffs", &mut out);
    take("limits", &mut out);
    for name in PLACED {
        parts.remove(name);
    }
    for (_, text) in parts {
        out.push_str(&text);
        out.push_str("\n\n");
    }
    out.push_str("## Reproduce\n\n");
    let _ = writeln!(
        out,
        "    {REGENERATE}\n\nOne file, one architecture: `cargo run --release -- bench --workload \
         benchmarks/benchmark_numbered.txt [--architecture indirect] [--workers N]`. The \
         raw figures of this report: [`bench/results.json`](bench/results.json) and \
         [`bench/results.csv`](bench/results.csv)."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests_support::sample;

    const ANALYSIS: &str = "<!-- header comment -->\n<!-- section: system -->\nSYSTEM TEXT\n\
        <!-- section: limits -->\nLIMITS TEXT\n<!-- section: extra -->\nEXTRA TEXT\n";

    // Sections are found by name; text before the first marker is not part of any.
    #[test]
    fn splits_the_analysis_into_named_sections() {
        let s = sections(ANALYSIS);
        assert_eq!(s["system"], "SYSTEM TEXT");
        assert_eq!(s["limits"], "LIMITS TEXT");
        assert_eq!(s["extra"], "EXTRA TEXT");
        assert_eq!(s.len(), 3);
    }

    // The report carries the tables, the targets computed from the data, the failing run's
    // violation, the plots as relative links, and every hand-written section in its place.
    #[test]
    fn renders_tables_targets_plots_and_prose() {
        let results = sample();
        let docs = Path::new("/r/docs");
        let plots = vec![
            docs.join("bench/throughput_vs_workers.png"),
            docs.join("bench/throughput_vs_workers.svg"),
            docs.join("bench/latency_percentiles.png"),
        ];
        let md = render(&results, &plots, docs, ANALYSIS);
        assert!(md.contains(REGENERATE));
        assert!(
            md.contains("![Throughput vs workers](bench/throughput_vs_workers.png)"),
            "{md}"
        );
        assert!(md.contains("([SVG](bench/throughput_vs_workers.svg))"));
        assert!(md.contains("![Latency percentiles](bench/latency_percentiles.png)"));
        // Direct best on the unnumbered file is 20,000/s: 60 % short of 50,000.
        assert!(md.contains("missed by 60 %"), "{md}");
        // Indirect best is 7,000/s: 53 % short of 15,000.
        assert!(md.contains("missed by 53 %"), "{md}");
        assert!(md.contains("**FAIL**: seat 7 sold twice"));
        assert!(md.contains("15 of 16 PASS"));
        // The alternated pairs decide the ratio targets: the echo pair's median is 0.605
        // (not the single runs' 0.3), the direct hot-seat pair's 0.95; the indirect hot-seat
        // target, not alternated in the sample, falls back to the single runs.
        assert!(
            md.contains(
                "| indirect, answered/s vs the echo ceiling (unnumbered file) | ≥ 0.60 | 0.60: \
                 median of 2 alternated rounds (0.58 · 0.63), 2 workers | reached |"
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "| direct, hot-seat vs uniform numbered file (answered/s) | within 10 % | -5 %: \
                 median of 3 alternated rounds (0.95 · 0.92 · 1.01), 2 workers | reached |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| indirect, hot-seat vs uniform numbered file (answered/s) | within 10 % | 5.5 k vs 6.5 k /s"),
            "{md}"
        );
        assert!(md.contains("### Alternated comparisons"), "{md}");
        assert!(
            md.contains("| direct | 2 workers | numbered → numbered hotspot | 10000 → 9500 · 10000 → 9200 · 9000 → 9090 | 0.95 · 0.92 · 1.01 | 0.95 |"),
            "{md}"
        );
        let mut single = sample();
        single.alternated.clear();
        let md_single = render(&single, &plots, docs, ANALYSIS);
        // Without alternated pairs, every sample run at 0.3 of its ceiling: missed.
        assert!(
            md_single.contains(
                "| indirect, answered/s vs the echo ceiling (unnumbered file) | ≥ 0.60 | 0.30 ("
            ),
            "{md_single}"
        );
        assert!(!md_single.contains("### Alternated comparisons"));
        let (system, limits, extra) = (
            md.find("SYSTEM TEXT").unwrap(),
            md.find("LIMITS TEXT").unwrap(),
            md.find("EXTRA TEXT").unwrap(),
        );
        assert!(system < md.find("## Results").unwrap());
        assert!(limits > md.find("## Results").unwrap());
        assert!(extra > limits && extra < md.find("## Reproduce").unwrap());
        assert!(md.contains("| direct | 1 | 40000 | 60000 |"), "{md}");
        // A run's cost: commands per entry, and CPU per answer as total = nodes · broker ·
        // client; runs without one (older results) show dashes.
        let cpu = |parts: &[(&str, f64)]| -> BTreeMap<String, f64> {
            parts
                .iter()
                .map(|(who, us)| (who.to_string(), *us))
                .collect()
        };
        let mut costed = sample();
        costed.runs[0].cost = Some(RunCost {
            log_entries: Some(500),
            commands_per_entry: Some(40.0),
            cpu_us_per_answer: cpu(&[
                ("node 1 (leader)", 80.0),
                ("node 2", 40.0),
                ("broker", 100.0),
                ("client", 30.0),
            ]),
        });
        costed.ceilings[0].cost = Some(RunCost {
            log_entries: None,
            commands_per_entry: None,
            cpu_us_per_answer: cpu(&[("worker 1", 30.0), ("broker", 70.0), ("client", 38.0)]),
        });
        let md_costed = render(&costed, &plots, docs, ANALYSIS);
        assert!(md_costed.contains("| 138 = 30 · 70 · 38 |"), "{md_costed}");
        assert!(
            md_costed.contains("| 40.0 | 250 = 120 · 100 · 30 |"),
            "{md_costed}"
        );
        assert!(md_costed.contains("| — | — |"), "{md_costed}");
    }

    // Without data or analysis the report still renders, saying what is missing.
    #[test]
    fn renders_an_empty_sweep() {
        let md = render(&SweepResults::default(), &[], Path::new("docs"), "");
        assert!(md.contains("Not run."));
        assert!(md.contains("Not measured."));
        assert!(md.contains("0 of 0 PASS"));
    }
}
