//! `Idempotency-Key` handling for POSTs, following Stripe's rules: the first request
//! with a key runs and its answer is saved; a replay with the same parameters gets the
//! saved answer (`Idempotent-Replayed: true`); other parameters → 400; a concurrent
//! request while the first still runs → 409; keys are forgotten after 24 h of
//! simulator time. Requests that fail validation (4xx) release the key, as Stripe
//! saves results only for requests that started executing.

use std::collections::HashMap;

use bytes::Bytes;

/// Keys live this long (simulator seconds).
pub(crate) const KEY_TTL_S: i64 = 24 * 3600;

#[derive(Debug)]
enum State {
    InFlight,
    Done {
        status: u16,
        body: Bytes,
        request_id: String,
    },
}

#[derive(Debug)]
struct Entry {
    fingerprint: String,
    created: i64,
    state: State,
}

/// What to do with a request that carries a key.
#[derive(Debug, PartialEq)]
pub(crate) enum Begin {
    /// First use (or expired): run it, then call `finish` or `release`.
    Proceed,
    Replay {
        status: u16,
        body: Bytes,
        request_id: String,
    },
    Mismatch,
    InFlight,
}

#[derive(Debug, Default)]
pub(crate) struct IdempotencyStore {
    keys: HashMap<String, Entry>,
    inserts_since_sweep: usize,
}

impl IdempotencyStore {
    pub(crate) fn begin(&mut self, key: &str, fingerprint: &str, now: i64) -> Begin {
        if let Some(e) = self.keys.get(key) {
            if e.created + KEY_TTL_S > now {
                return match &e.state {
                    State::InFlight => Begin::InFlight,
                    _ if e.fingerprint != fingerprint => Begin::Mismatch,
                    State::Done {
                        status,
                        body,
                        request_id,
                    } => Begin::Replay {
                        status: *status,
                        body: body.clone(),
                        request_id: request_id.clone(),
                    },
                };
            }
        }
        self.sweep(now);
        self.keys.insert(
            key.to_string(),
            Entry {
                fingerprint: fingerprint.to_string(),
                created: now,
                state: State::InFlight,
            },
        );
        Begin::Proceed
    }

    /// Saves the answer of a request that ran.
    pub(crate) fn finish(&mut self, key: &str, status: u16, body: Bytes, request_id: &str) {
        if let Some(e) = self.keys.get_mut(key) {
            e.state = State::Done {
                status,
                body,
                request_id: request_id.to_string(),
            };
        }
    }

    /// Forgets a key whose request did not run (validation error, cancelled).
    pub(crate) fn release(&mut self, key: &str) {
        if matches!(
            self.keys.get(key),
            Some(Entry {
                state: State::InFlight,
                ..
            })
        ) {
            self.keys.remove(key);
        }
    }

    /// Keys whose first request is still running.
    pub(crate) fn in_flight(&self) -> usize {
        self.keys
            .values()
            .filter(|e| matches!(e.state, State::InFlight))
            .count()
    }

    pub(crate) fn clear(&mut self) {
        self.keys.clear();
    }

    /// Drops expired keys now and then so memory stays bounded under load.
    fn sweep(&mut self, now: i64) {
        self.inserts_since_sweep += 1;
        if self.inserts_since_sweep >= 10_000 {
            self.inserts_since_sweep = 0;
            self.keys
                .retain(|_, e| e.created + KEY_TTL_S > now || matches!(e.state, State::InFlight));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle() {
        let mut s = IdempotencyStore::default();
        assert_eq!(s.begin("k", "a", 0), Begin::Proceed);
        assert_eq!(s.begin("k", "a", 1), Begin::InFlight);
        s.finish("k", 200, Bytes::from_static(b"{}"), "req_1");
        assert!(matches!(
            s.begin("k", "a", 2),
            Begin::Replay { status: 200, .. }
        ));
        assert_eq!(s.begin("k", "b", 2), Begin::Mismatch);
        assert_eq!(s.begin("k", "b", KEY_TTL_S), Begin::Proceed);
        s.release("k");
        assert_eq!(s.begin("k", "c", KEY_TTL_S), Begin::Proceed);
    }
}
