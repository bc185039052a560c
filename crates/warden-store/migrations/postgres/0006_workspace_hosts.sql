-- Workspace-bound hosts: registered by a workspace's maintainers, serving that workspace only.
-- A platform host (workspace_id NULL) is registered by an administrator. Deleting a workspace
-- deletes its hosts (and so their keys).
ALTER TABLE hosts ADD COLUMN workspace_id UUID REFERENCES workspaces (id) ON DELETE CASCADE;
CREATE INDEX hosts_workspace ON hosts (workspace_id) WHERE workspace_id IS NOT NULL;

-- Row-level security: a workspace-scoped transaction sees platform hosts and its own
-- workspace's hosts, never another workspace's. Host authentication and the platform's host
-- administration (both reached only through the access guard) name themselves with
-- warden.hosts = 'on'; with no setting, only platform hosts are visible.
CREATE FUNCTION warden_scope_hosts() RETURNS BOOLEAN LANGUAGE sql STABLE AS
    $$ SELECT COALESCE(current_setting('warden.hosts', true), '') = 'on' $$;
ALTER TABLE hosts ENABLE ROW LEVEL SECURITY;
ALTER TABLE hosts FORCE ROW LEVEL SECURITY;
CREATE POLICY hosts_scope ON hosts
    USING (workspace_id IS NULL
        OR workspace_id = (SELECT warden_scope_workspace())
        OR (SELECT warden_scope_hosts()))
    WITH CHECK (workspace_id IS NULL
        OR workspace_id = (SELECT warden_scope_workspace())
        OR (SELECT warden_scope_hosts()));

-- Every node hears when a host may have lost the right to its connection (deleted, rejected,
-- or taken over by a newer connection on any node); the node holding it checks at once and
-- drops it. NOTIFY is delivered on commit, so a rolled-back change tells nobody.
-- The payload is the host id, followed by the new holder when a connection took it over (a
-- node ignores takeovers by its own connections, which it handles itself).
CREATE FUNCTION warden_hosts_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('warden_hosts', OLD.id::text);
        RETURN OLD;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM pg_notify('warden_hosts', NEW.id::text);
    ELSIF OLD.connected_node IS NOT NULL AND NEW.connected_node IS NOT NULL
        AND NEW.connected_node <> OLD.connected_node THEN
        PERFORM pg_notify('warden_hosts', NEW.id::text || ' ' || NEW.connected_node);
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER hosts_notify AFTER DELETE OR UPDATE OF status, connected_node ON hosts
    FOR EACH ROW EXECUTE FUNCTION warden_hosts_notify();
