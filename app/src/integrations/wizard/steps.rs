//! Steps 1–4: ticketing system, name, the system's connection, organizations and companies.

use leptos::prelude::*;

use super::{StepNav, StepTitle, Wizard};
use crate::connectwise_site::{SiteMode, validate_company_id, validate_site};
use crate::integrations::wizard_api::{MatchCompanies, TestConnection};
use crate::integrations::{AuthKind, BudgetWindow, RequestBudgetInput, System, name_key, validate_name};
use crate::organizations::RenameOrganization;

/// Systems shown as coming later; not selectable.
const COMING_SOON: &[&str] = &["Kaseya BMS", "HaloPSA", "Jira Service Management", "ServiceNow"];

#[component]
pub fn SystemStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let chosen = move || wizard.draft.with(|d| d.system_chosen.then_some(d.input.system));
    // A saved integration keeps its system: its mapping and secrets belong to it.
    let editing = wizard.url_id.is_some();
    let next = Callback::new(move |()| {
        if chosen().is_some() { Ok(()) } else { Err("Choose a ticketing system to continue.".to_string()) }
    });
    view! {
        <StepTitle number=1>"Select your ticketing system"</StepTitle>
        {editing.then(|| view! {
            <p class="muted">"A saved integration keeps its ticketing system; add a new integration for another one."</p>
        })}
        <fieldset class="system-choices">
            <legend class="visually-hidden">"Ticketing system"</legend>
            {System::ALL
                .iter()
                .map(|&system| {
                    let locked = move || editing && chosen() != Some(system);
                    view! {
                        <label class="system-card" class:system-card--disabled=locked>
                            <input
                                type="radio"
                                name="system"
                                value=system.as_db()
                                prop:checked=move || chosen() == Some(system)
                                disabled=locked
                                on:change=move |_| wizard.choose_system(system)
                            />
                            <span class="system-card__name">{system.short_label()}</span>
                            <span class="system-card__note">{system.description()}</span>
                        </label>
                    }
                })
                .collect_view()}
            {COMING_SOON
                .iter()
                .map(|name| {
                    view! {
                        <label class="system-card system-card--disabled">
                            <input type="radio" name="system" value=*name disabled/>
                            <span class="system-card__name">{*name}</span>
                            <span class="badge">"Coming soon"</span>
                        </label>
                    }
                })
                .collect_view()}
        </fieldset>
        <StepNav number=1 next/>
    }
}

#[component]
pub fn NameStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    // The partner's other integrations, to say at once when a name is taken (the server checks again on save).
    let taken = LocalResource::new(crate::integrations::list_integrations);
    let next = Callback::new(move |()| {
        let name = validate_name(&wizard.draft.with(|d| d.input.name.clone()))?;
        let own = wizard.id.get_untracked();
        let clash = taken
            .get()
            .and_then(|list| list.ok())
            .is_some_and(|list| list.iter().any(|i| Some(i.id) != own && name_key(&i.name) == name_key(&name)));
        if clash {
            return Err(format!("An integration named \"{name}\" already exists. Choose another name."));
        }
        wizard.draft.update(|d| d.input.name = name);
        Ok(())
    });
    view! {
        <StepTitle number=2>"Integration name"</StepTitle>
        <p class="muted">
            {move || {
                let system = wizard.system().short_label();
                format!(
                    "A name you will recognise in the Integrations table, e.g. the {system} account it sends to. You \
                     can add several {system} integrations, one per account for instance."
                )
            }}
        </p>
        <div class="field field--narrow">
            <label for="integration-name">"Integration name"</label>
            <input
                id="integration-name"
                type="text"
                maxlength=crate::integrations::NAME_MAX_CHARS
                autocomplete="off"
                prop:value=move || wizard.draft.with(|d| d.input.name.clone())
                on:input=move |ev| wizard.draft.update(|d| d.input.name = event_target_value(&ev))
            />
        </div>
        <StepNav number=2 next/>
    }
}

