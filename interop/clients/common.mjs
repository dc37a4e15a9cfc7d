// Shared by the client scripts: reads the plan, runs it on a connected client and prints the
// one JSON line of results the Rust tests parse.
//
// Usage: node <script> URL PLAN_JSON
//   PLAN_JSON = { "calls": [{ "name": "...", "arguments": { ... } }], "form": { ... } }
//   "form" is the content a form-mode elicitation is answered with.

export function args() {
  const [url, plan = "{}"] = process.argv.slice(2);
  if (!url) {
    console.error("usage: node <script> URL [PLAN_JSON]");
    process.exit(2);
  }
  return { url: new URL(url), plan: JSON.parse(plan) };
}

/** The elicitation handler: records each request, accepts it (with `form` as the content). */
export function elicitationAnswerer(plan, seen) {
  return async (request) => {
    const params = request.params;
    seen.push(params);
    if (params.mode === "url") return { action: "accept" };
    return { action: "accept", content: plan.form ?? {} };
  };
}

function text(result) {
  return (result.content ?? [])
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("\n");
}

/** Lists every tool (all pages) and makes the planned calls. */
export async function runPlan(client, plan) {
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    tools.push(...page.tools.map((t) => t.name));
    cursor = page.nextCursor;
  } while (cursor);
  const calls = [];
  for (const call of plan.calls ?? []) {
    try {
      const result = await client.callTool({ name: call.name, arguments: call.arguments ?? {} });
      calls.push({
        name: call.name,
        isError: result.isError ?? false,
        text: text(result),
        structuredContent: result.structuredContent ?? null,
      });
    } catch (e) {
      calls.push({
        name: call.name,
        error: String(e?.message ?? e),
        code: e?.code ?? null,
        data: e?.data ?? null,
      });
    }
  }
  return { tools, calls };
}

/** Prints the result line and ends the process (closing the client first). */
export async function finish(client, report) {
  process.stdout.write(JSON.stringify(report) + "\n");
  await client.close().catch(() => {});
  process.exit(0);
}

/** Any failure is reported on stdout as `{"fatal": ...}` so the test shows it. */
export function guard(main) {
  main().catch((e) => {
    process.stdout.write(JSON.stringify({ fatal: String(e?.stack ?? e) }) + "\n");
    process.exit(1);
  });
}
