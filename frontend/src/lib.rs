#![recursion_limit = "512"]
//! The browser entry point: hydrates the server-rendered page.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A marker the browser tests wait for before they click: event handlers are attached from here on.
    if let Some(window) = web_sys::window() {
        let _ = js_sys::Reflect::set(&window, &"__dwidHydrated".into(), &true.into());
    }
}