/// The checks the browser can make; the server checks again, with the production rules when they apply.
fn check_connection_fields(wizard: &Wizard) -> Result<(), String> {
    let (input, credentials_set) = wizard.draft.with(|d| (d.input.clone(), d.credentials_set));
    if let Some(budget) = &input.request_budget {
        budget.validate()?;
    }
    if input.system == System::Autotask {
        let at = &input.autotask;
        if at.username.trim().is_empty() {
            return Err("Enter the Autotask API user's name.".into());
        }
        if (at.secret.is_empty() || at.integration_code.trim().is_empty()) && !credentials_set {
            return Err("Enter the API user's secret and its API tracking identifier.".into());
        }
        return Ok(());
    }
    validate_site(&input.site, SiteMode::Dev).map_err(|e| e.to_string())?;
    validate_company_id(&input.company_id).map_err(|e| e.to_string())?;
    let missing = match input.auth_kind {
        AuthKind::ApiKeys => input.public_key.trim().is_empty() || input.private_key.trim().is_empty(),
        AuthKind::Integrator => input.username.trim().is_empty() || input.password.is_empty(),
    };
    if missing && !credentials_set {
        return Err(match input.auth_kind {
            AuthKind::ApiKeys => "Enter the API member's public and private key.".into(),
            AuthKind::Integrator => "Enter the integrator username and password.".into(),
        });
    }
    Ok(())
}

/// A text input bound to one field of the draft.
#[component]
fn DraftInput(
    id: &'static str,
    label: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] placeholder: Option<Signal<String>>,
    get: fn(&crate::integrations::IntegrationInput) -> String,
    set: fn(&mut crate::integrations::IntegrationInput, String),
) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type=kind
                autocomplete="off"
                spellcheck="false"
                placeholder=move || placeholder.map(|p| p.get())
                prop:value=move || wizard.draft.with(|d| get(&d.input))
                on:input=move |ev| wizard.draft.update(|d| set(&mut d.input, event_target_value(&ev)))
            />
        </div>
    }
}

/// "Test connection", its outcome, and the checks made before it is sent.
#[component]
fn TestConnectionButton() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let test = ServerAction::<TestConnection>::new();
    let result = move || {
        test.value().get().map(|outcome| match outcome {
            Ok(message) => view! { <p class="notice notice--success" role="status">{message}</p> }.into_any(),
            Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
        })
    };
    let check_error = RwSignal::new(None::<String>);
    let run_test = move |_| match check_connection_fields(&wizard) {
        Ok(()) => {
            check_error.set(None);
            test.dispatch(TestConnection { id: wizard.id.get_untracked(), input: wizard.input() });
        }
        Err(message) => check_error.set(Some(message)),
    };
    view! {
        <div>
            <button type="button" class="button" on:click=run_test disabled=move || test.pending().get()>
                {move || if test.pending().get() { "Testing…" } else { "Test connection" }}
            </button>
        </div>
        {move || check_error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        {result}
    }
}

/// "Stored: leave blank to keep" once the secrets are stored on the server.
fn stored_placeholder(wizard: Wizard) -> Signal<String> {
    Signal::derive(move || {
        if wizard.draft.with(|d| d.credentials_set) { "Stored: leave blank to keep".to_string() } else { String::new() }
    })
}

#[component]
pub fn ConnectionStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let next = Callback::new(move |()| check_connection_fields(&wizard));
    view! {
        <StepTitle number=3>{move || format!("{} information", wizard.system().short_label())}</StepTitle>
        {move || match wizard.system() {
            System::ConnectWise => view! { <ConnectWiseForm/> }.into_any(),
            System::Autotask => view! { <AutotaskForm/> }.into_any(),
        }}
        <StepNav number=3 next/>
    }
}

