//! A self-contained HTML page (no network access) with the run's timeline drawn in SVG.

use std::fmt::Write;

use super::TimeSpan;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const LANES: [(&str, &str); 3] = [
    ("copy", "#4a90d9"),
    ("apply", "#3aa364"),
    ("step", "#c9822b"),
];

/// The page: a title, a table of facts, and the timeline (one row per lane, one bar per span).
pub fn page(title: &str, facts: &[(String, String)], spans: &[TimeSpan]) -> String {
    let mut h = String::new();
    let total = spans
        .iter()
        .map(|s| s.end)
        .fold(0.0f64, f64::max)
        .max(0.001);
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}table{{border-collapse:collapse}}\
         td{{padding:2px 12px 2px 0;vertical-align:top}}td:first-child{{color:#666}}\
         .failed{{fill:#d0021b}}svg text{{font-size:11px;fill:#333}}</style></head><body><h1>{t}</h1><table>",
        t = escape(title)
    );
    for (k, v) in facts {
        let _ = write!(h, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
    }
    h.push_str("</table><h2>Timeline</h2>");
    let (width, left, row_h) = (1000.0, 90.0, 18.0);
    // Copy and apply get one row per concurrent bar, so overlapping copies stay visible.
    let mut rows: Vec<(usize, usize, &TimeSpan)> = Vec::new();
    let mut lane_rows = Vec::new();
    let mut row_base = 0;
    for (li, (lane, _)) in LANES.iter().enumerate() {
        let mut ends: Vec<f64> = Vec::new();
        for s in spans.iter().filter(|s| s.lane == *lane) {
            // Steps get a row each, so their labels never overlap.
            let free = if *lane == "step" {
                None
            } else {
                ends.iter().position(|&e| e <= s.start)
            };
            let r = match free {
                Some(r) => r,
                None => {
                    ends.push(0.0);
                    ends.len() - 1
                }
            };
            ends[r] = s.end;
            rows.push((li, row_base + r, s));
        }
        let n = ends.len().max(1);
        lane_rows.push((lane, row_base, n));
        row_base += n + 1;
    }
    let height = row_base as f64 * row_h + 30.0;
    let scale = (width - left - 10.0) / total;
    let _ = write!(
        h,
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\">"
    );
    for (lane, base, _) in &lane_rows {
        let _ = write!(
            h,
            "<text x=\"4\" y=\"{}\">{lane}</text>",
            *base as f64 * row_h + 13.0
        );
    }
    for (li, row, s) in &rows {
        let x = left + s.start * scale;
        let w = ((s.end - s.start) * scale).max(1.0);
        let y = *row as f64 * row_h + 2.0;
        let color = LANES[*li].1;
        let class = if s.ok { "bar" } else { "bar failed" };
        let _ = write!(
            h,
            "<rect class=\"{class}\" data-lane=\"{lane}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{bh}\" \
             fill=\"{color}\"><title>{name}: {start:.2}s to {end:.2}s{detail}</title></rect>",
            lane = escape(&s.lane),
            bh = row_h - 4.0,
            name = escape(&s.name),
            start = s.start,
            end = s.end,
            detail = if s.detail.is_empty() { String::new() } else { format!(" ({})", escape(&s.detail)) },
        );
        if s.lane == "step" {
            let _ = write!(
                h,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + w + 3.0,
                y + 11.0,
                escape(&s.name)
            );
        }
    }
    let axis_y = height - 14.0;
    for i in 0..=10 {
        let t = total * i as f64 / 10.0;
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{axis_y}\">{t:.1}s</text>",
            left + t * scale
        );
    }
    h.push_str("</svg>");
    if let Some(slowest) = spans
        .iter()
        .filter(|s| s.lane == "step")
        .max_by(|a, b| (a.end - a.start).total_cmp(&(b.end - b.start)))
    {
        let _ = write!(
            h,
            "<p>Slowest step: <b>{}</b>, {:.2} s.</p>",
            escape(&slowest.name),
            slowest.end - slowest.start
        );
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_names() {
        let spans = [TimeSpan {
            lane: "copy".into(),
            name: "<script>alert('x')</script>".into(),
            start: 0.0,
            end: 1.0,
            ok: true,
            detail: String::new(),
        }];
        let p = page("t & <b>", &[("db".into(), "mg]c'".into())], &spans);
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(p.contains("t &amp; &lt;b&gt;"));
        assert_eq!(p.matches("<rect").count(), 1);
    }

    #[test]
    fn overlapping_copies_get_their_own_rows() {
        let span = |name: &str, start, end| TimeSpan {
            lane: "copy".into(),
            name: name.into(),
            start,
            end,
            ok: true,
            detail: String::new(),
        };
        let spans = [
            span("a", 0.0, 2.0),
            span("b", 0.5, 1.0),
            span("c", 2.0, 3.0),
        ];
        let p = page("t", &[], &spans);
        // a and c share the first row; b needs a second one.
        assert!(p.contains("y=\"2.0\""));
        assert!(p.contains("y=\"20.0\""));
        assert!(!p.contains("y=\"38.0\""));
    }
}
