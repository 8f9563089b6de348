//! The `--plot FILE` chart of `ludus bots`: latency percentiles and
//! connected clients over the run's time, one point per second.
//!
//! Owns: turning a slice of [`PlotSample`]s into one SVG file. Never does:
//! measuring (the caller hands in finished per-second samples), reading the
//! clock, or anything on a worker thread (it runs once, after the run).
//!
//! The chart has a title and two panels sharing the time axis: above,
//! input-to-ack latency p50/p90/p99/max in milliseconds on a logarithmic
//! axis, with a legend; below, connected clients. Latency is on a log axis
//! because a run's max is often tens or hundreds of times its median (a
//! stall, a TLS handshake burst): on a linear axis the median would be a
//! flat line on the floor. A second without measurements (latency NaN, zero
//! or negative) breaks that series' line instead of bridging the gap, so a
//! silence in the run shows as a silence in the chart; a lone measured
//! second between gaps is drawn as a dot.
//!
//! Why SVG only: plotters' SVG backend writes text as `<text>` elements and
//! leaves the glyphs to the viewer, so with its default features off it
//! needs no font library (text layout uses plotters' built-in width
//! estimate). Its bitmap backend rasterises glyphs itself, which needs
//! either the "ttf" feature (font-kit, and with it the system's fontconfig
//! and freetype) or "ab_glyph" plus a font file we would have to ship.
//! Neither is worth it for a chart that `rsvg-convert -o plot.png plot.svg`
//! turns into a PNG, so a ".png" path is refused with an error that says so.

use std::path::{Path, PathBuf};

use plotters::chart::SeriesAnno;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One point per second of the run.
#[derive(Debug, Clone, Copy)]
pub struct PlotSample {
    /// Seconds since the start of the run.
    pub t_s: f64,
    /// Sessions established at that second.
    pub connected: u64,
    /// Input-to-ack latency percentiles of that second, milliseconds; NaN
    /// or zero when nothing was measured in that second.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("writing plot {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "plot {}: unsupported file extension, the supported one is .svg \
         (for a PNG, convert it: rsvg-convert -o plot.png plot.svg)",
        path.display()
    )]
    UnsupportedExtension { path: PathBuf },
    #[error("plot: no samples to draw")]
    NoSamples,
    #[error("plot: {count} samples, more than the {max} a plot may have")]
    TooManySamples { count: usize, max: usize },
    #[error("drawing plot: {0}")]
    Drawing(String),
}

/// Most samples one plot takes: a week of seconds. Past that the SVG would
/// run to hundreds of megabytes, which no viewer opens usefully.
pub const SAMPLES_MAX: usize = 7 * 24 * 3600;
/// Size of the chart, pixels.
pub const WIDTH_PX: u32 = 1200;
pub const HEIGHT_PX: u32 = 800;

/// Share of the height below the title that the latency panel takes.
const LATENCY_PANEL_PERCENT: u32 = 62;
const FONT: &str = "sans-serif";
const LINE_WIDTH_PX: u32 = 2;
const DOT_RADIUS_PX: i32 = 3;

/// One latency line of the upper panel.
struct LatencySeries {
    name: &'static str,
    color: RGBColor,
    value_ms: fn(&PlotSample) -> f64,
}

/// Drawn in this order, so the max line lies under the percentiles.
const LATENCY_SERIES: [LatencySeries; 4] = [
    LatencySeries { name: "max", color: RGBColor(214, 39, 40), value_ms: |sample| sample.max_ms },
    LatencySeries { name: "p99", color: RGBColor(255, 127, 14), value_ms: |sample| sample.p99_ms },
    LatencySeries { name: "p90", color: RGBColor(44, 160, 44), value_ms: |sample| sample.p90_ms },
    LatencySeries { name: "p50", color: RGBColor(31, 119, 180), value_ms: |sample| sample.p50_ms },
];
const CONNECTED_COLOR: RGBColor = RGBColor(148, 103, 189);

/// Writes the chart to `path`, which must end in ".svg" (any case).
pub fn write_plot(path: &Path, title: &str, samples: &[PlotSample]) -> Result<(), PlotError> {
    let is_svg = path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("svg"));
    if !is_svg {
        return Err(PlotError::UnsupportedExtension { path: path.to_path_buf() });
    }
    if samples.len() > SAMPLES_MAX {
        return Err(PlotError::TooManySamples { count: samples.len(), max: SAMPLES_MAX });
    }
    let time_range_s = time_range_s(samples).ok_or(PlotError::NoSamples)?;
    let svg = render_svg(title, samples, time_range_s)?;
    std::fs::write(path, svg).map_err(|source| PlotError::Io { path: path.to_path_buf(), source })
}

