//! Enrolment by code from the window (top of the Fleet screen, admin
//! consoles): the site directory, its passphrase, uses, validity, group
//! and "approve each"; then the code to give the workstations, the
//! workstations waiting for approval (approve or decline each), those
//! enrolled, and Close. The engine (here or in `serve`) holds it open.

use egui::RichText;

use super::{CRITICAL_COLOR, MUTED_COLOR, OK_COLOR, WARN_COLOR};
use crate::app::{Action, EnrolmentForm, UiState};
use console_engine::enrolment::EndReason;
use console_engine::i18n::{date_time_seconds_label, time_label, tr, trf};
use console_engine::service::{EnrolmentCommand, EnrolmentEnd, OpenEnrolment};

pub fn enrolment_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let status = &state.enrolment.status;
    let open = status.open.is_some();
    egui::CollapsingHeader::new(tr(lang, "enrol.title"))
        .id_salt("enrolment")
        .default_open(open)
        .open(open.then_some(true))
        .show(ui, |ui| match &status.open {
            Some(open) => open_ui(ui, state, open, actions),
            None => {
                match &status.last_end {
                    Some(EnrolmentEnd::Ended { reason, enrolled }) => {
                        let key = match reason {
                            EndReason::WrongCodes => "enrol.end.wrong_codes",
                            EndReason::UsedUp => "enrol.end.used_up",
                            EndReason::Expired => "enrol.end.expired",
                            EndReason::Closed => "enrol.end.closed",
                        };
                        let enrolled = enrolled.to_string();
                        ui.colored_label(MUTED_COLOR, trf(lang, key, &[("enrolled", &enrolled)]));
                    }
                    Some(EnrolmentEnd::NotOpened(reason)) => {
                        ui.colored_label(CRITICAL_COLOR, reason);
                    }
                    None => {}
                }
                form_ui(ui, state, actions);
            }
        });
}

fn form_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let mut form: EnrolmentForm = state.enrolment.form.clone();
    let mut changed = false;
    egui::Grid::new("enrolment_form")
        .num_columns(2)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            ui.label(tr(lang, "enrol.site"));
            changed |= ui
                .add(
                    egui::TextEdit::singleline(&mut form.site)
                        .hint_text("/srv/smarttracker/site")
                        .desired_width(320.0),
                )
                .changed();
            ui.end_row();
            ui.label(tr(lang, "enrol.passphrase"));
            changed |= ui
                .add(
                    egui::TextEdit::singleline(&mut form.passphrase)
                        .password(true)
                        .desired_width(320.0),
                )
                .changed();
            ui.end_row();
            ui.label(tr(lang, "enrol.uses"));
            changed |= ui
                .add(egui::DragValue::new(&mut form.uses).range(1..=10_000))
                .changed();
            ui.end_row();
            ui.label(tr(lang, "enrol.expires"));
            changed |= ui
                .add(egui::TextEdit::singleline(&mut form.expires).desired_width(80.0))
                .changed();
            ui.end_row();
            ui.label(tr(lang, "enrol.group"));
            changed |= ui
                .add(egui::TextEdit::singleline(&mut form.group).desired_width(160.0))
                .changed();
            ui.end_row();
            ui.label("");
            changed |= ui
                .checkbox(&mut form.approve_each, tr(lang, "enrol.approve_each"))
                .changed();
            ui.end_row();
        });
    if changed {
        actions.push(Action::EditEnrolmentForm(form.clone()));
    }
    let ready = !form.site.trim().is_empty();
    let clicked = ui
        .horizontal(|ui| ui.add_enabled(ready, egui::Button::new(tr(lang, "enrol.open"))))
        .inner
        .clicked();
    if clicked {
        actions.push(Action::OpenEnrolment);
    }
}

fn open_ui(ui: &mut egui::Ui, state: &UiState, open: &OpenEnrolment, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.horizontal(|ui| {
        ui.label(tr(lang, "enrol.code"));
        ui.label(RichText::new(&open.code).monospace().size(20.0).strong());
    });
    let enrolled = open.done.len().to_string();
    let uses = open.uses.to_string();
    let until = date_time_seconds_label(lang, &state.clock, open.expires_at_ms);
    ui.label(trf(
        lang,
        "enrol.open.status",
        &[
            ("enrolled", &enrolled),
            ("uses", &uses),
            ("until", &until),
            ("listening", &open.listening),
        ],
    ));
    ui.weak(trf(lang, "enrol.command", &[("code", &open.code)]));
    if open.approve_each {
        ui.add_space(4.0);
        ui.strong(tr(lang, "enrol.pending"));
        if open.pending.is_empty() {
            ui.weak(tr(lang, "enrol.pending.none"));
        }
        for request in &open.pending {
            ui.horizontal(|ui| {
                ui.colored_label(
                    WARN_COLOR,
                    trf(
                        lang,
                        "enrol.pending.line",
                        &[("name", &request.name), ("from", &request.from)],
                    ),
                );
                if ui.button(tr(lang, "enrol.approve")).clicked() {
                    actions.push(Action::Enrolment(EnrolmentCommand::Decide {
                        id: request.id,
                        approve: true,
                    }));
                }
                if ui
                    .button(RichText::new(tr(lang, "enrol.decline")).color(CRITICAL_COLOR))
                    .clicked()
                {
                    actions.push(Action::Enrolment(EnrolmentCommand::Decide {
                        id: request.id,
                        approve: false,
                    }));
                }
            });
        }
    }
    if !open.done.is_empty() {
        ui.add_space(4.0);
        ui.strong(tr(lang, "enrol.done"));
        for done in &open.done {
            ui.colored_label(
                OK_COLOR,
                trf(
                    lang,
                    "enrol.done.line",
                    &[
                        ("name", &done.name),
                        ("from", &done.from),
                        ("time", &time_label(&state.clock, done.at_ms)),
                    ],
                ),
            );
        }
    }
    if ui.button(tr(lang, "enrol.close")).clicked() {
        actions.push(Action::Enrolment(EnrolmentCommand::Close));
    }
}
