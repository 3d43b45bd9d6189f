//! The console window: UI state, the logic step that drains engine events
//! and turns the UI's [`Action`]s into engine [`Command`]s, and the frame
//! that lays out the screens of `ui/`. Screens only draw and push actions;
//! all store and network work happens in the [`Engine`]. The logic step
//! also decides who is watched live (only on the Live screen, only for an
//! admin console) and turns decoded frames and screenshots into textures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use certs::Role;
use egui::{ColorImage, TextureHandle, TextureOptions};
use protocol::{Policy, UnixMillis};

use crate::ui;
use console_engine::categories::{Categorisation, Rule};
use console_engine::commands::{CliOutput, CliRequest, Passphrase};
use console_engine::enrolment::{parse_expiry, DEFAULT_ENROL_PORT};
use console_engine::i18n::{date_time_seconds_label, trf, Lang};
use console_engine::live::{LiveBoard, LiveMode, RgbaImage, WatchId};
use console_engine::model::{AgentId, DayClock};
use console_engine::people::commands::PeopleAsk;
use console_engine::people::PersonId;
use console_engine::service::{
    Command, EnrolmentCommand, EnrolmentOpen, EnrolmentStatus, Event, Link, SyncSummary,
};
use console_engine::settings::{ConsoleSettings, SmtpSettings};
use console_engine::store::{ScreenshotKey, ScreenshotMeta};
use console_engine::views::{FleetRow, Period, Status, ViewData, ViewRequest};

/// Most agents watched at once in the live grid (online ones, in fleet
/// order).
pub const MAX_GRID_AGENTS: usize = 12;
/// Decoded screenshots kept as textures.
pub const GALLERY_TEXTURES: usize = 6;
/// How often the Live screen redraws without news (ages, late frames).
pub const LIVE_REDRAW: Duration = Duration::from_secs(1);

/// The screens, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    Fleet,
    Employee,
    Organisation,
    Attendance,
    People,
    Health,
    Live,
    Screenshots,
    Settings,
    Audit,
}

impl Screen {
    pub const ALL: [Screen; 10] = [
        Screen::Fleet,
        Screen::Employee,
        Screen::Organisation,
        Screen::Attendance,
        Screen::People,
        Screen::Health,
        Screen::Live,
        Screen::Screenshots,
        Screen::Settings,
        Screen::Audit,
    ];

    /// Message key of the screen's name.
    pub fn key(self) -> &'static str {
        match self {
            Screen::Fleet => "nav.fleet",
            Screen::Employee => "nav.employee",
            Screen::Organisation => "nav.organisation",
            Screen::Attendance => "nav.attendance",
            Screen::People => "nav.people",
            Screen::Health => "nav.health",
            Screen::Live => "nav.live",
            Screen::Screenshots => "nav.screenshots",
            Screen::Settings => "nav.settings",
            Screen::Audit => "nav.audit",
        }
    }

    /// `fleet`, `employee`… for `--screen`.
    pub fn name(self) -> &'static str {
        match self {
            Screen::Fleet => "fleet",
            Screen::Employee => "employee",
            Screen::Organisation => "organisation",
            Screen::Attendance => "attendance",
            Screen::People => "people",
            Screen::Health => "health",
            Screen::Live => "live",
            Screen::Screenshots => "screenshots",
            Screen::Settings => "settings",
            Screen::Audit => "audit",
        }
    }

    pub fn from_name(name: &str) -> Option<Screen> {
        Screen::ALL.into_iter().find(|screen| screen.name() == name)
    }
}

/// Fleet table columns that sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Status,
    Name,
    LastSeen,
    Address,
    User,
    Health,
}

/// Search, filter and sort of the fleet table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetQuery {
    pub search: String,
    pub status: Option<Status>,
    pub sort: SortColumn,
    pub ascending: bool,
}

impl Default for FleetQuery {
    fn default() -> Self {
        FleetQuery {
            search: String::new(),
            status: None,
            sort: SortColumn::Status,
            ascending: true,
        }
    }
}

/// Which agents a policy goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyTarget {
    Agent,
    Group(String),
    All,
}

/// The policy editor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PolicyEditor {
    pub agent: Option<AgentId>,
    pub loading: bool,
    pub draft: Option<Policy>,
    pub error: Option<String>,
    pub target: Option<PolicyTarget>,
    pub group_draft: String,
}

/// A new category rule being typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleDraft {
    pub pattern: String,
    pub regex: bool,
    pub category: String,
}

/// A person being typed on the People screen: a new one, or an account
/// for the selected one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonDraft {
    pub name: String,
    pub email: String,
    pub team: String,
    /// `user`, `user@workstation` or `@workstation`.
    pub account: String,
}

