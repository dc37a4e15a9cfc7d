// A person at Warden's consent page, in a real browser (Debian's Chromium driven by
// playwright-core): opens the consent link, signs in at the identity provider when asked, and
// answers — or only looks. Screenshots of the page go where `screenshots` says.
//
// As a module: `import { approve } from "./approve.mjs"`;
//   await approve(url, { user: "alice", decision: "once" | "for" | "deny" | "connect" | null, minutes, screenshots })
//   → { page: "ask" | "message", title, text, status, url }
// `decision` may be a list: the first one the page offers is chosen. "connect" answers a request
// to connect an account: it signs in at the service's authorization
// server as `account` (default: `user`) and approves there, back to Warden's page.
// `decision: null` only opens the page (to see who may see it). Set `tamper` to
// "no-csrf" | "bad-csrf" to post the form without or with a wrong CSRF token.

import { pathToFileURL } from "node:url";

import { launchBrowser } from "./login.mjs";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export async function approve(url, { user, account = user, decision = "once", minutes, screenshots, tamper, password = "any-password", timeoutMs = 20000 } = {}) {
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(timeoutMs);
    await context.route((u) => !LOOPBACK.has(u.hostname), (route) => route.abort());
    const page = await context.newPage();
    const trail = [];
    let status = 0; // of the last page the browser navigated to
    page.on("response", (r) => {
      trail.push(`${r.status()} ${r.request().method()} ${r.url()}`);
      const landed = r.status() < 300 || r.status() >= 400; // not a redirect on the way
      if (r.request().isNavigationRequest() && r.frame() === page.mainFrame() && landed) status = r.status();
    });
    const warden = new URL(url).origin;
    await page.goto(url);
    await throughProvider(page, warden, user, password);
    await page.waitForLoadState("load");
    const asking = (await page.locator("form.choices").count()) > 0;
    if (screenshots && asking) {
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.screenshot({ path: `${screenshots}/consent-desktop.png`, fullPage: true });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: `${screenshots}/consent-phone.png`, fullPage: true });
      await page.setViewportSize({ width: 1280, height: 900 });
    }
    if (!asking || !decision) return { ...(await describe(page, asking ? "ask" : "message", status)), trail };
    if (tamper) {
      // The form as a forger would send it: the CSRF token missing or wrong (the page's CSP
      // refuses scripts' own requests, so the form itself is changed and sent).
      await page.evaluate((tamper) => {
        const csrf = document.querySelector("form.choices input[name=csrf]");
        if (tamper === "no-csrf") csrf.remove();
        else csrf.value = "x".repeat(22);
      }, tamper);
    }
    // A list of decisions: the first one this page offers (a connect page, or a consent page).
    let chosen = null;
    for (const d of [decision].flat()) {
      if ((await page.locator(`form.choices button[value=${d}]`).count()) > 0) {
        chosen = d;
        break;
      }
    }
    if (!chosen) throw new Error(`the page offers none of ${JSON.stringify(decision)}`);
    if (chosen === "for" && minutes !== undefined) await page.fill("input[name=minutes]", String(minutes));
    const button = page.locator(`form.choices button[value=${chosen}]`);
    await Promise.all([page.waitForNavigation(), button.click()]);
    // Connecting an account: the service's own sign-in, then back at Warden.
    if (chosen === "connect") await throughProvider(page, warden, account, password);
    await page.waitForLoadState("load");
    return { ...(await describe(page, "message", status)), trail };
  } finally {
    await browser.close();
  }
}

// At an identity provider (or a service's authorization server): its login form, then its
// consent form, until the browser is back at Warden.
async function throughProvider(page, warden, user, password) {
  for (let forms = 0; new URL(page.url()).origin !== warden; forms++) {
    if (forms > 4) throw new Error(`sign-in did not come back to Warden: ${page.url()}`);
    // `warden dev`'s development provider: one button per demo user.
    const pick = page.locator(`button[name=user][value="${user}"]`);
    if ((await pick.count()) > 0) {
      await Promise.all([page.waitForURL((u) => u.origin === warden), pick.click()]);
      continue;
    }
    const prompt = await page.locator("form input[name=prompt]").getAttribute("value", { timeout: 5000 }).catch(() => null);
    if (prompt === "login") {
      await page.fill("input[name=login]", user);
      await page.fill("input[name=password]", password);
    } else if (!prompt) {
      throw new Error(`the provider stopped at ${page.url()}: ${(await page.locator("body").innerText()).slice(0, 300)}`);
    }
    await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
  }
}

async function describe(page, kind, status) {
  return {
    page: kind,
    status,
    title: (await page.locator("h1").first().innerText().catch(() => "")).trim(),
    text: (await page.locator("main").innerText().catch(() => "")).trim(),
    url: page.url(),
  };
}

// As a script: node idp/approve.mjs CONSENT_URL OPTIONS_JSON → one JSON line (or {"fatal"}).
if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [url, options = "{}"] = process.argv.slice(2);
  approve(url, JSON.parse(options)).then(
    (r) => process.stdout.write(JSON.stringify(r) + "\n"),
    (e) => {
      process.stdout.write(JSON.stringify({ fatal: String(e?.message ?? e) }) + "\n");
      process.exit(1);
    },
  );
}
