// A person at Warden's consent page, in a real browser (Debian's Chromium driven by
// playwright-core): opens the consent link, signs in at the identity provider when asked, and
// answers — or only looks. Screenshots of the page go where `screenshots` says.
//
// As a module: `import { approve } from "./approve.mjs"`;
//   await approve(url, { user: "alice", decision: "once" | "for" | "deny" | null, minutes, screenshots })
//   → { page: "ask" | "message", title, text, status, url }
// `decision: null` only opens the page (to see who may see it). Set `tamper` to
// "no-csrf" | "bad-csrf" to post the form without or with a wrong CSRF token.

import { pathToFileURL } from "node:url";

import { launchBrowser } from "./login.mjs";

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

export async function approve(url, { user, decision = "once", minutes, screenshots, tamper, password = "any-password", timeoutMs = 20000 } = {}) {
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(timeoutMs);
    await context.route((u) => !LOOPBACK.has(u.hostname), (route) => route.abort());
    const page = await context.newPage();
    const trail = [];
    page.on("response", (r) => trail.push(`${r.status()} ${r.request().method()} ${r.url()}`));
    const warden = new URL(url).origin;
    let response = await page.goto(url);
    // At the identity provider: the login form, then its consent form, until back at Warden.
    for (let forms = 0; new URL(page.url()).origin !== warden; forms++) {
      if (forms > 4) throw new Error(`sign-in did not come back to Warden: ${page.url()}`);
      const prompt = await page.locator("form input[name=prompt]").getAttribute("value", { timeout: 5000 }).catch(() => null);
      if (prompt === "login") {
        await page.fill("input[name=login]", user);
        await page.fill("input[name=password]", password);
      } else if (!prompt) {
        throw new Error(`the provider stopped at ${page.url()}: ${(await page.locator("body").innerText()).slice(0, 300)}`);
      }
      const [r] = await Promise.all([page.waitForNavigation(), page.click("form button[type=submit]")]);
      response = r ?? response;
    }
    await page.waitForLoadState("load");
    const status = response?.status() ?? 0;
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
    if (decision === "for" && minutes !== undefined) await page.fill("input[name=minutes]", String(minutes));
    const button = page.locator(`form.choices button[value=${decision}]`);
    const [answer] = await Promise.all([page.waitForNavigation(), button.click()]);
    return { ...(await describe(page, "message", answer?.status() ?? 0)), trail };
  } finally {
    await browser.close();
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