#[component]
fn AutotaskForm() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let stored = stored_placeholder(wizard);
    view! {
        <div class="wizard__columns">
            <div class="form">
                <DraftInput
                    id="at-username"
                    label="API user"
                    get=|i| i.autotask.username.clone()
                    set=|i, v| i.autotask.username = v
                    placeholder=Signal::derive(|| "dwid-api@yourmsp.com".to_string())
                />
                <DraftInput id="at-secret" label="Secret" kind="password" get=|i| i.autotask.secret.clone() set=|i, v| i.autotask.secret = v placeholder=stored/>
                <DraftInput
                    id="at-integration-code"
                    label="API tracking identifier"
                    kind="password"
                    get=|i| i.autotask.integration_code.clone()
                    set=|i, v| i.autotask.integration_code = v
                    placeholder=stored
                />
                <DraftInput
                    id="at-dedupe-udf"
                    label="Reference field (ticket user-defined field)"
                    get=|i| i.autotask.dedupe_udf.clone()
                    set=|i, v| i.autotask.dedupe_udf = v
                    placeholder=Signal::derive(|| crate::integrations::DEFAULT_DEDUPE_UDF.to_string())
                />
                <TestConnectionButton/>
                <RequestBudgetSetting/>
            </div>
            <aside class="advice" aria-label="Advice">
                <h3>"Create an API user"</h3>
                <p>
                    "In Autotask, go to Admin › Resources (Users) and add a resource of license type API User for "
                    "Dark Web ID. Give it a security level that can read companies and add and read tickets, and "
                    "under API Tracking Identifier choose Custom (Internal Integration) and enter a name. Copy its "
                    "username, secret and tracking identifier here."
                </p>
                <h3>"Add the reference field"</h3>
                <p>
                    "Under Admin › Features & Settings › Service Desk (Tickets) › Ticket User-Defined Fields, add a "
                    "Text field named “DWID Reference” (or the name you enter above). Dark Web ID writes each "
                    "ticket's reference there, so a delivery that is retried never creates a second ticket."
                </p>
                <p class="muted">
                    "The zone of your Autotask database is found from the API user. The secret and tracking "
                    "identifier are encrypted when saved and never shown again."
                </p>
            </aside>
        </div>
    }
}

#[component]
fn ConnectWiseForm() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let auth = move || wizard.draft.with(|d| d.input.auth_kind);
    let stored = stored_placeholder(wizard);
    view! {
        <div class="wizard__columns">
            <div class="form">
                <DraftInput
                    id="cw-site"
                    label="Site"
                    get=|i| i.site.clone()
                    set=|i, v| i.site = v
                    placeholder=Signal::derive(|| "na.myconnectwise.net".to_string())
                />
                <DraftInput id="cw-company" label="Company ID" get=|i| i.company_id.clone() set=|i, v| i.company_id = v/>
                <fieldset class="radio-group">
                    <legend>"Authentication"</legend>
                    <label class="radio">
                        <input
                            type="radio"
                            name="auth"
                            prop:checked=move || auth() == AuthKind::ApiKeys
                            on:change=move |_| wizard.draft.update(|d| d.input.auth_kind = AuthKind::ApiKeys)
                        />
                        "API member keys"
                    </label>
                    <label class="radio">
                        <input
                            type="radio"
                            name="auth"
                            prop:checked=move || auth() == AuthKind::Integrator
                            on:change=move |_| wizard.draft.update(|d| d.input.auth_kind = AuthKind::Integrator)
                        />
                        "Username and password"
                    </label>
                </fieldset>
                {move || match auth() {
                    AuthKind::ApiKeys => view! {
                        <DraftInput id="cw-public-key" label="Public Key" get=|i| i.public_key.clone() set=|i, v| i.public_key = v placeholder=stored/>
                        <DraftInput id="cw-private-key" label="Private Key" kind="password" get=|i| i.private_key.clone() set=|i, v| i.private_key = v placeholder=stored/>
                    }
                        .into_any(),
                    AuthKind::Integrator => view! {
                        <DraftInput id="cw-username" label="Username" get=|i| i.username.clone() set=|i, v| i.username = v placeholder=stored/>
                        <DraftInput id="cw-password" label="Password" kind="password" get=|i| i.password.clone() set=|i, v| i.password = v placeholder=stored/>
                    }
                        .into_any(),
                }}
                <TestConnectionButton/>
                <RequestBudgetSetting/>
            </div>
            <aside class="advice" aria-label="Advice">
                <h3>"Create an API member"</h3>
                <p>
                    "In ConnectWise Manage, go to System › Members › API Members and add a member for Dark Web ID, "
                    "then generate its API keys. Give its security role:"
                </p>
                <ul>
                    <li>"Company Maintenance: Inquire All"</li>
                    <li>"Service Tickets: Inquire and Add All"</li>
                    <li>"Table Setup: Inquire All"</li>
                </ul>
                <p class="muted">
                    "The Site is the address you sign in to (e.g. na.myconnectwise.net); the Company ID is the company "
                    "you enter on the ConnectWise sign-in page. Keys are encrypted when saved and never shown again."
                </p>
            </aside>
        </div>
    }
}

