//! The Delivery log of one integration (`/integrations/:id/deliveries`): its server functions and the page.
//!
//! The page shows every delivery of the integration newest first, with counts per state that double as filters,
//! an organization filter, Retry (one, or every Failed one) and keyset paging ("Load older"). The filters live in
//! the URL (`?state=failed&organization=12`), so the page is linkable and survives a reload. While the page is
//! open and visible it refetches every few seconds; the previous data stays on screen while it does.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};

use super::{DeliveryLog, DeliveryRow, DeliveryState};
use crate::error::AppError;
use crate::ui::ErrorNotice;

/// How often the log refreshes while the page is open and visible.
const POLL_MS: u64 = 3000;

/// The state filter of a request: none for all, else a known state key (`pending`, …).
#[cfg(feature = "ssr")]
pub fn parse_state(key: Option<&str>) -> Result<Option<DeliveryState>, AppError> {
    match key.map(str::trim) {
        None | Some("") => Ok(None),
        Some(key) => DeliveryState::from_key(key).map(Some).ok_or_else(|| {
            let known: Vec<&str> = DeliveryState::ALL.iter().map(|s| s.key()).collect();
            AppError::Invalid(format!(
                "There is no delivery state \"{key}\". Filter by one of: {}, or show all deliveries.",
                known.join(", ")
            ))
        }),
    }
}

/// One page of the integration's Delivery log, newest first (`before_id`: only deliveries older than that one).
#[server(name = GetDeliveryLog, endpoint = "deliveries/log")]
pub async fn delivery_log(
    integration_id: i64,
    #[server(default)] state: Option<String>,
    #[server(default)] organization_id: Option<i64>,
    #[server(default)] before_id: Option<i64>,
) -> Result<DeliveryLog, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let filter = super::LogFilter { state: parse_state(state.as_deref())?, organization_id, before_id };
            Ok(super::store::log(&crate::state::db(), partner.id, integration_id, &filter).await?)
        }
        .await,
    )
}

/// Puts one Failed delivery back in the queue, due now.
#[server(endpoint = "deliveries/retry")]
pub async fn retry_delivery(integration_id: i64, delivery_id: i64) -> Result<(), AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let actor = crate::activity::Actor::of_request(&partner.email);
            super::store::retry_failed(&crate::state::db(), partner.id, integration_id, Some(delivery_id), &actor)
                .await?;
            crate::state::wake_deliveries();
            Ok(())
        }
        .await,
    )
}

/// Puts every Failed delivery of the integration back in the queue, due now. Returns how many.
#[server(endpoint = "deliveries/retry-failed")]
pub async fn retry_all_failed(integration_id: i64) -> Result<u64, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let actor = crate::activity::Actor::of_request(&partner.email);
            let count =
                super::store::retry_failed(&crate::state::db(), partner.id, integration_id, None, &actor).await?;
            if count > 0 {
                crate::state::wake_deliveries();
            }
            Ok(count)
        }
        .await,
    )
}

/// The filters of the page, as the URL query carries them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Filters {
    /// As written in the URL; an unknown key is reported by the server.
    state: Option<String>,
    organization: Option<i64>,
}

impl Filters {
    /// The page's address with these filters (only a known state key is carried over).
    fn url(&self, integration_id: i64) -> String {
        let mut query = Vec::new();
        if let Some(state) = self.state.as_deref().and_then(DeliveryState::from_key) {
            query.push(format!("state={}", state.key()));
        }
        if let Some(organization) = self.organization {
            query.push(format!("organization={organization}"));
        }
        let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
        format!("/integrations/{integration_id}/deliveries{query}")
    }

    fn with_state(&self, state: Option<DeliveryState>) -> Self {
        Self { state: state.map(|s| s.key().to_string()), organization: self.organization }
    }

    fn with_organization(&self, organization: Option<i64>) -> Self {
        Self { state: self.state.clone(), organization }
    }

    fn shown_state(&self) -> Option<DeliveryState> {
        self.state.as_deref().and_then(DeliveryState::from_key)
    }
}

/// The newest `pages` pages of the log, each asked for with the last id of the one before (keyset paging), so
/// older pages loaded with "Load older" stay live too.
async fn load(integration_id: Option<i64>, filters: Filters, pages: usize) -> Result<DeliveryLog, AppError> {
    let Some(integration_id) = integration_id else {
        return Err(AppError::NotFound(
            "That integration does not exist. Go back to Integrations to see the current list.".into(),
        ));
    };
    let mut log = delivery_log(integration_id, filters.state.clone(), filters.organization, None).await?;
    for _ in 1..pages {
        let Some(last) = log.rows.last().map(|row| row.id).filter(|_| log.more) else { break };
        let older = delivery_log(integration_id, filters.state.clone(), filters.organization, Some(last)).await?;
        log.rows.extend(older.rows);
        log.more = older.more;
    }
    Ok(log)
}

