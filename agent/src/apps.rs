//! Application name normalisation: raw process names and window classes to
//! the names people use (`soffice.bin` → `LibreOffice`, `gimp-2.10` → `GIMP`).
//!
//! A table (`assets/app_names.csv`, columns `raw,name`, `raw` matched
//! case-insensitively) is consulted with the process name, then the
//! `WM_CLASS`; a class naming a more specific part of the same application
//! wins (`soffice.bin` + `libreoffice-writer` → `LibreOffice Writer`).
//! Unknown names are cleaned (`.bin`, `-esr`, version suffixes and
//! reverse-DNS prefixes stripped), looked up again, then title-cased
//! (`gedit` → `Gedit`).

use std::collections::HashMap;

use crate::sensors::WindowSample;

/// The built-in table, compiled in.
const BUILTIN_CSV: &str = include_str!("../../assets/app_names.csv");
const BUILTIN_SOURCE: &str = "assets/app_names.csv";

/// Processes that host other programs (runtimes, interpreters, wrappers):
/// their name says nothing about the application, the window class does.
const HOST_PROCESSES: &[&str] = &[
    "java",
    "python",
    "python2",
    "python3",
    "node",
    "electron",
    "wine",
    "wine64",
    "wine-preloader",
    "wine64-preloader",
    "mono",
    "perl",
    "ruby",
    "sh",
    "bash",
    "gjs",
    "gjs-console",
    "bwrap",
    "apprun",
];

/// Suffixes dropped from unknown names, compared case-insensitively.
const NOISE_SUFFIXES: &[&str] = &[
    ".bin",
    ".exe",
    ".appimage",
    ".real",
    ".sh",
    ".py",
    "-bin",
    "-esr",
    "-wrapped",
    "-stable",
    "-x86_64",
    "_x86_64",
    "-amd64",
    "-aarch64",
    "-arm64",
    "-linux",
];

/// First labels of reverse-DNS application ids (`org.gnome.Nautilus`).
const REVERSE_DNS_ROOTS: &[&str] = &[
    "org", "com", "net", "io", "dev", "app", "de", "fr", "eu", "uk", "ch", "be", "nl", "me", "info",
];

/// Why an application name table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AppNamesError {
    #[error("{source_name}:{line}: {reason}")]
    Csv {
        source_name: String,
        line: u64,
        reason: String,
    },
    #[error("{source_name}:1: the header must be `raw,name`, found `{found}`")]
    Header { source_name: String, found: String },
    #[error("{source_name}:{line}: the `{column}` column is empty")]
    Empty {
        source_name: String,
        line: u64,
        column: &'static str,
    },
    #[error("{source_name}:{line}: `{raw}` is already mapped on line {first_line}")]
    Duplicate {
        source_name: String,
        line: u64,
        raw: String,
        first_line: u64,
    },
}

/// Raw application names (lower case) to the names people use.
#[derive(Debug, Clone)]
pub struct AppNames {
    names: HashMap<String, String>,
}

impl AppNames {
    /// The table shipped in `assets/app_names.csv`. Its validity is checked
    /// by a unit test, so a broken row cannot reach a release; were it
    /// broken anyway, normalisation falls back to cleaned raw names.
    pub fn builtin() -> Self {
        Self::from_csv(BUILTIN_CSV, BUILTIN_SOURCE).unwrap_or_else(|err| {
            tracing::error!("built-in application names unusable: {err}");
            AppNames {
                names: HashMap::new(),
            }
        })
    }