/// Each system's default, as the wizard names it (the server's `ticketing::default_budget`).
fn default_budget(system: System) -> RequestBudgetInput {
    match system {
        System::ConnectWise => RequestBudgetInput { requests: 1_000, window: BudgetWindow::Minute },
        System::Autotask => RequestBudgetInput { requests: 5_000, window: BudgetWindow::Hour },
    }
}

/// "Advanced settings": the PSA account's request budget, the default or the partner's own.
#[component]
fn RequestBudgetSetting() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let budget = move || wizard.draft.with(|d| d.input.request_budget);
    let set = move |budget: Option<RequestBudgetInput>| wizard.draft.update(|d| d.input.request_budget = budget);
    let error = move || budget().and_then(|b| b.validate().err());
    let custom = move || {
        budget().map(|b| {
            view! {
                <div class="budget">
                    <input
                        id="budget-requests"
                        type="number"
                        min=crate::integrations::MIN_BUDGET_REQUESTS
                        max=crate::integrations::MAX_BUDGET_REQUESTS
                        inputmode="numeric"
                        aria-label="Requests"
                        prop:value=b.requests.to_string()
                        on:input=move |ev| {
                            let requests = event_target_value(&ev).trim().parse().unwrap_or(0);
                            set(Some(RequestBudgetInput { requests, ..b }));
                        }
                    />
                    <label for="budget-window">"requests per"</label>
                    <select
                        id="budget-window"
                        on:change=move |ev| {
                            let window =
                                if event_target_value(&ev) == "hour" { BudgetWindow::Hour } else { BudgetWindow::Minute };
                            set(budget().map(|b| RequestBudgetInput { window, ..b }));
                        }
                    >
                        <option value="minute" selected=b.window == BudgetWindow::Minute>"minute"</option>
                        <option value="hour" selected=b.window == BudgetWindow::Hour>"hour"</option>
                    </select>
                </div>
            }
        })
    };
    view! {
        <details class="advanced" open=move || budget().is_some()>
            <summary>"Advanced settings"</summary>
            <fieldset class="radio-group">
                <legend>"Request budget"</legend>
                <p class="muted">
                    {move || {
                        let system = wizard.system().short_label();
                        format!(
                            "Every request Dark Web ID sends to this {system} account, from all of its servers \
                             together, counts against this budget. When it is used up, tickets wait until it \
                             refills, so your other integrations keep their share of {system}'s limits."
                        )
                    }}
                    {move || (wizard.system() == System::Autotask).then_some(
                        " Autotask suspends a database's API access for the rest of the hour once all of its \
                         integrations together pass 10,000 requests.",
                    )}
                </p>
                <label class="radio">
                    <input
                        type="radio"
                        name="budget"
                        prop:checked=move || budget().is_none()
                        on:change=move |_| set(None)
                    />
                    {move || {
                        let budget = default_budget(wizard.system());
                        format!(
                            "Default: {} requests per {}",
                            crate::numbers::thousands(u64::from(budget.requests)),
                            budget.window.label()
                        )
                    }}
                </label>
                <label class="radio">
                    <input
                        type="radio"
                        name="budget"
                        prop:checked=move || budget().is_some()
                        on:change=move |_| set(Some(default_budget(wizard.system())))
                    />
                    "Custom"
                </label>
                {custom}
                {move || error().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
            </fieldset>
        </details>
    }
}

