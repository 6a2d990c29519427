//! Migrations developed in parallel land out of order: a version below the
//! newest applied one must still be applied when it arrives. Simulated by
//! forgetting version 2 on a database that has 6.

use crate::common::{Ctx, exec};
use keygate_core::store::Store;
use keygate_store::{ConnectOptions, connect};

on_both_backends!(a_missing_lower_version_is_applied_after_a_higher_one);

async fn a_missing_lower_version_is_applied_after_a_higher_one(ctx: Ctx) {
    ctx.store.close().await;
    exec(&ctx.url, "DROP TABLE keygate_settings").await;
    exec(&ctx.url, "DELETE FROM keygate_migrations WHERE version = 2").await;
    let store = connect(&ctx.url, ConnectOptions::default()).await.unwrap();
    assert_eq!(store.setting_or_insert("x", "1").await.unwrap(), "1");
    store.close().await;
}
