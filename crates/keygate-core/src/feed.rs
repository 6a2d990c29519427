//! The invalidation feed's vocabulary: what changed (`Change`), the entry the
//! store commits with it (`FeedEntry`), their text encodings, and the seams
//! nodes use to read the feed (`FeedStore`) and apply it (`ApplyChange`).
//!
//! Every store transaction that can make a cached answer wrong appends one
//! entry, with a gapless, commit-ordered `seq`, in the same transaction; on
//! PostgreSQL it also NOTIFYs the payload built here. Parsing is total: any
//! input, from the table or from the wire, gives a value or an `Err`.
//!
//! Encoding, as the three text columns `(kind, subject, extra)`:
//!
//! | kind                   | subject  | extra                                   |
//! |------------------------|----------|-----------------------------------------|
//! | `key.changed`          | key id   | hashes, lowercase hex, comma-separated  |
//! | `key.created`          | (empty)  | hashes, as above                        |
//! | `hmac.changed`         | key id   | (empty)                                 |
//! | `user.cutoff`          | user id  | (empty)                                 |
//! | `jti.blocked`          | jti      | expiry, Unix seconds, decimal           |
//! | `signing_keys.changed` | (empty)  | (empty)                                 |
//! | `client.changed`       | client id| (empty)                                 |
//!
//! The NOTIFY payload is `seq|at_ms|kind|subject|extra` (`at_ms` rides
//! along so a node can measure its lag without reading the row). When it
//! would exceed [`MAX_PAYLOAD`] bytes, or the subject holds a `|`, the
//! payload is the `seq` alone and the node reads the row.

use std::fmt;

use async_trait::async_trait;

use crate::clients::model::ClientId;
use crate::error::Error;
use crate::keys::apikey::KeyId;
use crate::keys::pepper::KeyHash;
use crate::users::model::UserId;

/// The NOTIFY channel of feed entries.
pub const CHANNEL_INVALIDATION: &str = "keygate_inval";
/// The NOTIFY channel of nodes' acknowledgements (`node_id|seq`).
pub const CHANNEL_ACK: &str = "keygate_ack";
/// PostgreSQL refuses payloads of 8000 bytes or more; keep a margin.
pub const MAX_PAYLOAD: usize = 7000;

/// A change that can make some node's cached answer wrong.
#[derive(Clone, PartialEq, Eq)]
pub enum Change {
    /// Revoke, update, or a rotation's old secrets: drop these cached keys.
    KeyChanged { key_id: KeyId, hashes: Vec<KeyHash> },
    /// Create, or a rotation's new secret: drop negative-cache entries.
    KeyCreated { hashes: Vec<KeyHash> },
    /// The key's HMAC signing secret was put or replaced.
    HmacChanged { key_id: KeyId },
    /// Any user update (password, disable, sessions cut-off, roles) or a
    /// new user.
    UserCutoff { user_id: UserId },
    /// An access token's `jti` was blocklisted; `exp` in Unix seconds.
    JtiBlocked { jti: String, exp: i64 },
    /// JWT signing keys were inserted or deleted.
    SigningKeysChanged,
    /// An mTLS client was created, updated or revoked: drop the cached
    /// identifications (any of them may name it through a pattern).
    ClientChanged { client_id: ClientId },
    /// A row this version cannot read: a kind added by a newer version in
    /// a mixed cluster, or a damaged row. Never written. A node drops every
    /// cache for it, which is right whatever the change was, rather than
    /// stop confirming until someone upgrades it.
    Unreadable { kind: String },
}

// Key hashes stay out of logs: Debug shows how many, not which.
impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::KeyChanged { key_id, hashes } => f
                .debug_struct("KeyChanged")
                .field("key_id", key_id)
                .field("hashes", &hashes.len())
                .finish(),
            Change::KeyCreated { hashes } => f
                .debug_struct("KeyCreated")
                .field("hashes", &hashes.len())
                .finish(),
            Change::HmacChanged { key_id } => f
                .debug_struct("HmacChanged")
                .field("key_id", key_id)
                .finish(),
            Change::UserCutoff { user_id } => f
                .debug_struct("UserCutoff")
                .field("user_id", user_id)
                .finish(),
            Change::JtiBlocked { jti, exp } => f
                .debug_struct("JtiBlocked")
                .field("jti", jti)
                .field("exp", exp)
                .finish(),
            Change::SigningKeysChanged => f.write_str("SigningKeysChanged"),
            Change::ClientChanged { client_id } => f
                .debug_struct("ClientChanged")
                .field("client_id", client_id)
                .finish(),
            Change::Unreadable { kind } => {
                f.debug_struct("Unreadable").field("kind", kind).finish()
            }
        }
    }
}

