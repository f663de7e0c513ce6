-- Integrations: outbound webhook subscriptions and their
-- durable outbox. Times are INTEGER milliseconds since the Unix epoch (UTC).

-- One row per subscriber. `secret` is the Standard Webhooks signing secret
-- (`whsec_` + base64); `events` a JSON array of event types. The last
-- delivery outcome is kept here so the list shows each subscriber's health.
CREATE TABLE webhook_subscriptions (
    id               TEXT PRIMARY KEY,                       -- UUID
    url              TEXT NOT NULL,
    events           TEXT NOT NULL,                          -- JSON array
    secret           TEXT NOT NULL,
    enabled          INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    description      TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_status      TEXT,                                   -- delivered | retrying | failed
    last_http_status INTEGER,
    last_error       TEXT,
    last_attempt_at  INTEGER,
    -- After a failed attempt, none of this subscriber's messages is sent
    -- before this time (the failed one's retry time); cleared by a success.
    hold_until       INTEGER
);

-- The outbox: one row per (event, subscription), written in the same
-- transaction as the event. `id` is the stable `webhook-id` every attempt
-- carries, so a receiver can drop duplicates (delivery is at-least-once).
-- The rows are also the delivery log.
CREATE TABLE webhook_outbox (
    id               TEXT PRIMARY KEY,                       -- msg_<uuid>
    subscription_id  TEXT NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
    event_id         INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,                          -- the exact JSON body
    created_at       INTEGER NOT NULL,
    window_start     INTEGER NOT NULL,                       -- retries stop 24 h after this
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_attempt_at  INTEGER,
    last_http_status INTEGER,
    last_error       TEXT,
    delivered_at     INTEGER
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);
CREATE INDEX webhook_outbox_sub ON webhook_outbox (subscription_id, created_at);
