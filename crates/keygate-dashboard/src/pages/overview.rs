//! The front page: how many keys are active, revoked, expired and expiring
//! within 7 days; verifications over the last 24 hours by outcome (one
//! aggregate query over all the admin's keys); the latest audit events.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use keygate_core::model::{AuditFilter, PageRequest};
use keygate_core::{Granularity, KeyUsage};

use crate::Deps;
use crate::error::PageError;
use crate::pages::audit::EventRow;
use crate::render::{Layout, page};
use crate::session::Session;
use crate::usage;

/// "Expiring" on this page: within this many seconds.
pub const EXPIRING_WITHIN: i64 = 7 * 86_400;
const EVENTS: u32 = 10;

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    layout: Layout,
    active: u64,
    revoked: u64,
    expired: u64,
    expiring: u64,
    /// The chart with its table (HTML built by `charts`).
    chart: String,
    events: Vec<EventRow>,
}

pub async fn show(State(deps): State<Deps>, session: Session) -> Result<Html<String>, PageError> {
    let admin = session.admin();
    let now = deps.clock.now_secs();
    let counts = deps.keys.counts(admin, now, now + EXPIRING_WITHIN).await?;
    let (since, until) = usage::last_day(now);
    let buckets = deps.keys.usage_totals(admin, since, until).await?;
    let chart = usage::chart(
        &KeyUsage {
            key_id: session.resumed.key_id.clone(),
            buckets,
        },
        "24 hours, all keys",
        Granularity::Hour,
    );
    let (rows, _) = deps
        .audit
        .list(
            admin,
            AuditFilter::default(),
            PageRequest {
                after: None,
                limit: EVENTS,
            },
        )
        .await?;
    page(&OverviewPage {
        layout: session.layout("Overview", ""),
        active: counts.active,
        revoked: counts.revoked,
        expired: counts.expired,
        expiring: counts.expiring,
        chart,
        events: rows.iter().map(|r| EventRow::of(r, now)).collect(),
    })
}
