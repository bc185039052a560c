// Organizations in Chromium: an administrator who may act in two organizations finds the
// switcher in the header, picks Acme, lands on Acme's workspaces (and no longer sees the
// default organization's), and switches back. Checked and photographed like every
// walk-through.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… HOME_WS=… ACME_WS=… SHOTS=dir node organizations.mjs

import { launch, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, HOME_WS: homeWs,
  ACME_WS: acmeWs, SHOTS: shots } = process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  // The other organization's workspace answers 404, on purpose.
  const page = watch(await context.newPage(), [404]);
  const check = (name) => checkPage(page, name);

  step("sign in: the default organization's workspaces, and a switcher");
  await page.goto(`${base}/sign-in`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("text=Sign in with password");
  await page.waitForURL(`${base}/console`);
  await page.goto(`${base}/console/workspaces`);
  summary.options = await page.locator("#org-switch option").allTextContents();
  summary.selected_before = await page.locator("#org-switch option:checked").textContent();
  summary.home_listed = await page.locator(`a[href*="${homeWs}"]`).count();
  await check("org-switcher-default");

  step("switch to Acme: its workspaces only");
  await page.selectOption("#org-switch", { label: "Acme Corp" });
  await page.click("form.org-switch button");
  await page.waitForURL(/done=org-switched/);
  summary.notice = await page.locator("p.notice").textContent();
  summary.selected_after = await page.locator("#org-switch option:checked").textContent();
  summary.acme_listed = await page.locator(`a[href*="${acmeWs}"]`).count();
  summary.home_listed_in_acme = await page.locator(`a[href*="${homeWs}"]`).count();
  await check("org-switched-acme");

  step("the default organization's workspace is not there for this sign-in");
  const res = await page.goto(`${base}/console/workspaces/${homeWs}`);
  summary.home_status = res.status();

  step("and back");
  await page.goto(`${base}/console/workspaces`);
  await page.selectOption("#org-switch", { label: "Default organization" });
  await page.click("form.org-switch button");
  await page.waitForURL(/done=org-switched/);
  summary.home_listed_again = await page.locator(`a[href*="${homeWs}"]`).count();
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
