// Drives millrace-mcp's MCP Tasks with the official TypeScript SDK v2 client
// (@modelcontextprotocol/client) and the official Tasks extension package
// (@modelcontextprotocol/ext-tasks), which holds the task methods: the v2
// client alone has none. Prints a JSON summary on stdout for the Go test.
//
//   node tasks.mjs stdio <millrace-mcp binary> <flags...>
//   node tasks.mjs http <endpoint URL>
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { createTaskSessionFromClient, resultFromTaskOutcome } from "@modelcontextprotocol/ext-tasks/client";

const [mode, target, ...flags] = process.argv.slice(2);
const transport = mode === "stdio"
  ? new StdioClientTransport({ command: target, args: flags, stderr: "inherit" })
  : new StreamableHTTPClientTransport(new URL(target));

const client = new Client({ name: "millrace-tasks-test", version: "0" }, { capabilities: {} });
const notifications = [];
client.fallbackNotificationHandler = async (n) => { notifications.push(n); };
await client.connect(transport);
const session = createTaskSessionFromClient(client, { endpointId: "millrace-" + mode });
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

// 3. The server's inventory.
const page = await session.listTasks();
summary.listed = page.tasks.map((t) => t.taskId);
summary.notifications = notifications.filter((n) => n.method === "notifications/tasks/status").map((n) => n.params.taskId + " " + n.params.status);

await session.close();
await client.close();
console.log(JSON.stringify(summary));
