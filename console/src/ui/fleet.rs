//! Fleet: every agent with its state, last contact, address, user, current
//! application (when the settings allow it) and health; search, filter and
//! sort; rows are virtualised, so a thousand agents cost what fits on
//! screen. Admin consoles enrol workstations by code from here.

use egui_extras::{Column, TableBuilder};

use super::{ago_text, empty_state, fault_text, level_text, status_text, zone_marker};
use crate::app::{fleet_rows, Action, FleetQuery, SortColumn, UiState};
use console_engine::i18n::{tr, trf, Lang};
use console_engine::views::{FleetRow, Status};

/// Row height of the fleet table, in points.
pub const ROW_HEIGHT_POINTS: f32 = 22.0;

pub fn fleet_ui(ui: &mut egui::Ui, state: &UiState, actions: &mut Vec<Action>) {
    let lang = state.lang;
    let rows = fleet_rows(state);
    ui.heading(tr(lang, "fleet.title"));
    if state.role == Some(certs::Role::Admin) {
        super::enrolment::enrolment_ui(ui, state, actions);
    }
    let count = |status: Status| {
        rows.iter()
            .filter(|row| row.status == status)
            .count()
            .to_string()
    };
    let (online, offline, unknown) = (
        count(Status::Online),
        count(Status::Offline),
        count(Status::Unknown),
    );
    ui.label(trf(
        lang,
        "fleet.counts",
        &[
            ("online", &online),
            ("offline", &offline),
            ("unknown", &unknown),
        ],
    ));
    if rows.is_empty() {
        empty_state(ui, tr(lang, "fleet.empty"));
        return;
    }
    ui.horizontal(|ui| {
        let query = &state.fleet_query;
        let label = ui.label(tr(lang, "fleet.search"));
        let mut search = query.search.clone();
        let edit = ui
            .add(egui::TextEdit::singleline(&mut search).hint_text(tr(lang, "fleet.search.hint")))
            .labelled_by(label.id);
        if edit.changed() {
            actions.push(Action::FleetQuery(FleetQuery {
                search,
                ..query.clone()
            }));
        }
        ui.separator();
        ui.label(tr(lang, "fleet.filter"));
        let filters = [
            (None, "fleet.filter.all"),
            (Some(Status::Online), "status.online"),
            (Some(Status::Offline), "status.offline"),
            (Some(Status::Unknown), "status.unknown"),
        ];
        for (status, key) in filters {
            if ui
                .selectable_label(query.status == status, tr(lang, key))
                .clicked()
            {
                actions.push(Action::FleetQuery(FleetQuery {
                    status,
                    ..query.clone()
                }));
            }
        }
        ui.separator();
        let shown = state.fleet_visible.len().to_string();
        let total = rows.len().to_string();
        ui.weak(trf(
            lang,
            "fleet.shown",
            &[("shown", &shown), ("total", &total)],
        ));
    });
    ui.add_space(4.0);
    if state.fleet_visible.is_empty() {
        empty_state(ui, tr(lang, "fleet.no_match"));
        return;
    }
    let show_current_app = match state
        .views
        .get(&console_engine::views::ViewRequest::Fleet)
        .map(AsRef::as_ref)
    {
        Some(console_engine::views::ViewData::Fleet(view)) => view.show_current_app,
        _ => false,
    };
    fleet_table(
        ui,
        &FleetTable {
            lang,
            now_ms: state.now_ms,
            query: &state.fleet_query,
            rows,
            visible: &state.fleet_visible,
            show_current_app,
            site_zone: state.clock.name(),
        },
        actions,
    );
}

/// What the fleet table draws.
#[derive(Debug, Clone, Copy)]
pub struct FleetTable<'a> {
    pub lang: Lang,
    pub now_ms: i64,
    pub query: &'a FleetQuery,
    pub rows: &'a [FleetRow],
    /// Indices into `rows`, in display order.
    pub visible: &'a [usize],
    pub show_current_app: bool,
    /// The site's time zone, named by the marker of workstations in
    /// another one.
    pub site_zone: &'a str,
}

