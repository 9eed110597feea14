//! The partner's audit log: who did what and when. The kinds of activity, the sentences the Activity page shows,
//! and (on the server) who is acting and the [`store`] that records an activity inside the transaction of the
//! change it records.
//!
//! Layering: this module is low. It imports nothing of `auth`, `integrations`, `organizations` or `delivery`;
//! they import it, and call [`store::record`] from their own store functions. The page that shows the log
//! authorises through `auth`, so it lives above them all, in [`crate::activity_page`].
//!
//! What is recorded is names (of integrations, organizations, API tokens), ids, counts and the partner's own
//! email and client address: never a key, a password, a token or a sealed value.

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
pub mod store;

/// Rows per page of the Activity page.
pub const PAGE_SIZE: usize = 50;

/// Longest subject or detail stored (names are at most 100 characters; a ConnectWise refusal may be longer).
pub const MAX_TEXT_CHARS: usize = 300;

/// What happened. Stored by its [`Kind::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    SignedIn,
    /// `detail`: `wrong password` or `throttled`.
    SignInFailed,
    IntegrationCreated,
    /// `detail`: the name before, when it changed.
    IntegrationEdited,
    IntegrationEnabled,
    IntegrationDisabled,
    IntegrationRemoved,
    /// `detail`: `ticket #N for “Organization”`.
    TestTicketSent,
    /// `detail`: why ConnectWise (or the dashboard) refused it.
    TestTicketRefused,
    OrganizationAdded,
    /// `detail`: the name before.
    OrganizationRenamed,
    OrganizationDeleted,
    /// An integration ticked for an organization. `subject`: the organization; `detail`: the integration.
    OrganizationLinked,
    /// An integration unticked for an organization. `subject`: the organization; `detail`: the integration.
    OrganizationUnlinked,
    /// `detail`: the token's shown prefix (`dwid_1a2b3c4d`), never the token.
    ApiTokenCreated,
    ApiTokenRevoked,
    /// One Failed delivery retried. `subject`: the integration; `detail`: the delivery's id.
    DeliveryRetried,
    /// "Retry all failed". `subject`: the integration; `detail`: how many.
    DeliveriesRetried,
}

/// The groups the page's filter offers besides single kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Group {
    SignIns,
    Integrations,
    Organizations,
    ApiTokens,
    Deliveries,
}

impl Group {
    pub const ALL: [Group; 5] =
        [Group::SignIns, Group::Integrations, Group::Organizations, Group::ApiTokens, Group::Deliveries];

    pub fn key(self) -> &'static str {
        match self {
            Group::SignIns => "sign_in",
            Group::Integrations => "integration",
            Group::Organizations => "organization",
            Group::ApiTokens => "api_token",
            Group::Deliveries => "delivery",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Group::SignIns => "Sign-ins",
            Group::Integrations => "Integrations",
            Group::Organizations => "Organizations",
            Group::ApiTokens => "API tokens",
            Group::Deliveries => "Deliveries",
        }
    }

    /// The filter's option for the whole group.
    pub fn all_label(self) -> &'static str {
        match self {
            Group::SignIns => "All sign-ins",
            Group::Integrations => "All integration changes",
            Group::Organizations => "All organization changes",
            Group::ApiTokens => "All API token changes",
            Group::Deliveries => "All delivery retries",
        }
    }

    pub fn kinds(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |kind| kind.group() == self)
    }
}

impl Kind {
    pub const ALL: [Kind; 18] = [
        Kind::SignedIn,
        Kind::SignInFailed,
        Kind::IntegrationCreated,
        Kind::IntegrationEdited,
        Kind::IntegrationEnabled,
        Kind::IntegrationDisabled,
        Kind::IntegrationRemoved,
        Kind::TestTicketSent,
        Kind::TestTicketRefused,
        Kind::OrganizationAdded,
        Kind::OrganizationRenamed,
        Kind::OrganizationDeleted,
        Kind::OrganizationLinked,
        Kind::OrganizationUnlinked,
        Kind::ApiTokenCreated,
        Kind::ApiTokenRevoked,
        Kind::DeliveryRetried,
        Kind::DeliveriesRetried,
    ];

