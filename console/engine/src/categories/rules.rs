//! Manager rules: exact app names (overrides) and regexes, validated and
//! compiled once, matched before the model is asked.

use std::collections::{HashMap, HashSet};

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::CategoriesError;

/// A manager's rule: apps whose name matches `pattern` go to `category`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Identifier the store gives the rule; unique within a rule list.
    pub id: u64,
    pub pattern: RulePattern,
    pub category: String,
}

/// What a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RulePattern {
    /// One app name, compared case-insensitively after trimming: a manager's
    /// override for that app. Exact rules win over every regex rule.
    Exact(String),
    /// A regex searched in the trimmed app name, case-insensitively (write
    /// `^…$` to anchor it, `(?-i)` to make it case-sensitive). Regex rules
    /// are tried in list order; the first that matches wins.
    Regex(String),
}

impl Rule {
    /// An exact rule (an override) for one app name.
    pub fn exact(id: u64, app: impl Into<String>, category: impl Into<String>) -> Rule {
        Rule {
            id,
            pattern: RulePattern::Exact(app.into()),
            category: category.into(),
        }
    }

    /// A regex rule.
    pub fn regex(id: u64, pattern: impl Into<String>, category: impl Into<String>) -> Rule {
        Rule {
            id,
            pattern: RulePattern::Regex(pattern.into()),
            category: category.into(),
        }
    }
}

/// Rules with their regexes compiled and their exact names indexed.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleSet {
    rules: Vec<Rule>,
    /// Normalised exact name → index in `rules`.
    exact: HashMap<String, usize>,
    /// Index in `rules` and compiled regex, in list order.
    regexes: Vec<(usize, Regex)>,
}

impl RuleSet {
    /// Validates and compiles `rules`: ids must be unique, patterns and
    /// categories non-blank, regexes valid, and no two exact rules may name
    /// the same app (an app has one override).
    pub(crate) fn new(rules: Vec<Rule>) -> Result<RuleSet, CategoriesError> {
        let mut ids: HashSet<u64> = HashSet::with_capacity(rules.len());
        let mut exact: HashMap<String, usize> = HashMap::new();
        let mut regexes = Vec::new();
        for (index, rule) in rules.iter().enumerate() {
            if !ids.insert(rule.id) {
                return Err(CategoriesError::DuplicateRuleId { rule_id: rule.id });
            }
            if rule.category.trim().is_empty() {
                return Err(CategoriesError::BlankRuleCategory { rule_id: rule.id });
            }
            match &rule.pattern {
                RulePattern::Exact(app) => {
                    let key = normalise(app);
                    if key.is_empty() {
                        return Err(CategoriesError::BlankRulePattern { rule_id: rule.id });
                    }
                    if let Some(&first) = exact.get(&key) {
                        return Err(CategoriesError::DuplicateExactRule {
                            app: app.clone(),
                            first_id: rules[first].id,
                            second_id: rule.id,
                        });
                    }
                    exact.insert(key, index);
                }
                RulePattern::Regex(pattern) => {
                    if pattern.trim().is_empty() {
                        return Err(CategoriesError::BlankRulePattern { rule_id: rule.id });
                    }
                    let regex = RegexBuilder::new(pattern)
                        .case_insensitive(true)
                        .build()
                        .map_err(|source| CategoriesError::InvalidRegex {
                            rule_id: rule.id,
                            pattern: pattern.clone(),
                            source,
                        })?;
                    regexes.push((index, regex));
                }
            }
        }
        Ok(RuleSet {
            rules,
            exact,
            regexes,
        })
    }

    pub(crate) fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rule deciding `app`: its exact rule if any, else the first
    /// matching regex rule.
    pub(crate) fn find(&self, app: &str) -> Option<&Rule> {
        if let Some(&index) = self.exact.get(&normalise(app)) {
            return Some(&self.rules[index]);
        }
        let trimmed = app.trim();
        self.regexes
            .iter()
            .find(|(_, regex)| regex.is_match(trimmed))
            .map(|&(index, _)| &self.rules[index])
    }
}

/// Key exact rules compare on: trimmed and lower-cased.
pub(crate) fn normalise(app: &str) -> String {
    app.trim().to_lowercase()
}
