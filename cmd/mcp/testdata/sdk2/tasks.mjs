// Drives millrace-mcp's MCP Tasks with the official TypeScript SDK v2 client
// (@modelcontextprotocol/client) and the official Tasks extension package
// (@modelcontextprotocol/ext-tasks), which holds the task methods: the v2
// client alone has none. Prints a JSON summary on stdout for the Go test.
//
//   node tasks.mjs stdio <millrace-mcp binary> <flags...>   protocol 2025-11-25
//   node tasks.mjs http <endpoint URL>                      protocol 2025-11-25
//   node tasks.mjs http-2026 <endpoint URL>                 protocol 2026-07-28, the tasks extension
//
// With 2026-07-28, ext-tasks needs a raw dispatch to send its task wire
// shapes (the v2 client refuses task methods toward a 2026-07-28 peer):
// rawDispatch below POSTs the framed request as it is, with the routing
// headers the spec asks for.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { createTaskSessionFromClient, resultFromTaskOutcome } from "@modelcontextprotocol/ext-tasks/client";

const [mode, target, ...flags] = process.argv.slice(2);
const transport = mode === "stdio"
  ? new StdioClientTransport({ command: target, args: flags, stderr: "inherit" })
  : new StreamableHTTPClientTransport(new URL(target));

const modern = mode === "http-2026";
const clientInfo = { name: "millrace-tasks-test", version: "0" };
const client = new Client(clientInfo, { capabilities: {}, ...(modern ? { versionNegotiation: { mode: { pin: "2026-07-28" } } } : {}) });
const notifications = [];
client.fallbackNotificationHandler = async (n) => { notifications.push(n); };
await client.connect(transport);

let nextId = 1;
async function rawDispatch(request, options) {
  const name = request.params?.taskId ?? request.params?.name;
  const res = await fetch(target, {
    method: "POST",
    headers: {
      "Content-Type": "application/json", Accept: "application/json, text/event-stream",
      "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": request.method, ...(name ? { "Mcp-Name": name } : {}),
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: "raw-" + nextId++, ...request }),
    signal: options?.signal,
  });
  const text = await res.text();
  // A JSON body, or an event stream whose last data line is the response.
  const json = res.headers.get("content-type")?.includes("text/event-stream")
    ? text.split("\n").filter((l) => l.startsWith("data:")).map((l) => JSON.parse(l.slice(5))).filter((m) => "id" in m).pop()
    : JSON.parse(text);
  return json.error ? { kind: "error", error: json.error } : { kind: "result", result: json.result };
}
const session = createTaskSessionFromClient(client, {
  endpointId: "millrace-" + mode,
  ...(modern ? { rawDispatch, v2RequestFraming: { protocolVersion: "2026-07-28", clientInfo, clientCapabilities: {} } } : {}),
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const summary = { era: client.getProtocolEra(), capabilities: session.capabilities };

// Poll a task (tasks/get) until pred holds or it ends, honouring its poll interval.
async function poll(taskId, pred, seen) {
  for (let i = 0; i < 600; i++) {
    const view = await session.task(taskId).snapshot();
    seen?.push({ status: view.status, message: view.statusMessage ?? "", poll: view.suggestedPollIntervalMs ?? view.pollInterval });
    if (pred(view) || ["completed", "failed", "cancelled"].includes(view.status)) return view;
    await sleep(Math.min(view.suggestedPollIntervalMs ?? view.pollInterval ?? 500, 500));
  }
  throw new Error("task " + taskId + " did not settle");
}

// 1. A notebook as a task, polled to completion, then its result.
const run = await session.callTool("start_notebook", { path: "progress.ipynb", parameters: { delay: 0.6 } }, { task: { preference: "require" } });
summary.kind = run.kind;
summary.taskId = run.handle?.taskId;
const seen = [];
const final = await poll(summary.taskId, () => false, seen);
summary.polled = seen;
summary.finalStatus = final.status;
summary.ttl = final.retentionMs ?? final.ttl;
const outcome = await run.result();
summary.outcomeStatus = outcome.status;
summary.result = resultFromTaskOutcome(outcome);
await run.close();

// 2. Another, cancelled while its kernel runs.
const long = await session.callTool("start_notebook", { path: "slow.ipynb", parameters: { steps: 3000, delay: 0.1 } }, { task: { preference: "require" } });
summary.cancelId = long.handle?.taskId;
const running = await poll(summary.cancelId, (v) => /RUNNING cell [1-9]/.test(v.statusMessage ?? ""));
summary.runningMessage = running.statusMessage;
await session.cancelTask(summary.cancelId);
summary.cancelStatus = (await session.task(summary.cancelId).snapshot()).status;
await long.close().catch(() => {});

// 3. The server's inventory (2025-11-25 only: 2026-07-28 has no tasks/list).
if (!modern) summary.listed = (await session.listTasks()).tasks.map((t) => t.taskId);
summary.notifications = notifications.filter((n) => n.method === "notifications/tasks/status").map((n) => n.params.taskId + " " + n.params.status);

await session.close();
await client.close();
console.log(JSON.stringify(summary));
