//! Pure access rules: which console role may make which request, and
//! validation of a policy a console wants to set.

use certs::Role;
use protocol::{Ack, Policy, Pull, Request, StreamKind};
use regex::Regex;

/// Whether `role` may make `request`. Viewers read usage, sessions and
/// health; only admins change policy and see screens (screenshots, live
/// view, and the periodic screenshots of the frames stream).
pub fn authorize(role: Role, request: &Request) -> Result<(), String> {
    let admin_only = match request {
        Request::Pull(Pull { stream, .. }) | Request::Ack(Ack { stream, .. }) => {
            *stream == StreamKind::Frames
        }
        // A deny-list is signed by the site CA: any console may carry it.
        Request::Hello(_) | Request::GetPolicy | Request::DenyList(_) => false,
        Request::SetPolicy(_)
        | Request::Screenshot(_)
        | Request::LiveStart(_)
        | Request::LiveFrame(_)
        | Request::LiveStop(_)
        | Request::FetchFrame(_)
        | Request::NewKey
        | Request::InstallCertificate(_)
        | Request::EraseUsers(_) => true,
    };
    if admin_only && role != Role::Admin {
        Err(format!("{} needs the admin role", request.kind()))
    } else {
        Ok(())
    }
}

/// Whether a console limited to `console_team` may be served by a
/// workstation in `own_team` (both from the verified certificates): a
/// console without a team is served by every workstation; one with a team
/// only by the workstations of that team.
pub fn team_allows(console_team: Option<&str>, own_team: Option<&str>) -> Result<(), String> {
    match console_team {
        Some(team) if own_team != Some(team) => Err(format!(
            "this console is limited to team {team:?} and this workstation is not in it"
        )),
        _ => Ok(()),
    }
}

/// Checks a policy before it is applied; the message says what to fix.
pub fn validate_policy(policy: &Policy, current_revision: u64) -> Result<(), String> {
    if policy.revision <= current_revision {
        return Err(format!(
            "policy revision {} is not newer than the agent's {current_revision}",
            policy.revision
        ));
    }
    if !(30..=3600).contains(&policy.idle_threshold_secs) {
        return Err("idle threshold must be 30–3600 s".to_owned());
    }
    if !(5..=3600).contains(&policy.health_interval_secs) {
        return Err("health interval must be 5–3600 s".to_owned());
    }
    if policy.screenshots.enabled && !(120..=1200).contains(&policy.screenshots.interval_secs) {
        return Err("screenshot interval must be 120–1200 s (2–20 min)".to_owned());
    }
    let retention = policy.retention;
    if [
        retention.usage_days,
        retention.sessions_days,
        retention.health_days,
        retention.frames_days,
    ]
    .contains(&0)
    {
        return Err("retention must be at least one day for every data class".to_owned());
    }
    if policy.redaction_rules.len() > 64 {
        return Err("at most 64 redaction rules".to_owned());
    }
    for rule in &policy.redaction_rules {
        Regex::new(&rule.pattern)
            .map_err(|error| format!("redaction pattern {:?}: {error}", rule.pattern))?;
    }
    Ok(())
}

/// Compiled redaction rules, applied to window titles before storage.
#[derive(Debug, Default)]
pub struct Redactor {
    rules: Vec<(Regex, String)>,
}

impl Redactor {
    /// Compiles a validated policy's rules; a rule that fails to compile
    /// is impossible after [`validate_policy`], and is skipped otherwise.
    pub fn new(policy: &Policy) -> Self {
        Redactor {
            rules: policy
                .redaction_rules
                .iter()
                .filter_map(|rule| {
                    Regex::new(&rule.pattern)
                        .ok()
                        .map(|regex| (regex, rule.replacement.clone()))
                })
                .collect(),
        }
    }

