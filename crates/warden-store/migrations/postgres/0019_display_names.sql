-- A person's display name, as they give it (the console shows it beside their email). It is
-- what they typed: pages escape it; nothing treats it as markup or as an identifier.
ALTER TABLE users ADD COLUMN display_name TEXT;
