// Bots in Chromium: a maintainer opens the workspace's Bots tab, makes a bot, writes to it,
// and sees its answer arrive in the conversation. Every page checked for console errors, CSP
// violations and axe findings, and photographed.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… WORKSPACE=… SHOTS=dir node bots.mjs

import { launch, signIn, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, WORKSPACE: ws, SHOTS: shots } = process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  const page = watch(await context.newPage());
  const check = (name) => checkPage(page, name);

  step("sign in and open the Bots tab");
  await signIn(page, base, email, password);
  await page.goto(`${base}/console/workspaces/${ws}/bots`);
  summary.tabs = await page.locator("nav.tabs a").allTextContents();
  await check("bots-empty");

  step("make a bot and write to it");
  await page.fill("form[action$='/bots'] input[name=name]", "Release helper");
  await page.selectOption("form[action$='/bots'] select[name=provider]", "codex");
  await page.fill("form[action$='/bots'] textarea[name=instructions]", "You answer questions about releases.");
  await page.click("button:text-is('Make bot')");
  await page.waitForURL(/bots\/.*done=bot-created/);
  await check("bot-made");
  await page.fill("textarea[name=message]", "How do I cut a release?");
  await page.click("button:text-is('Send')");
  await page.waitForURL(/done=bot-message-sent/);
  await check("bot-message-queued");

  step("its answer arrives");
  for (let i = 0; i < 60; i++) {
    if ((await page.locator("ul.messages li").first().textContent()).includes("answered")) break;
    await new Promise((r) => setTimeout(r, 250));
    await page.reload();
  }
  summary.conversation = (await page.locator("ul.messages").textContent()).replace(/\s+/g, " ").trim();
  await check("bot-answered");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
