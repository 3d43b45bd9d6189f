//! People: the persons of the site with their accounts and active time,
//! the persons proposed from the accounts agents reported (confirmed with
//! one click), a form to add one, and the selected person's attendance and
//! applications across their workstations, with deactivate and the GDPR
//! erasure (confirmed first). Changes go to the engine as the people
//! commands of the command line.

use std::sync::Arc;

use egui::RichText;

use super::charts::usage_columns_ui;
use super::employee::attendance_grid;
use super::{empty_state, period_picker, CRITICAL_COLOR, MUTED_COLOR};
use crate::app::{Action, PersonDraft, UiState};
use console_engine::i18n::{duration_label, tr, trf, Lang};
use console_engine::people::commands::{AccountText, PeopleAsk};
use console_engine::people::Account;
use console_engine::views::{PeopleView, PersonRow, ViewData, ViewRequest};

pub fn people_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.horizontal(|ui| {
        ui.heading(tr(lang, "people.title"));
        ui.separator();
        period_picker(
            ui,
            lang,
            state.people.period,
            Action::SetPeoplePeriod,
            actions,
        );
    });
    ui.weak(tr(lang, "people.note"));
    let request = ViewRequest::People {
        person: state.people.selected,
        period: state.people.period,
    };
    let Some(ViewData::People(view)) = state.views.get(&request).map(Arc::as_ref) else {
        ui.label(tr(lang, "loading"));
        return;
    };
    if let Some(problem) = &view.problem {
        ui.colored_label(CRITICAL_COLOR, problem);
        return;
    }
    // The persons and the selected one on the left; what to add on the
    // right, always in view.
    ui.columns(2, |columns| {
        let [left, right] = columns else {
            return;
        };
        egui::ScrollArea::vertical()
            .id_salt("people_left")
            .show(left, |ui| {
                people_table(ui, state, view, actions);
                ui.add_space(8.0);
                if let Some(row) = state
                    .people
                    .selected
                    .and_then(|id| view.people.iter().find(|row| row.person.id == id))
                {
                    person_detail(ui, state, view, row, actions);
                }
            });
        egui::ScrollArea::vertical()
            .id_salt("people_right")
            .show(right, |ui| {
                add_form(ui, state, actions);
                ui.add_space(8.0);
                proposals(ui, state, view, actions);
            });
    });
}

fn people_table(ui: &mut egui::Ui, state: &UiState, view: &PeopleView, actions: &mut Vec<Action>) {
    let lang = state.lang;
    if view.people.is_empty() {
        empty_state(ui, tr(lang, "people.empty"));
        return;
    }
    egui::Grid::new("people_table")
        .striped(true)
        .num_columns(5)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            for key in [
                "people.col.name",
                "people.col.email",
                "people.col.team",
                "people.col.accounts",
                "col.active",
            ] {
                ui.strong(tr(lang, key));
            }
            ui.end_row();
            for row in &view.people {
                let person = &row.person;
                let selected = state.people.selected == Some(person.id);
                let mut name = RichText::new(&person.name);
                if !person.active {
                    name = name.italics().color(MUTED_COLOR);
                }
                if ui.selectable_label(selected, name).clicked() {
                    actions.push(Action::SelectPerson((!selected).then_some(person.id)));
                }
                ui.label(person.email.as_deref().unwrap_or("—"));
                ui.label(person.team.as_deref().unwrap_or("—"));
                let accounts: Vec<String> = row
                    .accounts
                    .iter()
                    .map(|(account, workstation)| {
                        account_label(lang, account, workstation.as_deref())
                    })
                    .collect();
                let shown = if accounts.is_empty() {
                    tr(lang, "people.no_account").to_owned()
                } else {
                    accounts.join(", ")
                };
                let label = ui.label(shown);
                if !row.seen.is_empty() {
                    label.on_hover_text(trf(
                        lang,
                        "people.seen_as",
                        &[("accounts", &row.seen.join(", "))],
                    ));
                }
                if person.active {
                    ui.label(duration_label(lang, row.active_ms));
                } else {
                    ui.weak(tr(lang, "people.deactivated"));
                }
                ui.end_row();
            }
        });
}

/// `alice sur PC-03`, `alice sur tout poste`, `tout compte de PC-03`.
fn account_label(lang: Lang, account: &Account, workstation: Option<&str>) -> String {
    match (&account.user, workstation) {
        (Some(user), Some(workstation)) => trf(
            lang,
            "people.account.user_on",
            &[("user", user), ("workstation", workstation)],
        ),
        (Some(user), None) => trf(lang, "people.account.user_anywhere", &[("user", user)]),
        (None, Some(workstation)) => trf(
            lang,
            "people.account.workstation",
            &[("workstation", workstation)],
        ),
        (None, None) => String::new(),
    }
}

/// `alice`, `alice@PC-03` or `@PC-03`: what the people commands read.
fn account_text(account: &Account) -> AccountText {
    let agent = account.agent.map(|agent| agent.to_string());
    AccountText(match (&account.user, agent) {
        (Some(user), Some(agent)) => format!("{user}@{agent}"),
        (Some(user), None) => user.clone(),
        (None, Some(agent)) => format!("@{agent}"),
        (None, None) => String::new(),
    })
}

