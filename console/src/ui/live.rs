//! Live: thumbnails of the online workstations, one of them large with its
//! capture time, name and a LIVE badge drawn over the image, Stop, and a
//! screenshot on demand. Admin consoles only; the manager is told that the
//! employee sees a notice while they watch.

use certs::Role;
use egui::{Align, Color32, Layout, RichText, Sense, TextureHandle, UiBuilder, Vec2};

use super::{empty_state, CRITICAL_COLOR, MUTED_COLOR, WARN_COLOR};
use crate::app::{fleet_rows, grid_agents, Action, LiveView, UiState};
use console_engine::i18n::{duration_label, time_seconds_label, tr, trf, Lang};
use console_engine::live::{AgentLive, LiveState};
use console_engine::model::AgentId;
use console_engine::views::{FleetRow, Status};

/// The box of one thumbnail at its largest: the size the grid captures at,
/// so images are drawn pixel for pixel.
const THUMBNAIL: Vec2 = Vec2::new(320.0, 180.0);
/// Thumbnails shrink down to this width to fit one more column.
const MIN_THUMBNAIL_WIDTH: f32 = 256.0;
/// Space between two thumbnails, across and down.
const GRID_GAP: f32 = 16.0;
/// The box of the large view before its first image.
const SINGLE_PLACEHOLDER: Vec2 = Vec2::new(1280.0, 720.0);
/// Height of the bar drawn over the top of the large image.
const OVERLAY_BAR_HEIGHT: f32 = 30.0;
const PLACEHOLDER_COLOR: Color32 = Color32::from_rgb(0x30, 0x30, 0x34);
const LIVE_COLOR: Color32 = Color32::from_rgb(0xd0, 0x20, 0x20);

pub fn live_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "live.title"));
    match state.role {
        Some(Role::Admin) => {}
        Some(Role::Viewer) => {
            empty_state(ui, tr(lang, "live.viewer"));
            return;
        }
        None => {
            empty_state(ui, tr(lang, "live.no_identity"));
            return;
        }
    }
    ui.colored_label(WARN_COLOR, tr(lang, "live.notice"));
    ui.add_space(6.0);
    match state.live.view {
        LiveView::Off => {
            ui.label(tr(lang, "live.stopped"));
            if ui.button(tr(lang, "live.resume")).clicked() {
                actions.push(Action::LiveGrid);
            }
        }
        LiveView::Grid => grid_ui(ui, state, actions),
        LiveView::Single(agent) => single_ui(ui, state, agent, actions),
    }
}

fn agent_name(state: &UiState, agent: AgentId) -> String {
    fleet_rows(state)
        .iter()
        .find(|row| row.agent == agent)
        .map_or_else(|| agent.to_string(), |row| row.name.clone())
}

fn grid_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let watched = grid_agents(state);
    ui.horizontal(|ui| {
        if ui.button(tr(lang, "live.stop")).clicked() {
            actions.push(Action::LiveStop);
        }
        if !watched.is_empty() {
            ui.label(tr(lang, "live.grid.hint"));
        }
    });
    if watched.is_empty() {
        empty_state(ui, tr(lang, "live.none_online"));
        return;
    }
    // Online workstations past the grid's limit: named below it, each
    // one click from its large view.
    let others: Vec<&FleetRow> = fleet_rows(state)
        .iter()
        .filter(|row| row.status == Status::Online && !watched.contains(&row.agent))
        .collect();
    if !others.is_empty() {
        let count = watched.len().to_string();
        ui.weak(trf(lang, "live.more", &[("count", &count)]));
    }
    ui.add_space(6.0);
    egui::ScrollArea::vertical()
        .id_salt("live_grid")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.spacing_mut().item_spacing = Vec2::splat(GRID_GAP);
            let frame = egui::Frame::group(ui.style());
            let grid = GridLayout::fit(ui.available_width(), frame.total_margin().sum().x);
            for row in watched.chunks(grid.columns) {
                ui.horizontal(|ui| {
                    for &agent in row {
                        card_ui(ui, state, agent, frame, grid.thumbnail, actions);
                    }
                });
            }
            if !others.is_empty() {
                ui.label(tr(lang, "live.others"));
                ui.horizontal_wrapped(|ui| {
                    ui.spacing_mut().item_spacing = Vec2::splat(8.0);
                    for row in others {
                        if ui.button(&row.name).clicked() {
                            actions.push(Action::LiveSingle(row.agent));
                        }
                    }
                });
            }
        });
}

