//! Screenshots: one person's stored screenshots over a period, each with
//! its exact local time, size and badges (blurred, periodic or on demand,
//! image dropped on the workstation); a click shows the image, decrypted
//! and decoded by the engine.

use std::sync::Arc;

use egui::{Color32, RichText};
use egui_extras::{Column, TableBuilder};

use super::{agent_picker, empty_state, period_picker, MUTED_COLOR, WARN_COLOR};
use crate::app::{gallery_agent, Action, UiState};
use console_engine::i18n::{date_time_seconds_label, size_label, tr, trf, Lang};
use console_engine::store::{ScreenshotMeta, ShotSource};
use console_engine::views::{ViewData, ViewRequest};

const BADGE_COLOR: Color32 = Color32::from_rgb(0x3a, 0x6e, 0xa5);

pub fn gallery_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "shots.title"));
    ui.weak(tr(lang, "shots.note"));
    let agent = gallery_agent(state);
    ui.horizontal(|ui| {
        agent_picker(
            ui,
            state,
            tr(lang, "person"),
            agent,
            false,
            Action::SetScreenshotsAgent,
            actions,
        );
        ui.separator();
        period_picker(
            ui,
            lang,
            state.gallery.period,
            Action::SetScreenshotsPeriod,
            actions,
        );
    });
    let Some(agent) = agent else {
        empty_state(ui, tr(lang, "employee.none"));
        return;
    };
    let request = ViewRequest::Screenshots {
        agent,
        period: state.gallery.period,
    };
    let Some(ViewData::Screenshots(view)) = state.views.get(&request).map(Arc::as_ref) else {
        ui.label(tr(lang, "loading"));
        return;
    };
    if view.shots.is_empty() {
        empty_state(ui, &trf(lang, "shots.empty", &[("name", &view.name)]));
        return;
    }
    let count = view.shots.len().to_string();
    ui.label(trf(lang, "shots.count", &[("count", &count)]));
    egui::Panel::left("shots_list")
        .resizable(true)
        .default_size(520.0)
        .show(ui, |ui| list_ui(ui, state, &view.shots, actions));
    egui::CentralPanel::default().show(ui, |ui| image_ui(ui, state, &view.shots));
}

fn list_ui(
    ui: &mut egui::Ui,
    state: &UiState,
    shots: &[ScreenshotMeta],
    actions: &mut Vec<Action>,
) {
    let lang = state.lang;
    TableBuilder::new(ui)
        .id_salt("shots_table")
        .striped(true)
        .auto_shrink([false, false])
        .column(Column::initial(200.0))
        .column(Column::initial(150.0))
        .column(Column::remainder())
        .header(24.0, |mut header| {
            for key in ["col.when", "col.size", "col.kind"] {
                header.col(|ui| {
                    ui.strong(tr(lang, key));
                });
            }
        })
        .body(|body| {
            body.rows(22.0, shots.len(), |mut row| {
                let Some(shot) = shots.get(row.index()) else {
                    return;
                };
                let selected = state.gallery.selected == Some(shot.key);
                row.col(|ui| {
                    let when = date_time_seconds_label(lang, &state.clock, shot.key.at_ms);
                    let response =
                        ui.add_enabled(shot.available, egui::Button::selectable(selected, when));
                    if response.clicked() && !selected {
                        actions.push(Action::OpenScreenshot(shot.key));
                    }
                });
                row.col(|ui| {
                    let size = size_label(lang, u64::from(shot.size_bytes));
                    ui.label(format!("{} × {} · {size}", shot.width, shot.height));
                });
                row.col(|ui| badges_ui(ui, lang, shot));
            });
        });
}

fn badge(ui: &mut egui::Ui, text: &str, color: Color32) {
    ui.label(
        RichText::new(format!(" {text} "))
            .color(Color32::WHITE)
            .background_color(color),
    );
}

fn badges_ui(ui: &mut egui::Ui, lang: Lang, shot: &ScreenshotMeta) {
    let source = match shot.source {
        ShotSource::Periodic => "shots.periodic",
        ShotSource::OnDemand => "shots.on_demand",
    };
    badge(ui, tr(lang, source), BADGE_COLOR);
    if shot.blurred {
        badge(ui, tr(lang, "shots.blurred"), MUTED_COLOR);
    }
    if !shot.available {
        badge(ui, tr(lang, "shots.dropped"), WARN_COLOR);
    }
}

fn image_ui(ui: &mut egui::Ui, state: &UiState, shots: &[ScreenshotMeta]) {
    let lang = state.lang;
    let Some(shot) = state
        .gallery
        .selected
        .and_then(|key| shots.iter().find(|shot| shot.key == key))
    else {
        empty_state(ui, tr(lang, "shots.pick"));
        return;
    };
    ui.horizontal(|ui| {
        ui.strong(date_time_seconds_label(lang, &state.clock, shot.key.at_ms));
        badges_ui(ui, lang, shot);
    });
    let loaded = state
        .gallery
        .images
        .iter()
        .find(|(key, _)| *key == shot.key)
        .map(|(_, texture)| texture);
    match loaded {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(tr(lang, "shots.opening"));
            });
        }
        Some(Err(error)) => {
            ui.colored_label(
                super::CRITICAL_COLOR,
                trf(lang, "shots.error", &[("error", error)]),
            );
        }
        Some(Ok(texture)) => {
            let bounds = ui.available_size();
            ui.add(egui::Image::from_texture(&texture.0).max_size(bounds));
        }
    }
}
