// The LLM gateway in Chromium: an administrator opens a workspace's "LLM gateway" tab, adds
// an upstream (its key write-only), turns on session tokens and redaction with a monthly
// quota, makes a key of their own (shown once), and — after a call went through it — sees the
// usage and the latest calls, then revokes the key. Every page checked for console errors, CSP
// violations and axe findings, and photographed.
// Usage: WARDEN_URL=… EMAIL=… PASSWORD=… WORKSPACE=… STUB=… SHOTS=dir node llm.mjs

import { launch, signIn, step } from "./harness.mjs";

const { WARDEN_URL: base, EMAIL: email, PASSWORD: password, WORKSPACE: ws, STUB: stub, SHOTS: shots } =
  process.env;
const { browser, summary, context: newContext, watch, check: checkPage } = await launch(shots);

try {
  const context = await newContext();
  const page = watch(await context.newPage());
  const check = (name) => checkPage(page, name);

  step("sign in and open the workspace's LLM gateway tab");
  await signIn(page, base, email, password);
  await page.goto(`${base}/console/workspaces/${ws}/llm`);
  summary.tabs = await page.locator("nav.tabs a").allTextContents();
  await check("llm-empty");

  step("an upstream");
  await page.fill("form[action$='/llm/upstreams'] input[name=name]", "stub");
  await page.selectOption("form[action$='/llm/upstreams'] select[name=kind]", "openai_compatible");
  await page.fill("form[action$='/llm/upstreams'] input[name=base_url]", `http://${stub}/v1`);
  await page.fill("form[action$='/llm/upstreams'] input[name=models]", "gpt-test, gpt-mini");
  await page.fill("form[action$='/llm/upstreams'] input[name=api_key]", "sk-console-upstream-0123456789abcdef");
  await page.check("input[name=allow_private_network]");
  await page.click("button:text-is('Add upstream')");
  await page.waitForURL(/done=upstream-added/);
  summary.upstreams = await page.locator("section[aria-labelledby=upstreams-h] li").allTextContents();

  step("governance");
  await page.check("input[name=session_gateway]");
  await page.selectOption("select[name=personal_data]", "redact");
  await page.fill("input[name=tokens_per_month]", "5000000");
  await page.click("button:text-is('Save governance')");
  await page.waitForURL(/done=llm-policy-saved/);
  summary.policy_notice = await page.locator("p.notice").textContent();
  summary.session_gateway = await page.isChecked("input[name=session_gateway]");
  summary.tokens_per_month = await page.inputValue("input[name=tokens_per_month]");
  await check("llm-configured");

  step("a key of one's own, shown once");
  await page.fill("form[action$='/llm/keys'] input[name=name]", "laptop");
  await page.click("button:text-is('Make a key')");
  summary.key = (await page.locator("pre.snippet.key").textContent()).trim();
  await check("llm-key-shown-once");

  step("a call through the gateway with that key, then usage and the latest calls");
  const call = await fetch(`${base}/llm/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${summary.key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-test", max_tokens: 12,
      messages: [{ role: "user", content: "Write to ana@example.org" }] }),
  });
  summary.call_status = call.status;
  // The record is written in the background: wait for it.
  for (let i = 0; i < 50; i++) {
    const r = await fetch(`${base}/llm/v1/models`, { headers: { authorization: `Bearer ${summary.key}` } });
    if (r.ok) break;
  }
  await new Promise((r) => setTimeout(r, 300));
  await page.click("text=Back to the LLM gateway");
  summary.keys = await page.locator("section[aria-labelledby=keys-h] li").allTextContents();
  summary.usage = await page.locator("section[aria-labelledby=usage-h] tbody tr").allTextContents();
  summary.calls = await page.locator("section[aria-labelledby=calls-h] tbody tr").allTextContents();
  await check("llm-usage");

  step("revoke the key");
  await page.click("button[aria-label='Revoke laptop']");
  await page.waitForURL(/done=key-revoked/);
  summary.revoked = await page.locator("section[aria-labelledby=keys-h] li").allTextContents();
  await check("llm-key-revoked");
} finally {
  await browser.close();
}
console.log(JSON.stringify(summary));
