//! Step 5: the field mapping. Rows of (PSA field, value) with a live preview rendered from a sample compromise by
//! the same code that renders delivered tickets, driven by the chosen system's catalog (read from the PSA);
//! palettes of fields and tokens (drag them, or use the keyboard path); Save, and Save and Submit a Test
//! Compromise.

use leptos::prelude::*;

use super::{StepNav, StepTitle, Wizard};
use crate::integrations::SaveIntegration;
use crate::integrations::wizard_api::{FetchFields, SaveAndSubmitTest, TestOutcome};
use crate::mapping::{Catalog, Compromise, FieldDef, FieldKind, LookupItem, Lookups, MappingRow, RowError, TOKENS};

const FIELD_MIME: &str = "application/x-dwid-field";
const ROW_MIME: &str = "application/x-dwid-row";

/// Whether a drag carries a field from the palette or a row (a token is plain text, which inputs take by
/// themselves).
fn carries_ours(ev: &leptos::ev::DragEvent) -> bool {
    ev.data_transfer()
        .is_some_and(|data| data.types().iter().filter_map(|t| t.as_string()).any(|t| t == FIELD_MIME || t == ROW_MIME))
}

fn value_id(index: usize) -> String {
    format!("mapping-value-{index}")
}

/// The id chosen in the row of field `key`, if any.
fn chosen(rows: &[MappingRow], key: &str) -> Option<i64> {
    rows.iter().find(|r| r.field == key).and_then(|r| r.value.trim().parse().ok())
}

/// The options of a list field: its entries, or for a list that depends on another field (a board's statuses)
/// the entries of the choice made in that field's row.
fn options(def: &FieldDef, lookups: &Lookups, rows: &[MappingRow]) -> Vec<LookupItem> {
    match def.parent.as_deref() {
        None => lookups.choices(&def.key, None).to_vec(),
        Some(parent) => chosen(rows, parent).map(|id| lookups.choices(&def.key, Some(id)).to_vec()).unwrap_or_default(),
    }
}

/// The parents whose dependent lists the server must still send (the chosen board, before its statuses are
/// loaded): with the catalog, the chosen ids of fields some list depends on whose lists are not loaded yet (none
/// for Autotask, which sends every list at once); before it, every chosen id (the server takes what it knows).
fn parents(catalog: Option<&Catalog>, rows: &[MappingRow], lookups: &Lookups) -> Vec<(String, i64)> {
    rows.iter()
        .filter_map(|row| Some((row.field.clone(), row.value.trim().parse::<i64>().ok()?)))
        .filter(|(key, id)| {
            catalog.is_none_or(|c| {
                c.fields
                    .iter()
                    .filter(|f| f.parent.as_deref() == Some(key.as_str()))
                    .any(|f| lookups.loaded_choices(&f.key, *id).is_none())
            })
        })
        .collect()
}

/// The rows of dependent lists whose choice is not among the entries of the parent now chosen (once those are
/// loaded): what switching the board leaves behind. With the row's label, the parent's label and the chosen
/// entry's name.
fn stale_dependents(catalog: &Catalog, rows: &[MappingRow], lookups: &Lookups) -> Vec<(usize, String, String, String)> {
    rows.iter()
        .enumerate()
        .filter_map(|(index, row)| {
            let def = catalog.field(&row.field)?;
            let parent = catalog.field(def.parent.as_deref()?)?;
            let id: i64 = row.value.trim().parse().ok()?;
            let parent_id = chosen(rows, &parent.key)?;
            let entries = lookups.loaded_choices(&def.key, parent_id)?;
            if entries.iter().any(|item| item.id == id) {
                return None;
            }
            let parent_name = lookups.choices(&parent.key, None).iter().find(|p| p.id == parent_id)?.name.clone();
            Some((index, def.label.to_string(), parent.label.to_string(), parent_name))
        })
        .collect()
}

/// "Status and Type were reset: they are not on the board "Security". …"
fn reset_sentence(labels: &[&str], parent_label: &str, parent_name: &str, system: &str) -> String {
    let (list, verb, pronoun) = match labels {
        [one] => ((*one).to_owned(), "was", "it is"),
        [init @ .., last] => (format!("{} and {last}", init.join(", ")), "were", "they are"),
        [] => return String::new(),
    };
    let parent = parent_label.to_lowercase();
    let place = if parent == "board" { "on" } else { "of" };
    format!(
        "{list} {verb} reset: {pronoun} not {place} the {parent} \"{parent_name}\". Choose again, or leave \
         {system}'s default."
    )
}

