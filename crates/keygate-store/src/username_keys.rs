//! Username keys recomputed once at start. Rows written before usernames
//! were keyed by RFC 8265 (PRECIS UsernameCaseMapped) hold a lowercase key;
//! each gets `Username::login_key` of its name, under the migration lock,
//! and `keygate_settings` records that it was done.
//!
//! The rule for rows whose new keys collide (`ｃarol` created beside
//! `carol`): the oldest row keeps the key, every newer one gets a key no
//! login can reach (`Username::shut_out_key`) and is named in a warning.
//! It keeps its id, sessions and API access; an admin decides what becomes
//! of it. A name the profile refuses (`Dave Smith`) keeps logging in under
//! its legacy key; no new name can reach such a key.
//!
//! It runs once per database: a user created by an older node during a
//! rolling upgrade keeps a lowercase key. Deleting the `username_keys` row
//! of `keygate_settings` makes the next start run it again. All rows are
//! read at once (about 100 bytes a user, once).

use std::collections::HashSet;

use keygate_core::Error;
use keygate_core::users::{UserId, Username};
use sqlx::{AnyConnection, Connection};

use crate::rows::col;
use crate::{Backend, db};

const SETTING: &str = "username_keys";
const DONE: &str = "rfc8265-v1";

/// One stored row: `(id, username, key)`, oldest first.
type Row = (String, String, String);

/// The rows whose key must change, with their new keys, and the ids of the
/// rows shut out because an older row has their key.
pub(crate) fn plan(rows: &[Row]) -> (Vec<(String, String)>, Vec<String>) {
    let mut taken = HashSet::new();
    let mut changes = Vec::new();
    let mut shut_out = Vec::new();
    for (id, name, old) in rows {
        let key = match Username::login_key(name) {
            Some(key) if taken.insert(key.clone()) => key,
            _ => {
                shut_out.push(id.clone());
                shut_out_key(id)
            }
        };
        if key != *old {
            changes.push((id.clone(), key));
        }
    }
    (changes, shut_out)
}

fn shut_out_key(id: &str) -> String {
    // A stored id that does not parse still gets a key of its own.
    UserId::parse(id).map_or_else(|_| format!("\u{2}{id}"), |id| Username::shut_out_key(&id))
}

pub(crate) async fn rekey(conn: &mut AnyConnection, backend: Backend) -> Result<(), Error> {
    let mut tx = match backend {
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => conn.begin().await,
    }
    .map_err(db)?;
    if is_done(&mut tx).await? {
        return Ok(());
    }
    let rows = stored_rows(&mut tx).await?;
    let (changes, shut_out) = plan(&rows);
    write_keys(&mut tx, &changes).await?;
    sqlx::query(
        "INSERT INTO keygate_settings (name, value) VALUES ($1, $2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(SETTING)
    .bind(DONE)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    if !changes.is_empty() {
        tracing::info!(rows = changes.len(), "usernames rekeyed under RFC 8265");
    }
    for id in shut_out {
        tracing::warn!(
            user = %id,
            "this user's name equals an older user's under RFC 8265; it can no longer log in \
             by name (disable or delete it, or keep it for API use)"
        );
    }
    Ok(())
}

/// Whether `keygate_settings` records that this database was rekeyed.
async fn is_done(conn: &mut AnyConnection) -> Result<bool, Error> {
    let done = sqlx::query("SELECT value FROM keygate_settings WHERE name = $1")
        .bind(SETTING)
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    match done {
        Some(row) => Ok(col::<String>(&row, "value")? == DONE),
        None => Ok(false),
    }
}

async fn stored_rows(conn: &mut AnyConnection) -> Result<Vec<Row>, Error> {
    let found = sqlx::query("SELECT id, username, username_norm FROM users ORDER BY seq")
        .fetch_all(conn)
        .await
        .map_err(db)?;
    found
        .iter()
        .map(|r| Ok((col(r, "id")?, col(r, "username")?, col(r, "username_norm")?)))
        .collect()
}

/// Gives each row its new key. Two passes: every changing row first takes
/// a key of its own, so no intermediate state breaks the unique index.
async fn write_keys(conn: &mut AnyConnection, changes: &[(String, String)]) -> Result<(), Error> {
    for pass in [false, true] {
        for (id, key) in changes {
            let key = if pass { key.clone() } else { shut_out_key(id) };
            sqlx::query("UPDATE users SET username_norm = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(key)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str, key: &str) -> Row {
        (id.into(), name.into(), key.into())
    }

    #[test]
    fn the_oldest_row_keeps_a_shared_key_and_refused_names_keep_a_legacy_key() {
        let rows = [
            row("usr_0000000000000001", "Carol", "carol"),
            row("usr_0000000000000002", "\u{ff43}arol", "\u{ff43}arol"),
            row("usr_0000000000000003", "Dave Smith", "dave smith"),
            row("usr_0000000000000004", "bob", "bob"),
        ];
        let (changes, shut_out) = plan(&rows);
        assert_eq!(shut_out, ["usr_0000000000000002"]);
        assert_eq!(
            changes,
            [
                (
                    "usr_0000000000000002".to_owned(),
                    "\u{2}usr_0000000000000002".to_owned()
                ),
                (
                    "usr_0000000000000003".to_owned(),
                    "\u{1}dave smith".to_owned()
                ),
            ]
        );
        // Done twice, the second time changes nothing.
        let after: Vec<Row> = rows
            .iter()
            .map(|(id, name, key)| {
                let new = changes.iter().find(|(c, _)| c == id).map(|(_, k)| k);
                (id.clone(), name.clone(), new.unwrap_or(key).clone())
            })
            .collect();
        assert!(plan(&after).0.is_empty());
    }
}
