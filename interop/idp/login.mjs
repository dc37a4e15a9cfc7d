// Signs a user in at the identity provider with a real browser: Debian's Chromium driven by
// playwright-core. Opens an authorization URL, fills the login form, approves the consent form
// and returns the URL the provider redirected to (with `code`, `state`, `iss`, or an `error`).
// The redirect is caught in the browser, so nothing has to listen at the client's redirect URI.
//
// As a module: `import { login } from "./login.mjs"; const url = await login(authUrl, "alice")`.
// As a script: node idp/login.mjs AUTHORIZATION_URL USERNAME [PASSWORD]
//   prints {"redirect": "<url>"} on stdout, or {"fatal": "..."} with exit status 1.

import { pathToFileURL } from "node:url";

import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** The steps a sign-in may take: login form, consent form, redirect. More means it is looping. */
const MAX_FORMS = 4;

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export async function login(authorizationUrl, username, { password = "any-password", timeoutMs = 20000 } = {}) {
  const redirectUri = new URL(authorizationUrl).searchParams.get("redirect_uri");
  if (!redirectUri) throw new Error("the authorization URL has no redirect_uri");
  const target = new URL(redirectUri);
  const isRedirect = (url) => url.origin === target.origin && url.pathname === target.pathname;

  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(timeoutMs);
    // Loopback only (the provider's pages link a web font).
    await context.route((url) => !LOOPBACK.has(url.hostname), (route) => route.abort());
    const page = await context.newPage();
    // The redirect is seen as the browser requests it: nothing needs to listen there (a
    // redirected request cannot be intercepted, and a refused connection changes nothing).
    let redirected;
    const caught = new Promise((resolve) => {
      page.on("request", (request) => {
        if (!redirected && isRedirect(new URL(request.url()))) resolve((redirected = request.url()));
      });
    });
    await page.goto(authorizationUrl);
    for (let forms = 0; !redirected; forms++) {
      const prompt = await page.locator("form input[name=prompt]").getAttribute("value", { timeout: 1000 }).catch(() => null);
      if (redirected) break;
      if (!prompt || forms === MAX_FORMS) {
        const text = (await page.locator("body").innerText().catch(() => "")).trim().slice(0, 500);
        throw new Error(`sign-in stopped at ${page.url()} (${prompt ? "still asking: " + prompt : "no form"}): ${text}`);
      }
      if (prompt === "login") {
        await page.fill("input[name=login]", username);
        await page.fill("input[name=password]", password);
      }
      // Each form post ends in a new page (the next form or an error) or in the redirect.
      const before = page.url();
      await Promise.all([Promise.race([caught, page.waitForURL((url) => url.href !== before)]), page.click("form button[type=submit]")]);
    }
    return redirected;
  } finally {
    await browser.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [url, username, password] = process.argv.slice(2);
  if (!url || !username) {
    console.error("usage: node idp/login.mjs AUTHORIZATION_URL USERNAME [PASSWORD]");
    process.exit(2);
  }
  login(url, username, { password }).then(
    (redirect) => process.stdout.write(JSON.stringify({ redirect }) + "\n"),
    (e) => {
      process.stdout.write(JSON.stringify({ fatal: String(e?.message ?? e) }) + "\n");
      process.exit(1);
    },
  );
}
