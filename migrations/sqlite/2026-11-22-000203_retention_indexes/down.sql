DROP INDEX stripe_events_received;
DROP INDEX jobs_finished;
