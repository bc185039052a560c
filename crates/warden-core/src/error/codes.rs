//! The error-code registry: every code a client can receive, with its HTTP status and the
//! sentence shown with it. This table is the only place a code is spelled; everything else
//! names a [`Code`] variant.

macro_rules! registry {
    ($( $(#[$doc:meta])* $name:ident = $status:literal, $code:literal, $sentence:expr; )*) => {
        /// A stable, machine-readable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[$doc])* $name, )*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The code as clients see it (`not-found`, `last-owner`, …).
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$name => $code,)* }
            }

            /// The HTTP status it is answered with.
            pub fn status(self) -> u16 {
                match self { $(Code::$name => $status,)* }
            }

            /// The default sentence, safe for anyone to read.
            pub fn sentence(self) -> &'static str {
                match self { $(Code::$name => $sentence,)* }
            }
        }
    };
}

registry! {
    // The standard answers, one per status (what [`Code::for_status`] returns).
    /// Malformed request.
    BadRequest = 400, "bad-request", "The request is malformed (for example, the body is not valid JSON).";
    /// No or bad credential.
    Unauthenticated = 401, "unauthenticated", "Sign in to use this resource.";
    /// Not allowed.
    Forbidden = 403, "forbidden", "You may not use this resource.";
    /// Nothing here (or not visible to the caller).
    NotFound = 404, "not-found", "There is nothing at this address.";
    /// Wrong method.
    MethodNotAllowed = 405, "method-not-allowed", "This address does not accept that method.";
    /// The handler ran out of time.
    RequestTimeout = 408, "request-timeout", "The request took too long and was stopped.";
    /// Body over the limit.
    PayloadTooLarge = 413, "payload-too-large", "The request body is larger than this server accepts.";
    /// Body is not JSON.
    UnsupportedMediaType = 415, "unsupported-media-type", "Send the request body as application/json.";
    /// Body of the wrong shape.
    UnprocessableContent = 422, "unprocessable-content", "The request body does not have the expected fields and types.";
    /// Rate limited.
    TooManyRequests = 429, "too-many-requests", "Too many requests; slow down and retry later.";
    /// Internal failure (details only in the log, under the request id).
    Internal = 500, "internal", "An internal error occurred; quote the request id when reporting it.";
    /// A dependency is not ready.
    Unavailable = 503, "unavailable", "The service is not ready; retry shortly.";
    /// The database's storage is full.
    StorageFull = 507, "storage-full", "The server's storage is full: nothing was changed. Retry once an operator has freed space.";
    /// Any other status.
    Error = 400, "error", "The request could not be completed.";

    // Requests and input.
    /// A value that fails validation (the field and reason are given with it).
    InvalidInput = 422, "invalid-input", "An input is not valid.";
    /// A page size out of range.
    InvalidLimit = 400, "invalid-limit", "limit must be between 1 and 200.";
    /// A cursor that no page handed out.
    InvalidCursor = 400, "invalid-cursor", "cursor must be the next_cursor of a previous page.";
    /// A query string that is not UTF-8.
    InvalidEncoding = 400, "invalid-encoding", "The query string does not decode to UTF-8 text without NUL.";
    /// An audit filter that does not parse.
    InvalidFilter = 400, "invalid-filter", "The filter is not valid.";
    /// `X-Workspace-Id` disagrees with the path.
    WorkspaceMismatch = 400, "workspace-mismatch", "The X-Workspace-Id header does not name the workspace in the path.";
    /// Browser request without same-origin evidence or the CSRF token.
    CsrfRefused = 403, "csrf-refused", "State-changing requests from the browser must come from this origin and carry the X-CSRF-Token header.";
    /// Costly work at its limit.
    ServerBusy = 503, "server-busy", "The server is busy checking credentials; retry in a moment.";

    // Identity.
    /// Wrong email, password or token.
    InvalidCredentials = 401, "invalid-credentials", "The email, password or token is not valid.";
    /// A single sign-on provider could not be reached or gave unusable documents.
    SsoProviderUnavailable = 502, "sso-provider-unavailable", "The identity provider could not be reached or answered with something unusable.";
    /// An LLM upstream's name is taken in its workspace.
    LlmUpstreamNameTaken = 409, "llm-upstream-name-taken", "This workspace has an upstream with this name already.";
    /// Automation name taken.
    AutomationExists = 409, "automation-exists", "An automation with this name exists in the workspace.";
    /// Event source name taken.
    EventSourceExists = 409, "event-source-exists", "An event source with this name exists in the workspace.";
    /// A single sign-on provider's slug is taken.
    SsoProviderExists = 409, "sso-provider-exists", "A single sign-on provider with this name exists.";
    /// SAML needs a build with the `saml` feature (libxml2 and xmlsec1).
    SamlNotBuilt = 501, "saml-not-built", "This build of Warden has no SAML support; build it with the saml feature (see README, \"SAML\").";
    /// Password sign-in is off (password-free mode).
    PasswordSignInDisabled = 403, "password-sign-in-disabled", "Password sign-in is turned off; sign in with an emailed link or single sign-on.";
    /// A sign-in policy that would leave administrators no way in.
    NoOtherWayIn = 409, "no-other-way-in", "The change would leave administrators no way to sign in.";
    /// An emailed link that was used, expired, replaced by a newer one, or mistyped.
    /// Something only a signed-in person may do, asked with a personal access token.
    SessionRequired = 403, "session-required", "This needs a signed-in session: a personal access token cannot create tokens, change its owner's credentials or approve sign-ins.";
    /// A token asked for a permission its creator does not hold.
    PermissionNotHeld = 403, "permission-not-held", "A token can carry only permissions you hold (in its workspace, when it names one).";
    /// A device user code that names no pending grant.
    InvalidUserCode = 400, "invalid-user-code", "The code is not valid: check it, or ask the device for a new one (codes last 10 minutes).";
    /// Changing passkeys needs a sign-in within the last 5 minutes.
    ReauthenticationRequired = 403, "reauthentication-required", "Sign in again first: changing your passkeys needs a sign-in within the last 5 minutes.";
    /// A credential id registered to an account already.
    PasskeyTaken = 409, "passkey-taken", "This passkey is registered already.";
    /// A registration the WebAuthn checks refused (origin, challenge, flags, signature).
    PasskeyRejected = 400, "passkey-rejected", "The passkey's answer could not be verified; start again.";
    /// Removing the passkey that is the account's last way in.
    LastPasskey = 409, "last-passkey", "Password sign-in is off and this is your last passkey without single sign-on: register another passkey first.";
    /// `public_url` names an address, not a host, and WebAuthn needs a domain.
    PasskeysUnavailable = 409, "passkeys-unavailable", "Passkeys need public_url to name a host (such as https://warden.example.com or http://localhost:8080), not an IP address.";
    /// The per-user cap on active tokens.
    TokenLimitReached = 409, "token-limit-reached", "You have the most active personal access tokens allowed (25); revoke one first.";
    InvalidLink = 401, "invalid-link", "The link is not valid: it was used, has expired, was replaced by a newer one, or is mistyped.";
    /// The sign-in throttle is closed.
    TooManyAttempts = 429, "too-many-attempts", "Too many failed attempts; wait before trying again.";
    /// Email already used.
    EmailTaken = 409, "email-taken", "A user with this email already exists.";
    /// Not an email address.
    InvalidEmail = 422, "invalid-email", "Not a valid email address.";
    /// A password the policy refuses.
    WeakPassword = 422, "weak-password", "The password does not meet the password policy.";
    /// No platform role by that name.
    UnknownRole = 422, "unknown-role", "No platform role has this name.";
    /// The licence's user limit.
    UserLimitReached = 400, "user-limit-reached", "The licence's user limit is reached: deactivate a user, or ask your operator for a licence with a higher limit.";
    /// Granting a role with permissions the actor lacks.
    AboveYourRole = 403, "above-your-role", "That role grants permissions you do not hold yourself.";
    /// Removing the last active administrator.
    LastAdmin = 409, "last-admin", "Warden keeps at least one active administrator: promote someone else first.";
    /// A role name already used.
    RoleExists = 409, "role-exists", "A role with this name already exists.";
    /// Deleting a role users hold.
    RoleInUse = 409, "role-in-use", "Users still hold this role; give them another role first.";

    // Organizations.
    /// An organization named in the path or `x-org-id` is not the one the credential acts in.
    OrgMismatch = 403, "org-mismatch", "The request names another organization than the one this sign-in acts in: switch organization first (POST /api/v1/auth/organization).";
    /// An organization slug already used.
    OrgExists = 409, "org-exists", "An organization with this slug already exists.";
    /// Switching into an organization the caller does not belong to.
    NotOrgMember = 403, "not-org-member", "You are not a member of that organization.";
    /// A change the default organization does not take (everyone belongs to it).
    DefaultOrg = 409, "default-org", "Every account belongs to the default organization; its membership cannot be changed.";
    /// Removing or demoting an organization's last admin.
    LastOrgAdmin = 409, "last-org-admin", "An organization keeps at least one admin: make someone else admin first.";
    /// Creating a workspace in an organization already holding its limit of active ones.
    OrgWorkspaceLimit = 409, "org-workspace-limit", "The organization already holds as many active workspaces as its settings allow: archive one, or ask a platform administrator to raise the limit.";
    /// Adding a member whose address is outside the organization's email domains.
    OrgEmailDomain = 422, "org-email-domain", "This address is not in one of the organization's email domains.";

    // Workspaces.
    /// A change to an archived workspace.
    WorkspaceArchived = 409, "workspace-archived", "The workspace is archived; it can be read but not changed.";
    /// A non-owner touching the owner role.
    OwnerRoleReserved = 403, "owner-role-reserved", "Only owners can grant, change or remove the owner role.";
    /// Removing or demoting the last owner.
    LastOwner = 409, "last-owner", "A workspace keeps at least one owner: make someone else owner first.";
    /// No active user by that email or id.
    UnknownUser = 422, "unknown-user", "no active user has this email or id";
    /// Adding a member twice.
    AlreadyMember = 409, "already-member", "This user is already a member; change their role instead.";

    // Agent sessions and their hosts.
    /// A session in a workspace without a repository.
    NoRepository = 409, "no-repository", "Set the workspace's repository before opening a session.";
    /// No host to run a session on.
    NoHostAvailable = 409, "no-host-available", "No approved session host that this workspace may use is connected.";
    /// A workflow definition that does not hold.
    InvalidWorkflow = 400, "invalid-workflow", "The workflow definition is not valid.";
    /// A bot name in use.
    BotExists = 409, "bot-exists", "A bot with this name exists in the workspace.";
    /// A workflow name in use.
    WorkflowExists = 409, "workflow-exists", "A workflow with this name exists in the workspace.";
    /// Acting on a run that has ended.
    WorkflowRunEnded = 409, "workflow-run-ended", "The workflow run has ended already.";
    /// Deciding on a run that waits for no approval.
    NothingToApprove = 409, "nothing-to-approve", "The run is not waiting for an approval.";
    /// An approver without the step's permission.
    ApprovalForbidden = 403, "approval-forbidden", "You do not hold the permission this approval step needs.";
    /// The run's starter approving a step that needs someone else.
    ApprovalBySelf = 403, "approval-by-self", "This step must be approved by someone other than the person who started the run.";
    /// A ticket move the workflow does not have.
    TicketMoveUnknown = 409, "ticket-move-unknown", "A ticket cannot move from its status to that one.";
    /// A ticket moved meanwhile.
    TicketMoved = 409, "ticket-moved", "The ticket's status changed meanwhile; reload it and try again.";
    /// A ticket move needs a permission the caller lacks.
    TicketMoveForbidden = 403, "ticket-move-forbidden", "You do not hold the permission this ticket move needs.";
    /// A question already answered or no longer waiting.
    QuestionClosed = 409, "question-closed", "The question was answered already or no longer waits for an answer.";
    /// Acting on an ended session.
    SessionEnded = 409, "session-ended", "The session has already ended.";
    /// Closing a session that is running or closed.
    SessionNotClosable = 409, "session-not-closable", "Only an ended session that is not closed yet can be closed; stop it first.";
    /// The session's host is connected to no node.
    HostNotConnected = 409, "host-not-connected", "The session's host is not connected to any node.";
    /// The host did not answer in time.
    HostTimeout = 504, "host-timeout", "The session's host did not answer in time.";
    /// The node holding the host's connection cannot be reached (down, restarting, cut off).
    HostNodeUnreachable = 503, "host-node-unreachable", "The node holding the host's connection cannot be reached; retry shortly (the host moves to another node when it reconnects).";
    /// A worktree path refused before it left the server (or by the host).
    PathRefused = 400, "path-refused", "The path is not accepted.";
    /// A path that leads outside the worktree.
    PathEscape = 403, "path-escape", "The path leads outside the session's worktree.";
    /// A file over the transfer limit.
    FileTooLarge = 413, "file-too-large", "Files of at most 48 KiB are transferred through this API.";
    /// A directory where a file was expected, or the reverse.
    NotAFile = 409, "not-a-file", "The path names a directory, or a file where a directory was expected.";
    /// The session has no worktree.
    NoWorktree = 409, "no-worktree", "The session has no worktree on its host (not started yet, or removed).";

    // Licence.
    /// The route's feature is not licensed.
    FeatureNotLicensed = 403, "feature-not-licensed", "the licence does not include this feature";
    /// `public_url` is not a host the licence allows.
    LicenseDomainMismatch = 503, "license-domain-mismatch", "license domain mismatch: the configured public_url is not a host name the licence allows (or public_url is not set)";
    /// No licence installed.
    LicenseMissing = 503, "license-missing", "no licence is installed";
    /// Past its expiry.
    LicenseExpired = 503, "license-expired", "the licence has expired";
    /// Before its start.
    LicenseNotYetValid = 503, "license-not-yet-valid", "the licence is not valid yet";
    /// Issued too long before installation.
    LicenseStale = 503, "license-stale", "the licence was issued too long before it was installed";
    /// Bound to another machine.
    MachineIdentityChanged = 503, "machine-identity-changed", "machine identity changed";
    /// The clock went backwards.
    LicenseClockTampered = 503, "license-clock-tampered", "the system clock was moved back; the licence is invalid until it passes the latest time seen";
    /// A signature that does not verify.
    LicenseInvalidSignature = 503, "license-invalid-signature", "the licence signature is invalid";
    /// A licence whose claims do not parse.
    LicenseMalformed = 422, "license-malformed", "The licence's claims are not in the expected form.";
    /// No operator key, so no licence can be checked.
    LicenseNotEnforced = 409, "license-not-enforced", "No operator public key is built in or configured (license.public_key_file), so Warden runs unlicensed and has nothing to verify a licence with.";
    /// The machine identity cannot be read.
    MachineIdentityUnavailable = 503, "machine-identity-unavailable", "This machine's identity cannot be read; set license.machine_id_file.";

    // SCIM provisioning (answered in SCIM's own error format, with the `scimType` named).
    /// A filter that does not parse or names what cannot be searched (`invalidFilter`).
    ScimInvalidFilter = 400, "scim-invalid-filter", "The filter is not valid or names an attribute that cannot be filtered on.";
    /// A value SCIM's schema does not allow (`invalidValue`).
    ScimInvalidValue = 400, "scim-invalid-value", "A value in the request is missing or not valid.";
    /// A request body that is not a SCIM message of the expected kind (`invalidSyntax`).
    ScimInvalidSyntax = 400, "scim-invalid-syntax", "The request body is not valid SCIM.";
    /// A userName, email or group name already taken (`uniqueness`).
    ScimUniqueness = 409, "scim-uniqueness", "Another resource already has this userName, email or displayName.";
    /// An attempt to change what cannot change (`mutability`).
    ScimMutability = 400, "scim-mutability", "The request tries to change a read-only or immutable attribute.";
    /// A PATCH path that does not name an attribute (`invalidPath`).
    ScimInvalidPath = 400, "scim-invalid-path", "The PATCH path does not name an attribute of this resource.";
    /// A PATCH path whose filter matched nothing (`noTarget`).
    ScimNoTarget = 400, "scim-no-target", "The PATCH path's filter matched no value.";
    /// `If-Match` named another version.
    ScimVersionMismatch = 412, "scim-version-mismatch", "The resource has changed since that version (If-Match).";
    /// A SCIM operation Warden does not offer (bulk, searching every resource type at once).
    ScimNotImplemented = 501, "scim-not-implemented", "This SCIM operation is not supported.";
}

impl Code {
    /// The standard code for a status, for errors that carry nothing more specific (axum's
    /// rejections, a layer's timeout).
    pub fn for_status(status: u16) -> Self {
        match status {
            400 => Self::BadRequest,
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            408 => Self::RequestTimeout,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::UnprocessableContent,
            429 => Self::TooManyRequests,
            503 => Self::Unavailable,
            s if s >= 500 => Self::Internal,
            _ => Self::Error,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_code_is_spelled_once_in_kebab_case() {
        let mut seen = HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} is registered twice");
            assert!(
                s.split('-')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())),
                "{s} is not kebab-case"
            );
        }
    }

    #[test]
    fn every_status_is_an_error_status() {
        for code in Code::ALL {
            assert!((400..600).contains(&code.status()), "{code}");
            assert!(!code.sentence().is_empty(), "{code}");
        }
    }

    #[test]
    fn each_standard_status_maps_to_a_code_with_that_status() {
        for s in [400, 401, 403, 404, 405, 408, 413, 415, 422, 429, 500, 503] {
            assert_eq!(Code::for_status(s).status(), s);
        }
        assert_eq!(Code::for_status(502), Code::Internal);
    }
}
