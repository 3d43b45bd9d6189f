//! The console's languages: message keys to French, English, Spanish and
//! Russian text (every key in all four, checked by a test), `{name}`
//! parameters, and dates in each language's usual style (`lun. 2 mars`,
//! `Mon 2 Mar`).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::analytics::{duration_parts, Param, Recommendation, Severity};
use crate::model::{DayClock, DayNumber, HealthLevel};

/// A language of the user interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lang {
    #[serde(rename = "fr")]
    Fr,
    #[serde(rename = "en")]
    En,
    #[serde(rename = "es")]
    Es,
    #[serde(rename = "ru")]
    Ru,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::Fr, Lang::En, Lang::Es, Lang::Ru];

    /// The language's own name, shown in the language picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Fr => "Français",
            Lang::En => "English",
            Lang::Es => "Español",
            Lang::Ru => "Русский",
        }
    }

    /// ISO 639-1 code, as stored in the `language` setting.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Ru => "ru",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code() == code)
    }

    fn column(self) -> usize {
        match self {
            Lang::En => 0,
            Lang::Fr => 1,
            Lang::Es => 2,
            Lang::Ru => 3,
        }
    }
}

/// Key, then English, French, Spanish, Russian (all four required).
type Entry = (&'static str, [&'static str; 4]);

