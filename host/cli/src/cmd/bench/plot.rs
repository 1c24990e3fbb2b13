//! `gatehouse bench --plot out.svg`: latency and throughput against batch size.

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;

use super::Mode;

/// Each mode's lines, the native baseline paler.
const MODES: [(Mode, f64); 2] = [(Mode::Plugin, 1.0), (Mode::Native, 0.45)];

/// One measured batch size.
pub struct Point {
    pub mode: super::Mode,
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
    let series = |mode: Mode, f: fn(&Point) -> f64| {
        points
            .iter()
            .filter(move |p| p.mode == mode)
            .map(move |p| (p.batch as f64, f(p)))
    };
    for (mode, shade) in MODES {
        let has = points.iter().any(|p| p.mode == mode);
        if !has {
            continue;
        }
        let (blue, red) = (BLUE.mix(shade), RED.mix(shade));
        lat.draw_series(LineSeries::new(
            series(mode, |p| p.median_us),
            blue.stroke_width(2),
        ))?
        .label(format!("{} median", mode.as_str()))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], blue));
        lat.draw_series(LineSeries::new(
            series(mode, |p| p.p99_us),
            red.stroke_width(2),
        ))?
        .label(format!("{} p99", mode.as_str()))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], red));
    }
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
    for (mode, shade) in MODES {
        if !points.iter().any(|p| p.mode == mode) {
            continue;
        }
        let green = GREEN.mix(shade);
        thr.draw_series(LineSeries::new(
            series(mode, |p| p.per_s),
            green.stroke_width(2),
        ))?
        .label(mode.as_str())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], green));
        thr.draw_series(
            series(mode, |p| p.per_s).map(move |(x, y)| Circle::new((x, y), 3, green.filled())),
        )?;
    }
    thr.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
