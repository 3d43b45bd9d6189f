//! Settings: language, the site's time zone, the policy of an agent or a group (idle threshold,
//! titles, redaction, retention, health interval), category rules and
//! retraining, static peers, fleet display, and the SMTP placeholder of
//! the alerts work (nothing is sent from here).

use egui::RichText;
use protocol::{Policy, RedactionRule, Retention};

use super::{agent_picker, CRITICAL_COLOR, MUTED_COLOR, WARN_COLOR};
use crate::app::{Action, PolicyTarget, RuleDraft, UiState};
use console_engine::categories::{DecidedBy, RulePattern};
use console_engine::i18n::{category_label, percent_label, tr, trf, zone_label, Lang};
use console_engine::settings::{ConsoleSettings, SmtpSecurity};

/// Sets one field of a retention (days per data class).
type SetDays = fn(&mut Retention, u16);
/// Sets one text field of the SMTP settings.
type SetText = fn(&mut console_engine::settings::SmtpSettings, String);

pub fn settings_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading(tr(lang, "settings.language"));
        ui.horizontal(|ui| {
            for candidate in Lang::ALL {
                if ui
                    .selectable_label(lang == candidate, candidate.native_name())
                    .clicked()
                    && lang != candidate
                {
                    actions.push(Action::SetLanguage(candidate));
                }
            }
        });
        ui.separator();
        zone_ui(ui, state, actions);
        ui.separator();
        policy_ui(ui, state, actions);
        ui.separator();
        categories_ui(ui, state, actions);
        ui.separator();
        peers_ui(ui, state, actions);
        ui.separator();
        let mut show = state.settings.show_current_app;
        if ui
            .checkbox(&mut show, tr(lang, "settings.show_current_app"))
            .changed()
        {
            actions.push(Action::SaveSettings(ConsoleSettings {
                show_current_app: show,
                ..state.settings.clone()
            }));
        }
        ui.separator();
        ui.heading(tr(lang, "settings.console_retention"));
        ui.weak(tr(lang, "settings.console_retention.note"));
        if let Some(retention) = retention_ui(ui, lang, state.settings.retention) {
            actions.push(Action::SaveSettings(ConsoleSettings {
                retention,
                ..state.settings.clone()
            }));
        }
        ui.separator();
        smtp_ui(ui, state, actions);
    });
}

/// Zones of the sites the console is made for, offered in one click.
const SUGGESTED_ZONES: [&str; 6] = [
    "Europe/Paris",
    "Europe/Brussels",
    "Europe/Zurich",
    "America/Montreal",
    "Africa/Dakar",
    "Africa/Casablanca",
];

/// The site's time zone: what is in use, a field for an IANA name, common
/// zones, this machine's zone, and the regrouping's progress.
fn zone_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "settings.zone"));
    ui.label(trf(
        lang,
        "settings.zone.current",
        &[("zone", &zone_label(&state.clock, state.now_ms))],
    ));
    if let Some(reason) = &state.zone_warning {
        ui.colored_label(
            WARN_COLOR,
            trf(lang, "settings.zone.warning", &[("reason", reason)]),
        );
    }
    if let Some((done, total)) = state.regrouping {
        ui.label(trf(
            lang,
            "settings.zone.regrouping",
            &[("done", &done.to_string()), ("total", &total.to_string())],
        ));
        let fraction = if total == 0 {
            0.0
        } else {
            done as f32 / total as f32
        };
        ui.add(egui::ProgressBar::new(fraction).show_percentage());
    }
    ui.horizontal_wrapped(|ui| {
        for zone in SUGGESTED_ZONES {
            let current = state.settings.time_zone == zone;
            if ui.selectable_label(current, zone).clicked() && !current {
                actions.push(Action::SetZone(zone.to_owned()));
            }
        }
        let machine = state.settings.time_zone.is_empty();
        if ui
            .selectable_label(machine, tr(lang, "settings.zone.machine"))
            .clicked()
            && !machine
        {
            actions.push(Action::SetZone(String::new()));
        }
    });
    ui.horizontal(|ui| {
        let mut zone = state.zone_draft.clone();
        let edit = ui.add(egui::TextEdit::singleline(&mut zone).hint_text("America/St_Johns"));
        let edit = edit.on_hover_text(tr(lang, "settings.zone"));
        if edit.changed() {
            actions.push(Action::EditZoneDraft(zone));
        }
        if ui
            .add_enabled(
                state.zone_draft_valid,
                egui::Button::new(tr(lang, "settings.zone.apply")),
            )
            .clicked()
        {
            actions.push(Action::SetZone(state.zone_draft.trim().to_owned()));
        }
        if !state.zone_draft.trim().is_empty() && !state.zone_draft_valid {
            ui.colored_label(WARN_COLOR, tr(lang, "settings.zone.invalid"));
        }
    });
}

