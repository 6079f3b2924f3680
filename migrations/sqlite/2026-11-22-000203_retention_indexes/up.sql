-- Retention: the workers delete finished jobs and old webhook ledger rows in
-- small batches, oldest first; these keep each batch an index range scan.
CREATE INDEX jobs_finished ON jobs (updated_at) WHERE state = 'succeeded';
CREATE INDEX stripe_events_received ON stripe_events (received_at);
