//! Organisation: totals against the previous period, top applications and
//! categories, the active/idle trend, who is online and who left recently,
//! alerts and recommendations.

use std::sync::Arc;

use egui::RichText;

use super::charts::{trend_chart, usage_columns_ui};
use super::{ago_text, empty_state, figure, period_picker, CRITICAL_COLOR, OK_COLOR, WARN_COLOR};
use crate::app::{Action, UiState};
use console_engine::analytics::Severity;
use console_engine::i18n::{
    change_label, day_label, duration_label, recommendation_text, severity_key, tr, trf, Lang,
};
use console_engine::views::{Advice, ViewData, ViewRequest};

pub fn organisation_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.horizontal(|ui| {
        ui.heading(tr(lang, "nav.organisation"));
        ui.separator();
        period_picker(
            ui,
            lang,
            state.organisation_period,
            Action::SetOrganisationPeriod,
            actions,
        );
    });
    let request = ViewRequest::Organisation {
        period: state.organisation_period,
    };
    let Some(ViewData::Organisation(view)) = state.views.get(&request).map(Arc::as_ref) else {
        ui.label(tr(lang, "loading"));
        return;
    };
    if view.agents == 0 {
        empty_state(ui, tr(lang, "org.empty"));
        return;
    }
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            figure(ui, tr(lang, "org.agents"), &view.agents.to_string());
            ui.separator();
            figure(
                ui,
                tr(lang, "active_time"),
                &duration_label(lang, view.summary.total_active_ms),
            );
            if let Some(change) = view.change_pct {
                let pct = change_label(lang, change);
                ui.weak(trf(lang, "vs_previous", &[("pct", &pct)]));
            }
            ui.separator();
            figure(
                ui,
                tr(lang, "idle_time"),
                &duration_label(lang, view.idle_ms),
            );
            ui.separator();
            figure(
                ui,
                tr(lang, "org.online_now"),
                &view.presence.online.len().to_string(),
            );
        });
        ui.separator();
        usage_columns_ui(ui, lang, &view.summary, "org");
        ui.separator();
        ui.strong(tr(lang, "trend"));
        trend_chart(ui, "org_trend", lang, &state.clock, &view.trend);
        ui.separator();
        ui.columns(2, |columns| {
            columns[0].strong(tr(lang, "org.online_now"));
            if view.presence.online.is_empty() {
                columns[0].weak(tr(lang, "org.nobody_online"));
            }
            for seen in view.presence.online.iter().take(50) {
                if columns[0].link(&seen.name).clicked() {
                    actions.push(Action::OpenEmployee(seen.agent));
                }
            }
            columns[1].strong(tr(lang, "org.left_recently"));
            if view.presence.left_recently.is_empty() {
                columns[1].weak(tr(lang, "org.nobody_left"));
            }
            for seen in view.presence.left_recently.iter().take(50) {
                columns[1].horizontal(|ui| {
                    if ui.link(&seen.name).clicked() {
                        actions.push(Action::OpenEmployee(seen.agent));
                    }
                    ui.weak(ago_text(lang, state.now_ms, seen.last_seen_ms));
                });
            }
        });
        ui.separator();
        ui.columns(2, |columns| {
            columns[0].strong(tr(lang, "org.alerts"));
            advice_list(&mut columns[0], lang, &view.alerts, "org.no_alerts");
            columns[1].strong(tr(lang, "org.recommendations"));
            advice_list(
                &mut columns[1],
                lang,
                &view.recommendations,
                "org.no_recommendations",
            );
        });
    });
}

/// Most recommendations listed; the rest are counted.
pub const ADVICE_SHOWN: usize = 8;

/// Recommendations with severity, day and agent, newest first.
pub fn advice_list(ui: &mut egui::Ui, lang: Lang, items: &[Advice], empty_key: &'static str) {
    if items.is_empty() {
        ui.weak(tr(lang, empty_key));
        return;
    }
    for advice in items.iter().take(ADVICE_SHOWN) {
        let recommendation = &advice.recommendation;
        let key = severity_key(recommendation.severity);
        let color = match recommendation.severity {
            Severity::Info => OK_COLOR,
            Severity::Warn => WARN_COLOR,
            Severity::Critical => CRITICAL_COLOR,
        };
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(tr(lang, key)).color(color).strong());
            ui.weak(format!(
                "{} · {}",
                day_label(lang, recommendation.day),
                advice.agent_name
            ));
            ui.label(recommendation_text(lang, recommendation));
        });
    }
    if items.len() > ADVICE_SHOWN {
        let count = (items.len() - ADVICE_SHOWN).to_string();
        ui.weak(trf(lang, "more", &[("count", &count)]));
    }
}
