//! `last_used_at` bookkeeping, kept off the request path: verifications queue
//! a time here (at most once per key per minute) and a background task writes
//! the queue in one batch.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::keys::apikey::KeyId;

/// How often one key's use is written at most.
pub const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<KeyId, i64>>,
}

impl UsageRecorder {
    pub fn record(&self, id: &KeyId, at_secs: i64) {
        let mut pending = self.pending.lock();
        let slot = pending.entry(id.clone()).or_insert(at_secs);
        *slot = (*slot).max(at_secs);
    }

    /// Takes everything queued so far.
    pub fn drain(&self) -> Vec<(KeyId, i64)> {
        std::mem::take(&mut *self.pending.lock())
            .into_iter()
            .collect()
    }

    /// Puts back a batch that could not be written, keeping newer times.
    pub fn requeue(&self, batch: Vec<(KeyId, i64)>) {
        for (id, at) in batch {
            self.record(&id, at);
        }
    }
}
