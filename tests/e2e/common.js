// common.js: what the browser scripts (*.e2e.js) share: headless Debian
// chromium (E2E_CHROMIUM, else /usr/bin/chromium) launched through
// playwright-core with no downloaded browser, and their checks.
'use strict';

const { chromium } = require('playwright-core');

const CHROMIUM = process.env.E2E_CHROMIUM || '/usr/bin/chromium';

const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

// The browser; the caller closes it.
function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

function check(cond, what) {
  if (!cond)
    throw new Error('check failed: ' + what);
}

// The selector of the element with data-testid="id".
const tid = (id) => '[data-testid="' + id + '"]';

module.exports = { launch, check, tid };