/// One committed feed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Gapless, in commit order, starting at 1.
    pub seq: i64,
    /// When it was appended, Unix milliseconds (PostgreSQL's
    /// `clock_timestamp()`; SQLite: the writer's wall clock).
    pub at_ms: i64,
    pub change: Change,
}

/// A parsed NOTIFY payload on [`CHANNEL_INVALIDATION`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Entry(FeedEntry),
    /// Too large (or unencodable) to carry: read the row.
    SeqOnly(i64),
}

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("unreadable feed entry: {what}"))
}

fn hex_hashes(hashes: &[KeyHash]) -> String {
    let mut out = String::with_capacity(hashes.len() * 65);
    for (i, h) in hashes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&hex::encode(h));
    }
    out
}

fn parse_hashes(extra: &str) -> Result<Vec<KeyHash>, Error> {
    if extra.is_empty() {
        return Ok(Vec::new());
    }
    extra
        .split(',')
        .map(|part| {
            let mut h = [0u8; 32];
            hex::decode_to_slice(part, &mut h)
                .map_err(|_| corrupt("a hash is not 64 hex digits"))?;
            Ok(h)
        })
        .collect()
}

fn parse_i64(s: &str, what: &str) -> Result<i64, Error> {
    // i64::from_str accepts a leading '+'; the encoding never writes one.
    if s.starts_with('+') {
        return Err(corrupt(what));
    }
    s.parse().map_err(|_| corrupt(what))
}

fn empty(s: &str, what: &str) -> Result<(), Error> {
    if s.is_empty() {
        Ok(())
    } else {
        Err(corrupt(what))
    }
}

impl Change {
    /// The `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::KeyChanged { .. } => "key.changed",
            Change::KeyCreated { .. } => "key.created",
            Change::HmacChanged { .. } => "hmac.changed",
            Change::UserCutoff { .. } => "user.cutoff",
            Change::JtiBlocked { .. } => "jti.blocked",
            Change::SigningKeysChanged => "signing_keys.changed",
            Change::ClientChanged { .. } => "client.changed",
            Change::Unreadable { .. } => "unreadable",
        }
    }

    /// The `(kind, subject, extra)` columns.
    pub fn encode(&self) -> (&'static str, String, String) {
        let (subject, extra) = match self {
            Change::KeyChanged { key_id, hashes } => (key_id.to_string(), hex_hashes(hashes)),
            Change::KeyCreated { hashes } => (String::new(), hex_hashes(hashes)),
            Change::HmacChanged { key_id } => (key_id.to_string(), String::new()),
            Change::UserCutoff { user_id } => (user_id.to_string(), String::new()),
            Change::ClientChanged { client_id } => (client_id.to_string(), String::new()),
            Change::JtiBlocked { jti, exp } => (jti.clone(), exp.to_string()),
            Change::SigningKeysChanged | Change::Unreadable { .. } => {
                (String::new(), String::new())
            }
        };
        (self.kind(), subject, extra)
    }

    /// The inverse of [`Change::encode`]; an unknown kind is an error (the
    /// caller should treat it as "flush everything").
    pub fn decode(kind: &str, subject: &str, extra: &str) -> Result<Change, Error> {
        match kind {
            "key.changed" => Ok(Change::KeyChanged {
                key_id: KeyId::parse(subject).map_err(|_| corrupt("bad key id"))?,
                hashes: parse_hashes(extra)?,
            }),
            "key.created" => {
                empty(subject, "key.created with a subject")?;
                Ok(Change::KeyCreated {
                    hashes: parse_hashes(extra)?,
                })
            }
            "hmac.changed" => {
                empty(extra, "hmac.changed with extra")?;
                Ok(Change::HmacChanged {
                    key_id: KeyId::parse(subject).map_err(|_| corrupt("bad key id"))?,
                })
            }
            "user.cutoff" => {
                empty(extra, "user.cutoff with extra")?;
                Ok(Change::UserCutoff {
                    user_id: UserId::parse(subject).map_err(|_| corrupt("bad user id"))?,
                })
            }
            "jti.blocked" => Ok(Change::JtiBlocked {
                jti: subject.to_owned(),
                exp: parse_i64(extra, "bad jti expiry")?,
            }),
            "signing_keys.changed" => {
                empty(subject, "signing_keys.changed with a subject")?;
                empty(extra, "signing_keys.changed with extra")?;
                Ok(Change::SigningKeysChanged)
            }
            "client.changed" => {
                empty(extra, "client.changed with extra")?;
                Ok(Change::ClientChanged {
                    client_id: ClientId::parse(subject).map_err(|_| corrupt("bad client id"))?,
                })
            }
            _ => Err(corrupt("unknown kind")),
        }
    }

    /// As [`Change::decode`], but a row that cannot be read becomes
    /// [`Change::Unreadable`]: for reading the feed, where one such row
    /// must not stop a node from ever confirming again.
    pub fn decode_lenient(kind: &str, subject: &str, extra: &str) -> Change {
        Change::decode(kind, subject, extra).unwrap_or_else(|_| Change::Unreadable {
            kind: kind.chars().take(64).collect(),
        })
    }
}