/// Days kept per data class; the edited retention when a field changed.
fn retention_ui(ui: &mut egui::Ui, lang: Lang, retention: Retention) -> Option<Retention> {
    ui.horizontal_wrapped(|ui| {
        let fields: [(&'static str, u16, SetDays); 4] = [
            (
                "settings.retention.usage",
                retention.usage_days,
                |retention, days| retention.usage_days = days,
            ),
            (
                "settings.retention.sessions",
                retention.sessions_days,
                |retention, days| retention.sessions_days = days,
            ),
            (
                "settings.retention.health",
                retention.health_days,
                |retention, days| retention.health_days = days,
            ),
            (
                "settings.retention.frames",
                retention.frames_days,
                |retention, days| retention.frames_days = days,
            ),
        ];
        let mut edited = None;
        for (key, days, set) in fields {
            if let Some(new_days) = number_field(ui, tr(lang, key), u32::from(days), 1..=3650) {
                let mut changed = retention;
                set(&mut changed, u16::try_from(new_days).unwrap_or(u16::MAX));
                edited = Some(changed);
            }
        }
        edited
    })
    .inner
}

/// Periodic screenshot interval bounds, in minutes (the agent checks them
/// too).
const SCREENSHOT_MINUTES_MIN: u32 = 2;
const SCREENSHOT_MINUTES_MAX: u32 = 20;

/// A labelled number field; pushes the new value when changed.
fn number_field(
    ui: &mut egui::Ui,
    label: &str,
    value: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Option<u32> {
    ui.horizontal(|ui| {
        let name = ui.label(label);
        let mut edited = value;
        let changed = ui
            .add(egui::DragValue::new(&mut edited).range(range))
            .labelled_by(name.id)
            .changed();
        (changed && edited != value).then_some(edited)
    })
    .inner
}

/// Turns a change of the draft policy into the action that stores it.
type PolicyEdit<'a> = dyn Fn(&dyn Fn(&mut Policy)) -> Action + 'a;

/// Periodic screenshots of the policy: off by default, every 2–20 min,
/// optionally blurred.
fn screenshots_policy_ui(
    ui: &mut egui::Ui,
    lang: Lang,
    policy: &Policy,
    edit: &PolicyEdit<'_>,
    actions: &mut Vec<Action>,
) {
    let shots = policy.screenshots;
    let mut enabled = shots.enabled;
    if ui
        .checkbox(&mut enabled, tr(lang, "settings.screenshots"))
        .changed()
    {
        actions.push(edit(&|policy| {
            policy.screenshots.enabled = enabled;
            // An interval outside 2–20 min (never set) starts at 10 min.
            if !(SCREENSHOT_MINUTES_MIN * 60..=SCREENSHOT_MINUTES_MAX * 60)
                .contains(&policy.screenshots.interval_secs)
            {
                policy.screenshots.interval_secs = 600;
            }
        }));
    }
    if shots.enabled {
        ui.indent("screenshots", |ui| {
            let minutes =
                (shots.interval_secs / 60).clamp(SCREENSHOT_MINUTES_MIN, SCREENSHOT_MINUTES_MAX);
            if let Some(minutes) = number_field(
                ui,
                tr(lang, "settings.screenshots.every"),
                minutes,
                SCREENSHOT_MINUTES_MIN..=SCREENSHOT_MINUTES_MAX,
            ) {
                actions.push(edit(&|policy| {
                    policy.screenshots.interval_secs = minutes * 60
                }));
            }
            let mut blur = shots.blur;
            if ui
                .checkbox(&mut blur, tr(lang, "settings.screenshots.blur"))
                .changed()
            {
                actions.push(edit(&|policy| policy.screenshots.blur = blur));
            }
        });
    }
    ui.weak(tr(lang, "settings.screenshots.note"));
}

fn policy_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let editor = &state.policy;
    ui.heading(tr(lang, "settings.policy"));
    ui.horizontal(|ui| {
        let current = editor.agent;
        agent_picker(
            ui,
            state,
            tr(lang, "settings.policy.agent"),
            current,
            false,
            |picked| match (picked, current) {
                (Some(agent), _) | (None, Some(agent)) => Action::PolicyAgent(agent),
                (None, None) => Action::Navigate(crate::app::Screen::Settings),
            },
            actions,
        );
        if let Some(agent) = current {
            if ui.button(tr(lang, "settings.policy.load")).clicked() {
                actions.push(Action::PolicyAgent(agent));
            }
        }
    });
    let Some(agent) = editor.agent else {
        ui.weak(tr(lang, "settings.policy.pick"));
        return;
    };
    if editor.loading {
        ui.label(tr(lang, "settings.policy.loading"));
    }
    if let Some(error) = &editor.error {
        ui.colored_label(CRITICAL_COLOR, error);
    }
    ui.horizontal(|ui| {
        let name = ui.label(tr(lang, "settings.group"));
        let mut group = editor.group_draft.clone();
        if ui
            .text_edit_singleline(&mut group)
            .labelled_by(name.id)
            .changed()
        {
            actions.push(Action::EditGroup(group));
        }
        let stored = state
            .settings
            .groups
            .get(&agent)
            .cloned()
            .unwrap_or_default();
        if ui
            .add_enabled(
                stored != editor.group_draft.trim(),
                egui::Button::new(tr(lang, "settings.save")),
            )
            .clicked()
        {
            let mut settings = state.settings.clone();
            match editor.group_draft.trim() {
                "" => settings.groups.remove(&agent),
                group => settings.groups.insert(agent, group.to_owned()),
            };
            actions.push(Action::SaveSettings(settings));
        }
    });
    let Some(policy) = &editor.draft else {
        return;
    };
    let edit = |change: &dyn Fn(&mut Policy)| {
        let mut edited = policy.clone();
        change(&mut edited);
        Action::EditPolicy(edited)
    };
    if let Some(secs) = number_field(
        ui,
        tr(lang, "settings.idle_threshold"),
        policy.idle_threshold_secs,
        30..=3600,
    ) {
        actions.push(edit(&|policy| policy.idle_threshold_secs = secs));
    }
    let mut titles = policy.collect_titles;
    if ui
        .checkbox(&mut titles, tr(lang, "settings.titles"))
        .changed()
    {
        actions.push(edit(&|policy| policy.collect_titles = titles));
    }
    ui.weak(tr(lang, "settings.titles.note"));
    screenshots_policy_ui(ui, lang, policy, &edit, actions);
    ui.label(tr(lang, "settings.redaction"));
    for (index, rule) in policy.redaction_rules.iter().enumerate() {
        ui.horizontal(|ui| {
            let mut pattern = rule.pattern.clone();
            let mut replacement = rule.replacement.clone();
            let pattern_changed = ui
                .add(egui::TextEdit::singleline(&mut pattern).desired_width(220.0))
                .on_hover_text(tr(lang, "settings.redaction.pattern"))
                .changed();
            ui.label("→");
            let replacement_changed = ui
                .add(egui::TextEdit::singleline(&mut replacement).desired_width(160.0))
                .on_hover_text(tr(lang, "settings.redaction.replacement"))
                .changed();
            if pattern_changed || replacement_changed {
                actions.push(edit(&|policy| {
                    if let Some(rule) = policy.redaction_rules.get_mut(index) {
                        rule.pattern = pattern.clone();
                        rule.replacement = replacement.clone();
                    }
                }));
            }
            if ui.small_button(tr(lang, "settings.remove")).clicked() {
                actions.push(edit(&|policy| {
                    if index < policy.redaction_rules.len() {
                        policy.redaction_rules.remove(index);
                    }
                }));
            }
        });
    }
    if ui.button(tr(lang, "settings.redaction.add")).clicked() {
        actions.push(edit(&|policy| {
            policy.redaction_rules.push(RedactionRule {
                pattern: String::new(),
                replacement: "[…]".to_owned(),
            })
        }));
    }
    ui.label(tr(lang, "settings.retention"));
    if let Some(retention) = retention_ui(ui, lang, policy.retention) {
        actions.push(edit(&|policy| policy.retention = retention));
    }
    if let Some(secs) = number_field(
        ui,
        tr(lang, "settings.health_interval"),
        policy.health_interval_secs,
        5..=3600,
    ) {
        actions.push(edit(&|policy| policy.health_interval_secs = secs));
    }
    ui.horizontal(|ui| {
        ui.label(tr(lang, "settings.apply_to"));
        let target = editor.target.clone().unwrap_or(PolicyTarget::Agent);
        let mut choices = vec![(
            PolicyTarget::Agent,
            tr(lang, "settings.apply.agent").to_owned(),
        )];
        if let Some(group) = state.settings.groups.get(&agent) {
            choices.push((
                PolicyTarget::Group(group.clone()),
                trf(lang, "settings.apply.group", &[("group", group)]),
            ));
        }
        choices.push((PolicyTarget::All, tr(lang, "settings.apply.all").to_owned()));
        for (choice, label) in choices {
            if ui.radio(target == choice, label).clicked() {
                actions.push(Action::PolicyTarget(choice));
            }
        }
        if ui.button(tr(lang, "settings.apply")).clicked() {
            actions.push(Action::ApplyPolicy);
        }
    });
}

fn categories_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "settings.categories"));
    let rules = &state.settings.category_rules;
    if rules.is_empty() {
        ui.weak(tr(lang, "settings.rules.none"));
    } else {
        egui::Grid::new("category_rules")
            .striped(true)
            .show(ui, |ui| {
                for rule in rules {
                    let (kind, pattern) = match &rule.pattern {
                        RulePattern::Exact(app) => (tr(lang, "settings.rule.exact"), app),
                        RulePattern::Regex(regex) => (tr(lang, "settings.rule.regex"), regex),
                    };
                    ui.label(format!("#{}", rule.id));
                    ui.label(RichText::new(kind).color(MUTED_COLOR));
                    ui.monospace(pattern);
                    ui.label("→");
                    ui.strong(category_label(lang, &rule.category));
                    if ui.small_button(tr(lang, "settings.remove")).clicked() {
                        let mut settings = state.settings.clone();
                        settings.category_rules.retain(|kept| kept.id != rule.id);
                        actions.push(Action::SaveSettings(settings));
                    }
                    ui.end_row();
                }
            });
    }
    let draft = &state.rule_draft;
    ui.horizontal_wrapped(|ui| {
        let name = ui.label(tr(lang, "settings.rule.pattern"));
        let mut pattern = draft.pattern.clone();
        if ui
            .text_edit_singleline(&mut pattern)
            .labelled_by(name.id)
            .changed()
        {
            actions.push(Action::EditRuleDraft(RuleDraft {
                pattern,
                ..draft.clone()
            }));
        }
        let mut regex = draft.regex;
        if ui
            .checkbox(&mut regex, tr(lang, "settings.rule.regex"))
            .changed()
        {
            actions.push(Action::EditRuleDraft(RuleDraft {
                regex,
                ..draft.clone()
            }));
        }
        let name = ui.label(tr(lang, "settings.rule.category"));
        let mut category = draft.category.clone();
        egui::ComboBox::from_id_salt("rule_category")
            .selected_text(if category.is_empty() {
                "…"
            } else {
                category_label(lang, &category)
            })
            .show_ui(ui, |ui| {
                // Shown translated, so sorted by what the user reads.
                let mut known_categories: Vec<(&str, &String)> = state
                    .categories
                    .iter()
                    .map(|known| (category_label(lang, known), known))
                    .collect();
                known_categories.sort_unstable();
                for (label, known) in known_categories {
                    if ui.selectable_label(*known == category, label).clicked() {
                        category = known.clone();
                    }
                }
            })
            .response
            .labelled_by(name.id);
        if category != draft.category {
            actions.push(Action::EditRuleDraft(RuleDraft {
                category,
                ..draft.clone()
            }));
        }
        let ready = !draft.pattern.trim().is_empty() && !draft.category.trim().is_empty();
        if ui
            .add_enabled(ready, egui::Button::new(tr(lang, "settings.rule.add")))
            .clicked()
        {
            actions.push(Action::AddRule);
        }
    });
    ui.horizontal(|ui| {
        if ui.button(tr(lang, "settings.retrain")).clicked() {
            actions.push(Action::Retrain);
        }
        ui.weak(tr(lang, "settings.retrain.note"));
    });
    ui.horizontal(|ui| {
        let name = ui.label(tr(lang, "settings.try"));
        let mut app = state.try_app.clone();
        if ui
            .text_edit_singleline(&mut app)
            .labelled_by(name.id)
            .changed()
        {
            actions.push(Action::EditTryApp(app));
        }
        if let Some((app, result)) = &state.categorised {
            if *app == state.try_app {
                let decided = match result.decided_by {
                    DecidedBy::Rule { rule_id } => trf(
                        lang,
                        "settings.decided.rule",
                        &[("id", &rule_id.to_string())],
                    ),
                    DecidedBy::Model => {
                        let pct = percent_label(lang, f64::from(result.confidence) * 100.0, 0);
                        trf(lang, "settings.decided.model", &[("pct", &pct)])
                    }
                };
                ui.strong(category_label(lang, &result.category));
                ui.weak(decided);
            }
        }
    });
}

