//! The sweep's plots, drawn from [`SweepResults`] alone, each as PNG and SVG (plotters):
//!
//! - `throughput_vs_workers` — one panel per workload file: answered requests per second
//!   against server-side workers, a line per architecture, each architecture's ceiling dashed;
//! - `throughput_by_workload` — every file at each architecture's best worker count, grouped
//!   bars (unnumbered vs numbered, uniform vs hot-seat vs oversubscribed);
//! - `latency_percentiles` — p50/p90/p99/max per file at the best worker count, a panel per
//!   architecture.
//!
//! The font (DejaVu Sans, with its licence in `assets/`) is compiled into the binary, so the
//! plots look the same on any machine and need no fontconfig.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::results::{Architecture, RunResult, SweepResults};

pub(crate) const FONT: &str = "sans-serif";
const SIZE: (u32, u32) = (1000, 620);
const DIRECT: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const INDIRECT: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const GREYS: [RGBColor; 4] = [
    RGBColor(0x9e, 0xca, 0xe1),
    RGBColor(0x42, 0x92, 0xc6),
    RGBColor(0x08, 0x45, 0x94),
    RGBColor(0x25, 0x25, 0x25),
];

pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // A font that fails to parse would be caught by the tests below.
            let _ = plotters::style::register_font(FONT, style, bytes);
        }
    });
}

fn color(a: Architecture) -> RGBColor {
    match a {
        Architecture::Direct => DIRECT,
        Architecture::Indirect => INDIRECT,
    }
}

fn label(a: Architecture) -> &'static str {
    match a {
        Architecture::Direct => "direct (nginx → nodes)",
        Architecture::Indirect => "indirect (RabbitMQ → workers)",
    }
}

/// Files in the order they were run.
fn workloads(results: &SweepResults) -> Vec<String> {
    let mut seen = BTreeSet::new();
    results
        .runs
        .iter()
        .filter(|r| seen.insert(r.workload.clone()))
        .map(|r| r.workload.clone())
        .collect()
}

/// The passing run of `workload` through `architecture` with the most throughput (a run that
/// failed verification counts for nothing, however fast).
pub fn best_run<'a>(
    results: &'a SweepResults,
    architecture: Architecture,
    workload: &str,
) -> Option<&'a RunResult> {
    results
        .runs
        .iter()
        .filter(|r| r.architecture == architecture && r.workload == workload && r.pass)
        .max_by(|a, b| a.answered_per_s.total_cmp(&b.answered_per_s))
}

/// A short name for a workload file in legends and axes.
pub fn short_name(workload: &str) -> String {
    workload
        .trim_start_matches("benchmark_")
        .trim_end_matches(".txt")
        .replace('_', " ")
}

/// Draws every plot into `out_dir` as PNG and SVG; returns the files written.
pub fn draw_all(results: &SweepResults, out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(out_dir)?;
    let mut written = Vec::new();
    macro_rules! both {
        ($name:expr, $draw:ident) => {{
            let png_path = out_dir.join(format!("{}.png", $name));
            {
                let root = BitMapBackend::new(&png_path, SIZE).into_drawing_area();
                root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
                $draw(results, &root)?;
                root.present().map_err(|e| anyhow!("{e}"))?;
            }
            written.push(png_path);
            let svg_path = out_dir.join(format!("{}.svg", $name));
            {
                let root = SVGBackend::new(&svg_path, SIZE).into_drawing_area();
                root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
                $draw(results, &root)?;
                root.present().map_err(|e| anyhow!("{e}"))?;
            }
            written.push(svg_path);
        }};
    }
    both!("throughput_vs_workers", throughput_vs_workers);
    both!("throughput_by_workload", throughput_by_workload);
    both!("latency_percentiles", latency_percentiles);
    Ok(written)
}