    /// Parses a `raw,name` table; `source_name` (a file name) labels errors.
    /// Lines starting with `#` are comments; each `raw` appears once.
    pub fn from_csv(text: &str, source_name: &str) -> Result<Self, AppNamesError> {
        let csv_error = |err: csv::Error| AppNamesError::Csv {
            source_name: source_name.to_owned(),
            line: err.position().map_or(0, csv::Position::line),
            reason: err.to_string(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(csv_error)?;
        if header.len() != 2 || &header[0] != "raw" || &header[1] != "name" {
            return Err(AppNamesError::Header {
                source_name: source_name.to_owned(),
                found: header.iter().collect::<Vec<_>>().join(","),
            });
        }
        let mut names = HashMap::new();
        let mut first_lines: HashMap<String, u64> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            let line = record.position().map_or(0, csv::Position::line);
            let (raw, name) = (&record[0], &record[1]);
            for (column, value) in [("raw", raw), ("name", name)] {
                if value.is_empty() {
                    return Err(AppNamesError::Empty {
                        source_name: source_name.to_owned(),
                        line,
                        column,
                    });
                }
            }
            let key = raw.to_lowercase();
            if let Some(&first_line) = first_lines.get(&key) {
                return Err(AppNamesError::Duplicate {
                    source_name: source_name.to_owned(),
                    line,
                    raw: raw.to_owned(),
                    first_line,
                });
            }
            first_lines.insert(key.clone(), line);
            names.insert(key, name.to_owned());
        }
        Ok(AppNames { names })
    }

    /// Number of raw names in the table.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The table has no entries.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The table's name for `raw`, matched case-insensitively.
    pub fn lookup(&self, raw: &str) -> Option<&str> {
        self.names
            .get(&raw.trim().to_lowercase())
            .map(String::as_str)
    }

    /// What a person calls the application of `sample`; `None` when the
    /// sample names no application at all.
    pub fn normalise(&self, sample: &WindowSample) -> Option<String> {
        let process = non_empty(sample.process_name.as_deref());
        let class = non_empty(sample.wm_class.as_deref());
        let by_process = process.and_then(|raw| self.lookup(raw));
        let by_class = class.and_then(|raw| self.lookup(raw));
        match (by_process, by_class) {
            (Some(general), Some(specific)) if refines(specific, general) => {
                return Some(specific.to_owned())
            }
            (Some(name), _) | (None, Some(name)) => return Some(name.to_owned()),
            (None, None) => {}
        }
        let raw = match (process, class) {
            (Some(process), Some(class)) if is_host_process(process) => class,
            (Some(process), _) => process,
            (None, Some(class)) => class,
            (None, None) => return None,
        };
        let key = clean_key(raw);
        Some(match self.lookup(key) {
            Some(name) => name.to_owned(),
            None => title_case(key),
        })
    }
}

fn non_empty(name: Option<&str>) -> Option<&str> {
    name.map(str::trim).filter(|name| !name.is_empty())
}

/// `specific` names a part of `general` (`LibreOffice Writer` of
/// `LibreOffice`).
fn refines(specific: &str, general: &str) -> bool {
    specific
        .strip_prefix(general)
        .is_some_and(|rest| rest.starts_with(' '))
}

fn is_host_process(process: &str) -> bool {
    HOST_PROCESSES
        .iter()
        .any(|host| host.eq_ignore_ascii_case(process))
}

/// An unknown raw name without packaging noise: reverse-DNS prefix,
/// `.bin`-like suffixes and version suffixes. Never empty for a non-empty
/// input.
fn clean_key(raw: &str) -> &str {
    let mut key = raw.trim();
    // Application ids have at least three labels (`org.gnome.Nautilus`).
    if let (Some((root, _)), Some((_, last))) = (key.split_once('.'), key.rsplit_once('.')) {
        let labels = key.split('.').count();
        if labels >= 3
            && !last.is_empty()
            && REVERSE_DNS_ROOTS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(root))
        {
            key = last;
        }
    }
    loop {
        let stripped = strip_noise_suffix(key);
        if stripped.len() != key.len() {
            key = stripped;
            continue;
        }
        let stripped = strip_version(key);
        if stripped.len() == key.len() {
            break;
        }
        key = stripped;
    }
    if key.is_empty() {
        raw.trim()
    } else {
        key
    }
}

fn strip_noise_suffix(key: &str) -> &str {
    for suffix in NOISE_SUFFIXES {
        let Some(cut) = key.len().checked_sub(suffix.len()) else {
            continue;
        };
        if cut > 0 && key.is_char_boundary(cut) && key[cut..].eq_ignore_ascii_case(suffix) {
            return &key[..cut];
        }
    }
    key
}