fn header_button(
    ui: &mut egui::Ui,
    lang: Lang,
    key: &'static str,
    column: SortColumn,
    query: &FleetQuery,
    actions: &mut Vec<Action>,
) {
    let arrow = match (query.sort == column, query.ascending) {
        (true, true) => " ▲",
        (true, false) => " ▼",
        (false, _) => "",
    };
    let text = egui::RichText::new(format!("{}{arrow}", tr(lang, key))).strong();
    if ui.add(egui::Button::new(text).frame(false)).clicked() {
        actions.push(Action::FleetQuery(FleetQuery {
            sort: column,
            ascending: if query.sort == column {
                !query.ascending
            } else {
                true
            },
            ..query.clone()
        }));
    }
}

/// The virtualised table: only the rows in view are laid out.
pub fn fleet_table(ui: &mut egui::Ui, table: &FleetTable<'_>, actions: &mut Vec<Action>) {
    let FleetTable {
        lang,
        now_ms,
        query,
        rows,
        visible,
        show_current_app,
        site_zone,
    } = *table;
    TableBuilder::new(ui)
        .id_salt("fleet_table")
        .striped(true)
        .resizable(true)
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::initial(330.0).at_least(80.0).clip(true))
        .column(Column::initial(170.0).at_least(100.0).clip(true))
        .column(Column::initial(150.0).at_least(90.0))
        .column(Column::initial(150.0).at_least(90.0).clip(true))
        .column(Column::initial(110.0).at_least(70.0).clip(true))
        .column(Column::initial(170.0).at_least(90.0).clip(true))
        .column(Column::initial(110.0).at_least(70.0))
        .column(Column::remainder().at_least(60.0).clip(true))
        .header(ROW_HEIGHT_POINTS + 4.0, |mut header| {
            let columns = [
                ("col.status", Some(SortColumn::Status)),
                ("col.name", Some(SortColumn::Name)),
                ("col.last_seen", Some(SortColumn::LastSeen)),
                ("col.address", Some(SortColumn::Address)),
                ("col.user", Some(SortColumn::User)),
                ("col.current_app", None),
                ("col.health", Some(SortColumn::Health)),
                ("col.group", None),
            ];
            for (key, sort) in columns {
                header.col(|ui| match sort {
                    Some(column) => header_button(ui, lang, key, column, query, actions),
                    None => {
                        ui.strong(tr(lang, key));
                    }
                });
            }
        })
        .body(|body| {
            body.rows(ROW_HEIGHT_POINTS, visible.len(), |mut table_row| {
                let Some(row) = visible
                    .get(table_row.index())
                    .and_then(|&index| rows.get(index))
                else {
                    return;
                };
                table_row.col(|ui| {
                    ui.label(status_text(lang, row.status));
                    if let Some(fault) = &row.fault {
                        let count = fault.count.to_string();
                        let when = ago_text(lang, now_ms, Some(fault.last_ms));
                        ui.label(fault_text(lang, fault.kind)).on_hover_text(trf(
                            lang,
                            "fault.hover",
                            &[
                                ("detail", &fault.detail),
                                ("count", &count),
                                ("when", &when),
                            ],
                        ));
                    }
                });
                table_row.col(|ui| {
                    let name = if row.demo {
                        format!("{} ({})", row.name, tr(lang, "fleet.demo"))
                    } else {
                        row.name.clone()
                    };
                    let link = ui.link(name);
                    let link = match &row.last_error {
                        Some(error) => link.on_hover_text(error),
                        None => link,
                    };
                    if link.clicked() {
                        actions.push(Action::OpenEmployee(row.agent));
                    }
                    if let Some(zone) = &row.other_zone {
                        zone_marker(ui, lang, zone, site_zone, now_ms);
                    }
                });
                table_row.col(|ui| {
                    ui.label(ago_text(lang, now_ms, row.last_seen_ms));
                });
                table_row.col(|ui| {
                    ui.label(row.address.as_deref().unwrap_or("—"));
                });
                table_row.col(|ui| {
                    ui.label(row.user.as_deref().unwrap_or("—"));
                });
                table_row.col(|ui| match &row.current_app {
                    Some(app) => {
                        ui.label(app);
                    }
                    None if !show_current_app => {
                        ui.weak(tr(lang, "current_app.hidden"));
                    }
                    None => {
                        ui.label("—");
                    }
                });
                table_row.col(|ui| {
                    let badge = ui.label(level_text(lang, row.health));
                    if let Some(score) = row.health_score {
                        badge.on_hover_text(format!("{score}/100"));
                    }
                });
                table_row.col(|ui| {
                    ui.label(row.group.as_deref().unwrap_or(""));
                });
            });
        });
}
