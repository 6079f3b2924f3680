DROP TABLE instances;
DROP TABLE stripe_budget;
