//! Data rules: the `@dlp_results` and `@dlp_arguments` annotations of a permit policy, which say
//! what DLP does with each kind of finding in the calls the policy matches.
//!
//! ```cedar
//! @id("contractors-see-no-contact-data")
//! @dlp_results("email=block, phone=block, default=mask")
//! permit (principal in Group::"contractors", action, resource in Server::"crm");
//! ```
//!
//! A permit carrying either annotation is a **data rule, not a permission**: it grants nothing,
//! never counts for allow, consent or lists, and a call still needs a permission of its own. The
//! value is a comma-separated list of `detector=action`, where the action is `mask`,
//! `pseudonymise`, `block`, `report` or `off` and `default` stands for every detector the rule
//! does not name. The crate checks the form; which detectors exist is the gateway's business
//! (it refuses a policy set naming one it does not have).
//!
//! When several data rules match a call, each detector gets the strictest action any of them
//! gives it (`block` > `pseudonymise` > `mask` > `report` > `off`); a data rule whose condition
//! cannot be evaluated counts as matching with `block` for everything it names (in doubt, the
//! data it concerns is withheld).

use std::fmt;
use std::sync::Arc;

/// What DLP does with a finding, from the most permissive to the strictest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DataAction {
    /// The detector does not run.
    Off,
    Report,
    Mask,
    Pseudonymise,
    Block,
}

impl DataAction {
    fn parse(text: &str) -> Option<DataAction> {
        Some(match text {
            "off" => DataAction::Off,
            "report" => DataAction::Report,
            "mask" => DataAction::Mask,
            "pseudonymise" | "pseudonymize" => DataAction::Pseudonymise,
            "block" => DataAction::Block,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DataAction::Off => "off",
            DataAction::Report => "report",
            DataAction::Mask => "mask",
            DataAction::Pseudonymise => "pseudonymise",
            DataAction::Block => "block",
        }
    }
}

impl fmt::Display for DataAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actions of one direction: `(detector, action)` in the annotation's order; `default`
/// covers the detectors not named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataActions {
    pub named: Vec<(String, DataAction)>,
    pub default: Option<DataAction>,
}

impl DataActions {
    /// The action this rule gives `detector`, if any.
    pub fn of(&self, detector: &str) -> Option<DataAction> {
        self.named
            .iter()
            .find(|(d, _)| d == detector)
            .map(|(_, a)| *a)
            .or(self.default)
    }

    /// Parses `detector=action, …`; `which` names the annotation in errors.
    fn parse(which: &str, text: &str) -> Result<DataActions, String> {
        let mut out = DataActions::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((detector, action)) = part.split_once('=') else {
                return Err(format!(
                    "@{which} lists detector=action pairs, like \"email=block, default=mask\"; got {part:?}"
                ));
            };
            let (detector, action) = (detector.trim(), action.trim());
            let Some(action) = DataAction::parse(action) else {
                return Err(format!(
                    "@{which}: {action:?} is not a DLP action; use \"mask\", \"pseudonymise\", \"block\", \"report\" or \"off\""
                ));
            };
            let valid = !detector.is_empty()
                && detector
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                return Err(format!("@{which}: {detector:?} is not a detector id"));
            }
            let twice = detector == "default" && out.default.is_some()
                || out.named.iter().any(|(d, _)| d == detector);
            if twice {
                return Err(format!("@{which} names {detector:?} twice"));
            }
            if detector == "default" {
                out.default = Some(action);
            } else {
                out.named.push((detector.to_owned(), action));
            }
        }
        if out.named.is_empty() && out.default.is_none() {
            return Err(format!(
                "@{which} must name at least one detector=action pair"
            ));
        }
        Ok(out)
    }

    /// The detectors named (not `default`).
    pub fn detectors(&self) -> impl Iterator<Item = &str> {
        self.named.iter().map(|(d, _)| d.as_str())
    }
}

/// The data rule of one policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataRule {
    /// `@dlp_results`: what comes back from the upstream.
    pub results: Option<DataActions>,
    /// `@dlp_arguments`: what the agent sends.
    pub arguments: Option<DataActions>,
}

impl DataRule {
    /// Reads the two annotations; `None` when the policy has neither.
    pub(crate) fn parse(
        results: Option<&str>,
        arguments: Option<&str>,
    ) -> Result<Option<DataRule>, String> {
        if results.is_none() && arguments.is_none() {
            return Ok(None);
        }
        Ok(Some(DataRule {
            results: results
                .map(|t| DataActions::parse("dlp_results", t))
                .transpose()?,
            arguments: arguments
                .map(|t| DataActions::parse("dlp_arguments", t))
                .transpose()?,
        }))
    }

    /// The same rule with `block` for everything it names: what a rule whose condition could
    /// not be evaluated stands for.
    pub(crate) fn in_doubt(&self) -> DataRule {
        let block = |a: &Option<DataActions>| {
            a.as_ref().map(|a| DataActions {
                named: a
                    .named
                    .iter()
                    .map(|(d, _)| (d.clone(), DataAction::Block))
                    .collect(),
                default: a.default.map(|_| DataAction::Block),
            })
        };
        DataRule {
            results: block(&self.results),
            arguments: block(&self.arguments),
        }
    }
}

/// The data rules that matched a call, with the ids of their policies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataRules {
    pub rules: Vec<(String, Arc<DataRule>)>,
}

impl DataRules {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The strictest action the matching rules give `detector` in results (`results = true`) or
    /// arguments; `None` when no rule speaks of it.
    pub fn action(&self, results: bool, detector: &str) -> Option<DataAction> {
        self.rules
            .iter()
            .filter_map(|(_, r)| {
                if results {
                    r.results.as_ref()
                } else {
                    r.arguments.as_ref()
                }
            })
            .filter_map(|a| a.of(detector))
            .max()
    }

    /// The ids of the matching rules' policies.
    pub fn policies(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|(id, _)| id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_default() {
        let a = DataActions::parse("dlp_results", " email = block,default=mask ,card=off").unwrap();
        assert_eq!(a.of("email"), Some(DataAction::Block));
        assert_eq!(a.of("card"), Some(DataAction::Off));
        assert_eq!(a.of("phone"), Some(DataAction::Mask));
        for bad in [
            "",
            "email",
            "email=hide",
            "=block",
            "email=block, email=mask",
            "default=mask, default=off",
            "e mail=block",
        ] {
            assert!(
                DataActions::parse("dlp_results", bad).is_err(),
                "{bad:?} should not parse"
            );
        }
    }

    #[test]
    fn the_strictest_matching_rule_wins() {
        let rule = |r: &str| Arc::new(DataRule::parse(Some(r), None).unwrap().unwrap());
        let rules = DataRules {
            rules: vec![
                ("a".into(), rule("default=report")),
                ("b".into(), rule("email=block, card=off")),
            ],
        };
        assert_eq!(rules.action(true, "email"), Some(DataAction::Block));
        assert_eq!(rules.action(true, "card"), Some(DataAction::Report));
        assert_eq!(rules.action(true, "iban"), Some(DataAction::Report));
        assert_eq!(rules.action(false, "iban"), None);
        let doubt = rule("email=report, default=off").in_doubt();
        assert_eq!(doubt.results.unwrap().of("phone"), Some(DataAction::Block));
    }
}
