//! The life of a signing key, computed from stored times and the clock.
//!
//! Each stored key has an activation time. At any moment the active key is
//! the one activated last; a key not yet active is pending, and one that a
//! newer key replaced is retired. Pending and retired keys stay in the JWKS:
//! a pending key for at least one JWKS cache lifetime before it signs (so
//! every verifier has it before it meets a token signed with it), a retired
//! key until every token it signed has expired and every cached JWKS that
//! could hold such a token has been refetched. Nothing about a state is
//! stored, so nodes agree whenever they agree on the time.

use serde::Serialize;

use super::material::SigningAlg;

/// A signing key as stored. The private part is sealed under the master key.
#[derive(Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    /// Strictly increasing; unique in storage, so two nodes rotating at once
    /// cannot both add a key.
    pub generation: i64,
    pub alg: SigningAlg,
    /// Public JWK JSON; empty for HS256.
    pub public_jwk: String,
    pub sealed_private: Vec<u8>,
    pub created_at: i64,
    pub activate_at: i64,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("alg", &self.alg)
            .field("activate_at", &self.activate_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Published, not yet signing.
    Pending,
    /// Signing new tokens, published.
    Active,
    /// Replaced; published until its tokens and cached JWKS are gone.
    Retired,
    /// Past retention: unpublished, to be deleted.
    Expired,
}

/// Durations that decide when keys change state, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    pub rotation_period: i64,
    /// The `max-age` the JWKS is served with: the longest a verifier may
    /// hold a copy without refetching.
    pub jwks_max_age: i64,
    /// The longest lifetime of any token keygate signs.
    pub max_token_ttl: i64,
    pub leeway: i64,
}

impl RotationPolicy {
    /// How long a retired key stays published.
    pub fn retention(&self) -> i64 {
        self.max_token_ttl + self.leeway + self.jwks_max_age
    }
}

/// One key with its computed state and the times of its next changes.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub record: SigningKeyRecord,
    pub state: KeyState,
    /// When a newer key took (or will take) over.
    pub retire_at: Option<i64>,
    /// When it leaves the JWKS.
    pub unpublish_at: Option<i64>,
}

impl KeyStatus {
    pub fn is_published(&self) -> bool {
        self.state != KeyState::Expired && self.record.alg.is_published()
    }
}

/// The state of every key at `now`, ordered by activation.
pub fn statuses(
    mut keys: Vec<SigningKeyRecord>,
    now: i64,
    policy: &RotationPolicy,
) -> Vec<KeyStatus> {
    keys.sort_by_key(|k| (k.activate_at, k.generation));
    let active = keys.iter().rposition(|k| k.activate_at <= now);
    let next_activation: Vec<Option<i64>> = (0..keys.len())
        .map(|i| keys.get(i + 1).map(|k| k.activate_at))
        .collect();
    keys.into_iter()
        .enumerate()
        .map(|(i, record)| {
            let retire_at = next_activation[i];
            let unpublish_at = retire_at.map(|t| t + policy.retention());
            let state = if record.activate_at > now {
                KeyState::Pending
            } else if Some(i) == active {
                KeyState::Active
            } else if unpublish_at.is_some_and(|t| now >= t) {
                KeyState::Expired
            } else {
                KeyState::Retired
            };
            KeyStatus {
                record,
                state,
                retire_at,
                unpublish_at,
            }
        })
        .collect()
}

/// What the schedule should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Nothing,
    /// Add a key that signs at once: there is no key to hand over from, so
    /// no verifier can hold a JWKS that lacks it.
    Bootstrap,
    /// Add a pending key that starts signing at the given time.
    AddPending {
        activate_at: i64,
    },
}

/// The schedule: a successor is added one JWKS lifetime before the active
/// key's rotation period ends (or at once when the configured algorithm
/// changed), so it is published for at least that lifetime before it signs.
pub fn plan(statuses: &[KeyStatus], alg: SigningAlg, now: i64, policy: &RotationPolicy) -> Plan {
    if statuses.iter().any(|s| s.state == KeyState::Pending) {
        return Plan::Nothing;
    }
    let Some(active) = statuses.iter().find(|s| s.state == KeyState::Active) else {
        return Plan::Bootstrap;
    };
    let earliest = now + policy.jwks_max_age;
    if active.record.alg != alg {
        return Plan::AddPending {
            activate_at: earliest,
        };
    }
    let due = active.record.activate_at + policy.rotation_period;
    if now >= due - policy.jwks_max_age {
        Plan::AddPending {
            activate_at: due.max(earliest),
        }
    } else {
        Plan::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RotationPolicy = RotationPolicy {
        rotation_period: 30 * 86_400,
        jwks_max_age: 300,
        max_token_ttl: 900,
        leeway: 30,
    };

    fn key(generation: i64, activate_at: i64) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: format!("k{generation}"),
            generation,
            alg: SigningAlg::ES256,
            public_jwk: String::new(),
            sealed_private: Vec::new(),
            created_at: activate_at,
            activate_at,
        }
    }

    fn states(keys: &[SigningKeyRecord], now: i64) -> Vec<KeyState> {
        statuses(keys.to_vec(), now, &POLICY)
            .into_iter()
            .map(|s| s.state)
            .collect()
    }

    #[test]
    fn a_key_moves_through_pending_active_retired_expired() {
        let keys = [key(1, 0), key(2, 1000)];
        assert_eq!(states(&keys, 500), [KeyState::Active, KeyState::Pending]);
        assert_eq!(states(&keys, 1000), [KeyState::Retired, KeyState::Active]);
        let gone = 1000 + POLICY.retention();
        assert_eq!(
            states(&keys, gone - 1),
            [KeyState::Retired, KeyState::Active]
        );
        assert_eq!(states(&keys, gone), [KeyState::Expired, KeyState::Active]);
    }

    #[test]
    fn the_schedule_publishes_before_signing() {
        assert_eq!(plan(&[], SigningAlg::ES256, 0, &POLICY), Plan::Bootstrap);
        let keys = statuses(vec![key(1, 0)], 10, &POLICY);
        assert_eq!(plan(&keys, SigningAlg::ES256, 10, &POLICY), Plan::Nothing);
        let due = POLICY.rotation_period;
        let early = due - POLICY.jwks_max_age;
        let keys = statuses(vec![key(1, 0)], early, &POLICY);
        assert_eq!(
            plan(&keys, SigningAlg::ES256, early, &POLICY),
            Plan::AddPending { activate_at: due }
        );
        // Long after it was due (the server was down): still a full JWKS
        // lifetime of publication first.
        let late = due * 3;
        let keys = statuses(vec![key(1, 0)], late, &POLICY);
        assert_eq!(
            plan(&keys, SigningAlg::ES256, late, &POLICY),
            Plan::AddPending {
                activate_at: late + POLICY.jwks_max_age
            }
        );
        // A pending key already waits: nothing more.
        let keys = statuses(vec![key(1, 0), key(2, late + 300)], late, &POLICY);
        assert_eq!(plan(&keys, SigningAlg::ES256, late, &POLICY), Plan::Nothing);
        // A new algorithm is rolled in the same careful way.
        let keys = statuses(vec![key(1, 0)], 10, &POLICY);
        assert_eq!(
            plan(&keys, SigningAlg::EdDSA, 10, &POLICY),
            Plan::AddPending { activate_at: 310 }
        );
    }
}
