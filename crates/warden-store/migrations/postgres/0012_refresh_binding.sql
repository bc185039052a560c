-- The client that rotated a refresh token (its user agent; its address is created_ip), so a
-- replay of the old token within the grace window is honoured only for that same client.
ALTER TABLE refresh_tokens ADD COLUMN created_user_agent TEXT;
