//! The frame around every page: header with navigation and live status, main area, footer.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::ui::components::ConnectionIndicator;

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="site-header">
            <div class="site-header__inner">
                <A href="/" attr:class="brand">
                    <img src="/favicon.svg" alt="" width="28" height="28"/>
                    <span>"Tidings"</span>
                </A>
                <nav class="site-nav" aria-label="Main">
                    <A href="/" exact=true>"Dashboard"</A>
                </nav>
                <ConnectionIndicator/>
            </div>
        </header>
        <main id="main" class="site-main">{children()}</main>
        <footer class="site-footer">
            <p>"Tidings " {crate::VERSION} " · background work you can watch"</p>
        </footer>
    }
}
