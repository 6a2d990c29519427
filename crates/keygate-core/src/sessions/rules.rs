//! The refresh rules: from what the store read under the family's lock,
//! whether a presented token rotates, replays, or betrays a theft.

use subtle::ConstantTimeEq;

use crate::keys::pepper::KeyHash;
use crate::sessions::SessionConfig;
use crate::sessions::model::{PresentedToken, RefreshFamily};

/// The outcome of presenting a token, from what the store read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Rotate,
    /// Inside the grace window: answer the successor already issued.
    Replay,
    Reuse,
    Revoked,
    Expired,
}

pub(crate) fn expired(config: &SessionConfig, now_ms: i64, family: &RefreshFamily) -> bool {
    let idle_ms = config.idle_timeout_secs.saturating_mul(1000);
    now_ms >= family.absolute_expires_at_ms
        || now_ms >= family.last_used_at_ms.saturating_add(idle_ms)
}

/// A pure function of what was read, so the store's decision (made under
/// the lock) and the answer given afterwards cannot disagree.
pub(crate) fn judge(
    config: &SessionConfig,
    now_ms: i64,
    seen: &PresentedToken,
    successor_hash: &KeyHash,
) -> Verdict {
    if seen.family.revoked_at_ms.is_some() {
        return Verdict::Revoked;
    }
    if expired(config, now_ms, &seen.family) {
        return Verdict::Expired;
    }
    let is_newest = seen.token.generation == seen.newest.generation;
    let Some(used_at) = seen.token.used_at_ms else {
        // An unused token that is not the newest cannot be made by rotation;
        // treat the anomaly like theft rather than honour it.
        return if is_newest {
            Verdict::Rotate
        } else {
            Verdict::Reuse
        };
    };
    // A negative age (another node's clock ahead) counts as just used.
    let in_window =
        config.grace_secs > 0 && now_ms.saturating_sub(used_at) <= config.grace_secs * 1000;
    let is_predecessor =
        seen.token.generation + 1 == seen.newest.generation && seen.newest.used_at_ms.is_none();
    // The successor is derived from the presented token, so a replay must
    // find exactly it as the newest; anything else is not a retry.
    if in_window && is_predecessor && bool::from(successor_hash.ct_eq(&seen.newest.hash)) {
        Verdict::Replay
    } else {
        Verdict::Reuse
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::{ManualClock, MillisClock};
    use crate::sessions::model::{FamilyId, RefreshFamily, RefreshTokenRecord};

    const START: i64 = 1_700_000_000_000;

    fn record(generation: i64, hash: u8, used_at_ms: Option<i64>) -> RefreshTokenRecord {
        RefreshTokenRecord {
            hash: [hash; 32],
            pepper_version: 1,
            family_id: FamilyId::parse("fam_0123456789abcdef").unwrap(),
            generation,
            issued_at_ms: START,
            used_at_ms,
        }
    }

    fn seen(token: RefreshTokenRecord, newest: RefreshTokenRecord) -> PresentedToken {
        PresentedToken {
            family: RefreshFamily {
                id: token.family_id.clone(),
                user_id: "u".into(),
                tenant: None,
                created_at_ms: START,
                absolute_expires_at_ms: START + 3_600_000,
                last_used_at_ms: START,
                revoked_at_ms: None,
                revoked_reason: None,
            },
            token,
            newest,
        }
    }

    fn config(grace_secs: i64) -> SessionConfig {
        SessionConfig {
            absolute_lifetime_secs: 3_600,
            idle_timeout_secs: 600,
            grace_secs,
            ..SessionConfig::default()
        }
    }

    #[test]
    fn the_newest_unused_token_rotates_until_the_family_dies() {
        let clock = ManualClock::new(START);
        let cfg = config(0);
        let fresh = seen(record(0, 1, None), record(0, 1, None));
        let next = [2; 32];
        assert_eq!(
            judge(&cfg, clock.now_millis(), &fresh, &next),
            Verdict::Rotate
        );
        clock.advance_millis(599_999);
        assert_eq!(
            judge(&cfg, clock.now_millis(), &fresh, &next),
            Verdict::Rotate
        );
        clock.advance_millis(1);
        assert_eq!(
            judge(&cfg, clock.now_millis(), &fresh, &next),
            Verdict::Expired
        );

        let mut active = fresh.clone();
        active.family.last_used_at_ms = START + 3_599_000;
        clock.set_millis(START + 3_600_000);
        assert_eq!(
            judge(&cfg, clock.now_millis(), &active, &next),
            Verdict::Expired
        );

        let mut revoked = fresh.clone();
        revoked.family.revoked_at_ms = Some(START);
        clock.set_millis(START);
        assert_eq!(
            judge(&cfg, clock.now_millis(), &revoked, &next),
            Verdict::Revoked
        );

        // Unused yet not the newest cannot come from rotation: refused as theft.
        let forked = seen(record(0, 1, None), record(1, 2, None));
        assert_eq!(
            judge(&cfg, clock.now_millis(), &forked, &next),
            Verdict::Reuse
        );
    }

    #[test]
    fn a_used_token_is_reuse_unless_it_is_a_retry_inside_the_grace_window() {
        let clock = ManualClock::new(START + 10_000);
        let used = Some(START + 10_000);
        let next = [2; 32];
        let retry = seen(record(0, 1, used), record(1, 2, None));
        assert_eq!(
            judge(&config(0), clock.now_millis(), &retry, &next),
            Verdict::Reuse
        );
        assert_eq!(
            judge(&config(5), clock.now_millis(), &retry, &next),
            Verdict::Replay
        );
        clock.advance_millis(5_000);
        assert_eq!(
            judge(&config(5), clock.now_millis(), &retry, &next),
            Verdict::Replay
        );
        clock.advance_millis(1);
        assert_eq!(
            judge(&config(5), clock.now_millis(), &retry, &next),
            Verdict::Reuse
        );

        clock.set_millis(START + 10_000);
        let cfg = config(5);
        // The successor must be exactly the one derived from this token.
        assert_eq!(
            judge(&cfg, clock.now_millis(), &retry, &[3; 32]),
            Verdict::Reuse
        );
        // Its successor was used already, or it is two steps back: reuse.
        let successor_used = seen(record(0, 1, used), record(1, 2, used));
        assert_eq!(
            judge(&cfg, clock.now_millis(), &successor_used, &next),
            Verdict::Reuse
        );
        let two_back = seen(record(0, 1, used), record(2, 2, None));
        assert_eq!(
            judge(&cfg, clock.now_millis(), &two_back, &next),
            Verdict::Reuse
        );
        // Used "in the future" by a node whose clock runs ahead: a retry.
        clock.advance_millis(-2_000);
        assert_eq!(
            judge(&cfg, clock.now_millis(), &retry, &next),
            Verdict::Replay
        );
    }
}
