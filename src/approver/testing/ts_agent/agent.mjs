// A scripted agent on the official TypeScript MCP SDK, with the SDK's default request options.
//
// It calls one tool and, as an agent that reads its tool results would, calls again with the same
// arguments while the answer says to; a request timeout (-32001) is retried the same way. Every
// event is one JSON line on stdout, so a test can follow and check what the agent saw.
//
// Usage: node agent.mjs '{"url": ..., "token": ..., "tool": ..., "arguments": {...},
//                          "attempts": 20, "retryDelayMs": 1000, "callsAfterResult": 1}'
// callsAfterResult: identical calls made after the first real result, each waited for once
// (no retry), to show whether an approval runs a second call.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const RETRY_HINT = "Call this tool again with exactly the same arguments";
const config = JSON.parse(process.argv[2]);
const started = Date.now();

function emit(event, fields) {
  process.stdout.write(JSON.stringify({ event, at: (Date.now() - started) / 1000, ...fields }) + "\n");
}

function textOf(result) {
  return (result.content ?? []).filter((block) => block.type === "text").map((block) => block.text).join(" ");
}

async function callOnce(client, attempt) {
  const sent = Date.now();
  try {
    // No options: the SDK's defaults (a 60 s request timeout that progress does not reset).
    const result = await client.callTool({ name: config.tool, arguments: config.arguments });
    const text = textOf(result);
    emit("result", { attempt, waited: (Date.now() - sent) / 1000, isError: result.isError === true, text });
    return result.isError === true && text.includes(RETRY_HINT) ? "retry" : "done";
  } catch (error) {
    emit("error", { attempt, waited: (Date.now() - sent) / 1000, code: error.code ?? null, message: String(error.message ?? error) });
    return error.code === -32001 ? "retry" : "failed";
  }
}

const transport = new StreamableHTTPClientTransport(new URL(config.url), {
  requestInit: { headers: { Authorization: `Bearer ${config.token}` } },
});
const client = new Client({ name: "approver-ts-agent", version: "1.0.0" });
await client.connect(transport);
const tools = await client.listTools();
emit("connected", { tools: tools.tools.length });

let outcome = "retry";
let attempt = 0;
while (outcome === "retry" && attempt < config.attempts) {
  attempt += 1;
  outcome = await callOnce(client, attempt);
  if (outcome === "retry") {
    await new Promise((resolve) => setTimeout(resolve, config.retryDelayMs));
  }
}
emit("finished", { outcome, attempts: attempt });
for (let extra = 1; extra <= (config.callsAfterResult ?? 0); extra += 1) {
  await callOnce(client, attempt + extra);
}
await client.close();
emit("closed", {});
