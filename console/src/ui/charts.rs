//! Charts shared by the screens: ranked bars with durations, the day
//! timeline, active/idle trends and health lines, each with a legend and
//! units.

use egui::{Color32, Rect, Sense, Stroke, StrokeKind, Vec2};
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints};

use super::{empty_state, CRITICAL_COLOR, MUTED_COLOR, OK_COLOR, WARN_COLOR};
use console_engine::analytics::{UsageSummary, HOUR_MS};
use console_engine::i18n::{
    category_label, day_label, duration_label, percent_label, time_label, tr, Lang,
};
use console_engine::model::{DayClock, Presence};
use console_engine::views::{HealthCharts, Timeline, Trend};

const PALETTE: [Color32; 10] = [
    Color32::from_rgb(0x4e, 0x79, 0xa7),
    Color32::from_rgb(0xf2, 0x8e, 0x2b),
    Color32::from_rgb(0x59, 0xa1, 0x4f),
    Color32::from_rgb(0xb0, 0x7a, 0xa1),
    Color32::from_rgb(0xed, 0xc9, 0x48),
    Color32::from_rgb(0x76, 0xb7, 0xb2),
    Color32::from_rgb(0xff, 0x9d, 0xa7),
    Color32::from_rgb(0x9c, 0x75, 0x5f),
    Color32::from_rgb(0xe1, 0x57, 0x59),
    Color32::from_rgb(0xba, 0xb0, 0xac),
];

/// A stable colour per category name.
pub fn category_color(category: &str) -> Color32 {
    let hash = category.bytes().fold(0_usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    });
    PALETTE[hash % PALETTE.len()]
}

pub fn presence_color(presence: Presence) -> Color32 {
    match presence {
        Presence::Active => OK_COLOR,
        Presence::Idle => WARN_COLOR,
        Presence::Locked => MUTED_COLOR,
    }
}

pub fn presence_key(presence: Presence) -> &'static str {
    match presence {
        Presence::Active => "presence.active",
        Presence::Idle => "presence.idle",
        Presence::Locked => "presence.locked",
    }
}

/// Top apps and categories side by side, or a note when nothing was used;
/// `id_prefix` keeps the charts' ids apart between screens.
pub fn usage_columns_ui(ui: &mut egui::Ui, lang: Lang, summary: &UsageSummary, id_prefix: &str) {
    if summary.top_apps.is_empty() {
        empty_state(ui, tr(lang, "no_usage"));
        return;
    }
    ui.columns(2, |columns| {
        columns[0].strong(tr(lang, "top_apps"));
        ranked_bars(
            &mut columns[0],
            lang,
            &format!("{id_prefix}_top_apps"),
            &summary.top_apps,
            10,
            |app| app,
            |_| OK_COLOR,
        );
        columns[1].strong(tr(lang, "categories"));
        ranked_bars(
            &mut columns[1],
            lang,
            &format!("{id_prefix}_categories"),
            &summary.by_category,
            10,
            |category| category_label(lang, category),
            category_color,
        );
    });
}

/// Ranked bars: name (as `label_of` shows it), a bar as long as its share
/// of the largest, the duration and the share of the total, in `lang`.
fn ranked_bars(
    ui: &mut egui::Ui,
    lang: Lang,
    id_salt: &str,
    items: &[(String, i64)],
    limit: usize,
    label_of: impl Fn(&str) -> &str,
    color_of: impl Fn(&str) -> Color32,
) {
    let total_ms: i64 = items.iter().map(|(_, ms)| ms).sum();
    let largest_ms = items.iter().map(|(_, ms)| *ms).max().unwrap_or(0).max(1);
    // Room left for the bar once the name, duration and share are drawn,
    // so a narrow column never draws text over text.
    let width = (ui.available_width() - 260.0).clamp(40.0, 220.0);
    egui::Grid::new(id_salt)
        .num_columns(4)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            for (name, ms) in items.iter().take(limit) {
                ui.label(label_of(name));
                let (rect, _) = ui.allocate_exact_size(Vec2::new(width, 14.0), Sense::hover());
                let filled = Rect::from_min_size(
                    rect.min,
                    Vec2::new(
                        width * (*ms as f32 / largest_ms as f32).clamp(0.0, 1.0),
                        14.0,
                    ),
                );
                ui.painter()
                    .rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
                ui.painter().rect_filled(filled, 2.0, color_of(name));
                ui.label(duration_label(lang, *ms));
                let pct = if total_ms > 0 {
                    *ms as f64 * 100.0 / total_ms as f64
                } else {
                    0.0
                };
                ui.weak(percent_label(lang, pct, 0));
                ui.end_row();
            }
        });
}

