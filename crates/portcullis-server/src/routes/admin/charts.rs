//! Charts drawn by the server as inline SVG (no script, no external library).
//! Every value placed in the markup is a number or a date we format, never input.

use std::fmt::Write;

/// Fills the `days` days ending today (UTC day starts) from sparse `(day, n)` pairs.
pub fn series(points: &[(i64, i64)], today: i64, days: i64) -> Vec<(i64, i64)> {
    (0..days)
        .map(|i| {
            let day = today - (days - 1 - i) * 86_400;
            let n = points
                .iter()
                .filter(|(d, _)| *d == day)
                .map(|(_, n)| *n)
                .sum();
            (day, n)
        })
        .collect()
}

fn date(day: i64) -> String {
    portcullis_core::time::rfc3339(day)
        .get(5..10)
        .unwrap_or_default()
        .to_owned()
}

/// A bar chart with the max value and first/last dates as labels.
pub fn bars(points: &[(i64, i64)], class: &str, title: &str) -> String {
    let (w, h, pad) = (600.0_f64, 160.0_f64, 24.0_f64);
    let max = points.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let n = points.len().max(1) as f64;
    let bw = (w - pad) / n;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{title}"><title>{title}</title>"#
    );
    let _ = write!(
        svg,
        r##"<line x1="{pad}" y1="{y}" x2="{w}" y2="{y}" stroke="#d0d5dd"/>"##,
        y = h - pad
    );
    for (i, (day, v)) in points.iter().enumerate() {
        let bh = (*v as f64 / max as f64) * (h - 2.0 * pad);
        let x = pad + i as f64 * bw + 1.0;
        let y = h - pad - bh;
        let _ = write!(
            svg,
            r#"<rect class="bar {class}" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{bh:.1}"><title>{}: {v}</title></rect>"#,
            (bw - 2.0).max(1.0),
            date(*day)
        );
    }
    let _ = write!(svg, r#"<text x="0" y="{}">{max}</text>"#, pad - 8.0);
    let _ = write!(svg, r#"<text x="0" y="{}">0</text>"#, h - pad);
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            svg,
            r#"<text x="{pad}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            h - 6.0,
            date(first.0),
            w,
            h - 6.0,
            date(last.0)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A small bar sparkline.
pub fn spark(points: &[(i64, i64)]) -> String {
    let (w, h) = (300.0_f64, 28.0_f64);
    let max = points.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let bw = w / points.len().max(1) as f64;
    let mut svg = format!(r#"<svg class="spark" viewBox="0 0 {w} {h}" aria-hidden="true">"#);
    for (i, (day, v)) in points.iter().enumerate() {
        let bh = (*v as f64 / max as f64) * (h - 2.0);
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}"><title>{}: {v}</title></rect>"#,
            i as f64 * bw,
            h - bh,
            (bw - 1.0).max(1.0),
            date(*day)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_fills_missing_days_with_zero() {
        let s = series(&[(86_400 * 10, 3)], 86_400 * 11, 3);
        assert_eq!(s, vec![(86_400 * 9, 0), (86_400 * 10, 3), (86_400 * 11, 0)]);
        let svg = bars(&s, "", "t");
        assert_eq!(svg.matches("<rect").count(), 3);
    }
}
