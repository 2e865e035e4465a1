//! The overview's chart: decisions per hour, allowed, denied and held
//! stacked, drawn as SVG on the server by plotters (no script, no fonts
//! to fetch).

use plotters::prelude::*;

use super::index::{TrailIndex, Verdict};

/// Hours shown: the last two days of the trail.
const HOURS: i64 = 48;

const COLOURS: [RGBColor; 3] = [
    RGBColor(46, 125, 50),
    RGBColor(198, 40, 40),
    RGBColor(239, 163, 0),
];

/// The chart as an SVG document.
pub fn hours(index: &TrailIndex) -> String {
    let hours = &index.counts.hours;
    let last = hours.keys().next_back().copied().unwrap_or(0);
    let first = last - HOURS + 1;
    let bars: Vec<(i64, [u64; 3])> = (first..=last)
        .map(|h| (h, hours.get(&h).copied().unwrap_or_default()))
        .collect();
    let top = bars
        .iter()
        .map(|(_, n)| n.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 260)).into_drawing_area();
        let _ = draw(&root, &bars, first, last, top);
        let _ = root.present();
    }
    svg
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    bars: &[(i64, [u64; 3])],
    first: i64,
    last: i64,
    top: u64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(44)
        .build_cartesian_2d(first..last + 1, 0..top + top / 10 + 1)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(8)
        .x_label_formatter(&|h| hour_label(*h))
        .y_desc("decisions")
        .draw()?;
    for verdict in [Verdict::Allow, Verdict::Deny, Verdict::Held] {
        let slot = verdict.slot();
        let colour = COLOURS[slot];
        chart
            .draw_series(bars.iter().filter(|(_, n)| n[slot] > 0).map(|(h, n)| {
                let below: u64 = n[..slot].iter().sum();
                Rectangle::new([(*h, below), (*h + 1, below + n[slot])], colour.filled())
            }))?
            .label(verdict.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    Ok(())
}

/// `MM-DD HH:00` of a Unix hour.
fn hour_label(hour: i64) -> String {
    let secs = u64::try_from(hour * 3600).unwrap_or(0);
    let time = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    )
    .to_string();
    // 2026-12-07T13:00:00Z
    format!(
        "{} {}",
        time.get(5..10).unwrap_or(""),
        time.get(11..16).unwrap_or("")
    )
}
