//! The SVG plots of the comparison: grouped bar charts drawn with plotters.
//!
//! plotters is built without its `ttf` feature (no system font libraries here): its SVG
//! backend then writes text as `<text>` elements that the viewer renders, and only estimates
//! text widths for layout. That is enough for bar charts whose label areas are sized by hand.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::results::{Measurement, Results};
use super::tables::{self, CLUSTER, REDIS, SINGLE, Workload, display_name};

/// Pixels of one chart panel.
const PANEL_WIDTH: u32 = 560;
const PANEL_HEIGHT: u32 = 360;
/// Share of a category's width its bars fill together.
const GROUP_WIDTH: f64 = 0.8;
/// Headroom above the tallest bar, for its value label and the legend.
const HEADROOM: f64 = 1.5;

/// Decades of a log axis kept free above the tallest bar, at least.
const LOG_HEADROOM_DECADES: f64 = 0.5;
/// Labelled lines of a linear y axis, about.
const Y_LABELS: usize = 10;

const FONT: &str = "sans-serif";
const TITLE_SIZE: u32 = 22;
const LABEL_SIZE: u32 = 15;
const VALUE_SIZE: u32 = 12;

/// One colour per system, the same in every plot; then one per extra series.
const REDIS_COLOR: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const SINGLE_COLOR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const CLUSTER_COLOR: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);

fn system_color(system: &str) -> RGBColor {
    match system {
        REDIS => REDIS_COLOR,
        SINGLE => SINGLE_COLOR,
        _ => CLUSTER_COLOR,
    }
}

/// A series of bars, one value per category; `None` is a failed run.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Bar colour.
    pub color: RGBColor,
    /// One value per category.
    pub values: Vec<Option<f64>>,
}

/// The y axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// From zero.
    Linear,
    /// Powers of ten, for values spanning orders of magnitude (latency percentiles).
    Log10,
}

/// One panel: categories along x, a group of bars per category, one bar per series.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// Panel title.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description, with its unit.
    pub y_label: String,
    /// Category names along x.
    pub categories: Vec<String>,
    /// The bars.
    pub series: Vec<Series>,
    /// The y axis.
    pub scale: Scale,
    /// Print each bar's value above it.
    pub value_labels: bool,
    /// The smallest and largest value the axis must show, when panels share a scale; `None`:
    /// this panel's own values.
    pub extent: Option<(f64, f64)>,
}

fn plot_error(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the plot: {e}")
}

/// `12345.6` as `12.3k`, `1234567` as `1.23M`, small values with 2 significant decimals.
fn short_number(v: f64) -> String {
    match v.abs() {
        a if a >= 1e6 => format!("{:.2}M", v / 1e6),
        a if a >= 1e4 => format!("{:.0}k", v / 1e3),
        a if a >= 1e3 => format!("{:.1}k", v / 1e3),
        a if a >= 10.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.1}"),
        0.0 => "0".to_string(),
        _ => format!("{v:.2}"),
    }
}

/// Units of the x axis per category: bars sit at fractions of a category, and an integer axis
/// lets the labels sit exactly at the categories' centres.
const CATEGORY_UNITS: i32 = 1000;

