DROP TABLE usage_counters;
DROP TABLE usage_events;
ALTER TABLE subscriptions DROP COLUMN current_period_start;
