//! Employee: today's timeline, top applications and categories, active and
//! idle trend over 24 h / 7 d / 30 d, attendance days and health history of
//! one person's workstation; when it is in another time zone than the
//! site, a marker and the choice to show its attendance in that zone.

use std::sync::Arc;

use super::charts::{health_chart, timeline, trend_chart, usage_columns_ui};
use super::{agent_picker, empty_state, period_picker, zone_marker};
use crate::app::{employee_agent, Action, UiState};
use console_engine::analytics::AttendanceDay;
use console_engine::i18n::{day_label, duration_label, time_label, tr, trf, zone_label, Lang};
use console_engine::model::DayClock;
use console_engine::views::{ViewData, ViewRequest};

pub fn employee_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let Some(agent) = employee_agent(state) else {
        ui.heading(tr(lang, "nav.employee"));
        empty_state(ui, tr(lang, "employee.none"));
        return;
    };
    ui.horizontal(|ui| {
        agent_picker(
            ui,
            state,
            tr(lang, "employee.pick"),
            Some(agent),
            false,
            |picked| Action::SetEmployeeAgent(picked.unwrap_or(agent)),
            actions,
        );
        ui.separator();
        period_picker(
            ui,
            lang,
            state.employee_period,
            Action::SetEmployeePeriod,
            actions,
        );
    });
    let request = ViewRequest::Employee {
        agent,
        period: state.employee_period,
    };
    let Some(ViewData::Employee(view)) = state.views.get(&request).map(Arc::as_ref) else {
        ui.label(tr(lang, "loading"));
        return;
    };
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading(&view.name);
        if let Some(zone) = &view.other_zone {
            ui.horizontal(|ui| {
                zone_marker(ui, lang, zone, state.clock.name(), state.now_ms);
                let label = zone_label(&zone.clock, state.now_ms);
                let mut own_zone = view.own_zone_attendance;
                let text = trf(lang, "zone.own_attendance", &[("zone", &label)]);
                if ui.checkbox(&mut own_zone, text).changed() {
                    let mut settings = state.settings.clone();
                    if own_zone {
                        settings.own_zone_agents.insert(agent);
                    } else {
                        settings.own_zone_agents.remove(&agent);
                    }
                    actions.push(Action::SaveSettings(settings));
                }
            });
        }
        ui.add_space(4.0);
        ui.strong(tr(lang, "employee.today"));
        if view.today.apps.is_empty() && view.today.presence.is_empty() {
            empty_state(ui, tr(lang, "employee.today.empty"));
        } else {
            timeline(ui, lang, &state.clock, &view.today);
        }
        ui.separator();
        ui.horizontal(|ui| {
            super::figure(
                ui,
                tr(lang, "active_time"),
                &duration_label(lang, view.summary.total_active_ms),
            );
            ui.separator();
            super::figure(
                ui,
                tr(lang, "idle_time"),
                &duration_label(lang, view.idle_ms),
            );
        });
        usage_columns_ui(ui, lang, &view.summary, "employee");
        ui.separator();
        ui.strong(tr(lang, "trend"));
        trend_chart(ui, "employee_trend", lang, &state.clock, &view.trend);
        ui.separator();
        ui.strong(tr(lang, "nav.attendance"));
        attendance_grid(
            ui,
            lang,
            &view.attendance_clock,
            "employee_attendance",
            &view.attendance,
        );
        ui.separator();
        ui.strong(tr(lang, "health_history"));
        if view.health.raw_samples == 0 {
            empty_state(ui, tr(lang, "no_health"));
        } else {
            health_chart(ui, "employee_health", lang, &state.clock, &view.health);
            let shown = view.health.cpu_pct.len().to_string();
            let raw = view.health.raw_samples.to_string();
            ui.weak(trf(
                lang,
                "points_shown",
                &[("shown", &shown), ("raw", &raw)],
            ));
        }
    });
}

/// Attendance days: arrival, departure, active, idle, net, sessions.
pub fn attendance_grid(
    ui: &mut egui::Ui,
    lang: Lang,
    clock: &DayClock,
    id_salt: &str,
    days: &[AttendanceDay],
) {
    if days.is_empty() {
        empty_state(ui, tr(lang, "attendance.empty"));
        return;
    }
    let clock_time =
        |at_ms: Option<i64>| at_ms.map_or_else(|| "—".to_owned(), |at_ms| time_label(clock, at_ms));
    egui::Grid::new(id_salt)
        .striped(true)
        .num_columns(7)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            for key in [
                "col.day",
                "col.arrival",
                "col.departure",
                "col.active",
                "col.idle",
                "col.net",
                "col.sessions",
            ] {
                ui.strong(tr(lang, key));
            }
            ui.end_row();
            for day in days {
                ui.label(day_label(lang, day.day));
                ui.label(clock_time(day.arrival_ms));
                ui.label(clock_time(day.departure_ms));
                ui.label(duration_label(lang, day.active_ms));
                ui.label(duration_label(lang, day.idle_ms));
                ui.label(duration_label(lang, day.net_ms));
                ui.label(day.sessions.len().to_string());
                ui.end_row();
            }
        });
}