/// The enrolment form of the Fleet screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentForm {
    pub site: String,
    pub passphrase: String,
    pub uses: u32,
    /// `24h`, `7d`…
    pub expires: String,
    pub group: String,
    pub approve_each: bool,
}

impl Default for EnrolmentForm {
    fn default() -> Self {
        EnrolmentForm {
            site: String::new(),
            passphrase: String::new(),
            uses: 1,
            expires: "24h".to_owned(),
            group: String::new(),
            approve_each: true,
        }
    }
}

/// The enrolment the engine hosts, and the form to open one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrolmentScreen {
    pub status: EnrolmentStatus,
    pub form: EnrolmentForm,
}

/// The People screen's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeopleScreen {
    pub selected: Option<PersonId>,
    pub period: Period,
    /// The new person's form.
    pub draft: PersonDraft,
    /// The account typed for the selected person.
    pub account_draft: String,
    /// The person whose erasure waits for a confirmation.
    pub confirm_erase: Option<PersonId>,
    /// The drafts are emptied when the command sent succeeds (a refused
    /// one keeps what was typed).
    pub clear_on_success: bool,
}

/// A message at the bottom of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// Sync status shown in the top bar.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncState {
    pub running: bool,
    pub last: Option<SyncSummary>,
    /// Where the missing identity was expected, when sync cannot run.
    pub unavailable: Option<String>,
}

/// What the Live screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveView {
    /// Nobody watched (after Stop).
    Off,
    /// Thumbnails of the online agents.
    Grid,
    /// One agent, large.
    Single(AgentId),
}

/// The Live screen's state: the pure live core and the textures of its
/// frames.
#[derive(Debug, Clone)]
pub struct LiveScreen {
    pub view: LiveView,
    pub board: LiveBoard,
    /// Texture of each watched agent's newest frame, with the watch and
    /// frame serial it shows.
    pub textures: HashMap<AgentId, ((WatchId, u64), Texture)>,
    /// The agent whose screenshot is being taken.
    pub taking: Option<AgentId>,
    /// The last screenshot taken on demand, to open it in the gallery.
    pub last_taken: Option<ScreenshotMeta>,
}

/// The Screenshots screen's state.
#[derive(Debug, Clone)]
pub struct Gallery {
    pub agent: Option<AgentId>,
    pub period: Period,
    pub selected: Option<ScreenshotKey>,
    /// Decoded screenshots (or why not), newest opened last.
    pub images: Vec<(ScreenshotKey, Result<Texture, String>)>,
}

/// A texture the screens draw (egui's handle, which has no `Debug`).
#[derive(Clone)]
pub struct Texture(pub TextureHandle);

impl std::fmt::Debug for Texture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texture")
            .field("name", &self.0.name())
            .field("size", &self.0.size())
            .finish()
    }
}

/// Everything the screens draw from.
#[derive(Debug, Clone)]
pub struct UiState {
    pub lang: Lang,
    /// The console's role; `None` without an identity.
    pub role: Option<Role>,
    pub screen: Screen,
    pub clock: DayClock,
    /// Why the clock is UTC when the machine's zone could not be read.
    pub zone_warning: Option<String>,
    /// The zone name being typed in Settings, and whether the tz database
    /// knows it (checked when typed, not each frame).
    pub zone_draft: String,
    pub zone_draft_valid: bool,
    /// `(done, total)` workstations while day totals are regrouped in a
    /// new zone.
    pub regrouping: Option<(usize, usize)>,
    pub now_ms: UnixMillis,
    pub settings: ConsoleSettings,
    pub smtp_draft: SmtpSettings,
    pub categories: Vec<String>,
    pub sync: SyncState,
    pub fleet_query: FleetQuery,
    /// Indices into the fleet view's rows, filtered and sorted.
    pub fleet_visible: Vec<usize>,
    pub employee_agent: Option<AgentId>,
    pub employee_period: Period,
    pub organisation_period: Period,
    pub attendance_agent: Option<AgentId>,
    pub attendance_period: Period,
    pub people: PeopleScreen,
    pub enrolment: EnrolmentScreen,
    /// Open alerts nobody acknowledged or muted (the bell).
    pub alerts_unread: usize,
    pub health_agent: Option<AgentId>,
    pub policy: PolicyEditor,
    pub rule_draft: RuleDraft,
    pub peer_draft: String,
    pub try_app: String,
    pub categorised: Option<(String, Categorisation)>,
    pub notices: Vec<Notice>,
    /// Latest data received per request.
    pub views: HashMap<ViewRequest, Arc<ViewData>>,
    pub live: LiveScreen,
    pub gallery: Gallery,
}

