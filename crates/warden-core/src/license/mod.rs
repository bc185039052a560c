//! Offline licence enforcement, as use cases see it.

use warden_domain::license::Problem;

use crate::Code;

/// The registered code for a licence problem (its sentence is the code's).
pub fn problem_code(p: Problem) -> Code {
    match p {
        Problem::NotInstalled => Code::LicenseMissing,
        Problem::Expired => Code::LicenseExpired,
        Problem::NotYetValid => Code::LicenseNotYetValid,
        Problem::Stale => Code::LicenseStale,
        Problem::MachineIdentityChanged => Code::MachineIdentityChanged,
        Problem::ClockTampered => Code::LicenseClockTampered,
        Problem::InvalidSignature => Code::LicenseInvalidSignature,
    }
}
