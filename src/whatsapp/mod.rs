//! The WhatsApp Cloud API: webhook model, signature, Graph API client.

pub mod graph;
pub mod model;
pub mod render;
pub mod signature;