/// What a screen asks for; applied by the logic step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Navigate(Screen),
    OpenEmployee(AgentId),
    SetEmployeeAgent(AgentId),
    SetEmployeePeriod(Period),
    SetOrganisationPeriod(Period),
    SetAttendanceAgent(Option<AgentId>),
    SetAttendancePeriod(Period),
    ExportAttendance,
    SelectPerson(Option<PersonId>),
    SetPeoplePeriod(Period),
    EditPersonDraft(PersonDraft),
    EditAccountDraft(String),
    /// Asks to confirm (`Some`) or cancels (`None`) an erasure.
    ConfirmErase(Option<PersonId>),
    /// Runs a people command (the same as the command line's).
    People(PeopleAsk),
    EditEnrolmentForm(EnrolmentForm),
    /// Opens an enrolment from the form.
    OpenEnrolment,
    Enrolment(EnrolmentCommand),
    SelectHealthAgent(AgentId),
    FleetQuery(FleetQuery),
    SetLanguage(Lang),
    SyncNow,
    SaveSettings(ConsoleSettings),
    EditSmtp(SmtpSettings),
    PolicyAgent(AgentId),
    EditPolicy(Policy),
    PolicyTarget(PolicyTarget),
    EditGroup(String),
    ApplyPolicy,
    EditRuleDraft(RuleDraft),
    AddRule,
    Retrain,
    EditPeerDraft(String),
    AddPeer,
    EditZoneDraft(String),
    /// Sets the site's zone (`""`: this machine's).
    SetZone(String),
    EditTryApp(String),
    DismissNotice(usize),
    /// Watches the online agents as thumbnails.
    LiveGrid,
    /// Watches one agent, large.
    LiveSingle(AgentId),
    /// Stops watching anyone.
    LiveStop,
    TakeScreenshot(AgentId),
    SetScreenshotsAgent(Option<AgentId>),
    SetScreenshotsPeriod(Period),
    OpenScreenshot(ScreenshotKey),
    /// Opens the Screenshots screen on this screenshot.
    ShowScreenshot(ScreenshotKey),
}

/// The console application: state, engine handle, pending actions.
#[derive(Debug)]
pub struct ConsoleApp {
    pub state: UiState,
    engine: Link,
    actions: Vec<Action>,
    /// The requests sent and not yet answered or superseded.
    requested: Vec<ViewRequest>,
    stale: bool,
    fonts_installed: bool,
    /// Where the save dialog's thread tells what the manager chose.
    saves: (Sender<SaveChoice>, Receiver<SaveChoice>),
    /// The window's context, once the first frame has run.
    ctx: Option<egui::Context>,
}

/// What the native save dialog of an attendance export gave.
#[derive(Debug)]
enum SaveChoice {
    Attendance {
        agent: Option<AgentId>,
        period: Period,
        path: PathBuf,
    },
    Cancelled,
}

impl ConsoleApp {
    pub fn new(engine: Link, screen: Screen) -> ConsoleApp {
        let settings = ConsoleSettings::default();
        let role = engine.role();
        let clock = engine.day_clock();
        // An enrolment `serve` holds open shows at once.
        engine.send(Command::Enrolment(EnrolmentCommand::Status));
        ConsoleApp {
            state: UiState {
                lang: settings.language,
                role,
                screen,
                clock,
                zone_warning: None,
                zone_draft: String::new(),
                zone_draft_valid: false,
                regrouping: None,
                now_ms: console_engine::clock::wall_now_ms(),
                smtp_draft: settings.smtp.clone(),
                settings,
                categories: Vec::new(),
                sync: SyncState::default(),
                fleet_query: FleetQuery::default(),
                fleet_visible: Vec::new(),
                employee_agent: None,
                employee_period: Period::Week,
                organisation_period: Period::Week,
                attendance_agent: None,
                attendance_period: Period::Week,
                people: PeopleScreen {
                    selected: None,
                    period: Period::Week,
                    draft: PersonDraft::default(),
                    account_draft: String::new(),
                    confirm_erase: None,
                    clear_on_success: false,
                },
                enrolment: EnrolmentScreen::default(),
                alerts_unread: 0,
                health_agent: None,
                policy: PolicyEditor::default(),
                rule_draft: RuleDraft::default(),
                peer_draft: String::new(),
                try_app: String::new(),
                categorised: None,
                notices: Vec::new(),
                views: HashMap::new(),
                live: LiveScreen {
                    view: LiveView::Grid,
                    board: LiveBoard::default(),
                    textures: HashMap::new(),
                    taking: None,
                    last_taken: None,
                },
                gallery: Gallery {
                    agent: None,
                    period: Period::Week,
                    selected: None,
                    images: Vec::new(),
                },
            },
            engine,
            actions: Vec::new(),
            requested: Vec::new(),
            stale: true,
            fonts_installed: false,
            saves: std::sync::mpsc::channel(),
            ctx: None,
        }
    }

