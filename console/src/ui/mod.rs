//! The screens. Every `*_ui` function draws from `&UiState` and pushes
//! [`Action`]s; none reads the store or touches the network.

mod attendance;
mod audit;
pub mod charts;
mod employee;
mod enrolment;
pub mod fleet;
mod gallery;
mod health;
mod live;
mod organisation;
mod people;
mod settings;

use egui::{Color32, RichText};

use crate::app::{Action, Screen, UiState};
use console_engine::i18n::{health_level_key, tr, trf, zone_label, Lang};
use console_engine::model::{AgentId, HealthLevel};
use console_engine::store::FaultKind;
use console_engine::views::{OtherZone, Period, Status};

pub const OK_COLOR: Color32 = Color32::from_rgb(0x2e, 0x9e, 0x4f);
pub const WARN_COLOR: Color32 = Color32::from_rgb(0xd9, 0x8c, 0x1a);
pub const CRITICAL_COLOR: Color32 = Color32::from_rgb(0xd0, 0x3b, 0x3b);
pub const MUTED_COLOR: Color32 = Color32::from_rgb(0x8a, 0x8a, 0x8a);

/// egui's fonts with Hack behind Ubuntu for the proportional family, so
/// symbols Ubuntu lacks (`●`, `→`, `▲`) draw; both cover Latin and
/// Cyrillic, nothing is loaded at run time.
pub fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(family) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
        family.insert(1, "Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

/// The whole window: top bar, notices, the current screen.
pub fn window_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    egui::Panel::top("top_bar").show(ui, |ui| {
        ui.add_space(4.0);
        ui.horizontal_wrapped(|ui| {
            ui.heading(tr(lang, "app.title"));
            ui.separator();
            for screen in Screen::ALL {
                if ui
                    .selectable_label(state.screen == screen, tr(lang, screen.key()))
                    .clicked()
                {
                    actions.push(Action::Navigate(screen));
                }
            }
        });
        ui.horizontal_wrapped(|ui| {
            sync_status_ui(ui, state, actions);
        });
        ui.add_space(2.0);
    });
    if !state.notices.is_empty() {
        egui::Panel::bottom("notices").show(ui, |ui| {
            for (index, notice) in state.notices.iter().enumerate() {
                ui.horizontal(|ui| {
                    let color = if notice.error {
                        CRITICAL_COLOR
                    } else {
                        OK_COLOR
                    };
                    ui.colored_label(color, &notice.text);
                    if ui.small_button(tr(lang, "dismiss")).clicked() {
                        actions.push(Action::DismissNotice(index));
                    }
                });
            }
        });
    }
    egui::CentralPanel::default().show(ui, |ui| match state.screen {
        Screen::Fleet => fleet::fleet_ui(ui, state, actions),
        Screen::Employee => employee::employee_ui(ui, state, actions),
        Screen::Organisation => organisation::organisation_ui(ui, state, actions),
        Screen::Attendance => attendance::attendance_ui(ui, state, actions),
        Screen::People => people::people_ui(ui, state, actions),
        Screen::Health => health::health_ui(ui, state, actions),
        Screen::Live => live::live_ui(ui, state, actions),
        Screen::Screenshots => gallery::gallery_ui(ui, state, actions),
        Screen::Settings => settings::settings_ui(ui, state, actions),
        Screen::Audit => audit::audit_ui(ui, state, actions),
    });
}

/// `Alerte n° 3 : demo-pc-2 : disque plein à 93 %`, in `lang`, for the
/// workstation called `name`.
pub fn alert_text(lang: Lang, alert: &console_engine::alerts::Alert, name: &str) -> String {
    use console_engine::alerts::Rule;
    let value = format!("{:.0}", alert.value);
    let key = match alert.rule {
        Rule::HealthCritical => "alert.health_critical",
        Rule::DiskFull => "alert.disk_full",
        Rule::NotSeen => "alert.not_seen",
        Rule::InvalidData => "alert.invalid_data",
    };
    trf(
        lang,
        key,
        &[
            ("id", &alert.id.to_string()),
            ("name", name),
            ("value", &value),
        ],
    )
}