#[component]
pub fn MappingStep() -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let fetch = ServerAction::<FetchFields>::new();
    let rows = Memo::new(move |_| wizard.draft.with(|d| d.input.mapping.clone()));
    let system_name = move || wizard.system().short_label();
    let parents =
        Memo::new(move |_| wizard.catalog.with(|c| wizard.lookups.with(|l| rows.with(|r| parents(c.as_ref(), r, l)))));
    // The PSA's fields and lists, after hydration, and again only for a parent choice (a board) whose lists are
    // neither loaded nor asked for yet: each request counts against the PSA's limits.
    let asked = StoredValue::new(None::<Vec<(String, i64)>>);
    Effect::new(move |_| {
        let parents = parents.get();
        let known = asked.with_value(|a| a.as_ref().is_some_and(|a| parents.iter().all(|p| a.contains(p))));
        if !known {
            asked.set_value(Some(parents.clone()));
            fetch.dispatch(FetchFields { id: wizard.id.get_untracked(), input: wizard.input(), parents });
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(fields)) = fetch.value().get() {
            // A new integration (or one whose system was just chosen) starts from the system's suggested rows.
            if wizard.draft.with_untracked(|d| d.input.mapping.is_empty()) {
                let rows = fields.catalog.new_integration_rows();
                wizard.draft.update(|d| d.input.mapping = rows);
            }
            wizard.catalog.set(Some(fields.catalog));
            wizard.lookups.update(|l| l.merge(fields.lookups));
        }
    });
    // Switching the board resets the choices that belong to the old one, and says so.
    let reset_note = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let stale = wizard.catalog.with(|c| {
            c.as_ref().map(|c| wizard.lookups.with(|l| rows.with(|r| stale_dependents(c, r, l)))).unwrap_or_default()
        });
        let Some((_, _, parent_label, parent_name)) = stale.first().cloned() else { return };
        wizard.draft.update(|d| {
            for (index, ..) in &stale {
                if let Some(row) = d.input.mapping.get_mut(*index) {
                    row.value.clear();
                }
            }
        });
        let labels: Vec<&str> = stale.iter().map(|(_, label, ..)| label.as_str()).collect();
        reset_note.set(Some(reset_sentence(&labels, &parent_label, &parent_name, system_name())));
    });
    let reset_view = move || {
        reset_note.get().map(|note| {
            view! {
                <p class="notice notice--warning mapping-reset" role="status">
                    {note}
                    " "
                    <button type="button" class="link-button" on:click=move |_| reset_note.set(None)>
                        "Dismiss"
                    </button>
                </p>
            }
        })
    };
    let lookups_error = move || match fetch.value().get() {
        Some(Err(err)) => Some(view! {
            <p class="form-error" role="alert">
                {format!("Could not load the {} ticket fields and lists: {err}", system_name())}
            </p>
        }),
        _ => None,
    };
    // Validation on every keystroke, against the PSA's lists once they are loaded.
    let errors = Memo::new(move |_| {
        wizard.catalog.with(|c| match c {
            Some(c) => wizard.lookups.with(|l| rows.with(|r| c.validate(r, l.is_loaded().then_some(l)))),
            None => Vec::new(),
        })
    });
    let loading = move || {
        (wizard.catalog.with(Option::is_none) && fetch.pending().get()).then(|| {
            view! {
                <p class="muted" role="status">
                    {format!("Loading the {} ticket fields…", system_name())}
                </p>
            }
        })
    };
    let focused = RwSignal::new(0usize);

    let add_row = move |key: String, at: Option<usize>| {
        wizard.draft.update(|d| {
            let rows = &mut d.input.mapping;
            let row = MappingRow::new(key, "");
            match at {
                Some(at) if at <= rows.len() => rows.insert(at, row),
                _ => rows.push(row),
            }
        });
        wizard.remote_errors.set(Vec::new());
    };
    let move_row = move |from: usize, to: usize| {
        wizard.draft.update(|d| {
            let rows = &mut d.input.mapping;
            if from < rows.len() && to < rows.len() && from != to {
                let row = rows.remove(from);
                rows.insert(to, row);
            }
        });
        wizard.remote_errors.set(Vec::new());
    };
    let on_drop = move |ev: leptos::ev::DragEvent, at: Option<usize>| {
        let Some(data) = ev.data_transfer() else { return };
        if let Ok(key) = data.get_data(FIELD_MIME)
            && !key.is_empty()
        {
            ev.prevent_default();
            add_row(key, at);
        } else if let Ok(from) = data.get_data(ROW_MIME)
            && let Ok(from) = from.parse::<usize>()
        {
            ev.prevent_default();
            move_row(from, at.unwrap_or(usize::MAX).min(rows.with_untracked(Vec::len).saturating_sub(1)));
        }
    };

    view! {
        <StepTitle number=5>{move || format!("Map Dark Web ID tokens to {} ticket fields", system_name())}</StepTitle>
        <p class="muted">
            "Each row fills one field of the ticket. Type text, insert tokens, and watch the preview: it is rendered "
            "from a sample compromise exactly as tickets will be."
        </p>
        {lookups_error}
        {loading}
        {reset_view}
        <div class="mapping">
            <div class="mapping__rows">
                <ol
                    class="mapping-list"
                    aria-label="Field mapping"
                    on:dragover=move |ev| {
                        if carries_ours(&ev) {
                            ev.prevent_default();
                        }
                    }
                    on:drop=move |ev| on_drop(ev, None)
                >
                    {move || {
                        let count = rows.with(Vec::len);
                        (0..count)
                            .map(|index| {
                                view! {
                                    <MappingRowView
                                        index
                                        errors
                                        focused
                                        on_drop=Callback::new(move |ev: leptos::ev::DragEvent| on_drop(ev, Some(index)))
                                    />
                                }
                            })
                            .collect_view()
                    }}
                    <li class="mapping-list__drop" aria-hidden="true">"Drop a field here to add it"</li>
                </ol>
                <FormLevelErrors errors/>
                <SaveBar errors/>
            </div>
            <aside class="mapping__palettes">
                <FieldPalette add_row=Callback::new(move |key: String| add_row(key, None))/>
                <TokenPalette focused/>
            </aside>
        </div>
        <StepNav number=5 hide_next=true/>
    }
}

