//! Cross-instance change notifications on PostgreSQL.
//!
//! A trigger on `tenant_config` (migration `…000202_state_notify`) calls
//! `pg_notify('tenant_billing_state', tenant_id)` inside every writing
//! transaction, so a notification goes out only when the write commits. Each
//! instance listens on a dedicated connection, not one from the pool (a
//! pooled connection would be handed to requests, and LISTEN must outlive
//! them), on its own thread. diesel exposes notifications without blocking,
//! so the thread polls every few milliseconds, which bounds the added lag.
//!
//! PostgreSQL does not keep notifications for a listener that is gone: after
//! any reconnect the owner is told `Resync` (everything may have changed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::Connection;
use secrecy::{ExposeSecret, SecretString};

/// The channel the trigger notifies on.
pub const STATE_CHANNEL: &str = "tenant_billing_state";
/// The channel the service notifies on itself (`notify`): a tenant's
/// invoices changed, a tenant's subscription write lock was released.
pub const EVENTS_CHANNEL: &str = "tenant_billing_events";
/// The listener's `application_name`, so operators (and tests) can find it.
pub const LISTENER_NAME: &str = "tenant-billing-listener";

/// How often the listener looks for notifications.
const POLL: Duration = Duration::from_millis(5);
/// How often an idle listener checks that its connection still works (a
/// silently dropped network shows no error until something is sent).
const HEALTH_CHECK: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the listener tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateEvent {
    /// This tenant's row changed (committed) somewhere.
    Changed(String),
    /// A webhook told of this tenant's invoices (cached invoice pages are stale).
    InvoicesChanged(String),
    /// This tenant's subscription write lock was released: waiters may go.
    LockReleased(String),
    /// (Re)connected: notifications may have been missed meanwhile.
    Resync,
}

/// The listener thread; stopped when dropped.
pub type Listener = super::stoppable::StoppableThread;

/// Starts listening on `url` (a PostgreSQL URL); `on_event` runs on the
/// listener's thread and must be quick.
pub fn listen(
    url: SecretString,
    on_event: impl Fn(StateEvent) + Send + 'static,
) -> std::io::Result<Listener> {
    Listener::spawn("pg-listener", move |stop| run(&url, stop, &on_event))
}

fn run(url: &SecretString, stop: &AtomicBool, on_event: &dyn Fn(StateEvent)) {
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::SeqCst) {
        match connect(url) {
            Ok(mut conn) => {
                backoff = Duration::from_millis(100);
                on_event(StateEvent::Resync);
                tracing::info!("listening for other instances' changes");
                let error = pump(&mut conn, stop, on_event);
                if let Some(error) = error {
                    tracing::warn!(error = %error, "change listener lost its connection; reconnecting");
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "change listener cannot connect; retrying");
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn connect(url: &SecretString) -> Result<PgConnection, diesel::result::Error> {
    let mut conn = PgConnection::establish(url.expose_secret()).map_err(|e| {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UnableToSendCommand,
            Box::new(e.to_string()),
        )
    })?;
    conn.batch_execute(&format!(
        "SET application_name = '{LISTENER_NAME}'; LISTEN {STATE_CHANNEL}; LISTEN {EVENTS_CHANNEL}"
    ))?;
    Ok(conn)
}

/// Delivers notifications until the connection fails (the error) or `stop`.
fn pump(
    conn: &mut PgConnection,
    stop: &AtomicBool,
    on_event: &dyn Fn(StateEvent),
) -> Option<diesel::result::Error> {
    let mut checked = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        for notification in conn.notifications_iter() {
            match notification {
                Ok(n) if n.channel == EVENTS_CHANNEL => {
                    if let Some(event) = Notice::parse(&n.payload) {
                        on_event(event);
                    }
                }
                Ok(n) => on_event(StateEvent::Changed(n.payload)),
                Err(error) => return Some(error),
            }
        }
        if checked.elapsed() >= HEALTH_CHECK {
            if let Err(error) = conn.batch_execute("SELECT 1") {
                return Some(error);
            }
            checked = Instant::now();
        }
        std::thread::sleep(POLL);
    }
    None
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep(POLL.max(Duration::from_millis(20)));
    }
}

/// What the service itself tells the other instances (`EVENTS_CHANNEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    InvoicesChanged,
    LockReleased,
}

impl Notice {
    fn prefix(self) -> &'static str {
        match self {
            Notice::InvoicesChanged => "invoices:",
            Notice::LockReleased => "lock:",
        }
    }

    fn parse(payload: &str) -> Option<StateEvent> {
        if let Some(tenant) = payload.strip_prefix(Notice::InvoicesChanged.prefix()) {
            Some(StateEvent::InvoicesChanged(tenant.to_owned()))
        } else {
            payload
                .strip_prefix(Notice::LockReleased.prefix())
                .map(|tenant| StateEvent::LockReleased(tenant.to_owned()))
        }
    }
}

/// Tells every listening instance `notice` about `tenant` (PostgreSQL: on
/// commit, if inside a transaction; SQLite has no other listener to tell:
/// its instances fall back on TTLs and backoff).
pub fn notify(
    conn: &mut super::DbConnection,
    notice: Notice,
    tenant: &crate::domain::TenantId,
) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    if let super::DbConnection::Postgresql(conn) = conn {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(EVENTS_CHANNEL)
            .bind::<diesel::sql_types::Text, _>(format!("{}{tenant}", notice.prefix()))
            .execute(conn)?;
    }
    Ok(())
}
