// An agent whose calls need a person's approval, and that person at the consent page: one of
// the official clients calls consent-needing tools through Warden while a real browser signs
// the person in and answers (idp/approve.mjs).
//
// Usage: node clients/consent.mjs URL PLAN_JSON, where PLAN_JSON is
//   { "client": "v1" (sdk 1.x, 2025-11-25, URL elicitation) | "v2" (client 2.x, 2026-07-28 auto)
//               | "v1-plain" (sdk 1.x without elicitation),
//     "token": bearer token of the caller,
//     "calls": [{ "name", "arguments", "progress": onprogress + resetTimeoutOnProgress,
//                 "retry": after a -32042 or a link in an error result: approve, call again }],
//     "answer": what the client's URL handler answers, "accept" (default), "decline" or "cancel",
//     "person": { "user", "decision": "once" | "for" | "deny", "minutes",
//                 "when": "asked" (as the client is asked) | "retry" (only before a retry)
//                        | { "afterMs": N } (that long after the client is asked),
//                 "screenshots": folder for consent-desktop.png and consent-phone.png,
//                 "visitors": [{ "user", "decision": null }] open the link first, in order } }
// Prints one JSON line: { calls: [...], elicitations: [...], approvals: [...] }.

import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";

import { approve } from "../idp/approve.mjs";
import { args, finish, guard } from "./common.mjs";

const LINK = /https?:\/\/[^\s]+\/consent\/[A-Za-z0-9_-]{22}/;

guard(async () => {
  const { url, plan } = args();
  const person = plan.person ?? {};
  const headers = { Authorization: `Bearer ${plan.token}` };
  const elicitations = [];
  const approvals = [];
  const approved = new Map(); // link -> promise of the browser's answer
  const answer = (link) => {
    if (!approved.has(link)) {
      const visit = async (who) => {
        try {
          const r = { user: who.user, ...(await approve(link, who)) };
          approvals.push(r);
          return r;
        } catch (e) {
          approvals.push({ user: who.user, fatal: String(e?.message ?? e) });
          return null;
        }
      };
      approved.set(link, (async () => {
        for (const visitor of person.visitors ?? []) await visit(visitor);
        return visit(person);
      })());
    }
    return approved.get(link);
  };
  const onUrl = async (request) => {
    const params = request.params;
    elicitations.push(params);
    if (params.mode !== "url") return { action: "decline" };
    if (plan.answer && plan.answer !== "accept") return { action: plan.answer };
    if (person.when === "asked") answer(params.url);
    else if (person.when?.afterMs !== undefined) setTimeout(() => answer(params.url), person.when.afterMs);
    return { action: "accept" };
  };

  let client;
  let transport;
  if (plan.client === "v2") {
    client = new ClientV2({ name: "consent-v2", version: "2.0.0" }, { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: "auto" } });
    client.setRequestHandler("elicitation/create", onUrl);
    transport = new TransportV2(url, { requestInit: { headers } });
  } else {
    const capabilities = plan.client === "v1-plain" ? {} : { elicitation: { url: {} } };
    client = new ClientV1({ name: "consent-v1", version: "1.0.0" }, { capabilities });
    if (plan.client !== "v1-plain") client.setRequestHandler(ElicitRequestSchema, onUrl);
    transport = new TransportV1(url, { requestInit: { headers } });
  }
  await client.connect(transport);

  const calls = [];
  for (const call of plan.calls ?? []) {
    let progress = 0;
    const options = call.progress ? { onprogress: () => progress++, resetTimeoutOnProgress: true } : {};
    const once = async () => {
      const started = Date.now();
      try {
        const result = await client.callTool({ name: call.name, arguments: call.arguments ?? {} }, undefined, options);
        const text = (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");
        return { name: call.name, isError: result.isError ?? false, text, ms: Date.now() - started };
      } catch (e) {
        return { name: call.name, error: String(e?.message ?? e), code: e?.code ?? null, data: e?.data ?? null, ms: Date.now() - started };
      }
    };
    let outcome = await once();
    const link = outcome.data?.elicitations?.[0]?.url ?? (outcome.isError ? outcome.text.match(LINK)?.[0] : undefined);
    if (call.retry && link) {
      const first = outcome;
      await answer(link);
      outcome = { ...(await once()), first };
    }
    calls.push({ ...outcome, progress });
  }
  await Promise.all(approved.values());
  await finish(client, { era: plan.client === "v2" ? client.getProtocolEra?.() ?? null : "legacy", calls, elicitations, approvals });
});