const MESSAGES: &[Entry] = &[
    // Navigation and frame.
    ("app.title", ["SmartTracker console", "Console SmartTracker", "Consola SmartTracker", "Консоль SmartTracker"]),
    ("nav.fleet", ["Fleet", "Parc", "Equipos", "Парк"]),
    ("nav.employee", ["Employee", "Employé", "Empleado", "Сотрудник"]),
    ("nav.organisation", ["Organisation", "Organisation", "Organización", "Организация"]),
    ("nav.attendance", ["Attendance", "Présence", "Asistencia", "Посещаемость"]),
    ("nav.people", ["People", "Personnes", "Personas", "Люди"]),
    ("nav.health", ["Health", "Santé", "Salud", "Состояние"]),
    ("nav.live", ["Live", "En direct", "En vivo", "Прямой эфир"]),
    ("nav.screenshots", ["Screenshots", "Captures d'écran", "Capturas", "Снимки экрана"]),
    ("nav.settings", ["Settings", "Réglages", "Ajustes", "Настройки"]),
    ("nav.audit", ["Audit log", "Journal d'audit", "Registro de auditoría", "Журнал аудита"]),
    ("sync.now", ["Sync now", "Synchroniser", "Sincronizar", "Синхронизировать"]),
    ("sync.running", ["Syncing…", "Synchronisation…", "Sincronizando…", "Синхронизация…"]),
    ("sync.last", ["Last sync {time}: {synced} agent(s), {records} new record(s)", "Dernière synchro {time} : {synced} agent(s), {records} nouvel(s) enregistrement(s)", "Última sincronización {time}: {synced} equipo(s), {records} registro(s) nuevo(s)", "Последняя синхронизация {time}: агентов — {synced}, новых записей — {records}"]),
    ("sync.problems", ["{count} agent(s) not reached", "{count} agent(s) injoignable(s)", "{count} equipo(s) inaccesible(s)", "Недоступно агентов: {count}"]),
    ("sync.certificate", ["This console's certificate needs renewing", "Le certificat de cette console est à renouveler", "El certificado de esta consola debe renovarse", "Сертификат этой консоли нужно обновить"]),
    ("sync.disabled", ["Sync is off: no console identity in {dir}", "Synchronisation désactivée : pas d'identité de console dans {dir}", "Sincronización desactivada: no hay identidad de consola en {dir}", "Синхронизация выключена: в {dir} нет идентичности консоли"]),
    ("sync.never", ["Not synced yet", "Pas encore synchronisé", "Aún no sincronizado", "Ещё не синхронизировано"]),
    ("demo.banner", ["DEMO data: simulated workstations", "Données de DÉMONSTRATION : postes simulés", "Datos de DEMOSTRACIÓN: equipos simulados", "ДЕМО-данные: имитация рабочих мест"]),
    ("loading", ["Loading…", "Chargement…", "Cargando…", "Загрузка…"]),
    ("error.prefix", ["Error", "Erreur", "Error", "Ошибка"]),
    ("dismiss", ["Dismiss", "Fermer", "Cerrar", "Закрыть"]),
    ("period", ["Period", "Période", "Período", "Период"]),
    ("period.day", ["24 h", "24 h", "24 h", "24 ч"]),
    ("period.week", ["7 days", "7 jours", "7 días", "7 дней"]),
    ("period.month", ["30 days", "30 jours", "30 días", "30 дней"]),
    ("person", ["Person", "Personne", "Persona", "Сотрудник"]),
    ("workstation", ["Workstation", "Poste", "Equipo", "Компьютер"]),
    ("col.workstations", ["Workstations", "Postes", "Equipos", "Компьютеры"]),
    ("everyone", ["Everyone", "Tout le monde", "Todos", "Все"]),
    ("unit.hours", ["hours", "heures", "horas", "часы"]),
    ("unit.minutes", ["minutes", "minutes", "minutos", "минуты"]),
    ("unit.percent", ["%", "%", "%", "%"]),
    ("unit.kb", ["{n} KB", "{n} Ko", "{n} KB", "{n} КБ"]),
    ("unit.mb", ["{n} MB", "{n} Mo", "{n} MB", "{n} МБ"]),
    ("axis.date", ["date", "date", "fecha", "дата"]),
    ("none", ["none", "aucun", "ninguno", "нет"]),
    ("duration.hours", ["{hours}h {minutes}m", "{hours} h {minutes}", "{hours} h {minutes}", "{hours} ч {minutes} мин"]),
    ("duration.minutes", ["{minutes} min", "{minutes} min", "{minutes} min", "{minutes} мин"]),
    ("duration.seconds", ["{seconds} s", "{seconds} s", "{seconds} s", "{seconds} с"]),
    // The built-in categories of `assets/app_categories.csv`.
    ("category.Browsing", ["Browsing", "Navigation web", "Navegación", "Интернет"]),
    ("category.Communication", ["Communication", "Communication", "Comunicación", "Общение"]),
    ("category.Design", ["Design", "Design", "Diseño", "Дизайн"]),
    ("category.Development", ["Development", "Développement", "Desarrollo", "Разработка"]),
    ("category.Education", ["Education", "Éducation", "Educación", "Обучение"]),
    ("category.Entertainment", ["Entertainment", "Divertissement", "Entretenimiento", "Развлечения"]),
    ("category.Games", ["Games", "Jeux", "Juegos", "Игры"]),
    ("category.Social", ["Social", "Réseaux sociaux", "Redes sociales", "Соцсети"]),
    ("category.Utilities", ["Utilities", "Utilitaires", "Utilidades", "Утилиты"]),
    ("category.Work", ["Work", "Travail", "Trabajo", "Работа"]),
    // Fleet.
    ("fleet.title", ["Fleet", "Parc", "Equipos", "Парк"]),
    ("fleet.counts", ["{online} online · {offline} offline · {unknown} never seen", "{online} en ligne · {offline} hors ligne · {unknown} jamais vus", "{online} en línea · {offline} sin conexión · {unknown} nunca vistos", "{online} в сети · {offline} не в сети · {unknown} не видели"]),
    ("fleet.search", ["Search", "Rechercher", "Buscar", "Поиск"]),
    ("fleet.search.hint", ["name, user, address, app", "nom, utilisateur, adresse, appli", "nombre, usuario, dirección, app", "имя, пользователь, адрес"]),
    ("fleet.filter", ["Show", "Afficher", "Mostrar", "Показать"]),
    ("fleet.filter.all", ["All", "Tous", "Todos", "Все"]),
    ("fleet.shown", ["{shown} of {total} agents", "{shown} agents sur {total}", "{shown} de {total} equipos", "{shown} из {total}"]),
    ("fault.invalid_data", ["sending invalid data", "envoie des données invalides", "envía datos no válidos", "отправляет неверные данные"]),
    ("fault.impersonation", ["claimed to be another workstation", "se fait passer pour un autre poste", "se hizo pasar por otro equipo", "выдавал себя за другой компьютер"]),
    ("fault.epoch_flapping", ["its store keeps resetting", "son stockage se réinitialise sans cesse", "su almacén se reinicia sin cesar", "его хранилище постоянно сбрасывается"]),
    ("fault.protocol", ["answered outside the protocol", "a répondu hors protocole", "respondió fuera del protocolo", "ответил с нарушением протокола"]),
    ("fault.hover", ["{detail} ({count} time(s), last {when}); see the audit log", "{detail} ({count} fois, dernière {when}) ; voir le journal d'audit", "{detail} ({count} veces, última {when}); ver el registro de auditoría", "{detail} ({count} раз, последний {when}); см. журнал аудита"]),
    ("status.online", ["online", "en ligne", "en línea", "в сети"]),
    ("status.offline", ["offline", "hors ligne", "sin conexión", "не в сети"]),
    ("status.unknown", ["unknown", "inconnu", "desconocido", "неизвестно"]),
    ("col.status", ["Status", "État", "Estado", "Статус"]),
    ("col.name", ["Agent", "Agent", "Equipo", "Агент"]),
    ("col.last_seen", ["Last seen", "Vu pour la dernière fois", "Visto por última vez", "Последний раз"]),
    ("col.address", ["Address", "Adresse", "Dirección", "Адрес"]),
    ("col.user", ["User", "Utilisateur", "Usuario", "Пользователь"]),
    ("col.current_app", ["Current app", "Appli en cours", "App actual", "Текущее приложение"]),
    ("col.health", ["Health", "Santé", "Salud", "Состояние"]),
    ("col.group", ["Group", "Groupe", "Grupo", "Группа"]),
    ("current_app.hidden", ["hidden (Settings)", "masquée (Réglages)", "oculta (Ajustes)", "скрыто"]),
    ("seen.never", ["never", "jamais", "nunca", "никогда"]),
    ("seen.ago", ["{ago} ago", "il y a {ago}", "hace {ago}", "{ago} назад"]),
    ("health.ok", ["OK", "OK", "OK", "ОК"]),
    ("health.warn", ["warning", "alerte", "aviso", "внимание"]),
    ("health.critical", ["critical", "critique", "crítico", "критично"]),
    ("health.none", ["no data", "pas de données", "sin datos", "нет данных"]),
    ("fleet.empty", ["No agents yet. To enrol a first workstation: `smarttracker-certs agent --site SITE --out pc.bundle --name pc-01`, then on the workstation `smarttracker-agent enroll --bundle pc.bundle --data DIR` and `smarttracker-agent run --data DIR`, then here `smarttracker-console --data DATA add-agent pc.bundle`. Or try `smarttracker-console demo`.", "Aucun agent pour l'instant. Pour inscrire un premier poste : `smarttracker-certs agent --site SITE --out pc.bundle --name pc-01`, puis sur le poste `smarttracker-agent enroll --bundle pc.bundle --data DIR` et `smarttracker-agent run --data DIR`, puis ici `smarttracker-console --data DATA add-agent pc.bundle`. Ou essayez `smarttracker-console demo`.", "Aún no hay equipos. Para inscribir un primer equipo: `smarttracker-certs agent --site SITE --out pc.bundle --name pc-01`, luego en el equipo `smarttracker-agent enroll --bundle pc.bundle --data DIR` y `smarttracker-agent run --data DIR`, y después aquí `smarttracker-console --data DATA add-agent pc.bundle`. O pruebe `smarttracker-console demo`.", "Агентов пока нет. Чтобы подключить первое рабочее место: `smarttracker-certs agent --site SITE --out pc.bundle --name pc-01`, затем на рабочем месте `smarttracker-agent enroll --bundle pc.bundle --data DIR` и `smarttracker-agent run --data DIR`, затем здесь `smarttracker-console --data DATA add-agent pc.bundle`. Или попробуйте `smarttracker-console demo`."]),
    ("fleet.no_match", ["No agent matches the search or filter.", "Aucun agent ne correspond à la recherche ou au filtre.", "Ningún equipo coincide.", "Нет совпадений."]),
    ("fleet.open", ["Open", "Ouvrir", "Abrir", "Открыть"]),
    ("fleet.demo", ["demo", "démo", "demo", "демо"]),
    ("zone.other", ["◷ {zone}", "◷ {zone}", "◷ {zone}", "◷ {zone}"]),
    ("zone.other.hover", ["This workstation is in {zone}, another time zone than the site ({site}).", "Ce poste est en {zone}, un autre fuseau horaire que le site ({site}).", "Este equipo está en {zone}, otra zona horaria que el sitio ({site}).", "Этот компьютер находится в поясе {zone}, не в поясе площадки ({site})."]),
    ("zone.own_attendance", ["Show attendance in this workstation's time zone: {zone}", "Afficher la présence dans le fuseau horaire de ce poste : {zone}", "Mostrar la asistencia en la zona horaria de este equipo: {zone}", "Показывать посещаемость в часовом поясе этого компьютера: {zone}"]),
    // Employee.
    ("employee.pick", ["Choose a person in the Fleet screen or here:", "Choisissez une personne dans l'écran Parc ou ici :", "Elija una persona:", "Выберите сотрудника:"]),
    ("employee.none", ["No agents yet: enrol one first (see the Fleet screen).", "Aucun agent : inscrivez-en un d'abord (voir l'écran Parc).", "Aún no hay equipos: inscriba uno primero (vea la pantalla Equipos).", "Агентов пока нет: сначала подключите агента (см. экран «Парк»)."]),
    ("employee.today", ["Today's timeline", "Chronologie du jour", "Cronología de hoy", "Сегодня"]),
    ("employee.today.empty", ["Nothing recorded today yet.", "Rien d'enregistré aujourd'hui pour l'instant.", "Nada registrado hoy.", "Сегодня ничего не записано."]),
    ("timeline.apps", ["Apps", "Applis", "Apps", "Приложения"]),
    ("timeline.presence", ["Presence", "Présence", "Presencia", "Присутствие"]),
    ("timeline.sessions", ["Sessions", "Sessions", "Sesiones", "Сеансы"]),
    ("presence.active", ["active", "actif", "activo", "активен"]),
    ("presence.idle", ["idle", "inactif", "inactivo", "бездействие"]),
    ("presence.locked", ["locked", "verrouillé", "bloqueado", "заблокирован"]),
    ("top_apps", ["Top applications", "Applications les plus utilisées", "Aplicaciones principales", "Основные приложения"]),
    ("categories", ["Categories", "Catégories", "Categorías", "Категории"]),
    ("trend", ["Trend", "Tendance", "Tendencia", "Динамика"]),
    ("trend.active", ["Active", "Actif", "Activo", "Активно"]),
    ("trend.idle", ["Idle", "Inactif", "Inactivo", "Бездействие"]),
    ("trend.hour", ["hour", "heure", "hora", "час"]),
    ("trend.day", ["day", "jour", "día", "день"]),
    ("active_time", ["Active time", "Temps actif", "Tiempo activo", "Активное время"]),
    ("idle_time", ["Idle time", "Temps inactif", "Tiempo inactivo", "Время бездействия"]),
    ("vs_previous", ["{pct} vs previous period", "{pct} par rapport à la période précédente", "{pct} frente al período anterior", "{pct} к прошлому периоду"]),
    ("no_usage", ["No application use recorded in this period.", "Aucune utilisation d'application enregistrée sur cette période.", "Sin uso registrado en este período.", "Нет данных за период."]),
    ("health_history", ["Health history", "Historique de santé", "Historial de salud", "История состояния"]),
    ("series.cpu", ["CPU", "Processeur", "CPU", "ЦП"]),
    ("series.mem", ["Memory", "Mémoire", "Memoria", "Память"]),
    ("series.disk", ["Disk", "Disque", "Disco", "Диск"]),
    ("series.score", ["Health score", "Score de santé", "Puntuación", "Оценка"]),
    ("no_health", ["No health samples in this period.", "Aucune mesure de santé sur cette période.", "Sin mediciones.", "Нет измерений."]),
    ("points_shown", ["{shown} of {raw} samples plotted (peaks kept)", "{shown} mesures tracées sur {raw} (pics conservés)", "{shown} de {raw} mediciones representadas (picos conservados)", "Показано замеров: {shown} из {raw} (пики сохранены)"]),
    // Alerts.
    ("alerts.bell", ["{count} alert(s)", "{count} alerte(s)", "{count} alerta(s)", "Тревог: {count}"]),
    ("alerts.bell.hint", ["Open alerts nobody acknowledged: `smarttracker-console alerts list`, then `alerts ack N` or `alerts mute N --for 2h`.", "Alertes ouvertes que personne n'a prises en compte : `smarttracker-console alerts list`, puis `alerts ack N` ou `alerts mute N --for 2h`.", "Alertas abiertas sin reconocer: `smarttracker-console alerts list`, luego `alerts ack N` o `alerts mute N --for 2h`.", "Открытые неподтверждённые тревоги: `smarttracker-console alerts list`, затем `alerts ack N` или `alerts mute N --for 2h`."]),
    ("alert.health_critical", ["Alert #{id}: {name}: health critical for {value} min", "Alerte n° {id} : {name} : santé critique depuis {value} min", "Alerta n.º {id}: {name}: salud crítica desde hace {value} min", "Тревога №{id}: {name}: критическое состояние {value} мин"]),
    ("alert.disk_full", ["Alert #{id}: {name}: disk {value} % full", "Alerte n° {id} : {name} : disque plein à {value} %", "Alerta n.º {id}: {name}: disco lleno al {value} %", "Тревога №{id}: {name}: диск заполнен на {value} %"]),
    ("alert.not_seen", ["Alert #{id}: {name}: not seen for {value} h during working hours", "Alerte n° {id} : {name} : pas vu depuis {value} h pendant les heures de travail", "Alerta n.º {id}: {name}: sin noticias desde hace {value} h en horario laboral", "Тревога №{id}: {name}: нет связи {value} ч в рабочее время"]),
    ("alert.invalid_data", ["Alert #{id}: {name}: sent invalid data ({value} min ago)", "Alerte n° {id} : {name} : a envoyé des données invalides (il y a {value} min)", "Alerta n.º {id}: {name}: envió datos no válidos (hace {value} min)", "Тревога №{id}: {name}: прислал недопустимые данные ({value} мин назад)"]),
    // Enrolment.
    ("enrol.title", ["Enrol workstations", "Enrôler des postes", "Inscribir equipos", "Подключить компьютеры"]),
    ("enrol.site", ["Site directory", "Dossier du site", "Carpeta del sitio", "Папка сайта"]),
    ("enrol.passphrase", ["CA passphrase", "Phrase secrète de l'AC", "Frase de paso de la AC", "Пароль ЦС"]),
    ("enrol.uses", ["Workstations", "Postes", "Equipos", "Компьютеров"]),
    ("enrol.expires", ["Valid for", "Valable", "Válido durante", "Действует"]),
    ("enrol.group", ["Group", "Groupe", "Grupo", "Группа"]),
    ("enrol.approve_each", ["Approve each workstation", "Approuver chaque poste", "Aprobar cada equipo", "Подтверждать каждый компьютер"]),
    ("enrol.open", ["Open enrolment", "Ouvrir l'enrôlement", "Abrir la inscripción", "Открыть подключение"]),
    ("enrol.end.wrong_codes", ["Last enrolment closed after too many wrong codes ({enrolled} enrolled).", "Dernier enrôlement fermé après trop de codes erronés ({enrolled} enrôlé(s)).", "Última inscripción cerrada tras demasiados códigos erróneos ({enrolled} inscrito(s)).", "Последнее подключение закрыто после слишком многих неверных кодов (подключено: {enrolled})."]),
    ("enrol.end.used_up", ["Last enrolment: every use of the code was taken ({enrolled} enrolled).", "Dernier enrôlement : toutes les utilisations du code ont été prises ({enrolled} enrôlé(s)).", "Última inscripción: se usaron todos los usos del código ({enrolled} inscrito(s)).", "Последнее подключение: код использован полностью (подключено: {enrolled})."]),
    ("enrol.end.expired", ["Last enrolment: the code expired ({enrolled} enrolled).", "Dernier enrôlement : le code a expiré ({enrolled} enrôlé(s)).", "Última inscripción: el código caducó ({enrolled} inscrito(s)).", "Последнее подключение: срок кода истёк (подключено: {enrolled})."]),
    ("enrol.end.closed", ["Last enrolment closed ({enrolled} enrolled).", "Dernier enrôlement fermé ({enrolled} enrôlé(s)).", "Última inscripción cerrada ({enrolled} inscrito(s)).", "Последнее подключение закрыто (подключено: {enrolled})."]),
    ("enrol.code", ["Code:", "Code :", "Código:", "Код:"]),
    ("enrol.open.status", ["{enrolled} of {uses} enrolled, open until {until}, listening on {listening}", "{enrolled} sur {uses} enrôlé(s), ouvert jusqu'à {until}, à l'écoute sur {listening}", "{enrolled} de {uses} inscrito(s), abierto hasta {until}, escuchando en {listening}", "подключено {enrolled} из {uses}, открыто до {until}, адрес {listening}"]),
    ("enrol.command", ["On each workstation: smarttracker-agent enroll --code {code}", "Sur chaque poste : smarttracker-agent enroll --code {code}", "En cada equipo: smarttracker-agent enroll --code {code}", "На каждом компьютере: smarttracker-agent enroll --code {code}"]),
    ("enrol.pending", ["Waiting for your approval", "En attente de votre accord", "Esperando su aprobación", "Ждут подтверждения"]),
    ("enrol.pending.none", ["No workstation is waiting.", "Aucun poste n'attend.", "Ningún equipo espera.", "Никто не ждёт."]),
    ("enrol.pending.line", ["{name} ({from})", "{name} ({from})", "{name} ({from})", "{name} ({from})"]),
    ("enrol.approve", ["Approve", "Approuver", "Aprobar", "Подтвердить"]),
    ("enrol.decline", ["Decline", "Refuser", "Rechazar", "Отклонить"]),
    ("enrol.done", ["Enrolled", "Enrôlés", "Inscritos", "Подключены"]),
    ("enrol.done.line", ["{name} ({from}) at {time}", "{name} ({from}) à {time}", "{name} ({from}) a las {time}", "{name} ({from}) в {time}"]),
    ("enrol.close", ["Close enrolment", "Fermer l'enrôlement", "Cerrar la inscripción", "Закрыть подключение"]),
    // People.
    ("people.title", ["People", "Personnes", "Personas", "Люди"]),
    ("people.note", ["A person holds OS accounts and workstations: attendance and applications are per person (one line for one person on two PCs; a shared PC splits by OS user).", "Une personne détient des comptes et des postes : présence et applications sont par personne (une ligne pour une personne sur deux postes ; un poste partagé se répartit par compte).", "Una persona tiene cuentas y equipos: la asistencia y las aplicaciones son por persona (una línea para una persona en dos equipos; un equipo compartido se reparte por cuenta).", "Человеку принадлежат учётные записи и компьютеры: посещаемость и приложения считаются по людям (одна строка для человека на двух ПК; общий ПК делится по учётным записям)."]),
    ("people.empty", ["No persons yet: confirm the proposed ones below or add one.", "Aucune personne pour l'instant : confirmez celles proposées ci-dessous ou ajoutez-en une.", "Aún no hay personas: confirme las propuestas abajo o añada una.", "Пока никого нет: подтвердите предложенных ниже или добавьте человека."]),
    ("people.col.name", ["Name", "Nom", "Nombre", "Имя"]),
    ("people.col.email", ["E-mail", "E-mail", "Correo", "Эл. почта"]),
    ("people.col.team", ["Team", "Équipe", "Equipo", "Команда"]),
    ("people.col.accounts", ["Accounts", "Comptes", "Cuentas", "Учётные записи"]),
    ("people.deactivated", ["deactivated", "désactivée", "desactivada", "отключён"]),
    ("people.account.user_on", ["{user} on {workstation}", "{user} sur {workstation}", "{user} en {workstation}", "{user} на {workstation}"]),
    ("people.account.user_anywhere", ["{user} on any workstation", "{user} sur tout poste", "{user} en cualquier equipo", "{user} на любом компьютере"]),
    ("people.account.workstation", ["every user of {workstation}", "tout compte de {workstation}", "toda cuenta de {workstation}", "все пользователи {workstation}"]),
    ("people.no_account", ["no account", "aucun compte", "ninguna cuenta", "нет учётных записей"]),
    ("people.seen_as", ["Seen as {accounts}", "Vu comme {accounts}", "Visto como {accounts}", "Замечен как {accounts}"]),
    ("people.unmap", ["Remove", "Retirer", "Quitar", "Убрать"]),
    ("people.account.hint", ["alice, alice@PC-03 or @PC-03", "alice, alice@PC-03 ou @PC-03", "alice, alice@PC-03 o @PC-03", "alice, alice@PC-03 или @PC-03"]),
    ("people.map", ["Add account", "Associer le compte", "Asociar cuenta", "Добавить учётную запись"]),
    ("people.deactivate", ["Deactivate", "Désactiver", "Desactivar", "Отключить"]),
    ("people.reactivate", ["Reactivate", "Réactiver", "Reactivar", "Включить снова"]),
    ("people.erase", ["Erase (GDPR)…", "Effacer (RGPD)…", "Borrar (RGPD)…", "Стереть (GDPR)…"]),
    ("people.erase.confirm", ["Erase every record of {name} (presence, applications, screenshots) from this console and ask their workstations to drop theirs? The audit log keeps only the fact and the counts. This cannot be undone.", "Effacer tous les enregistrements de {name} (présence, applications, captures) de cette console et demander à ses postes d'effacer les leurs ? Le journal d'audit ne garde que le fait et les nombres. C'est définitif.", "¿Borrar todos los registros de {name} (asistencia, aplicaciones, capturas) de esta consola y pedir a sus equipos que borren los suyos? El registro de auditoría solo guarda el hecho y las cifras. No se puede deshacer.", "Стереть все записи о {name} (присутствие, приложения, снимки) на этой консоли и попросить компьютеры удалить свои? В журнале аудита останутся только факт и количество. Это необратимо."]),
    ("people.erase.yes", ["Erase", "Effacer", "Borrar", "Стереть"]),
    ("cancel", ["Cancel", "Annuler", "Cancelar", "Отмена"]),
    ("people.proposed", ["Proposed", "Propositions", "Propuestas", "Предложения"]),
    ("people.proposed.note", ["Accounts that no person holds yet, as the workstations report them.", "Comptes qu'aucune personne ne détient encore, tels que les postes les signalent.", "Cuentas que ninguna persona tiene aún, según los equipos.", "Учётные записи, которые ещё никому не назначены, по данным компьютеров."]),
    ("people.seen_on", ["seen on {workstations}", "vu sur {workstations}", "visto en {workstations}", "замечен на {workstations}"]),
    ("people.confirm", ["Confirm", "Confirmer", "Confirmar", "Подтвердить"]),
    ("people.add", ["Add a person", "Ajouter une personne", "Añadir una persona", "Добавить человека"]),
    ("people.add.button", ["Add", "Ajouter", "Añadir", "Добавить"]),
    // Attendance.
    ("attendance.title", ["Attendance", "Présence", "Asistencia", "Посещаемость"]),
    ("attendance.note", ["Net time is active time. Idle time is shown as idle: it is not deducted from anything.", "Le temps net est le temps actif. Le temps inactif est affiché comme tel : il n'est déduit de rien.", "El tiempo neto es el tiempo activo. El tiempo inactivo se muestra como tal: no se descuenta de nada.", "Чистое время — это активное время. Время бездействия показано отдельно и ни из чего не вычитается."]),
    ("attendance.export", ["Export CSV…", "Exporter en CSV…", "Exportar CSV…", "Экспорт CSV…"]),
    ("attendance.exported", ["Exported {rows} row(s) to {path}", "{rows} ligne(s) exportée(s) vers {path}", "{rows} fila(s) exportada(s) a {path}", "Экспортировано строк: {rows}, файл: {path}"]),
    ("attendance.export.cancelled", ["Export cancelled", "Export annulé", "Exportación cancelada", "Экспорт отменён"]),
    ("attendance.zone", ["Times in {zone}", "Heures en {zone}", "Horas en {zone}", "Время по поясу {zone}"]),
    ("attendance.empty", ["No attendance in this period. Agents record presence while they run; sync to fetch it.", "Aucune présence sur cette période. Les agents enregistrent la présence pendant qu'ils tournent ; synchronisez pour la récupérer.", "No hay asistencia en este período. Los equipos registran la presencia mientras funcionan; sincronice para obtenerla.", "За этот период нет данных о присутствии. Агенты записывают присутствие во время работы; синхронизируйте, чтобы получить их."]),
    ("col.day", ["Day", "Jour", "Día", "День"]),
    ("col.arrival", ["Arrival", "Arrivée", "Llegada", "Приход"]),
    ("col.departure", ["Departure", "Départ", "Salida", "Уход"]),
    ("col.active", ["Active", "Actif", "Activo", "Активно"]),
    ("col.idle", ["Idle", "Inactif", "Inactivo", "Бездействие"]),
    ("col.locked", ["Locked", "Verrouillé", "Bloqueado", "Заблок."]),
    ("col.net", ["Net", "Net", "Neto", "Чистое"]),
    ("col.effective", ["Effective", "Effectif", "Efectivo", "Эффективное"]),
    ("col.sessions", ["Sessions", "Sessions", "Sesiones", "Сеансы"]),
    ("total", ["Total", "Total", "Total", "Итого"]),
    // Organisation.
    ("org.agents", ["Agents", "Agents", "Equipos", "Агенты"]),
    ("org.online_now", ["Online now", "En ligne maintenant", "En línea ahora", "Сейчас в сети"]),
    ("org.left_recently", ["Left recently", "Partis récemment", "Salieron hace poco", "Недавно ушли"]),
    ("org.nobody_online", ["Nobody online.", "Personne en ligne.", "Nadie en línea.", "Никого нет в сети."]),
    ("org.nobody_left", ["Nobody left in the last 2 hours.", "Personne n'est parti ces 2 dernières heures.", "Nadie se ha ido en las últimas 2 horas.", "За последние 2 часа никто не ушёл."]),
    ("more", ["… and {count} more", "… et {count} de plus", "… y {count} más", "… и ещё {count}"]),
    ("org.recommendations", ["Recommendations", "Recommandations", "Recomendaciones", "Рекомендации"]),
    ("org.alerts", ["Alerts", "Alertes", "Alertas", "Оповещения"]),
    ("org.no_recommendations", ["Nothing to recommend.", "Rien à recommander.", "Nada que recomendar.", "Рекомендаций нет."]),
    ("org.no_alerts", ["No alerts.", "Aucune alerte.", "Sin alertas.", "Оповещений нет."]),
    ("org.empty", ["No data yet: enrol agents and sync (see the Fleet screen).", "Pas encore de données : inscrivez des agents et synchronisez (voir l'écran Parc).", "Aún no hay datos: inscriba equipos y sincronice (vea la pantalla Equipos).", "Данных пока нет: подключите агентов и синхронизируйте (см. экран «Парк»)."]),
    ("severity.info", ["info", "info", "info", "инфо"]),
    ("severity.warn", ["warning", "alerte", "aviso", "внимание"]),
    ("severity.critical", ["critical", "critique", "crítico", "критично"]),
    ("rec.app_limit.near", ["{app}: {used} used of the {limit} daily limit ({pct}).", "{app} : {used} utilisées sur la limite quotidienne de {limit} ({pct}).", "{app}: {used} usados del límite diario de {limit} ({pct}).", "{app}: использовано {used} из дневного лимита {limit} ({pct})."]),
    ("rec.app_limit.exceeded", ["{app}: daily limit of {limit} reached ({used} used).", "{app} : limite quotidienne de {limit} atteinte ({used} utilisées).", "{app}: límite diario de {limit} alcanzado ({used} usados).", "{app}: дневной лимит {limit} исчерпан (использовано {used})."]),
    ("rec.long_stretch", ["{user}: {duration} of continuous activity from {start} without a {break} break; suggest regular breaks.", "{user} : {duration} d'activité continue depuis {start} sans pause de {break} ; suggérez des pauses régulières.", "{user}: {duration} de actividad continua desde las {start} sin una pausa de {break}; sugiera pausas regulares.", "{user}: {duration} непрерывной активности с {start} без перерыва в {break}; рекомендуйте регулярные перерывы."]),
    ("rec.late_work", ["{user}: {outside} of activity before {work_start} or after {work_end}; mind the right to disconnect.", "{user} : {outside} d'activité avant {work_start} ou après {work_end} ; attention au droit à la déconnexion.", "{user}: {outside} de actividad antes de las {work_start} o después de las {work_end}; respete el derecho a la desconexión.", "{user}: {outside} активности до {work_start} или после {work_end}; соблюдайте право на отключение."]),
    ("rec.weekend_work", ["{user}: {active} of activity at the weekend; mind the weekly rest.", "{user} : {active} d'activité le week-end ; attention au repos hebdomadaire.", "{user}: {active} de actividad el fin de semana; respete el descanso semanal.", "{user}: {active} активности в выходные; соблюдайте еженедельный отдых."]),
    ("rec.health.critical", ["System health is critical (score {score}/100).", "La santé du système est critique (score {score}/100).", "La salud del sistema es crítica ({score}/100).", "Критическое состояние системы ({score}/100)."]),
    ("rec.disk.almost_full", ["Disk almost full ({disk} used); free space or add storage.", "Disque presque plein ({disk} utilisés) ; libérez de l'espace ou ajoutez du stockage.", "Disco casi lleno ({disk}).", "Диск почти заполнен ({disk})."]),
    // The `report` command line text.
    ("report.title", ["SmartTracker report, {period} ({from} to {to}), {agents} agent(s)", "Rapport SmartTracker, {period} (du {from} au {to}), {agents} agent(s)", "Informe de SmartTracker, {period} (del {from} al {to}), {agents} equipo(s)", "Отчёт SmartTracker, {period} (с {from} по {to}), агентов: {agents}"]),
    ("report.period.day", ["last 24 hours", "dernières 24 heures", "últimas 24 horas", "последние 24 часа"]),
    ("report.period.days", ["last {days} days", "{days} derniers jours", "últimos {days} días", "последние {days} дн."]),
    ("report.demo", ["Includes DEMO agents: their data is simulated.", "Inclut des agents de DÉMONSTRATION : leurs données sont simulées.", "Incluye equipos de DEMOSTRACIÓN: sus datos son simulados.", "Включает ДЕМО-агентов: их данные смоделированы."]),
    ("report.fleet", ["Fleet: {online} online, {left} left recently, {offline} offline", "Parc : {online} en ligne, {left} partis récemment, {offline} hors ligne", "Equipos: {online} en línea, {left} se fueron hace poco, {offline} sin conexión", "Парк: в сети — {online}, недавно ушли — {left}, не в сети — {offline}"]),
    ("report.left_recently", ["left recently: {name} ({ago})", "parti récemment : {name} ({ago})", "se fue hace poco: {name} ({ago})", "недавно ушли: {name} ({ago})"]),
    ("report.active_time", ["Active time: {duration}", "Temps actif : {duration}", "Tiempo activo: {duration}", "Активное время: {duration}"]),
    ("report.nothing", ["nothing recorded in this period: run `smarttracker-console sync --once` to pull from the agents", "rien d'enregistré sur cette période : lancez `smarttracker-console sync --once` pour récupérer les données des agents", "nada registrado en este período: ejecute `smarttracker-console sync --once` para obtener los datos de los equipos", "за этот период ничего не записано: выполните `smarttracker-console sync --once`, чтобы получить данные агентов"]),
    ("report.top_apps", ["Top applications:", "Applications les plus utilisées :", "Aplicaciones principales:", "Основные приложения:"]),
    ("report.by_category", ["By category:", "Par catégorie :", "Por categoría:", "По категориям:"]),
    ("report.per_day", ["Per day:", "Par jour :", "Por día:", "По дням:"]),
    ("report.per_agent", ["Per agent (attendance over the period):", "Par agent (présence sur la période) :", "Por equipo (asistencia en el período):", "По агентам (присутствие за период):"]),
    ("report.per_person", ["Per person (attendance over the period, across their workstations):", "Par personne (présence sur la période, tous postes confondus) :", "Por persona (asistencia en el período, en todos sus equipos):", "По людям (присутствие за период на всех их компьютерах):"]),
    ("report.person_line", ["{days} day(s) present, active {active}, idle {idle}", "{days} jour(s) de présence, actif {active}, inactif {idle}", "{days} día(s) de presencia, activo {active}, inactivo {idle}", "дней присутствия: {days}, активно {active}, бездействие {idle}"]),
    ("report.agent_line", ["{days} day(s) present, active {active}, idle {idle}, {health}", "{days} jour(s) de présence, actif {active}, inactif {idle}, {health}", "{days} día(s) de presencia, activo {active}, inactivo {idle}, {health}", "дней присутствия: {days}, активно {active}, бездействие {idle}, {health}"]),
    ("report.health", ["health {score} ({level})", "santé {score} ({level})", "salud {score} ({level})", "состояние {score} ({level})"]),
    ("report.no_health", ["no recent health", "pas de mesure de santé récente", "sin mediciones de salud recientes", "нет свежих данных о состоянии"]),
    ("report.recommendations", ["Recommendations:", "Recommandations :", "Recomendaciones:", "Рекомендации:"]),
    // Health.
    ("health.fleet", ["Fleet health", "Santé du parc", "Salud de los equipos", "Состояние парка"]),
    ("health.counts", ["{ok} OK · {warn} warning · {critical} critical · {none} no data", "{ok} OK · {warn} en alerte · {critical} critiques · {none} sans données", "{ok} OK · {warn} con aviso · {critical} críticos · {none} sin datos", "ОК: {ok} · внимание: {warn} · критично: {critical} · нет данных: {none}"]),
    ("health.select", ["Select an agent to see its CPU, memory and disk charts.", "Sélectionnez un agent pour voir ses courbes processeur, mémoire et disque.", "Seleccione un equipo para ver sus gráficos de CPU, memoria y disco.", "Выберите агента, чтобы увидеть графики ЦП, памяти и диска."]),
    ("health.alerts", ["Health alerts", "Alertes de santé", "Alertas de salud", "Оповещения"]),
    ("col.score", ["Score", "Score", "Puntuación", "Оценка"]),
    ("col.cpu", ["CPU %", "Processeur %", "CPU %", "ЦП %"]),
    ("col.mem", ["Memory %", "Mémoire %", "Memoria %", "Память %"]),
    ("col.disk", ["Disk %", "Disque %", "Disco %", "Диск %"]),
    ("col.worst_24h", ["Worst (24 h)", "Pire (24 h)", "Peor (24 h)", "Худшее (24 ч)"]),
    ("col.sampled", ["Sampled", "Mesuré", "Medido", "Измерено"]),
    ("health.empty", ["No health data yet: agents send CPU, memory and disk samples once synced.", "Pas encore de données de santé : les agents envoient processeur, mémoire et disque une fois synchronisés.", "Aún no hay datos de salud: los equipos envían mediciones de CPU, memoria y disco una vez sincronizados.", "Данных о состоянии пока нет: агенты отправляют замеры ЦП, памяти и диска после синхронизации."]),
    // Live view.
    ("live.title", ["Live view", "Vue en direct", "Vista en directo", "Просмотр экрана"]),
    ("live.notice", ["While you watch, the employee sees a notice on their screen that the live view is on. It stops when you press Stop or leave this screen.", "Pendant que vous regardez, la personne voit sur son écran un avis indiquant que la vue en direct est active. Elle s'arrête dès que vous cliquez sur Arrêter ou quittez cet écran.", "Mientras mira, la persona ve en su pantalla un aviso de que la vista en directo está activa. Se detiene al pulsar Detener o al salir de esta pantalla.", "Пока вы смотрите, сотрудник видит на экране уведомление о просмотре. Просмотр прекращается по кнопке «Остановить» или при уходе с этого экрана."]),
    ("live.viewer", ["Live view and screenshots are for administrator consoles only. This console has a viewer certificate: ask an administrator if a screen must be seen.", "La vue en direct et les captures d'écran sont réservées aux consoles administrateur. Cette console a un certificat de consultation : demandez à un administrateur s'il faut voir un écran.", "La vista en directo y las capturas son solo para consolas de administrador. Esta consola tiene un certificado de consulta: pida a un administrador si hay que ver una pantalla.", "Просмотр экрана и снимки доступны только консолям администратора. У этой консоли сертификат наблюдателя: обратитесь к администратору."]),
    ("live.no_identity", ["Live view needs an administrator console identity; this console has none (see the sync line above).", "La vue en direct demande une identité de console administrateur ; cette console n'en a pas (voir la ligne de synchronisation ci-dessus).", "La vista en directo necesita una identidad de consola de administrador; esta consola no tiene.", "Для просмотра нужна идентичность консоли администратора; у этой консоли её нет."]),
    ("live.grid.hint", ["Click a workstation to watch it larger.", "Cliquez sur un poste pour le voir en grand.", "Haga clic en un equipo para verlo en grande.", "Нажмите на рабочее место, чтобы увеличить."]),
    ("live.none_online", ["No workstation is online right now: the live view shows online workstations only.", "Aucun poste n'est en ligne pour l'instant : la vue en direct ne montre que les postes en ligne.", "Ningún equipo en línea: la vista en directo solo muestra equipos en línea.", "Сейчас нет рабочих мест в сети: показываются только те, что в сети."]),
    ("live.more", ["Showing the first {count} online workstations; the others are listed below the thumbnails.", "Affichage des {count} premiers postes en ligne ; les autres sont listés sous les vignettes.", "Se muestran los {count} primeros equipos en línea; los demás aparecen bajo las miniaturas.", "Показаны первые {count} рабочих мест в сети; остальные перечислены под миниатюрами."]),
    ("live.others", ["Other online workstations (click one to watch it large):", "Autres postes en ligne (cliquez sur l'un d'eux pour le voir en grand) :", "Otros equipos en línea (haga clic en uno para verlo en grande):", "Другие рабочие места в сети (нажмите, чтобы открыть крупно):"]),
    ("live.thumbnail", ["Live image of {name}", "Image en direct de {name}", "Imagen en directo de {name}", "Экран {name} в реальном времени"]),
    ("live.stop", ["Stop", "Arrêter", "Detener", "Остановить"]),
    ("live.stopped", ["Live view stopped: no workstation is watched.", "Vue en direct arrêtée : aucun poste n'est regardé.", "Vista en directo detenida: no se mira ningún equipo.", "Просмотр остановлен: ни одно рабочее место не просматривается."]),
    ("live.resume", ["Watch the online workstations", "Regarder les postes en ligne", "Ver los equipos en línea", "Смотреть рабочие места в сети"]),
    ("live.back", ["← All workstations", "← Tous les postes", "← Todos los equipos", "← Все рабочие места"]),
    ("live.badge", ["LIVE", "EN DIRECT", "EN VIVO", "В ЭФИРЕ"]),
    ("live.connecting", ["Connecting…", "Connexion…", "Conectando…", "Подключение…"]),
    ("live.waiting", ["Waiting for the first image…", "En attente de la première image…", "Esperando la primera imagen…", "Ожидание первого кадра…"]),
    ("live.unchanged", ["Screen unchanged since {time}", "Écran inchangé depuis {time}", "Pantalla sin cambios desde {time}", "Экран не менялся с {time}"]),
    ("live.unchanged.short", ["unchanged", "inchangé", "sin cambios", "без изменений"]),
    ("live.stale", ["No news for {ago}: the image may be out of date.", "Aucune nouvelle depuis {ago} : l'image n'est peut-être plus à jour.", "Sin noticias desde hace {ago}: la imagen puede estar desactualizada.", "Нет данных уже {ago}: изображение может быть устаревшим."]),
    ("live.stale.short", ["late", "en retard", "con retraso", "задержка"]),
    ("live.lost", ["Connection lost ({reason}); trying again…", "Connexion perdue ({reason}) ; nouvelle tentative…", "Conexión perdida ({reason}); reintentando…", "Соединение потеряно ({reason}); повторная попытка…"]),
    ("live.lost.short", ["connection lost", "connexion perdue", "conexión perdida", "нет связи"]),
    ("live.refused.short", ["refused", "refusé", "rechazado", "отказано"]),
    ("live.refused", ["The workstation refused the live view: {reason}", "Le poste a refusé la vue en direct : {reason}", "El equipo rechazó la vista en directo: {reason}", "Рабочее место отказало в просмотре: {reason}"]),
    ("live.captured", ["Captured at {time}", "Capturé à {time}", "Capturado a las {time}", "Снято в {time}"]),
    ("live.blurred", ["blurred", "floutée", "difuminada", "размыто"]),
    ("live.screenshot", ["Take screenshot", "Prendre une capture", "Tomar captura", "Сделать снимок"]),
    ("live.screenshot.taking", ["Taking the screenshot…", "Capture en cours…", "Tomando la captura…", "Снимок делается…"]),
    ("live.screenshot.taken", ["Screenshot of {name} taken at {time} and stored encrypted: see Screenshots → {name}.", "Capture de {name} prise le {time} et stockée chiffrée : voir Captures d'écran → {name}.", "Captura de {name} tomada el {time} y guardada cifrada: vea Capturas → {name}.", "Снимок {name} сделан {time} и сохранён в зашифрованном виде: см. Снимки экрана → {name}."]),
    ("live.screenshot.failed", ["{name}: screenshot not taken ({error})", "{name} : capture non prise ({error})", "{name}: captura no tomada ({error})", "{name}: снимок не сделан ({error})"]),
    ("live.screenshot.open", ["Open it in Screenshots", "L'ouvrir dans Captures d'écran", "Abrirla en Capturas", "Открыть в снимках экрана"]),
    // Screenshots.
    ("shots.title", ["Screenshots", "Captures d'écran", "Capturas de pantalla", "Снимки экрана"]),
    ("shots.note", ["Screenshots are stored encrypted on this computer; opening one is written to the audit log. Periodic screenshots are off unless a policy turns them on.", "Les captures sont stockées chiffrées sur cet ordinateur ; chaque ouverture est inscrite au journal d'audit. Les captures périodiques sont désactivées sauf si une politique les active.", "Las capturas se guardan cifradas en este equipo; cada apertura queda en el registro de auditoría. Las capturas periódicas están desactivadas salvo que una política las active.", "Снимки хранятся на этом компьютере в зашифрованном виде; каждое открытие записывается в журнал аудита. Периодические снимки выключены, если их не включает политика."]),
    ("shots.empty", ["No screenshots of {name} in this period. Periodic screenshots are off by default; take one from the Live screen.", "Aucune capture de {name} sur cette période. Les captures périodiques sont désactivées par défaut ; prenez-en une depuis l'écran En direct.", "No hay capturas de {name} en este período. Las capturas periódicas están desactivadas por defecto; tome una desde la pantalla En vivo.", "Нет снимков {name} за этот период. Периодические снимки по умолчанию выключены; сделайте снимок на экране «Прямой эфир»."]),
    ("shots.count", ["{count} screenshot(s)", "{count} capture(s)", "{count} captura(s)", "Снимков: {count}"]),
    ("shots.pick", ["Click a screenshot to see it.", "Cliquez sur une capture pour l'afficher.", "Haga clic en una captura para verla.", "Нажмите на снимок, чтобы открыть его."]),
    ("shots.opening", ["Decrypting…", "Déchiffrement…", "Descifrando…", "Расшифровка…"]),
    ("shots.error", ["Cannot show this screenshot: {error}", "Impossible d'afficher cette capture : {error}", "No se puede mostrar esta captura: {error}", "Не удаётся показать снимок: {error}"]),
    ("shots.periodic", ["periodic", "périodique", "periódica", "периодический"]),
    ("shots.on_demand", ["on demand", "à la demande", "a petición", "по запросу"]),
    ("shots.blurred", ["blurred", "floutée", "difuminada", "размыто"]),
    ("shots.dropped", ["image dropped on the workstation", "image supprimée sur le poste", "imagen eliminada en el equipo", "изображение удалено на рабочем месте"]),
    ("col.size", ["Size", "Taille", "Tamaño", "Размер"]),
    ("col.kind", ["Kind", "Type", "Tipo", "Тип"]),
    // Settings.
    ("settings.language", ["Language", "Langue", "Idioma", "Язык"]),
    ("settings.zone", ["Site time zone", "Fuseau horaire du site", "Zona horaria del sitio", "Часовой пояс площадки"]),
    ("settings.zone.current", ["Days and times are shown in {zone}.", "Jours et heures sont affichés en {zone}.", "Los días y las horas se muestran en {zone}.", "Дни и время показываются по поясу {zone}."]),
    ("settings.zone.machine", ["This machine's zone", "Fuseau de cette machine", "Zona de esta máquina", "Пояс этого компьютера"]),
    ("settings.zone.apply", ["Apply", "Appliquer", "Aplicar", "Применить"]),
    ("settings.zone.invalid", ["Not a time zone: use an IANA name such as Europe/Paris.", "Fuseau inconnu : utilisez un nom IANA comme Europe/Paris.", "Zona desconocida: use un nombre IANA como Europe/Paris.", "Неизвестный пояс: укажите имя IANA, например Europe/Paris."]),
    ("settings.zone.warning", ["This machine's time zone could not be read ({reason}): times are in UTC until a zone is chosen.", "Le fuseau de cette machine est illisible ({reason}) : les heures sont en UTC tant qu'aucun fuseau n'est choisi.", "No se pudo leer la zona horaria de esta máquina ({reason}): las horas están en UTC hasta que se elija una zona.", "Не удалось определить часовой пояс компьютера ({reason}): время показывается в UTC, пока пояс не выбран."]),
    ("settings.zone.regrouping", ["Regrouping day totals in the new zone: {done}/{total} workstations", "Regroupement des totaux par jour dans le nouveau fuseau : {done}/{total} postes", "Reagrupando los totales diarios en la nueva zona: {done}/{total} equipos", "Пересчёт дневных итогов в новом поясе: {done}/{total} компьютеров"]),
    ("settings.policy", ["Policy", "Politique", "Política", "Политика"]),
    ("settings.policy.agent", ["Agent", "Agent", "Equipo", "Агент"]),
    ("settings.policy.load", ["Read from agent", "Lire depuis l'agent", "Leer del equipo", "Прочитать"]),
    ("settings.policy.loading", ["Reading the agent's policy…", "Lecture de la politique de l'agent…", "Leyendo la política del equipo…", "Чтение политики агента…"]),
    ("settings.policy.pick", ["Choose an agent to read and edit its policy.", "Choisissez un agent pour lire et modifier sa politique.", "Elija un equipo para leer y editar su política.", "Выберите агента, чтобы прочитать и изменить его политику."]),
    ("settings.idle_threshold", ["Idle after (seconds without input)", "Inactif après (secondes sans saisie)", "Inactivo tras (segundos)", "Бездействие после (с)"]),
    ("settings.titles", ["Record window titles", "Enregistrer les titres de fenêtre", "Registrar títulos", "Записывать заголовки окон"]),
    ("settings.titles.note", ["Off by default; titles are redacted on the agent before storage.", "Désactivé par défaut ; les titres sont expurgés sur l'agent avant stockage.", "Desactivado por defecto; los títulos se anonimizan en el equipo antes de guardarse.", "По умолчанию выключено; заголовки обезличиваются на агенте перед сохранением."]),
    ("settings.redaction", ["Redaction rules (regex → replacement)", "Règles d'expurgation (regex → remplacement)", "Reglas de anonimización (regex → reemplazo)", "Правила обезличивания (regex → замена)"]),
    ("settings.redaction.pattern", ["Pattern (regular expression)", "Motif (expression régulière)", "Patrón (expresión regular)", "Шаблон (регулярное выражение)"]),
    ("settings.redaction.replacement", ["Replacement", "Remplacement", "Reemplazo", "Замена"]),
    ("settings.redaction.add", ["Add rule", "Ajouter une règle", "Añadir regla", "Добавить"]),
    ("settings.remove", ["Remove", "Supprimer", "Quitar", "Удалить"]),
    ("settings.screenshots", ["Periodic screenshots", "Captures d'écran périodiques", "Capturas periódicas", "Периодические снимки экрана"]),
    ("settings.screenshots.every", ["Every (minutes)", "Toutes les (minutes)", "Cada (minutos)", "Каждые (минуты)"]),
    ("settings.screenshots.blur", ["Blur them (text unreadable)", "Les flouter (texte illisible)", "Difuminarlas (texto ilegible)", "Размывать (текст нечитаем)"]),
    ("settings.screenshots.note", ["Off by default. When on, the employee's status page says so; images are stored encrypted on this computer.", "Désactivées par défaut. Activées, la page d'état du salarié l'indique ; les images sont stockées chiffrées sur cet ordinateur.", "Desactivadas por defecto. Activadas, la página de estado del empleado lo indica; las imágenes se guardan cifradas en este equipo.", "По умолчанию выключены. Если включены, это видно на странице состояния сотрудника; изображения хранятся на этом компьютере в зашифрованном виде."]),
    ("settings.console_retention", ["Kept on this console (days)", "Conservation sur cette console (jours)", "Conservación en esta consola (días)", "Хранение на этой консоли (дни)"]),
    ("settings.console_retention.note", ["Older records and screenshots are deleted from this console's store (checked after a sync, at most hourly) and the deletion is audited.", "Les enregistrements et captures plus anciens sont supprimés de cette console (vérifié après une synchro, au plus une fois par heure) ; chaque suppression est inscrite au journal d'audit.", "Los registros y capturas más antiguos se borran de esta consola (tras una sincronización, como mucho cada hora) y el borrado queda auditado.", "Более старые записи и снимки удаляются с этой консоли (после синхронизации, не чаще раза в час); удаление записывается в журнал аудита."]),
    ("settings.retention", ["Retention (days)", "Conservation (jours)", "Retención (días)", "Хранение (дни)"]),
    ("settings.retention.usage", ["Usage", "Utilisation", "Uso", "Использование"]),
    ("settings.retention.sessions", ["Sessions", "Sessions", "Sesiones", "Сеансы"]),
    ("settings.retention.health", ["Health", "Santé", "Salud", "Состояние"]),
    ("settings.retention.frames", ["Screenshots", "Captures", "Capturas", "Снимки"]),
    ("settings.health_interval", ["Health sample every (seconds)", "Mesure de santé toutes les (secondes)", "Medición cada (s)", "Замер каждые (с)"]),
    ("settings.apply_to", ["Apply to", "Appliquer à", "Aplicar a", "Применить к"]),
    ("settings.apply.agent", ["This agent", "Cet agent", "Este equipo", "Этот агент"]),
    ("settings.apply.group", ["Group {group}", "Groupe {group}", "Grupo {group}", "Группа {group}"]),
    ("settings.apply.all", ["All agents", "Tous les agents", "Todos", "Все агенты"]),
    ("settings.apply", ["Send policy", "Envoyer la politique", "Enviar política", "Отправить"]),
    ("settings.applied", ["Policy revision {revision} applied to {name}", "Politique révision {revision} appliquée à {name}", "Revisión {revision} de la política aplicada a {name}", "Редакция политики {revision} применена к {name}"]),
    ("settings.apply_failed", ["{name}: policy not applied ({error})", "{name} : politique non appliquée ({error})", "{name}: política no aplicada ({error})", "{name}: политика не применена ({error})"]),
    ("settings.group", ["Group of this agent", "Groupe de cet agent", "Grupo", "Группа"]),
    ("settings.save", ["Save", "Enregistrer", "Guardar", "Сохранить"]),
    ("settings.saved", ["Saved", "Enregistré", "Guardado", "Сохранено"]),
    ("settings.categories", ["Categories and rules", "Catégories et règles", "Categorías y reglas", "Категории и правила"]),
    ("settings.rules.none", ["No rules: the trained model decides every category.", "Aucune règle : le modèle entraîné décide de chaque catégorie.", "Sin reglas: el modelo entrenado decide cada categoría.", "Правил нет: каждую категорию определяет обученная модель."]),
    ("settings.rule.exact", ["exact", "exact", "exacta", "точно"]),
    ("settings.rule.regex", ["regex", "regex", "regex", "regex"]),
    ("settings.rule.pattern", ["App or pattern", "Appli ou motif", "App o patrón", "Приложение или шаблон"]),
    ("settings.rule.category", ["Category", "Catégorie", "Categoría", "Категория"]),
    ("settings.rule.add", ["Add rule", "Ajouter la règle", "Añadir regla", "Добавить правило"]),
    ("settings.retrain", ["Retrain with rules", "Réentraîner avec les règles", "Reentrenar", "Переобучить"]),
    ("settings.retrain.note", ["Retraining adds the exact rules as labelled examples, so similar app names follow them.", "Le réentraînement ajoute les règles exactes comme exemples étiquetés : les noms d'applis proches les suivent.", "El reentrenamiento añade las reglas exactas como ejemplos etiquetados, de modo que los nombres de apps parecidos las siguen.", "Переобучение добавляет точные правила как размеченные примеры, поэтому похожие названия приложений следуют им."]),
    ("settings.retrained", ["Model retrained ({rows} labelled row(s))", "Modèle réentraîné ({rows} ligne(s) étiquetée(s))", "Modelo reentrenado ({rows} fila(s) etiquetada(s))", "Модель переобучена (размеченных строк: {rows})"]),
    ("settings.try", ["Try an app name", "Essayer un nom d'appli", "Probar un nombre", "Проверить"]),
    ("settings.decided.rule", ["rule {id}", "règle {id}", "regla {id}", "правило {id}"]),
    ("settings.decided.model", ["model, {pct} confidence", "modèle, confiance {pct}", "modelo, confianza {pct}", "модель, {pct}"]),
    ("settings.peers", ["Static peers (host:port, for networks without multicast)", "Pairs statiques (hôte:port, pour les réseaux sans multicast)", "Pares estáticos (host:puerto)", "Статические адреса (host:port)"]),
    ("settings.peers.add", ["Add peer", "Ajouter", "Añadir", "Добавить"]),
    ("settings.peers.invalid", ["Not an address: write host:port, e.g. 10.0.0.7:47100", "Adresse invalide : écrivez hôte:port, ex. 10.0.0.7:47100", "No es una dirección: escriba host:puerto, p. ej. 10.0.0.7:47100", "Это не адрес: укажите host:port, например 10.0.0.7:47100"]),
    ("settings.show_current_app", ["Show each person's current application in the Fleet screen", "Afficher l'application en cours de chaque personne dans l'écran Parc", "Mostrar la aplicación actual de cada persona en la pantalla Equipos", "Показывать текущее приложение каждого сотрудника на экране «Парк»"]),
    ("settings.smtp", ["E-mail alerts (SMTP)", "Alertes par e-mail (SMTP)", "Alertas por correo (SMTP)", "Оповещения по почте (SMTP)"]),
    ("settings.smtp.note", ["Saved for the alerts feature; no e-mail is sent yet.", "Enregistré pour la fonction d'alertes ; aucun e-mail n'est encore envoyé.", "Se guarda para la función de alertas; todavía no se envía ningún correo.", "Сохраняется для функции оповещений; письма пока не отправляются."]),
    ("settings.smtp.host", ["Server", "Serveur", "Servidor", "Сервер"]),
    ("settings.smtp.port", ["Port", "Port", "Puerto", "Порт"]),
    ("settings.smtp.from", ["From", "Expéditeur", "Remitente", "От"]),
    ("settings.smtp.to", ["To", "Destinataire", "Destinatario", "Кому"]),
    ("settings.smtp.security", ["Security", "Sécurité", "Seguridad", "Защита"]),
    ("settings.smtp.plain", ["None (plain text)", "Aucune (en clair)", "Ninguna (texto plano)", "Нет (открытый текст)"]),
    // Audit.
    ("audit.verified", ["Hash chain verified: {count} entries intact.", "Chaîne de hachage vérifiée : {count} entrées intactes.", "Cadena verificada: {count} entradas.", "Цепочка проверена: {count} записей."]),
    ("audit.broken", ["The audit log does NOT verify: {error}", "Le journal d'audit NE se vérifie PAS : {error}", "El registro de auditoría NO se verifica: {error}", "Журнал аудита НЕ прошёл проверку: {error}"]),
    ("audit.empty", ["The audit log is empty: every sync, export and policy change will be listed here.", "Le journal d'audit est vide : chaque synchro, export et changement de politique y figurera.", "El registro de auditoría está vacío: aquí aparecerán cada sincronización, exportación y cambio de política.", "Журнал аудита пуст: здесь будут все синхронизации, экспорты и изменения политики."]),
    ("col.when", ["When", "Quand", "Cuándo", "Когда"]),
    ("col.who", ["Who", "Qui", "Quién", "Кто"]),
    ("col.action", ["Action", "Action", "Acción", "Действие"]),
    ("col.target", ["On", "Sur", "Sobre", "Объект"]),
    ("col.detail", ["Detail", "Détail", "Detalle", "Подробности"]),
    ("audit.shown", ["Newest {count} entries", "{count} entrées les plus récentes", "Las {count} entradas más recientes", "Последние записи: {count}"]),
];

