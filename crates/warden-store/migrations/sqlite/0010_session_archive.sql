-- Closing (archiving) a session: its worktree and branch are removed on the host; the record
-- and its output stay.
ALTER TABLE agent_sessions ADD COLUMN archived_at INTEGER;
