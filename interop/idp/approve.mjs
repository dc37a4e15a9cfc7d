// A person at Warden's consent page, in a real browser (Debian's Chromium driven by
// playwright-core): opens the consent link, signs in at the identity provider when asked, and
// answers — or only looks. Screenshots of the page go where `screenshots` says.
//
// As a module: `import { approve } from "./approve.mjs"`;
//   await approve(url, { user: "alice", decision: "once" | "for" | "deny" | null, minutes, screenshots })
//   → { page: "ask" | "message", title, text, status, url }
// `decision: null` only opens the page (to see who may see it). Set `tamper` to
// "no-csrf" | "bad-csrf" to post the form without or with a wrong CSRF token.

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
      // Post the form as another site would: the CSRF token missing or wrong.
      const result = await page.evaluate(async ({ tamper, decision }) => {
        const form = document.querySelector("form.choices");
        const body = new URLSearchParams();
        if (tamper === "bad-csrf") body.set("csrf", "x".repeat(22));
        body.set("decision", decision);
        const r = await fetch(form.action, { method: "POST", body, credentials: "include" });
        return { status: r.status, text: await r.text() };
      }, { tamper, decision });
      return { page: "message", status: result.status, text: result.text, url: page.url() };
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