fn sync_status_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    if state.alerts_unread > 0 {
        let count = state.alerts_unread.to_string();
        ui.colored_label(
            CRITICAL_COLOR,
            trf(lang, "alerts.bell", &[("count", &count)]),
        )
        .on_hover_text(tr(lang, "alerts.bell.hint"));
        ui.separator();
    }
    if let Some(dir) = &state.sync.unavailable {
        ui.colored_label(WARN_COLOR, trf(lang, "sync.disabled", &[("dir", dir)]));
    } else {
        let button = ui.add_enabled(!state.sync.running, egui::Button::new(tr(lang, "sync.now")));
        if button.clicked() {
            actions.push(Action::SyncNow);
        }
        if state.sync.running {
            ui.label(tr(lang, "sync.running"));
        }
        match &state.sync.last {
            Some(summary) => {
                let time = console_engine::i18n::time_label(&state.clock, summary.finished_ms);
                let synced = summary.synced_agents.to_string();
                let records = summary.stored_records.to_string();
                ui.label(trf(
                    lang,
                    "sync.last",
                    &[("time", &time), ("synced", &synced), ("records", &records)],
                ));
                if !summary.problems.is_empty() {
                    let count = summary.problems.len().to_string();
                    ui.colored_label(WARN_COLOR, trf(lang, "sync.problems", &[("count", &count)]))
                        .on_hover_text(summary.problems.join("\n"));
                }
                if let Some(certificate) = &summary.certificate {
                    ui.colored_label(WARN_COLOR, tr(lang, "sync.certificate"))
                        .on_hover_text(certificate);
                }
            }
            None if !state.sync.running => {
                ui.weak(tr(lang, "sync.never"));
            }
            None => {}
        }
    }
    if crate::app::fleet_rows(state).iter().any(|row| row.demo) {
        ui.separator();
        ui.label(
            RichText::new(tr(lang, "demo.banner"))
                .color(Color32::WHITE)
                .background_color(WARN_COLOR),
        );
    }
}

/// `24 h | 7 days | 30 days` as selectable labels.
pub fn period_picker(
    ui: &mut egui::Ui,
    lang: Lang,
    current: Period,
    mut on_pick: impl FnMut(Period) -> Action,
    actions: &mut Vec<Action>,
) {
    ui.label(tr(lang, "period"));
    for period in Period::ALL {
        if ui
            .selectable_label(current == period, tr(lang, period_key(period)))
            .clicked()
            && current != period
        {
            actions.push(on_pick(period));
        }
    }
}

pub fn period_key(period: Period) -> &'static str {
    match period {
        Period::Day => "period.day",
        Period::Week => "period.week",
        Period::Month => "period.month",
    }
}

/// A labelled combo box of the fleet's agents (optionally with "Everyone").
pub fn agent_picker(
    ui: &mut egui::Ui,
    state: &UiState,
    label: &str,
    selected: Option<AgentId>,
    allow_everyone: bool,
    mut on_pick: impl FnMut(Option<AgentId>) -> Action,
    actions: &mut Vec<Action>,
) {
    let lang = state.lang;
    let rows = crate::app::fleet_rows(state);
    let selected_text = match selected {
        Some(agent) => rows
            .iter()
            .find(|row| row.agent == agent)
            .map_or_else(|| agent.to_string(), |row| row.name.clone()),
        None if allow_everyone => tr(lang, "everyone").to_owned(),
        None => "…".to_owned(),
    };
    let name = ui.label(label);
    egui::ComboBox::from_id_salt(("agent_picker", label))
        .selected_text(selected_text)
        .show_ui(ui, |ui| {
            if allow_everyone
                && ui
                    .selectable_label(selected.is_none(), tr(lang, "everyone"))
                    .clicked()
            {
                actions.push(on_pick(None));
            }
            for row in rows {
                if ui
                    .selectable_label(selected == Some(row.agent), &row.name)
                    .clicked()
                {
                    actions.push(on_pick(Some(row.agent)));
                }
            }
        })
        .response
        .labelled_by(name.id);
}

pub fn status_text(lang: Lang, status: Status) -> RichText {
    let (key, color) = match status {
        Status::Online => ("status.online", OK_COLOR),
        Status::Offline => ("status.offline", MUTED_COLOR),
        Status::Unknown => ("status.unknown", WARN_COLOR),
    };
    RichText::new(format!("● {}", tr(lang, key))).color(color)
}