    /// Sends a command to the engine directly (scripts, tests).
    pub fn send_command(&self, command: Command) {
        self.engine.send(command);
    }

    /// One frame: the logic step, then the UI.
    pub fn frame(&mut self, ui: &mut egui::Ui) {
        self.logic(ui.ctx());
        self.ui(ui);
    }

    /// Drains engine events, applies pending actions, asks for the views
    /// the current screen needs. Draws nothing.
    pub fn logic(&mut self, ctx: &egui::Context) {
        if self.ctx.is_none() {
            let waker = ctx.clone();
            self.engine
                .set_waker(Arc::new(move || waker.request_repaint()));
            self.ctx = Some(ctx.clone());
        }
        if !self.fonts_installed {
            ui::install_fonts(ctx);
            self.fonts_installed = true;
        }
        self.state.now_ms = console_engine::clock::wall_now_ms();
        while let Some(event) = self.engine.try_recv() {
            self.apply_event(ctx, event);
        }
        while let Ok(choice) = self.saves.1.try_recv() {
            match choice {
                SaveChoice::Attendance {
                    agent,
                    period,
                    path,
                } => self.engine.send(Command::ExportAttendance {
                    agent,
                    period,
                    path,
                }),
                SaveChoice::Cancelled => {
                    let text = trf(self.state.lang, "attendance.export.cancelled", &[]);
                    self.notice(text, false);
                }
            }
        }
        for action in std::mem::take(&mut self.actions) {
            self.apply_action(action);
        }
        // The policy editor starts on the first agent.
        if self.state.screen == Screen::Settings && self.state.policy.agent.is_none() {
            if let Some(agent) = first_agent(&self.state) {
                self.apply_action(Action::PolicyAgent(agent));
            }
        }
        self.watch_live();
        self.refresh_live_textures(ctx);
        if self.state.screen == Screen::Live {
            ctx.request_repaint_after(LIVE_REDRAW);
        }
        self.request_views();
    }

    /// Watches whom the Live screen shows: nobody on any other screen, for
    /// a viewer console, or after Stop.
    fn watch_live(&mut self) {
        let state = &mut self.state;
        let admin = state.role == Some(Role::Admin);
        let wanted = match state.live.view {
            _ if state.screen != Screen::Live || !admin => None,
            LiveView::Off => None,
            LiveView::Grid => Some((LiveMode::Grid, grid_agents(state))),
            LiveView::Single(agent) => Some((LiveMode::Single, vec![agent])),
        };
        let board = &mut state.live.board;
        let change = match wanted {
            Some((mode, agents)) => board.want(mode, &agents),
            None => board.stop(),
        };
        if let Some(watch) = change {
            self.engine.send(Command::Live(watch));
        }
    }

    /// One texture per watched agent's newest frame, refreshed in place
    /// when a newer frame came; dropped with the watch.
    fn refresh_live_textures(&mut self, ctx: &egui::Context) {
        let LiveScreen {
            board, textures, ..
        } = &mut self.state.live;
        textures.retain(|agent, _| board.get(*agent).is_some_and(|entry| entry.frame.is_some()));
        for (agent, entry) in board.agents() {
            let Some(frame) = &entry.frame else {
                continue;
            };
            let shown = (entry.watch, entry.frame_serial);
            match textures.get_mut(&agent) {
                Some((serial, _)) if *serial == shown => {}
                Some((serial, texture)) => {
                    texture
                        .0
                        .set(color_image(&frame.image), TextureOptions::LINEAR);
                    *serial = shown;
                }
                None => {
                    let texture = ctx.load_texture(
                        format!("live-{agent}"),
                        color_image(&frame.image),
                        TextureOptions::LINEAR,
                    );
                    textures.insert(agent, (shown, Texture(texture)));
                }
            }
        }
    }