    /// How it is stored and written in URLs: `group.what`.
    pub fn key(self) -> &'static str {
        match self {
            Kind::SignedIn => "sign_in.succeeded",
            Kind::SignInFailed => "sign_in.failed",
            Kind::IntegrationCreated => "integration.created",
            Kind::IntegrationEdited => "integration.edited",
            Kind::IntegrationEnabled => "integration.enabled",
            Kind::IntegrationDisabled => "integration.disabled",
            Kind::IntegrationRemoved => "integration.removed",
            Kind::TestTicketSent => "integration.test_ticket",
            Kind::TestTicketRefused => "integration.test_ticket_refused",
            Kind::OrganizationAdded => "organization.added",
            Kind::OrganizationRenamed => "organization.renamed",
            Kind::OrganizationDeleted => "organization.deleted",
            Kind::OrganizationLinked => "organization.integration_ticked",
            Kind::OrganizationUnlinked => "organization.integration_unticked",
            Kind::ApiTokenCreated => "api_token.created",
            Kind::ApiTokenRevoked => "api_token.revoked",
            Kind::DeliveryRetried => "delivery.retried",
            Kind::DeliveriesRetried => "delivery.retried_all",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.key() == key)
    }

    /// The filter's name for it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::SignedIn => "Successful sign-ins",
            Kind::SignInFailed => "Failed sign-ins",
            Kind::IntegrationCreated => "Integrations created",
            Kind::IntegrationEdited => "Integrations edited",
            Kind::IntegrationEnabled => "Integrations enabled",
            Kind::IntegrationDisabled => "Integrations disabled",
            Kind::IntegrationRemoved => "Integrations removed",
            Kind::TestTicketSent => "Test tickets sent",
            Kind::TestTicketRefused => "Test tickets refused",
            Kind::OrganizationAdded => "Organizations added",
            Kind::OrganizationRenamed => "Organizations renamed",
            Kind::OrganizationDeleted => "Organizations deleted",
            Kind::OrganizationLinked => "Integrations ticked for an organization",
            Kind::OrganizationUnlinked => "Integrations unticked for an organization",
            Kind::ApiTokenCreated => "API tokens created",
            Kind::ApiTokenRevoked => "API tokens revoked",
            Kind::DeliveryRetried => "Single deliveries retried",
            Kind::DeliveriesRetried => "Retry all failed",
        }
    }

    pub fn group(self) -> Group {
        match self {
            Kind::SignedIn | Kind::SignInFailed => Group::SignIns,
            Kind::IntegrationCreated
            | Kind::IntegrationEdited
            | Kind::IntegrationEnabled
            | Kind::IntegrationDisabled
            | Kind::IntegrationRemoved
            | Kind::TestTicketSent
            | Kind::TestTicketRefused => Group::Integrations,
            Kind::OrganizationAdded
            | Kind::OrganizationRenamed
            | Kind::OrganizationDeleted
            | Kind::OrganizationLinked
            | Kind::OrganizationUnlinked => Group::Organizations,
            Kind::ApiTokenCreated | Kind::ApiTokenRevoked => Group::ApiTokens,
            Kind::DeliveryRetried | Kind::DeliveriesRetried => Group::Deliveries,
        }
    }

    /// A failure or refusal (shown in red).
    pub fn is_failure(self) -> bool {
        matches!(self, Kind::SignInFailed | Kind::TestTicketRefused)
    }
}

/// What the page filters on: one group of kinds, or one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Filter {
    Group(Group),
    Kind(Kind),
}

impl Filter {
    /// A filter from its URL value (`integration`, `integration.enabled`); `None` for an unknown one.
    pub fn from_key(key: &str) -> Option<Self> {
        let key = key.trim();
        Group::ALL
            .into_iter()
            .find(|group| group.key() == key)
            .map(Filter::Group)
            .or_else(|| Kind::from_key(key).map(Filter::Kind))
    }

    pub fn key(self) -> &'static str {
        match self {
            Filter::Group(group) => group.key(),
            Filter::Kind(kind) => kind.key(),
        }
    }

    /// The kinds it lets through.
    pub fn kinds(self) -> Vec<Kind> {
        match self {
            Filter::Group(group) => group.kinds().collect(),
            Filter::Kind(kind) => vec![kind],
        }
    }
}