fn peers_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "settings.peers"));
    for peer in &state.settings.static_peers {
        ui.horizontal(|ui| {
            ui.monospace(peer);
            if ui.small_button(tr(lang, "settings.remove")).clicked() {
                let mut settings = state.settings.clone();
                settings.static_peers.retain(|kept| kept != peer);
                actions.push(Action::SaveSettings(settings));
            }
        });
    }
    ui.horizontal(|ui| {
        let mut peer = state.peer_draft.clone();
        let edit = ui.add(egui::TextEdit::singleline(&mut peer).hint_text("10.0.0.7:47100"));
        let edit = edit.on_hover_text(tr(lang, "settings.peers"));
        if edit.changed() {
            actions.push(Action::EditPeerDraft(peer));
        }
        let valid = state
            .peer_draft
            .trim()
            .parse::<std::net::SocketAddr>()
            .is_ok();
        if ui
            .add_enabled(valid, egui::Button::new(tr(lang, "settings.peers.add")))
            .clicked()
        {
            actions.push(Action::AddPeer);
        }
        if !state.peer_draft.trim().is_empty() && !valid {
            ui.colored_label(WARN_COLOR, tr(lang, "settings.peers.invalid"));
        }
    });
}

fn smtp_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.heading(tr(lang, "settings.smtp"));
    ui.weak(tr(lang, "settings.smtp.note"));
    let draft = &state.smtp_draft;
    egui::Grid::new("smtp").num_columns(2).show(ui, |ui| {
        let text_fields: [(&'static str, &String, SetText); 3] = [
            ("settings.smtp.host", &draft.host, |smtp, value| {
                smtp.host = value
            }),
            ("settings.smtp.from", &draft.from, |smtp, value| {
                smtp.from = value
            }),
            ("settings.smtp.to", &draft.to, |smtp, value| smtp.to = value),
        ];
        for (key, value, set) in text_fields {
            let name = ui.label(tr(lang, key));
            let mut edited = value.clone();
            if ui
                .text_edit_singleline(&mut edited)
                .labelled_by(name.id)
                .changed()
            {
                let mut smtp = draft.clone();
                set(&mut smtp, edited);
                actions.push(Action::EditSmtp(smtp));
            }
            ui.end_row();
        }
        let name = ui.label(tr(lang, "settings.smtp.port"));
        let mut port = draft.port;
        if ui
            .add(egui::DragValue::new(&mut port).range(1..=65535))
            .labelled_by(name.id)
            .changed()
        {
            actions.push(Action::EditSmtp(console_engine::settings::SmtpSettings {
                port,
                ..draft.clone()
            }));
        }
        ui.end_row();
        ui.label(tr(lang, "settings.smtp.security"));
        ui.horizontal(|ui| {
            for security in SmtpSecurity::ALL {
                let name = match security {
                    SmtpSecurity::Starttls => "STARTTLS",
                    SmtpSecurity::Tls => "TLS",
                    SmtpSecurity::Plain => tr(lang, "settings.smtp.plain"),
                };
                if ui
                    .selectable_label(draft.security == security, name)
                    .clicked()
                {
                    actions.push(Action::EditSmtp(console_engine::settings::SmtpSettings {
                        security,
                        ..draft.clone()
                    }));
                }
            }
        });
        ui.end_row();
    });
    let changed = *draft != state.settings.smtp;
    if ui
        .add_enabled(changed, egui::Button::new(tr(lang, "settings.save")))
        .clicked()
    {
        actions.push(Action::SaveSettings(ConsoleSettings {
            smtp: draft.clone(),
            ..state.settings.clone()
        }));
    }
}