    /// Draws the window; screens push actions, applied next logic step.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        ui::window_ui(ui, &self.state, &mut self.actions);
        if !self.actions.is_empty() {
            ui.ctx().request_repaint();
        }
    }

    /// The requests the current screen needs (the fleet view always: it
    /// also names agents for every picker).
    pub fn wanted_views(&self) -> Vec<ViewRequest> {
        let state = &self.state;
        let mut wanted = vec![ViewRequest::Fleet];
        match state.screen {
            Screen::Fleet | Screen::Settings => {}
            Screen::Employee => {
                if let Some(agent) = employee_agent(state) {
                    wanted.push(ViewRequest::Employee {
                        agent,
                        period: state.employee_period,
                    });
                }
            }
            Screen::Organisation => wanted.push(ViewRequest::Organisation {
                period: state.organisation_period,
            }),
            Screen::Attendance => wanted.push(ViewRequest::Attendance {
                agent: state.attendance_agent,
                period: state.attendance_period,
            }),
            Screen::People => wanted.push(ViewRequest::People {
                person: state.people.selected,
                period: state.people.period,
            }),
            Screen::Health => wanted.push(ViewRequest::Health {
                agent: health_agent(state),
            }),
            Screen::Audit => wanted.push(ViewRequest::Audit),
            Screen::Live => {}
            Screen::Screenshots => {
                if let Some(agent) = gallery_agent(state) {
                    wanted.push(ViewRequest::Screenshots {
                        agent,
                        period: state.gallery.period,
                    });
                }
            }
        }
        wanted
    }

    fn request_views(&mut self) {
        let wanted = self.wanted_views();
        if self.stale {
            self.requested.clear();
            self.stale = false;
        }
        for request in wanted {
            if !self.requested.contains(&request) {
                self.engine.send(Command::View(request.clone()));
                self.requested.push(request);
            }
        }
    }

    fn notice(&mut self, text: String, error: bool) {
        self.state.notices.push(Notice { text, error });
        if self.state.notices.len() > 5 {
            self.state.notices.remove(0);
        }
    }

    fn apply_event(&mut self, ctx: &egui::Context, event: Event) {
        let lang = self.state.lang;
        match event {
            Event::Settings(settings) => {
                self.state.lang = settings.language;
                self.state.smtp_draft = settings.smtp.clone();
                self.state.settings = *settings;
                self.refresh_fleet_visible();
            }
            Event::Categories(categories) => self.state.categories = categories,
            Event::SyncUnavailable(dir) => self.state.sync.unavailable = Some(dir),
            Event::SyncStarted => self.state.sync.running = true,
            Event::SyncFinished(summary) => {
                self.state.sync.running = false;
                self.state.sync.last = Some(summary);
            }
            Event::DataChanged => self.stale = true,
            Event::Clock { clock, warning } => {
                self.state.clock = clock;
                self.state.zone_warning = warning;
                self.state.regrouping = None;
                self.stale = true;
            }
            Event::Regrouping { done, total } => self.state.regrouping = Some((done, total)),
            Event::View { request, data } => {
                let is_fleet = request == ViewRequest::Fleet;
                self.state.views.insert(request, data);
                if is_fleet {
                    self.refresh_fleet_visible();
                }
            }
            Event::Policy { agent, result } => {
                if self.state.policy.agent == Some(agent) {
                    self.state.policy.loading = false;
                    match result {
                        Ok(policy) => {
                            self.state.policy.draft = Some(policy);
                            self.state.policy.error = None;
                        }
                        Err(error) => self.state.policy.error = Some(error),
                    }
                }
            }
            Event::PolicyApplied {
                name,
                result,
                agent: _,
            } => match result {
                Ok(revision) => {
                    let revision = revision.to_string();
                    let text = trf(
                        lang,
                        "settings.applied",
                        &[("revision", &revision), ("name", &name)],
                    );
                    self.notice(text, false);
                }
                Err(error) => {
                    let text = trf(
                        lang,
                        "settings.apply_failed",
                        &[("name", &name), ("error", &error)],
                    );
                    self.notice(text, true);
                }
            },
            Event::Exported { path, rows } => {
                let rows = rows.to_string();
                let path = path.display().to_string();
                let text = trf(
                    lang,
                    "attendance.exported",
                    &[("rows", &rows), ("path", &path)],
                );
                self.notice(text, false);
            }
            Event::Retrained { labelled_rows } => {
                let rows = labelled_rows.to_string();
                let text = trf(lang, "settings.retrained", &[("rows", &rows)]);
                self.notice(text, false);
            }
            Event::Categorised { app, result } => {
                if app == self.state.try_app {
                    self.state.categorised = Some((app, result));
                }
            }
            Event::Live(update) => {
                self.state.live.board.apply(update);
            }
            Event::ScreenshotTaken { name, meta } => {
                self.state.live.taking = None;
                let time = date_time_seconds_label(lang, &self.state.clock, meta.key.at_ms);
                let text = trf(
                    lang,
                    "live.screenshot.taken",
                    &[("name", &name), ("time", &time)],
                );
                self.state.live.last_taken = Some(meta);
                self.notice(text, false);
            }
            Event::ScreenshotFailed { agent, name, error } => {
                if self.state.live.taking == Some(agent) {
                    self.state.live.taking = None;
                }
                let text = trf(
                    lang,
                    "live.screenshot.failed",
                    &[("name", &name), ("error", &error)],
                );
                self.notice(text, true);
            }
            Event::ScreenshotImage { key, result } => {
                let texture = result.map(|image| screenshot_texture(ctx, key, &image));
                let images = &mut self.state.gallery.images;
                images.retain(|(cached, _)| *cached != key);
                if images.len() >= GALLERY_TEXTURES {
                    drop(images.remove(0));
                }
                images.push((key, texture));
            }
            Event::Error(error) => self.notice(error, true),
            // What the people commands the window ran say.
            Event::Output(CliOutput::Message(text)) => self.notice(text, false),
            Event::Output(CliOutput::Data(_)) => {}
            Event::Finished(Ok(())) => {
                let people = &mut self.state.people;
                if std::mem::take(&mut people.clear_on_success) {
                    people.draft = PersonDraft::default();
                    people.account_draft.clear();
                }
            }
            Event::Enrolment(status) => self.state.enrolment.status = *status,
            Event::Alerts { unread, opened } => {
                self.state.alerts_unread = unread;
                for (alert, name) in opened {
                    let text = ui::alert_text(self.state.lang, &alert, &name);
                    self.notice(text, true);
                }
            }
            Event::Finished(Err(error)) => {
                self.state.people.clear_on_success = false;
                self.notice(error, true);
            }
        }
    }

    fn apply_action(&mut self, action: Action) {
        let state = &mut self.state;
        match action {
            Action::Navigate(screen) => {
                // Coming to the Live screen starts the grid again.
                if screen == Screen::Live && state.screen != Screen::Live {
                    state.live.view = LiveView::Grid;
                }
                state.screen = screen;
            }
            Action::OpenEmployee(agent) => {
                state.employee_agent = Some(agent);
                state.screen = Screen::Employee;
            }
            Action::SetEmployeeAgent(agent) => state.employee_agent = Some(agent),
            Action::SetEmployeePeriod(period) => state.employee_period = period,
            Action::SetOrganisationPeriod(period) => state.organisation_period = period,
            Action::SetAttendanceAgent(agent) => state.attendance_agent = agent,
            Action::SetAttendancePeriod(period) => state.attendance_period = period,
            Action::ExportAttendance => {
                let (agent, period) = (state.attendance_agent, state.attendance_period);
                let (saves, ctx) = (self.saves.0.clone(), self.ctx.clone());
                // The dialog blocks: it runs on its own thread, and the
                // next logic step sends what it gave.
                std::thread::spawn(move || {
                    let chosen = rfd::FileDialog::new()
                        .set_file_name("attendance.csv")
                        .add_filter("CSV", &["csv"])
                        .save_file();
                    let choice = match chosen {
                        Some(path) => SaveChoice::Attendance {
                            agent,
                            period,
                            path,
                        },
                        None => SaveChoice::Cancelled,
                    };
                    let _ = saves.send(choice);
                    if let Some(ctx) = ctx {
                        ctx.request_repaint();
                    }
                });
            }
            Action::SelectPerson(person) => state.people.selected = person,
            Action::SetPeoplePeriod(period) => state.people.period = period,
            Action::EditPersonDraft(draft) => state.people.draft = draft,
            Action::EditAccountDraft(text) => state.people.account_draft = text,
            Action::ConfirmErase(person) => state.people.confirm_erase = person,
            Action::People(ask) => {
                state.people.clear_on_success = true;
                if matches!(ask, PeopleAsk::Deactivate { .. }) {
                    state.people.confirm_erase = None;
                }
                self.engine.send(Command::Run(CliRequest::People(ask)));
            }
            Action::EditEnrolmentForm(form) => state.enrolment.form = form,
            Action::Enrolment(command) => self.engine.send(Command::Enrolment(command)),
            Action::OpenEnrolment => {
                let form = &state.enrolment.form;
                match parse_expiry(&form.expires) {
                    Ok(expires) => {
                        let trimmed = |text: &str| {
                            let text = text.trim();
                            (!text.is_empty()).then(|| text.to_owned())
                        };
                        let open = EnrolmentOpen {
                            site: PathBuf::from(form.site.trim()),
                            passphrase: (!form.passphrase.is_empty())
                                .then(|| Passphrase(form.passphrase.clone())),
                            uses: form.uses,
                            expires_secs: expires.as_secs(),
                            group: trimmed(&form.group),
                            team: None,
                            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_ENROL_PORT)),
                            approve_each: form.approve_each,
                            mdns: true,
                        };
                        // The passphrase is not kept once sent.
                        state.enrolment.form.passphrase.clear();
                        self.engine
                            .send(Command::Enrolment(EnrolmentCommand::Open(Box::new(open))));
                    }
                    Err(error) => self.notice(error, true),
                }
            }
            Action::SelectHealthAgent(agent) => state.health_agent = Some(agent),
            Action::FleetQuery(query) => {
                state.fleet_query = query;
                self.refresh_fleet_visible();
            }
            Action::SetLanguage(lang) => {
                state.lang = lang;
                let settings = ConsoleSettings {
                    language: lang,
                    ..state.settings.clone()
                };
                state.settings = settings.clone();
                self.engine.send(Command::SaveSettings(Box::new(settings)));
            }
            Action::SyncNow => self.engine.send(Command::Sync),
            Action::SaveSettings(settings) => {
                state.settings = settings.clone();
                self.engine.send(Command::SaveSettings(Box::new(settings)));
            }
            Action::EditSmtp(smtp) => state.smtp_draft = smtp,
            Action::PolicyAgent(agent) => {
                state.policy = PolicyEditor {
                    agent: Some(agent),
                    loading: true,
                    group_draft: state
                        .settings
                        .groups
                        .get(&agent)
                        .cloned()
                        .unwrap_or_default(),
                    ..PolicyEditor::default()
                };
                self.engine.send(Command::FetchPolicy(agent));
            }
            Action::EditPolicy(policy) => state.policy.draft = Some(policy),
            Action::PolicyTarget(target) => state.policy.target = Some(target),
            Action::EditGroup(group) => state.policy.group_draft = group,
            Action::ApplyPolicy => {
                if let (Some(agent), Some(policy)) = (state.policy.agent, &state.policy.draft) {
                    let targets = policy_targets(state, agent);
                    self.engine.send(Command::ApplyPolicy {
                        targets,
                        policy: policy.clone(),
                    });
                }
            }
            Action::EditRuleDraft(draft) => state.rule_draft = draft,
            Action::AddRule => {
                let draft = std::mem::take(&mut state.rule_draft);
                let id = state
                    .settings
                    .category_rules
                    .iter()
                    .map(|rule| rule.id)
                    .max()
                    .unwrap_or(0)
                    + 1;
                let rule = if draft.regex {
                    Rule::regex(id, draft.pattern.trim(), draft.category.trim())
                } else {
                    Rule::exact(id, draft.pattern.trim(), draft.category.trim())
                };
                let mut settings = state.settings.clone();
                settings.category_rules.push(rule);
                state.settings = settings.clone();
                self.engine.send(Command::SaveSettings(Box::new(settings)));
            }
            Action::Retrain => self.engine.send(Command::Retrain),
            Action::EditPeerDraft(peer) => state.peer_draft = peer,
            Action::AddPeer => {
                let peer = std::mem::take(&mut state.peer_draft).trim().to_owned();
                let mut settings = state.settings.clone();
                if !settings.static_peers.contains(&peer) {
                    settings.static_peers.push(peer);
                }
                state.settings = settings.clone();
                self.engine.send(Command::SaveSettings(Box::new(settings)));
            }
            Action::EditZoneDraft(zone) => {
                state.zone_draft_valid = DayClock::from_name(&zone).is_ok();
                state.zone_draft = zone;
            }
            Action::SetZone(zone) => {
                state.zone_draft.clear();
                state.zone_draft_valid = false;
                let settings = ConsoleSettings {
                    time_zone: zone,
                    ..state.settings.clone()
                };
                state.settings = settings.clone();
                self.engine.send(Command::SaveSettings(Box::new(settings)));
            }
            Action::EditTryApp(app) => {
                state.try_app = app.clone();
                if !app.trim().is_empty() {
                    self.engine.send(Command::Categorise(app));
                }
            }
            Action::DismissNotice(index) => {
                if index < state.notices.len() {
                    state.notices.remove(index);
                }
            }
            Action::LiveGrid => state.live.view = LiveView::Grid,
            Action::LiveSingle(agent) => state.live.view = LiveView::Single(agent),
            Action::LiveStop => state.live.view = LiveView::Off,
            Action::TakeScreenshot(agent) => {
                if state.live.taking.is_none() {
                    state.live.taking = Some(agent);
                    self.engine.send(Command::TakeScreenshot(agent));
                }
            }
            Action::SetScreenshotsAgent(agent) => {
                state.gallery.agent = agent;
                state.gallery.selected = None;
            }
            Action::SetScreenshotsPeriod(period) => state.gallery.period = period,
            Action::OpenScreenshot(key) => self.open_screenshot(key),
            Action::ShowScreenshot(key) => {
                state.screen = Screen::Screenshots;
                state.gallery.agent = Some(key.agent);
                state.gallery.period = Period::Day;
                self.open_screenshot(key);
            }
        }
    }

    /// Selects a screenshot; the engine decrypts and decodes it unless its
    /// texture is cached (a failed attempt is tried again).
    fn open_screenshot(&mut self, key: ScreenshotKey) {
        let gallery = &mut self.state.gallery;
        gallery.selected = Some(key);
        let cached = gallery
            .images
            .iter()
            .any(|(cached, texture)| *cached == key && texture.is_ok());
        if !cached {
            gallery.images.retain(|(cached, _)| *cached != key);
            self.engine.send(Command::OpenScreenshot(key));
        }
    }

    fn refresh_fleet_visible(&mut self) {
        let visible = match self.state.views.get(&ViewRequest::Fleet).map(Arc::as_ref) {
            Some(ViewData::Fleet(view)) => fleet_visible(&view.rows, &self.state.fleet_query),
            _ => Vec::new(),
        };
        self.state.fleet_visible = visible;
    }
}