#[component]
pub fn OrganizationsStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let rename = ServerAction::<RenameOrganization>::new();
    let matching = ServerAction::<MatchCompanies>::new();
    let refresh = move || matching.dispatch(MatchCompanies { id: wizard.id.get_untracked(), input: wizard.input() });
    // Look up on arrival (after hydration) and after each rename.
    Effect::new(move |_| {
        rename.version().get();
        refresh();
    });
    let rows = move || {
        matching.value().get().map(|result| match result {
            Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
            Ok(list) => {
                let system = wizard.system().short_label().to_owned();
                let unmatched = list.iter().filter(|m| m.company.is_none()).count();
                view! {
                    <p class=if unmatched == 0 { "notice notice--success" } else { "notice notice--warning" } role="status">
                        {if unmatched == 0 {
                            format!("Every organization matches {} company.", crate::names::with_article(&system))
                        } else {
                            let (noun, verb, owner) =
                                if unmatched == 1 { ("organization", "matches", "its") } else { ("organizations", "match", "their") };
                            format!(
                                "{unmatched} {noun} {verb} no {system} company exactly: {owner} compromises cannot become tickets until the names match."
                            )
                        }}
                    </p>
                    <table class="table table--matches">
                        <thead>
                            <tr>
                                <th scope="col">"Organization"</th>
                                <th scope="col">{format!("{system} company")}</th>
                            </tr>
                        </thead>
                        <tbody>
                            {list
                                .into_iter()
                                .map(|m| {
                                    let org = m.organization_name.clone();
                                    let company = match m.company {
                                        Some(company) => view! {
                                            <span class="match match--ok">"✓ " {company}</span>
                                        }
                                            .into_any(),
                                        None => view! {
                                            <div class="match match--missing">
                                                <span>"No company with exactly this name"</span>
                                                {m.suggestions
                                                    .into_iter()
                                                    .map(|suggestion| {
                                                        let id = m.organization_id;
                                                        let name = suggestion.clone();
                                                        view! {
                                                            <div class="match__suggestion">
                                                                "Did you mean “" {suggestion.clone()} "”? "
                                                                <button
                                                                    type="button"
                                                                    class="button button--small"
                                                                    aria-label=format!("Rename organization to match: {org} to {suggestion}")
                                                                    on:click=move |_| {
                                                                        rename.dispatch(RenameOrganization { id, name: name.clone() });
                                                                    }
                                                                >
                                                                    "Rename organization to match"
                                                                </button>
                                                            </div>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </div>
                                        }
                                            .into_any(),
                                    };
                                    view! {
                                        <tr>
                                            <td>{m.organization_name}</td>
                                            <td>{company}</td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                    .into_any()
            }
        })
    };
    let rename_error = move || match rename.value().get() {
        Some(Err(err)) => Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> }),
        _ => None,
    };
    view! {
        <StepTitle number=4>
            {move || format!("Organizations and {} companies", wizard.system().short_label())}
        </StepTitle>
        <p class="muted">
            {move || format!(
                "A ticket is created in the {} company whose name is exactly the organization's name. Check every \
                 organization has one.",
                wizard.system().short_label(),
            )}
        </p>
        <Show when=move || matching.pending().get()>
            <p class="muted" role="status">
                {move || format!("Looking up your {} companies…", wizard.system().short_label())}
            </p>
        </Show>
        {rename_error}
        {rows}
        <StepNav number=4/>
    }
}
