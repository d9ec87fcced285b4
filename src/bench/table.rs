//! The bench table: one row per figure with its median, spread, baseline and ratio (markdown, so
//! the same text reads on a terminal and in the README).

use std::fmt::Write;

use super::{BenchReport, Figure, Summary};

/// A number in a width that suits its size: 52,310 / 812.4 / 3.52 / 0.043.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a >= 10_000.0 {
        let s = format!("{:.0}", v);
        let (sign, digits) = s.split_at(if v < 0.0 { 1 } else { 0 });
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn spread(s: &Summary) -> String {
    if s.runs.len() < 2 {
        "-".into()
    } else {
        format!("{}-{}", num(s.min), num(s.max))
    }
}

fn row(f: &Figure) -> String {
    let (bname, bmed) = match &f.baseline {
        None => ("-".to_string(), "-".to_string()),
        Some(b) => match (&b.value, &b.absent) {
            (Some(v), _) if b.is_target => {
                (b.name.clone(), format!("{} {}", num(v.median), f.unit))
            }
            (Some(v), _) => (
                b.name.clone(),
                format!("{} {} ({})", num(v.median), f.unit, spread(v)),
            ),
            (None, why) => (
                b.name.clone(),
                why.clone().unwrap_or_else(|| "absent".into()),
            ),
        },
    };
    let ratio = f
        .ratio
        .map(|r| format!("{r:.2}x"))
        .unwrap_or_else(|| "-".into());
    format!(
        "| {} | {} {} | {} | {} | {} | {} | {} |",
        f.name,
        num(f.value.median),
        f.unit,
        spread(&f.value),
        bname,
        bmed,
        ratio,
        f.target.as_deref().unwrap_or("")
    )
}

/// The table and the notes under it.
pub fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | median | spread (min-max) | baseline (same run) | baseline median (spread) | ratio | target |"
    );
    let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---|");
    for f in &r.figures {
        let _ = writeln!(out, "{}", row(f));
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "ratio = figure median / baseline median; {} run(s), medians shown.",
        r.runs
    );
    for f in r.figures.iter().filter(|f| f.note.is_some()) {
        let _ = writeln!(out, "- {}: {}", f.name, f.note.as_deref().unwrap_or(""));
    }
    for n in &r.notes {
        let _ = writeln!(out, "- {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let cases = [
            (52_310.4, "52,310"),
            (1_234_567.0, "1,234,567"),
            (812.44, "812"),
            (35.26, "35.3"),
            (3.521, "3.52"),
            (0.0432, "0.043"),
            (-12_000.0, "-12,000"),
        ];
        for (v, want) in cases {
            assert_eq!(num(v), want, "{v}");
        }
    }
}