/// The agents a policy goes to, from the editor's target.
fn policy_targets(state: &UiState, agent: AgentId) -> Vec<AgentId> {
    let all = fleet_rows(state)
        .iter()
        .map(|row| row.agent)
        .collect::<Vec<_>>();
    match &state.policy.target {
        None | Some(PolicyTarget::Agent) => vec![agent],
        Some(PolicyTarget::All) => all,
        Some(PolicyTarget::Group(group)) => all
            .into_iter()
            .filter(|agent| state.settings.groups.get(agent) == Some(group))
            .collect(),
    }
}

/// The fleet view's rows, if it has arrived.
pub fn fleet_rows(state: &UiState) -> &[FleetRow] {
    match state.views.get(&ViewRequest::Fleet).map(Arc::as_ref) {
        Some(ViewData::Fleet(view)) => &view.rows,
        _ => &[],
    }
}

fn first_agent(state: &UiState) -> Option<AgentId> {
    fleet_rows(state).first().map(|row| row.agent)
}

/// The online agents the live grid watches, in fleet order.
pub fn grid_agents(state: &UiState) -> Vec<AgentId> {
    fleet_rows(state)
        .iter()
        .filter(|row| row.status == Status::Online)
        .map(|row| row.agent)
        .take(MAX_GRID_AGENTS)
        .collect()
}

