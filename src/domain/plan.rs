use std::fmt;

/// A plan code that exists in the configuration (`[plans.<code>]`). Construct it
/// only through `PlanCode::parse` with the configured codes, so an unknown plan
/// is rejected at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCode(String);

impl PlanCode {
    pub fn parse<'a>(
        value: &str,
        mut configured: impl Iterator<Item = &'a str>,
    ) -> Result<PlanCode, UnknownPlan> {
        if configured.any(|code| code == value) {
            Ok(PlanCode(value.to_owned()))
        } else {
            Err(UnknownPlan)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is not a plan offered by this service")]
pub struct UnknownPlan;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_plans_parse() {
        let configured = ["pro", "team"];
        assert!(PlanCode::parse("pro", configured.iter().copied()).is_ok());
        assert!(PlanCode::parse("free", configured.iter().copied()).is_err());
        assert!(PlanCode::parse("enterprise", configured.iter().copied()).is_err());
    }
}
