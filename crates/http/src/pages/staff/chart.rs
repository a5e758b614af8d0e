//! The dashboard's sales chart, drawn on the server as SVG (no script, no chart library): a step
//! line of the tickets sold so far over time, on axes with "nice" ticks — times of day or dates
//! (UTC) below, ticket counts at the side — sized to stay legible when a phone shrinks it to
//! 390 px. For people who cannot see it, the SVG is one image (`role="img"`) whose `aria-label`
//! and `<title>` sum it up, and the same numbers come as rows of a table, per period, for the
//! page to put in a `<details>`. The work is bounded: sales that fall on the same pixel column
//! share one step, and the table has at most [`TABLE_ROWS_MAX`] periods.

use time::OffsetDateTime;

/// The chart's coordinate system (the SVG's `viewBox`); the page scales it to its width.
const W: f64 = 640.0;
const H: f64 = 300.0;
/// Room for the count labels (left), the time labels in two lines (bottom), and the top.
const LEFT: f64 = 80.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 72.0;

/// At most this many intervals between time ticks: labels do not collide at phone size.
const X_INTERVALS_MAX: u64 = 4;
/// At most this many intervals between count ticks.
const Y_INTERVALS_MAX: u64 = 5;
/// At most this many periods in the table of numbers.
pub const TABLE_ROWS_MAX: u64 = 24;

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The steps time ticks and table periods may take, shortest first; past the last, multiples
/// of it.
const TIME_STEPS_MS: [u64; 15] = [
    MINUTE_MS,
    2 * MINUTE_MS,
    5 * MINUTE_MS,
    10 * MINUTE_MS,
    15 * MINUTE_MS,
    30 * MINUTE_MS,
    HOUR_MS,
    2 * HOUR_MS,
    3 * HOUR_MS,
    6 * HOUR_MS,
    12 * HOUR_MS,
    DAY_MS,
    2 * DAY_MS,
    7 * DAY_MS,
    14 * DAY_MS,
];

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One period of the table of numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// When it starts (UTC), for people: `Dec 5, 14:00`.
    pub from: String,
    /// Tickets sold in it.
    pub sold: u64,
    /// Tickets sold up to its end.
    pub total: u64,
}

/// The chart and its text alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesChart {
    /// The `<svg>` element.
    pub svg: String,
    /// One sentence that sums the chart up (also the SVG's label).
    pub summary: String,
    /// The numbers behind it, per period with sales (empty when nothing was sold).
    pub periods: Vec<Period>,
    /// How long each period is, for the table's caption: `hour`, `15 minutes`...
    pub period: String,
}

/// The smallest step of [`TIME_STEPS_MS`] (or a multiple of the last) that cuts `span_ms` into
/// at most `intervals` pieces.
fn time_step(span_ms: u64, intervals: u64) -> u64 {
    TIME_STEPS_MS
        .iter()
        .copied()
        .find(|s| span_ms.div_ceil(*s) <= intervals)
        .unwrap_or_else(|| {
            let last = TIME_STEPS_MS[TIME_STEPS_MS.len() - 1];
            span_ms.div_ceil(last * intervals).max(1) * last
        })
}

