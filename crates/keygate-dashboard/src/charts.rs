//! Charts drawn on the server as SVG: a sparkline for a table cell and
//! stacked bars by outcome with their numbers in a table.
//!
//! No script draws them, so they work with JavaScript off and under the
//! dashboard's CSP (which refuses `style` attributes: colours come from
//! classes in app.css). Sizes are fixed, so nothing shifts when they load.
//! Each chart is `role="img"` with a `<title>` stating its totals; the
//! stacked chart also carries every number in a `<table>` inside
//! `<details>`, for screen readers and for anyone who wants the figures.
//!
//! The functions return HTML text, escaped here, that templates embed as is.

use std::fmt::Write as _;

/// Sparkline size: fits a table cell.
pub const SPARK_WIDTH: u32 = 96;
pub const SPARK_HEIGHT: u32 = 20;
/// Stacked chart size (the plot area is inside a margin for the labels).
pub const BARS_WIDTH: u32 = 640;
pub const BARS_HEIGHT: u32 = 180;
const MARGIN_TOP: f64 = 14.0;
const MARGIN_BOTTOM: f64 = 18.0;
const MARGIN_LEFT: f64 = 4.0;

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The class of an outcome's colour: `VALID` → `o-valid`.
pub fn outcome_class(code: &str) -> String {
    let mut class = String::from("o-");
    class.extend(
        code.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .map(|c| match c {
                '_' => '-',
                c => c.to_ascii_lowercase(),
            }),
    );
    class
}

/// A bar's height for `value` out of `max` over `span` pixels: at least one
/// pixel for any non-zero value, so a single request is visible.
fn scaled(value: u64, max: u64, span: f64) -> f64 {
    if value == 0 || max == 0 {
        return 0.0;
    }
    (value as f64 / max as f64 * span).max(1.0)
}

