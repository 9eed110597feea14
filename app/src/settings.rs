//! Settings: the partner's API tokens for the import API. The list the page shows (times formatted on the server,
//! so SSR and hydration agree), the page itself, and the one-time panel that shows a new token.
//!
//! Creating and revoking go through [`crate::api_tokens`]' server functions; the token's value only ever travels
//! in the reply to its creation, and only lives in the browser's memory until the panel is closed.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api_tokens::{CreateApiToken, CreatedToken, NAME_MAX_CHARS, RevokeApiToken};
use crate::error::AppError;
use crate::ui::ErrorNotice;

/// Where the import API listens (served by the server crate).
pub const IMPORT_PATH: &str = "/api/v1/compromises";

/// One line of NDJSON the import API accepts, shown in the usage example (a route test sends it).
pub const EXAMPLE_RECORD: &str = r#"{"uuid":"5f0c2a7e-93d4-4b1e-a6f8-2c71e0d94b3a","record_type":"Email","compromise":"jane.doe@acme-corp.example","password":"Summer2024!","password_criteria":"Matches","source":"Hacking forum combolist","website":"portal.acme-corp.example","organization_name":"Acme Corporation","search_value":"acme-corp.example","date_added":"2025-03-14T09:26:53Z","date_found":"2025-03-12"}"#;

/// A token as the Settings page lists it: never its value or hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    /// `dwid_` and the token's first 8 hex digits.
    pub prefix: String,
    /// `2026-11-27 15:43 UTC`.
    pub created: String,
    pub last_used: Option<String>,
    /// When it was revoked; `None` while it is active.
    pub revoked: Option<String>,
}

/// What the API tokens section loads: the tokens, newest first, and the import API's address on this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
    /// `https://dashboard.example/api/v1/compromises`, for the usage example.
    pub import_url: String,
}

#[server(endpoint = "settings/tokens")]
pub async fn list_token_views() -> Result<TokenList, AppError> {
    crate::error::respond(
        async {
            let partner = crate::auth::require_partner().await?;
            let state = expect_context::<crate::state::AppState>();
            let tokens = crate::api_tokens::store::list(&state.db, partner.id).await?;
            let parts = use_context::<http::request::Parts>();
            Ok(TokenList {
                tokens: tokens.into_iter().map(ssr::view).collect(),
                import_url: ssr::import_url(&state.config, parts.as_ref().map(|p| &p.headers)),
            })
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
pub mod ssr {
    use super::TokenView;
    use crate::api_tokens::ApiToken;
    use crate::config::Config;
    use crate::integrations::service::format_time;

    pub fn view(token: ApiToken) -> TokenView {
        TokenView {
            id: token.id,
            name: token.name,
            prefix: token.prefix,
            created: format_time(token.created_at),
            last_used: token.last_used_at.map(format_time),
            revoked: token.revoked_at.map(format_time),
        }
    }

    /// The import API's address: under `PUBLIC_URL` when set, else as the browser reached this server (behind
    /// trusted proxies, as the proxy says).
    pub fn import_url(config: &Config, headers: Option<&http::HeaderMap>) -> String {
        if let Some(origin) = &config.public_origin {
            return format!("{origin}{}", super::IMPORT_PATH);
        }
        let header = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let forwarded = |name| if config.trusted_proxy_hops > 0 { header(name) } else { None };
        let host = forwarded("x-forwarded-host")
            .or_else(|| header("host"))
            .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
            .unwrap_or("your-dashboard.example");
        let scheme = match forwarded("x-forwarded-proto") {
            Some("http") => "http",
            Some(_) => "https",
            None if config.is_production() => "https",
            None => "http",
        };
        format!("{scheme}://{host}{}", super::IMPORT_PATH)
    }
}

/// The Settings page: API tokens (what they are for, create, the one-time panel, the list with revoke).
#[component]
pub fn SettingsPage() -> impl IntoView {
    let create = ServerAction::<CreateApiToken>::new();
    let revoke = ServerAction::<RevokeApiToken>::new();
    let tokens = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_token_views());
    // The token just created: shown until the partner closes the panel, never again.
    let created = RwSignal::new(None::<CreatedToken>);
    // Which row asks "Revoke …?": kept here, so the reloaded list keeps the question open.
    let confirming = RwSignal::new(None::<i64>);

    let create_form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if let Some(Ok(token)) = create.value().get() {
            created.set(Some(token));
            if let Some(form) = create_form.get() {
                form.reset();
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = revoke.value().get() {
            confirming.set(None);
        }
    });
    let create_error = move || match create.value().get() {
        Some(Err(err)) => Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> }),
        _ => None,
    };

    view! {
        <leptos_meta::Title text="Settings · Dark Web ID Partner Dashboard"/>
        <div class="page-header">
            <div>
                <h1>"Settings"</h1>
                <p class="page-header__lead">"How your other systems connect to the Partner Dashboard."</p>
            </div>
        </div>
        <section class="settings-section" aria-labelledby="api-tokens-title">
            <h2 id="api-tokens-title" class="settings-section__title">"API tokens"</h2>
            <p class="settings-section__lead">
                "An API token lets one of your systems send compromises to the import API, "
                <code>"POST "{IMPORT_PATH}</code>
                ", without signing in; each new compromise becomes a ticket through its organization's enabled "
                "integrations. Give every system its own token, so you can revoke one without disturbing the others."
            </p>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    tokens.await.ok().map(|list| view! { <ApiUsage import_url=list.import_url/> })
                })}
            </Transition>
            <section class="card" aria-labelledby="create-token-title">
                <h3 id="create-token-title" class="card__title">"Create a token"</h3>
                <ActionForm action=create node_ref=create_form attr:class="inline-form">
                    <div class="field field--grow">
                        <label for="new-token-name">"Token name"</label>
                        <input
                            id="new-token-name"
                            name="name"
                            type="text"
                            maxlength=NAME_MAX_CHARS
                            autocomplete="off"
                            placeholder="e.g. SIEM export"
                        />
                    </div>
                    <button type="submit" class="button button--primary" disabled=move || create.pending().get()>
                        "Create token"
                    </button>
                </ActionForm>
                {create_error}
            </section>
            {move || created.get().map(|token| view! { <NewTokenPanel token created/> })}
            <Transition fallback=|| view! { <p class="muted">"Loading API tokens…"</p> }>
                <ErrorBoundary fallback=|errors| view! { <ErrorNotice errors/> }>
                    {move || Suspend::new(async move {
                        tokens.await.map(|list| view! { <TokenTable list revoke confirming/> })
                    })}
                </ErrorBoundary>
            </Transition>
        </section>
    }
}