/// The smallest 1, 2 or 5 × 10^k that cuts `0..=max` into at most [`Y_INTERVALS_MAX`] pieces.
fn count_step(max: u64) -> u64 {
    let mut magnitude = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = m * magnitude;
            if max.div_ceil(step) <= Y_INTERVALS_MAX {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

fn utc(ms: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `Dec 5`.
fn day(ms: u64) -> String {
    let t = utc(ms);
    format!(
        "{} {}",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day()
    )
}

/// `14:05`.
fn clock(ms: u64) -> String {
    let t = utc(ms);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// `Dec 5, 14:05`.
fn moment(ms: u64) -> String {
    format!("{}, {}", day(ms), clock(ms))
}

/// A step length for people: `15 minutes`, `hour`, `2 days`.
fn duration_words(ms: u64) -> String {
    let (n, unit) = if ms.is_multiple_of(DAY_MS) {
        (ms / DAY_MS, "day")
    } else if ms.is_multiple_of(HOUR_MS) {
        (ms / HOUR_MS, "hour")
    } else {
        (ms / MINUTE_MS, "minute")
    };
    if n == 1 {
        unit.to_owned()
    } else {
        format!("{n} {unit}s")
    }
}

/// Draws the tickets sold so far against time. `sold_at_ms` are the sale times, in order;
/// the line runs on to `now_ms` (when that is later than the last sale).
pub fn sales_chart(sold_at_ms: &[u64], now_ms: u64) -> SalesChart {
    let (Some(&first), Some(&last)) = (sold_at_ms.first(), sold_at_ms.last()) else {
        let summary = "No tickets sold yet.".to_owned();
        return SalesChart {
            svg: format!(
                r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-label="{summary}"><title>{summary}</title><text x="{x}" y="{y}" text-anchor="middle">No tickets sold yet</text></svg>"#,
                h = H / 2.0,
                x = W / 2.0,
                y = H / 4.0,
            ),
            summary,
            periods: Vec::new(),
            period: String::new(),
        };
    };
    let total = sold_at_ms.len() as u64;
    let end = now_ms.max(last);
    // The time axis: whole steps around the first sale and now.
    let step = time_step(end.saturating_sub(first).max(1), X_INTERVALS_MAX);
    let t0 = first / step * step;
    let t1 = (end / step + 1) * step;
    let y_step = count_step(total);
    let y_max = total.div_ceil(y_step).max(1) * y_step;
    let x = |t: u64| LEFT + (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64 * (W - LEFT - RIGHT);
    let y = |n: u64| H - BOTTOM - n as f64 / y_max as f64 * (H - TOP - BOTTOM);

    let mut svg = String::with_capacity(4096);
    let summary = format!(
        "Tickets sold over time, a step chart: none before {}, {total} by {} (UTC).",
        moment(first),
        moment(last)
    );
    svg.push_str(&format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{summary}"><title>{summary}</title>"#
    ));
    // Count ticks and grid lines.
    for n in (0..=y_max).step_by(y_step as usize) {
        let yn = y(n);
        svg.push_str(&format!(
            r#"<line x1="{LEFT}" y1="{yn:.1}" x2="{r}" y2="{yn:.1}" class="grid"/><text x="{tx}" y="{ty:.1}" class="tick" text-anchor="end">{n}</text>"#,
            r = W - RIGHT,
            tx = LEFT - 10.0,
            ty = yn + 8.0,
        ));
    }
    // Time ticks: the time of day, with the date under the first and wherever it changes; or
    // only dates for steps of a day or more.
    let mut previous_day = String::new();
    let mut t = t0;
    while t <= t1 {
        let xt = x(t);
        let date = day(t);
        let (line1, line2) = if step >= DAY_MS {
            (date.clone(), String::new())
        } else if date != previous_day {
            (clock(t), date.clone())
        } else {
            (clock(t), String::new())
        };
        previous_day = date;
        let anchor = if t == t0 {
            "start"
        } else if t == t1 {
            "end"
        } else {
            "middle"
        };
        svg.push_str(&format!(
            r#"<line x1="{xt:.1}" y1="{b}" x2="{xt:.1}" y2="{tb}" class="axis"/><text x="{xt:.1}" y="{l1}" class="tick" text-anchor="{anchor}">{line1}</text>"#,
            b = H - BOTTOM,
            tb = H - BOTTOM + 6.0,
            l1 = H - BOTTOM + 30.0,
        ));
        if !line2.is_empty() {
            svg.push_str(&format!(
                r#"<text x="{xt:.1}" y="{l2}" class="tick" text-anchor="{anchor}">{line2}</text>"#,
                l2 = H - BOTTOM + 58.0,
            ));
        }
        t += step;
    }
    // The axes, their names, then the step line: flat until a sale, up by what sold at that
    // moment (sales on one pixel column make one step).
    svg.push_str(&format!(
        r#"<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" class="axis"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" class="axis"/><text x="{LEFT}" y="{ny}" class="axis-name">Tickets sold</text>"#,
        b = H - BOTTOM,
        r = W - RIGHT,
        ny = TOP - 16.0,
    ));
    let mut path = format!("M{:.1},{:.1}", x(t0), y(0));
    let mut column = f64::NAN;
    for (i, &at) in sold_at_ms.iter().enumerate() {
        let xs = (x(at) * 2.0).round() / 2.0;
        if xs != column {
            path.push_str(&format!(" H{xs:.1}"));
            column = xs;
        }
        let next_same = sold_at_ms
            .get(i + 1)
            .is_some_and(|n| (x(*n) * 2.0).round() / 2.0 == xs);
        if !next_same {
            path.push_str(&format!(" V{:.1}", y(i as u64 + 1)));
        }
    }
    path.push_str(&format!(" H{:.1}", x(end)));
    svg.push_str(&format!(r#"<path d="{path}" class="step"/>"#));
    svg.push_str(&format!(
        r#"<circle cx="{:.1}" cy="{:.1}" r="5" class="now"/></svg>"#,
        x(end),
        y(total)
    ));

    let (period_ms, periods) = table(sold_at_ms, first, end);
    SalesChart {
        svg,
        summary,
        periods,
        period: duration_words(period_ms),
    }
}

/// The numbers per period: periods of a nice length, at most [`TABLE_ROWS_MAX`] from the first
/// sale to `end`; only periods with sales are listed.
fn table(sold_at_ms: &[u64], first: u64, end: u64) -> (u64, Vec<Period>) {
    let step = time_step(end.saturating_sub(first).max(1), TABLE_ROWS_MAX);
    let mut periods: Vec<Period> = Vec::new();
    let mut current: Option<u64> = None;
    for (i, &at) in sold_at_ms.iter().enumerate() {
        let start = at / step * step;
        if current != Some(start) {
            current = Some(start);
            periods.push(Period {
                from: moment(start),
                sold: 0,
                total: 0,
            });
        }
        let p = periods.last_mut().expect("pushed above");
        p.sold += 1;
        p.total = i as u64 + 1;
    }
    (step, periods)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-05 14:00:00 UTC.
    const T: u64 = 1_796_479_200_000;

    #[test]
    fn steps_are_nice_and_bounded() {
        assert_eq!(time_step(3 * MINUTE_MS, 4), MINUTE_MS);
        assert_eq!(time_step(4 * MINUTE_MS + 1, 4), 2 * MINUTE_MS);
        assert_eq!(time_step(3 * HOUR_MS, 4), HOUR_MS);
        assert_eq!(time_step(3 * DAY_MS, 4), DAY_MS);
        assert_eq!(time_step(400 * DAY_MS, 4), 112 * DAY_MS);
        assert_eq!(count_step(1), 1);
        assert_eq!(count_step(5), 1);
        assert_eq!(count_step(6), 2);
        assert_eq!(count_step(11), 5);
        assert_eq!(count_step(40_000), 10_000);
        assert_eq!(duration_words(HOUR_MS), "hour");
        assert_eq!(duration_words(15 * MINUTE_MS), "15 minutes");
        assert_eq!(duration_words(2 * DAY_MS), "2 days");
    }

    // A step line of the running total, labelled axes, a summary and the numbers per period.
    #[test]
    fn draws_a_step_line_with_labels_and_a_table() {
        let sales = [
            T + 5 * MINUTE_MS,
            T + 5 * MINUTE_MS,
            T + 70 * MINUTE_MS,
            T + 150 * MINUTE_MS,
        ];
        let chart = sales_chart(&sales, T + 3 * HOUR_MS);
        assert_eq!(moment(T), "Dec 5, 14:00");
        assert!(chart.svg.contains(r#"role="img""#), "{}", chart.svg);
        assert!(chart.svg.contains("<title>Tickets sold over time"));
        assert_eq!(
            chart.summary,
            "Tickets sold over time, a step chart: none before Dec 5, 14:05, 4 by Dec 5, 16:30 (UTC)."
        );
        // Hourly ticks from 14:00 to 18:00, the date under the first only.
        for label in ["14:00", "15:00", "16:00", "17:00", "18:00", "Dec 5"] {
            assert!(chart.svg.contains(&format!(">{label}</text>")), "{label}");
        }
        assert_eq!(chart.svg.matches(">Dec 5</text>").count(), 1);
        // Counts 0..4 by one.
        for n in 0..=4 {
            assert!(chart.svg.contains(&format!(">{n}</text>")), "{n}");
        }
        // Only horizontal and vertical moves: a step line.
        let d = chart
            .svg
            .split("d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(d.starts_with('M'));
        let moves: Vec<char> = d.chars().filter(|c| c.is_ascii_alphabetic()).collect();
        assert!(moves[1..].iter().all(|c| *c == 'H' || *c == 'V'), "{d}");
        // Two sales at one moment make one step: three rises.
        assert_eq!(moves.iter().filter(|c| **c == 'V').count(), 3, "{d}");
        assert_eq!(chart.period, "10 minutes");
        assert_eq!(
            chart.periods,
            vec![
                Period {
                    from: "Dec 5, 14:00".into(),
                    sold: 2,
                    total: 2
                },
                Period {
                    from: "Dec 5, 15:10".into(),
                    sold: 1,
                    total: 3
                },
                Period {
                    from: "Dec 5, 16:30".into(),
                    sold: 1,
                    total: 4
                },
            ]
        );
    }

    #[test]
    fn no_sales_says_so_and_many_stay_bounded() {
        let empty = sales_chart(&[], T);
        assert!(empty.svg.contains("No tickets sold yet") && empty.periods.is_empty());
        // A sale every second for a day: at most one step per half pixel, 24 periods at most.
        let many: Vec<u64> = (0..86_400).map(|s| T + s * 1_000).collect();
        let chart = sales_chart(&many, T + DAY_MS);
        assert!(chart.svg.len() < 40_000, "{} bytes", chart.svg.len());
        assert!(chart.periods.len() as u64 <= TABLE_ROWS_MAX);
        assert_eq!(chart.periods.last().map(|p| p.total), Some(86_400));
        // Dates only once the step is a day.
        let week: Vec<u64> = vec![T, T + 3 * DAY_MS];
        let chart = sales_chart(&week, T + 3 * DAY_MS);
        assert!(chart.svg.contains(">Dec 8</text>") && !chart.svg.contains(">14:00</text>"));
    }
}