/// A bar sparkline of `counts` (oldest first). `what` names one count
/// ("verifications"), `window` the span ("in the last 24 hours"); the
/// title says the total and the peak.
pub fn sparkline(counts: &[u64], what: &str, window: &str) -> String {
    let total: u64 = counts.iter().sum();
    let max = counts.iter().copied().max().unwrap_or(0);
    let title = if total == 0 {
        format!("No {what} {window}")
    } else {
        format!("{total} {what} {window}, at most {max} in one interval")
    };
    let (w, h) = (f64::from(SPARK_WIDTH), f64::from(SPARK_HEIGHT));
    let mut svg = format!(
        "<svg class=\"spark\" width=\"{SPARK_WIDTH}\" height=\"{SPARK_HEIGHT}\" \
         viewBox=\"0 0 {SPARK_WIDTH} {SPARK_HEIGHT}\" role=\"img\"><title>{}</title>\
         <line class=\"spark-base\" x1=\"0\" y1=\"{h}\" x2=\"{w}\" y2=\"{h}\"/>",
        escape(&title)
    );
    if !counts.is_empty() {
        let step = w / counts.len() as f64;
        for (i, &n) in counts.iter().enumerate() {
            let bar = scaled(n, max, h - 1.0);
            if bar > 0.0 {
                let _ = write!(
                    svg,
                    "<rect class=\"spark-bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                    i as f64 * step,
                    h - bar,
                    (step - 1.0).max(1.0),
                    bar
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// One interval of a stacked chart: its label (an hour, a day) and the
/// count of each outcome in it.
pub struct Interval<'a> {
    pub label: &'a str,
    /// A longer label for titles and the table (a full date and time).
    pub long_label: &'a str,
    pub counts: &'a [(&'a str, u64)],
}

impl Interval<'_> {
    fn count(&self, outcome: &str) -> u64 {
        self.counts
            .iter()
            .filter(|(o, _)| *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

/// The chart's text: what it counts, its window, and the column heading of
/// the intervals in the table ("Hour (UTC)").
pub struct Labels<'a> {
    pub caption: &'a str,
    pub interval_heading: &'a str,
}

/// Stacked bars: one bar per interval, one segment per outcome (in the
/// order of `outcomes`), each segment a `<rect>` with its own `<title>`;
/// then a legend with each outcome's total, and the numbers in a table.
pub fn stacked_bars(labels: &Labels<'_>, intervals: &[Interval<'_>], outcomes: &[&str]) -> String {
    let totals: Vec<u64> = outcomes
        .iter()
        .map(|o| intervals.iter().map(|i| i.count(o)).sum())
        .collect();
    let total: u64 = totals.iter().sum();
    let mut html = String::from("<figure class=\"chart\">");
    html.push_str(&bars_svg(labels, intervals, outcomes, &totals, total));
    html.push_str(&legend(outcomes, &totals));
    html.push_str(&numbers_table(labels, intervals, outcomes, &totals, total));
    html.push_str("</figure>");
    html
}

fn summary(caption: &str, outcomes: &[&str], totals: &[u64], total: u64) -> String {
    if total == 0 {
        return format!("{caption}: none");
    }
    let parts: Vec<String> = outcomes
        .iter()
        .zip(totals)
        .filter(|(_, n)| **n > 0)
        .map(|(o, n)| format!("{o} {n}"))
        .collect();
    format!("{caption}: {total} ({})", parts.join(", "))
}

fn bars_svg(
    labels: &Labels<'_>,
    intervals: &[Interval<'_>],
    outcomes: &[&str],
    totals: &[u64],
    total: u64,
) -> String {
    let (w, h) = (f64::from(BARS_WIDTH), f64::from(BARS_HEIGHT));
    let plot = h - MARGIN_TOP - MARGIN_BOTTOM;
    let base = h - MARGIN_BOTTOM;
    let max = intervals.iter().map(Interval::total).max().unwrap_or(0);
    let mut svg = format!(
        "<svg class=\"bars\" width=\"{BARS_WIDTH}\" height=\"{BARS_HEIGHT}\" \
         viewBox=\"0 0 {BARS_WIDTH} {BARS_HEIGHT}\" role=\"img\"><title>{}</title>\
         <text class=\"tick\" x=\"{MARGIN_LEFT}\" y=\"10\">max {max}</text>\
         <line class=\"axis\" x1=\"{MARGIN_LEFT}\" y1=\"{base}\" x2=\"{w}\" y2=\"{base}\"/>",
        escape(&summary(labels.caption, outcomes, totals, total))
    );
    let step = (w - MARGIN_LEFT) / intervals.len().max(1) as f64;
    let bar_w = (step * 0.8).max(1.0);
    for (i, interval) in intervals.iter().enumerate() {
        let x = MARGIN_LEFT + i as f64 * step;
        let mut top = base;
        for outcome in outcomes {
            let n = interval.count(outcome);
            let seg = scaled(n, max, plot);
            if seg == 0.0 {
                continue;
            }
            top -= seg;
            let _ = write!(
                svg,
                "<rect class=\"seg {}\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{bar_w:.1}\" \
                 height=\"{seg:.1}\"><title>{}</title></rect>",
                outcome_class(outcome),
                escape(&format!("{}: {outcome} {n}", interval.long_label))
            );
        }
    }
    axis_labels(&mut svg, intervals, step, h);
    svg.push_str("</svg>");
    svg
}

/// The first and last intervals' labels under the axis, and the middle one
/// when there are enough bars to need it.
fn axis_labels(svg: &mut String, intervals: &[Interval<'_>], step: f64, h: f64) {
    let n = intervals.len();
    let mut picks = vec![0, n.saturating_sub(1)];
    if n > 4 {
        picks.insert(1, n / 2);
    }
    picks.dedup();
    for i in picks {
        if let Some(interval) = intervals.get(i) {
            let anchor = if i == 0 {
                "start"
            } else if i + 1 == n {
                "end"
            } else {
                "middle"
            };
            let x = if anchor == "end" {
                MARGIN_LEFT + (i as f64 + 1.0) * step
            } else {
                MARGIN_LEFT + i as f64 * step
            };
            let _ = write!(
                svg,
                "<text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                h - 4.0,
                escape(interval.label)
            );
        }
    }
}

fn legend(outcomes: &[&str], totals: &[u64]) -> String {
    let mut html = String::from("<figcaption><ul class=\"legend\">");
    for (o, n) in outcomes.iter().zip(totals) {
        let _ = write!(
            html,
            "<li><svg class=\"swatch\" width=\"10\" height=\"10\" aria-hidden=\"true\">\
             <rect class=\"seg {}\" width=\"10\" height=\"10\"/></svg> {} {n}</li>",
            outcome_class(o),
            escape(o)
        );
    }
    html.push_str("</ul></figcaption>");
    html
}

fn numbers_table(
    labels: &Labels<'_>,
    intervals: &[Interval<'_>],
    outcomes: &[&str],
    totals: &[u64],
    total: u64,
) -> String {
    let mut html = format!(
        "<details class=\"numbers\"><summary>Numbers</summary><table><caption>{}</caption>\
         <thead><tr><th scope=\"col\">{}</th>",
        escape(labels.caption),
        escape(labels.interval_heading)
    );
    for o in outcomes {
        let _ = write!(html, "<th scope=\"col\">{}</th>", escape(o));
    }
    html.push_str("<th scope=\"col\">Total</th></tr></thead><tbody>");
    for interval in intervals {
        let _ = write!(
            html,
            "<tr><th scope=\"row\">{}</th>",
            escape(interval.long_label)
        );
        for o in outcomes {
            let _ = write!(html, "<td>{}</td>", interval.count(o));
        }
        let _ = write!(html, "<td>{}</td></tr>", interval.total());
    }
    html.push_str("</tbody><tfoot><tr><th scope=\"row\">Total</th>");
    for n in totals {
        let _ = write!(html, "<td>{n}</td>");
    }
    let _ = write!(html, "<td>{total}</td></tr></tfoot></table></details>");
    html
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn sparkline_draws_one_bar_per_nonzero_count_scaled_to_the_peak() {
        let svg = sparkline(&[0, 3, 0, 6, 1], "verifications", "in the last 24 hours");
        assert_eq!(count(&svg, "<rect class=\"spark-bar\""), 3);
        assert!(svg.contains(
            "<title>10 verifications in the last 24 hours, at most 6 in one interval</title>"
        ));
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains(&format!(
            "width=\"{SPARK_WIDTH}\" height=\"{SPARK_HEIGHT}\""
        )));
        // The peak fills the height but the baseline pixel; 1 of 6 still shows.
        assert!(
            svg.contains("y=\"1.0\" width=\"18.2\" height=\"19.0\""),
            "{svg}"
        );
        assert!(svg.contains("height=\"3.2\"/>"), "{svg}");
        assert!(!svg.contains("style"));
    }

    #[test]
    fn an_empty_sparkline_says_so() {
        for counts in [&[][..], &[0, 0, 0][..]] {
            let svg = sparkline(counts, "verifications", "in the last 24 hours");
            assert_eq!(count(&svg, "<rect"), 0);
            assert!(svg.contains("<title>No verifications in the last 24 hours</title>"));
        }
    }

    fn intervals<'a>(data: &'a [(&'a str, Vec<(&'a str, u64)>)]) -> Vec<Interval<'a>> {
        data.iter()
            .map(|(label, counts)| Interval {
                label,
                long_label: label,
                counts,
            })
            .collect()
    }

    #[test]
    fn stacked_bars_have_one_segment_per_nonzero_outcome_with_titles_and_a_table() {
        let data = vec![
            ("00:00", vec![("VALID", 5), ("RATE_LIMITED", 2)]),
            ("01:00", vec![("VALID", 0), ("RATE_LIMITED", 0)]),
            ("02:00", vec![("VALID", 7), ("REVOKED", 1)]),
        ];
        let outcomes = ["VALID", "RATE_LIMITED", "REVOKED"];
        let labels = Labels {
            caption: "Verifications, last 3 hours",
            interval_heading: "Hour (UTC)",
        };
        let html = stacked_bars(&labels, &intervals(&data), &outcomes);
        assert_eq!(count(&html, "<rect class=\"seg o-valid\" x="), 2);
        assert_eq!(count(&html, "<rect class=\"seg o-rate-limited\" x="), 1);
        assert_eq!(count(&html, "<rect class=\"seg o-revoked\" x="), 1);
        assert!(html.contains(
            "<title>Verifications, last 3 hours: 15 (VALID 12, RATE_LIMITED 2, REVOKED 1)</title>"
        ));
        assert!(html.contains("<title>02:00: VALID 7</title>"));
        assert!(html.contains("<text class=\"tick\" x=\"4\" y=\"10\">max 8</text>"));
        // The table: a row per interval, a total row, totals per outcome.
        assert!(html.contains(
            "<tr><th scope=\"row\">01:00</th><td>0</td><td>0</td><td>0</td><td>0</td></tr>"
        ));
        assert!(html.contains(
            "<tfoot><tr><th scope=\"row\">Total</th><td>12</td><td>2</td><td>1</td><td>15</td></tr></tfoot>"
        ));
        assert!(html.contains("> VALID 12</li>"));
        assert!(!html.contains("style="));
    }

    #[test]
    fn the_tallest_bar_fills_the_plot_and_segments_stack_upwards() {
        let data = vec![
            ("a", vec![("VALID", 3), ("EXPIRED", 1)]),
            ("b", vec![("VALID", 2)]),
        ];
        let labels = Labels {
            caption: "c",
            interval_heading: "h",
        };
        let html = stacked_bars(&labels, &intervals(&data), &["VALID", "EXPIRED"]);
        let plot = f64::from(BARS_HEIGHT) - MARGIN_TOP - MARGIN_BOTTOM;
        let base = f64::from(BARS_HEIGHT) - MARGIN_BOTTOM;
        // Bar a: VALID 3/4 of the plot from the base, EXPIRED on top to the top margin.
        let valid = format!("y=\"{:.1}\" width", base - plot * 0.75);
        let expired = format!("y=\"{MARGIN_TOP:.1}\" width");
        assert!(html.contains(&valid), "{html}");
        assert!(html.contains(&expired), "{html}");
    }

    #[test]
    fn text_is_escaped() {
        let data = vec![("<b>", vec![("X\"&", 1)])];
        let labels = Labels {
            caption: "<script>",
            interval_heading: "h",
        };
        let html = stacked_bars(&labels, &intervals(&data), &["X\"&"]);
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;") && html.contains("X&quot;&amp;"));
        assert_eq!(outcome_class("X\"&"), "o-x");
        assert_eq!(outcome_class("USAGE_EXCEEDED"), "o-usage-exceeded");
    }

    #[test]
    fn an_empty_window_draws_no_bars() {
        let labels = Labels {
            caption: "Verifications",
            interval_heading: "h",
        };
        let html = stacked_bars(&labels, &[], &["VALID"]);
        assert_eq!(count(&html, "<rect class=\"seg o-valid\" x="), 0);
        assert!(html.contains("<title>Verifications: none</title>"));
    }
}