/// Draws one bar chart into `area`.
///
/// # Errors
/// The backend failed to draw.
pub fn draw_bars(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    chart: &BarChart,
) -> anyhow::Result<()> {
    let values: Vec<f64> = match chart.extent {
        Some((lo, hi)) => vec![lo, hi],
        None => chart
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .collect(),
    };
    let categories = chart.categories.len().max(1) as i32;
    let centres: Vec<i32> = (0..categories)
        .map(|i| i * CATEGORY_UNITS + CATEGORY_UNITS / 2)
        .collect();
    let x_range = (0..categories * CATEGORY_UNITS).with_key_points(centres);
    let names = chart.categories.clone();
    let x_formatter = move |v: &i32| {
        let i = v / CATEGORY_UNITS;
        (v % CATEGORY_UNITS == CATEGORY_UNITS / 2)
            .then(|| names.get(i as usize).cloned())
            .flatten()
            .unwrap_or_default()
    };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&chart.title, (FONT, TITLE_SIZE))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72);
    let label_style = (FONT, LABEL_SIZE);
    match chart.scale {
        Scale::Linear => {
            let max = values.iter().copied().fold(0.0, f64::max);
            let y_max = if max > 0.0 { max * HEADROOM } else { 1.0 };
            let mut ctx = builder
                .build_cartesian_2d(x_range, 0.0..y_max)
                .map_err(plot_error)?;
            ctx.configure_mesh()
                .disable_x_mesh()
                .x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .y_labels(Y_LABELS)
                .x_label_formatter(&x_formatter)
                .y_label_formatter(&|v| short_number(*v))
                .label_style(label_style)
                .axis_desc_style(label_style)
                .draw()
                .map_err(plot_error)?;
            draw_series(&mut ctx, chart, 0.0)
        }
        Scale::Log10 => {
            let positive = values.iter().copied().filter(|v| *v > 0.0);
            let lo = positive.clone().fold(f64::INFINITY, f64::min);
            let hi = positive.fold(f64::NEG_INFINITY, f64::max);
            // Whole decades, with room above the tallest bar for its label and the legend.
            let (lo, hi) = if lo.is_finite() {
                let lo = lo.log10().floor();
                (lo, (hi.log10() + LOG_HEADROOM_DECADES).ceil().max(lo + 1.0))
            } else {
                (-1.0, 1.0)
            };
            let (y_min, y_max) = (10f64.powf(lo), 10f64.powf(hi));
            let mut ctx = builder
                .build_cartesian_2d(x_range, (y_min..y_max).log_scale())
                .map_err(plot_error)?;
            ctx.configure_mesh()
                .disable_x_mesh()
                .x_desc(&chart.x_label)
                .y_desc(format!("{} (log scale)", chart.y_label))
                .x_label_formatter(&x_formatter)
                .y_label_formatter(&|v| short_number(*v))
                .label_style(label_style)
                .axis_desc_style(label_style)
                .draw()
                .map_err(plot_error)?;
            draw_series(&mut ctx, chart, y_min)
        }
    }
}

fn draw_series<'a, X, Y>(
    ctx: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    chart: &BarChart,
    y_base: f64,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = i32>,
    Y: Ranged<ValueType = f64>,
{
    let bars = chart.series.len().max(1) as f64;
    let bar_units = GROUP_WIDTH * f64::from(CATEGORY_UNITS) / bars;
    for (k, series) in chart.series.iter().enumerate() {
        // The left edge of this series' bar in category i, and a point within the bar.
        let at = move |i: usize, fraction: f64| {
            let group_left = (i as f64 + (1.0 - GROUP_WIDTH) / 2.0) * f64::from(CATEGORY_UNITS);
            (group_left + (k as f64 + fraction) * bar_units).round() as i32
        };
        let color = series.color;
        let drawn = series.values.iter().enumerate().filter_map(|(i, v)| {
            let top = (*v)?.max(y_base);
            Some(Rectangle::new(
                [(at(i, 0.06), y_base), (at(i, 0.94), top)],
                color.filled(),
            ))
        });
        ctx.draw_series(drawn)
            .map_err(plot_error)?
            .label(&series.name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        let notes = series.values.iter().enumerate().filter_map(|(i, v)| {
            let (text, y) = match v {
                None => ("failed".to_string(), y_base),
                Some(v) if chart.value_labels => (short_number(*v), v.max(y_base)),
                Some(_) => return None,
            };
            let style = TextStyle::from((FONT, VALUE_SIZE).into_font())
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            Some(Text::new(text, (at(i, 0.5), y), style))
        });
        ctx.draw_series(notes).map_err(plot_error)?;
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, LABEL_SIZE))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}