fn table() -> &'static HashMap<&'static str, [&'static str; 4]> {
    static TABLE: OnceLock<HashMap<&'static str, [&'static str; 4]>> = OnceLock::new();
    TABLE.get_or_init(|| MESSAGES.iter().copied().collect())
}

/// Whether `key` has a message (any language).
pub fn has_key(key: &str) -> bool {
    table().contains_key(key)
}

/// Every text of every language (for glyph coverage checks).
pub fn all_texts() -> impl Iterator<Item = &'static str> {
    MESSAGES
        .iter()
        .flat_map(|(_, texts)| texts.iter().copied())
        .filter(|text| !text.is_empty())
}

/// The text of `key` in `lang` (the key itself if it has no message, so a
/// missing text is visible; an empty cell, forbidden by the completeness
/// test, would show the English text).
pub fn tr(lang: Lang, key: &'static str) -> &'static str {
    match table().get(key) {
        Some(texts) => match texts[lang.column()] {
            "" => texts[0],
            text => text,
        },
        None => key,
    }
}

/// [`tr`] with `{name}` parameters replaced.
pub fn trf(lang: Lang, key: &'static str, params: &[(&str, &str)]) -> String {
    let mut text = tr(lang, key).to_owned();
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// A recommendation in `lang`, from its stable key and typed parameters.
pub fn recommendation_text(lang: Lang, recommendation: &Recommendation) -> String {
    let params: Vec<(&str, String)> = recommendation
        .params()
        .into_iter()
        .map(|(name, value)| (name, param_text(lang, &value)))
        .collect();
    let borrowed: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    trf(lang, recommendation.key(), &borrowed)
}

fn param_text(lang: Lang, param: &Param) -> String {
    match param {
        Param::DurationMs(ms) => duration_label(lang, *ms),
        other => other.to_string(),
    }
}

/// The built-in categories (canonical English names, as stored and
/// exported) with their message keys.
const CATEGORY_KEYS: [(&str, &str); 10] = [
    ("Browsing", "category.Browsing"),
    ("Communication", "category.Communication"),
    ("Design", "category.Design"),
    ("Development", "category.Development"),
    ("Education", "category.Education"),
    ("Entertainment", "category.Entertainment"),
    ("Games", "category.Games"),
    ("Social", "category.Social"),
    ("Utilities", "category.Utilities"),
    ("Work", "category.Work"),
];

/// A category as shown in `lang`: the ten built-in names translated
/// (`Development` is `Développement` in French), a manager's own category
/// names as they were written. Stored values keep the canonical name.
pub fn category_label(lang: Lang, category: &str) -> &str {
    CATEGORY_KEYS
        .iter()
        .find(|(name, _)| *name == category)
        .map_or(category, |(_, key)| tr(lang, key))
}

/// A duration as people of `lang` read it: `8 h 05` (French, Spanish),
/// `8h 05m` (English), `8 ч 05 мин` (Russian) from one hour on, `45 min`
/// (`45 мин`) under an hour, `30 s` (`30 с`) under a minute. Truncates
/// like [`crate::analytics::format_duration_ms`]; a negative duration gets
/// a leading `-`.
pub fn duration_label(lang: Lang, ms: i64) -> String {
    let (sign, hours, minutes, seconds) = duration_parts(ms);
    let text = if hours > 0 {
        trf(
            lang,
            "duration.hours",
            &[
                ("hours", &hours.to_string()),
                ("minutes", &format!("{minutes:02}")),
            ],
        )
    } else if minutes > 0 {
        trf(
            lang,
            "duration.minutes",
            &[("minutes", &minutes.to_string())],
        )
    } else {
        trf(
            lang,
            "duration.seconds",
            &[("seconds", &seconds.to_string())],
        )
    };
    format!("{sign}{text}")
}

/// `value` with `digits` decimals and the decimal separator of `lang`:
/// `12.5` in English, `12,5` in French, Spanish and Russian.
pub fn decimal_label(lang: Lang, value: f64, digits: usize) -> String {
    let text = format!("{value:.digits$}");
    match lang {
        Lang::En => text,
        Lang::Fr | Lang::Es | Lang::Ru => text.replace('.', ","),
    }
}

/// A percentage in `lang`: `12.5 %` / `12,5 %` with `digits` decimals.
pub fn percent_label(lang: Lang, pct: f64, digits: usize) -> String {
    format!("{} %", decimal_label(lang, pct, digits))
}

/// A change in percent, rounded to a whole number and signed: `+12 %`,
/// `-3 %`, `0 %` (never `-0 %`).
pub fn change_label(lang: Lang, pct: f64) -> String {
    let rounded = pct.round();
    if rounded.abs() < 0.5 {
        percent_label(lang, 0.0, 0)
    } else if rounded > 0.0 {
        format!("+{}", percent_label(lang, rounded, 0))
    } else {
        percent_label(lang, rounded, 0)
    }
}

/// The message key of a health level (`None`: no data).
pub fn health_level_key(level: Option<HealthLevel>) -> &'static str {
    match level {
        Some(HealthLevel::Ok) => "health.ok",
        Some(HealthLevel::Warn) => "health.warn",
        Some(HealthLevel::Critical) => "health.critical",
        None => "health.none",
    }
}

/// The message key of a recommendation's severity.
pub fn severity_key(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "severity.info",
        Severity::Warn => "severity.warn",
        Severity::Critical => "severity.critical",
    }
}

