//! `[dashboard]`: whether the admin dashboard is served (at /dashboard on
//! the admin listener) and how long its sessions live.

use serde::{Deserialize, Serialize};

/// The section as written, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    pub enabled: bool,
    /// A session unused this long ends.
    pub idle_secs: i64,
    /// A session ends this long after sign-in, however active.
    pub absolute_secs: i64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            idle_secs: 1800,
            absolute_secs: 43_200,
        }
    }
}

/// The longest any dashboard session may live: 30 days.
const MAX_SECS: i64 = 30 * 86_400;

impl DashboardConfig {
    pub fn validate(self) -> Result<Self, String> {
        if !(60..=MAX_SECS).contains(&self.absolute_secs) {
            return Err(format!(
                "[dashboard] absolute_secs must be between 60 and {MAX_SECS} (30 days)"
            ));
        }
        if !(60..=self.absolute_secs).contains(&self.idle_secs) {
            return Err("[dashboard] idle_secs must be between 60 and absolute_secs".into());
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert!(DashboardConfig::default().validate().is_ok());
        let bad_idle = DashboardConfig {
            idle_secs: 10,
            ..DashboardConfig::default()
        };
        assert!(bad_idle.validate().is_err());
        let short_absolute = DashboardConfig {
            idle_secs: 3600,
            absolute_secs: 600,
            ..DashboardConfig::default()
        };
        assert!(short_absolute.validate().is_err());
        let parsed: DashboardConfig = toml::from_str("enabled = false").unwrap_or_default();
        assert!(!parsed.enabled);
        assert!(toml::from_str::<DashboardConfig>("bogus = 1").is_err());
    }
}
