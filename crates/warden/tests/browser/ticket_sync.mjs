// Ticket sync in Chromium: a maintainer opens the Tickets tab of a workspace synced with a
// GitHub repository (a stub of GitHub's API), sees how the sync stands and asks for a run,
// opens a ticket imported from an issue — its link to the issue and the comment written on
// GitHub — and writes a comment of their own, which the next sync sends to GitHub. Every page
// checked for console errors, CSP violations and axe findings, and photographed.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… WORKSPACE=… SHOTS=dir node ticket_sync.mjs

import { launch, signIn, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, WORKSPACE: ws, SHOTS: shots } = process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  const page = watch(await context.newPage());
  const check = (name) => checkPage(page, name);

  step("sign in and open the synced workspace's Tickets tab");
  await signIn(page, base, email, password);
  await page.goto(`${base}/console/workspaces/${ws}/tickets`);
  summary.sync_heading = (await page.locator("#sync-h").textContent()).trim();
  summary.sync_facts = await page.locator("section[aria-labelledby=sync-h] dd").allTextContents();

  step("ask for a sync now");
  await page.click("section[aria-labelledby=sync-h] button:text-is('Sync now')");
  await page.waitForURL(/done=sync-requested/);
  summary.notice = (await page.locator("p.notice").textContent()).trim();
  await page.waitForTimeout(1500);
  await page.reload();
  summary.list = await page.locator("section[aria-labelledby=tickets-h] li").allTextContents();
  await check("tickets-synced");

  step("open the imported ticket: its issue and the comment from GitHub");
  await page.click("section[aria-labelledby=tickets-h] li a >> nth=0");
  await page.waitForURL(/\/tickets\/1$/);
  summary.tracker_link = await page.locator("dl.facts a").getAttribute("href");
  summary.comments = await page.locator("ul.comments li").allTextContents();
  await check("ticket-imported");

  step("write a comment");
  await page.fill("textarea[name=body]", "I will take this one — **today**.");
  await page.click("button:text-is('Comment')");
  await page.waitForURL(/done=comment-written/);
  summary.after = await page.locator("ul.comments li").allTextContents();
  summary.bold = await page.locator("ul.comments li strong").allTextContents();
  await check("ticket-commented");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