const WEEKDAYS: [[&str; 7]; 4] = [
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
    ["lun.", "mar.", "mié.", "jue.", "vie.", "sáb.", "dom."],
    ["пн", "вт", "ср", "чт", "пт", "сб", "вс"],
];

const MONTHS: [[&str; 12]; 4] = [
    [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ],
    [
        "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
        "déc.",
    ],
    [
        "ene.", "feb.", "mar.", "abr.", "may.", "jun.", "jul.", "ago.", "sept.", "oct.", "nov.",
        "dic.",
    ],
    [
        "янв.",
        "февр.",
        "мар.",
        "апр.",
        "мая",
        "июн.",
        "июл.",
        "авг.",
        "сент.",
        "окт.",
        "нояб.",
        "дек.",
    ],
];

/// A day as people of `lang` write it: `Mon 2 Mar`, `lun. 2 mars`,
/// `lun. 2 mar.`, `пн, 2 мар.`.
pub fn day_label(lang: Lang, day: DayNumber) -> String {
    let Ok(date) = time::Date::from_julian_day(day + 2_440_588) else {
        return day.to_string();
    };
    let weekday = usize::from(date.weekday().number_days_from_monday());
    let month = usize::from(u8::from(date.month()) - 1);
    let column = lang.column();
    let (weekday, month) = (WEEKDAYS[column][weekday], MONTHS[column][month]);
    match lang {
        Lang::Ru => format!("{weekday}, {} {month}", date.day()),
        _ => format!("{weekday} {} {month}", date.day()),
    }
}