/// Drops a trailing version: `gimp-2.10` → `gimp`, `python3.11` →
/// `python`, `blender-4` → `blender`; keeps `python3` and `k3b`.
fn strip_version(key: &str) -> &str {
    let start = key
        .char_indices()
        .rev()
        .take_while(|(_, ch)| ch.is_ascii_digit() || *ch == '.')
        .last()
        .map_or(key.len(), |(index, _)| index);
    let (head, tail) = key.split_at(start);
    let dotted = tail.contains('.') && tail.bytes().any(|byte| byte.is_ascii_digit());
    let separated = head.ends_with(['-', '_', ' ']) && !tail.is_empty();
    if head.is_empty() || !(dotted || separated) {
        return key;
    }
    let head = head.trim_end_matches(['-', '_', ' ']);
    let head = match head.strip_suffix(['v', 'V']) {
        Some(rest) if rest.ends_with(['-', '_', ' ']) => rest.trim_end_matches(['-', '_', ' ']),
        _ => head,
    };
    if head.is_empty() {
        key
    } else {
        head
    }
}

/// `gnome-calculator` → `Gnome Calculator`; inner capitals are kept
/// (`VirtualBox`).
fn title_case(key: &str) -> String {
    key.split(['-', '_', ' '])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect::<String>()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(process: Option<&str>, class: Option<&str>) -> WindowSample {
        WindowSample {
            process_name: process.map(str::to_owned),
            wm_class: class.map(str::to_owned),
            title: None,
        }
    }

    #[test]
    fn builtin_table_parses_and_is_large() {
        let names = AppNames::from_csv(BUILTIN_CSV, BUILTIN_SOURCE).expect("builtin table");
        assert!(names.len() >= 150, "only {} rows", names.len());
        assert_eq!(AppNames::builtin().len(), names.len());
    }

    #[test]
    fn builtin_names_are_tidy() {
        for line in BUILTIN_CSV.lines().skip(1) {
            assert_eq!(line, line.trim(), "stray spaces: {line:?}");
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (raw, name) = line.split_once(',').expect("two columns");
            assert_eq!(raw, raw.to_lowercase(), "raw names are lower case: {line}");
            assert!(!name.contains(','), "{line}");
        }
    }

    #[test]
    fn normalises_known_and_unknown_apps() {
        let names = AppNames::builtin();
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            // Table, by process name.
            (Some("firefox"), None, Some("Firefox")),
            (Some("firefox-esr"), Some("firefox-esr"), Some("Firefox")),
            (Some("code"), Some("Code"), Some("Visual Studio Code")),
            (Some("code-oss"), None, Some("Visual Studio Code")),
            (Some("soffice.bin"), Some("Soffice"), Some("LibreOffice")),
            (Some("chromium"), None, Some("Chromium")),
            (Some("chrome"), Some("Google-chrome"), Some("Google Chrome")),
            (Some("thunderbird"), None, Some("Thunderbird")),
            (Some("slack"), Some("Slack"), Some("Slack")),
            (Some("discord"), None, Some("Discord")),
            (Some("teams-for-linux"), None, Some("Microsoft Teams")),
            (Some("gnome-terminal-server"), None, Some("Terminal")),
            (Some("xterm"), Some("XTerm"), Some("XTerm")),
            (Some("nautilus"), None, Some("Files")),
            (Some("evince"), None, Some("Evince")),
            (Some("gimp-2.10"), None, Some("GIMP")),
            (Some("inkscape"), None, Some("Inkscape")),
            (Some("zoom"), None, Some("Zoom")),
            (Some("signal-desktop"), None, Some("Signal")),
            (Some("telegram-desktop"), None, Some("Telegram")),
            (Some("spotify"), None, Some("Spotify")),
            (Some("vlc"), None, Some("VLC")),
            (Some("keepassxc"), None, Some("KeePassXC")),
            (Some("dbeaver"), None, Some("DBeaver")),
            (Some("pycharm"), None, Some("PyCharm")),
            (Some("clion"), None, Some("CLion")),
            // Case-insensitive.
            (Some("FIREFOX"), None, Some("Firefox")),
            // Table, by class when the process is unknown or a runtime.
            (None, Some("org.gnome.Nautilus"), Some("Files")),
            (Some("java"), Some("jetbrains-idea"), Some("IntelliJ IDEA")),
            (Some("python3"), Some("Meld"), Some("Meld")),
            // A class naming a part of the process's application refines it.
            (
                Some("soffice.bin"),
                Some("libreoffice-writer"),
                Some("LibreOffice Writer"),
            ),
            (
                Some("soffice.bin"),
                Some("libreoffice-calc"),
                Some("LibreOffice Calc"),
            ),
            // ... but an unrelated class does not override the process.
            (Some("code"), Some("Firefox"), Some("Visual Studio Code")),
            // Cleaned, then looked up again.
            (Some("gimp-2.99"), None, Some("GIMP")),
            (Some("blender-4.1"), None, Some("Blender")),
            (None, Some("org.kde.dolphin"), Some("Dolphin")),
            (Some("firefox-bin.exe"), None, Some("Firefox")),
            // Cleaned and title-cased fallback.
            (Some("gedit"), None, Some("Gedit")),
            (Some("xmessage"), Some("Xmessage"), Some("Xmessage")),
            (Some("gnome-mahjongg"), None, Some("Gnome Mahjongg")),
            (None, Some("org.example.FancyTool"), Some("FancyTool")),
            (Some("mytool.bin"), None, Some("Mytool")),
            (Some("frobnicator-esr"), None, Some("Frobnicator")),
            (Some("widget-v1.2.3"), None, Some("Widget")),
            (Some("k3b"), None, Some("K3b")),
            (Some("2048"), None, Some("2048")),
            (
                Some("java"),
                Some("sun-awt-X11-XFramePeer"),
                Some("Sun Awt X11 XFramePeer"),
            ),
            (Some("java"), None, Some("Java")),
            // Nothing to name.
            (None, None, None),
            (Some(""), Some("  "), None),
        ];
        for (process, class, want) in cases {
            assert_eq!(
                names.normalise(&sample(*process, *class)).as_deref(),
                *want,
                "process {process:?}, class {class:?}"
            );
        }
    }

    #[test]
    fn clean_key_strips_packaging_noise() {
        let cases = [
            ("soffice.bin", "soffice"),
            ("app.exe", "app"),
            ("org.exe", "org"),
            ("com.foo", "com.foo"),
            ("python3.11", "python"),
            ("python3", "python3"),
            ("gimp-2.10", "gimp"),
            ("org.gnome.TextEditor", "TextEditor"),
            ("io.github.foo.Bar", "Bar"),
            ("Tool-x86_64.AppImage", "Tool"),
            ("Tool-1.2-x86_64.AppImage", "Tool"),
            ("name.", "name."),
            (".bin", ".bin"),
            ("-2.0", "-2.0"),
            ("été-1.0", "été"),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_key(raw), want, "{raw}");
        }
    }

    #[test]
    fn csv_errors_name_the_file_and_line() {
        let cases: &[(&str, &str)] = &[
            ("raw,name\nfoo,Foo\nbar\n", "mine.csv:3:"),
            (
                "raw,name\nfoo,Foo\n,Empty\n",
                "mine.csv:3: the `raw` column",
            ),
            ("raw,name\nfoo,\n", "mine.csv:2: the `name` column"),
            (
                "raw,name\nfoo,Foo\nFOO,Other\n",
                "mine.csv:3: `FOO` is already mapped on line 2",
            ),
            (
                "process,label\nfoo,Foo\n",
                "mine.csv:1: the header must be `raw,name`",
            ),
        ];
        for (text, want) in cases {
            let err = AppNames::from_csv(text, "mine.csv").expect_err(text);
            assert!(err.to_string().starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn csv_comments_blank_lines_and_spaces_are_accepted() {
        let names = AppNames::from_csv(
            "raw,name\n# browsers\n\n Firefox , Firefox \nfoo,\"Foo, Inc.\"\n",
            "mine.csv",
        )
        .expect("valid");
        assert_eq!(names.len(), 2);
        assert_eq!(names.lookup("firefox"), Some("Firefox"));
        assert_eq!(names.lookup("FOO"), Some("Foo, Inc."));
        assert!(!names.is_empty());
    }
}
