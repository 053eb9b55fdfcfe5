//! The forwarding plot: a grouped bar chart, one group per frame size, one
//! bar per mode at its median rate, with a min–max whisker.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Error;
use crate::modes::Mode;
use crate::report::Summary;

/// The font the plot's text is drawn with (Debian: fonts-dejavu-core).
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn register_font() -> Result<(), Error> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = std::fs::read(FONT).map_err(|e| {
                format!("reading the font {FONT}: {e} (install fonts-dejavu-core: scripts/install-deps.sh)")
            })?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{FONT} is not a usable font"))
        })
        .clone()
        .map_err(Error::Plot)
}

fn color(mode: Mode) -> RGBColor {
    match mode {
        Mode::Agent => RGBColor(31, 119, 180),
        Mode::Bare => RGBColor(127, 127, 127),
        Mode::Linux => RGBColor(255, 127, 14),
        Mode::Ovs => RGBColor(44, 160, 44),
        Mode::OverlayVxlan => RGBColor(148, 103, 189),
        Mode::LinuxVxlan => RGBColor(214, 39, 40),
        Mode::OverlayMpls => RGBColor(23, 190, 207),
        Mode::AgentTier => RGBColor(0, 63, 92),
        Mode::AgentTierObserved => RGBColor(88, 80, 141),
        Mode::AgentTierPoliced => RGBColor(255, 152, 150),
        Mode::Redirect => RGBColor(188, 189, 34),
        Mode::OverlayVxlanTier => RGBColor(227, 119, 194),
        Mode::OverlayMplsTier => RGBColor(140, 86, 75),
        Mode::Snat => RGBColor(0, 128, 128),
        Mode::Masquerade => RGBColor(255, 187, 120),
    }
}

fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Plot(e.to_string())
}

/// Draws `summaries` into the PNG `path`.
pub fn forwarding(
    path: &Path,
    summaries: &[Summary],
    sizes: &[usize],
    modes: &[Mode],
    subtitle: &str,
) -> Result<(), Error> {
    register_font()?;
    let root = BitMapBackend::new(path, (1200, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (title, body) = root.split_vertically(60);
    title
        .draw(&Text::new(
            "Forwarding rate, VLAN 100 -> VMI -> VRF -> VLAN 200; (e)-(g), (j), (k) across two nodes (bar: median, whisker: min-max)",
            (20, 10),
            ("sans-serif", 22).into_font(),
        ))
        .map_err(plot_err)?;
    title
        .draw(&Text::new(
            subtitle.to_owned(),
            (20, 38),
            ("sans-serif", 15).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(plot_err)?;
    let top = summaries
        .iter()
        .map(|s| s.mpps.max)
        .fold(0.0, f64::max)
        .max(0.1)
        // Room above the tallest whisker for the legend (upper right), one
        // line per mode.
        * (1.1 + 0.1 * modes.len() as f64);
    let groups = sizes.len().max(1);
    let mut chart = ChartBuilder::on(&body)
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..groups as f64, 0f64..top)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups + 1)
        .x_label_formatter(&|_| String::new())
        .y_desc("million frames per second")
        .y_label_formatter(&|y| format!("{y:.1}"))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(plot_err)?;
    let width = 0.8 / modes.len().max(1) as f64;
    let value_style = ("sans-serif", 14)
        .into_font()
        .into_text_style(&body)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    for (i, &mode) in modes.iter().enumerate() {
        let bars: Vec<(f64, &Summary)> = summaries
            .iter()
            .filter(|s| s.mode == mode)
            .filter_map(|s| {
                let g = sizes.iter().position(|&z| z == s.size)?;
                Some((g as f64 + 0.1 + i as f64 * width, s))
            })
            .collect();
        let fill = color(mode);
        chart
            .draw_series(bars.iter().map(|(x, s)| {
                Rectangle::new(
                    [(*x, 0.0), (x + width * 0.88, s.mpps.median)],
                    fill.filled(),
                )
            }))
            .map_err(plot_err)?
            .label(mode.label())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], fill.filled()));
        for (x, s) in &bars {
            let c = x + width * 0.44;
            let cap = width * 0.15;
            chart
                .draw_series([
                    PathElement::new(
                        vec![(c, s.mpps.min), (c, s.mpps.max)],
                        BLACK.stroke_width(2),
                    ),
                    PathElement::new(vec![(c - cap, s.mpps.min), (c + cap, s.mpps.min)], BLACK),
                    PathElement::new(vec![(c - cap, s.mpps.max), (c + cap, s.mpps.max)], BLACK),
                ])
                .map_err(plot_err)?;
            chart
                .draw_series([Text::new(
                    format!("{:.2}", s.mpps.median),
                    (c, s.mpps.max + top * 0.015),
                    value_style.clone(),
                )])
                .map_err(plot_err)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    let group_style = ("sans-serif", 17)
        .into_font()
        .into_text_style(&body)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (g, size) in sizes.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        body.draw(&Text::new(
            format!("{size}-byte frames"),
            (
                px - body.get_base_pixel().0,
                py - body.get_base_pixel().1 + 12,
            ),
            group_style.clone(),
        ))
        .map_err(plot_err)?;
    }
    root.present().map_err(plot_err)?;
    Ok(())
}
