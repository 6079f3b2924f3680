//! `instances`: a heartbeat row per running process (every `serve` instance
//! and every operator command), so a lease whose holder is gone is taken at
//! once instead of when it expires.
//!
//! Each process beats on its own connection and thread (never the pool, so
//! a saturated pool cannot make a live process look dead). On each beat it
//! also *reaps* processes whose heartbeat stopped more than `dead_after`
//! ago: in one write transaction, their customer-creation claims are given
//! back (tokens kept, so the successor recovers), their subscription write
//! locks deleted (waiting instances are told), their running jobs queued
//! again (the interrupted attempt counts: a job that kills its worker must
//! still reach its retry horizon), and their row deleted. A process found
//! reaped while alive (it stalled longer than `dead_after`) registers again;
//! its later writes are fenced like any lapsed holder's.
//!
//! Leases still carry expiries: a holder that never registered (an older
//! version) is waited out as before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};

use super::schema::instances::dsl as i;
use super::{jobs, leases, DbConnection};

/// What reaping one dead process gave back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaped {
    pub instance: String,
    pub customer_claims: usize,
    /// Tenants whose subscription write lock it held.
    pub subscription_locks: Vec<String>,
    pub jobs: usize,
}

pub fn register(
    conn: &mut DbConnection,
    id: &str,
    kind: &str,
    pid: u32,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let pid = i32::try_from(pid).unwrap_or(i32::MAX);
    let beat = diesel::update(i::instances.find(id))
        .set(i::heartbeat_at.eq(now))
        .execute(conn)?;
    if beat == 0 {
        diesel::insert_into(i::instances)
            .values((
                i::id.eq(id),
                i::kind.eq(kind),
                i::pid.eq(pid),
                i::started_at.eq(now),
                i::heartbeat_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Renews the heartbeat; false when the row is gone (this process was reaped).
pub fn beat(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let beat = diesel::update(i::instances.find(id))
        .set(i::heartbeat_at.eq(now))
        .execute(conn)?;
    Ok(beat == 1)
}

pub fn deregister(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::delete(i::instances.find(id)).execute(conn)?;
    Ok(())
}

/// The last heartbeat of `holder`, if it is a registered process.
pub fn heartbeat_of(conn: &mut DbConnection, holder: &str) -> QueryResult<Option<NaiveDateTime>> {
    i::instances
        .find(holder)
        .select(i::heartbeat_at)
        .first(conn)
        .optional()
}

/// Processes whose last heartbeat is older than `cutoff` (a read).
pub fn silent_since(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<Vec<String>> {
    i::instances
        .filter(i::heartbeat_at.lt(cutoff))
        .select(i::id)
        .load(conn)
}

/// Gives back everything `instance` holds, if its heartbeat is still older
/// than `cutoff` (checked in the same transaction), and forgets it.
pub fn reap(
    conn: &mut DbConnection,
    instance: &str,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<Option<Reaped>> {
    // The first statement writes, so SQLite takes its write lock up front.
    conn.transaction(|conn| {
        let gone =
            diesel::delete(i::instances.filter(i::id.eq(instance).and(i::heartbeat_at.lt(cutoff))))
                .execute(conn)?;
        if gone == 0 {
            return Ok(None);
        }
        Ok(Some(Reaped {
            instance: instance.to_owned(),
            customer_claims: leases::release_customer_claims_held_by(conn, instance)?,
            subscription_locks: leases::release_subscription_locks_held_by(conn, instance)?,
            jobs: jobs::requeue_held_by_dead(conn, instance, now)?,
        }))
    })
}

/// How the heartbeat thread is set.
#[derive(Debug, Clone)]
pub struct HeartbeatConfig {
    pub url: SecretString,
    pub sqlite_busy_timeout_ms: u64,
    pub id: String,
    pub kind: String,
    pub interval: Duration,
    pub dead_after: Duration,
}

/// The heartbeat thread of this process; stopped (and the row deleted)
/// when dropped.
pub type Heartbeat = super::stoppable::StoppableThread;

/// Starts beating; `on_reaped` runs on the heartbeat thread for every dead
/// process reaped (wake whatever waited on its leases).
pub fn start(
    config: HeartbeatConfig,
    on_reaped: impl Fn(&Reaped) + Send + 'static,
) -> std::io::Result<Heartbeat> {
    Heartbeat::spawn("heartbeat", move |stop| run(&config, stop, &on_reaped))
}

fn run(config: &HeartbeatConfig, stop: &AtomicBool, on_reaped: &dyn Fn(&Reaped)) {
    let mut conn: Option<DbConnection> = None;
    let mut registered = false;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        if conn.is_none() {
            conn = super::establish(config.url.expose_secret(), config.sqlite_busy_timeout_ms)
                .map_err(
                    |error| tracing::warn!(error = %error, "heartbeat cannot connect; retrying"),
                )
                .ok();
        }
        if let Some(c) = conn.as_mut() {
            if let Err(error) = tick(c, config, &mut registered, on_reaped) {
                tracing::warn!(error = %error, "heartbeat failed; retrying");
                conn = None;
            }
        }
        let rest = config.interval.saturating_sub(started.elapsed());
        sleep_unless_stopped(rest, stop);
    }
    if let Some(c) = conn.as_mut() {
        if let Err(error) = deregister(c, &config.id) {
            tracing::warn!(error = %error, "could not remove this process's heartbeat row");
        }
    }
}

fn tick(
    conn: &mut DbConnection,
    config: &HeartbeatConfig,
    registered: &mut bool,
    on_reaped: &dyn Fn(&Reaped),
) -> QueryResult<()> {
    let now = Utc::now().naive_utc();
    if !*registered || !beat(conn, &config.id, now)? {
        if *registered {
            tracing::warn!(
                instance = %config.id,
                "this process was taken for dead (no heartbeat for {:?}) and its leases given back; registering again",
                config.dead_after
            );
        }
        register(conn, &config.id, &config.kind, std::process::id(), now)?;
        *registered = true;
    }
    let cutoff = now - chrono::Duration::from_std(config.dead_after).unwrap_or_default();
    for silent in silent_since(conn, cutoff)? {
        if silent == config.id {
            continue;
        }
        if let Some(reaped) = reap(conn, &silent, cutoff, now)? {
            tracing::info!(
                instance = %reaped.instance,
                customer_claims = reaped.customer_claims,
                subscription_locks = reaped.subscription_locks.len(),
                jobs = reaped.jobs,
                "a process stopped beating: took back its leases"
            );
            on_reaped(&reaped);
        }
    }
    Ok(())
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(20)));
    }
}