/// ` CEST` when the wall-clock time at `at_ms` happens twice that day (the
/// repeated hour of an autumn change), else nothing.
fn ambiguity_mark(clock: &DayClock, at_ms: i64) -> String {
    if clock.is_ambiguous(at_ms) {
        format!(" {}", clock.abbreviation(at_ms))
    } else {
        String::new()
    }
}

/// `14:05` on the site's clock (`02:30 CEST` / `02:30 CET` in the hour an
/// autumn change repeats).
pub fn time_label(clock: &DayClock, at_ms: i64) -> String {
    let minutes = clock.ms_since_midnight(at_ms) / 60_000;
    format!(
        "{:02}:{:02}{}",
        minutes / 60,
        minutes % 60,
        ambiguity_mark(clock, at_ms)
    )
}

/// `14:05:09` on the site's clock (with the zone's abbreviation in a
/// repeated hour, like [`time_label`]).
pub fn time_seconds_label(clock: &DayClock, at_ms: i64) -> String {
    let seconds = clock.ms_since_midnight(at_ms) / 1_000;
    format!(
        "{:02}:{:02}:{:02}{}",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60,
        ambiguity_mark(clock, at_ms)
    )
}

/// `Europe/Paris (UTC+01:00, CET)`: a zone with its offset and
/// abbreviation at `at_ms`.
pub fn zone_label(clock: &DayClock, at_ms: i64) -> String {
    let offset_secs = clock.offset_secs(at_ms);
    let sign = if offset_secs < 0 { '-' } else { '+' };
    let minutes = offset_secs.unsigned_abs() / 60;
    format!(
        "{} (UTC{sign}{:02}:{:02}, {})",
        clock.name(),
        minutes / 60,
        minutes % 60,
        clock.abbreviation(at_ms)
    )
}