/// Shows a new token once, with Copy, and says it will not be shown again.
#[component]
fn NewTokenPanel(token: CreatedToken, created: RwSignal<Option<CreatedToken>>) -> impl IntoView {
    // None: not copied yet; Some(true): copied; Some(false): the browser refused.
    let copied = RwSignal::new(None::<bool>);
    let value = token.value.clone();
    let copy = move |_| copy_to_clipboard(&value, copied);
    let status = move || match copied.get() {
        Some(true) => Some(view! { <p class="api-token-new__status" role="status">"Copied to the clipboard."</p> }),
        Some(false) => Some(view! {
            <p class="form-error" role="alert">"The browser did not allow copying: select the token and copy it yourself."</p>
        }),
        None => None,
    };
    view! {
        <section class="card api-token-new" aria-labelledby="new-token-title">
            <h3 id="new-token-title" class="card__title">{format!("Your new token \u{201c}{}\u{201d}", token.token.name)}</h3>
            <p class="api-token-new__warning">
                <strong>"Copy it now: it will not be shown again."</strong>
                " Only a fingerprint of it is stored. If you lose it, revoke it and create another."
            </p>
            <div class="api-token-new__row">
                <label for="new-token-value" class="visually-hidden">"New API token"</label>
                <input
                    id="new-token-value"
                    class="input--mono"
                    type="text"
                    readonly
                    spellcheck="false"
                    autocomplete="off"
                    value=token.value.clone()
                    on:focus=select_all
                />
                <button type="button" class="button button--primary" on:click=copy>"Copy"</button>
                <button type="button" class="button" on:click=move |_| created.set(None)>"Done"</button>
            </div>
            {status}
        </section>
    }
}

/// Selects the whole token when its field gets focus, ready for Ctrl+C.
fn select_all(ev: leptos::ev::FocusEvent) {
    event_target::<web_sys::HtmlInputElement>(&ev).select();
}

/// Writes `text` to the clipboard and reports the outcome in `copied`.
#[cfg(feature = "hydrate")]
fn copy_to_clipboard(text: &str, copied: RwSignal<Option<bool>>) {
    use wasm_bindgen::JsValue;
    use wasm_bindgen::prelude::Closure;
    let Some(window) = web_sys::window() else {
        copied.set(Some(false));
        return;
    };
    // `navigator.clipboard` is undefined outside secure contexts (plain http to a remote host).
    let clipboard = window.navigator().clipboard();
    if clipboard.is_undefined() {
        copied.set(Some(false));
        return;
    }
    let done = Closure::<dyn FnMut(JsValue)>::once(move |_: JsValue| {
        copied.try_set(Some(true));
    });
    let failed = Closure::<dyn FnMut(JsValue)>::once(move |_: JsValue| {
        copied.try_set(Some(false));
    });
    let _ = clipboard.write_text(text).then2(&done, &failed);
    // The promise owns the callbacks now; each is freed after its single call (one pair per click).
    done.forget();
    failed.forget();
}

#[cfg(not(feature = "hydrate"))]
fn copy_to_clipboard(_text: &str, copied: RwSignal<Option<bool>>) {
    copied.set(Some(false));
}