/// Today's timeline: an app lane coloured by category, a presence lane
/// and session marks, with hour ticks and a legend.
pub fn timeline(ui: &mut egui::Ui, lang: Lang, clock: &DayClock, day: &Timeline) {
    let lane_height = 18.0;
    let label_width = 90.0;
    let width = (ui.available_width() - label_width).max(200.0);
    let (rect, response) = ui.allocate_exact_size(
        Vec2::new(label_width + width, lane_height * 3.0 + 30.0),
        Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    // The whole local day is drawn (23 or 25 hours when the clocks
    // change), so the x scale does not change during it.
    let day_number = clock.day_of(day.from_ms);
    let day_end_ms = clock.day_start_ms(day_number.saturating_add(1));
    let day_ms = (day_end_ms - day.from_ms).max(1) as f32;
    let x_of = |at_ms: i64| {
        rect.left() + label_width + width * ((at_ms - day.from_ms) as f32 / day_ms).clamp(0.0, 1.0)
    };
    let text_color = ui.visuals().text_color();
    let font = egui::FontId::proportional(12.0);
    let lanes = [
        tr(lang, "timeline.apps"),
        tr(lang, "timeline.presence"),
        tr(lang, "timeline.sessions"),
    ];
    for (index, name) in lanes.iter().enumerate() {
        let y = rect.top() + index as f32 * (lane_height + 4.0);
        painter.text(
            egui::pos2(rect.left(), y + lane_height / 2.0),
            egui::Align2::LEFT_CENTER,
            *name,
            font.clone(),
            text_color,
        );
        painter.rect_filled(
            Rect::from_min_size(
                egui::pos2(rect.left() + label_width, y),
                Vec2::new(width, lane_height),
            ),
            2.0,
            ui.visuals().faint_bg_color,
        );
    }
    let lane = |index: usize, from_ms: i64, to_ms: i64| {
        let y = rect.top() + index as f32 * (lane_height + 4.0);
        Rect::from_min_max(
            egui::pos2(x_of(from_ms), y),
            egui::pos2(x_of(to_ms).max(x_of(from_ms) + 1.0), y + lane_height),
        )
    };
    let mut hovered = None;
    for (span, category) in &day.apps {
        let bar = lane(0, span.start_ms, span.end_ms);
        painter.rect_filled(bar, 0.0, category_color(category));
        if response.hovered() && response.hover_pos().is_some_and(|pos| bar.contains(pos)) {
            hovered = Some(format!(
                "{} ({}) {}–{}, {}",
                span.label,
                category_label(lang, category),
                time_label(clock, span.start_ms),
                time_label(clock, span.end_ms),
                duration_label(lang, span.end_ms.saturating_sub(span.start_ms))
            ));
        }
    }
    for span in &day.presence {
        painter.rect_filled(
            lane(1, span.start_ms, span.end_ms),
            0.0,
            presence_color(span.presence),
        );
    }
    for mark in &day.sessions {
        let x = x_of(mark.at_ms);
        let y = rect.top() + 2.0 * (lane_height + 4.0);
        painter.line_segment(
            [egui::pos2(x, y), egui::pos2(x, y + lane_height)],
            Stroke::new(2.0, text_color),
        );
    }
    let axis_y = rect.top() + 3.0 * (lane_height + 4.0) + 2.0;
    for hour in (0..=24).step_by(3) {
        // Ticks where the wall clock reads them.
        let at_ms = if hour == 24 {
            day_end_ms
        } else {
            clock.local_instant_ms(day_number, i64::from(hour) * HOUR_MS)
        };
        let x = x_of(at_ms);
        painter.line_segment(
            [egui::pos2(x, axis_y), egui::pos2(x, axis_y + 4.0)],
            Stroke::new(1.0, MUTED_COLOR),
        );
        let align = if hour == 24 {
            egui::Align2::RIGHT_TOP
        } else {
            egui::Align2::CENTER_TOP
        };
        painter.text(
            egui::pos2(x, axis_y + 5.0),
            align,
            format!("{hour:02}:00"),
            font.clone(),
            MUTED_COLOR,
        );
    }
    let now_x = x_of(day.to_ms);
    painter.line_segment(
        [egui::pos2(now_x, rect.top()), egui::pos2(now_x, axis_y)],
        Stroke::new(1.0, CRITICAL_COLOR),
    );
    if let Some(text) = hovered {
        response.on_hover_text(text);
    }
    // Legend: categories present today, then presence colours.
    ui.horizontal_wrapped(|ui| {
        let mut categories: Vec<&str> = day
            .apps
            .iter()
            .map(|(_, category)| category.as_str())
            .collect();
        categories.sort_unstable();
        categories.dedup();
        for category in categories {
            legend_swatch(ui, category_color(category), category_label(lang, category));
        }
        ui.separator();
        for presence in [Presence::Active, Presence::Idle, Presence::Locked] {
            legend_swatch(
                ui,
                presence_color(presence),
                tr(lang, presence_key(presence)),
            );
        }
    });
}

/// A coloured square and its name.
pub fn legend_swatch(ui: &mut egui::Ui, color: Color32, name: &str) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
    ui.painter()
        .rect(rect, 1.0, color, Stroke::NONE, StrokeKind::Inside);
    ui.label(name);
}