fn no_data<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, what: &str) -> anyhow::Result<()> {
    area.draw(&Text::new(
        format!("no data: {what}"),
        (20, 20),
        (FONT, 18).into_font(),
    ))
    .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

fn throughput_vs_workers<DB: DrawingBackend>(
    results: &SweepResults,
    root: &DrawingArea<DB, Shift>,
) -> anyhow::Result<()> {
    let files = workloads(results);
    if files.is_empty() {
        return no_data(root, "no runs");
    }
    let root = root
        .titled(
            "Throughput vs server-side workers (3-node cluster, fsync on)",
            (FONT, 22).into_font().style(FontStyle::Bold),
        )
        .map_err(|e| anyhow!("{e:?}"))?;
    let cols = if files.len() > 1 { 2 } else { 1 };
    let rows = files.len().div_ceil(cols);
    let panels = root.split_evenly((rows, cols));
    let workers_max = results
        .runs
        .iter()
        .map(|r| r.workers)
        .max()
        .unwrap_or(1)
        .max(1);
    let ceiling_max = results
        .ceilings
        .iter()
        .map(|c| c.requests_per_s)
        .fold(0.0, f64::max);
    let runs_max = results
        .runs
        .iter()
        .map(|r| r.answered_per_s)
        .fold(0.0, f64::max);
    let y_max = (runs_max.max(ceiling_max) * 1.1).max(1.0);
    for (panel, file) in panels.iter().zip(&files) {
        let mut chart = ChartBuilder::on(panel)
            .caption(short_name(file), (FONT, 17))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(62)
            .build_cartesian_2d(0.5f64..workers_max as f64 + 0.5, 0f64..y_max)
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .x_desc("workers")
            .y_desc("answered / s")
            .x_labels(workers_max + 2)
            .x_label_formatter(&|x| {
                if (x.fract()).abs() < 1e-9 && *x >= 1.0 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        for architecture in [Architecture::Direct, Architecture::Indirect] {
            let mut points: Vec<(f64, f64)> = results
                .runs
                .iter()
                .filter(|r| r.architecture == architecture && &r.workload == file)
                .map(|r| (r.workers as f64, r.answered_per_s))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            if points.is_empty() {
                continue;
            }
            let c = color(architecture);
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(3)))
                .map_err(|e| anyhow!("{e:?}"))?
                .label(label(architecture))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))
                .map_err(|e| anyhow!("{e:?}"))?;
            let ceilings: Vec<(f64, f64)> = {
                let mut v: Vec<(f64, f64)> = results
                    .ceilings
                    .iter()
                    .filter(|x| x.architecture == architecture)
                    .map(|x| (x.workers as f64, x.requests_per_s))
                    .collect();
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v
            };
            if let Some(top) = ceilings.iter().map(|p| p.1).reduce(f64::max) {
                let line = [(0.5, top), (workers_max as f64 + 0.5, top)];
                chart
                    .draw_series(DashedLineSeries::new(
                        line,
                        8,
                        6,
                        c.mix(0.6).stroke_width(2),
                    ))
                    .map_err(|e| anyhow!("{e:?}"))?
                    .label(match architecture {
                        Architecture::Direct => "ceiling: nginx → no-op handler",
                        Architecture::Indirect => "ceiling: RabbitMQ → echo worker",
                    })
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 22, y)], c.mix(0.6).stroke_width(2))
                    });
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .label_font((FONT, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
    }
    Ok(())
}

