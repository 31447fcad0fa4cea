//! PLACEHOLDER
use crate::{BuildContext, ConfigProblem, Conversation, ConnectorError, Delivered, DeliveryContext, InboundMessage, TicketSystem};
use serde::Deserialize;
/// Files config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// Path.
    pub path: Option<std::path::PathBuf>,
}
impl FilesConfig {
    /// Pure validation.
    pub fn validate(&self) -> Vec<ConfigProblem> { Vec::new() }
}
/// Files connector.
#[derive(Debug)]
pub struct FilesConnector { dir: std::path::PathBuf }
impl FilesConnector {
    /// Builds it.
    pub fn new(config: FilesConfig, context: &BuildContext) -> Result<Self, ConnectorError> {
        Ok(FilesConnector { dir: config.path.unwrap_or_else(|| context.store_dir.join("transcripts")) })
    }
}
#[async_trait::async_trait]
impl TicketSystem for FilesConnector {
    fn kind(&self) -> &'static str { "files" }
    async fn deliver(&self, _c: &Conversation, _m: &InboundMessage, _x: &DeliveryContext) -> Result<Delivered, ConnectorError> {
        Err(ConnectorError::Permanent { reason: format!("todo {}", self.dir.display()) })
    }
    async fn check(&self) -> Result<(), ConnectorError> { Ok(()) }
}
