//! Logging set-up and redaction: phone numbers and message bodies never reach the logs unless
//! `log.redact = false`.

use std::sync::atomic::{AtomicBool, Ordering};

static REDACT: AtomicBool = AtomicBool::new(true);

/// Starts `tracing` with the configured filter (`RUST_LOG` wins) and redaction setting.
pub fn init(level: &str, redact: bool) {
    REDACT.store(redact, Ordering::Relaxed);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A phone number or contact id as it may be logged: `+968*****001` when redacting.
pub fn phone(value: &str) -> String {
    if !REDACT.load(Ordering::Relaxed) {
        return value.to_owned();
    }
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

/// A queue or conversation key (`dest/phone_number_id:contact`) with the contact redacted.
pub fn conversation(key: &str) -> String {
    match key.rsplit_once(':') {
        Some((prefix, contact)) => format!("{prefix}:{}", phone(contact)),
        None => phone(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_middle_of_numbers_and_keys() {
        assert_eq!(phone("96890000001"), "968*****001");
        assert_eq!(
            conversation("helpdesk/106540352242922:16505551234"),
            "helpdesk/106540352242922:165*****234"
        );
        assert_eq!(phone("1234"), "****");
    }
}