/// What an agent did wrong, in red, for the fleet screen.
pub fn fault_text(lang: Lang, kind: FaultKind) -> RichText {
    let key = match kind {
        FaultKind::InvalidData => "fault.invalid_data",
        FaultKind::Impersonation => "fault.impersonation",
        FaultKind::EpochFlapping => "fault.epoch_flapping",
        FaultKind::ProtocolViolation => "fault.protocol",
    };
    RichText::new(tr(lang, key)).color(CRITICAL_COLOR).strong()
}

pub fn level_text(lang: Lang, level: Option<HealthLevel>) -> RichText {
    let color = match level {
        Some(HealthLevel::Ok) => OK_COLOR,
        Some(HealthLevel::Warn) => WARN_COLOR,
        Some(HealthLevel::Critical) => CRITICAL_COLOR,
        None => MUTED_COLOR,
    };
    RichText::new(tr(lang, health_level_key(level))).color(color)
}

/// A named figure: `Active time  2 h 05`.
pub fn figure(ui: &mut egui::Ui, name: &str, value: &str) {
    ui.label(name);
    ui.strong(value);
}

/// A hint for an empty screen: what to do next.
pub fn empty_state(ui: &mut egui::Ui, text: &str) {
    ui.add_space(12.0);
    ui.label(RichText::new(text).italics());
}

/// `◷ EST`, for a workstation in another time zone than the site's
/// (`site_zone`): short enough for a table cell, the zone in full on hover.
pub fn zone_marker(ui: &mut egui::Ui, lang: Lang, zone: &OtherZone, site_zone: &str, now_ms: i64) {
    let abbreviation = zone.clock.abbreviation(now_ms);
    let label = zone_label(&zone.clock, now_ms);
    ui.label(trf(lang, "zone.other", &[("zone", &abbreviation)]))
        .on_hover_text(trf(
            lang,
            "zone.other.hover",
            &[("zone", &label), ("site", site_zone)],
        ));
}

/// `il y a 5 min` / `5 min ago` / `never`.
pub fn ago_text(lang: Lang, now_ms: i64, at_ms: Option<i64>) -> String {
    match at_ms {
        Some(at_ms) => {
            let ago = console_engine::i18n::duration_label(lang, (now_ms - at_ms).max(0));
            trf(lang, "seen.ago", &[("ago", &ago)])
        }
        None => tr(lang, "seen.never").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    /// Every text of every language draws with the fonts the window
    /// installs (a missing glyph panics at draw time).
    #[test]
    fn every_text_has_its_glyphs() {
        let ctx = egui::Context::default();
        super::install_fonts(&ctx);
        let mut output = ctx.run_ui(egui::RawInput::default(), |_| {});
        output.textures_delta.clear();
        let font = egui::FontId::proportional(14.0);
        let missing: Vec<&str> = console_engine::i18n::all_texts()
            .chain(["● ", "× ", " · ", "—", "(UTC−5:30)"])
            .filter(|text| !ctx.fonts_mut(|fonts| fonts.has_glyphs(&font, text)))
            .collect();
        assert!(missing.is_empty(), "texts without glyphs: {missing:?}");
    }

    /// Every key a screen asks for has texts (a missing key would show as
    /// the key itself).
    #[test]
    fn every_key_used_by_the_screens_exists() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("fleet.rs"),
            include_str!("employee.rs"),
            include_str!("organisation.rs"),
            include_str!("attendance.rs"),
            include_str!("health.rs"),
            include_str!("settings.rs"),
            include_str!("audit.rs"),
            include_str!("charts.rs"),
            include_str!("live.rs"),
            include_str!("gallery.rs"),
            include_str!("../app.rs"),
        ];
        let pattern = regex::Regex::new(r#"\btrf?\(\s*(?:lang|state\.lang),\s*"([a-z0-9_.]+)""#)
            .expect("regex");
        let mut checked = 0;
        for source in sources {
            for captures in pattern.captures_iter(source) {
                let key = &captures[1];
                assert!(
                    console_engine::i18n::has_key(key),
                    "no text for key {key:?}"
                );
                checked += 1;
            }
        }
        assert!(
            checked > 50,
            "only {checked} keys found: pattern out of date"
        );
        for screen in crate::app::Screen::ALL {
            assert!(console_engine::i18n::has_key(screen.key()));
        }
        for period in console_engine::views::Period::ALL {
            assert!(console_engine::i18n::has_key(super::period_key(period)));
        }
    }
}