/// How the thumbnails are laid out in the width there is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GridLayout {
    /// Thumbnails per row, at least one.
    columns: usize,
    /// The image box of each thumbnail (its frame comes around it).
    thumbnail: Vec2,
}

impl GridLayout {
    /// As many columns as fit in `width` with thumbnails at least
    /// `MIN_THUMBNAIL_WIDTH` wide, each framed with `margin` across and
    /// `GRID_GAP` apart, at least one; the thumbnails then share the row
    /// (whole points, at most `THUMBNAIL`), aspect kept.
    fn fit(width: f32, margin: f32) -> GridLayout {
        let narrowest = MIN_THUMBNAIL_WIDTH + margin;
        let columns = ((width + GRID_GAP) / (narrowest + GRID_GAP))
            .floor()
            .max(1.0);
        let image_width = ((width + GRID_GAP) / columns - GRID_GAP - margin)
            .floor()
            .clamp(0.0, THUMBNAIL.x);
        GridLayout {
            // A count of whole thumbnails: small, positive, integral.
            columns: columns as usize,
            thumbnail: THUMBNAIL * (image_width / THUMBNAIL.x),
        }
    }
}

/// One framed thumbnail (`size`) with the agent's name (a button, cut to
/// the width left by the capture time and state) below it.
fn card_ui(
    ui: &mut egui::Ui,
    state: &UiState,
    agent: AgentId,
    frame: egui::Frame,
    size: Vec2,
    actions: &mut Vec<Action>,
) {
    let lang = state.lang;
    let entry = state.live.board.get(agent);
    let texture = state
        .live
        .textures
        .get(&agent)
        .map(|(_, texture)| &texture.0);
    let name = agent_name(state, agent);
    frame.show(ui, |ui| {
        ui.set_width(size.x);
        ui.vertical(|ui| {
            let (rect, response) = ui.allocate_exact_size(size, Sense::click());
            let thumbnail_label = trf(lang, "live.thumbnail", &[("name", &name)]);
            response.widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::Button, true, &thumbnail_label)
            });
            paint_frame(ui, rect, texture, entry, lang);
            let row = Vec2::new(size.x, ui.spacing().interact_size.y);
            let clicked = ui
                .allocate_ui_with_layout(row, Layout::right_to_left(Align::Center), |ui| {
                    if let Some(entry) = entry {
                        state_chip(ui, lang, entry, state.now_ms);
                        if let Some(frame) = &entry.frame {
                            ui.label(time_seconds_label(&state.clock, frame.at_ms));
                        }
                    }
                    ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                        let button = egui::Button::new(RichText::new(&name).strong()).truncate();
                        ui.add(button).clicked()
                    })
                    .inner
                })
                .inner;
            if clicked || response.clicked() {
                actions.push(Action::LiveSingle(agent));
            }
        });
    });
}

/// The image fitted (aspect kept, centred) in `rect`, or a placeholder.
fn paint_frame(
    ui: &egui::Ui,
    rect: egui::Rect,
    texture: Option<&TextureHandle>,
    entry: Option<&AgentLive>,
    lang: Lang,
) {
    ui.painter().rect_filled(rect, 4.0, PLACEHOLDER_COLOR);
    match texture {
        Some(texture) => {
            let fitted = fit(texture.size_vec2(), rect.size());
            let image_rect = egui::Rect::from_center_size(rect.center(), fitted);
            egui::Image::from_texture(texture).paint_at(ui, image_rect);
        }
        None => {
            let (title, reason) = match entry.map(|entry| &entry.state) {
                Some(LiveState::Refused { reason }) => {
                    (tr(lang, "live.refused.short"), reason.as_str())
                }
                Some(LiveState::Lost { reason }) => (tr(lang, "live.lost.short"), reason.as_str()),
                _ => (tr(lang, "live.waiting"), ""),
            };
            paint_centred_texts(ui, rect, title, reason);
        }
    }
}

/// A title and a smaller explanation, wrapped and centred in `rect`.
fn paint_centred_texts(ui: &egui::Ui, rect: egui::Rect, title: &str, detail: &str) {
    let painter = ui.painter();
    let wrap_width = rect.width() - 24.0;
    let title = painter.layout(
        title.to_owned(),
        egui::FontId::proportional(15.0),
        Color32::from_gray(220),
        wrap_width,
    );
    let detail = painter.layout(
        detail.to_owned(),
        egui::FontId::proportional(12.0),
        Color32::from_gray(160),
        wrap_width,
    );
    let height = title.size().y + 4.0 + detail.size().y;
    let top = rect.center().y - height / 2.0;
    let title_pos = egui::pos2(rect.center().x - title.size().x / 2.0, top);
    let detail_pos = egui::pos2(
        rect.center().x - detail.size().x / 2.0,
        top + title.size().y + 4.0,
    );
    painter.galley(title_pos, title, Color32::WHITE);
    painter.galley(detail_pos, detail, Color32::WHITE);
}

