//! The Activity page (`/activity`): its server function and component.
//!
//! The partner's audit log newest first, filtered by kind (`?kind=integration` for a group, or one kind such as
//! `?kind=sign_in.failed`) and paged by keyset (`?before=<id>`: the rows older than that one). Filters and pages
//! are plain links and a GET form, so the page works before (and without) hydration.
//!
//! This is the one part of the audit log above `auth` (it needs the signed-in partner); the records and their
//! storage are in the low [`crate::activity`] module that every other module writes through.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::activity::{ActivityPage, ActivityRow, Filter, Group};
use crate::error::AppError;
use crate::ui::ErrorNotice;

/// The kind filter of a request: none for all, else a group or kind key.
#[cfg(feature = "ssr")]
pub fn parse_filter(key: Option<&str>) -> Result<Option<Filter>, AppError> {
    match key.map(str::trim) {
        None | Some("") => Ok(None),
        Some(key) => Filter::from_key(key).map(Some).ok_or_else(|| {
            AppError::Invalid(format!(
                "There is no kind of activity \"{key}\". Choose one from the list, or show all activity."
            ))
        }),
    }
}

/// One page of the signed-in partner's activity, newest first (`before_id`: only activity older than that one).
#[server(name = GetActivity, endpoint = "activity/page")]
pub async fn activity(
    #[server(default)] kind: Option<String>,
    #[server(default)] before_id: Option<i64>,
) -> Result<ActivityPage, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let filter = parse_filter(kind.as_deref())?;
            let (rows, more) = crate::activity::store::page(
                &crate::state::db(),
                partner.id,
                filter,
                before_id,
                crate::activity::PAGE_SIZE,
            )
            .await?;
            let rows = rows
                .into_iter()
                .map(|a| ActivityRow {
                    id: a.id,
                    when: crate::dates::format_millis(a.created_at),
                    who: a.actor,
                    what: crate::activity::sentence(a.kind, &a.subject, a.detail.as_deref()),
                    address: a.address,
                    kind: a.kind,
                })
                .collect();
            Ok(ActivityPage { rows, more })
        }
        .await,
    )
}

/// The page's address for a filter (a known key only) and a keyset position.
fn page_url(kind: Option<&str>, before: Option<i64>) -> String {
    let mut query = Vec::new();
    if let Some(filter) = kind.and_then(Filter::from_key) {
        query.push(format!("kind={}", filter.key()));
    }
    if let Some(before) = before {
        query.push(format!("before={before}"));
    }
    if query.is_empty() { "/activity".into() } else { format!("/activity?{}", query.join("&")) }
}

