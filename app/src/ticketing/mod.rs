//! The system-neutral ticketing interface: what the wizard services and the delivery worker ask of any PSA.
//!
//! Modelled on `object_store` (see `conventions.md`): one trait pair, one error type whose kinds callers match on,
//! and one module per system (`connectwise`, …) that implements it with its own client, field catalog, errors and
//! sandbox. The registry that knows every system is [`crate::systems`], one level up: this module imports no
//! system, so a system module may import it.
//!
//! - [`Connector`]: one per system and process (its HTTP client, its caches); opens a [`Session`] for an
//!   integration's [`Connection`].
//! - [`Session`]: the calls, each answering with a [`TicketingError`] whose sentence a partner can act on.
//!
//! Exactly once: every ticket carries a dedupe key (`dwid:<uuid>/<integration id>`, see
//! [`crate::mapping::external_xref`]) in a field the system lets us write and query; after an attempt in doubt the
//! worker calls [`Session::find_ticket`] before posting again.

pub mod system;

pub use system::System;

use serde::{Deserialize, Serialize};

use crate::mapping::{Catalog, Lookups};

/// What the mapping step needs from a PSA: the fields a ticket can carry and the entries of its lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketFields {
    pub catalog: Catalog,
    pub lookups: Lookups,
}

#[cfg(feature = "ssr")]
mod error;
#[cfg(feature = "ssr")]
pub use error::{ErrorKind, FieldError, TicketingError};

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use std::fmt;
    use std::time::Duration;

    use serde_json::Value;

    use super::{ErrorKind, System, TicketFields, TicketingError};
    use crate::mapping::{Catalog, NewTicket};
    use crate::request_budget::{AccountKey, Budget, Refused};

    /// What an integration needs to reach its PSA: settings kept in clear (site, company ID, …) and secrets that
    /// are stored sealed and opened only to make calls. Each system reads its own shape from both.
    #[derive(Clone, PartialEq)]
    pub struct Connection {
        pub system: System,
        pub settings: Value,
        pub secrets: Value,
        /// Whose request budget this is, beside the PSA account: the partner (`partner 7`). A partner who names
        /// another MSP's ConnectWise site or Autotask user then spends only their own budget, never theirs.
        pub budget_scope: String,
    }

    /// Secrets never reach a log through `{:?}`.
    impl fmt::Debug for Connection {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Connection")
                .field("system", &self.system)
                .field("settings", &self.settings)
                .field("secrets", &"***")
                .field("budget_scope", &self.budget_scope)
                .finish()
        }
    }

    impl Connection {
        /// The account's request budget: the integration's own (`settings.request_budget`, `{"requests": n,
        /// "window_secs": s}`), else the system's default.
        pub fn request_budget(&self) -> Result<Budget, TicketingError> {
            let Some(stored) = self.settings.get("request_budget").filter(|v| !v.is_null()) else {
                return Ok(default_budget(self.system));
            };
            let requests = stored.get("requests").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
            let window = stored.get("window_secs").and_then(Value::as_u64).map(Duration::from_secs);
            let refused = |reason: &str| {
                TicketingError::new(
                    ErrorKind::Refused,
                    format!("The integration's request budget cannot be used ({reason}): edit the integration."),
                )
            };
            match (requests, window) {
                (Some(requests), Some(window)) => Budget::new(requests, window).map_err(|err| refused(err.0)),
                _ => Err(refused("it is not a number of requests per window")),
            }
        }
    }

    /// The budget an integration gets unless it sets its own: half of what the PSA allows, so that the partner's
    /// other integrations keep room (Autotask: 10,000 requests an hour per database).
    pub fn default_budget(system: System) -> Budget {
        match system {
            System::ConnectWise => Budget::CONNECTWISE_DEFAULT,
            System::Autotask => Budget::AUTOTASK_DEFAULT,
        }
    }

    /// The budget's key: the system, the partner's scope, the PSA account, and the budget's window (integrations
    /// of one account with different windows keep separate counts: a per-minute count is not an hourly one).
    /// `None` without a scope: a budget belongs to a partner, never to whoever names the account.
    pub fn budget_key(system: System, scope: &str, account: &str, budget: &Budget) -> Option<AccountKey> {
        if scope.trim().is_empty() {
            return None;
        }
        Some(AccountKey::new(system.as_db(), &format!("{scope}: {account} #{}s", budget.window().as_secs())))
    }

    /// The refusal of a session asked for without a budget scope (a programming error, never a partner's).
    pub fn unscoped() -> TicketingError {
        tracing::error!("a PSA session was asked for without a request budget scope");
        TicketingError::new(
            ErrorKind::Refused,
            "The request could not be counted against a budget, so it was not sent.",
        )
    }

    /// A PSA's sentence, cut to a length the table, the log and the database keep (a PSA can answer megabytes).
    pub fn bounded(sentence: String) -> String {
        const MAX_CHARS: usize = 600;
        match sentence.char_indices().nth(MAX_CHARS) {
            Some((cut, _)) => format!("{}…", &sentence[..cut]),
            None => sentence,
        }
    }

    /// The partner's sentence for a request the budget refused.
    pub fn budget_sentence(system: System, refused: &Refused) -> String {
        match refused {
            Refused::Spent(spent) => format!(
                "This {} account's request budget ({}) is used up, so nothing was sent. It refills at {}: \
                 deliveries wait until then (raise the budget in the integration's advanced settings if your PSA \
                 allows more).",
                system.short_label(),
                spent.budget,
                spent.refills_at()
            ),
            Refused::Unavailable { .. } => format!(
                "The request budget of this {} account could not be checked, so nothing was sent; it will be tried \
                 again in a few seconds.",
                system.short_label()
            ),
        }
    }

    /// A company (customer) of the PSA.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct Company {
        pub id: i64,
        pub name: String,
    }

    /// A note added to an existing ticket.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NewNote {
        /// A short title (Autotask requires one; ConnectWise has none and puts it on the first line).
        pub title: String,
        pub text: String,
    }

    /// One system's way in: cheap to share, one per process.
    #[async_trait::async_trait]
    pub trait Connector: Send + Sync + 'static {
        fn system(&self) -> System;

        /// The longest one call can take (connecting, sending, reading the answer). The delivery worker derives
        /// its lease and its in-doubt delays from it: a ticket POST that got no answer may still be created
        /// within this time.
        fn call_timeout(&self) -> Duration;

        /// The system's ticket fields when they are the same for every account (ConnectWise); `None` when each
        /// account has its own (Autotask's user-defined fields and picklists): the wizard then reads them with
        /// [`Session::fields`] and keeps them with the integration.
        fn fixed_catalog(&self) -> Option<Catalog>;

        /// A session for one integration's connection (discovery, cached by the connector, happens here).
        async fn session(&self, connection: &Connection) -> Result<Box<dyn Session>, TicketingError>;
    }

    /// An authenticated view of one PSA account.
    #[async_trait::async_trait]
    pub trait Session: Send + Sync {
        /// The PSA account whose request budget this session spends (ConnectWise: the site and company ID;
        /// Autotask: the database), as [`budget_key`] takes it.
        fn budget_account(&self) -> String;

        /// "Test connection": a sentence such as "Connected to ConnectWise Manage v2025.1.".
        async fn test_connection(&self) -> Result<String, TicketingError>;

        /// The company named exactly `name`, if any. PSAs compare names without case; the answer is confirmed
        /// exactly by the caller ([`crate::integrations::matching::is_exact`]).
        async fn find_company_by_name(&self, name: &str) -> Result<Option<Company>, TicketingError>;

        /// Every company, all pages.
        async fn companies(&self) -> Result<Vec<Company>, TicketingError>;

        /// The fields a ticket can carry, and the lists the mapping's list fields choose from; lists that depend
        /// on another field (a board's statuses) for the parent values given (field key → chosen id), or for every
        /// parent when the system answers them all at once.
        async fn fields(&self, parents: &[(String, i64)]) -> Result<TicketFields, TicketingError>;

        /// Creates a ticket built by [`Catalog::build_ticket`] (it carries the company and the dedupe key);
        /// answers the ticket's id. Never retried here: after an error for which
        /// [`TicketingError::may_have_created`] holds, look the ticket up with [`Session::find_ticket`].
        async fn create_ticket(&self, ticket: &NewTicket) -> Result<i64, TicketingError>;

        /// Adds a note to a ticket; answers the note's id.
        async fn add_note(&self, ticket_id: i64, note: &NewNote) -> Result<i64, TicketingError>;

        /// The id of the ticket carrying exactly this dedupe key, if any.
        async fn find_ticket(&self, dedupe_key: &str) -> Result<Option<i64>, TicketingError>;
    }
}
