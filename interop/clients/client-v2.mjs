// A client of both eras: @modelcontextprotocol/client 2.x over Streamable HTTP with
// `versionNegotiation: { mode: 'auto' }`, so it speaks 2026-07-28 to a server that offers it
// (see common.mjs for the plan).

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { args, elicitationAnswerer, finish, guard, runPlan } from "./common.mjs";

guard(async () => {
  const { url, plan } = args();
  const client = new Client(
    { name: "interop-client-v2", version: "2.0.0" },
    {
      capabilities: { elicitation: { form: {}, url: {} } },
      versionNegotiation: { mode: "auto" },
    },
  );
  const elicitations = [];
  client.setRequestHandler("elicitation/create", elicitationAnswerer(plan, elicitations));
  const transport = new StreamableHTTPClientTransport(url);
  await client.connect(transport);
  const { tools, calls } = await runPlan(client, plan);
  await finish(client, {
    era: client.getProtocolEra() ?? null,
    protocolVersion: client.getNegotiatedProtocolVersion() ?? null,
    sessionId: transport.sessionId ?? null,
    server: client.getServerVersion()?.name ?? null,
    tools,
    calls,
    elicitations,
  });
});
