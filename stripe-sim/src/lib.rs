//! Offline, stateful Stripe API simulator (placeholder until its own issue lands).
