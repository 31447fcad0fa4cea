//! wabridge: a daemon linking a WhatsApp Business Cloud API number to the ticketing and CRM
//! systems a business already uses. See `DESIGN.md` in the shared folder for the architecture;
//! each module below is one part of it.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod failpoint;
pub mod ingress;
pub mod logging;
pub mod mapping;
pub mod policy;
pub mod queue;
pub mod routing;
pub mod store;
pub mod sync;
mod tomlfile;
pub mod whatsapp;