/// `size` scaled to fit in `bounds`, aspect kept, never enlarged more than
/// twice.
fn fit(size: Vec2, bounds: Vec2) -> Vec2 {
    if size.x <= 0.0 || size.y <= 0.0 {
        return bounds;
    }
    let scale = (bounds.x / size.x).min(bounds.y / size.y).min(2.0);
    size * scale
}

/// The message key and colour of a watch's state in one word (the
/// overlay's badge: LIVE in red only while frames come in time).
fn state_word(entry: &AgentLive, now_ms: i64) -> (&'static str, Color32) {
    match &entry.state {
        _ if entry.is_stale(now_ms) => ("live.stale.short", WARN_COLOR),
        LiveState::Connecting => ("live.connecting", MUTED_COLOR),
        LiveState::Live { .. } | LiveState::Unchanged { .. } => ("live.badge", LIVE_COLOR),
        LiveState::Lost { .. } => ("live.lost.short", WARN_COLOR),
        LiveState::Refused { .. } => ("live.refused.short", CRITICAL_COLOR),
    }
}

/// A short coloured word for the state of a thumbnail.
fn state_chip(ui: &mut egui::Ui, lang: Lang, entry: &AgentLive, now_ms: i64) {
    let (key, color) = match &entry.state {
        LiveState::Unchanged { .. } if !entry.is_stale(now_ms) => {
            ("live.unchanged.short", MUTED_COLOR)
        }
        _ => state_word(entry, now_ms),
    };
    let response = ui.label(RichText::new(tr(lang, key)).color(color));
    match &entry.state {
        LiveState::Lost { reason } | LiveState::Refused { reason } => {
            response.on_hover_text(reason);
        }
        _ => {}
    }
}

fn single_ui(ui: &mut egui::Ui, state: &UiState, agent: AgentId, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let name = agent_name(state, agent);
    let entry = state.live.board.get(agent);
    ui.horizontal(|ui| {
        if ui.button(tr(lang, "live.back")).clicked() {
            actions.push(Action::LiveGrid);
        }
        if ui.button(tr(lang, "live.stop")).clicked() {
            actions.push(Action::LiveStop);
        }
        ui.separator();
        let taking = state.live.taking.is_some();
        if ui
            .add_enabled(!taking, egui::Button::new(tr(lang, "live.screenshot")))
            .clicked()
        {
            actions.push(Action::TakeScreenshot(agent));
        }
        if state.live.taking == Some(agent) {
            ui.spinner();
            ui.label(tr(lang, "live.screenshot.taking"));
        } else if let Some(taken) = state
            .live
            .last_taken
            .as_ref()
            .filter(|meta| meta.key.agent == agent)
        {
            if ui.link(tr(lang, "live.screenshot.open")).clicked() {
                actions.push(Action::ShowScreenshot(taken.key));
            }
        }
    });
    if let Some(entry) = entry {
        status_line(ui, state, entry);
    }
    ui.add_space(4.0);
    let texture = state
        .live
        .textures
        .get(&agent)
        .map(|(_, texture)| &texture.0);
    let bounds = ui.available_size() - Vec2::new(0.0, 24.0);
    let natural = texture.map_or(SINGLE_PLACEHOLDER, TextureHandle::size_vec2);
    let box_size = fit(natural, bounds);
    let (rect, _) = ui.allocate_exact_size(box_size, Sense::hover());
    paint_frame(ui, rect, texture, entry, lang);
    overlay_ui(ui, state, rect, &name, entry);
    if let Some(frame) = entry.and_then(|entry| entry.frame.as_ref()) {
        let mut info = format!("{} × {}", frame.width_px, frame.height_px);
        if frame.blurred {
            info = format!("{info} · {}", tr(lang, "live.blurred"));
        }
        ui.weak(info);
    }
}

