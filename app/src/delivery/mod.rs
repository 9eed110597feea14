//! Ticket delivery: the outbox of (compromise, integration) pairs filled at import, drained by the delivery worker,
//! and shown on each integration's Delivery log.
//!
//! - [`store`] (server only): claims with leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL), outcomes, the log's
//!   queries, Retry.
//! - [`worker`] (server only): the in-process worker — per-integration concurrency, backoff with jitter,
//!   `Retry-After`, exactly-once through `externalXRef`, health per attempt, graceful shutdown.
//! - The shared types below and the log's server functions.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod backoff;
mod log;
pub use log::DeliveryLogPage;
#[cfg(feature = "ssr")]
pub mod store;
#[cfg(feature = "ssr")]
pub mod worker;

/// A delivery's state as the log shows it. `Paused` is not stored: it is a Pending or Retrying delivery of an
/// Inactive integration (it resumes on Enable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryState {
    Pending,
    Retrying,
    Delivered,
    Failed,
    Paused,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 5] = [
        DeliveryState::Pending,
        DeliveryState::Retrying,
        DeliveryState::Delivered,
        DeliveryState::Failed,
        DeliveryState::Paused,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DeliveryState::Pending => "Pending",
            DeliveryState::Retrying => "Retrying",
            DeliveryState::Delivered => "Delivered",
            DeliveryState::Failed => "Failed",
            DeliveryState::Paused => "Paused",
        }
    }

    /// The value used in URLs and filters (`pending`, …).
    pub fn key(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::Paused => "paused",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }

    /// The state shown for a stored state of an integration that is (or is not) Active.
    pub fn shown(stored: &str, active: bool) -> Self {
        match stored {
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ if !active => DeliveryState::Paused,
            "retrying" => DeliveryState::Retrying,
            _ => DeliveryState::Pending,
        }
    }
}

pub use crate::mapping::external_xref;

/// One row of the Delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub uuid: String,
    /// `Email`, `Domain` or `IP`.
    pub record_type: String,
    /// The compromised value (an email address, domain or IP address).
    pub compromise: String,
    pub organization_id: i64,
    pub organization: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub ticket_id: Option<i64>,
    /// For Retrying: when the next attempt is due (formatted on the server, UTC).
    pub next_attempt: Option<String>,
    pub last_error: Option<String>,
    pub created: String,
    pub updated: String,
}

/// How many deliveries of an integration are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub pending: i64,
    pub retrying: i64,
    pub delivered: i64,
    pub failed: i64,
    pub paused: i64,
}

impl StateCounts {
    pub fn get(&self, state: DeliveryState) -> i64 {
        match state {
            DeliveryState::Pending => self.pending,
            DeliveryState::Retrying => self.retrying,
            DeliveryState::Delivered => self.delivered,
            DeliveryState::Failed => self.failed,
            DeliveryState::Paused => self.paused,
        }
    }

    pub fn total(&self) -> i64 {
        self.pending + self.retrying + self.delivered + self.failed + self.paused
    }
}

/// What the Delivery log filters on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    pub state: Option<DeliveryState>,
    pub organization_id: Option<i64>,
    /// Keyset paging: only deliveries with a smaller id (older).
    pub before_id: Option<i64>,
}

/// Rows per page of the log.
pub const LOG_PAGE_SIZE: usize = 50;

/// One page of an integration's Delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryLog {
    pub integration_id: i64,
    pub integration_name: String,
    pub active: bool,
    pub counts: StateCounts,
    /// Newest first; at most [`LOG_PAGE_SIZE`].
    pub rows: Vec<DeliveryRow>,
    /// Whether older rows match the filter.
    pub more: bool,
    /// The organizations that have deliveries for this integration (id, name), for the filter.
    pub organizations: Vec<(i64, String)>,
}
