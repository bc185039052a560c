-- An organization's own settings, kept by its admins: the email domains its members' addresses
-- must be in (space-separated, lower case; empty: any), and how many active workspaces it may
-- hold (NULL: no limit). SQLite runs one writer at a time, so concurrent creations cannot both
-- take the last place.
ALTER TABLE organizations ADD COLUMN email_domains TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN max_workspaces INTEGER CHECK (max_workspaces >= 0);
