-- Alerts that reach people: one row per incident (an audit-chain break at one event, one
-- clock tampering, a licence whose signature fails, a host key used from a refused network on
-- one day). The node that inserts the row raised it (and audited it); the first node to set
-- `mailed_at` mails the administrators, so each incident is mailed once however many nodes
-- see it. Platform data: no workspace scope applies.
CREATE TABLE alerts (
    kind        TEXT NOT NULL,
    incident    TEXT NOT NULL,
    first_at    BIGINT NOT NULL,
    last_at     BIGINT NOT NULL,
    occurrences BIGINT NOT NULL,
    mailed_at   BIGINT,
    PRIMARY KEY (kind, incident)
);
CREATE INDEX alerts_unmailed ON alerts (first_at) WHERE mailed_at IS NULL;
CREATE INDEX alerts_recent ON alerts (last_at);