    pub fn apply(&self, title: &str) -> String {
        self.rules
            .iter()
            .fold(title.to_owned(), |title, (regex, replacement)| {
                regex.replace_all(&title, replacement.as_str()).into_owned()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{CaptureSpec, Cursor, Hello, LiveSession, LiveStart, RedactionRule};

    #[test]
    fn a_team_console_is_served_only_by_its_team() {
        assert!(team_allows(None, None).is_ok());
        assert!(team_allows(None, Some("Salle 1")).is_ok());
        assert!(team_allows(Some("Salle 1"), Some("Salle 1")).is_ok());
        assert!(team_allows(Some("Salle 1"), Some("Salle 2")).is_err());
        assert!(team_allows(Some("Salle 1"), None).is_err());
        assert!(team_allows(Some("salle 1"), Some("Salle 1")).is_err());
    }

    #[test]
    fn roles() {
        let hello = Request::Hello(Hello {
            min_version: 1,
            max_version: 1,
            console_name: "c".into(),
        });
        let set = Request::SetPolicy(Policy::default());
        let pull = |stream| {
            Request::Pull(Pull {
                stream,
                after: Cursor { epoch: 0, seq: 0 },
                max_records: 1,
            })
        };
        let ack = |stream| {
            Request::Ack(Ack {
                stream,
                upto: Cursor { epoch: 1, seq: 1 },
            })
        };
        let spec = CaptureSpec {
            monitor: None,
            max_width: 320,
            max_height: 180,
            quality: 60,
        };
        let session = LiveSession { session_id: 1 };
        let screens = [
            Request::Screenshot(spec),
            Request::LiveStart(LiveStart {
                spec,
                interval_ms: 1_000,
            }),
            Request::LiveFrame(session),
            Request::LiveStop(session),
            Request::FetchFrame(Cursor { epoch: 1, seq: 1 }),
            pull(StreamKind::Frames),
            ack(StreamKind::Frames),
            Request::NewKey,
            Request::InstallCertificate(vec![1, 2, 3]),
        ];
        let (usage_pull, health_ack) = (pull(StreamKind::Usage), ack(StreamKind::Health));
        let mut cases = vec![
            (Role::Admin, &hello, true),
            (Role::Viewer, &hello, true),
            (Role::Viewer, &Request::GetPolicy, true),
            (Role::Viewer, &usage_pull, true),
            (Role::Viewer, &health_ack, true),
            (Role::Admin, &set, true),
            (Role::Viewer, &set, false),
        ];
        // Signed by the site CA: any console may carry it.
        let deny_list = Request::DenyList(protocol::SignedDenyList {
            body: Vec::new(),
            signature: Vec::new(),
        });
        cases.push((Role::Viewer, &deny_list, true));
        for screen in &screens {
            cases.push((Role::Admin, screen, true));
            cases.push((Role::Viewer, screen, false));
        }
        for (role, request, allowed) in cases {
            assert_eq!(
                authorize(role, request).is_ok(),
                allowed,
                "{role} {request:?}"
            );
        }
    }

    #[test]
    fn policy_validation() {
        let good = Policy {
            revision: 2,
            ..Policy::default()
        };
        assert!(validate_policy(&good, 1).is_ok());
        assert!(validate_policy(&good, 2).is_err(), "stale revision");
        let bad_idle = Policy {
            idle_threshold_secs: 5,
            ..good.clone()
        };
        assert!(validate_policy(&bad_idle, 1).is_err());
        let bad_regex = Policy {
            redaction_rules: vec![RedactionRule {
                pattern: "(".into(),
                replacement: String::new(),
            }],
            ..good
        };
        assert!(validate_policy(&bad_regex, 1)
            .unwrap_err()
            .contains("redaction pattern"));
    }

    #[test]
    fn redaction_runs_every_rule_in_order() {
        let policy = Policy {
            redaction_rules: vec![
                RedactionRule {
                    pattern: r"[\w.+-]+@[\w-]+\.[\w.]+".into(),
                    replacement: "<email>".into(),
                },
                RedactionRule {
                    pattern: r"\b\d{4,}\b".into(),
                    replacement: "<n>".into(),
                },
            ],
            ..Policy::default()
        };
        let redactor = Redactor::new(&policy);
        assert_eq!(
            redactor.apply("Inbox - ana.b@example.fr - order 123456"),
            "Inbox - <email> - order <n>"
        );
    }
}
