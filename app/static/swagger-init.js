// Starts Swagger UI on /docs. This is a file rather than the inline script of flask-swagger-ui's
// own page because the page CSP (script-src 'self') allows no inline code.
'use strict';

(() => {
  const root = document.getElementById('swagger-ui');

  // Swagger UI leaves some form controls without a name (the request body, the examples picker,
  // parameter fields), so a screen reader would announce only "edit text". Each gets the name of
  // what Swagger UI shows beside it, as it is rendered.
  function nameFor(control) {
    if (control.matches('.body-param__text')) return 'Request body';
    if (control.matches('.examples-select-element')) return 'Example';
    const parameter = control.closest('tr[data-param-name]');
    if (parameter) return `Parameter ${parameter.dataset.paramName}`;
    return control.getAttribute('placeholder') || control.getAttribute('title');
  }

  function fixAccessibility() {
    for (const control of root.querySelectorAll('input:not([type="hidden"]), select, textarea')) {
      if (control.labels.length || control.hasAttribute('aria-label') || control.hasAttribute('aria-labelledby')) continue;
      const name = nameFor(control);
      if (name) control.setAttribute('aria-label', name);
    }
    for (const button of document.querySelectorAll('.swagger-ui button')) {
      const text = button.textContent.trim();
      const label = button.getAttribute('aria-label');
      // An icon-only button (the dialog's close cross) has no name at all.
      if (!text && !label && button.matches('.close-modal')) button.setAttribute('aria-label', 'Close');
      // "Authorize" announced as "Apply credentials": speech users say what they see, so the
      // visible word must be the name.
      if (text && label && !label.toLowerCase().includes(text.toLowerCase())) button.removeAttribute('aria-label');
    }
    // Example and response bodies scroll sideways; a keyboard user must be able to reach them.
    for (const pre of root.querySelectorAll('pre:not([tabindex])')) pre.tabIndex = 0;
  }

  new MutationObserver(fixAccessibility).observe(document.body, { childList: true, subtree: true });

  window.SwaggerUIBundle({
    url: 'openapi.json',
    dom_id: '#swagger-ui',
    presets: [window.SwaggerUIBundle.presets.apis],
    // BaseLayout: no top bar for loading other documents; this page describes this server only.
    layout: 'BaseLayout',
    // Deep links put a link inside each operation's button (a nested control keyboards and screen
    // readers handle badly); operations stay reachable from the page itself.
    deepLinking: false,
    // The default sends the document to an outside validator; nothing here leaves this server.
    validatorUrl: null,
    // A key typed into "Authorize" lives in this page's memory only, never in localStorage.
    persistAuthorization: false,
    defaultModelsExpandDepth: 0,
    // Its colour themes put dark red on dark grey (3.4:1); plain text on dark grey reads well.
    syntaxHighlight: false,
    onComplete: () => { document.body.dataset.state = 'ready'; },
  });
})();
