//! `gatehouse bench --plot out.svg`: latency and throughput against batch size.

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;

/// One measured batch size.
pub struct Point {
    pub batch: usize,
    pub median_us: f64,
    pub p99_us: f64,
    pub per_s: f64,
}

pub fn draw(path: &Path, title: &str, points: &[Point]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let (left, right) = root.split_horizontally(480);
    let max_batch = points.iter().map(|p| p.batch).max().unwrap_or(1) as f64;
    let x_range = 0.0..max_batch * 1.05 + 1.0;

    let max_us = points.iter().map(|p| p.p99_us).fold(0.0, f64::max) * 1.1 + 1e-9;
    let mut lat = ChartBuilder::on(&left)
        .caption("latency per inference (µs)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range.clone(), 0.0..max_us)?;
    lat.configure_mesh().x_desc("batch").draw()?;
    let series = |f: fn(&Point) -> f64| points.iter().map(move |p| (p.batch as f64, f(p)));
    lat.draw_series(LineSeries::new(
        series(|p| p.median_us),
        BLUE.stroke_width(2),
    ))?
    .label("median")
    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
    lat.draw_series(LineSeries::new(series(|p| p.p99_us), RED.stroke_width(2)))?
        .label("p99")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
    lat.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;

    let max_per_s = points.iter().map(|p| p.per_s).fold(0.0, f64::max) * 1.1 + 1e-9;
    let mut thr = ChartBuilder::on(&right)
        .caption("throughput (inferences/s)", ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range, 0.0..max_per_s)?;
    thr.configure_mesh().x_desc("batch").draw()?;
    thr.draw_series(LineSeries::new(series(|p| p.per_s), GREEN.stroke_width(2)))?;
    thr.draw_series(series(|p| p.per_s).map(|(x, y)| Circle::new((x, y), 3, GREEN.filled())))?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
