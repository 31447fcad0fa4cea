//! `files`: each conversation as a readable transcript on disk, media saved beside it.
//!
//! The embedded default destination: no external service needed. Layout under the directory
//! (`path`, default `<store.path>/transcripts`):
//!
//! ```text
//! <phone_number_id>/<contact>.txt          the transcript, one entry per message, in order
//! <phone_number_id>/<contact>.media/       attachments, `<message id>-<file name>`
//! ```
//!
//! Every entry's header line ends with the message id, which is the idempotency marker: when a
//! delivery may already have happened, the transcript is searched for it before appending.
//! Each append is followed by `fsync`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{
    BuildContext, ConfigProblem, ConnectorError, Conversation, Delivered, DeliveryContext,
    InboundMessage, TicketRef, TicketSystem,
};

/// `[connectors.<name>] kind = "files"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Directory for transcripts; default `<store.path>/transcripts`.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl FilesConfig {
    /// Pure checks.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        match &self.path {
            Some(path) if path.as_os_str().is_empty() => {
                vec![ConfigProblem::new("path", "must not be empty when set")]
            }
            _ => Vec::new(),
        }
    }
}

/// Writes transcripts.
#[derive(Debug)]
pub struct FilesConnector {
    dir: PathBuf,
}

impl FilesConnector {
    /// Creates the directory if needed.
    pub fn new(config: FilesConfig, context: &BuildContext) -> Result<Self, ConnectorError> {
        let dir = config
            .path
            .unwrap_or_else(|| context.store_dir.join("transcripts"));
        std::fs::create_dir_all(&dir).map_err(|err| ConnectorError::Permanent {
            reason: format!("cannot create {}: {err}", dir.display()),
        })?;
        Ok(FilesConnector { dir })
    }

    /// The transcript file of a conversation.
    pub fn transcript_path(&self, conversation: &Conversation) -> PathBuf {
        self.dir
            .join(sanitise(&conversation.phone_number_id))
            .join(format!("{}.txt", sanitise(&conversation.contact.key())))
    }
}

/// Keeps letters, digits, `.`, `-`, `_`, `+`; replaces everything else (no path tricks).
fn sanitise(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.trim_start_matches('.') {
        "" => "_".to_owned(),
        rest => rest.to_owned(),
    }
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> ConnectorError {
    // A full disk or a permission problem can be fixed by an admin: keep retrying.
    ConnectorError::Retryable {
        retry_after: None,
        reason: format!("{what} {}: {err}", path.display()),
    }
}

fn marker(message_id: &str) -> String {
    format!("· {message_id}")
}

fn contains_marker(path: &Path, message_id: &str) -> Result<bool, ConnectorError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(io_error("reading", path, err)),
    };
    let marker = marker(message_id);
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|err| io_error("reading", path, err))?;
        if line.starts_with("── ") && line.ends_with(&marker) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn append(
    path: &Path,
    conversation: &Conversation,
    message: &InboundMessage,
) -> Result<bool, ConnectorError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|err| io_error("creating", dir, err))?;
    let new_file = !path.exists();
    let mut saved = Vec::new();
    if !message.attachments.is_empty() {
        let media_dir = path.with_extension("media");
        std::fs::create_dir_all(&media_dir).map_err(|err| io_error("creating", &media_dir, err))?;
        for attachment in &message.attachments {
            let name = format!(
                "{}-{}",
                sanitise(&message.id),
                sanitise(&attachment.filename)
            );
            let target = media_dir.join(&name);
            let mut file =
                std::fs::File::create(&target).map_err(|err| io_error("writing", &target, err))?;
            file.write_all(&attachment.data)
                .and_then(|()| file.sync_all())
                .map_err(|err| io_error("writing", &target, err))?;
            saved.push(format!(
                "[attachment: {}/{name} ({}, {} bytes)]",
                media_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                attachment.mime_type,
                attachment.data.len()
            ));
        }
    }
    let mut entry = String::new();
    if new_file {
        entry.push_str(&format!(
            "WhatsApp conversation with {} on business number {}\n\n",
            conversation.contact.display(),
            conversation
                .display_phone_number
                .as_deref()
                .map(|d| format!("+{d}"))
                .unwrap_or_else(|| conversation.phone_number_id.clone())
        ));
    }
    entry.push_str(&format!(
        "── {} · {} · {} {}\n",
        message.timestamp.format("%Y-%m-%d %H:%M:%S UTC"),
        conversation.contact.display(),
        message.kind,
        marker(&message.id)
    ));
    entry.push_str(message.text.trim_end());
    entry.push('\n');
    for line in saved {
        entry.push_str(&line);
        entry.push('\n');
    }
    entry.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| io_error("opening", path, err))?;
    file.write_all(entry.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|err| io_error("appending to", path, err))?;
    Ok(new_file)
}

