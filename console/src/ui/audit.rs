//! Audit log: who did what, when, on what, with the hash chain verified.

use std::sync::Arc;

use egui_extras::{Column, TableBuilder};

use super::{empty_state, CRITICAL_COLOR, OK_COLOR};
use crate::app::{Action, UiState};
use console_engine::i18n::{date_time_label, tr, trf};
use console_engine::views::{ViewData, ViewRequest};

pub fn audit_ui(ui: &mut egui::Ui, state: &UiState, _actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "nav.audit"));
    let Some(ViewData::Audit(view)) = state.views.get(&ViewRequest::Audit).map(Arc::as_ref) else {
        ui.label(tr(lang, "loading"));
        return;
    };
    match &view.verified {
        Ok(count) => {
            let count = count.to_string();
            ui.colored_label(OK_COLOR, trf(lang, "audit.verified", &[("count", &count)]));
        }
        Err(error) => {
            ui.colored_label(
                CRITICAL_COLOR,
                trf(lang, "audit.broken", &[("error", error)]),
            );
        }
    }
    if view.entries.is_empty() {
        empty_state(ui, tr(lang, "audit.empty"));
        return;
    }
    let rows = crate::app::fleet_rows(state);
    let count = view.entries.len().to_string();
    ui.weak(trf(lang, "audit.shown", &[("count", &count)]));
    TableBuilder::new(ui)
        .id_salt("audit_table")
        .striped(true)
        .resizable(true)
        .column(Column::initial(50.0))
        .column(Column::initial(150.0))
        .column(Column::initial(220.0).clip(true))
        .column(Column::initial(100.0))
        .column(Column::initial(260.0).clip(true))
        .column(Column::remainder().clip(true))
        .header(24.0, |mut header| {
            for key in [
                "#",
                "col.when",
                "col.who",
                "col.action",
                "col.target",
                "col.detail",
            ] {
                header.col(|ui| {
                    ui.strong(if key == "#" { key } else { tr(lang, key) });
                });
            }
        })
        .body(|body| {
            body.rows(20.0, view.entries.len(), |mut row| {
                let Some(record) = view.entries.get(row.index()) else {
                    return;
                };
                let entry = &record.entry;
                // Agent ids read better as the agent's name.
                let target = rows
                    .iter()
                    .find(|row| row.agent.to_string() == entry.target)
                    .map_or_else(
                        || entry.target.clone(),
                        |row| format!("{} ({})", row.name, entry.target),
                    );
                let cells = [
                    record.index.to_string(),
                    date_time_label(lang, &state.clock, entry.at_ms),
                    entry.actor.clone(),
                    entry.action.clone(),
                    target,
                    entry.detail.clone(),
                ];
                for cell in cells {
                    row.col(|ui| {
                        ui.label(cell);
                    });
                }
            });
        });
}
