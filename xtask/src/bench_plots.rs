//! The bench report's SVG plots (plotters): a latency CDF with one line per system, and one
//! histogram panel per system (each on its own scale: mido is two orders of magnitude slower).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use std::path::Path;

const WIDTH: u32 = 900;
const COLOURS: [RGBColor; 4] =
    [RGBColor(0x1f, 0x77, 0xb4), RGBColor(0x7f, 0x7f, 0x7f), RGBColor(0xd6, 0x27, 0x28), RGBColor(0x2c, 0xa0, 0x2c)];

fn colour(system: &str) -> RGBColor {
    match system {
        "midisock_buffer" => RGBColor(0xff, 0x7f, 0x0e),
        "midisock" => COLOURS[0],
        "raw_tcp" => COLOURS[1],
        "python" => COLOURS[3],
        _ => COLOURS[2],
    }
}

fn label(system: &str) -> &str {
    match system {
        "raw_tcp" => "plain TCP",
        "mido" => "mido 1.3.3",
        "python" => "midisock (Python)",
        "midisock_buffer" => "midisock, jitter buffer (auto)",
        other => other,
    }
}

fn err(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> String + '_ {
    move |e| format!("plotting {}: {e}", path.display())
}

/// Cumulative distribution of each system's sorted samples. The latency axis is log-scaled (µs)
/// when the samples span a decade or more (round trips: µs for midisock, ms for mido), and
/// linear in ms otherwise: a log axis labels only powers of ten, so a narrower range (a jittery
/// link's 10–40 ms) would have no numbers on it at all.
pub fn cdf(path: &Path, title: &str, series: &[(&str, &[u64])]) -> Result<(), String> {
    let fail = err(path);
    let all = series.iter().flat_map(|(_, s)| s.first().into_iter().chain(s.last()));
    let (lo, hi) = all.fold((u64::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if hi == 0 {
        return Err(fail(&"no samples"));
    }
    let (lo, hi) = ((lo.max(1) as f64 / 1e3) * 0.8, (hi as f64 / 1e3) * 1.25);
    if hi / lo >= 10.0 {
        draw_cdf(path, title, series, (lo..hi).log_scale(), "latency (µs, log scale)", 1e3)
    } else {
        let (lo, hi) = (lo / 1e3, hi / 1e3);
        let margin = (hi - lo) * 0.05;
        draw_cdf(path, title, series, (lo - margin).max(0.0)..hi + margin, "latency (ms)", 1e6)
    }
}

/// Draws [`cdf`] on the latency axis `x`, whose unit is `unit_ns` nanoseconds.
fn draw_cdf<X>(
    path: &Path,
    title: &str,
    series: &[(&str, &[u64])],
    x: X,
    x_desc: &str,
    unit_ns: f64,
) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    let fail = err(path);
    let root = SVGBackend::new(path, (WIDTH, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: CDF"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x, 0.0..1.0)
        .map_err(|e| fail(&e))?;
    chart.configure_mesh().x_desc(x_desc).y_desc("fraction of messages ≤ x").draw().map_err(|e| fail(&e))?;
    for &(system, samples) in series {
        let n = samples.len() as f64;
        // At most ~2,000 points per line: every k-th sample plus the tail.
        let step = (samples.len() / 2000).max(1);
        let points = samples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % step == 0 || *i + 1 == samples.len())
            .map(|(i, &v)| (v.max(1) as f64 / unit_ns, (i + 1) as f64 / n));
        let c = colour(system);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(label(system))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))
}

/// One histogram panel per system, 60 bins from 0 to its p99.9 (the tail beyond is counted in
/// the caption, not drawn, so one outlier does not flatten the panel).
pub fn histograms(path: &Path, title: &str, series: &[(&str, &[u64])]) -> Result<(), String> {
    const BINS: usize = 60;
    let fail = err(path);
    let root = SVGBackend::new(path, (WIDTH, 260 * series.len().max(1) as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let panels = root.split_evenly((series.len().max(1), 1));
    for (panel, &(system, samples)) in panels.iter().zip(series) {
        if samples.is_empty() {
            continue;
        }
        let p999 = samples[((samples.len() as f64 * 0.999).ceil() as usize).clamp(1, samples.len()) - 1];
        let top = (p999 as f64 / 1e3).max(1e-3);
        let width = top / BINS as f64;
        let mut counts = [0usize; BINS];
        let mut beyond = 0usize;
        for &v in samples {
            let us = v as f64 / 1e3;
            if us > top {
                beyond += 1;
            } else {
                counts[((us / width) as usize).min(BINS - 1)] += 1;
            }
        }
        let peak = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{title}: {} ({} samples, {beyond} above p99.9 not shown)", label(system), samples.len()),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..top, 0.0..peak * 1.05)
            .map_err(|e| fail(&e))?;
        chart.configure_mesh().x_desc("latency (µs)").y_desc("messages").draw().map_err(|e| fail(&e))?;
        let c = colour(system);
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &count)| {
                let x0 = i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, count as f64)], c.filled())
            }))
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}
