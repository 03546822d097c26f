//! The occ study as an SVG chart: calls and completion time per strategy,
//! across client counts (plotters, SVG backend).

use std::path::Path;

use plotters::prelude::*;

use super::Row;
use super::occ::Strategy;

const COLORS: [RGBColor; 5] = [
    RGBColor(0x88, 0x88, 0x88),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
];

fn series(rows: &[Row], strategy: Strategy, metric: &str) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r.name == strategy.name())
        .filter_map(|r| r.metrics.iter().find(|(m, _)| m == metric).map(|(_, s)| (r.clients as f64, s.mean)))
        .collect()
}

/// The largest mean of `metric` over the strategies.
fn top(rows: &[Row], strategies: &[Strategy], metric: &str) -> f64 {
    strategies.iter().flat_map(|s| series(rows, *s, metric)).map(|(_, y)| y).fold(1.0, f64::max)
}

/// One line (with points) per strategy, and the legend.
fn draw_lines<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    rows: &[Row],
    strategies: &[Strategy],
    metric: &str,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    for (i, s) in strategies.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points = series(rows, *s, metric);
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(s.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Draws two panels side by side: total calls and completion time (ms)
/// against the number of clients, one line per strategy.
pub fn occ(path: &Path, rows: &[Row], strategies: &[Strategy]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1100, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    let max_clients = rows.iter().map(|r| r.clients).max().unwrap_or(1) as f64;
    let mut calls = ChartBuilder::on(&left)
        .caption("Total calls (lower is better)", ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..max_clients * 1.02, 0.0..top(rows, strategies, "calls") * 1.08)?;
    calls
        .configure_mesh()
        .x_desc("clients")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    draw_lines(&mut calls, rows, strategies, "calls")?;
    // Completion times span three orders of magnitude: a log axis shows them all.
    let mut time = ChartBuilder::on(&right)
        .caption("Completion time, ms, log scale (lower is better)", ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..max_clients * 1.02, (1.0..top(rows, strategies, "completion_ms") * 2.0).log_scale())?;
    time.configure_mesh()
        .x_desc("clients")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    draw_lines(&mut time, rows, strategies, "completion_ms")?;
    root.present()?;
    Ok(())
}