/// The bar over the top of the image: LIVE badge, name, capture time.
fn overlay_ui(
    ui: &mut egui::Ui,
    state: &UiState,
    image_rect: egui::Rect,
    name: &str,
    entry: Option<&AgentLive>,
) {
    let lang = state.lang;
    let bar = egui::Rect::from_min_size(
        image_rect.min,
        Vec2::new(image_rect.width(), OVERLAY_BAR_HEIGHT),
    );
    ui.painter()
        .rect_filled(bar, 0.0, Color32::from_black_alpha(170));
    let mut overlay = ui.new_child(
        UiBuilder::new()
            .max_rect(bar.shrink2(Vec2::new(8.0, 0.0)))
            .layout(Layout::left_to_right(Align::Center)),
    );
    let (key, color) = entry.map_or(("live.connecting", MUTED_COLOR), |entry| {
        state_word(entry, state.now_ms)
    });
    let badge = RichText::new(format!(" ● {} ", tr(lang, key)))
        .strong()
        .color(Color32::WHITE)
        .background_color(color);
    overlay.label(badge);
    overlay.label(RichText::new(name).strong().color(Color32::WHITE));
    if let Some(frame) = entry.and_then(|entry| entry.frame.as_ref()) {
        let time = time_seconds_label(&state.clock, frame.at_ms);
        overlay.label(RichText::new(time).monospace().color(Color32::WHITE));
    }
}

/// One line saying how fresh the image is, or what went wrong.
fn status_line(ui: &mut egui::Ui, state: &UiState, entry: &AgentLive) {
    let lang = state.lang;
    match &entry.state {
        LiveState::Connecting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(tr(lang, "live.connecting"));
            });
        }
        LiveState::Live { at_ms } | LiveState::Unchanged { at_ms } => {
            let time = time_seconds_label(&state.clock, *at_ms);
            if entry.is_stale(state.now_ms) {
                let silent_ms = entry
                    .last_reply_ms
                    .map_or(0, |reply_ms| state.now_ms - reply_ms);
                let ago = duration_label(lang, silent_ms.max(0));
                let text = trf(lang, "live.stale", &[("ago", &ago)]);
                ui.colored_label(WARN_COLOR, text);
            } else if matches!(entry.state, LiveState::Unchanged { .. }) {
                ui.label(trf(lang, "live.unchanged", &[("time", &time)]));
            } else {
                ui.label(trf(lang, "live.captured", &[("time", &time)]));
            }
        }
        LiveState::Lost { reason } => {
            ui.colored_label(WARN_COLOR, trf(lang, "live.lost", &[("reason", reason)]));
        }
        LiveState::Refused { reason } => {
            ui.colored_label(
                CRITICAL_COLOR,
                trf(lang, "live.refused", &[("reason", reason)]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{GridLayout, GRID_GAP, MIN_THUMBNAIL_WIDTH, THUMBNAIL};

    /// The frame of `egui::Frame::group`: 6 points of margin and a
    /// 1-point stroke on each side.
    const MARGIN: f32 = 14.0;

    /// The width a row of `layout` takes.
    fn row_width(layout: GridLayout) -> f32 {
        let columns = layout.columns as f32;
        columns * (layout.thumbnail.x + MARGIN) + (columns - 1.0) * GRID_GAP
    }

    #[test]
    fn a_wider_window_gets_more_columns_never_wider_than_it() {
        let mut previous = 1;
        for width in (MARGIN as u16..=4_000).step_by(7) {
            let width = f32::from(width);
            let layout = GridLayout::fit(width, MARGIN);
            assert!(layout.columns >= previous, "fewer columns at {width}");
            assert!(
                row_width(layout) <= width,
                "{layout:?} is wider than {width}"
            );
            let one_more = GridLayout {
                columns: layout.columns + 1,
                thumbnail: THUMBNAIL * (MIN_THUMBNAIL_WIDTH / THUMBNAIL.x),
            };
            assert!(
                row_width(one_more) > width,
                "room for more than {layout:?} in {width}"
            );
            previous = layout.columns;
        }
    }

    #[test]
    fn thumbnails_keep_their_aspect_and_shrink_only_when_one_does_not_fit() {
        for (width, columns) in [(1_570.0, 5), (1_250.0, 4), (670.0, 2), (300.0, 1)] {
            let layout = GridLayout::fit(width, MARGIN);
            assert_eq!(layout.columns, columns, "at {width}");
            let size = layout.thumbnail;
            assert!((size.x / size.y - THUMBNAIL.x / THUMBNAIL.y).abs() < 1e-3);
            assert!(
                (MIN_THUMBNAIL_WIDTH..=THUMBNAIL.x).contains(&size.x),
                "{size:?} at {width}"
            );
        }
        assert_eq!(GridLayout::fit(200.0, MARGIN).thumbnail.x, 200.0 - MARGIN);
        assert_eq!(GridLayout::fit(400.0, MARGIN).thumbnail, THUMBNAIL);
        assert_eq!(GridLayout::fit(5.0, MARGIN).thumbnail, egui::Vec2::ZERO);
    }
}
