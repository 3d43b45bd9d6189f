//! Attendance: arrival, departure, active, idle, locked, net and effective
//! time per person and day (one line for a person on several
//! workstations; an account no person holds is named after its
//! workstation), filtered by workstation and period, with a CSV export
//! through the system's save dialog.

use std::sync::Arc;

use egui_extras::{Column, TableBuilder};

use super::{agent_picker, empty_state, period_picker};
use crate::app::{Action, UiState};
use console_engine::i18n::{day_label, duration_label, time_label, tr, trf, zone_label};
use console_engine::views::{ViewData, ViewRequest};

pub fn attendance_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "attendance.title"));
    ui.horizontal(|ui| {
        agent_picker(
            ui,
            state,
            tr(lang, "workstation"),
            state.attendance_agent,
            true,
            Action::SetAttendanceAgent,
            actions,
        );
        ui.separator();
        period_picker(
            ui,
            lang,
            state.attendance_period,
            Action::SetAttendancePeriod,
            actions,
        );
        ui.separator();
        if ui.button(tr(lang, "attendance.export")).clicked() {
            actions.push(Action::ExportAttendance);
        }
    });
    ui.weak(tr(lang, "attendance.note"));
    ui.weak(trf(
        lang,
        "attendance.zone",
        &[("zone", &zone_label(&state.clock, state.now_ms))],
    ));
    let request = ViewRequest::Attendance {
        agent: state.attendance_agent,
        period: state.attendance_period,
    };
    let Some(ViewData::Attendance(view)) = state.views.get(&request).map(Arc::as_ref) else {
        ui.label(tr(lang, "loading"));
        return;
    };
    if view.lines.is_empty() {
        empty_state(ui, tr(lang, "attendance.empty"));
        return;
    }
    // Each line on its own clock: the site's, or its workstation's when
    // the settings ask for it.
    let clock_time = |clock, at_ms: Option<i64>| {
        at_ms.map_or_else(|| "—".to_owned(), |at_ms| time_label(clock, at_ms))
    };
    let sum = |value: fn(&console_engine::analytics::AttendanceDay) -> i64| {
        duration_label(lang, view.lines.iter().map(|line| value(&line.day)).sum())
    };
    ui.horizontal(|ui| {
        ui.strong(tr(lang, "total"));
        for (key, total) in [
            ("col.active", sum(|day| day.active_ms)),
            ("col.idle", sum(|day| day.idle_ms)),
            ("col.net", sum(|day| day.net_ms)),
        ] {
            super::figure(ui, tr(lang, key), &total);
        }
    });
    let columns = [
        "person",
        "col.workstations",
        "col.day",
        "col.arrival",
        "col.departure",
        "col.active",
        "col.idle",
        "col.locked",
        "col.net",
        "col.effective",
        "col.sessions",
    ];
    TableBuilder::new(ui)
        .id_salt("attendance_table")
        .striped(true)
        .resizable(true)
        .column(Column::initial(150.0).at_least(80.0).clip(true))
        .column(Column::initial(150.0).at_least(80.0).clip(true))
        .columns(Column::initial(95.0).at_least(60.0), columns.len() - 3)
        .column(Column::remainder().at_least(50.0))
        .header(24.0, |mut header| {
            for key in columns {
                header.col(|ui| {
                    ui.strong(tr(lang, key));
                });
            }
        })
        .body(|body| {
            body.rows(20.0, view.lines.len(), |mut row| {
                let Some(line) = view.lines.get(row.index()) else {
                    return;
                };
                let day = &line.day;
                let cells = [
                    line.name.clone(),
                    line.workstations.join(", "),
                    day_label(lang, day.day),
                    clock_time(&line.clock, day.arrival_ms),
                    clock_time(&line.clock, day.departure_ms),
                    duration_label(lang, day.active_ms),
                    duration_label(lang, day.idle_ms),
                    duration_label(lang, day.locked_ms),
                    duration_label(lang, day.net_ms),
                    duration_label(lang, day.effective_ms),
                    day.sessions.len().to_string(),
                ];
                for cell in cells {
                    row.col(|ui| {
                        ui.label(cell);
                    });
                }
            });
        });
}