/// What the last Retry said: a confirmation, or why it did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Message {
    Done(String),
    Problem(String),
}

/// What a row's `For` key is made of: the row changes (and is redrawn) when any shown value changes.
type RowKey = (i64, DeliveryState, i64, Option<i64>, Option<String>, Option<String>, String, String);

fn row_key(row: &DeliveryRow) -> RowKey {
    (
        row.id,
        row.state,
        row.attempts,
        row.ticket_id,
        row.next_attempt.clone(),
        row.last_error.clone(),
        row.updated.clone(),
        row.organization.clone(),
    )
}

/// `/integrations/:id/deliveries`.
#[component]
pub fn DeliveryLogPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let integration_id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())));
    let filters = Memo::new(move |_| {
        query.with(|q| Filters {
            state: q.get("state").filter(|s| !s.trim().is_empty()),
            organization: q.get("organization").and_then(|o| o.parse::<i64>().ok()),
        })
    });
    // "Load older" pages shown for the filters they were loaded under; other filters start again at one page.
    let older = RwSignal::new((Filters::default(), 1usize));
    let pages = Memo::new(move |_| {
        let current = filters.get();
        older.with(|(loaded_for, pages)| if *loaded_for == current { *pages } else { 1 })
    });
    let retry_one = ServerAction::<RetryDelivery>::new();
    let retry_all = ServerAction::<RetryAllFailed>::new();
    let log = Resource::new(
        move || {
            (integration_id.get(), filters.get(), pages.get(), retry_one.version().get(), retry_all.version().get())
        },
        |(id, filters, pages, _, _)| load(id, filters, pages),
    );

    // The outcome of the last Retry, kept here so a refresh of the log does not wipe it.
    let message = RwSignal::new(None::<Message>);
    Effect::new(move |_| match retry_all.value().get() {
        Some(Ok(0)) => message.set(Some(Message::Done("There were no failed deliveries to retry.".into()))),
        Some(Ok(count)) => message.set(Some(Message::Done(format!(
            "{count} failed deliver{} queued for another attempt.",
            if count == 1 { "y is" } else { "ies are" }
        )))),
        Some(Err(err)) => message.set(Some(Message::Problem(err.to_string()))),
        None => {}
    });
    Effect::new(move |_| match retry_one.value().get() {
        Some(Ok(())) => message.set(Some(Message::Done("The delivery is queued for another attempt.".into()))),
        Some(Err(err)) => message.set(Some(Message::Problem(err.to_string()))),
        None => {}
    });
    // A change of filter is a new question: the previous answer goes.
    Effect::new(move |previous: Option<Filters>| {
        let current = filters.get();
        if previous.is_some_and(|previous| previous != current) {
            message.set(None);
        }
        current
    });

    // Live updates after hydration only (an Effect never runs on the server): every POLL_MS while the tab is
    // visible, at once when it becomes visible again; both stop when the page is left.
    Effect::new(move |_| {
        let visible = || !document().hidden();
        if let Ok(handle) = set_interval_with_handle(
            move || {
                if visible() {
                    log.refetch();
                }
            },
            std::time::Duration::from_millis(POLL_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
        let listener = window_event_listener_untyped("visibilitychange", move |_| {
            if visible() {
                log.refetch();
            }
        });
        on_cleanup(move || listener.remove());
    });

    let error_fallback = move |errors: ArcRwSignal<Errors>| {
        let all = integration_id.get_untracked().filter(|_| filters.get_untracked().state.is_some());
        view! {
            <ErrorNotice errors/>
            {all.map(|id| view! { <a class="button" href=Filters::default().url(id)>"Show all deliveries"</a> })}
        }
    };
    view! {
        <leptos_meta::Title text="Delivery log · Dark Web ID Partner Dashboard"/>
        <a class="back-link" href="/integrations">
            <span aria-hidden="true">"← "</span>
            "Integrations"
        </a>
        <Transition fallback=|| view! { <p class="muted">"Loading the delivery log…"</p> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    log.await
                        .map(|data| {
                            view! {
                                <LogView
                                    data
                                    filters=filters.get_untracked()
                                    pages=pages.get_untracked()
                                    older
                                    retry_one
                                    retry_all
                                    message
                                />
                            }
                        })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// The page's content for one answer of the server. Holds no state of its own: a refresh rebuilds it in place.
#[component]
fn LogView(
    data: DeliveryLog,
    filters: Filters,
    pages: usize,
    older: RwSignal<(Filters, usize)>,
    retry_one: ServerAction<RetryDelivery>,
    retry_all: ServerAction<RetryAllFailed>,
    message: RwSignal<Option<Message>>,
) -> impl IntoView {
    let id = data.integration_id;
    let counts = data.counts.clone();
    let failed = counts.failed;
    let shown_state = filters.shown_state();
    let chip = |state: Option<DeliveryState>, label: &'static str, count: i64| {
        let current = shown_state == state;
        let modifier = state.map(|s| format!(" state-chip--{}", s.key())).unwrap_or_default();
        view! {
            <li>
                <a
                    class=format!("state-chip{modifier}{}", if current { " state-chip--current" } else { "" })
                    href=filters.with_state(state).url(id)
                    aria-current=current.then_some("true")
                >
                    <span class="state-chip__label">{label}</span>
                    " "
                    <span class="state-chip__count">{count}</span>
                </a>
            </li>
        }
    };
    let chips = std::iter::once(chip(None, "All", counts.total()))
        .chain(DeliveryState::ALL.into_iter().map(|s| chip(Some(s), s.label(), counts.get(s))))
        .collect_view();

    let navigate = use_navigate();
    let organization_filter = {
        let filters = filters.clone();
        let selected = filters.organization;
        let mut choices = data.organizations.clone();
        // An organization named in the URL but without deliveries (yet) is still shown as chosen.
        if let Some(org) = selected
            && !choices.iter().any(|(o, _)| *o == org)
        {
            choices.push((org, format!("Organization #{org}")));
        }
        view! {
            <div class="field delivery-log__organization">
                <label for="delivery-organization">"Organization"</label>
                <select
                    id="delivery-organization"
                    on:change=move |ev| {
                        let organization = event_target_value(&ev).parse::<i64>().ok();
                        navigate(&filters.with_organization(organization).url(id), Default::default());
                    }
                >
                    <option value="" selected=selected.is_none() prop:selected=selected.is_none()>
                        "All organizations"
                    </option>
                    {choices
                        .into_iter()
                        .map(|(org, name)| {
                            let chosen = selected == Some(org);
                            view! {
                                <option value=org selected=chosen prop:selected=chosen>
                                    {name}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </div>
        }
    };

    let message_view = move || {
        message.get().map(|m| match m {
            Message::Done(text) => view! { <p class="notice notice--success" role="status">{text}</p> }.into_any(),
            Message::Problem(text) => view! { <p class="form-error" role="alert">{text}</p> }.into_any(),
        })
    };

    let body = if data.rows.is_empty() {
        if counts.total() == 0 {
            view! {
                <section class="card empty-state">
                    <p class="empty-state__title">"No deliveries yet."</p>
                    <p class="muted">
                        {if data.active {
                            "Newly imported compromises of the organizations associated with this integration appear \
                             here as soon as they are imported, and each becomes one ticket in the PSA."
                        } else {
                            "Newly imported compromises of the organizations associated with this integration appear \
                             here once the integration is enabled: enable it on the Integrations page."
                        }}
                    </p>
                </section>
            }
            .into_any()
        } else {
            view! {
                <section class="card empty-state">
                    <p class="empty-state__title">"No deliveries match this filter."</p>
                    <p class="muted">"Choose another state or organization, or show every delivery of this integration."</p>
                    <a class="button" href=Filters::default().url(id)>"Show all deliveries"</a>
                </section>
            }
            .into_any()
        }
    } else {
        let rows = data.rows.clone();
        let more = data.more.then(|| {
            let filters = filters.clone();
            view! {
                <div class="delivery-log__more">
                    <button
                        type="button"
                        class="button"
                        on:click=move |_| older.set((filters.clone(), pages + 1))
                    >
                        "Load older"
                    </button>
                </div>
            }
        });
        view! {
            <section class="card card--flush delivery-log__table">
                <table class="table table--deliveries">
                    <thead>
                        <tr>
                            <th scope="col">"Compromise"</th>
                            <th scope="col">"Organization"</th>
                            <th scope="col">"State"</th>
                            <th scope="col" class="table__number">"Attempts"</th>
                            <th scope="col">"Last error"</th>
                            <th scope="col">"Updated"</th>
                            <th scope="col" class="table__actions">
                                <span class="visually-hidden">"Actions"</span>
                            </th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || rows.clone() key=row_key let:row>
                            <DeliveryLogRow row integration_id=id retry_one/>
                        </For>
                    </tbody>
                </table>
            </section>
            {more}
        }
        .into_any()
    };

    view! {
        <leptos_meta::Title text=format!("Delivery log · {} · Dark Web ID Partner Dashboard", data.integration_name)/>
        <div class="page-header">
            <div>
                <h1>"Delivery log · " <span class="delivery-log__name">{data.integration_name.clone()}</span></h1>
                <p class="page-header__lead">
                    "Each new compromise of an associated organization becomes one ticket in the PSA. \
                     This page updates by itself while it is open."
                </p>
            </div>
        </div>
        {(!data.active)
            .then(|| {
                view! {
                    <p class="notice notice--warning" role="status">
                        "This integration is disabled: its pending deliveries are Paused and resume when you enable it."
                    </p>
                }
            })}
        <section class="card delivery-log__toolbar" aria-label="Filters">
            <ul class="state-chips" aria-label="Filter by state">
                {chips}
            </ul>
            <div class="delivery-log__controls">
                {organization_filter}
                <button
                    type="button"
                    class="button"
                    disabled=move || failed == 0 || retry_all.pending().get()
                    on:click=move |_| {
                        retry_all.dispatch(RetryAllFailed { integration_id: id });
                    }
                >
                    {format!("Retry all failed ({failed})")}
                </button>
            </div>
        </section>
        {message_view}
        {body}
    }
}

#[component]
fn DeliveryLogRow(row: DeliveryRow, integration_id: i64, retry_one: ServerAction<RetryDelivery>) -> impl IntoView {
    let delivery_id = row.id;
    let state = row.state;
    let detail = match state {
        DeliveryState::Delivered => row.ticket_id.map(|t| format!("Ticket #{t}")),
        DeliveryState::Retrying => row.next_attempt.clone().map(|at| format!("next attempt {at}")),
        DeliveryState::Failed => row.last_error.clone(),
        DeliveryState::Paused => Some("resumes when the integration is enabled".into()),
        DeliveryState::Pending => None,
    };
    // A Failed row's reason is under its state already.
    let last_error = row.last_error.clone().filter(|_| state != DeliveryState::Failed);
    let detail_class = if state == DeliveryState::Failed {
        "delivery-log__detail delivery-log__detail--failed"
    } else {
        "delivery-log__detail"
    };
    view! {
        <tr>
            <td class="delivery-log__compromise">
                <span class="delivery-log__value">{row.compromise.clone()}</span>
                <small class="delivery-log__meta">
                    {row.record_type.clone()}
                    <span aria-hidden="true">" · "</span>
                    <span class="delivery-log__uuid">{row.uuid.clone()}</span>
                </small>
            </td>
            <td class="delivery-log__organization-name">{row.organization.clone()}</td>
            <td class="delivery-log__state">
                <span class=format!("status status--{}", state.key())>{state.label()}</span>
                {detail.map(|text| view! { <small class=detail_class>{text}</small> })}
            </td>
            <td class="table__number">{row.attempts}</td>
            <td class="delivery-log__error">
                {match last_error {
                    Some(error) => view! { <span>{error}</span> }.into_any(),
                    None => view! { <span class="muted" aria-label="None">"—"</span> }.into_any(),
                }}
            </td>
            <td class="delivery-log__updated" title=format!("Queued {}", row.created)>
                {row.updated.clone()}
            </td>
            <td class="table__actions">
                {(state == DeliveryState::Failed)
                    .then(|| {
                        view! {
                            <button
                                type="button"
                                class="button button--small"
                                disabled=move || retry_one.pending().get()
                                on:click=move |_| {
                                    retry_one.dispatch(RetryDelivery { integration_id, delivery_id });
                                }
                            >
                                "Retry"
                            </button>
                        }
                    })}
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ssr")]
    #[test]
    fn state_keys_parse_and_unknown_ones_are_refused() {
        assert_eq!(parse_state(None), Ok(None));
        assert_eq!(parse_state(Some(" ")), Ok(None));
        assert_eq!(parse_state(Some("failed")), Ok(Some(DeliveryState::Failed)));
        let err = parse_state(Some("lost")).expect_err("unknown");
        assert!(matches!(&err, AppError::Invalid(m) if m.contains("\"lost\"") && m.contains("paused")), "{err}");
    }

    #[test]
    fn filter_urls_carry_known_states_and_the_organization() {
        let filters = Filters { state: Some("failed".into()), organization: Some(12) };
        assert_eq!(filters.url(3), "/integrations/3/deliveries?state=failed&organization=12");
        assert_eq!(filters.with_state(None).url(3), "/integrations/3/deliveries?organization=12");
        assert_eq!(filters.with_organization(None).url(3), "/integrations/3/deliveries?state=failed");
        let unknown = Filters { state: Some("bogus&x=1".into()), organization: None };
        assert_eq!(unknown.url(3), "/integrations/3/deliveries");
    }
}
