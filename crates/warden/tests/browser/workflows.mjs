// Workflows in Chromium: a maintainer opens the workspace's Workflows tab, tries a definition
// with a cycle (refused, the page names the step), saves a good one, starts a run, sees it
// wait for an approval, approves it and sees it succeed. Every page checked for console
// errors, CSP violations and axe findings, and photographed.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… WORKSPACE=… SHOTS=dir node workflows.mjs

import { launch, signIn, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, WORKSPACE: ws, SHOTS: shots } = process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  const page = watch(await context.newPage(), [400]);
  const check = (name) => checkPage(page, name);

  step("sign in and open the Workflows tab");
  await signIn(page, base, email, password);
  await page.goto(`${base}/console/workspaces/${ws}/workflows`);
  summary.tabs = await page.locator("nav.tabs a").allTextContents();
  await check("workflows-empty");

  step("a definition with a cycle is refused, naming the step");
  await page.fill("form[action$='/workflows'] input[name=name]", "Loop");
  await page.fill(
    "form[action$='/workflows'] textarea[name=definition]",
    JSON.stringify({ steps: [
      { id: "build", kind: "command", command: ["make"] },
      { id: "again", kind: "condition", if: "failed", then: "build" },
    ] }),
  );
  await page.click("button:text-is('Save workflow')");
  summary.refusal = (await page.locator("main").textContent()).replace(/\s+/g, " ");
  await check("workflow-refused");

  step("a good definition, then a run that waits for approval");
  await page.goto(`${base}/console/workspaces/${ws}/workflows`);
  await page.fill("form[action$='/workflows'] input[name=name]", "Release gate");
  await page.fill(
    "form[action$='/workflows'] textarea[name=definition]",
    JSON.stringify({ steps: [
      { id: "sign-off", kind: "approval", others_only: false, timeout_minutes: 60 },
      { id: "after-sign-off", kind: "condition", if: "succeeded" },
    ] }, null, 2),
  );
  await page.click("button:text-is('Save workflow')");
  await page.waitForURL(/done=workflow-saved/);
  summary.workflows = await page.locator("section[aria-labelledby=workflows-h] li").allTextContents();
  await check("workflows-saved");
  await page.click("button[aria-label='Start a run of Release gate']");
  await page.waitForURL(/workflow-runs\/.*done=run-started/);
  for (let i = 0; i < 50 && !(await page.locator("button:text-is('Approve')").count()); i++) {
    await new Promise((r) => setTimeout(r, 200));
    await page.reload();
  }
  summary.waiting = (await page.locator("h2#run-h").textContent()).replace(/\s+/g, " ").trim();
  await check("run-waiting");

  step("approve it");
  await page.click("button:text-is('Approve')");
  await page.waitForURL(/done=run-decided/);
  for (let i = 0; i < 50; i++) {
    const h = await page.locator("h2#run-h").textContent();
    if (h.includes("succeeded")) break;
    await new Promise((r) => setTimeout(r, 200));
    await page.reload();
  }
  summary.done = (await page.locator("h2#run-h").textContent()).replace(/\s+/g, " ").trim();
  summary.steps = await page.locator("ol.steps li").allTextContents();
  await check("run-succeeded");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
