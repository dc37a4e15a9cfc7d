// A 2025-era client: @modelcontextprotocol/sdk 1.x over Streamable HTTP, declaring both
// elicitation modes and answering elicitation requests (see common.mjs for the plan).

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { args, elicitationAnswerer, finish, guard, runPlan } from "./common.mjs";

guard(async () => {
  const { url, plan } = args();
  const client = new Client(
    { name: "interop-sdk-v1", version: "1.0.0" },
    { capabilities: { elicitation: { form: {}, url: {} } } },
  );
  const elicitations = [];
  client.setRequestHandler(ElicitRequestSchema, elicitationAnswerer(plan, elicitations));
  const transport = new StreamableHTTPClientTransport(url);
  await client.connect(transport);
  const { tools, calls } = await runPlan(client, plan);
  await finish(client, {
    era: "legacy",
    protocolVersion: transport.protocolVersion ?? null,
    sessionId: transport.sessionId ?? null,
    server: client.getServerVersion()?.name ?? null,
    tools,
    calls,
    elicitations,
  });
});