fn person_detail(
    ui: &mut egui::Ui,
    state: &UiState,
    view: &PeopleView,
    row: &PersonRow,
    actions: &mut Vec<Action>,
) {
    let lang = state.lang;
    let person = &row.person;
    let reference = person.id.0.to_string();
    ui.separator();
    ui.heading(&person.name);
    ui.horizontal_wrapped(|ui| {
        for (account, workstation) in &row.accounts {
            ui.label(account_label(lang, account, workstation.as_deref()));
            if ui.small_button(tr(lang, "people.unmap")).clicked() {
                actions.push(Action::People(PeopleAsk::Map {
                    person: reference.clone(),
                    accounts: vec![account_text(account)],
                    remove: true,
                }));
            }
            ui.separator();
        }
    });
    ui.horizontal(|ui| {
        let mut draft = state.people.account_draft.clone();
        let field = ui.add(
            egui::TextEdit::singleline(&mut draft)
                .hint_text(tr(lang, "people.account.hint"))
                .desired_width(220.0),
        );
        if field.changed() {
            actions.push(Action::EditAccountDraft(draft.clone()));
        }
        let typed = !draft.trim().is_empty();
        if ui
            .add_enabled(typed, egui::Button::new(tr(lang, "people.map")))
            .clicked()
        {
            actions.push(Action::People(PeopleAsk::Map {
                person: reference.clone(),
                accounts: vec![AccountText(draft.trim().to_owned())],
                remove: false,
            }));
        }
        ui.separator();
        let (key, undo) = if person.active {
            ("people.deactivate", false)
        } else {
            ("people.reactivate", true)
        };
        if ui.button(tr(lang, key)).clicked() {
            actions.push(Action::People(PeopleAsk::Deactivate {
                person: reference.clone(),
                undo,
            }));
        }
        if ui
            .button(RichText::new(tr(lang, "people.erase")).color(CRITICAL_COLOR))
            .clicked()
        {
            actions.push(Action::ConfirmErase(Some(person.id)));
        }
    });
    if state.people.confirm_erase == Some(person.id) {
        ui.group(|ui| {
            ui.colored_label(
                CRITICAL_COLOR,
                trf(lang, "people.erase.confirm", &[("name", &person.name)]),
            );
            ui.horizontal(|ui| {
                if ui.button(tr(lang, "people.erase.yes")).clicked() {
                    actions.push(Action::ConfirmErase(None));
                    actions.push(Action::SelectPerson(None));
                    actions.push(Action::People(PeopleAsk::Erase {
                        person: reference.clone(),
                    }));
                }
                if ui.button(tr(lang, "cancel")).clicked() {
                    actions.push(Action::ConfirmErase(None));
                }
            });
        });
    }
    let Some(detail) = view
        .selected
        .as_ref()
        .filter(|detail| detail.id == person.id)
    else {
        ui.label(tr(lang, "loading"));
        return;
    };
    ui.add_space(6.0);
    usage_columns_ui(ui, lang, &detail.summary, "person_usage");
    ui.add_space(6.0);
    ui.strong(tr(lang, "attendance.title"));
    let days: Vec<_> = detail
        .attendance
        .iter()
        .map(|line| line.day.clone())
        .collect();
    let clock = detail
        .attendance
        .first()
        .map_or(&state.clock, |line| &line.clock);
    attendance_grid(ui, lang, clock, "person_attendance", &days);
}

fn proposals(ui: &mut egui::Ui, state: &UiState, view: &PeopleView, actions: &mut Vec<Action>) {
    let lang = state.lang;
    if view.proposals.is_empty() {
        return;
    }
    ui.separator();
    ui.strong(tr(lang, "people.proposed"));
    ui.weak(tr(lang, "people.proposed.note"));
    egui::Grid::new("people_proposals")
        .striped(true)
        .num_columns(3)
        .spacing([16.0, 4.0])
        .show(ui, |ui| {
            for proposal in &view.proposals {
                ui.label(&proposal.name);
                ui.label(trf(
                    lang,
                    "people.seen_on",
                    &[("workstations", &proposal.seen_on.join(", "))],
                ));
                if ui.button(tr(lang, "people.confirm")).clicked() {
                    actions.push(Action::People(PeopleAsk::Add {
                        name: proposal.name.clone(),
                        email: String::new(),
                        team: String::new(),
                        accounts: proposal.accounts.iter().map(account_text).collect(),
                    }));
                }
                ui.end_row();
            }
        });
}

fn add_form(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    ui.strong(tr(lang, "people.add"));
    let mut draft: PersonDraft = state.people.draft.clone();
    let mut changed = false;
    egui::Grid::new("people_add")
        .num_columns(2)
        .spacing([8.0, 4.0])
        .show(ui, |ui| {
            for (key, field, hint) in [
                ("people.col.name", &mut draft.name, ""),
                ("people.col.email", &mut draft.email, "nom@exemple.fr"),
                ("people.col.team", &mut draft.team, ""),
                (
                    "people.col.accounts",
                    &mut draft.account,
                    "alice, alice@PC-03, @PC-03",
                ),
            ] {
                ui.label(tr(lang, key));
                changed |= ui
                    .add(
                        egui::TextEdit::singleline(field)
                            .hint_text(hint)
                            .desired_width(260.0),
                    )
                    .changed();
                ui.end_row();
            }
        });
    if changed {
        actions.push(Action::EditPersonDraft(draft.clone()));
    }
    let named = !draft.name.trim().is_empty();
    let add =
        ui.horizontal(|ui| ui.add_enabled(named, egui::Button::new(tr(lang, "people.add.button"))));
    if add.inner.clicked() {
        actions.push(Action::People(PeopleAsk::Add {
            name: draft.name.trim().to_owned(),
            email: draft.email.trim().to_owned(),
            team: draft.team.trim().to_owned(),
            accounts: draft
                .account
                .split(',')
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(|text| AccountText(text.to_owned()))
                .collect(),
        }));
    }
}