impl FeedEntry {
    /// The NOTIFY payload: `seq|at_ms|kind|subject|extra`, or `seq` alone
    /// when that would be too large or the subject holds a `|`.
    pub fn payload(&self) -> String {
        let (kind, subject, extra) = self.change.encode();
        let full = format!("{}|{}|{kind}|{subject}|{extra}", self.seq, self.at_ms);
        if subject.contains('|') || full.len() > MAX_PAYLOAD {
            self.seq.to_string()
        } else {
            full
        }
    }
}

impl Payload {
    pub fn seq(&self) -> i64 {
        match self {
            Payload::Entry(e) => e.seq,
            Payload::SeqOnly(seq) => *seq,
        }
    }

    /// Parses a payload made by [`FeedEntry::payload`].
    pub fn parse(payload: &str) -> Result<Payload, Error> {
        let mut parts = payload.splitn(5, '|');
        let seq = parse_i64(parts.next().unwrap_or_default(), "bad seq")?;
        let Some(at) = parts.next() else {
            return Ok(Payload::SeqOnly(seq));
        };
        let at_ms = parse_i64(at, "bad at_ms")?;
        let (Some(kind), Some(subject), Some(extra)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt("payload has too few fields"));
        };
        Ok(Payload::Entry(FeedEntry {
            seq,
            at_ms,
            change: Change::decode(kind, subject, extra)?,
        }))
    }
}

/// The payload on [`CHANNEL_ACK`]: `node_id|seq`.
pub fn ack_payload(node_id: &str, seq: i64) -> String {
    format!("{node_id}|{seq}")
}

/// Parses [`ack_payload`]; the node id may itself hold `|`.
pub fn parse_ack(payload: &str) -> Result<(String, i64), Error> {
    let (node, seq) = payload
        .rsplit_once('|')
        .ok_or_else(|| corrupt("ack without a seq"))?;
    Ok((node.to_owned(), parse_i64(seq, "bad ack seq")?))
}

/// What a node applies: drop what the change makes wrong (locally, with
/// the caches' epoch bump), or everything when it fell too far behind.
pub trait ApplyChange: Send + Sync {
    fn apply(&self, change: &Change);
    fn flush_all(&self);
}

/// A node's heartbeat, upserted into `cluster_nodes`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeBeat {
    pub node_id: String,
    pub started_ms: i64,
    pub now_ms: i64,
    pub applied_seq: i64,
    /// Free-form state for `GET /v1/cluster` (limiter state, confirmed age).
    pub info: serde_json::Value,
}

/// A row of `cluster_nodes`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub node_id: String,
    pub started_ms: i64,
    pub last_seen_ms: i64,
    pub applied_seq: i64,
    pub info: serde_json::Value,
}

/// The feed and membership as nodes read them; keygate-store implements it
/// for SQLite and PostgreSQL.
#[async_trait]
pub trait FeedStore: Send + Sync {
    /// The newest committed `seq` (0 before any entry).
    async fn feed_head(&self) -> Result<i64, Error>;
    /// Up to `limit` entries with `seq > after`, in `seq` order.
    async fn feed_entries(&self, after: i64, limit: u32) -> Result<Vec<FeedEntry>, Error>;
    /// The oldest `seq` still in the table; `None` when it is empty (no
    /// entry yet). Entries are gapless, so a node that applied up to
    /// `applied` missed pruned entries exactly when `applied + 1 < oldest`
    /// (equivalently: `feed_entries(applied, _)` starts above
    /// `applied + 1`).
    async fn feed_oldest(&self) -> Result<Option<i64>, Error>;
    /// Deletes entries appended before `before_ms`, always keeping the
    /// newest; answers how many.
    async fn feed_prune(&self, before_ms: i64) -> Result<u64, Error>;
    /// Upserts the node's row.
    async fn heartbeat(&self, beat: &NodeBeat) -> Result<(), Error>;
    /// Every registered node, live or not, by id.
    async fn nodes(&self) -> Result<Vec<NodeRow>, Error>;
    /// Deletes a node's row; `true` if there was one.
    async fn remove_node(&self, node_id: &str) -> Result<bool, Error>;
    /// Tells the other nodes this one has applied up to `seq` (PostgreSQL:
    /// a NOTIFY on [`CHANNEL_ACK`]; SQLite, single-node: nothing).
    async fn notify_ack(&self, node_id: &str, seq: i64) -> Result<(), Error>;
}

#[cfg(test)]
mod tests;