#[component]
fn MappingRowView(
    index: usize,
    errors: Memo<Vec<RowError>>,
    focused: RwSignal<usize>,
    on_drop: Callback<leptos::ev::DragEvent>,
) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let row = Memo::new(move |_| wizard.draft.with(|d| d.input.mapping.get(index).cloned()));
    let key = move || row.with(|r| r.as_ref().map(|r| r.field.clone()).unwrap_or_default());
    let def = move || wizard.catalog.with(|c| c.as_ref().and_then(|c| c.field(&key()).cloned()));
    let label = move || def().map(|d| d.label.to_string()).unwrap_or_else(key);
    let system_name = move || wizard.system().short_label();
    let required = move || def().is_some_and(|d| d.required);
    let set_value = move |value: String| {
        wizard.draft.update(|d| {
            if let Some(row) = d.input.mapping.get_mut(index) {
                row.value = value;
            }
        });
        wizard.remote_errors.update(|e| e.retain(|err| err.row != index));
    };
    let remove = move |_| {
        wizard.draft.update(|d| {
            if index < d.input.mapping.len() {
                d.input.mapping.remove(index);
            }
        });
        wizard.remote_errors.set(Vec::new());
    };
    let row_errors = move || {
        let mut messages: Vec<String> =
            errors.with(|e| e.iter().filter(|e| e.row == index).map(|e| e.message.clone()).collect());
        wizard.remote_errors.with(|e| messages.extend(e.iter().filter(|e| e.row == index).map(|e| e.message.clone())));
        messages
    };
    let sample = Compromise::sample();
    let preview_view = move || {
        let row = row.get()?;
        let def = def()?;
        if def.kind == FieldKind::Company {
            let text = format!("Set automatically to the organization's matched {} company.", system_name());
            return Some(view! { <p class="preview preview--auto">{text}</p> }.into_any());
        }
        if def.kind == FieldKind::Reference {
            return None;
        }
        let p = wizard.catalog.with(|c| c.as_ref().and_then(|c| c.preview(&row, &sample).ok()))?;
        let cut_note = format!("Cut to fit {}'s maximum", system_name());
        let over_note = format!("The struck-out end is cut to fit {}'s maximum length.", system_name());
        let over = p.is_cut();
        Some(
            view! {
                <div class="preview">
                    <div class="preview__head">
                        <span class="preview__label">"Preview"</span>
                        <span class=if over { "preview__counter preview__counter--over" } else { "preview__counter" }>
                            {p.counter()}
                        </span>
                    </div>
                    <p class="preview__text">
                        {p.text.clone()}
                        {p.cut.clone().map(|cut| view! { <del class="preview__cut" title=cut_note>{cut}</del> })}
                    </p>
                    {over.then(|| view! { <p class="preview__note">{over_note}</p> })}
                </div>
            }
            .into_any(),
        )
    };
    let editor = move || {
        let def = def()?;
        let id = value_id(index);
        // Announced by the control itself (the label's asterisk is for the eye).
        let aria_required = def.required.then_some("true");
        let value = move || row.with(|r| r.as_ref().map(|r| r.value.clone()).unwrap_or_default());
        Some(match def.kind {
            FieldKind::Company => view! {
                <input id=id type="text" value="Automatic" disabled class="input--auto"/>
            }
            .into_any(),
            FieldKind::Reference => {
                let required = def.required;
                let choices = move || {
                    let mut list = wizard.lookups.with(|l| wizard.draft.with(|d| options(&def, l, &d.input.mapping)));
                    let current = value();
                    if let Ok(id) = current.trim().parse::<i64>()
                        && !list.iter().any(|i| i.id == id)
                    {
                        // Not (yet) among the loaded entries: keep it visible rather than show another choice.
                        list.push(LookupItem { id, name: format!("#{id}") });
                    }
                    list
                };
                view! {
                    <select
                        id=id
                        aria-required=aria_required
                        prop:value=value
                        on:change=move |ev| set_value(event_target_value(&ev))
                        on:focus=move |_| focused.set(index)
                    >
                        <option value="">
                            {move || {
                                if required { "Choose…".to_owned() } else { format!("{} default", system_name()) }
                            }}
                        </option>
                        {move || {
                            let current = value();
                            choices()
                                .into_iter()
                                .map(|item| {
                                    let selected = item.id.to_string() == current;
                                    view! { <option value=item.id.to_string() selected=selected>{item.name}</option> }
                                })
                                .collect_view()
                        }}
                    </select>
                }
                .into_any()
            }
            FieldKind::LongText => view! {
                <textarea
                    id=id
                    aria-required=aria_required
                    rows="6"
                    prop:value=value
                    on:input=move |ev| set_value(event_target_value(&ev))
                    on:focus=move |_| focused.set(index)
                ></textarea>
            }
            .into_any(),
            FieldKind::Text | FieldKind::Email | FieldKind::Date | FieldKind::Number => view! {
                <input
                    id=id
                    aria-required=aria_required
                    type="text"
                    prop:value=value
                    on:input=move |ev| set_value(event_target_value(&ev))
                    on:focus=move |_| focused.set(index)
                />
            }
            .into_any(),
        })
    };
    let kind_label = move || {
        def().map(|d| {
            let mut text = d.kind.label().to_string();
            if let Some(max) = d.max_len {
                text.push_str(&format!(", max {max}"));
            }
            text
        })
    };
    view! {
        <li
            class="mapping-row"
            class:mapping-row--error=move || !row_errors().is_empty()
            on:dragover=move |ev: leptos::ev::DragEvent| {
                if carries_ours(&ev) {
                    ev.prevent_default();
                }
            }
            on:drop=move |ev: leptos::ev::DragEvent| {
                on_drop.run(ev.clone());
                ev.stop_propagation();
            }
        >
            <div class="mapping-row__head">
                <span
                    class="mapping-row__handle"
                    draggable="true"
                    title="Drag to reorder"
                    aria-hidden="true"
                    on:dragstart=move |ev: leptos::ev::DragEvent| {
                        if let Some(data) = ev.data_transfer() {
                            let _ = data.set_data(ROW_MIME, &index.to_string());
                            data.set_effect_allowed("move");
                        }
                    }
                >
                    "⠿"
                </span>
                <label class="mapping-row__label" for=value_id(index)>{label}</label>
                {move || required().then(|| view! { <span class="required" title="Required" aria-hidden="true">"*"</span> })}
                <span class="mapping-row__kind">{kind_label}</span>
                <button
                    type="button"
                    class="link-button link-button--danger mapping-row__remove"
                    aria-label=move || format!("Remove {}", label())
                    on:click=remove
                >
                    "Remove"
                </button>
            </div>
            {editor}
            {preview_view}
            {move || {
                row_errors()
                    .into_iter()
                    .map(|message| view! { <p class="form-error form-error--row" role="alert">{message}</p> })
                    .collect_view()
            }}
        </li>
    }
}

