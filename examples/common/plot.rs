//! Small plotting helpers shared by the examples: PNGs through `plotters`' bitmap
//! backend, with the DejaVu Sans font shipped in `assets/fonts` (no system fonts needed).

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Registers the bundled font as "sans-serif" (idempotent).
pub fn init_font() {
    static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
    let _ = register_font("sans-serif", FontStyle::Normal, FONT);
}

/// One named series of (x, y) points.
pub struct Series {
    /// Legend label.
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// A line chart of several series; `log_y` plots y on a log scale.
pub fn line_chart(
    path: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    init_font();
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite() && (!log_y || *v > 0.0))
        .collect();
    let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (y0, y1) = ys
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
    let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    let mut builder = ChartBuilder::on(&root);
    let chart = builder
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            let fmt = |v: &f64| {
                if log_y {
                    format!("{v:.0e}")
                } else {
                    format!("{v:.2}")
                }
            };
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .y_label_formatter(&fmt)
                .label_style(("sans-serif", 15))
                .draw()?;
            for (i, s) in series.iter().enumerate() {
                let c = colors[i % colors.len()];
                let pts = s
                    .points
                    .iter()
                    .copied()
                    .filter(|p| p.1.is_finite() && (!log_y || p.1 > 0.0));
                chart
                    .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 15))
                .draw()?;
        }};
    }
    if log_y {
        draw!(chart.build_cartesian_2d(x0..x1, (y0 * 0.5..y1 * 2.0).log_scale())?);
    } else {
        let pad = (y1 - y0).abs().max(1e-9) * 0.05;
        draw!(chart.build_cartesian_2d(x0..x1, y0 - pad..y1 + pad)?);
    }
    root.present()?;
    Ok(())
}
