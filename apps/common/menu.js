// The menu on a phone (apps/common/layout.py): the sidebar's "»" button gets a visible label
// and an accessible name in the session's language, and choosing a page in the menu closes it
// where it covers the page (Streamlit closes it only for a phone's user agent). Installed once
// per browser tab; each rerun only updates the words (``__WORDS__``, filled in by the layout).
(() => {
  const words = __WORDS__;
  const state = window.__gjhMenu = Object.assign(window.__gjhMenu || {}, words);
  const relabel = () => {
    const open = document.querySelector('[data-testid="stExpandSidebarButton"]');
    if (open) {
      if (open.getAttribute('aria-label') !== state.open) {
        open.setAttribute('aria-label', state.open);
      }
      let label = open.querySelector('.gjh-menu-label');
      if (!label) {
        label = document.createElement('span');
        label.className = 'gjh-menu-label';
        open.appendChild(label);
      }
      if (label.textContent !== state.open) label.textContent = state.open;
    }
    const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (close && close.getAttribute('aria-label') !== state.close) {
      close.setAttribute('aria-label', state.close);
    }
  };
  relabel();
  if (state.installed) return;
  state.installed = true;
  new MutationObserver(relabel).observe(document.body, {childList: true, subtree: true});
  document.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const link = target && target.closest('[data-testid="stSidebarNav"] a');
    if (!link || window.innerWidth > state.narrow) return;
    setTimeout(() => {
      const sidebar = document.querySelector('[data-testid="stSidebar"]');
      const close = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
      if (sidebar && close && sidebar.getAttribute('data-collapsed') === 'false') close.click();
    }, 0);
  }, true);
})();
