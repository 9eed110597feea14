//! The integration wizard: one URL per step (`/integrations/new/3`, `/integrations/7/edit/5`), Back and Next, a
//! step indicator, and a draft kept in the tab's session storage so a reload or Back lands on the same values.

mod mapping_step;
mod steps;

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::{use_navigate, use_params_map};
use serde::{Deserialize, Serialize};

use super::{IntegrationInput, System, get_integration};
use crate::mapping::{Catalog, Lookups, RowError};
use crate::ui::ErrorNotice;

/// The wizard's pages, in order; step 3 is named after the chosen system (see [`step_label`]).
pub const STEPS: &[&str] = &["Ticketing system", "Integration name", "Connection", "Organizations", "Ticket fields"];

/// A step's label: "ConnectWise information", "Autotask information" for step 3.
pub fn step_label(index: usize, system: System) -> String {
    match index {
        2 => format!("{} information", system.short_label()),
        _ => STEPS.get(index).copied().unwrap_or_default().to_owned(),
    }
}

/// Everything the wizard has gathered so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub system_chosen: bool,
    pub input: IntegrationInput,
    /// Editing: keys are stored on the server (shown as set, never sent back).
    pub credentials_set: bool,
    /// A new integration already saved by "Save and Submit a Test Compromise": saving again updates it.
    #[serde(default)]
    pub saved_id: Option<i64>,
}

impl Default for Draft {
    /// No mapping yet: step 5 starts it from the chosen system's catalog.
    fn default() -> Self {
        Draft { system_chosen: false, input: IntegrationInput::default(), credentials_set: false, saved_id: None }
    }
}

impl Draft {
    pub fn system(&self) -> System {
        self.input.system
    }
}

/// What the steps share: the draft, the integration being edited, the site's lookups and the last test's row
/// errors.
#[derive(Clone, Copy)]
pub struct Wizard {
    pub draft: RwSignal<Draft>,
    /// The integration being edited; set after the first save of a new one, so saving again updates it.
    pub id: RwSignal<Option<i64>>,
    /// The id in the URL (None for a new integration): where the draft is kept.
    pub url_id: Option<i64>,
    pub lookups: RwSignal<Lookups>,
    /// The chosen system's ticket fields, once the server sent them (editing: those saved with the integration).
    pub catalog: RwSignal<Option<Catalog>>,
    /// The PSA's field errors from the last test, shown on the mapping rows they name.
    pub remote_errors: RwSignal<Vec<RowError>>,
}

impl Wizard {
    fn base(&self) -> String {
        match self.url_id {
            Some(id) => format!("/integrations/{id}/edit"),
            None => "/integrations/new".into(),
        }
    }

    pub fn step_url(&self, step: usize) -> String {
        format!("{}/{step}", self.base())
    }

    fn storage_key(&self) -> String {
        match self.url_id {
            Some(id) => format!("dwid-wizard-{id}"),
            None => "dwid-wizard-new".into(),
        }
    }

    /// The form as it stands, without subscribing to it: requests are made on purpose (a click, a step, a board
    /// change), never on every keystroke.
    pub fn input(&self) -> IntegrationInput {
        self.draft.with_untracked(|d| d.input.clone())
    }

    /// Forgets the draft (after saving, or on Cancel).
    pub fn clear_storage(&self) {
        storage::remove(&self.storage_key());
    }

    /// The chosen system, tracked.
    pub fn system(&self) -> System {
        self.draft.with(Draft::system)
    }

    /// Chooses a system for a new integration: what belongs to another system (its mapping, fields and lists)
    /// is dropped.
    pub fn choose_system(&self, system: System) {
        let changed = self.draft.with_untracked(|d| d.input.system != system);
        self.draft.update(|d| {
            d.system_chosen = true;
            if changed {
                d.input.system = system;
                d.input.mapping.clear();
                d.input.request_budget = None;
            }
        });
        if changed {
            self.catalog.set(None);
            self.lookups.set(Lookups::default());
            self.remote_errors.set(Vec::new());
        }
    }
}

