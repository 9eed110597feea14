//! Small components shared by every page.

use leptos::prelude::*;

/// What an `<ErrorBoundary>` shows: the partner-facing sentence of each error, never a cause.
#[component]
pub fn ErrorNotice(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <div class="notice notice--error" role="alert">
            <ul>
                {move || {
                    errors
                        .get()
                        .into_iter()
                        .map(|(_, err)| view! { <li>{err.to_string()}</li> })
                        .collect_view()
                }}
            </ul>
        </div>
    }
}