/// `/activity`.
#[component]
pub fn ActivityLogPage() -> impl IntoView {
    let query = use_query_map();
    let kind = Memo::new(move |_| query.with(|q| q.get("kind").filter(|k| !k.trim().is_empty())));
    let before = Memo::new(move |_| query.with(|q| q.get("before").and_then(|b| b.parse::<i64>().ok())));
    let page = Resource::new(move || (kind.get(), before.get()), |(kind, before)| activity(kind, before));
    let error_fallback = move |errors: ArcRwSignal<Errors>| {
        view! {
            <ErrorNotice errors/>
            <a class="button" href="/activity">"Show all activity"</a>
        }
    };
    view! {
        <leptos_meta::Title text="Activity · Dark Web ID Partner Dashboard"/>
        <div class="page-header">
            <div>
                <h1>"Activity"</h1>
                <p class="page-header__lead">
                    "Who did what in this account, newest first: sign-ins, changes to integrations, organizations \
                     and API tokens, test tickets and delivery retries."
                </p>
            </div>
        </div>
        <KindFilter kind/>
        <Transition fallback=|| view! { <p class="muted">"Loading the activity…"</p> }>
            <ErrorBoundary fallback=error_fallback>
                {move || Suspend::new(async move {
                    page.await
                        .map(|data| {
                            view! { <ActivityTable data kind=kind.get_untracked() before=before.get_untracked()/> }
                        })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// The kind filter: a GET form (it works without JavaScript), which after hydration applies itself on change.
#[component]
fn KindFilter(kind: Memo<Option<String>>) -> impl IntoView {
    let navigate = use_navigate();
    let selected = move || kind.get().as_deref().and_then(Filter::from_key);
    let option = move |filter: Option<Filter>, label: String| {
        let value = filter.map(Filter::key).unwrap_or_default();
        let chosen = move || selected() == filter;
        view! {
            <option value=value selected=chosen prop:selected=chosen>
                {label}
            </option>
        }
    };
    let groups = Group::ALL
        .into_iter()
        .map(|group| {
            let kinds = group.kinds().map(|k| option(Some(Filter::Kind(k)), k.label().to_string())).collect_view();
            view! {
                <optgroup label=group.label()>
                    {option(Some(Filter::Group(group)), group.all_label().to_string())}
                    {kinds}
                </optgroup>
            }
        })
        .collect_view();
    view! {
        <section class="card activity__toolbar" aria-label="Filter">
            <form class="activity__filter" method="get" action="/activity">
                <div class="field activity__kind">
                    <label for="activity-kind">"Show"</label>
                    <select
                        id="activity-kind"
                        name="kind"
                        on:change=move |ev| {
                            navigate(&page_url(Some(&event_target_value(&ev)), None), Default::default());
                        }
                    >
                        {option(None, "All activity".into())}
                        {groups}
                    </select>
                </div>
                <button type="submit" class="button">"Filter"</button>
            </form>
        </section>
    }
}

#[component]
fn ActivityTable(data: ActivityPage, kind: Option<String>, before: Option<i64>) -> impl IntoView {
    if data.rows.is_empty() {
        let filtered = kind.is_some() || before.is_some();
        return view! {
            <section class="card empty-state">
                {if filtered {
                    view! {
                        <p class="empty-state__title">"No activity of this kind."</p>
                        <p class="muted">"Choose another kind, or show all activity."</p>
                        <a class="button" href="/activity">"Show all activity"</a>
                    }
                        .into_any()
                } else {
                    view! {
                        <p class="empty-state__title">"No activity yet."</p>
                        <p class="muted">
                            "Sign-ins and every change to integrations, organizations and API tokens appear here."
                        </p>
                    }
                        .into_any()
                }}
            </section>
        }
        .into_any();
    }
    let older = data.rows.last().map(|row| row.id).filter(|_| data.more);
    let paging = (older.is_some() || before.is_some()).then(|| {
        view! {
            <nav class="activity__paging" aria-label="Pages">
                {before
                    .map(|_| {
                        view! {
                            <a class="button" href=page_url(kind.as_deref(), None)>
                                "Newest"
                            </a>
                        }
                    })}
                {older
                    .map(|id| {
                        view! {
                            <a class="button" href=page_url(kind.as_deref(), Some(id)) rel="next">
                                "Older"
                            </a>
                        }
                    })}
            </nav>
        }
    });
    let rows = data.rows;
    view! {
        <section class="card card--flush activity__table">
            <table class="table table--activity">
                <thead>
                    <tr>
                        <th scope="col">"When"</th>
                        <th scope="col">"Who"</th>
                        <th scope="col">"What"</th>
                        <th scope="col">"Address"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || rows.clone() key=|row| row.id let:row>
                        <ActivityTableRow row/>
                    </For>
                </tbody>
            </table>
        </section>
        {paging}
    }
    .into_any()
}

#[component]
fn ActivityTableRow(row: ActivityRow) -> impl IntoView {
    let what_class = if row.kind.is_failure() { "activity__what activity__what--failed" } else { "activity__what" };
    view! {
        <tr data-kind=row.kind.key()>
            <td class="activity__when">{row.when}</td>
            <td class="activity__who">{row.who}</td>
            <td class=what_class>{row.what}</td>
            <td class="activity__address">
                {match row.address {
                    Some(address) => view! { <span>{address}</span> }.into_any(),
                    None => view! { <span class="muted" aria-label="Unknown">"—"</span> }.into_any(),
                }}
            </td>
        </tr>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_known_kinds_and_the_keyset_position() {
        assert_eq!(page_url(None, None), "/activity");
        assert_eq!(page_url(Some("integration"), Some(40)), "/activity?kind=integration&before=40");
        assert_eq!(page_url(Some("sign_in.failed"), None), "/activity?kind=sign_in.failed");
        assert_eq!(page_url(Some("bogus&x=1"), Some(3)), "/activity?before=3");
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn unknown_kinds_are_refused_with_a_sentence() {
        assert_eq!(parse_filter(None), Ok(None));
        assert_eq!(parse_filter(Some("integration")), Ok(Some(Filter::Group(Group::Integrations))));
        let err = parse_filter(Some("lost")).expect_err("unknown");
        assert!(matches!(&err, AppError::Invalid(m) if m.contains("\"lost\"")), "{err}");
    }
}
