// Tickets and the MCP endpoint in Chromium: a maintainer opens the workspace's Tickets tab,
// writes a ticket whose body carries Markdown, a <script> and a javascript: link (rendered,
// the attack shown as text), moves it to ready for development and into development; turns
// the MCP endpoint on in the settings; and answers the question an agent is waiting on in its
// session's page. Every page checked for console errors, CSP violations and axe findings, and
// photographed.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… WORKSPACE=… SESSION=… SHOTS=dir node tickets.mjs

import { launch, signIn, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, WORKSPACE: ws, SESSION: sid, SHOTS: shots } =
  process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  const page = watch(await context.newPage());
  const check = (name) => checkPage(page, name);

  step("sign in and open the workspace's Tickets tab");
  await signIn(page, base, email, password);
  await page.goto(`${base}/console/workspaces/${ws}/tickets`);
  summary.tabs = await page.locator("nav.tabs a").allTextContents();
  await check("tickets-empty");

  step("write a ticket with Markdown and an attack in its body");
  await page.fill("form[action$='/tickets'] input[name=title]", "Dark mode for the dashboard");
  await page.fill(
    "form[action$='/tickets'] textarea[name=body]",
    "## Why\n\nPeople work **at night**.\n\n- follow the OS setting\n- keep contrast AA\n\n" +
      "<script>window.pwned = true</script>\n\n[details](javascript:window.pwned=true) · " +
      "[design notes](https://example.com/dark)\n",
  );
  await page.fill("form[action$='/tickets'] input[name=labels]", "ui, accessibility");
  await page.click("button:text-is('Write ticket')");
  await page.waitForURL(/\/tickets\/1\?done=ticket-created/);
  summary.heading = (await page.locator("h1").textContent()).trim();
  summary.rendered_h2 = await page.locator(".markdown h2").allTextContents();
  summary.scripts_in_body = await page.locator(".markdown script").count();
  summary.pwned = await page.evaluate(() => window.pwned === true);
  summary.link_hrefs = await page.locator(".markdown a").evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  summary.moves = await page.locator("section[aria-labelledby=move-h] button").allTextContents();
  await check("ticket-written");

  step("approve it for development, then start development without a session");
  await page.click("section[aria-labelledby=move-h] button:text-is('Approve for development')");
  await page.waitForURL(/done=ticket-moved/);
  await page.click("section[aria-labelledby=move-h] button:text-is('Start development')");
  await page.waitForURL(/done=ticket-moved/);
  summary.status = (await page.locator("dl.facts .tag").first().textContent()).trim();
  await check("ticket-in-development");
  await page.goto(`${base}/console/workspaces/${ws}/tickets`);
  summary.list = await page.locator("section[aria-labelledby=tickets-h] li").allTextContents();
  await check("tickets-list");

  step("turn the MCP endpoint on");
  await page.goto(`${base}/console/workspaces/${ws}/settings`);
  await page.check("input[name=enabled]");
  await page.click("form[action$='/settings/mcp'] button");
  await page.waitForURL(/done=mcp-saved/);
  summary.mcp_checked = await page.isChecked("input[name=enabled]");
  await check("settings-mcp-on");

  step("answer the agent's question on its session's page");
  await page.goto(`${base}/console/workspaces/${ws}/sessions/${sid}`);
  summary.question = (await page.locator("ul.messages li .body").first().textContent()).trim();
  await check("session-question");
  await page.fill("textarea[name=answer]", "Use the staging database, please.");
  await page.click("button:text-is('Answer')");
  await page.waitForURL(/done=answer-sent/);
  summary.answered = await page.locator("ul.messages li").allTextContents();
  await check("session-answered");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
