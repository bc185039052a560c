// Automations in Chromium: an administrator opens a workspace's Automations tab, creates an
// event source signed like GitHub (its URL shown once), a recurring automation with a prompt
// template, runs it by hand, and sees the run and the source's counters. Every page checked
// for console errors, CSP violations and axe findings, and photographed.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… WORKSPACE=… SHOTS=dir node automations.mjs

import { launch, signIn, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, WORKSPACE: ws, SHOTS: shots } =
  process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  const page = watch(await context.newPage());
  const check = (name) => checkPage(page, name);

  step("sign in and open the workspace's Automations tab");
  await signIn(page, base, email, password);
  await page.goto(`${base}/console/workspaces/${ws}/automations`);
  summary.tabs = await page.locator("nav.tabs a").allTextContents();
  await check("automations-empty");

  step("an automation on a schedule");
  await page.fill("form[action$='/automations'] input[name=name]", "nightly review");
  await page.selectOption("select[name=kind]", "cron");
  await page.fill("input[name=cron]", "30 2 * * 1-5");
  await page.fill("input[name=timezone]", "Europe/Berlin");
  await page.fill("textarea[name=prompt]", "Review {{ event.ref }} <b>carefully</b>");
  await page.click("button:text-is('Create automation')");
  await page.waitForURL(/done=automation-created/);
  summary.created_notice = await page.locator("p.notice").textContent();
  summary.schedule = await page.locator("dl.facts dd").first().textContent();
  summary.prompt = await page.locator("dl.facts pre").textContent();
  await check("automation-created");

  step("run it now");
  await page.click("button:text-is('Run now')");
  await page.waitForURL(/done=run-queued/);
  summary.runs = await page.locator("section[aria-labelledby=runs-h] li").count();
  await check("automation-run-queued");

  step("an event source signed like GitHub, pointed at it");
  await page.goto(`${base}/console/workspaces/${ws}/automations`);
  await page.fill("form[action$='/event-sources'] input[name=name]", "github pushes");
  await page.selectOption("select[name=automation_id]", { label: "nightly review" });
  await page.fill("input[name=events]", "push");
  await page.fill("input[name=secret]", "It's a Secret to Everybody");
  await page.click("button:text-is('Create event source')");
  summary.url = await page.locator("pre.snippet").textContent();
  await check("event-source-url");
  await page.click("text=Back to the automations");
  summary.sources = await page.locator("section[aria-labelledby=sources-h] li").allTextContents();
  await check("automations-list");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