/// `Mon 2 Mar 14:05:09` on the site's clock.
pub fn date_time_seconds_label(lang: Lang, clock: &DayClock, at_ms: i64) -> String {
    format!(
        "{} {}",
        day_label(lang, clock.day_of(at_ms)),
        time_seconds_label(clock, at_ms)
    )
}

/// `245 KB` / `1.8 MB` (`245 Ko` / `1,8 Mo` in French).
pub fn size_label(lang: Lang, size_bytes: u64) -> String {
    const KIB: u64 = 1024;
    if size_bytes < KIB * KIB {
        let kib = size_bytes.div_ceil(KIB).to_string();
        trf(lang, "unit.kb", &[("n", &kib)])
    } else {
        let mib = decimal_label(lang, size_bytes as f64 / (KIB * KIB) as f64, 1);
        trf(lang, "unit.mb", &[("n", &mib)])
    }
}

/// `Mon 2 Mar 14:05` on the site's clock.
pub fn date_time_label(lang: Lang, clock: &DayClock, at_ms: i64) -> String {
    format!(
        "{} {}",
        day_label(lang, clock.day_of(at_ms)),
        time_label(clock, at_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `{name}` parameters of a text, sorted.
    fn placeholders(text: &str) -> Vec<&str> {
        let mut names: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn every_key_has_all_four_languages_with_the_same_parameters() {
        for (key, texts) in MESSAGES {
            for lang in Lang::ALL {
                let text = texts[lang.column()];
                assert!(!text.trim().is_empty(), "{key} has no {} text", lang.code());
                assert_eq!(
                    placeholders(text),
                    placeholders(texts[0]),
                    "{key} in {} has other parameters than English",
                    lang.code()
                );
            }
        }
        assert_eq!(MESSAGES.len(), table().len(), "a key is listed twice");
    }

    #[test]
    fn each_language_has_its_own_text_and_unknown_keys_show() {
        assert_eq!(tr(Lang::Fr, "nav.fleet"), "Parc");
        assert_eq!(tr(Lang::Es, "sync.never"), "Aún no sincronizado");
        assert_eq!(tr(Lang::Ru, "sync.never"), "Ещё не синхронизировано");
        assert_eq!(tr(Lang::Ru, "no.such.key"), "no.such.key");
    }

    #[test]
    fn dates_follow_each_language() {
        // 2026-03-02 was a Monday.
        let day = 20_514;
        assert_eq!(day_label(Lang::En, day), "Mon 2 Mar");
        assert_eq!(day_label(Lang::Fr, day), "lun. 2 mars");
        assert_eq!(day_label(Lang::Es, day), "lun. 2 mar.");
        assert_eq!(day_label(Lang::Ru, day), "пн, 2 мар.");
        assert_eq!(
            date_time_label(Lang::Fr, &DayClock::utc(), 1_772_460_300_000),
            "lun. 2 mars 14:05"
        );
        assert_eq!(
            date_time_seconds_label(Lang::Fr, &DayClock::utc(), 1_772_460_309_999),
            "lun. 2 mars 14:05:09"
        );
    }

    #[test]
    fn times_are_local_and_the_repeated_hour_is_marked() {
        let paris = DayClock::from_name("Europe/Paris").expect("zone");
        // 08:00 in Paris before and after the spring change.
        assert_eq!(time_label(&paris, 1_774_594_800_000), "08:00");
        assert_eq!(time_label(&paris, 1_774_850_400_000), "08:00");
        // 02:30 twice on 2026-10-25.
        assert_eq!(time_label(&paris, 1_792_888_200_000), "02:30 CEST");
        assert_eq!(
            time_seconds_label(&paris, 1_792_891_800_000),
            "02:30:00 CET"
        );
    }

    #[test]
    fn zones_read_with_offset_and_abbreviation() {
        let zone = |name| DayClock::from_name(name).expect("zone");
        // 2026-06-15T12:00:00Z.
        let june_ms = 1_781_524_800_000;
        assert_eq!(
            zone_label(&zone("Europe/Paris"), june_ms),
            "Europe/Paris (UTC+02:00, CEST)"
        );
        assert_eq!(
            zone_label(&zone("America/St_Johns"), june_ms),
            "America/St_Johns (UTC-02:30, NDT)"
        );
        assert_eq!(
            zone_label(&zone("Asia/Kathmandu"), june_ms),
            "Asia/Kathmandu (UTC+05:45, +0545)"
        );
    }

    #[test]
    fn sizes_read_in_each_language() {
        assert_eq!(size_label(Lang::En, 250_000), "245 KB");
        assert_eq!(size_label(Lang::Fr, 250_000), "245 Ko");
        assert_eq!(size_label(Lang::Fr, 1_900_000), "1,8 Mo");
        assert_eq!(size_label(Lang::En, 1_900_000), "1.8 MB");
    }

    #[test]
    fn every_recommendation_key_has_texts() {
        for key in [
            "rec.app_limit.near",
            "rec.app_limit.exceeded",
            "rec.long_stretch",
            "rec.late_work",
            "rec.weekend_work",
            "rec.health.critical",
            "rec.disk.almost_full",
        ] {
            assert!(has_key(key), "{key}");
        }
    }

    #[test]
    fn built_in_categories_are_translated_and_own_names_kept() {
        assert_eq!(category_label(Lang::Fr, "Development"), "Développement");
        assert_eq!(category_label(Lang::En, "Development"), "Development");
        assert_eq!(category_label(Lang::Es, "Games"), "Juegos");
        assert_eq!(category_label(Lang::Ru, "Work"), "Работа");
        assert_eq!(category_label(Lang::Ru, "Compta maison"), "Compta maison");
        assert_eq!(category_label(Lang::Fr, "development"), "development");
        for (name, key) in CATEGORY_KEYS {
            assert!(has_key(key), "{name}");
            assert_eq!(tr(Lang::En, key), name, "English keeps the canonical name");
        }
    }

    #[test]
    fn durations_read_in_each_language() {
        let long_ms = (8 * 3_600 + 5 * 60 + 9) * 1_000;
        assert_eq!(duration_label(Lang::Fr, long_ms), "8 h 05");
        assert_eq!(duration_label(Lang::En, long_ms), "8h 05m");
        assert_eq!(duration_label(Lang::Es, long_ms), "8 h 05");
        assert_eq!(duration_label(Lang::Ru, long_ms), "8 ч 05 мин");
        assert_eq!(duration_label(Lang::Fr, 45 * 60_000 + 59_999), "45 min");
        assert_eq!(duration_label(Lang::En, 45 * 60_000), "45 min");
        assert_eq!(duration_label(Lang::Es, 45 * 60_000), "45 min");
        assert_eq!(duration_label(Lang::Ru, 45 * 60_000), "45 мин");
        assert_eq!(duration_label(Lang::Fr, 30_999), "30 s");
        assert_eq!(duration_label(Lang::En, 30_000), "30 s");
        assert_eq!(duration_label(Lang::Es, 30_000), "30 s");
        assert_eq!(duration_label(Lang::Ru, 30_000), "30 с");
        assert_eq!(duration_label(Lang::Ru, 0), "0 с");
        assert_eq!(duration_label(Lang::Fr, -90_000), "-1 min");
    }

    #[test]
    fn decimals_use_each_language_separator() {
        assert_eq!(decimal_label(Lang::En, 12.5, 1), "12.5");
        assert_eq!(decimal_label(Lang::Fr, 12.5, 1), "12,5");
        assert_eq!(decimal_label(Lang::Es, 12.54, 1), "12,5");
        assert_eq!(decimal_label(Lang::Ru, 12.56, 1), "12,6");
        assert_eq!(decimal_label(Lang::Fr, 12.6, 0), "13");
        assert_eq!(percent_label(Lang::Fr, 12.5, 1), "12,5 %");
        assert_eq!(percent_label(Lang::En, 12.5, 1), "12.5 %");
        assert_eq!(change_label(Lang::Fr, 12.4), "+12 %");
        assert_eq!(change_label(Lang::Ru, -3.2), "-3 %");
        assert_eq!(change_label(Lang::Es, -0.3), "0 %");
    }

    #[test]
    fn recommendations_read_in_each_language() {
        let recommendation = Recommendation {
            severity: Severity::Warn,
            agent: crate::model::AgentId::from_u128(7),
            day: 20_514,
            kind: crate::analytics::RecommendationKind::WeekendWork {
                user: "alice".to_owned(),
                active_ms: 2 * 3_600_000 + 5 * 60_000,
            },
        };
        assert_eq!(
            recommendation_text(Lang::Ru, &recommendation),
            "alice: 2 ч 05 мин активности в выходные; соблюдайте еженедельный отдых."
        );
        assert_eq!(
            recommendation_text(Lang::Fr, &recommendation),
            "alice : 2 h 05 d'activité le week-end ; attention au repos hebdomadaire."
        );
    }

    #[test]
    fn parameters_are_filled_in() {
        assert_eq!(
            trf(Lang::Fr, "seen.ago", &[("ago", "5 min")]),
            "il y a 5 min"
        );
    }
}
