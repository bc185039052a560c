// An organization's admin in Chromium: switches into Acme from the header, finds
// Organization in the navigation, sees Acme's members, usage and audit events, and sets its
// email domains. Checked and photographed like every walk-through.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… SHOTS=dir node organization_admin.mjs

import { launch, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, SHOTS: shots } = process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  const page = watch(await context.newPage(), []);
  const check = (name) => checkPage(page, name);

  step("sign in in the default organization: no Organization page to offer");
  await page.goto(`${base}/sign-in`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("text=Sign in with password");
  await page.waitForURL(`${base}/console`);
  summary.nav_before = await page.locator("nav a", { hasText: "Organization" }).count();

  step("switch to Acme: Organization appears");
  await page.goto(`${base}/console/workspaces`);
  await page.selectOption("#org-switch", { label: "Acme Corp" });
  await page.click("form.org-switch button");
  await page.waitForURL(/done=org-switched/);
  await page.click("nav >> text=Organization");
  await page.waitForURL(`${base}/console/org`);
  summary.heading = (await page.locator("h1").textContent()).replace(/\s+/g, " ").trim();
  summary.members = await page.locator("#members-h + div table tbody td:first-child").allTextContents();
  summary.usage = await page.locator("#usage-h + div table tbody td:first-child").allTextContents();
  summary.events = await page.locator("ol.events li strong").allTextContents();
  await check("org-admin");

  step("set the email domains");
  await page.fill("input[name=email_domains]", "acme.example, ACME.test");
  await page.click("text=Save settings");
  await page.waitForURL(/done=settings-saved/);
  summary.notice = await page.locator("p.notice").textContent();
  summary.domains = await page.locator("input[name=email_domains]").inputValue();
  summary.limit_field = await page.locator("input[name=max_workspaces]").count();
  summary.events_after = await page.locator("ol.events li strong").allTextContents();
  await check("org-settings-saved");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
