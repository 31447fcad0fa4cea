//! Failure injection for crash tests: `WABRIDGE_FAILPOINT=<name>` aborts the process (as a
//! SIGKILL would) the first time the named point is reached. Points:
//! - `after_commit_before_flush`: a webhook body is written but not yet flushed;
//! - `after_remote_success`: a connector wrote to the remote system, the daemon has not
//!   recorded it.
//!
//! Unset in production; reading the variable once costs nothing afterwards.

use std::sync::OnceLock;

/// Aborts the process if `name` is the configured failure point.
pub fn hit(name: &str) {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    let point = POINT.get_or_init(|| std::env::var("WABRIDGE_FAILPOINT").ok());
    if point.as_deref() == Some(name) {
        eprintln!("failpoint {name} reached: aborting");
        std::process::abort();
    }
}