/// The chart as SVG text.
fn render_svg(
    title: &str,
    samples: &[PlotSample],
    time_range_s: (f64, f64),
) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        draw_chart(&root, title, samples, time_range_s)
            .map_err(|error| PlotError::Drawing(error.to_string()))?;
        root.present().map_err(|error| PlotError::Drawing(error.to_string()))?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw_chart(
    root: &Area,
    title: &str,
    samples: &[PlotSample],
    time_range_s: (f64, f64),
) -> DrawResult {
    root.fill(&WHITE)?;
    let body = root.titled(title, (FONT, 28))?;
    let (_, body_height_px) = body.dim_in_pixel();
    let (upper, lower) = body.split_vertically(body_height_px * LATENCY_PANEL_PERCENT / 100);
    draw_latency_panel(&upper, samples, time_range_s)?;
    draw_connected_panel(&lower, samples, time_range_s)
}

fn draw_latency_panel(
    area: &Area,
    samples: &[PlotSample],
    (t_min_s, t_max_s): (f64, f64),
) -> DrawResult {
    let measured: Vec<f64> = LATENCY_SERIES
        .iter()
        .flat_map(|series| samples.iter().map(series.value_ms))
        .filter(|&value_ms| is_measured(value_ms))
        .collect();
    let (low_ms, high_ms) = decade_range_ms(&measured);
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(t_min_s..t_max_s, (low_ms..high_ms).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("input-to-ack latency (ms, log scale)")
        .y_labels(12)
        .x_label_formatter(&|t_s| format_number(*t_s))
        .y_label_formatter(&|value_ms| format_number(*value_ms))
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .light_line_style(BLACK.mix(0.04))
        .draw()?;
    if measured.is_empty() {
        let center = ((t_min_s + t_max_s) / 2.0, (low_ms * high_ms).sqrt());
        let style = TextStyle::from((FONT, 20)).pos(Pos::new(HPos::Center, VPos::Center));
        chart.draw_series(std::iter::once(Text::new("no latency measurements", center, style)))?;
    }
    for series in &LATENCY_SERIES {
        let runs = measured_runs(samples, |sample| {
            let value_ms = (series.value_ms)(sample);
            is_measured(value_ms).then_some(value_ms)
        });
        let style = series.color.stroke_width(LINE_WIDTH_PX);
        draw_runs(&mut chart, runs, style)?
            .label(series.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

fn draw_connected_panel(
    area: &Area,
    samples: &[PlotSample],
    (t_min_s, t_max_s): (f64, f64),
) -> DrawResult {
    let connected_max = samples.iter().map(|sample| sample.connected).max().unwrap_or(0);
    // Headroom above the top so the line does not run along the frame.
    let y_max = connected_max.saturating_add(connected_max / 20).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(t_min_s..t_max_s, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("connected clients")
        .y_labels(6)
        .x_label_formatter(&|t_s| format_number(*t_s))
        .y_label_formatter(&|clients| format_number(*clients))
        .axis_desc_style((FONT, 16))
        .label_style((FONT, 14))
        .light_line_style(BLACK.mix(0.04))
        .draw()?;
    let runs = measured_runs(samples, |sample| Some(sample.connected as f64));
    draw_runs(&mut chart, runs, CONNECTED_COLOR.stroke_width(LINE_WIDTH_PX))?;
    Ok(())
}

type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

/// Draws each run as a line, or as a dot when it is a single point (a line
/// of one point would be invisible). Returns the lines' legend entry.
fn draw_runs<'a, 'b, 'c, Y>(
    chart: &'c mut Chart<'a, 'b, Y>,
    runs: Vec<Vec<(f64, f64)>>,
    style: ShapeStyle,
) -> Result<&'c mut SeriesAnno<'a, SVGBackend<'b>>, DrawingAreaErrorKind<std::io::Error>>
where
    Y: Ranged<ValueType = f64>,
{
    let (dots, lines): (Vec<_>, Vec<_>) = runs.into_iter().partition(|run| run.len() == 1);
    let dot_style = style.color.filled();
    chart.draw_series(dots.into_iter().map(|dot| Circle::new(dot[0], DOT_RADIUS_PX, dot_style)))?;
    chart.draw_series(lines.into_iter().map(|line| PathElement::new(line, style)))
}

/// Whether a latency is a measurement: NaN, zero and negative mean "nothing
/// was measured in that second".
fn is_measured(value_ms: f64) -> bool {
    value_ms.is_finite() && value_ms > 0.0
}

/// Earliest and latest finite sample time, widened to one second when they
/// coincide so the axis has a width; `None` when no sample has a time.
fn time_range_s(samples: &[PlotSample]) -> Option<(f64, f64)> {
    let mut times_s = samples.iter().map(|sample| sample.t_s).filter(|t_s| t_s.is_finite());
    let first_s = times_s.next()?;
    let (t_min_s, t_max_s) =
        times_s.fold((first_s, first_s), |(low, high), t_s| (low.min(t_s), high.max(t_s)));
    if t_max_s > t_min_s {
        Some((t_min_s, t_max_s))
    } else {
        Some((t_min_s, t_min_s + 1.0))
    }
}

/// Whole decades around the measured latencies (1..10 ms for none), so the
/// log axis always has labelled powers of ten at both ends.
fn decade_range_ms(measured_ms: &[f64]) -> (f64, f64) {
    let low_ms = measured_ms.iter().copied().fold(f64::INFINITY, f64::min);
    let high_ms = measured_ms.iter().copied().fold(0.0, f64::max);
    if !low_ms.is_finite() {
        return (1.0, 10.0);
    }
    let low_decade = low_ms.log10().floor();
    let high_decade = high_ms.log10().ceil().max(low_decade + 1.0);
    (10f64.powf(low_decade), 10f64.powf(high_decade))
}

/// Splits the samples into runs of consecutive points that have a value and
/// a finite time; a sample without either ends the current run.
fn measured_runs(
    samples: &[PlotSample],
    value: impl Fn(&PlotSample) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut run = Vec::new();
    for sample in samples {
        match value(sample) {
            Some(y) if sample.t_s.is_finite() => run.push((sample.t_s, y)),
            _ if !run.is_empty() => runs.push(std::mem::take(&mut run)),
            _ => {}
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// An axis label: no more decimals than three significant digits need, no
/// trailing zeros ("0.3", "25", "1200"), so float noise in tick values
/// never shows.
fn format_number(value: f64) -> String {
    let decimals = (2.0 - value.abs().log10().floor()).clamp(0.0, 6.0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minute of a steady run: ramp to 1000 clients over 10 s, latencies
    /// around 2 ms with a tail.
    fn steady_run() -> Vec<PlotSample> {
        (0..60)
            .map(|second| {
                let wobble = (second as f64 * 0.7).sin();
                PlotSample {
                    t_s: second as f64,
                    connected: (second.min(10) * 100) as u64,
                    p50_ms: 2.0 + 0.2 * wobble,
                    p90_ms: 3.5 + 0.4 * wobble,
                    p99_ms: 8.0 + 2.0 * wobble,
                    max_ms: 40.0 + 30.0 * wobble.abs(),
                }
            })
            .collect()
    }

    /// Polylines of the SVG as (stroke colour, number of points).
    fn polylines(svg: &str) -> Vec<(String, usize)> {
        svg.split("<polyline")
            .skip(1)
            .map(|element| {
                let attribute = |name: &str| {
                    let start = element.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    let end = start + element[start..].find('"').unwrap();
                    element[start..end].to_string()
                };
                (attribute("stroke"), attribute("points").split_whitespace().count())
            })
            .collect()
    }

    fn hex(color: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", color.0, color.1, color.2)
    }

    #[test]
    fn a_minute_of_samples_makes_one_line_per_series() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("run.svg");
        write_plot(&path, "bots: 1000 clients over ws", &steady_run()).unwrap();

        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{}", &svg[..40]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.contains("bots: 1000 clients over ws"));
        for label in ["p50", "p90", "p99", "max", "time (s)", "connected clients"] {
            assert!(svg.contains(label), "missing text {label}");
        }
        // The data lines are the polylines with all 60 points; the legend's
        // swatches are two-point polylines.
        let lines = polylines(&svg);
        let colors = LATENCY_SERIES.iter().map(|series| series.color).chain([CONNECTED_COLOR]);
        for color in colors {
            let full =
                lines.iter().filter(|(stroke, points)| *stroke == hex(color) && *points == 60);
            assert_eq!(full.count(), 1, "series {}", hex(color));
        }
    }

    #[test]
    fn seconds_without_measurements_break_the_lines() {
        let mut samples = steady_run();
        for second in [10, 11, 12, 30, 32] {
            samples[second].p50_ms = f64::NAN;
            samples[second].p90_ms = 0.0;
            samples[second].p99_ms = f64::INFINITY;
        }
        for sample in &mut samples {
            sample.max_ms = f64::NAN;
        }
        samples[45].t_s = f64::NAN;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("gaps.SVG");
        write_plot(&path, "gaps", &samples).unwrap();

        let svg = std::fs::read_to_string(&path).unwrap();
        let p50 = hex(LATENCY_SERIES[3].color);
        let p50_lines: Vec<usize> = polylines(&svg)
            .into_iter()
            .filter(|(stroke, points)| *stroke == p50 && *points > 2)
            .map(|(_, points)| points)
            .collect();
        // 0..=9, 13..=29, 33..=44, 46..=59; second 31 alone is a dot.
        assert_eq!(p50_lines, vec![10, 17, 12, 14]);
        assert!(svg.contains("<circle"));
        // Max has no measurement at all and still has its legend entry.
        assert!(svg.contains(">\nmax\n<") || svg.contains(">max<"));
    }

    #[test]
    fn no_latency_at_all_still_draws_the_clients() {
        let samples: Vec<PlotSample> = steady_run()
            .into_iter()
            .map(|sample| PlotSample {
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: f64::NAN,
                max_ms: 0.0,
                ..sample
            })
            .collect();
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("idle.svg");
        write_plot(&path, "idle", &samples).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("no latency measurements"));
        assert!(polylines(&svg)
            .iter()
            .any(|(stroke, points)| *stroke == hex(CONNECTED_COLOR) && *points == 60));
    }

    #[test]
    fn a_single_sample_is_drawn() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("one.svg");
        write_plot(&path, "one", &steady_run()[..1]).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("<circle"));
    }

    #[test]
    fn no_samples_is_an_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("empty.svg");
        assert!(matches!(write_plot(&path, "empty", &[]), Err(PlotError::NoSamples)));
        let timeless = PlotSample { t_s: f64::NAN, ..steady_run()[0] };
        assert!(matches!(write_plot(&path, "timeless", &[timeless]), Err(PlotError::NoSamples)));
        assert!(!path.exists());
    }

    #[test]
    fn other_extensions_are_refused_naming_svg() {
        let directory = tempfile::tempdir().unwrap();
        for name in ["run.png", "run.txt", "run", "svg"] {
            let path = directory.path().join(name);
            let error = write_plot(&path, "run", &steady_run()).unwrap_err();
            assert!(matches!(error, PlotError::UnsupportedExtension { .. }), "{name}: {error}");
            assert!(error.to_string().contains(".svg"), "{error}");
            assert!(!path.exists());
        }
    }

    #[test]
    fn more_samples_than_the_limit_is_an_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("huge.svg");
        let samples = vec![steady_run()[0]; SAMPLES_MAX + 1];
        let error = write_plot(&path, "huge", &samples).unwrap_err();
        assert!(matches!(error, PlotError::TooManySamples { .. }), "{error}");
        assert!(!path.exists());
    }

    #[test]
    fn extreme_values_do_not_panic() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("extreme.svg");
        let mut samples = steady_run();
        samples[3].connected = u64::MAX;
        samples[4].p50_ms = -1.0;
        samples[5].max_ms = 1e12;
        samples[6].p50_ms = 1e-9;
        write_plot(&path, "extreme", &samples).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_io_error() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("missing").join("run.svg");
        let error = write_plot(&path, "run", &steady_run()).unwrap_err();
        assert!(matches!(error, PlotError::Io { .. }), "{error}");
        assert!(error.to_string().contains("run.svg"), "{error}");
    }

    #[test]
    fn axis_labels_hide_float_noise() {
        assert_eq!(format_number(0.30000000000000004), "0.3");
        assert_eq!(format_number(0.01), "0.01");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(30.0), "30");
        assert_eq!(format_number(1200.0), "1200");
        assert_eq!(format_number(0.0), "0");
    }

    #[test]
    fn the_latency_axis_spans_whole_decades() {
        assert_eq!(decade_range_ms(&[]), (1.0, 10.0));
        assert_eq!(decade_range_ms(&[2.0, 40.0]), (1.0, 100.0));
        assert_eq!(decade_range_ms(&[1.0]), (1.0, 10.0));
        assert_eq!(decade_range_ms(&[0.25, 0.5]), (0.1, 1.0));
    }
}
