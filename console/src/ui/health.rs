//! Health: the fleet's current health, one agent's CPU, memory and disk
//! over 30 days (decimated before it reaches the plot), and health alerts.

use std::sync::Arc;

use egui_extras::{Column, TableBuilder};

use super::charts::health_chart;
use super::organisation::advice_list;
use super::{ago_text, empty_state, level_text};
use crate::app::{health_agent, Action, UiState};
use console_engine::i18n::{decimal_label, tr, trf};
use console_engine::model::HealthLevel;
use console_engine::views::{ViewData, ViewRequest};

pub fn health_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "health.fleet"));
    let selected_agent = health_agent(state);
    let request = ViewRequest::Health {
        agent: selected_agent,
    };
    let Some(ViewData::Health(view)) = state.views.get(&request).map(Arc::as_ref) else {
        ui.label(tr(lang, "loading"));
        return;
    };
    if view.rows.iter().all(|row| row.current.is_none()) && view.selected.is_none() {
        empty_state(ui, tr(lang, "health.empty"));
        return;
    }
    let count = |level: Option<HealthLevel>| {
        view.rows
            .iter()
            .filter(|row| row.current.as_ref().map(|point| point.level) == level)
            .count()
            .to_string()
    };
    let (ok, warn, critical, none) = (
        count(Some(HealthLevel::Ok)),
        count(Some(HealthLevel::Warn)),
        count(Some(HealthLevel::Critical)),
        count(None),
    );
    ui.label(trf(
        lang,
        "health.counts",
        &[
            ("ok", &ok),
            ("warn", &warn),
            ("critical", &critical),
            ("none", &none),
        ],
    ));
    TableBuilder::new(ui)
        .id_salt("health_table")
        .striped(true)
        .max_scroll_height(260.0)
        .auto_shrink([false, true])
        .column(Column::initial(180.0).clip(true))
        .columns(Column::initial(100.0), 6)
        .column(Column::remainder())
        .header(24.0, |mut header| {
            for key in [
                "col.name",
                "col.health",
                "col.score",
                "col.cpu",
                "col.mem",
                "col.disk",
                "col.worst_24h",
                "col.sampled",
            ] {
                header.col(|ui| {
                    ui.strong(tr(lang, key));
                });
            }
        })
        .body(|body| {
            body.rows(20.0, view.rows.len(), |mut table_row| {
                let Some(row) = view.rows.get(table_row.index()) else {
                    return;
                };
                let selected = selected_agent == Some(row.agent);
                table_row.col(|ui| {
                    if ui.selectable_label(selected, &row.name).clicked() && !selected {
                        actions.push(Action::SelectHealthAgent(row.agent));
                    }
                });
                let current = row.current.as_ref();
                table_row.col(|ui| {
                    ui.label(level_text(lang, current.map(|point| point.level)));
                });
                let number = |value: Option<String>| value.unwrap_or_else(|| "—".to_owned());
                let cells = [
                    number(current.map(|point| point.score.to_string())),
                    number(current.map(|point| decimal_label(lang, f64::from(point.cpu_pct), 0))),
                    number(current.map(|point| decimal_label(lang, f64::from(point.mem_pct), 0))),
                    number(current.map(|point| decimal_label(lang, f64::from(point.disk_pct), 0))),
                ];
                for cell in cells {
                    table_row.col(|ui| {
                        ui.label(cell);
                    });
                }
                table_row.col(|ui| {
                    ui.label(level_text(lang, row.worst_level_24h));
                });
                table_row.col(|ui| {
                    ui.label(ago_text(
                        lang,
                        state.now_ms,
                        current.map(|point| point.at_ms),
                    ));
                });
            });
        });
    ui.separator();
    egui::ScrollArea::vertical()
        .id_salt("health_details")
        .show(ui, |ui| {
            match &view.selected {
                Some((agent, charts)) => {
                    let name = view
                        .rows
                        .iter()
                        .find(|row| row.agent == *agent)
                        .map_or_else(|| agent.to_string(), |row| row.name.clone());
                    ui.strong(format!("{} — {}", tr(lang, "health_history"), name));
                    if charts.raw_samples == 0 {
                        empty_state(ui, tr(lang, "no_health"));
                    } else {
                        health_chart(ui, "health_chart", lang, &state.clock, charts);
                        let shown = charts.cpu_pct.len().to_string();
                        let raw = charts.raw_samples.to_string();
                        ui.weak(trf(
                            lang,
                            "points_shown",
                            &[("shown", &shown), ("raw", &raw)],
                        ));
                    }
                }
                None => {
                    ui.weak(tr(lang, "health.select"));
                }
            }
            ui.separator();
            ui.strong(tr(lang, "health.alerts"));
            advice_list(ui, lang, &view.alerts, "org.no_alerts");
        });
}