/// Active and idle hours per bucket as stacked bars.
pub fn trend_chart(ui: &mut egui::Ui, id_salt: &str, lang: Lang, clock: &DayClock, trend: &Trend) {
    let hours = |ms: i64| ms as f64 / HOUR_MS as f64;
    let daily = trend.bucket_ms >= console_engine::model::DAY_MS;
    let width = if daily { 0.7 } else { 0.8 };
    let active: Vec<Bar> = trend
        .buckets
        .iter()
        .enumerate()
        .map(|(index, (_, active_ms, _))| Bar::new(index as f64, hours(*active_ms)).width(width))
        .collect();
    let idle: Vec<Bar> = trend
        .buckets
        .iter()
        .enumerate()
        .map(|(index, (_, _, idle_ms))| Bar::new(index as f64, hours(*idle_ms)).width(width))
        .collect();
    let active = BarChart::new(tr(lang, "trend.active"), active).color(OK_COLOR);
    let idle = BarChart::new(tr(lang, "trend.idle"), idle)
        .color(WARN_COLOR)
        .stack_on(&[&active]);
    let starts: Vec<i64> = trend
        .buckets
        .iter()
        .map(|(start_ms, _, _)| *start_ms)
        .collect();
    let x_label = tr(lang, if daily { "trend.day" } else { "trend.hour" });
    Plot::new(id_salt)
        .height(200.0)
        .legend(Legend::default())
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .x_axis_label(x_label)
        .y_axis_label(tr(lang, "unit.hours"))
        .include_y(0.0)
        .x_axis_formatter(move |mark, _| {
            let index = mark.value.round();
            if (mark.value - index).abs() > 0.01 || index < 0.0 {
                return String::new();
            }
            match starts.get(index as usize) {
                Some(start_ms) if daily => day_label(lang, clock.day_of(*start_ms)),
                Some(start_ms) => time_label(clock, *start_ms),
                None => String::new(),
            }
        })
        .show(ui, |plot| {
            plot.bar_chart(active);
            plot.bar_chart(idle);
        });
}

/// CPU, memory and disk percent and the health score (0–100) over time,
/// already decimated.
pub fn health_chart(
    ui: &mut egui::Ui,
    id_salt: &str,
    lang: Lang,
    clock: &DayClock,
    charts: &HealthCharts,
) {
    let origin_ms = charts.origin_ms;
    let series: [(&[[f64; 2]], &str, Color32); 4] = [
        (
            &charts.cpu_pct,
            "series.cpu",
            Color32::from_rgb(0x4e, 0x79, 0xa7),
        ),
        (
            &charts.mem_pct,
            "series.mem",
            Color32::from_rgb(0xb0, 0x7a, 0xa1),
        ),
        (
            &charts.disk_pct,
            "series.disk",
            Color32::from_rgb(0xf2, 0x8e, 0x2b),
        ),
        (&charts.score, "series.score", OK_COLOR),
    ];
    Plot::new(id_salt)
        .height(220.0)
        .legend(Legend::default())
        .include_y(0.0)
        .include_y(100.0)
        .x_axis_label(tr(lang, "axis.date"))
        .x_axis_formatter(move |mark, range| {
            let at_ms = origin_ms + (mark.value * HOUR_MS as f64) as i64;
            if range.end() - range.start() > 48.0 {
                day_label(lang, clock.day_of(at_ms))
            } else {
                console_engine::i18n::date_time_label(lang, clock, at_ms)
            }
        })
        .y_axis_label(tr(lang, "unit.percent"))
        .show(ui, |plot| {
            for (points, key, color) in series {
                plot.line(Line::new(tr(lang, key), PlotPoints::from(points.to_vec())).color(color));
            }
        });
}