/// The sentence the page shows for an activity ("What").
pub fn sentence(kind: Kind, subject: &str, detail: Option<&str>) -> String {
    let detail = detail.filter(|d| !d.is_empty());
    match kind {
        Kind::SignedIn => "Signed in.".into(),
        Kind::SignInFailed => match detail {
            Some("throttled") => "Sign-in refused: too many attempts.".into(),
            _ => "Sign-in failed: wrong password.".into(),
        },
        Kind::IntegrationCreated => format!("Created the integration “{subject}”."),
        Kind::IntegrationEdited => match detail {
            Some(before) => format!("Edited the integration “{subject}” (renamed from “{before}”)."),
            None => format!("Edited the integration “{subject}”."),
        },
        Kind::IntegrationEnabled => format!("Enabled the integration “{subject}”."),
        Kind::IntegrationDisabled => format!("Disabled the integration “{subject}”."),
        Kind::IntegrationRemoved => format!("Removed the integration “{subject}” and its stored keys."),
        Kind::TestTicketSent => match detail {
            Some(ticket) => format!("Sent a test ticket through “{subject}”: {ticket}."),
            None => format!("Sent a test ticket through “{subject}”."),
        },
        Kind::TestTicketRefused => match detail {
            Some(reason) => format!("A test ticket through “{subject}” was refused: {reason}"),
            None => format!("A test ticket through “{subject}” was refused."),
        },
        Kind::OrganizationAdded => format!("Added the organization “{subject}”."),
        Kind::OrganizationRenamed => match detail {
            Some(before) => format!("Renamed the organization “{before}” to “{subject}”."),
            None => format!("Renamed an organization to “{subject}”."),
        },
        Kind::OrganizationDeleted => format!("Deleted the organization “{subject}”."),
        Kind::OrganizationLinked => {
            format!("Ticked the integration “{}” for the organization “{subject}”.", detail.unwrap_or("?"))
        }
        Kind::OrganizationUnlinked => {
            format!("Unticked the integration “{}” for the organization “{subject}”.", detail.unwrap_or("?"))
        }
        Kind::ApiTokenCreated => match detail {
            Some(prefix) => format!("Created the API token “{subject}” ({prefix}…)."),
            None => format!("Created the API token “{subject}”."),
        },
        Kind::ApiTokenRevoked => match detail {
            Some(prefix) => format!("Revoked the API token “{subject}” ({prefix}…)."),
            None => format!("Revoked the API token “{subject}”."),
        },
        Kind::DeliveryRetried => match detail {
            Some(id) => format!("Retried the failed delivery #{id} of the integration “{subject}”."),
            None => format!("Retried a failed delivery of the integration “{subject}”."),
        },
        Kind::DeliveriesRetried => match detail {
            Some("1") => format!("Retried 1 failed delivery of the integration “{subject}” (Retry all failed)."),
            Some(count) => {
                format!("Retried {count} failed deliveries of the integration “{subject}” (Retry all failed).")
            }
            None => format!("Retried the failed deliveries of the integration “{subject}”."),
        },
    }
}

/// One row of the Activity page, formatted on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRow {
    pub id: i64,
    /// `2026-11-27 15:43 UTC`.
    pub when: String,
    /// The partner user's email (or the operator command that acted).
    pub who: String,
    /// The sentence.
    pub what: String,
    /// The client address, when known.
    pub address: Option<String>,
    pub kind: Kind,
}

/// One page of the partner's activity, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityPage {
    pub rows: Vec<ActivityRow>,
    /// Whether older rows match the filter.
    pub more: bool,
}

/// Who is acting: the partner user's email and the client address the request came from.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub email: String,
    pub address: Option<String>,
}

#[cfg(feature = "ssr")]
impl Actor {
    pub fn new(email: &str, address: Option<std::net::IpAddr>) -> Self {
        Self { email: email.to_owned(), address: address.map(|ip| ip.to_canonical().to_string()) }
    }

    /// The signed-in partner user `email` making the current request (server functions only): the client address
    /// is read as sign-in reads it (`TRUSTED_PROXY_HOPS`).
    pub fn of_request(email: &str) -> Self {
        use leptos::prelude::use_context;
        let address = match (use_context::<crate::state::AppState>(), use_context::<http::request::Parts>()) {
            (Some(state), Some(parts)) => crate::client_address::from_parts(state.config.trusted_proxy_hops, &parts),
            _ => None,
        };
        Self::new(email, address)
    }

    /// An operator acting outside the dashboard (`server create-api-token`, demo data, tests).
    pub fn operator(what: &str) -> Self {
        Self { email: what.to_owned(), address: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_every_kind_has_a_group_and_a_sentence() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_key(kind.key()), Some(kind));
            assert!(kind.key().starts_with(&format!("{}.", kind.group().key())), "{kind:?}");
            assert_eq!(Filter::from_key(kind.key()), Some(Filter::Kind(kind)));
            let text = sentence(kind, "Acme", Some("detail"));
            assert!(text.ends_with('.') || text.ends_with("detail"), "{text}");
        }
        for group in Group::ALL {
            assert_eq!(Filter::from_key(group.key()), Some(Filter::Group(group)));
            assert!(group.kinds().count() >= 2, "{group:?}");
        }
        assert_eq!(Filter::from_key("integration.bogus"), None);
        assert_eq!(Filter::from_key(""), None);
    }

    #[test]
    fn sentences_read_as_sentences() {
        assert_eq!(sentence(Kind::SignInFailed, "", Some("throttled")), "Sign-in refused: too many attempts.");
        assert_eq!(sentence(Kind::SignInFailed, "", Some("wrong password")), "Sign-in failed: wrong password.");
        assert_eq!(
            sentence(Kind::OrganizationRenamed, "Globex, Inc.", Some("Globex Inc")),
            "Renamed the organization “Globex Inc” to “Globex, Inc.”."
        );
        assert_eq!(
            sentence(Kind::OrganizationUnlinked, "Acme", Some("CW Prod")),
            "Unticked the integration “CW Prod” for the organization “Acme”."
        );
        assert_eq!(
            sentence(Kind::DeliveriesRetried, "CW Prod", Some("3")),
            "Retried 3 failed deliveries of the integration “CW Prod” (Retry all failed)."
        );
    }
}