#[component]
fn FormLevelErrors(errors: Memo<Vec<RowError>>) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    move || {
        let mut messages: Vec<String> =
            errors.with(|e| e.iter().filter(|e| e.is_form_level()).map(|e| e.message.clone()).collect());
        wizard
            .remote_errors
            .with(|e| messages.extend(e.iter().filter(|e| e.is_form_level()).map(|e| e.message.clone())));
        messages.into_iter().map(|m| view! { <p class="form-error" role="alert">{m}</p> }).collect_view()
    }
}

/// "Available ConnectWise Fields": drag one onto the mapping, or choose it and press "Add field".
#[component]
fn FieldPalette(add_row: Callback<String>) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let chosen = RwSignal::new(String::new());
    let unused = move || {
        let used: Vec<String> = wizard.draft.with(|d| d.input.mapping.iter().map(|r| r.field.clone()).collect());
        wizard.catalog.with(|c| {
            c.iter()
                .flat_map(|c| c.fields.iter())
                .filter(|f| !used.iter().any(|u| *u == f.key))
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    view! {
        <section class="palette" aria-labelledby="field-palette-title">
            <h3 id="field-palette-title">
                {move || format!("Available {} Fields", wizard.system().short_label())}
            </h3>
            <div class="palette__add">
                <label for="add-field">"Add field"</label>
                <div class="inline-form">
                    <select id="add-field" prop:value=move || chosen.get() on:change=move |ev| chosen.set(event_target_value(&ev))>
                        <option value="">"Choose a field…"</option>
                        {move || {
                            unused()
                                .into_iter()
                                .map(|f| view! { <option value=f.key.to_string()>{f.label.to_string()}</option> })
                                .collect_view()
                        }}
                    </select>
                    <button
                        type="button"
                        class="button"
                        on:click=move |_| {
                            let key = chosen.get();
                            if !key.is_empty() {
                                add_row.run(key);
                                chosen.set(String::new());
                            }
                        }
                    >
                        "Add field"
                    </button>
                </div>
            </div>
            <ul class="palette__list">
                {move || {
                    unused()
                        .into_iter()
                        .map(|f| {
                            let key = f.key.to_string();
                            let drag_key = key.clone();
                            view! {
                                <li
                                    class="palette__item"
                                    draggable="true"
                                    data-field=key
                                    title=f.help.to_string()
                                    on:dragstart=move |ev: leptos::ev::DragEvent| {
                                        if let Some(data) = ev.data_transfer() {
                                            let _ = data.set_data(FIELD_MIME, &drag_key);
                                            data.set_effect_allowed("copy");
                                        }
                                    }
                                >
                                    <span class="palette__name">{f.label.to_string()}</span>
                                    <span class="palette__meta">
                                        {f.kind.label()}
                                        {f.max_len.map(|m| format!(" · max {m}"))}
                                        {f.required.then_some(" · required")}
                                    </span>
                                </li>
                            }
                        })
                        .collect_view()
                }}
            </ul>
        </section>
    }
}

/// "Available Dark Web ID Tokens": click one to insert it at the cursor of the value being edited, or drag it onto
/// a value.
#[component]
fn TokenPalette(focused: RwSignal<usize>) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let insert = move |token: String| {
        let index = focused.get_untracked();
        let (start, end) = selection(index);
        wizard.draft.update(|d| {
            if let Some(row) = d.input.mapping.get_mut(index) {
                let chars: Vec<char> = row.value.chars().collect();
                let start = start.unwrap_or(chars.len()).min(chars.len());
                let end = end.unwrap_or(start).clamp(start, chars.len());
                let mut value: String = chars[..start].iter().collect();
                value.push_str(&token);
                value.extend(&chars[end..]);
                row.value = value;
                restore_caret(index, start + token.chars().count());
            }
        });
    };
    view! {
        <section class="palette" aria-labelledby="token-palette-title">
            <h3 id="token-palette-title">"Available Dark Web ID Tokens"</h3>
            <p class="muted palette__hint">"Click a token to insert it where the cursor is, or drag it onto a value."</p>
            <ul class="palette__list">
                {TOKENS
                    .iter()
                    .map(|t| {
                        let text = format!("[{}]", t.name);
                        let drag_text = text.clone();
                        let click_text = text.clone();
                        view! {
                            <li class="palette__token">
                                <button
                                    type="button"
                                    class="token"
                                    draggable="true"
                                    on:mousedown=move |ev| ev.prevent_default()
                                    on:click=move |_| insert(click_text.clone())
                                    on:dragstart=move |ev: leptos::ev::DragEvent| {
                                        if let Some(data) = ev.data_transfer() {
                                            let _ = data.set_data("text/plain", &drag_text);
                                            data.set_effect_allowed("copy");
                                        }
                                    }
                                >
                                    {text}
                                </button>
                                <span class="palette__meta">{t.description}</span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        </section>
    }
}

/// The selection (in characters) of a value input or textarea.
fn selection(index: usize) -> (Option<usize>, Option<usize>) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let Some(element) =
            web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(&value_id(index)))
        else {
            return (None, None);
        };
        let (start, end, value) = if let Some(input) = element.dyn_ref::<web_sys::HtmlInputElement>() {
            (input.selection_start().ok().flatten(), input.selection_end().ok().flatten(), input.value())
        } else if let Some(area) = element.dyn_ref::<web_sys::HtmlTextAreaElement>() {
            (area.selection_start().ok().flatten(), area.selection_end().ok().flatten(), area.value())
        } else {
            (None, None, String::new())
        };
        // The browser counts UTF-16 units; the draft counts characters.
        let to_chars = |units: u32| {
            let mut count = 0usize;
            let mut seen = 0u32;
            for c in value.chars() {
                if seen >= units {
                    break;
                }
                seen += c.len_utf16() as u32;
                count += 1;
            }
            count
        };
        (start.map(to_chars), end.map(to_chars))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = index;
        (None, None)
    }
}

/// Puts the cursor after an inserted token, once the new value is on the page.
fn restore_caret(index: usize, chars: usize) {
    #[cfg(feature = "hydrate")]
    request_animation_frame(move || {
        use wasm_bindgen::JsCast;
        let Some(element) =
            web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(&value_id(index)))
        else {
            return;
        };
        let apply = |value: String| {
            let units: u32 = value.chars().take(chars).map(|c| c.len_utf16() as u32).sum();
            units
        };
        if let Some(input) = element.dyn_ref::<web_sys::HtmlInputElement>() {
            let units = apply(input.value());
            let _ = input.focus();
            let _ = input.set_selection_range(units, units);
        } else if let Some(area) = element.dyn_ref::<web_sys::HtmlTextAreaElement>() {
            let units = apply(area.value());
            let _ = area.focus();
            let _ = area.set_selection_range(units, units);
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (index, chars);
}

/// "Save" and "Save and Submit a Test Compromise".
#[component]
fn SaveBar(errors: Memo<Vec<RowError>>) -> impl IntoView {
    let wizard = expect_context::<Wizard>();
    let save = ServerAction::<SaveIntegration>::new();
    let test = ServerAction::<SaveAndSubmitTest>::new();
    let navigate = leptos_router::hooks::use_navigate();
    // Set by a click on Save while rows have problems; the message goes once they are fixed.
    let attempted = RwSignal::new(false);
    let ready = move || {
        attempted.set(true);
        errors.with(Vec::is_empty)
    };
    // Saved: forget the draft and go back to the table.
    Effect::new({
        let navigate = navigate.clone();
        move |_| {
            if let Some(Ok(_)) = save.value().get() {
                wizard.clear_storage();
                navigate("/integrations", Default::default());
            }
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(outcome)) = test.value().get() {
            let (id, remote) = match &outcome {
                TestOutcome::Created { integration_id, .. } => (*integration_id, Vec::new()),
                TestOutcome::Rejected { integration_id, row_errors, .. } => (*integration_id, row_errors.clone()),
            };
            wizard.id.set(Some(id));
            wizard.remote_errors.set(remote);
            // Saved on the server now: the keys are stored there, and a reload of this page updates it.
            wizard.draft.update(|d| {
                d.credentials_set = true;
                d.saved_id = Some(id);
            });
        }
    });
    let outcome = move || {
        test.value().get().map(|result| match result {
            Ok(TestOutcome::Created { ticket_id, organization, summary, .. }) => view! {
                <div class="notice notice--success" role="status">
                    <strong>
                        {format!("Saved. Test ticket #{ticket_id} created in {}", wizard.system().short_label())}
                    </strong>
                    {format!(" for {organization}: “{summary}”.")}
                    " "
                    <a href="/integrations">"Back to Integrations"</a>
                </div>
            }
            .into_any(),
            Ok(TestOutcome::Rejected { message, .. }) => view! {
                <div class="notice notice--error" role="alert">
                    <strong>"Saved, but the test ticket was not created. "</strong>
                    {message}
                </div>
            }
            .into_any(),
            Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
        })
    };
    let save_error = move || match save.value().get() {
        Some(Err(err)) => Some(view! { <p class="form-error" role="alert">{err.to_string()}</p> }),
        _ => None,
    };
    // Nothing to save before the system's fields are known (the mapping is checked against them).
    let busy = move || save.pending().get() || test.pending().get() || wizard.catalog.with(Option::is_none);
    view! {
        <div class="save-bar">
            <button
                type="button"
                class="button button--primary"
                disabled=busy
                on:click=move |_| {
                    if ready() {
                        save.dispatch(SaveIntegration { id: wizard.id.get_untracked(), input: wizard.input() });
                    }
                }
            >
                "Save"
            </button>
            <button
                type="button"
                class="button"
                disabled=busy
                on:click=move |_| {
                    if ready() {
                        test.dispatch(SaveAndSubmitTest { id: wizard.id.get_untracked(), input: wizard.input() });
                    }
                }
            >
                {move || if test.pending().get() { "Submitting…" } else { "Save and Submit a Test Compromise" }}
            </button>
        </div>
        {move || (attempted.get() && !errors.with(Vec::is_empty)).then(|| view! {
            <p class="form-error" role="alert">"Fix the problems marked on the rows above before saving."</p>
        })}
        {save_error}
        {outcome}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn item(id: i64, name: &str) -> LookupItem {
        LookupItem { id, name: name.to_owned() }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn switching_the_board_leaves_the_old_boards_choices_stale() {
        let lookups = Lookups {
            lists: BTreeMap::from([("board".to_owned(), vec![item(1, "Service A"), item(2, "Security")])]),
            dependent: BTreeMap::from([
                ("status".to_owned(), BTreeMap::from([(1, vec![item(11, "New")]), (2, vec![item(21, "Open")])])),
                ("type".to_owned(), BTreeMap::from([(1, vec![item(31, "Incident")]), (2, vec![])])),
            ]),
        };
        let rows = |board: &str| {
            vec![MappingRow::new("board", board), MappingRow::new("status", "11"), MappingRow::new("type", "31")]
        };
        let catalog = crate::connectwise::catalog::catalog();
        assert!(stale_dependents(&catalog, &rows("1"), &lookups).is_empty());
        let status = catalog.field("status").expect("status");
        assert_eq!(options(status, &lookups, &rows("2")), vec![item(21, "Open")]);
        let stale = stale_dependents(&catalog, &rows("2"), &lookups);
        assert_eq!(stale.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(
            reset_sentence(&["Status", "Type"], "Board", "Security", "ConnectWise"),
            "Status and Type were reset: they are not on the board \"Security\". Choose again, or leave \
             ConnectWise's default."
        );
        assert!(reset_sentence(&["Item"], "Board", "X", "ConnectWise").starts_with("Item was reset: it is not"));
        assert_eq!(
            reset_sentence(&["Sub-issue type"], "Issue type", "Security", "Autotask"),
            "Sub-issue type was reset: it is not of the issue type \"Security\". Choose again, or leave Autotask's \
             default."
        );
        // A board whose lists are not loaded yet resets nothing.
        assert!(stale_dependents(&catalog, &rows("3"), &lookups).is_empty());
        assert_eq!(parents(Some(&catalog), &rows("2"), &lookups), vec![("board".to_owned(), 2)]);
        assert_eq!(parents(None, &rows("2"), &lookups).len(), 3, "before the catalog, every choice");
        let mut loaded = lookups.clone();
        for key in ["subType", "item"] {
            loaded.dependent.insert(key.to_owned(), BTreeMap::from([(1, vec![]), (2, vec![])]));
        }
        assert!(parents(Some(&catalog), &rows("2"), &loaded).is_empty(), "every list of board 2 is loaded");
    }
}
