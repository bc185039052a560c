// What every browser walk-through shares: Debian's Chromium driven by playwright-core, pages
// that report console errors, script errors and Content-Security-Policy violations as
// problems, and `check`, which photographs a page at desktop (1280×800) and phone (390×844)
// width into the screenshot directory and runs axe-core on it (serious and critical findings
// are problems). A walk-through prints its summary as the last line of its output.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export const DESKTOP = { width: 1280, height: 800 };

export const step = (name) => console.error(`step: ${name}`);

// Signs in with a password on the sign-in page and waits for the console.
export async function signIn(page, base, email, password) {
  await page.goto(`${base}/sign-in`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("text=Sign in with password");
  await page.waitForURL(`${base}/console`);
}

export async function launch(shots) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const summary = { problems: [], pages: [] };

  // A browser context whose pages report what goes wrong on them.
  const context = async () => {
    const ctx = await browser.newContext({ viewport: DESKTOP });
    // CSP violations are reported to the page as events; collect them from every document.
    await ctx.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) => {
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    return ctx;
  };
  // `allow`: the statuses of pages the walk-through opens on purpose (a refused form, a
  // closed page); the browser reports loading them as an error, which then is not a problem.
  const watch = (page, allow = []) => {
    const expected = allow.map((code) => `the server responded with a status of ${code} `);
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      if (m.text().startsWith("Failed to load resource") && expected.some((e) => m.text().includes(e))) return;
      summary.problems.push(`console error on ${page.url()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => summary.problems.push(`script error on ${page.url()}: ${e.message}`));
    return page;
  };
  const check = async (page, name) => {
    await page.screenshot({ path: `${shots}/${name}-desktop.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${shots}/${name}-phone.png`, fullPage: true });
    await page.setViewportSize(DESKTOP);
    await page.evaluate(axeSource);
    const found = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ["violations"] });
      return r.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
    });
    for (const f of found) summary.problems.push(`axe on ${name}: ${f}`);
    summary.pages.push(name);
  };
  return { browser, summary, context, watch, check };
}