/// The agent whose screenshots the gallery lists: the chosen one, else the
/// first.
pub fn gallery_agent(state: &UiState) -> Option<AgentId> {
    state.gallery.agent.or_else(|| first_agent(state))
}

fn screenshot_texture(ctx: &egui::Context, key: ScreenshotKey, image: &RgbaImage) -> Texture {
    Texture(ctx.load_texture(
        format!("screenshot-{}-{}-{}", key.agent, key.at_ms, key.serial),
        color_image(image),
        TextureOptions::LINEAR,
    ))
}

/// The engine's decoded image as egui takes it.
fn color_image(image: &RgbaImage) -> ColorImage {
    ColorImage::from_rgba_unmultiplied(image.size(), &image.rgba)
}

/// The person the employee screen shows: the chosen one, else the first.
pub fn employee_agent(state: &UiState) -> Option<AgentId> {
    state.employee_agent.or_else(|| first_agent(state))
}

/// The agent whose charts the health screen shows: the chosen one, else
/// the first.
pub fn health_agent(state: &UiState) -> Option<AgentId> {
    state.health_agent.or_else(|| first_agent(state))
}

/// Indices of the rows matching `query`, in its order.
pub fn fleet_visible(rows: &[FleetRow], query: &FleetQuery) -> Vec<usize> {
    let needle = query.search.trim().to_lowercase();
    let matches = |row: &FleetRow| {
        needle.is_empty()
            || [
                Some(row.name.as_str()),
                row.address.as_deref(),
                row.user.as_deref(),
                row.current_app.as_deref(),
                row.group.as_deref(),
            ]
            .into_iter()
            .flatten()
            .any(|field| field.to_lowercase().contains(&needle))
    };
    let mut visible: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| query.status.is_none_or(|status| row.status == status))
        .filter(|(_, row)| matches(row))
        .map(|(index, _)| index)
        .collect();
    visible.sort_by(|&a, &b| {
        let (a, b) = (&rows[a], &rows[b]);
        let order = match query.sort {
            SortColumn::Status => a.status.cmp(&b.status),
            SortColumn::Name => a.name.cmp(&b.name),
            SortColumn::LastSeen => b.last_seen_ms.cmp(&a.last_seen_ms),
            SortColumn::Address => a.address.cmp(&b.address),
            SortColumn::User => a.user.cmp(&b.user),
            SortColumn::Health => b.health.cmp(&a.health),
        }
        .then_with(|| a.name.cmp(&b.name));
        if query.ascending {
            order
        } else {
            order.reverse()
        }
    });
    visible
}

impl eframe::App for ConsoleApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        ConsoleApp::logic(self, ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        ConsoleApp::ui(self, ui);
    }
}