/// The usage example: a curl call with a token and an NDJSON file, one line of that file, and the reply.
#[component]
fn ApiUsage(import_url: String) -> impl IntoView {
    let curl = format!(
        "curl -X POST {import_url} \\\n  -H \"Authorization: Bearer dwid_…\" \\\n  \
         -H \"Content-Type: application/x-ndjson\" \\\n  --data-binary @compromises.ndjson"
    );
    view! {
        <div class="api-usage">
            <pre class="code-block"><code>{curl}</code></pre>
            <details class="api-usage__details">
                <summary>"What goes in " <code>"compromises.ndjson"</code> ", and the reply"</summary>
                <p class="api-usage__note">"One compromise per line (a JSON array works too), for example:"</p>
                <pre class="code-block code-block--wrap"><code>{EXAMPLE_RECORD}</code></pre>
                <p class="api-usage__note">
                    "The reply counts what happened; a uuid already imported is skipped as a duplicate: "
                    <code>"{\"received\":1,\"imported\":1,\"duplicates\":0,\"deliveries_queued\":1}"</code>
                </p>
            </details>
        </div>
    }
}

#[component]
fn TokenTable(
    list: TokenList,
    revoke: ServerAction<RevokeApiToken>,
    confirming: RwSignal<Option<i64>>,
) -> impl IntoView {
    let tokens = list.tokens;
    let count = tokens.len();
    if count == 0 {
        return view! {
            <section class="card empty-state">
                <p class="empty-state__title">"You have no API tokens."</p>
                <p class="muted">"Create one above for each system that will send compromises."</p>
            </section>
        }
        .into_any();
    }
    let action_error = move || match revoke.value().get() {
        Some(Err(err)) => Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> }),
        _ => None,
    };
    let active = tokens.iter().filter(|t| t.revoked.is_none()).count();
    view! {
        {action_error}
        <section class="card card--flush" aria-labelledby="token-list-title">
            <div class="card__header">
                <h3 id="token-list-title" class="card__title">"Your API tokens"</h3>
                <span class="count-badge">{format!("{active} active of {count}")}</span>
            </div>
            <table class="table table--tokens">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Token"</th>
                        <th scope="col">"Created"</th>
                        <th scope="col">"Last used"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col" class="table__actions">"Actions"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || tokens.clone() key=|token| token.clone() let:token>
                        <TokenRow token revoke confirming/>
                    </For>
                </tbody>
            </table>
        </section>
    }
    .into_any()
}

#[component]
fn TokenRow(
    token: TokenView,
    revoke: ServerAction<RevokeApiToken>,
    confirming: RwSignal<Option<i64>>,
) -> impl IntoView {
    let id = token.id;
    let name = token.name.clone();
    let revoked = token.revoked.is_some();
    let status = match &token.revoked {
        Some(at) => view! {
            <span class="status status--inactive">"Revoked"</span>
            " "
            <span class="api-token-row__when">{at.clone()}</span>
        }
        .into_any(),
        None => view! { <span class="status status--active">"Active"</span> }.into_any(),
    };
    let asking = move || !revoked && confirming.get() == Some(id);
    let revoke_button = (!revoked).then(|| {
        view! {
            <button
                type="button"
                class="button button--small button--danger-outline"
                aria-label=format!("Revoke {name}")
                disabled=asking
                on:click=move |_| confirming.set(Some(id))
            >
                "Revoke"
            </button>
        }
    });
    // The question takes a row of its own under the token, so the table keeps its columns.
    let question = format!("Revoke \u{201c}{}\u{201d}?", token.name);
    let confirm_label = format!("Confirm revoking {}", token.name);
    let confirm = move || {
        asking().then(|| {
            view! {
                <tr class="table__message-row">
                    <td colspan="6">
                        <div class="confirm confirm--inline api-token-confirm" role="group" aria-label=confirm_label.clone()>
                            <span>
                                <strong>{question.clone()}</strong>
                                " Systems using it will be refused at once. This cannot be undone."
                            </span>
                            <span class="api-token-confirm__buttons">
                                <button
                                    type="button"
                                    class="button button--danger button--small"
                                    disabled=move || revoke.pending().get()
                                    on:click=move |_| {
                                        revoke.dispatch(RevokeApiToken { id });
                                    }
                                >
                                    "Yes, revoke"
                                </button>
                                <button type="button" class="button button--small" on:click=move |_| confirming.set(None)>
                                    "Cancel"
                                </button>
                            </span>
                        </div>
                    </td>
                </tr>
            }
        })
    };
    view! {
        <tr class=if revoked { "api-token-row api-token-row--revoked" } else { "api-token-row" }>
            <td class="api-token-row__name">{token.name.clone()}</td>
            <td>
                <code class="api-token-row__prefix">{format!("{}…", token.prefix)}</code>
            </td>
            <td class="api-token-row__time">{token.created.clone()}</td>
            <td class="api-token-row__time">{token.last_used.clone().unwrap_or_else(|| "Never".to_string())}</td>
            <td>{status}</td>
            <td class="table__actions">{revoke_button}</td>
        </tr>
        {confirm}
    }
}