/// `/integrations/new/:step` and `/integrations/:id/edit/:step`.
#[component]
pub fn WizardPage() -> impl IntoView {
    let params = use_params_map();
    // A memo, so moving between steps (a change of the step parameter only) keeps the wizard and its draft.
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())));
    let step = move || params.with(|p| p.get("step").and_then(|s| s.parse::<usize>().ok()));
    let editing = params.with_untracked(|p| p.get("id").is_some());
    // Editing starts from the saved integration (without its secrets).
    let settings = Resource::new(
        move || id.get(),
        |id| async move {
            match id {
                Some(id) => get_integration(id).await.map(Some),
                None => Ok(None),
            }
        },
    );
    view! {
        <leptos_meta::Title text=if editing {
            "Edit integration · Dark Web ID Partner Dashboard"
        } else {
            "Add an integration · Dark Web ID Partner Dashboard"
        }/>
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorNotice errors/> }>
                {move || Suspend::new(async move {
                    let settings = settings.await?;
                    let mut draft = Draft::default();
                    let mut catalog = None;
                    if let Some(s) = settings {
                        catalog = s.catalog;
                        draft = Draft {
                            system_chosen: true,
                            input: IntegrationInput {
                                system: s.system,
                                name: s.name,
                                site: s.site,
                                company_id: s.company_id,
                                auth_kind: s.auth_kind,
                                mapping: s.mapping,
                                request_budget: s.request_budget,
                                autotask: crate::integrations::AutotaskInput {
                                    username: s.autotask_username,
                                    dedupe_udf: s.dedupe_udf,
                                    ..Default::default()
                                },
                                ..Default::default()
                            },
                            credentials_set: s.credentials_set,
                            saved_id: None,
                        };
                    }
                    Ok::<_, crate::error::AppError>(
                        view! { <WizardBody initial=draft catalog id=id.get_untracked() step/> },
                    )
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn WizardBody(
    initial: Draft,
    catalog: Option<Catalog>,
    id: Option<i64>,
    step: impl Fn() -> Option<usize> + Send + Sync + Copy + 'static,
) -> impl IntoView {
    let wizard = Wizard {
        draft: RwSignal::new(initial),
        id: RwSignal::new(id),
        url_id: id,
        lookups: RwSignal::new(Lookups::default()),
        catalog: RwSignal::new(catalog),
        remote_errors: RwSignal::new(Vec::new()),
    };
    provide_context(wizard);
    // After hydration: pick up the draft this tab kept (a reload), then keep it up to date.
    Effect::new(move |first: Option<()>| {
        if first.is_none() {
            if let Some(saved) = storage::load::<Draft>(&wizard.storage_key()) {
                if saved.saved_id.is_some() {
                    wizard.id.set(saved.saved_id);
                }
                wizard.draft.set(saved);
            }
        } else {
            // Keys and passwords stay in memory only: a reload asks for them again rather than leaving them in
            // the browser's storage.
            let mut kept = wizard.draft.get_untracked();
            kept.input.public_key.clear();
            kept.input.private_key.clear();
            kept.input.password.clear();
            kept.input.autotask.secret.clear();
            kept.input.autotask.integration_code.clear();
            storage::save(&wizard.storage_key(), &kept);
        }
        wizard.draft.track();
    });
    let current = move || step().filter(|s| (1..=STEPS.len()).contains(s));
    view! {
        <div class="page-header">
            <div>
                <h1>{if id.is_some() { "Edit integration" } else { "Add an integration" }}</h1>
                <p class="page-header__lead">
                    {move || match wizard.draft.with(|d| d.system_chosen.then_some(d.input.system)) {
                        Some(system) => format!(
                            "Connect {} so every new compromise of your organizations becomes a ticket.",
                            system.label(),
                        ),
                        None => "Connect your PSA so every new compromise of your organizations becomes a ticket."
                            .to_owned(),
                    }}
                </p>
            </div>
        </div>
        {move || match current() {
            None => view! { <Redirect path=wizard.step_url(1)/> }.into_any(),
            Some(step) => {
                view! {
                    <div class="wizard">
                        <StepIndicator step/>
                        <div class="card wizard__panel">
                            {match step {
                                1 => view! { <steps::SystemStep/> }.into_any(),
                                2 => view! { <steps::NameStep/> }.into_any(),
                                3 => view! { <steps::ConnectionStep/> }.into_any(),
                                4 => view! { <steps::OrganizationsStep/> }.into_any(),
                                _ => view! { <mapping_step::MappingStep/> }.into_any(),
                            }}
                        </div>
                    </div>
                }
                    .into_any()
            }
        }}
    }
}

#[component]
fn StepIndicator(step: usize) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    view! {
        <nav class="stepper" aria-label="Wizard steps">
            <ol>
                {STEPS
                    .iter()
                    .enumerate()
                    .map(|(index, _)| {
                        let label = move || step_label(index, wizard.system());
                        let number = index + 1;
                        let class = if number == step {
                            "stepper__step stepper__step--current"
                        } else if number < step {
                            "stepper__step stepper__step--done"
                        } else {
                            "stepper__step"
                        };
                        view! {
                            <li class=class aria-current=(number == step).then_some("step")>
                                <span class="stepper__number">{number}</span>
                                <span class="stepper__label">{label}</span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ol>
        </nav>
    }
}

/// The title of a step, with its number.
#[component]
pub fn StepTitle(number: usize, children: Children) -> impl IntoView {
    view! {
        <h2 id="wizard-step-title" class="wizard__title">
            <span class="wizard__title-step">{format!("Step {number} of {}", STEPS.len())}</span>
            {children()}
        </h2>
    }
}

/// Back and Next. `next` checks the step and returns an error sentence to show instead of moving on.
#[component]
pub fn StepNav(
    number: usize,
    #[prop(optional, into)] next: Option<Callback<(), Result<(), String>>>,
    #[prop(optional)] hide_next: bool,
) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let navigate = use_navigate();
    let error = RwSignal::new(None::<String>);
    let go_next = {
        let navigate = navigate.clone();
        move |_| {
            let check = next.map(|cb| cb.run(())).unwrap_or(Ok(()));
            match check {
                Ok(()) => {
                    error.set(None);
                    navigate(&wizard.step_url(number + 1), Default::default());
                }
                Err(message) => error.set(Some(message)),
            }
        }
    };
    let back = move |_| {
        if number == 1 {
            // Cancel: the draft is dropped, and the next "+ ADD NEW INTEGRATION" starts afresh.
            wizard.clear_storage();
            navigate("/integrations", Default::default());
        } else {
            navigate(&wizard.step_url(number - 1), Default::default());
        }
    };
    view! {
        {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        <div class="wizard__nav">
            <button type="button" class="button" on:click=back>
                {if number == 1 { "Cancel" } else { "Back" }}
            </button>
            <Show when=move || !hide_next>
                <button type="button" class="button button--primary" on:click=go_next.clone()>
                    "Next"
                </button>
            </Show>
        </div>
    }
}

/// The tab's session storage (browser only; a no-op on the server).
mod storage {
    #[cfg(feature = "hydrate")]
    fn store() -> Option<web_sys::Storage> {
        web_sys::window().and_then(|w| w.session_storage().ok().flatten())
    }

    pub fn load<T: serde::de::DeserializeOwned>(key: &str) -> Option<T> {
        #[cfg(feature = "hydrate")]
        {
            let text = store()?.get_item(key).ok().flatten()?;
            serde_json::from_str(&text).ok()
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = key;
            None
        }
    }

    pub fn save<T: serde::Serialize>(key: &str, value: &T) {
        #[cfg(feature = "hydrate")]
        if let (Some(store), Ok(text)) = (store(), serde_json::to_string(value)) {
            let _ = store.set_item(key, &text);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (key, serde_json::to_string(value));
    }

    pub fn remove(key: &str) {
        #[cfg(feature = "hydrate")]
        if let Some(store) = store() {
            let _ = store.remove_item(key);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = key;
    }
}