#[async_trait::async_trait]
impl TicketSystem for FilesConnector {
    fn kind(&self) -> &'static str {
        "files"
    }

    async fn deliver(
        &self,
        conversation: &Conversation,
        message: &InboundMessage,
        context: &DeliveryContext,
    ) -> Result<Delivered, ConnectorError> {
        let path = self.transcript_path(conversation);
        let ticket = TicketRef(path.display().to_string());
        let (conversation, message, maybe) = (
            conversation.clone(),
            message.clone(),
            context.maybe_delivered,
        );
        tokio::task::spawn_blocking(move || {
            if maybe && contains_marker(&path, &message.id)? {
                return Ok(Delivered {
                    ticket,
                    opened_ticket: false,
                    already_present: true,
                });
            }
            let opened = append(&path, &conversation, &message)?;
            Ok(Delivered {
                ticket,
                opened_ticket: opened,
                already_present: false,
            })
        })
        .await
        .map_err(|err| ConnectorError::Retryable {
            retry_after: None,
            reason: format!("transcript writer stopped: {err}"),
        })?
    }

    /// Appends an internal note (marked as such) to the transcript the ticket names.
    async fn note(&self, ticket: &TicketRef, text: &str) -> Result<(), ConnectorError> {
        let path = PathBuf::from(&ticket.0);
        let escapes = path
            .components()
            .any(|part| matches!(part, std::path::Component::ParentDir));
        if escapes || !path.starts_with(&self.dir) {
            return Err(ConnectorError::Permanent {
                reason: format!("{} is not a transcript of this connector", path.display()),
            });
        }
        let entry = format!(
            "── {} · wabridge note (internal, not sent to the customer)\n{}\n\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
            text.trim_end()
        );
        tokio::task::spawn_blocking(move || {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|err| io_error("opening", &path, err))?;
            file.write_all(entry.as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|err| io_error("appending to", &path, err))
        })
        .await
        .map_err(|err| ConnectorError::Retryable {
            retry_after: None,
            reason: format!("transcript writer stopped: {err}"),
        })?
    }

    async fn check(&self) -> Result<(), ConnectorError> {
        let probe = self.dir.join(".wabridge-check");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|err| ConnectorError::Permanent {
                reason: format!("{} is not writable: {err}", self.dir.display()),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Attachment, Contact};

    fn conversation() -> Conversation {
        Conversation {
            phone_number_id: "106540352242922".into(),
            display_phone_number: Some("15550783881".into()),
            contact: Contact {
                wa_id: Some("16505551234".into()),
                user_id: None,
                profile_name: Some("Sheena Nelson".into()),
            },
        }
    }

    fn message(id: &str, text: &str) -> InboundMessage {
        InboundMessage {
            id: id.into(),
            timestamp: chrono::DateTime::from_timestamp(1_749_416_383, 0).unwrap_or_default(),
            kind: "text".into(),
            text: text.into(),
            attachments: Vec::new(),
        }
    }

    fn connector(dir: &Path) -> FilesConnector {
        FilesConnector::new(
            FilesConfig { path: None },
            &BuildContext {
                store_dir: dir.to_path_buf(),
                name: "archive".into(),
            },
        )
        .expect("connector")
    }

    #[tokio::test]
    async fn writes_messages_in_order_with_a_header_naming_the_customer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = connector(dir.path());
        let first = files
            .deliver(
                &conversation(),
                &message("wamid.1", "Hello"),
                &DeliveryContext::default(),
            )
            .await
            .expect("deliver");
        assert!(first.opened_ticket);
        let second = files
            .deliver(
                &conversation(),
                &message("wamid.2", "Any news?"),
                &DeliveryContext::default(),
            )
            .await
            .expect("deliver");
        assert!(!second.opened_ticket);
        let text = std::fs::read_to_string(files.transcript_path(&conversation())).expect("read");
        assert!(text.starts_with("WhatsApp conversation with Sheena Nelson (+16505551234)"));
        let hello = text.find("Hello").expect("first message");
        let news = text.find("Any news?").expect("second message");
        assert!(hello < news);
    }

    #[tokio::test]
    async fn maybe_delivered_message_already_there_is_not_written_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = connector(dir.path());
        let msg = message("wamid.1", "Hello");
        files
            .deliver(&conversation(), &msg, &DeliveryContext::default())
            .await
            .expect("deliver");
        let again = files
            .deliver(
                &conversation(),
                &msg,
                &DeliveryContext {
                    ticket: None,
                    maybe_delivered: true,
                },
            )
            .await
            .expect("deliver");
        assert!(again.already_present);
        let text = std::fs::read_to_string(files.transcript_path(&conversation())).expect("read");
        assert_eq!(text.matches("Hello").count(), 1);
    }

    #[tokio::test]
    async fn notes_are_appended_to_the_transcript_marked_internal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let connector = connector(dir.path());
        let delivered = connector
            .deliver(
                &conversation(),
                &message("wamid.n1", "hello"),
                &DeliveryContext::default(),
            )
            .await
            .expect("deliver");
        connector
            .note(&delivered.ticket, "the reply was not delivered")
            .await
            .expect("note");
        let text = std::fs::read_to_string(&delivered.ticket.0).expect("read");
        let note_at = text.find("wabridge note (internal").expect("note header");
        assert!(
            text[note_at..].contains("the reply was not delivered"),
            "{text}"
        );
        assert!(note_at > text.find("hello").expect("message"), "{text}");
        for outside in [
            dir.path().join("../elsewhere.txt"),
            dir.path().join("transcripts/../../elsewhere.txt"),
        ] {
            let outside = TicketRef(outside.display().to_string());
            assert!(connector.note(&outside, "x").await.is_err(), "{outside}");
        }
    }

    #[tokio::test]
    async fn attachments_are_saved_beside_the_transcript() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = connector(dir.path());
        let mut msg = message("wamid.IMG", "[image]");
        msg.attachments.push(Attachment {
            filename: "../../etc/photo.jpg".into(),
            mime_type: "image/jpeg".into(),
            data: vec![0xff, 0xd8, 0xff],
        });
        files
            .deliver(&conversation(), &msg, &DeliveryContext::default())
            .await
            .expect("deliver");
        let media = files
            .transcript_path(&conversation())
            .with_extension("media")
            .join("wamid.IMG-_.._etc_photo.jpg");
        assert_eq!(
            std::fs::read(&media).expect("media saved"),
            vec![0xff, 0xd8, 0xff]
        );
        let text = std::fs::read_to_string(files.transcript_path(&conversation())).expect("read");
        assert!(text.contains("(image/jpeg, 3 bytes)"));
    }
}