fn throughput_by_workload<DB: DrawingBackend>(
    results: &SweepResults,
    root: &DrawingArea<DB, Shift>,
) -> anyhow::Result<()> {
    let files = workloads(results);
    if files.is_empty() {
        return no_data(root, "no runs");
    }
    let architectures = [Architecture::Direct, Architecture::Indirect];
    let y_max = results
        .runs
        .iter()
        .map(|r| r.answered_per_s)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let mut chart = ChartBuilder::on(root)
        .caption(
            "Each workload at its best worker count (bar label: answered/s × workers)",
            (FONT, 22).into_font().style(FontStyle::Bold),
        )
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..files.len() as f64, 0f64..y_max)
        .map_err(|e| anyhow!("{e:?}"))?;
    let names: Vec<String> = files.iter().map(|f| short_name(f)).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(files.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 1e-6 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("answered requests / s")
        .y_label_formatter(&|y| format!("{:.0}k", y / 1000.0))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    let width = 0.8 / architectures.len() as f64;
    for (k, architecture) in architectures.into_iter().enumerate() {
        let c = color(architecture);
        let bars: Vec<(f64, f64, String)> = files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                best_run(results, architecture, f).map(|r| {
                    let x0 = i as f64 + 0.1 + k as f64 * width;
                    (
                        x0,
                        r.answered_per_s,
                        format!("{:.1}k ×{}", r.answered_per_s / 1000.0, r.workers),
                    )
                })
            })
            .collect();
        if bars.is_empty() {
            continue;
        }
        chart
            .draw_series(bars.iter().map(|(x0, y, _)| {
                Rectangle::new([(*x0, 0.0), (*x0 + width * 0.92, *y)], c.filled())
            }))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(label(architecture))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], c.filled()));
        chart
            .draw_series(bars.iter().map(|(x0, y, text)| {
                Text::new(
                    text.clone(),
                    (*x0, *y + y_max * 0.035),
                    (FONT, 12).into_font(),
                )
            }))
            .map_err(|e| anyhow!("{e:?}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok(())
}

fn latency_percentiles<DB: DrawingBackend>(
    results: &SweepResults,
    root: &DrawingArea<DB, Shift>,
) -> anyhow::Result<()> {
    let files = workloads(results);
    if files.is_empty() {
        return no_data(root, "no runs");
    }
    let root = root
        .titled(
            "Latency percentiles at the best worker count (ms, log scale)",
            (FONT, 22).into_font().style(FontStyle::Bold),
        )
        .map_err(|e| anyhow!("{e:?}"))?;
    let panels = root.split_evenly((1, 2));
    let y_max = results
        .runs
        .iter()
        .map(|r| r.latency_ms.max)
        .fold(1.0, f64::max)
        * 1.5;
    let y_min = results
        .runs
        .iter()
        .map(|r| r.latency_ms.p50)
        .fold(f64::INFINITY, f64::min)
        .clamp(0.01, 1.0)
        * 0.5;
    let percentiles = ["p50", "p90", "p99", "max"];
    for (panel, architecture) in panels
        .iter()
        .zip([Architecture::Direct, Architecture::Indirect])
    {
        let mut chart = ChartBuilder::on(panel)
            .caption(label(architecture), (FONT, 17))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..4f64, (y_min..y_max).log_scale())
            .map_err(|e| anyhow!("{e:?}"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(9)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 1e-6 {
                    percentiles
                        .get(i)
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("ms")
            .y_label_formatter(&|y| {
                if *y >= 10.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.1}")
                }
            })
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
        let mut any = false;
        for (k, file) in files.iter().enumerate() {
            let Some(run) = best_run(results, architecture, file) else {
                continue;
            };
            any = true;
            let l = run.latency_ms;
            let points: Vec<(f64, f64)> = [l.p50, l.p90, l.p99, l.max]
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64 + 0.5, v.max(y_min)))
                .collect();
            let c = GREYS[k % GREYS.len()];
            chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
                .map_err(|e| anyhow!("{e:?}"))?
                .label(format!("{} ×{}", short_name(file), run.workers))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 4, c.filled())))
                .map_err(|e| anyhow!("{e:?}"))?;
        }
        if any {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font((FONT, 12))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .draw()
                .map_err(|e| anyhow!("{e:?}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests_support::sample;

    // Every plot is written as a decodable PNG (signature, non-trivial size) and an SVG, from
    // full data and from data with one architecture and no ceilings.
    #[test]
    fn draws_every_plot_as_png_and_svg() {
        for results in [sample(), {
            let mut r = sample();
            r.runs.retain(|x| x.architecture == Architecture::Direct);
            r.ceilings.clear();
            r
        }] {
            let dir = tempfile::tempdir().unwrap();
            let files = draw_all(&results, dir.path()).unwrap();
            assert_eq!(files.len(), 6);
            for f in &files {
                let bytes = std::fs::read(f).unwrap();
                assert!(bytes.len() > 2000, "{f:?} is {} bytes", bytes.len());
                if f.extension().is_some_and(|e| e == "png") {
                    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f:?}");
                } else {
                    let text = String::from_utf8(bytes).unwrap();
                    assert!(text.contains("<svg") && text.contains("<text"), "{f:?}");
                }
            }
        }
    }

    // No runs at all draws a "no data" note instead of failing.
    #[test]
    fn draws_an_empty_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let files = draw_all(&SweepResults::default(), dir.path()).unwrap();
        assert_eq!(files.len(), 6);
    }
}
