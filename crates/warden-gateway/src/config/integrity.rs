//! `integrity` of an upstream: how its tool definitions are pinned, and what happens to a
//! definition that tool integrity flags.

use serde::Deserialize;

use super::raw::Check;

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIntegrity {
    pin: Option<String>,
    instructions: Option<String>,
    invisible: Option<String>,
    shadowing: Option<String>,
}

/// When a tool definition is approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinMode {
    /// At first sight (trust on first use); a later change waits for an operator.
    Auto,
    /// Only by an operator, first sight included.
    Operator,
    /// Not pinned, not checked.
    Off,
}

/// What a finding of tool integrity does to the tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagAction {
    /// Hidden and refused until an operator approves the definition.
    Withhold,
    /// Served, and logged, counted and recorded.
    Flag,
    /// Ignored.
    Allow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntegrityConfig {
    pub pin: PinMode,
    /// Text aimed at the model rather than describing the tool.
    pub instructions: FlagAction,
    /// Invisible Unicode: tag characters, zero-width characters, bidi controls.
    pub invisible: FlagAction,
    /// A name that collides with another upstream's tool, or a description that names one.
    pub shadowing: FlagAction,
}

impl Default for IntegrityConfig {
    fn default() -> Self {
        IntegrityConfig {
            pin: PinMode::Auto,
            instructions: FlagAction::Withhold,
            invisible: FlagAction::Withhold,
            shadowing: FlagAction::Flag,
        }
    }
}

pub(super) fn integrity(
    check: &mut Check,
    at: usize,
    raw: Option<RawIntegrity>,
) -> IntegrityConfig {
    let raw = raw.unwrap_or_default();
    let d = IntegrityConfig::default();
    let pin = match raw.pin.as_deref() {
        None | Some("auto") => PinMode::Auto,
        Some("operator") => PinMode::Operator,
        Some("off") => PinMode::Off,
        Some(other) => {
            check.err(
                at,
                format!("integrity.pin = {other:?} is not known"),
                "use \"auto\" (approve at first sight), \"operator\" or \"off\"",
            );
            PinMode::Auto
        }
    };
    let mut action = |key: &str, raw: Option<&str>, default| match raw {
        None => default,
        Some("withhold") => FlagAction::Withhold,
        Some("flag") => FlagAction::Flag,
        Some("allow") => FlagAction::Allow,
        Some(other) => {
            check.err(
                at,
                format!("integrity.{key} = {other:?} is not known"),
                "use \"withhold\", \"flag\" or \"allow\"",
            );
            default
        }
    };
    IntegrityConfig {
        pin,
        instructions: action("instructions", raw.instructions.as_deref(), d.instructions),
        invisible: action("invisible", raw.invisible.as_deref(), d.invisible),
        shadowing: action("shadowing", raw.shadowing.as_deref(), d.shadowing),
    }
}