/// Panels side by side (`columns`) and in rows, into one SVG document.
///
/// # Errors
/// The backend failed to draw.
pub fn render(charts: &[BarChart], columns: usize) -> anyhow::Result<String> {
    let columns = columns.clamp(1, charts.len().max(1));
    let rows = charts.len().div_ceil(columns).max(1);
    let mut svg = String::new();
    {
        let size = (PANEL_WIDTH * columns as u32, PANEL_HEIGHT * rows as u32);
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        for (area, chart) in root.split_evenly((rows, columns)).iter().zip(charts) {
            draw_bars(area, chart)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

fn series_for(
    results: &Results,
    table: &str,
    system: &str,
    workloads: &[Workload],
    value: impl Fn(&Measurement) -> Option<f64>,
) -> Series {
    Series {
        name: display_name(system).to_string(),
        color: system_color(system),
        values: workloads
            .iter()
            .map(|w| {
                tables::lookup(results, table, system, w)?
                    .measured()
                    .and_then(&value)
            })
            .collect(),
    }
}

/// Plot (a): throughput of redis-server and the single node for each goal workload, one
/// panel per pipeline depth (their scales differ several-fold).
///
/// # Errors
/// The backend failed to draw.
pub fn throughput_plot(results: &Results) -> anyhow::Result<String> {
    let all = tables::workloads(results, "goals");
    let mut pipelines: Vec<u32> = all.iter().map(|w| w.pipeline).collect();
    pipelines.sort_unstable();
    pipelines.dedup();
    let charts: Vec<BarChart> = pipelines
        .iter()
        .map(|&p| {
            let ws: Vec<Workload> = all.iter().filter(|w| w.pipeline == p).cloned().collect();
            BarChart {
                title: format!("Throughput, pipeline {p}"),
                x_label: "workload (SET:GET ratio)".into(),
                y_label: "requests per second".into(),
                categories: ws.iter().map(|w| w.op.clone()).collect(),
                series: [REDIS, SINGLE]
                    .iter()
                    .map(|s| series_for(results, "goals", s, &ws, |m| Some(m.throughput)))
                    .collect(),
                scale: Scale::Linear,
                value_labels: true,
                extent: None,
            }
        })
        .collect();
    render(&charts, 2)
}

/// Plot (b): latency percentiles of redis-server and the single node, a panel per goal
/// workload, on one shared log scale.
///
/// # Errors
/// The backend failed to draw.
pub fn latency_plot(results: &Results) -> anyhow::Result<String> {
    type Pick = fn(&Measurement) -> Option<f64>;
    let percentiles: [(&str, Pick); 4] = [
        ("p50", |m| m.latency.p50),
        ("p90", |m| m.latency.p90),
        ("p99", |m| m.latency.p99),
        ("p99.9", |m| m.latency.p99_9),
    ];
    let workloads = tables::workloads(results, "goals");
    let runs: Vec<&Measurement> = workloads
        .iter()
        .flat_map(|w| [REDIS, SINGLE].map(|s| tables::lookup(results, "goals", s, w)))
        .flatten()
        .filter_map(|r| r.measured())
        .collect();
    let all: Vec<f64> = runs
        .iter()
        .flat_map(|m| percentiles.iter().filter_map(|(_, pick)| pick(m)))
        .filter(|v| *v > 0.0)
        .collect();
    let extent = (!all.is_empty()).then(|| {
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        (lo, all.iter().copied().fold(lo, f64::max))
    });
    let charts: Vec<BarChart> = workloads
        .iter()
        .map(|w| BarChart {
            title: format!("Latency, SET:GET {} pipeline {}", w.op, w.pipeline),
            x_label: "percentile".into(),
            y_label: "latency, ms".into(),
            categories: percentiles.iter().map(|(n, _)| n.to_string()).collect(),
            series: [REDIS, SINGLE]
                .iter()
                .map(|s| {
                    let run = tables::lookup(results, "goals", s, w).and_then(|r| r.measured());
                    Series {
                        name: display_name(s).to_string(),
                        color: system_color(s),
                        values: percentiles
                            .iter()
                            .map(|(_, pick)| run.and_then(pick))
                            .collect(),
                    }
                })
                .collect(),
            scale: Scale::Log10,
            value_labels: true,
            extent,
        })
        .collect();
    render(&charts, 2)
}

/// Plot (c): the cluster against the single node by level: throughput, and the servers' CPU
/// seconds per 100,000 requests.
///
/// # Errors
/// The backend failed to draw.
pub fn cluster_plot(results: &Results) -> anyhow::Result<String> {
    let ws = tables::workloads(results, "cluster");
    let categories: Vec<String> = ws.iter().map(Workload::short_name).collect();
    let charts = [
        BarChart {
            title: "Throughput by consistency level".into(),
            x_label: "operation and level (pipeline 1)".into(),
            y_label: "requests per second".into(),
            categories: categories.clone(),
            series: [SINGLE, CLUSTER]
                .iter()
                .map(|s| series_for(results, "cluster", s, &ws, |m| Some(m.throughput)))
                .collect(),
            scale: Scale::Linear,
            value_labels: true,
            extent: None,
        },
        BarChart {
            title: "Server CPU per 100,000 requests".into(),
            x_label: "operation and level (pipeline 1)".into(),
            y_label: "CPU seconds (all server processes)".into(),
            categories,
            series: [SINGLE, CLUSTER]
                .iter()
                .map(|s| series_for(results, "cluster", s, &ws, Measurement::server_cpu_per_100k))
                .collect(),
            scale: Scale::Linear,
            value_labels: true,
            extent: None,
        },
    ];
    render(&charts, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tables::tests::{goals_results, measured_run, planned};

    #[test]
    fn the_throughput_plot_names_both_systems_and_marks_the_failed_run() {
        let svg = throughput_plot(&goals_results()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in [
            "redis-server",
            "single node",
            "Throughput, pipeline 1",
            "Throughput, pipeline 16",
            "requests per second",
            "1:10",
            "110k",
            "failed",
        ] {
            assert!(svg.contains(text), "no {text:?} in the SVG");
        }
    }

    #[test]
    fn the_latency_plot_has_a_panel_per_workload_and_every_percentile() {
        let svg = latency_plot(&goals_results()).unwrap();
        for text in [
            "p50",
            "p90",
            "p99.9",
            "latency, ms (log scale)",
            "SET:GET 1:10 pipeline 16",
        ] {
            assert!(svg.contains(text), "no {text:?} in the SVG");
        }
    }

    #[test]
    fn the_cluster_plot_shows_throughput_and_cpu_by_level() {
        let c = |s, op, level| planned("cluster", s, op, 1, Some(level));
        let results = Results {
            runs: vec![
                measured_run(c(SINGLE, "SET", "QUORUM"), 80_000.0, 1.0, 1.0),
                measured_run(c(CLUSTER, "SET", "QUORUM"), 45_000.0, 2.0, 2.9),
            ],
            ..Results::default()
        };
        let svg = cluster_plot(&results).unwrap();
        for text in [
            "3-node cluster",
            "single node",
            "SET QUORUM",
            "CPU seconds",
            "45k",
            "2.9",
        ] {
            assert!(svg.contains(text), "no {text:?} in the SVG");
        }
    }

    #[test]
    fn plots_of_empty_results_still_render() {
        let empty = Results::default();
        assert!(throughput_plot(&empty).unwrap().contains("<svg"));
        assert!(latency_plot(&empty).unwrap().contains("<svg"));
        assert!(cluster_plot(&empty).unwrap().contains("<svg"));
    }

    #[test]
    fn short_numbers_keep_two_or_three_significant_digits() {
        assert_eq!(short_number(1_234_567.0), "1.23M");
        assert_eq!(short_number(78_201.0), "78k");
        assert_eq!(short_number(2_345.0), "2.3k");
        assert_eq!(short_number(2.94), "2.9");
        assert_eq!(short_number(0.346), "0.35");
    }
}
