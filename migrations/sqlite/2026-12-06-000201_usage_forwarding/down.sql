DROP INDEX usage_events_forward;
DROP TABLE usage_batches;
DROP TABLE usage_forwarding;
