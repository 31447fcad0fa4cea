//! Request Tracker 5 (REST2). PLACEHOLDER: replaced by the RT connector work.
use crate::{ConfigProblem, Conversation, ConnectorError, Delivered, DeliveryContext, InboundMessage, Secret, TicketSystem};
use serde::Deserialize;

/// `[connectors.<name>] kind = "rt"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtConfig {
    /// Base URL.
    pub url: String,
    /// Token.
    pub token: Option<Secret>,
    /// Username.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// Queue.
    pub queue: String,
}
impl RtConfig {
    /// Pure validation.
    pub fn validate(&self) -> Vec<ConfigProblem> { Vec::new() }
}
/// The connector.
#[derive(Debug)]
pub struct RtConnector { config: RtConfig }
impl RtConnector {
    /// Builds it.
    pub fn new(config: RtConfig) -> Result<Self, ConnectorError> { Ok(RtConnector { config }) }
}
#[async_trait::async_trait]
impl TicketSystem for RtConnector {
    fn kind(&self) -> &'static str { "rt" }
    async fn deliver(&self, _c: &Conversation, _m: &InboundMessage, _x: &DeliveryContext) -> Result<Delivered, ConnectorError> {
        Err(ConnectorError::Permanent { reason: format!("not yet implemented for {}", self.config.url) })
    }
    async fn check(&self) -> Result<(), ConnectorError> { Ok(()) }
}
